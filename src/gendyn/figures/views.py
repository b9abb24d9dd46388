"""The ``views`` figure set: training curves and dashboard of a run, comparisons of an experiment.

Inputs of a run job: ``run`` (``run.h5``) and, per registered measure with a per-run analysis,
that file under the measure's name (``lc``, ``paths``, ``elasticity``). Inputs of an
experiment job: ``runs_table`` (``runs.csv``), ``run`` for every run and the per-run analyses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["draw"]

logger = logging.getLogger(__name__)


def _run_of(path: Path) -> str:
    """Run id of ``runs/{run}/run.h5`` or ``analysis/{measure}/{run}.nc``."""
    return path.parent.name if path.name.endswith(".h5") else path.stem


def _metrics(path: Path) -> tuple[Any, dict[str, Any]]:
    from gendyn import store

    attrs = store.check_run_file(path)
    return store.open_group(path, "metrics"), attrs


def _analysis_roles(job: Any) -> list[str]:
    from gendyn import registry

    return [m.name for m in registry.measures() if m.run_analysis is not None and job.has(m.name)]


def draw(job: Any) -> Iterator[tuple[str, Any]]:
    """Run scope: ``curves`` and (when ``view.dashboard``) ``dashboard``; experiment scope:
    ``compare_<key>`` for every key that takes more than one value in ``runs.csv`` (seed keys
    excepted: runs that differ only in their seed are pooled in every comparison)."""
    from gendyn.figures.compare import SEED_KEYS
    from gendyn.figures.style import x_axis_for

    view = job.view
    settings = {name: job.settings[name] for name in job.settings if name != "view"}
    if job.scope == "run":
        from gendyn.figures.curves import training_curves
        from gendyn.figures.dashboard import run_dashboard

        metrics, attrs = _metrics(job.one("run"))
        title = f"{attrs.get('experiment', '')} / {attrs.get('run', '')}"
        yield "curves", training_curves(metrics, title=title, x_axis=view["x_axis"], log_x=view["log_x"], attrs=attrs)
        if view["dashboard"]:
            # A skipped-run file (a run that diverged too early for a stage) has no panel.
            analyses = {m: job.open(job.one(m)) for m in _analysis_roles(job) if not job.skipped(job.one(m))}
            yield "dashboard", run_dashboard(
                metrics, analyses, settings=settings, attrs=attrs, title=f"{title}: every measure",
                log_x=view["log_x"], x_axis=view["x_axis"],
            )  # fmt: skip
        return

    import pandas as pd

    from gendyn.figures.compare import sweep_comparison

    table = pd.read_csv(job.one("runs_table"))
    metrics, attrs = {}, {}
    for path in job.many("run"):
        metrics[_run_of(path)], attrs[_run_of(path)] = _metrics(path)
    analyses: dict[str, dict[str, Any]] = {r: {} for r in metrics}
    for m in _analysis_roles(job):
        for path in job.many(m):
            if _run_of(path) in analyses and not job.skipped(path):
                analyses[_run_of(path)][m] = job.open(path)
    runs = [r for r in table["run"].astype(str) if r in metrics]
    table = table[table["run"].astype(str).isin(runs)]
    xa = x_axis_for(view, [attrs[r] for r in runs])
    for key in [c for c in table.columns if c != "run" and c not in SEED_KEYS and table[c].nunique() > 1]:
        yield f"compare_{key}", sweep_comparison(
            table, key, metrics, analyses, settings=settings, title=f"{job.experiment}: runs compared by {_key_name(key)}",
            xa=xa,
        )  # fmt: skip


def _key_name(key: str) -> str:
    from gendyn.figures.style import readable_key

    return readable_key(key)
