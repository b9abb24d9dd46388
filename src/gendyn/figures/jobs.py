"""The workflow's figure job: every figure of one figure set for one run or one experiment.

A *figure set* is a registered measure (``lc``, ``paths``, ...) or ``views`` (training curves,
dashboard, sweep comparison). One job draws every figure of its set that the inputs and
settings allow, into one folder, as ``{figure}.pdf`` and ``{figure}.png``:

    gendyn figures SET {run,experiment} OUT_DIR --input ROLE=PATH [...] --settings JSON
        [--experiment NAME] [--run NAME]

``--input`` names each input file by its role (``lc``, ``regions``, ``run``, ``runs_table``,
...; repeat a role for several files). ``--settings`` is a JSON mapping: ``view`` holds the
experiment's plot options (``experiments.<name>.figures``: dpi, x_axis, log_x, dashboard) and
each measure name its settings' figure keys (e.g. ``{"lc": {"figures": {...}}}``). The set's
module (``gendyn.<set>.figures``, or :mod:`gendyn.figures.views` for ``views``) provides
``draw(job) -> iterable of (figure name, Figure)``; a ``pandas.DataFrame`` in place of a
Figure is written as ``{name}.csv`` (the numbers behind a figure).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["FigureJob", "run_figure_job", "register"]

logger = logging.getLogger(__name__)

#: Experiment plot options used when a job gets none (the schema's experiment.figures defaults).
_VIEW_DEFAULTS = {"dpi": 150, "x_axis": "auto", "log_x": "auto", "dashboard": True}


@lru_cache(maxsize=64)
def _open(path: str) -> Any:
    from gendyn import store

    return store.open_analysis(path).load()


@dataclass(frozen=True)
class FigureJob:
    """What one figure job draws from.

    Attributes
    ----------
    figure_set : str
        Measure name or ``"views"``.
    scope : {"run", "experiment"}
    experiment, run : str
        Names for titles (``run`` is empty for experiment jobs).
    inputs : mapping role -> tuple of Paths
    settings : mapping
        ``view`` (experiment plot options) and per-measure figure settings.
    """

    figure_set: str
    scope: str
    experiment: str = ""
    run: str = ""
    inputs: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def view(self) -> dict[str, Any]:
        """Experiment plot options with defaults (dpi, x_axis, log_x, dashboard)."""
        return {**_VIEW_DEFAULTS, **dict(self.settings.get("view") or {})}

    def has(self, role: str) -> bool:
        return bool(self.inputs.get(role))

    def many(self, role: str) -> tuple[Path, ...]:
        """Every input file of ``role`` (possibly none)."""
        return tuple(self.inputs.get(role, ()))

    def one(self, role: str) -> Path:
        """The single input file of ``role``."""
        files = self.many(role)
        if len(files) != 1:
            raise ValueError(
                f"gendyn figures {self.figure_set} {self.scope}: expected one --input {role}=PATH, got {len(files)}"
            )
        return files[0]

    def open(self, path: Path | str) -> Any:
        """An analysis file, checked and loaded (cached within the job)."""
        return _open(str(path))

    def skipped(self, path: Path | str) -> bool:
        """Whether an analysis input is a skipped-run file (:func:`gendyn.store.skipped_dataset`)."""
        from gendyn import store

        return Path(path).suffix == ".nc" and store.is_skipped(self.open(path))

    def divergences(self) -> dict[str, dict[str, Any]]:
        """Run -> ``{"step", "loss"}`` of every diverged run among the inputs ("" for a run job's run)."""
        from gendyn import store

        out: dict[str, dict[str, Any]] = {}
        for role, paths in self.inputs.items():
            for path in paths:
                if path.suffix == ".nc":
                    attrs = dict(self.open(path).attrs)
                elif path.suffix == ".h5":
                    attrs = store.check_run_file(path)
                else:
                    continue
                d = store.divergence(attrs)
                if d is not None:
                    run = "" if self.scope == "run" else str(attrs.get("run") or path.parent.name)
                    out[run] = d
        return out

    def measure_settings(self, name: str) -> dict[str, Any]:
        """Measure ``name``'s settings for figures: the given figure keys, schema defaults for the rest."""
        from gendyn.config import stage_settings

        return stage_settings(name, self.settings.get(name), source=f"--settings[{name!r}]")


def _module(figure_set: str) -> Any:
    if figure_set == "views":
        return importlib.import_module("gendyn.figures.views")
    from gendyn import registry

    registry.get(figure_set)  # a clear error for an unknown set
    return importlib.import_module(f"gendyn.{figure_set}.figures")


def run_figure_job(job: FigureJob, out_dir: Path | str) -> list[Path]:
    """Draw every figure of ``job`` into ``out_dir`` (PDF + PNG each); returns the PNG paths.

    Raises
    ------
    ValueError
        If the job draws nothing (its inputs allow no figure of the set).
    """
    from gendyn.figures import save_figure

    from gendyn.figures.diverged import DIVERGED_FIGURE, diverged_figure, divergence_note, mark_diverged

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dpi = int(job.view["dpi"])
    written: list[Path] = []
    diverged = job.divergences()
    analyses = [p for paths in job.inputs.values() for p in paths if p.suffix == ".nc"]
    drawn: Iterable[tuple[str, Any]]
    if job.scope == "run" and job.figure_set != "views" and analyses and all(job.skipped(p) for p in analyses):
        # Every analysis of this run was skipped (it diverged too early): say so instead.
        reasons = [str(job.open(p).attrs.get("skipped", "")) for p in analyses]
        d = next(iter(diverged.values()), {"step": "?", "loss": ""})
        title = f"{job.experiment} / {job.run}" if job.experiment else job.run
        drawn = [(DIVERGED_FIGURE, diverged_figure(title, d, reasons))]
    else:
        drawn = _module(job.figure_set).draw(job)
    note = divergence_note(diverged)
    for name, obj in drawn:
        if hasattr(obj, "to_csv"):  # a table that goes with a figure (e.g. its numbers)
            from gendyn.store import atomic_write_text

            atomic_write_text(out / f"{name}.csv", obj.to_csv(index=False))
            continue
        _, png = save_figure(mark_diverged(obj, note), out / name, dpi=dpi)
        logger.info("wrote %s", png)
        written.append(png)
    if not written:
        raise ValueError(f"gendyn figures {job.figure_set} {job.scope}: the inputs allow no figure; inputs: {dict(job.inputs)}")
    return written


def _parse_inputs(items: list[str]) -> dict[str, tuple[Path, ...]]:
    out: dict[str, list[Path]] = {}
    for item in items:
        role, sep, path = item.partition("=")
        if not sep or not role or not path:
            raise ValueError(f"--input {item!r}: expected ROLE=PATH, e.g. --input lc=results/x/analysis/lc/run.nc")
        out.setdefault(role, []).append(Path(path))
    return {k: tuple(v) for k, v in out.items()}


def cmd_figures(args: argparse.Namespace) -> int:
    settings = json.loads(args.settings) if args.settings else {}
    if not isinstance(settings, dict):
        raise ValueError(f"--settings: expected a JSON mapping, got {type(settings).__name__}")
    job = FigureJob(
        figure_set=args.figure_set,
        scope=args.scope,
        experiment=args.experiment or "",
        run=args.run or "",
        inputs=_parse_inputs(args.input),
        settings=settings,
    )
    run_figure_job(job, Path(args.out_dir))
    return 0


def register(subparsers: Any) -> None:
    """Add ``gendyn figures`` to the top-level parser."""
    p = subparsers.add_parser(
        "figures",
        help="every figure of a measure (or of the run views) for one run or one experiment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("figure_set", help="a measure (paths, lc, elasticity, neurashed, memorization) or 'views' (curves, dashboard, comparisons)")
    p.add_argument("scope", choices=["run", "experiment"])
    p.add_argument("out_dir", help="folder that receives {figure}.pdf and {figure}.png")
    p.add_argument("--input", action="append", default=[], metavar="ROLE=PATH", help="an input file and its role (repeat)")
    p.add_argument("--settings", default=None, help='JSON: {"view": {...}, "<measure>": {...}}')
    p.add_argument("--experiment", default=None, help="experiment name (titles)")
    p.add_argument("--run", default=None, help="run id (titles)")
    p.set_defaults(func=cmd_figures)
