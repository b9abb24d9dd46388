# The reproduction index (gendyn.reproduction): one row per claim of every paper figure, its
# verdict computed from the analysis files of the experiments (and neurashed studies) that
# declare the figure (`reproduces`), with the thresholds of `reproduction.thresholds`.
# Include after the measures' rules files (they fill ANALYSIS_FILES) and neurashed.smk.

from gendyn.reproduction.declare import PRETRAINED_RUN, declarations

try:
    REPRODUCTION = declarations(
        CFG,
        {
            name: {rid: cfg for rid, (_, cfg) in RUNS[name].items()}
            for name in EXPERIMENTS
        },
        NEURASHED_STUDIES,
        EXPERIMENTS,
    )
except ConfigError as e:
    raise WorkflowError(str(e)) from None


def reproduction_inputs(wildcards):
    """run.h5 of every declared run and the analysis files of every declaring experiment;
    the simulations of every declaring neurashed study."""
    files = []
    for exp, figures in REPRODUCTION["experiments"].items():
        rids = {rid for runs in figures.values() for rid in runs}
        files += [
            f"{run_dir(exp, rid)}/run.h5" for rid in rids if rid != PRETRAINED_RUN
        ]
        for fn in ANALYSIS_FILES:
            files += fn(exp)
    for study in REPRODUCTION["studies"]:
        files += [f"{RESULTS}/neurashed/{study}/{p}.nc" for p in NEURASHED_PHENOMENA]
    return sorted(set(files))


def reproduction_targets():
    return [f"{RESULTS}/reproduction.csv", f"{RESULTS}/reproduction.html"]


EXTRA_TARGETS.append(reproduction_targets)


# A light aggregation of finished files: it runs where the workflow runs (no cluster job).
rule reproduction:
    input:
        reproduction_inputs,
    output:
        csv=f"{RESULTS}/reproduction.csv",
        html=report(
            f"{RESULTS}/reproduction.html",
            caption="../report/reproduction.rst",
            category="Reproduction index",
            labels={"table": "claims and verdicts"},
        ),
        summary=f"{RESULTS}/reproduction_summary.html",
    log:
        f"{RESULTS}/logs/reproduction.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        results=lambda wildcards, output: Path(output.csv).parent,
        # The rerun triggers: every threshold, and which runs declare which figure.
        settings=json.dumps(CFG["reproduction"], sort_keys=True),
        declared=json.dumps(REPRODUCTION, sort_keys=True),
    shell:
        "gendyn reproduce {params.results:q} {output.csv:q} --html {output.html:q}"
        " --summary-html {output.summary:q} --settings {params.settings:q}"
        " --declared {params.declared:q} 2> {log:q}"
