# Paper 000 (image functions): path similarity per run and the early/mid ratio per
# experiment (gendyn.paths.stage). Settings: experiments.<name>.analyses.paths.


def paths_compute_inputs(wildcards):
    rd = run_dir(wildcards.experiment, wildcards.run)
    inputs = {"run": f"{rd}/run.h5"}
    if analysis_config(wildcards.experiment, "paths")["record_bn"] == "batch":
        inputs["checkpoints"] = f"{rd}/checkpoints.h5"
    return inputs


def paths_run_files(wildcards):
    return [
        f"{RESULTS}/{wildcards.experiment}/analysis/paths/{rid}.nc"
        for rid in run_ids(wildcards.experiment)
    ]


def paths_figure_inputs_run(wildcards):
    return {
        "paths": f"{RESULTS}/{wildcards.experiment}/analysis/paths/{wildcards.run}.nc"
    }


def paths_figure_inputs_experiment(wildcards):
    """Fig 7: the summaries of this experiment and of figures.fig7_experiments."""
    others = analysis_config(wildcards.experiment, "paths")["figures"][
        "fig7_experiments"
    ]
    for name in others:
        if name not in EXPERIMENTS or analysis_config(name, "paths") is None:
            raise WorkflowError(
                f"experiments.{wildcards.experiment}.analyses.paths.figures.fig7_experiments: "
                f"{name!r} is not an active experiment with analyses.paths; active: {EXPERIMENTS}"
            )
    names = [wildcards.experiment, *others]
    return {
        "summary": [f"{RESULTS}/{name}/analysis/paths/summary.nc" for name in names],
        # runs.csv: runs that differ only in their seed are one point (mean, min-max)
        "runs_table": [f"{RESULTS}/{name}/runs.csv" for name in names],
    }


FIGURE_JOBS.append(experiment_figures("paths", "run", paths_figure_inputs_run))
FIGURE_JOBS.append(
    experiment_figures("paths", "experiment", paths_figure_inputs_experiment)
)


def paths_has_stages(experiment):
    """Fig 7 needs an early and a mid stage: LR step decays in every run, or `stages`."""
    if analysis_config(experiment, "paths")["stages"] is not None:
        return True
    for _, cfg in RUNS[experiment].values():
        sched = cfg["training"].get("lr_schedule") or {}
        if sched.get("kind") != "step" or not sched.get("milestones"):
            return False
    return True


def paths_targets(experiment):
    if analysis_config(experiment, "paths") is None:
        return []
    out = [
        figure_dir(experiment, "paths", "run", rid)
        for rid in figure_run_ids(experiment)
    ]
    if paths_has_stages(experiment):
        out.append(figure_dir(experiment, "paths", "experiment"))
    return out


TARGET_FUNCTIONS.append(paths_targets)


def paths_analysis_files(experiment):
    if analysis_config(experiment, "paths") is None:
        return []
    out = [
        f"{RESULTS}/{experiment}/analysis/paths/{rid}.nc" for rid in run_ids(experiment)
    ]
    if paths_has_stages(experiment):
        out.append(f"{RESULTS}/{experiment}/analysis/paths/summary.nc")
    return out


ANALYSIS_FILES.append(paths_analysis_files)


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
        settings=stage_settings("paths", "compute"),
        options=analysis_options,
    shell:
        "gendyn paths compute {input.run:q} {output:q} --settings {params.settings:q}"
        " --threads {threads} {params.options} 2> {log:q}"


rule paths_summary:
    input:
        paths_run_files,
    output:
        f"{RESULTS}/{{experiment}}/analysis/paths/summary.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/paths/summary.log",
    conda:
        "../../envs/analysis.yaml"
    threads: ANALYSIS_RES["threads"]
    resources:
        mem_mb=ANALYSIS_RES["mem_mb"],
        runtime=ANALYSIS_RES["runtime"],
    params:
        settings=stage_settings("paths", "summary"),
        options=analysis_options,
    shell:
        "gendyn paths summary {input:q} {output:q} --settings {params.settings:q}"
        " --threads {threads} {params.options} 2> {log:q}"
