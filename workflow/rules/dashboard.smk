# One view of a run (every measure on one step axis) and comparisons across a sweep.


def dashboard_enabled(experiment):
    return CFG["experiments"][experiment]["figures"]["dashboard"]


def run_analysis_inputs(experiment, run):
    """Per-run analysis outputs of the measures this experiment enables."""
    return {
        key: f"{RESULTS}/{experiment}/analysis/{key}/{run}.nc"
        for key in ("lc", "paths", "elasticity")
        if analysis_config(experiment, key) is not None
    }


def dashboard_inputs(wildcards):
    return {
        "run": f"{RESULTS}/{wildcards.experiment}/runs/{wildcards.run}/run.h5",
        **run_analysis_inputs(wildcards.experiment, wildcards.run),
    }


def dashboard_options(wildcards, input):
    return " ".join(
        f"--{key} {input[key]}"
        for key in ("lc", "paths", "elasticity")
        if key in input.keys()
    )


def compare_inputs(wildcards):
    files = [f"{RESULTS}/{wildcards.experiment}/runs.csv"]
    for rid in run_ids(wildcards.experiment):
        files.append(f"{RESULTS}/{wildcards.experiment}/runs/{rid}/run.h5")
        files.extend(run_analysis_inputs(wildcards.experiment, rid).values())
    return files


def swept_keys(experiment):
    return [
        k
        for k, v in CFG["experiments"][experiment].get("sweep", {}).items()
        if len(v) > 1
    ]


def dashboard_targets(experiment):
    if not dashboard_enabled(experiment):
        return []
    out = [
        f"{RESULTS}/{experiment}/figures/dashboard/{rid}.png"
        for rid in run_ids(experiment)
    ]
    out += [
        f"{RESULTS}/{experiment}/figures/compare/{key}.png"
        for key in swept_keys(experiment)
    ]
    return out


TARGET_FUNCTIONS.append(dashboard_targets)


rule dashboard:
    input:
        unpack(dashboard_inputs),
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/dashboard/{{run}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/dashboard/{{run}}.png",
            caption="../report/dashboard.rst",
            category="Runs - training curves and dashboards",
            subcategory="{experiment}: Dashboard: every measure of a run",
            labels={
                "experiment": "{experiment}",
                "run": "{run}",
                "figure": "dashboard",
            },
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/dashboard_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        analyses=dashboard_options,
        dpi=figure_option("dpi"),
        log_x=figure_option("log_x"),
    shell:
        "gendyn plot dashboard {input.run} {params.prefix} {params.analyses}"
        " --dpi {params.dpi} --log-x {params.log_x} 2> {log}"


rule compare:
    input:
        compare_inputs,
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/compare/{{key}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/compare/{{key}}.png",
            caption="../report/compare.rst",
            category="Runs - training curves and dashboards",
            subcategory="{experiment}: Comparison across the sweep",
            labels={
                "experiment": "{experiment}",
                "swept key": "{key}",
                "figure": "comparison",
            },
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/compare_{{key}}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        exp_dir=lambda wildcards: f"{RESULTS}/{wildcards.experiment}",
        dpi=figure_option("dpi"),
        log_x=figure_option("log_x"),
    shell:
        "gendyn plot compare {params.exp_dir} {wildcards.key} {params.prefix}"
        " --dpi {params.dpi} --log-x {params.log_x} 2> {log}"
