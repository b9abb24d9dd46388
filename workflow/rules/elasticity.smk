# Paper 002 (local elasticity): LE between tracked images at every record point of a run,
# the paper's Fig. 5 histograms at the final (or pretrained) weights and He & Su's
# protocol (gendyn.elasticity.stage). Settings: experiments.<name>.analyses.elasticity.


def elasticity_pretrained(experiment):
    """The `pretrained` block of an experiment (weights given: it trains nothing), or None."""
    le = analysis_config(experiment, "elasticity")
    return None if le is None else le.get("pretrained")


def elasticity_gpu(wildcards):
    return analysis_config(wildcards.experiment, "elasticity")["gpu"]


def elasticity_histogram_inputs(wildcards):
    pre = elasticity_pretrained(wildcards.experiment)
    if pre is None:
        return lc_run_inputs(wildcards)
    if not Path(pre["weights"]).is_file():
        raise WorkflowError(
            f"experiments.{wildcards.experiment}.analyses.elasticity.pretrained.weights: "
            f"{pre['weights']!r} does not exist; give the path of a local state dict "
            "(gendyn never downloads weights)"
        )
    return {"weights": pre["weights"]}


def elasticity_data_model(experiment):
    """The experiment's data and model; data_root reaches only data read from disk."""
    exp = CFG["experiments"][experiment]
    data = dict(exp["data"])
    if data.get("root") is None and uses_data_root(data):
        data["root"] = CFG.get("data_root")
    return {"data": data, "model": exp["model"]}


def elasticity_histogram_source(wildcards, input):
    """--run-dir of a trained run, or --pretrained with the experiment's data/model as JSON."""
    if elasticity_pretrained(wildcards.experiment) is None:
        return "--run-dir " + shlex.quote(str(Path(input.run).parent))
    spec = {
        "experiment": wildcards.experiment,
        **elasticity_data_model(wildcards.experiment),
        "pretrained": analysis_config(wildcards.experiment, "elasticity")["pretrained"],
    }
    return "--pretrained " + shlex.quote(json.dumps(spec, sort_keys=True))


def elasticity_experiment_json(wildcards):
    return json.dumps(elasticity_data_model(wildcards.experiment), sort_keys=True)


def elasticity_figure_inputs_run(wildcards):
    exp, rid = wildcards.experiment, wildcards.run
    out = {}
    if elasticity_pretrained(exp) is None:
        out["elasticity"] = f"{RESULTS}/{exp}/analysis/elasticity/{rid}.nc"
    if analysis_config(exp, "elasticity").get("histograms") is not None:
        out["histograms"] = f"{RESULTS}/{exp}/analysis/elasticity/histograms/{rid}.nc"
    return out


def elasticity_figure_inputs_experiment(wildcards):
    exp = wildcards.experiment
    return {
        "elasticity": [
            f"{RESULTS}/{exp}/analysis/elasticity/{rid}.nc" for rid in run_ids(exp)
        ]
    }


FIGURE_JOBS.append(
    experiment_figures("elasticity", "run", elasticity_figure_inputs_run)
)
FIGURE_JOBS.append(
    experiment_figures("elasticity", "experiment", elasticity_figure_inputs_experiment)
)


def elasticity_targets(experiment):
    le = analysis_config(experiment, "elasticity")
    if le is None:
        return []
    if le.get("pretrained") is not None:
        if not le.get("histograms"):
            return []
        return [figure_dir(experiment, "elasticity", "run", "pretrained")]
    out = [
        figure_dir(experiment, "elasticity", "run", rid)
        for rid in figure_run_ids(experiment)
    ]
    out.append(figure_dir(experiment, "elasticity", "experiment"))
    cluster = le.get("cluster")
    if (
        cluster is not None
        and le["probes"] == "train"
        and cluster.get("he_su") is not None
    ):
        out.append(f"{RESULTS}/{experiment}/analysis/elasticity/he_su.nc")
    return out


TARGET_FUNCTIONS.append(elasticity_targets)


def elasticity_analysis_files(experiment):
    if analysis_config(experiment, "elasticity") is None:
        return []
    rids = ["pretrained"] if elasticity_pretrained(experiment) else run_ids(experiment)
    out = []
    for rid in rids:
        out += elasticity_figure_inputs_run(
            SimpleNamespace(experiment=experiment, run=rid)
        ).values()
    return out


ANALYSIS_FILES.append(elasticity_analysis_files)


# Experiments with pretrained weights train nothing: `all` keeps only their elasticity
# figures (and runs.csv), not the training curves, dashboards etc. that need a trained run.
def _elasticity_keep_target(target):
    for name in EXPERIMENTS:
        if elasticity_pretrained(name) is None:
            continue
        if target.startswith(f"{RESULTS}/{name}/"):
            return target.startswith(f"{RESULTS}/{name}/figures/elasticity/") or (
                target == f"{RESULTS}/{name}/runs.csv"
            )
    return True


TARGET_FILTERS.append(_elasticity_keep_target)


# The He & Su output and the per-run files share a folder; a run named "he_su" loses.
ruleorder: elasticity_he_su > elasticity_run


rule elasticity_run:
    input:
        unpack(lc_run_inputs),
    output:
        f"{RESULTS}/{{experiment}}/analysis/elasticity/{{run}}.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/elasticity/run_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: ANALYSIS_RES["threads"]
    resources:
        gpu=elasticity_gpu,
        mem_mb=ANALYSIS_RES["mem_mb"],
        runtime=ANALYSIS_RES["runtime"],
    params:
        run_dir=lambda wildcards, input: Path(input.run).parent,
        settings=stage_settings("elasticity", "run"),
        options=analysis_options,
    shell:
        "gendyn elasticity run {params.run_dir:q} {output:q} --settings {params.settings:q}"
        " --threads {threads} {params.options} 2> {log:q}"


rule elasticity_histograms:
    input:
        unpack(elasticity_histogram_inputs),
    output:
        f"{RESULTS}/{{experiment}}/analysis/elasticity/histograms/{{run}}.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/elasticity/histograms_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: ANALYSIS_RES["threads"]
    resources:
        gpu=elasticity_gpu,
        mem_mb=ANALYSIS_RES["mem_mb"],
        runtime=ANALYSIS_RES["runtime"],
    params:
        settings=stage_settings("elasticity", "histograms"),
        source=elasticity_histogram_source,
        options=analysis_options,
    shell:
        "gendyn elasticity histograms {output:q} {params.source} --settings {params.settings:q}"
        " --threads {threads} {params.options} 2> {log:q}"


rule elasticity_he_su:
    output:
        f"{RESULTS}/{{experiment}}/analysis/elasticity/he_su.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/elasticity/he_su.log",
    conda:
        "../../envs/analysis.yaml"
    threads: ANALYSIS_RES["threads"]
    resources:
        mem_mb=ANALYSIS_RES["mem_mb"],
        runtime=ANALYSIS_RES["runtime"],
    params:
        settings=stage_settings("elasticity", "he-su"),
        experiment=elasticity_experiment_json,
        options=analysis_options,
    shell:
        "gendyn elasticity he-su {output:q} --experiment {params.experiment:q}"
        " --settings {params.settings:q} --threads {threads} {params.options} 2> {log:q}"
