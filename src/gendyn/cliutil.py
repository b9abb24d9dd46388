"""Command-line plumbing shared by every measure's CLI: one shape for every analysis stage.

Every stage subcommand reads the same options, so settings and resources reach every measure
the same way (the workflow passes them from the config):

    gendyn <measure> <stage> [INPUT ...] OUT.nc --settings JSON [--set KEY=VALUE ...]
        [--threads N] [--mem-budget-mb MIB] [--scheduler ADDRESS] [--data-root DIR]

``--settings`` is the measure's settings mapping as JSON (schema defaults fill the rest),
``--set`` overrides single (dotted) keys, the last three are the job's resources
(``resources.analysis``). The handler validates the settings (:func:`settings_from_args`),
runs the stage inside :func:`gendyn.parallel.analysis_job` and writes its dataset atomically.
Keep imports light: every ``gendyn`` invocation imports the measure CLIs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["add_stage", "settings_from_args", "job_from_args", "run_stage", "lazy"]

logger = logging.getLogger(__name__)


def lazy(target: str) -> Callable[..., Any]:
    """``"gendyn.lc.stage:compute"`` → a function that imports its target on first call."""
    module, _, name = target.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = name
    call.__qualname__ = target
    return call


def add_stage(
    subparsers: Any,
    name: str,
    help: str,
    *,
    section: str,
    stage: str,
    measure: str,
    inputs: tuple[str, ...] = ("run",),
    encoding: Mapping[str, Any] | None = None,
    keywords: Callable[[argparse.Namespace], dict[str, Any]] | None = None,
    after: Callable[[argparse.Namespace, Any], None] | None = None,
) -> argparse.ArgumentParser:
    """Add one analysis-stage subcommand.

    Parameters
    ----------
    subparsers : argparse subparsers action of the measure's command
    name, help : the subcommand and its one-line help
    section : settings section for :func:`gendyn.config.stage_settings` (``"lc"``)
    stage : ``"module:function"`` of the stage, called as ``fn(*inputs, settings, job=job)`` and
        returning a Dataset
    measure : the ``measure`` attribute of the written netCDF file
    inputs : positional inputs before OUT, each passed to the stage in this order:
        ``"run"`` (RUN_DIR, passed as a :class:`gendyn.stage.RunSource`), ``"experiment"``
        (``results/{experiment}``, a Path), ``"analyses"`` (one or more analysis files, a list
        of Paths)
    encoding : netCDF encoding of the output
    keywords : ``args -> {name: value}`` of keyword inputs the stage takes from options the
        caller adds to the returned parser (e.g. ``--run-dir`` or ``--pretrained``)
    after : ``(args, dataset)`` called once the dataset is written (e.g. to write a CSV beside it)
    """
    from gendyn.parallel import default_mem_budget_mb

    p = subparsers.add_parser(name, help=help, description=help)
    for kind in inputs:
        p.add_argument(kind, nargs="+" if kind == "analyses" else None, help=_INPUT_HELP[kind])
    p.add_argument("out", help="output netCDF file")
    add_settings_arguments(p, section)
    p.add_argument("--threads", type=int, default=1, help="CPU threads of torch, BLAS and dask (resources.analysis.threads)")
    p.add_argument(
        "--mem-budget-mb", type=int, default=None,
        help=f"memory budget of one chunked stage, MiB (resources.analysis.mem_budget_mb; default {default_mem_budget_mb()})",
    )  # fmt: skip
    p.add_argument("--scheduler", default=None, help="dask.distributed scheduler address (default: the job's threads)")
    p.add_argument("--data-root", default=None, help="root of on-disk datasets when the run config has none")
    p.set_defaults(func=run_stage, stage_fn=lazy(stage), section=section, measure=measure, inputs=tuple(inputs),
                   encoding=dict(encoding or {}), keywords=keywords, after=after, stage_command=p.prog)  # fmt: skip
    return p


_INPUT_HELP = {
    "run": "run directory (run.h5 + checkpoints.h5) or its run.h5",
    "experiment": "experiment folder results/{experiment} (runs.csv, runs/*/run.h5)",
    "analyses": "analysis files (.nc) of the experiment's runs",
}


def add_settings_arguments(p: argparse.ArgumentParser, section: str) -> None:
    """``--settings JSON`` and ``--set KEY=VALUE`` of a command that reads ``section``."""
    p.add_argument("--settings", default=None, help=f"settings as JSON ({section}; schema defaults fill the rest)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override one (dotted) settings key; the value is YAML, e.g. --set radii='[0.1, 1]'",
    )  # fmt: skip


def settings_from_args(section: str, args: argparse.Namespace) -> dict[str, Any]:
    """The validated settings of a command (``--settings`` then ``--set``)."""
    from gendyn.config import parse_overrides, stage_settings

    return stage_settings(section, args.settings, parse_overrides(args.set), source="--settings")


def job_from_args(args: argparse.Namespace) -> Any:
    """The :class:`gendyn.parallel.AnalysisJob` of a stage command."""
    from gendyn.parallel import AnalysisJob

    return AnalysisJob.create(args.threads, args.mem_budget_mb, args.scheduler)


def run_stage(args: argparse.Namespace) -> int:
    """Handler of every stage command: lock → settings → job → stage → verified netCDF.

    Holds the output's lock (:mod:`gendyn.locks`) from start to publication, so a second writer
    of the same file fails at once naming this one, and removes temporary files a killed writer
    of it left. A run that diverged (``on_divergence: record``) flows through: its analysis
    covers the records before the divergence and carries ``diverged``, ``diverged_step``,
    ``diverged_loss``; if it has too few records for the stage
    (:class:`gendyn.stage.NotEnoughRecords`), a skipped-run file (:func:`gendyn.store.skipped_dataset`)
    takes the result's place, which figures and summaries show as diverged.
    """
    from gendyn import store
    from gendyn.locks import exclusive
    from gendyn.parallel import analysis_job
    from gendyn.stage import NotEnoughRecords, RunSource

    out = Path(args.out)
    command = getattr(args, "stage_command", f"gendyn {args.measure}")
    with exclusive(out, command):
        store.remove_orphans(out.parent, [out.name])
        settings = settings_from_args(args.section, args)
        positional: list[Any] = []
        source: RunSource | None = None
        for kind in args.inputs:
            value = getattr(args, kind)
            if kind == "run":
                source = RunSource(value, data_root=args.data_root)
                positional.append(source)
            elif kind == "analyses":
                positional.append([Path(v) for v in value])
            else:
                positional.append(Path(value))
        keywords = args.keywords(args) if args.keywords is not None else {}
        with analysis_job(job_from_args(args)) as job:
            try:
                ds = args.stage_fn(*positional, settings, job=job, **keywords)
            except NotEnoughRecords as e:
                if source is None or source.divergence is None:
                    raise
                step = source.divergence["step"]
                reason = f"the run diverged at step {step}; {e}"
                logger.warning("%s: %s; writing a skipped-run file", source.run_dir, reason)
                ds = store.skipped_dataset(reason, {**source.identity(), "source": str(source.run_file)})
        if source is not None:
            ds.attrs.update(source.divergence_attrs())
        store.write_netcdf(ds, out, measure=args.measure, encoding=args.encoding, stage=command)
    logger.info("wrote %s", out)
    if args.after is not None:
        args.after(args, ds)
    return 0
