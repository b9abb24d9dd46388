# Input functions and targets of workflow/rules/memorization.smk (paper 003).


def memorization_inputs(wildcards):
    """runs.csv and every run.h5 of the experiment."""
    exp = wildcards.experiment
    return {
        "runs": f"{RESULTS}/{exp}/runs.csv",
        "h5": [f"{RESULTS}/{exp}/runs/{rid}/run.h5" for rid in run_ids(exp)],
    }


def memorization_option(key):
    """experiments.<experiment>.analyses.memorization.<key> (schema defaults filled in)."""

    def get(wildcards):
        return analysis_config(wildcards.experiment, "memorization")[key]

    return get


def memorization_group_args(wildcards):
    group_by = analysis_config(wildcards.experiment, "memorization")["group_by"]
    return "" if group_by is None else "--group-by " + " ".join(group_by)


def memorization_targets(experiment):
    cfg = analysis_config(experiment, "memorization")
    if cfg is None:
        return []
    base = f"{RESULTS}/{experiment}"
    return [
        f"{base}/analysis/memorization/summary.nc",
        f"{base}/analysis/memorization/summary.csv",
        *(f"{base}/figures/memorization/{fig}.png" for fig in cfg["figures"]),
    ]


TARGET_FUNCTIONS.append(memorization_targets)
