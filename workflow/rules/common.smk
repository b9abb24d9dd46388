# Config validation (before any job), sweep expansion, input functions and the shared
# helpers of every rule: settings slices (rerun triggers), resources, figure jobs, targets.
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from snakemake.exceptions import WorkflowError

from gendyn import registry
from gendyn.figures.names import SEED_KEYS
from gendyn.config import (
    ConfigError,
    active_experiments,
    expand_experiment,
    validate_config,
)
from gendyn.datainfo import uses_data_root

try:
    CFG = validate_config(config, source="workflow config")
    if CFG["smoke"]:
        # Smoke run: the same rules on a shrunk config and tiny stand-in files (gendyn.smoke).
        from gendyn.smoke import smoke_workflow_config

        CFG = smoke_workflow_config(CFG)
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


def print_plan_on_start():
    """`onstart`: print `gendyn plan` of this run (config `print_plan`; auto: when jobs ask for GPUs)."""
    from gendyn.plan import jobs_from_dag, print_plan, should_print

    if not should_print(CFG):
        return
    try:
        print_plan(CFG, jobs_from_dag(workflow.dag.needrun_jobs()))
    except Exception as e:  # the plan informs; it never stops a run
        print(f"gendyn plan: not printed ({type(e).__name__}: {e})", file=sys.stderr)


def run_ids(experiment):
    return list(RUNS[experiment])


def run_dir(experiment, run):
    return f"{RESULTS}/{experiment}/runs/{run}"


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


def analysis_config(experiment, key):
    """experiments.<experiment>.analyses.<key> with defaults, or None if not enabled."""
    return CFG["experiments"][experiment]["analyses"].get(key)


def experiments_with(key):
    return [name for name in EXPERIMENTS if analysis_config(name, key) is not None]


#: The plot options a figure job reads (its rerun trigger); `run_figures` only selects jobs.
JOB_VIEW_KEYS = ("dpi", "x_axis", "log_x", "dashboard")


def view_options(experiment):
    """experiments.<experiment>.figures: plot options of every figure job (dpi, axes)."""
    return CFG["experiments"][experiment]["figures"]


def job_view_options(experiment):
    """The plot options passed to figure jobs (the keys they read)."""
    opts = view_options(experiment)
    return {k: opts[k] for k in JOB_VIEW_KEYS if k in opts}


def figure_run_ids(experiment):
    """Runs that get per-run figures: all, or with `figures.run_figures: first_seed` those with
    the first value of a swept training.seed (the others still enter experiment figures).
    """
    ids = run_ids(experiment)
    if view_options(experiment)["run_figures"] != "first_seed":
        return ids
    seeds = CFG["experiments"][experiment].get("sweep", {}).get("training.seed")
    if not seeds:
        return ids
    return [
        rid for rid in ids if RUNS[experiment][rid][0].get("training.seed") == seeds[0]
    ]


# ---------------------------------------------------------------- settings reach every stage alike


def stage_settings(measure, stage):
    """Param function: the slice of analyses.<measure> that changes one stage's output, as JSON.

    The slice is the rerun trigger of the stage (gendyn.registry.Measure.stage_slice): a changed
    plot option reruns only figure jobs, a changed analysis key reruns only the stages that read it.
    """
    m = registry.get(measure)

    def get(wildcards):
        cfg = analysis_config(wildcards.experiment, measure)
        return json.dumps(m.stage_slice(cfg, stage), sort_keys=True)

    return get


def analysis_options(wildcards=None):
    """Resources of an analysis job as CLI options (memory budget, dask scheduler)."""
    args = f"--mem-budget-mb {ANALYSIS_RES['mem_budget_mb']}"
    if ANALYSIS_RES.get("dask_scheduler"):
        args += f" --scheduler {shlex.quote(ANALYSIS_RES['dask_scheduler'])}"
    return args


def optional_train_resource(key):
    """resources.train.<key> (gpu_model, constraint) for a rule's resources; a callable
    returning None (unset) makes Snakemake leave the resource out."""

    def get(wildcards):
        return TRAIN_RES.get(key)

    return get


# ---------------------------------------------------------------- figure jobs
#
# One figure job per (experiment, figure set, run) and per (experiment, figure set): it draws
# every figure of the set that its inputs allow into one folder (`gendyn figures`). A figure
# set is a registered measure or "views" (training curves, dashboard, comparisons). The rules
# are made from one template in figures.smk; each measure's rules file registers its jobs here.


@dataclass(frozen=True)
class FigureRule:
    """One figure-job rule of the template (figures.smk).

    output/log: path patterns with wildcards; inputs: wildcards -> {role: path or [paths]};
    settings: wildcards -> mapping passed as --settings (the rerun trigger); experiment/run:
    shell patterns naming them in titles and captions.
    """

    rule_name: str
    figure_set: str
    scope: str
    output: str
    log: str
    inputs: Callable
    settings: Callable
    experiment: str = "{wildcards.experiment}"
    run: str = "{wildcards.run}"


FIGURE_JOBS = []  # FigureRule entries, in registration order


def figure_dir(experiment, figure_set, scope, run=None):
    if scope == "run":
        return f"{RESULTS}/{experiment}/figures/{figure_set}/runs/{run}"
    return f"{RESULTS}/{experiment}/figures/{figure_set}/experiment"


def experiment_figures(figure_set, scope, inputs, settings=None):
    """The FigureRule of a figure set of an experiment (per run or for the whole experiment)."""
    if settings is None:
        settings = lambda wildcards: measure_figure_settings(
            wildcards.experiment, [figure_set]
        )
    run = "{run}" if scope == "run" else None
    suffix = "" if scope == "run" else "_experiment"
    return FigureRule(
        rule_name=f"{figure_set}_figures{suffix}",
        figure_set=figure_set,
        scope=scope,
        output=figure_dir("{experiment}", figure_set, scope, run),
        log=figure_dir("{experiment}", figure_set, scope, run).replace(
            "/figures/", "/logs/figures/", 1
        )
        + ".log",
        inputs=inputs,
        settings=settings,
        run="{wildcards.run}" if scope == "run" else "",
    )


def measure_figure_settings(experiment, measures):
    """{"view": plot options, measure: its figure keys} for a figure job (its rerun trigger)."""
    out = {"view": job_view_options(experiment)}
    for name in measures:
        cfg = analysis_config(experiment, name)
        if cfg is not None:
            out[name] = registry.get(name).figure_slice(cfg)
    return out


def views_measures(experiment):
    """Registered measures with a per-run analysis that this experiment enables."""
    return [
        m.name
        for m in registry.measures()
        if m.run_analysis is not None
        and analysis_config(experiment, m.name) is not None
    ]


def run_analysis_files(experiment, run):
    """{measure: analysis/<measure>/{run}.nc} of the per-run analyses the dashboard shows."""
    return {
        name: f"{RESULTS}/{experiment}/analysis/{registry.get(name).run_analysis}/{run}.nc"
        for name in views_measures(experiment)
    }


# Hooks the rules files fill in:
#   TARGET_FUNCTIONS: experiment -> list of that experiment's final targets;
#   EXTRA_TARGETS: () -> list of targets that belong to no experiment;
#   TARGET_FILTERS: target -> bool, False drops the target from `all`;
#   ANALYSIS_FILES: experiment -> list of the analysis files the workflow builds for it (the
#     reproduction index reads them, reproduction.smk).
TARGET_FUNCTIONS = []
EXTRA_TARGETS = []
TARGET_FILTERS = []
ANALYSIS_FILES = []


def swept_keys(experiment):
    """Keys that take several values, seed keys excepted (their runs are pooled, not compared)."""
    return [
        k
        for k, v in CFG["experiments"][experiment].get("sweep", {}).items()
        if len(v) > 1 and k not in SEED_KEYS
    ]


def views_targets(experiment):
    out = [f"{RESULTS}/{experiment}/runs.csv"]
    out += [
        figure_dir(experiment, "views", "run", rid)
        for rid in figure_run_ids(experiment)
    ]
    if view_options(experiment)["dashboard"] and swept_keys(experiment):
        out.append(figure_dir(experiment, "views", "experiment"))
    return out


TARGET_FUNCTIONS.append(views_targets)


def all_targets():
    targets = []
    for name in EXPERIMENTS:
        for fn in TARGET_FUNCTIONS:
            targets.extend(fn(name))
    for fn in EXTRA_TARGETS:
        targets.extend(fn())
    return [t for t in targets if all(keep(t) for keep in TARGET_FILTERS)]
