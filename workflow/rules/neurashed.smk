# Paper 002 (neurashed): simulations of the graphical model (gendyn.neurashed.stage) and the
# paper's Figs. 1-4 plus the local-elasticity claim of Sec. 3. Not training runs: settings
# live under the top-level `neurashed` key; outputs under results/neurashed/<study>/.

NEURASHED = CFG["neurashed"]
NEURASHED_PHENOMENA = tuple(s.name for s in registry.get("neurashed").stages)


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


def neurashed_settings(wildcards):
    return json.dumps(
        NEURASHED["studies"][wildcards.study][wildcards.phenomenon], sort_keys=True
    )


def neurashed_seeds(wildcards):
    return " ".join(str(s) for s in NEURASHED["studies"][wildcards.study]["seeds"])


def neurashed_figure_inputs(wildcards):
    return {
        p: f"{RESULTS}/neurashed/{wildcards.study}/{p}.nc" for p in NEURASHED_PHENOMENA
    }


def neurashed_figure_settings(wildcards):
    return {"view": {"dpi": NEURASHED["studies"][wildcards.study]["dpi"]}}


# The study's figures come from the figure-job template (figures.smk), like every measure's.
FIGURE_JOBS.append(
    FigureRule(
        rule_name="neurashed_figures",
        figure_set="neurashed",
        scope="experiment",
        output=f"{RESULTS}/neurashed/{{study}}/figures",
        log=f"{RESULTS}/neurashed/{{study}}/logs/figures.log",
        inputs=neurashed_figure_inputs,
        settings=neurashed_figure_settings,
        experiment="{wildcards.study}",
        run="",
    )
)


def neurashed_targets():
    return [f"{RESULTS}/neurashed/{study}/figures" for study in NEURASHED_STUDIES]


# Simulations are not experiments: their figures are targets of `all` of their own.
EXTRA_TARGETS.append(neurashed_targets)


rule neurashed_simulate:
    output:
        f"{RESULTS}/neurashed/{{study}}/{{phenomenon}}.nc",
    log:
        f"{RESULTS}/neurashed/{{study}}/logs/{{phenomenon}}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: ANALYSIS_RES["threads"]
    resources:
        mem_mb=ANALYSIS_RES["mem_mb"],
        runtime=ANALYSIS_RES["runtime"],
    params:
        settings=neurashed_settings,
        seeds=neurashed_seeds,
    shell:
        "gendyn neurashed simulate {wildcards.phenomenon} {output:q}"
        " --settings {params.settings:q} --seeds {params.seeds} --threads {threads} 2> {log:q}"
