# Paper 003 (memorization via gradient splitting): the experiment's epochs-to-threshold
# table (gendyn.memorization.stage). The objectives themselves train in rule `train`
# (training.objective); these rules read run.h5. Settings: analyses.memorization.


def memorization_inputs(wildcards):
    """runs.csv and every run.h5 of the experiment."""
    exp = wildcards.experiment
    return {
        "runs_table": f"{RESULTS}/{exp}/runs.csv",
        "run": [f"{run_dir(exp, rid)}/run.h5" for rid in run_ids(exp)],
    }


def memorization_compare_runs(experiment):
    """run.h5 of the runs of analyses.memorization.compare_experiments that share an objective
    with this experiment (drawn beside its own runs, e.g. real images beside noise)."""
    names = analysis_config(experiment, "memorization")["compare_experiments"]

    def objective(exp, rid):
        return (RUNS[exp][rid][1]["training"].get("objective") or {}).get("name")

    own = {objective(experiment, rid) for rid in run_ids(experiment)}
    out = []
    for name in names:
        if name not in EXPERIMENTS:
            raise WorkflowError(
                f"experiments.{experiment}.analyses.memorization.compare_experiments: {name!r} "
                f"is not an active experiment; active: {EXPERIMENTS}"
            )
        out += [
            f"{run_dir(name, rid)}/run.h5"
            for rid in run_ids(name)
            if objective(name, rid) in own
        ]
    return out


def memorization_figure_inputs(wildcards):
    inputs = {
        **memorization_inputs(wildcards),
        "summary": f"{RESULTS}/{wildcards.experiment}/analysis/memorization/summary.nc",
    }
    compare = memorization_compare_runs(wildcards.experiment)
    if compare:
        inputs["compare_run"] = compare
    return inputs


FIGURE_JOBS.append(
    experiment_figures("memorization", "experiment", memorization_figure_inputs)
)


def memorization_targets(experiment):
    if analysis_config(experiment, "memorization") is None:
        return []
    return [
        f"{RESULTS}/{experiment}/analysis/memorization/summary.csv",
        figure_dir(experiment, "memorization", "experiment"),
    ]


TARGET_FUNCTIONS.append(memorization_targets)


def memorization_analysis_files(experiment):
    if analysis_config(experiment, "memorization") is None:
        return []
    return [f"{RESULTS}/{experiment}/analysis/memorization/summary.nc"]


ANALYSIS_FILES.append(memorization_analysis_files)


rule memorization_summary:
    input:
        unpack(memorization_inputs),
    output:
        nc=f"{RESULTS}/{{experiment}}/analysis/memorization/summary.nc",
        csv=f"{RESULTS}/{{experiment}}/analysis/memorization/summary.csv",
    log:
        f"{RESULTS}/{{experiment}}/logs/memorization/summary.log",
    conda:
        "../../envs/analysis.yaml"
    threads: ANALYSIS_RES["threads"]
    resources:
        mem_mb=ANALYSIS_RES["mem_mb"],
        runtime=ANALYSIS_RES["runtime"],
    params:
        exp_dir=lambda wildcards, input: Path(input.runs_table).parent,
        settings=stage_settings("memorization", "summary"),
        options=analysis_options,
    shell:
        "gendyn memorization summary {params.exp_dir:q} {output.nc:q} --csv {output.csv:q}"
        " --settings {params.settings:q} --threads {threads} {params.options} 2> {log:q}"
