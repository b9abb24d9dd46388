# Paper 000 (image functions): path similarity per run, early/mid ratio per experiment,
# and one plotting rule per paper figure. Settings: experiments.<name>.analyses.paths.


def paths_settings(wildcards):
    """The analysis settings (without plot options): a change reruns compute and figures."""
    cfg = dict(analysis_config(wildcards.experiment, "paths"))
    cfg.pop("figures", None)
    return json.dumps(cfg, sort_keys=True)


def paths_figure_option(key):
    def get(wildcards):
        return analysis_config(wildcards.experiment, "paths")["figures"][key]

    return get


def paths_figure_layers(wildcards):
    return " ".join(str(v) for v in paths_figure_option("layers")(wildcards))


def paths_compute_inputs(wildcards):
    run_dir = f"{RESULTS}/{wildcards.experiment}/runs/{wildcards.run}"
    inputs = {"run": f"{run_dir}/run.h5"}
    if analysis_config(wildcards.experiment, "paths")["record_bn"] == "batch":
        inputs["checkpoints"] = f"{run_dir}/checkpoints.h5"
    return inputs


def paths_run_files(wildcards):
    return [
        f"{RESULTS}/{wildcards.experiment}/analysis/paths/{rid}.nc"
        for rid in run_ids(wildcards.experiment)
    ]


def paths_fig7_summaries(wildcards):
    others = paths_figure_option("fig7_experiments")(wildcards)
    for name in others:
        if name not in EXPERIMENTS or analysis_config(name, "paths") is None:
            raise WorkflowError(
                f"experiments.{wildcards.experiment}.analyses.paths.figures.fig7_experiments: "
                f"{name!r} is not an active experiment with analyses.paths; active: {EXPERIMENTS}"
            )
    return [
        f"{RESULTS}/{name}/analysis/paths/summary.nc"
        for name in [wildcards.experiment, *others]
    ]


def paths_has_stages(experiment):
    """Fig 7 needs an early and a mid stage: LR step decays in every run, or `stages`."""
    if analysis_config(experiment, "paths")["stages"] is not None:
        return True
    for _, cfg in RUNS[experiment].values():
        sched = cfg["training"].get("lr_schedule") or {}
        if sched.get("kind") != "step" or not sched.get("milestones"):
            return False
    return True


def paths_run_has_activations(experiment, run):
    want = analysis_config(experiment, "paths")["activations"]
    recorded = RUNS[experiment][run][1].get("recording", {}).get("activations", False)
    return bool(recorded) and want is not False and want != "false"


def paths_has_ranks(experiment, run):
    """Fig 6 needs n_candidates + 1 analysed images (the baseline and its candidates)."""
    settings = analysis_config(experiment, "paths")
    rec = RUNS[experiment][run][1].get("recording", {})
    n_images = rec.get(f"n_tracked_{settings['split']}", 0)
    return bool(settings["baselines"]) and n_images >= settings["n_candidates"] + 1


def paths_targets(experiment):
    if analysis_config(experiment, "paths") is None:
        return []
    base = f"{RESULTS}/{experiment}"
    out = []
    for rid in run_ids(experiment):
        out.append(f"{base}/analysis/paths/{rid}.nc")
        for fig in ("fig1_cross_path", "fig4_overlap_distance", "fig5_self_similarity"):
            out.append(f"{base}/figures/paths/{fig}/{rid}.png")
        if paths_has_ranks(experiment, rid):
            out.append(f"{base}/figures/paths/fig6_neighbour_ranks/{rid}.png")
            if paths_run_has_activations(experiment, rid):
                out.append(f"{base}/figures/paths/figE_activation_ranks/{rid}.png")
    if paths_has_stages(experiment):
        out.append(f"{base}/analysis/paths/summary.nc")
        out.append(f"{base}/figures/paths/fig7_early_mid_ratio.png")
    return out


TARGET_FUNCTIONS.append(paths_targets)


# A run named "summary" would collide with the experiment summary; the summary wins.
ruleorder: paths_summary > paths_compute


rule paths_compute:
    input:
        unpack(paths_compute_inputs),
    output:
        f"{RESULTS}/{{experiment}}/analysis/paths/{{run}}.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/paths/compute_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: ANALYSIS_RES["threads"]
    resources:
        mem_mb=ANALYSIS_RES["mem_mb"],
        runtime=ANALYSIS_RES["runtime"],
    params:
        settings=paths_settings,
        dask=dask_args(),
    shell:
        "gendyn paths compute {input.run} {output} --settings {params.settings:q}"
        " --threads {threads} {params.dask} 2> {log}"


rule paths_summary:
    input:
        paths_run_files,
    output:
        f"{RESULTS}/{{experiment}}/analysis/paths/summary.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/paths/summary.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        ratio_layer=lambda wildcards: analysis_config(wildcards.experiment, "paths")[
            "ratio_layer"
        ],
    shell:
        "gendyn paths summary {output} {input} --ratio-layer {params.ratio_layer} 2> {log}"


rule paths_fig1_cross_path:
    input:
        rules.paths_compute.output[0],
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/paths/fig1_cross_path/{{run}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/paths/fig1_cross_path/{{run}}.png",
            caption="../report/paths_fig1_cross_path.rst",
            category="Paper 000 - paths",
            subcategory="{experiment}: Paths: cross-path similarity (Figs 1-3, 16)",
            labels={"run": "{run}", "figure": "Fig 1-3, 16"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/paths_fig1_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        layers=paths_figure_layers,
        style=paths_figure_option("style"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn paths plot cross-path {params.prefix} {input} --layers {params.layers}"
        " --style {params.style} --dpi {params.dpi} 2> {log}"


rule paths_fig4_overlap_distance:
    input:
        rules.paths_compute.output[0],
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/paths/fig4_overlap_distance/{{run}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/paths/fig4_overlap_distance/{{run}}.png",
            caption="../report/paths_fig4_overlap_distance.rst",
            category="Paper 000 - paths",
            subcategory="{experiment}: Paths: overlap vs input distance (Fig 4)",
            labels={"run": "{run}", "figure": "Fig 4"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/paths_fig4_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        layers=paths_figure_layers,
        max_points=paths_figure_option("max_points"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn paths plot overlap {params.prefix} {input} --layers {params.layers}"
        " --max-points {params.max_points} --dpi {params.dpi} 2> {log}"


rule paths_fig5_self_similarity:
    input:
        rules.paths_compute.output[0],
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/paths/fig5_self_similarity/{{run}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/paths/fig5_self_similarity/{{run}}.png",
            caption="../report/paths_fig5_self_similarity.rst",
            category="Paper 000 - paths",
            subcategory="{experiment}: Paths: self-similarity (Fig 5)",
            labels={"run": "{run}", "figure": "Fig 5"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/paths_fig5_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        layers=paths_figure_layers,
        style=paths_figure_option("style"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn paths plot self-sim {params.prefix} {input} --layers {params.layers}"
        " --style {params.style} --dpi {params.dpi} 2> {log}"


rule paths_fig6_neighbour_ranks:
    input:
        rules.paths_compute.output[0],
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/paths/fig6_neighbour_ranks/{{run}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/paths/fig6_neighbour_ranks/{{run}}.png",
            caption="../report/paths_fig6_neighbour_ranks.rst",
            category="Paper 000 - paths",
            subcategory="{experiment}: Paths: nearest-neighbour ranks (Fig 6)",
            labels={"run": "{run}", "figure": "Fig 6"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/paths_fig6_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        rank_layer=paths_figure_option("rank_layer"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn paths plot ranks {params.prefix} {input} --rank-layer {params.rank_layer}"
        " --dpi {params.dpi} 2> {log}"


rule paths_figE_activation_ranks:
    input:
        rules.paths_compute.output[0],
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/paths/figE_activation_ranks/{{run}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/paths/figE_activation_ranks/{{run}}.png",
            caption="../report/paths_figE_activation_ranks.rst",
            category="Paper 000 - paths",
            subcategory="{experiment}: Paths: ranks by activation similarity (App. E)",
            labels={"run": "{run}", "figure": "App. E"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/paths_figE_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        layers=paths_figure_layers,
        dpi=figure_option("dpi"),
    shell:
        "gendyn paths plot act-ranks {params.prefix} {input} --layers {params.layers}"
        " --dpi {params.dpi} 2> {log}"


rule paths_fig7_early_mid_ratio:
    input:
        paths_fig7_summaries,
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/paths/fig7_early_mid_ratio.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/paths/fig7_early_mid_ratio.png",
            caption="../report/paths_fig7_early_mid_ratio.rst",
            category="Paper 000 - paths",
            subcategory="{experiment}: Paths: early/mid ratio vs generalization (Fig 7)",
            labels={"figure": "Fig 7"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/paths_fig7.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        generalization=paths_figure_option("generalization"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn paths plot ratio {params.prefix} {input}"
        " --generalization {params.generalization} --dpi {params.dpi} 2> {log}"
