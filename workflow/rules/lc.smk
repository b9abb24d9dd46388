# Paper 001 (local complexity): LC dynamics, exact region maps and PGD robustness per run
# from checkpoints.h5 (gendyn.lc.stage). Settings: experiments.<name>.analyses.lc
# (schema $defs/analysis_lc); each stage gets the slice that changes its output.


def lc_run_inputs(wildcards):
    rd = run_dir(wildcards.experiment, wildcards.run)
    return {"run": f"{rd}/run.h5", "checkpoints": f"{rd}/checkpoints.h5"}


def lc_regions_inputs(wildcards):
    """The run, and its LC analysis when the maps sit at the LC curve's phases."""
    inputs = lc_run_inputs(wildcards)
    if analysis_config(wildcards.experiment, "lc")["regions"]["at"] == "lc_phases":
        inputs["lc"] = (
            f"{RESULTS}/{wildcards.experiment}/analysis/lc/{wildcards.run}.nc"
        )
    return inputs


def lc_regions_options(wildcards, input):
    return f"--lc {shlex.quote(input.lc)}" if "lc" in input.keys() else ""


def lc_figure_inputs_run(wildcards):
    exp, rid = wildcards.experiment, wildcards.run
    cfg = analysis_config(exp, "lc")
    # run.h5 for the x axis (the record schedule decides the log axis)
    out = {
        "lc": f"{RESULTS}/{exp}/analysis/lc/{rid}.nc",
        "run": f"{run_dir(exp, rid)}/run.h5",
    }
    if cfg["regions"]["enabled"]:
        out["regions"] = f"{RESULTS}/{exp}/analysis/regions/{rid}.nc"
    if cfg["robust"]["enabled"]:
        out["robust"] = f"{RESULTS}/{exp}/analysis/robust/{rid}.nc"
    return out


def lc_figure_inputs_experiment(wildcards):
    exp = wildcards.experiment
    return {
        "lc": [f"{RESULTS}/{exp}/analysis/lc/{rid}.nc" for rid in run_ids(exp)],
        "run": [f"{run_dir(exp, rid)}/run.h5" for rid in run_ids(exp)],
        "runs_table": f"{RESULTS}/{exp}/runs.csv",
    }


FIGURE_JOBS.append(experiment_figures("lc", "run", lc_figure_inputs_run))
FIGURE_JOBS.append(experiment_figures("lc", "experiment", lc_figure_inputs_experiment))


def lc_targets(experiment):
    if analysis_config(experiment, "lc") is None:
        return []
    out = [
        figure_dir(experiment, "lc", "run", rid) for rid in figure_run_ids(experiment)
    ]
    if len(run_ids(experiment)) > 1:
        out.append(figure_dir(experiment, "lc", "experiment"))
    return out


TARGET_FUNCTIONS.append(lc_targets)


def lc_analysis_files(experiment):
    if analysis_config(experiment, "lc") is None:
        return []
    out = []
    for rid in run_ids(experiment):
        out += lc_figure_inputs_run(
            SimpleNamespace(experiment=experiment, run=rid)
        ).values()
    return out


ANALYSIS_FILES.append(lc_analysis_files)


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
        command="lc compute",
        run_dir=lambda wildcards, input: Path(input.run).parent,
        settings=stage_settings("lc", "compute"),
        options=analysis_options,
        extra="",
    shell:
        "gendyn {params.command} {params.run_dir:q} {output:q} --settings {params.settings:q}"
        " --threads {threads} {params.options} {params.extra} 2> {log:q}"


use rule lc_compute as lc_regions with:
    input:
        unpack(lc_regions_inputs),
    output:
        f"{RESULTS}/{{experiment}}/analysis/regions/{{run}}.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/lc/regions_{{run}}.log",
    params:
        command="lc regions",
        run_dir=lambda wildcards, input: Path(input.run).parent,
        settings=stage_settings("lc", "regions"),
        options=analysis_options,
        extra=lc_regions_options,


use rule lc_compute as lc_robust with:
    output:
        f"{RESULTS}/{{experiment}}/analysis/robust/{{run}}.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/lc/robust_{{run}}.log",
    params:
        command="lc robust",
        run_dir=lambda wildcards, input: Path(input.run).parent,
        settings=stage_settings("lc", "robust"),
        options=analysis_options,
        extra="",
