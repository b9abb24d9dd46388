# Config validation (before any job), sweep expansion and input functions.
import json
from pathlib import Path

from snakemake.exceptions import WorkflowError

from gendyn.config import (
    ConfigError,
    active_experiments,
    expand_experiment,
    validate_config,
)

try:
    CFG = validate_config(config, source="workflow config")
except ConfigError as e:
    raise WorkflowError(str(e)) from None

RESULTS = CFG["results_dir"]
EXPERIMENTS = active_experiments(CFG)
# Job resources per rule kind (config `resources`; defaults in the schema): threads, mem_mb and
# runtime of every submitted rule come from here; Slurm turns them into sbatch flags.
TRAIN_RES = CFG["resources"]["train"]
ANALYSIS_RES = CFG["resources"]["analysis"]
FIGURE_RES = CFG["resources"]["figures"]

try:
    RUNS = {
        name: {
            rid: (swept, cfg)
            for rid, swept, cfg in expand_experiment(
                name, CFG["experiments"][name], data_root=CFG.get("data_root")
            )
        }
        for name in EXPERIMENTS
    }
except ConfigError as e:
    raise WorkflowError(str(e)) from None


wildcard_constraints:
    experiment="|".join(EXPERIMENTS) or "__none__",
    run="[A-Za-z0-9][A-Za-z0-9_.+-]*",


def run_ids(experiment):
    return list(RUNS[experiment])


def run_config_json(wildcards):
    """The resolved configuration of one run: a param of rule run_config only."""
    try:
        return json.dumps(RUNS[wildcards.experiment][wildcards.run][1], sort_keys=True)
    except KeyError:
        raise WorkflowError(
            f"run {wildcards.run!r} is not part of experiment {wildcards.experiment!r}; "
            f"runs: {run_ids(wildcards.experiment)}"
        ) from None


def runs_table_json(wildcards):
    rows = [
        {"run": rid, "swept": swept}
        for rid, (swept, _) in RUNS[wildcards.experiment].items()
    ]
    return json.dumps(rows, sort_keys=True)


def figure_option(key):
    """A plot option of the experiment (workflow/schemas: experiment.figures)."""

    def get(wildcards):
        return CFG["experiments"][wildcards.experiment]["figures"][key]

    return get


def analysis_config(experiment, key):
    """experiments.<experiment>.analyses.<key> with defaults, or None if not enabled."""
    return CFG["experiments"][experiment]["analyses"].get(key)


def experiments_with(key):
    return [name for name in EXPERIMENTS if analysis_config(name, key) is not None]


def optional_train_resource(key):
    """resources.train.<key> (gpu_model, constraint) for a rule's resources; a callable
    returning None (unset) makes Snakemake leave the resource out."""

    def get(wildcards):
        return TRAIN_RES.get(key)

    return get


def dask_args():
    """CLI options of analysis stages: memory budget and dask scheduler (see gendyn.parallel)."""
    args = f"--mem-budget-mb {ANALYSIS_RES['mem_budget_mb']}"
    if ANALYSIS_RES.get("dask_scheduler"):
        args += f" --scheduler {ANALYSIS_RES['dask_scheduler']}"
    return args


# Hooks the rules files fill in:
#   TARGET_FUNCTIONS: experiment -> list of that experiment's final targets;
#   EXTRA_TARGETS: () -> list of targets that belong to no experiment;
#   TARGET_FILTERS: target -> bool, False drops the target from `all`.
TARGET_FUNCTIONS = []
EXTRA_TARGETS = []
TARGET_FILTERS = []


def all_targets():
    targets = []
    for name in EXPERIMENTS:
        targets.append(f"{RESULTS}/{name}/runs.csv")
        for rid in run_ids(name):
            targets.append(f"{RESULTS}/{name}/figures/curves/{rid}.png")
        for fn in TARGET_FUNCTIONS:
            targets.extend(fn(name))
    for fn in EXTRA_TARGETS:
        targets.extend(fn())
    return [t for t in targets if all(keep(t) for keep in TARGET_FILTERS)]
