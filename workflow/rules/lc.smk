# Paper 001 (local complexity): LC dynamics, exact region maps and PGD robustness per run
# from checkpoints.h5, and one plotting rule per paper figure. Settings:
# experiments.<name>.analyses.lc (schema $defs/analysis_lc).


def lc_settings(part):
    """The slice of analyses.lc that changes one output, as JSON (a rerun trigger).

    part: "compute" (everything but regions, robust, figures), "regions", "robust" or
    "figures" (plot options only, so a changed plot option reruns only figure rules).
    """
    keys = {
        "compute": None,
        "regions": ("regions", "radii", "n_directions", "seed", "points_seed"),
        "robust": ("robust", "device"),
        "figures": ("figures",),
    }[part]

    def get(wildcards):
        cfg = analysis_config(wildcards.experiment, "lc")
        if keys is None:
            sel = {
                k: v
                for k, v in cfg.items()
                if k not in ("regions", "robust", "figures")
            }
        else:
            sel = {k: cfg[k] for k in keys}
        return json.dumps(sel, sort_keys=True)

    return get


def lc_run_inputs(wildcards):
    run_dir = f"{RESULTS}/{wildcards.experiment}/runs/{wildcards.run}"
    return {"run": f"{run_dir}/run.h5", "checkpoints": f"{run_dir}/checkpoints.h5"}


def lc_sweep_inputs(wildcards):
    return [
        f"{RESULTS}/{wildcards.experiment}/analysis/lc/{rid}.nc"
        for rid in run_ids(wildcards.experiment)
    ]


def lc_targets(experiment):
    cfg = analysis_config(experiment, "lc")
    if cfg is None:
        return []
    base = f"{RESULTS}/{experiment}/figures/lc"
    out = []
    for rid in run_ids(experiment):
        out += [f"{base}/dynamics/{rid}.png", f"{base}/layers/{rid}.png"]
        if cfg["regions"]["enabled"]:
            out.append(f"{base}/regions/{rid}.png")
            if cfg["regions"]["local_points"] > 0:
                out.append(f"{base}/regions_vs_lc/{rid}.png")
        if cfg["robust"]["enabled"]:
            out.append(f"{base}/robust/{rid}.png")
    if len(run_ids(experiment)) > 1:
        out.append(f"{base}/sweep.png")
    return out


TARGET_FUNCTIONS.append(lc_targets)


rule lc_compute:
    input:
        unpack(lc_run_inputs),
    output:
        f"{RESULTS}/{{experiment}}/analysis/lc/{{run}}.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/lc/compute_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: ANALYSIS_RES["threads"]
    resources:
        mem_mb=ANALYSIS_RES["mem_mb"],
        runtime=ANALYSIS_RES["runtime"],
    params:
        run_dir=lambda wildcards, input: Path(input.run).parent,
        settings=lc_settings("compute"),
        dask=dask_args(),
    shell:
        "gendyn lc compute {params.run_dir} {output} --settings {params.settings:q}"
        " --threads {threads} {params.dask} 2> {log}"


rule lc_regions:
    input:
        unpack(lc_run_inputs),
    output:
        f"{RESULTS}/{{experiment}}/analysis/regions/{{run}}.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/lc/regions_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: ANALYSIS_RES["threads"]
    resources:
        mem_mb=ANALYSIS_RES["mem_mb"],
        runtime=ANALYSIS_RES["runtime"],
    params:
        run_dir=lambda wildcards, input: Path(input.run).parent,
        settings=lc_settings("regions"),
        dask=dask_args(),
    shell:
        "gendyn lc regions {params.run_dir} {output} --settings {params.settings:q}"
        " --threads {threads} {params.dask} 2> {log}"


rule lc_robust:
    input:
        unpack(lc_run_inputs),
    output:
        f"{RESULTS}/{{experiment}}/analysis/robust/{{run}}.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/lc/robust_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: ANALYSIS_RES["threads"]
    resources:
        mem_mb=ANALYSIS_RES["mem_mb"],
        runtime=ANALYSIS_RES["runtime"],
    params:
        run_dir=lambda wildcards, input: Path(input.run).parent,
        settings=lc_settings("robust"),
        dask=dask_args(),
    shell:
        "gendyn lc robust {params.run_dir} {output} --settings {params.settings:q}"
        " --threads {threads} {params.dask} 2> {log}"


rule lc_fig_dynamics:
    input:
        rules.lc_compute.output[0],
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/lc/dynamics/{{run}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/lc/dynamics/{{run}}.png",
            caption="../report/lc_dynamics.rst",
            category="Paper 001 - local complexity",
            subcategory="{experiment}: LC: dynamics (Figs 2, 9)",
            labels={"run": "{run}", "figure": "Fig 2, 9"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/lc_dynamics_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: FIGURE_RES["threads"]
    resources:
        mem_mb=FIGURE_RES["mem_mb"],
        runtime=FIGURE_RES["runtime"],
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        settings=lc_settings("figures"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn lc plot dynamics {input} {params.prefix} --settings {params.settings:q}"
        " --dpi {params.dpi} 2> {log}"


rule lc_fig_layers:
    input:
        rules.lc_compute.output[0],
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/lc/layers/{{run}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/lc/layers/{{run}}.png",
            caption="../report/lc_layers.rst",
            category="Paper 001 - local complexity",
            subcategory="{experiment}: LC: layer-wise (Figs 13-14)",
            labels={"run": "{run}", "figure": "Fig 13-14"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/lc_layers_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: FIGURE_RES["threads"]
    resources:
        mem_mb=FIGURE_RES["mem_mb"],
        runtime=FIGURE_RES["runtime"],
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        settings=lc_settings("figures"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn lc plot layers {input} {params.prefix} --settings {params.settings:q}"
        " --dpi {params.dpi} 2> {log}"


rule lc_fig_sweep:
    input:
        lc=lc_sweep_inputs,
        table=f"{RESULTS}/{{experiment}}/runs.csv",
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/lc/sweep.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/lc/sweep.png",
            caption="../report/lc_sweep.rst",
            category="Paper 001 - local complexity",
            subcategory="{experiment}: LC: sweep (Figs 3-8, 10, 11)",
            labels={"figure": "Figs 3-8, 10, 11"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/lc_sweep.log",
    conda:
        "../../envs/analysis.yaml"
    threads: FIGURE_RES["threads"]
    resources:
        mem_mb=FIGURE_RES["mem_mb"],
        runtime=FIGURE_RES["runtime"],
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        settings=lc_settings("figures"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn lc plot sweep {input.lc} {params.prefix} --runs-table {input.table}"
        " --title {wildcards.experiment} --settings {params.settings:q}"
        " --dpi {params.dpi} 2> {log}"


rule lc_fig_regions:
    input:
        rules.lc_regions.output[0],
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/lc/regions/{{run}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/lc/regions/{{run}}.png",
            caption="../report/lc_regions.rst",
            category="Paper 001 - local complexity",
            subcategory="{experiment}: LC: region maps (Fig 1)",
            labels={"run": "{run}", "figure": "Fig 1"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/lc_regions_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: FIGURE_RES["threads"]
    resources:
        mem_mb=FIGURE_RES["mem_mb"],
        runtime=FIGURE_RES["runtime"],
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        settings=lc_settings("figures"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn lc plot regions {input} {params.prefix} --settings {params.settings:q}"
        " --dpi {params.dpi} 2> {log}"


rule lc_fig_regions_vs_lc:
    input:
        rules.lc_regions.output[0],
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/lc/regions_vs_lc/{{run}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/lc/regions_vs_lc/{{run}}.png",
            caption="../report/lc_regions_vs_lc.rst",
            category="Paper 001 - local complexity",
            subcategory="{experiment}: LC: exact regions vs LC (Fig 12)",
            labels={"run": "{run}", "figure": "Fig 12"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/lc_regions_vs_lc_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: FIGURE_RES["threads"]
    resources:
        mem_mb=FIGURE_RES["mem_mb"],
        runtime=FIGURE_RES["runtime"],
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        settings=lc_settings("figures"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn lc plot regions-vs-lc {input} {params.prefix} --settings {params.settings:q}"
        " --dpi {params.dpi} 2> {log}"


rule lc_fig_robust:
    input:
        robust=rules.lc_robust.output[0],
        lc=rules.lc_compute.output[0],
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/lc/robust/{{run}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/lc/robust/{{run}}.png",
            caption="../report/lc_robust.rst",
            category="Paper 001 - local complexity",
            subcategory="{experiment}: LC: robustness (R1)",
            labels={"run": "{run}", "figure": "R1"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/lc_robust_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: FIGURE_RES["threads"]
    resources:
        mem_mb=FIGURE_RES["mem_mb"],
        runtime=FIGURE_RES["runtime"],
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        settings=lc_settings("figures"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn lc plot robust {input.robust} {input.lc} {params.prefix}"
        " --settings {params.settings:q} --dpi {params.dpi} 2> {log}"
