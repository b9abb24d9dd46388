# Paper 002 (neurashed): simulations of the graphical model and the paper's Figs. 1-4
# plus the local-elasticity claim of Sec. 3. Not training runs: settings live under the
# top-level `neurashed` key; outputs under results/neurashed/<study>/.

NEURASHED = CFG["neurashed"]
NEURASHED_PHENOMENA = (
    "implicit_regularization",
    "information_bottleneck",
    "local_elasticity",
)
NEURASHED_FIGURES = {
    "fig1_graph": ("fig1", None),
    "fig2_pathways": ("fig2", None),
    "fig3_implicit_regularization": ("fig3", "implicit_regularization"),
    "fig4_information_bottleneck": ("fig4", "information_bottleneck"),
    "elasticity": ("elasticity", "local_elasticity"),
}


def neurashed_studies():
    """Studies to build: `neurashed.active`, or all of them when no experiment list is set."""
    active = NEURASHED["active"]
    studies = NEURASHED["studies"]
    if active is None:
        return list(studies) if CFG.get("active_experiments") is None else []
    unknown = [a for a in active if a not in studies]
    if unknown:
        raise WorkflowError(
            f"neurashed.active: {unknown} not defined; defined studies: {sorted(studies)}"
        )
    return list(active)


NEURASHED_STUDIES = neurashed_studies()


wildcard_constraints:
    study="|".join(NEURASHED_STUDIES) or "__none__",
    phenomenon="|".join(NEURASHED_PHENOMENA),
    nfigure="|".join(NEURASHED_FIGURES),


def neurashed_settings(wildcards):
    return json.dumps(
        NEURASHED["studies"][wildcards.study][wildcards.phenomenon], sort_keys=True
    )


def neurashed_seeds(wildcards):
    return " ".join(str(s) for s in NEURASHED["studies"][wildcards.study]["seeds"])


def neurashed_figure_input(wildcards):
    phenomenon = NEURASHED_FIGURES[wildcards.nfigure][1]
    if phenomenon is None:
        return []
    return [f"{RESULTS}/neurashed/{wildcards.study}/{phenomenon}.nc"]


def neurashed_targets():
    return [
        f"{RESULTS}/neurashed/{study}/figures/{name}.png"
        for study in NEURASHED_STUDIES
        for name in NEURASHED_FIGURES
    ]


# Simulations are not experiments: their figures are targets of `all` of their own.
EXTRA_TARGETS.append(neurashed_targets)


rule neurashed_simulate:
    output:
        f"{RESULTS}/neurashed/{{study}}/{{phenomenon}}.nc",
    log:
        f"{RESULTS}/neurashed/{{study}}/logs/{{phenomenon}}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        settings=neurashed_settings,
        seeds=neurashed_seeds,
    shell:
        "gendyn neurashed simulate {wildcards.phenomenon} {output}"
        " --settings {params.settings:q} --seeds {params.seeds} 2> {log}"


rule neurashed_figure:
    input:
        neurashed_figure_input,
    output:
        pdf=f"{RESULTS}/neurashed/{{study}}/figures/{{nfigure}}.pdf",
        png=report(
            f"{RESULTS}/neurashed/{{study}}/figures/{{nfigure}}.png",
            caption="../report/neurashed_figures.rst",
            category="Paper 002 - neurashed simulator",
            subcategory="{study}",
            labels={"study": "{study}", "figure": "{nfigure}"},
        ),
    log:
        f"{RESULTS}/neurashed/{{study}}/logs/figure_{{nfigure}}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        kind=lambda wildcards: NEURASHED_FIGURES[wildcards.nfigure][0],
        dpi=lambda wildcards: NEURASHED["studies"][wildcards.study]["dpi"],
    shell:
        "gendyn neurashed plot {params.kind} {params.prefix} {input} --dpi {params.dpi} 2> {log}"
