# Paper 002 (local elasticity): LE between tracked images at every record point of a run,
# the paper's Fig. 5 histograms at the final (or pretrained) weights, LE clustering and
# He & Su's protocol. Settings: experiments.<name>.analyses.elasticity.
import shlex


def elasticity_settings(wildcards):
    """The analysis settings without plot options: a change reruns compute and figures."""
    cfg = dict(analysis_config(wildcards.experiment, "elasticity"))
    cfg.pop("figures", None)
    cfg.pop("gpu", None)  # a resource, not a setting
    return json.dumps(cfg, sort_keys=True)


def elasticity_figure_option(key):
    def get(wildcards):
        return analysis_config(wildcards.experiment, "elasticity")["figures"][key]

    return get


def elasticity_pretrained(experiment):
    """The `pretrained` block of an experiment (weights given: it trains nothing), or None."""
    le = analysis_config(experiment, "elasticity")
    return None if le is None else le.get("pretrained")


def elasticity_gpu(wildcards):
    return analysis_config(wildcards.experiment, "elasticity")["gpu"]


def elasticity_run_files(wildcards):
    return [
        f"{RESULTS}/{wildcards.experiment}/analysis/elasticity/{rid}.nc"
        for rid in run_ids(wildcards.experiment)
    ]


def elasticity_histogram_inputs(wildcards):
    pre = elasticity_pretrained(wildcards.experiment)
    if pre is None:
        run_dir = f"{RESULTS}/{wildcards.experiment}/runs/{wildcards.run}"
        return {
            "run": f"{run_dir}/run.h5",
            "checkpoints": f"{run_dir}/checkpoints.h5",
        }
    if not Path(pre["weights"]).is_file():
        raise WorkflowError(
            f"experiments.{wildcards.experiment}.analyses.elasticity.pretrained.weights: "
            f"{pre['weights']!r} does not exist; give the path of a local state dict "
            "(gendyn never downloads weights)"
        )
    return {"weights": pre["weights"]}


def elasticity_histogram_source(wildcards, input):
    """--run-dir of a trained run, or --pretrained with the experiment's data/model as JSON."""
    if elasticity_pretrained(wildcards.experiment) is None:
        return f"--run-dir {Path(input.run).parent}"
    exp = CFG["experiments"][wildcards.experiment]
    spec = {
        "experiment": wildcards.experiment,
        "data": {
            **exp["data"],
            "root": exp["data"].get("root") or CFG.get("data_root"),
        },
        "model": exp["model"],
        "pretrained": exp["analyses"]["elasticity"]["pretrained"],
    }
    return "--pretrained " + shlex.quote(json.dumps(spec, sort_keys=True))


def elasticity_experiment_json(wildcards):
    exp = CFG["experiments"][wildcards.experiment]
    data = {**exp["data"], "root": exp["data"].get("root") or CFG.get("data_root")}
    return json.dumps({"data": data, "model": exp["model"]}, sort_keys=True)


def elasticity_targets(experiment):
    le = analysis_config(experiment, "elasticity")
    if le is None:
        return []
    figs = f"{RESULTS}/{experiment}/figures/elasticity"
    if le.get("pretrained") is not None:
        return [f"{figs}/histograms_pretrained.png"] if le.get("histograms") else []
    out = [f"{figs}/training.png"]
    for rid in run_ids(experiment):
        out.append(f"{figs}/classes_{rid}.png")
        if le.get("histograms") is not None:
            out.append(f"{figs}/histograms_{rid}.png")
    cluster = le.get("cluster")
    if cluster is not None and le["probes"] == "train":
        out.append(f"{figs}/clustering.png")
        if cluster.get("he_su") is not None:
            out.append(f"{RESULTS}/{experiment}/analysis/elasticity/he_su.nc")
    return out


TARGET_FUNCTIONS.append(elasticity_targets)


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
        run=f"{RESULTS}/{{experiment}}/runs/{{run}}/run.h5",
        checkpoints=f"{RESULTS}/{{experiment}}/runs/{{run}}/checkpoints.h5",
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
        settings=elasticity_settings,
        run_dir=lambda wildcards, input: Path(input.run).parent,
        dask=dask_args(),
    shell:
        "gendyn elasticity run {params.run_dir} {output} --settings {params.settings:q}"
        " --threads {threads} {params.dask} 2> {log}"


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
        settings=elasticity_settings,
        source=elasticity_histogram_source,
        dask=dask_args(),
    shell:
        "gendyn elasticity histograms {output} {params.source} --settings {params.settings:q}"
        " --threads {threads} {params.dask} 2> {log}"


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
        settings=elasticity_settings,
        experiment=elasticity_experiment_json,
    shell:
        "gendyn elasticity he-su {output} --experiment {params.experiment:q}"
        " --settings {params.settings:q} --threads {threads} 2> {log}"


rule elasticity_figure_training:
    input:
        elasticity_run_files,
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/elasticity/training.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/elasticity/training.png",
            caption="../report/elasticity_training.rst",
            category="Paper 002 - local elasticity",
            subcategory="{experiment}: Local elasticity",
            labels={"experiment": "{experiment}", "figure": "LE over training"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/elasticity/figure_training.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        dpi=figure_option("dpi"),
        x_axis=elasticity_figure_option("x_axis"),
        log_x=lambda wildcards: (
            "--log-x" if elasticity_figure_option("log_x")(wildcards) else ""
        ),
        labels=lambda wildcards: " ".join(run_ids(wildcards.experiment)),
    shell:
        "gendyn elasticity plot training {params.prefix} {input} --labels {params.labels}"
        " --x-axis {params.x_axis} {params.log_x} --dpi {params.dpi}"
        " --title {wildcards.experiment:q} 2> {log}"


rule elasticity_figure_classes:
    input:
        f"{RESULTS}/{{experiment}}/analysis/elasticity/{{run}}.nc",
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/elasticity/classes_{{run}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/elasticity/classes_{{run}}.png",
            caption="../report/elasticity_classes.rst",
            category="Paper 002 - local elasticity",
            subcategory="{experiment}: Local elasticity",
            labels={
                "experiment": "{experiment}",
                "run": "{run}",
                "figure": "LE class pairs",
            },
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/elasticity/figure_classes_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        dpi=figure_option("dpi"),
        stat=elasticity_figure_option("matrix_stat"),
    shell:
        "gendyn elasticity plot classes {params.prefix} {input} --stat {params.stat}"
        " --dpi {params.dpi} --title '{wildcards.experiment} / {wildcards.run}' 2> {log}"


rule elasticity_figure_clustering:
    input:
        elasticity_run_files,
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/elasticity/clustering.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/elasticity/clustering.png",
            caption="../report/elasticity_clustering.rst",
            category="Paper 002 - local elasticity",
            subcategory="{experiment}: Local elasticity",
            labels={"experiment": "{experiment}", "figure": "LE clustering"},
        ),
        table=f"{RESULTS}/{{experiment}}/figures/elasticity/clustering.csv",
    log:
        f"{RESULTS}/{{experiment}}/logs/elasticity/figure_clustering.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        dpi=figure_option("dpi"),
        x_axis=elasticity_figure_option("x_axis"),
        labels=lambda wildcards: " ".join(run_ids(wildcards.experiment)),
    shell:
        "gendyn elasticity plot clustering {params.prefix} {input} --labels {params.labels}"
        " --x-axis {params.x_axis} --table {output.table} --dpi {params.dpi}"
        " --title {wildcards.experiment:q} 2> {log}"


rule elasticity_figure_histograms:
    input:
        f"{RESULTS}/{{experiment}}/analysis/elasticity/histograms/{{run}}.nc",
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/elasticity/histograms_{{run}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/elasticity/histograms_{{run}}.png",
            caption="../report/elasticity_histograms.rst",
            category="Paper 002 - local elasticity",
            subcategory="{experiment}: Local elasticity",
            labels={
                "experiment": "{experiment}",
                "run": "{run}",
                "figure": "Fig. 5 LE histograms",
            },
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/elasticity/figure_histograms_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        dpi=figure_option("dpi"),
    shell:
        "gendyn elasticity plot histograms {params.prefix} {input} --dpi {params.dpi}"
        " --title '{wildcards.experiment} / {wildcards.run}' 2> {log}"
