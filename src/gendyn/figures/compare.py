"""Experiment-level comparisons: every measure's curve across the values of one swept key.

Rows: train/test accuracy and test loss from ``/metrics``, then the rows each registered
measure (:mod:`gendyn.registry`) contributes through its ``figures.compare_rows`` for the runs
that have its per-run analysis.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

import gendyn.figures.style  # noqa: F401 - headless backend first
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["sweep_comparison", "comparison_rows"]

logger = logging.getLogger(__name__)

_METRIC_ROWS = {"train_acc": "train accuracy", "test_acc": "test accuracy", "test_loss": "test loss"}

Series = dict[str, tuple[np.ndarray, np.ndarray]]


def comparison_rows(
    metrics: Mapping[str, xr.Dataset],
    analyses: Mapping[str, Mapping[str, xr.Dataset]],
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Series]:
    """Rows of the comparison: row label -> {run: (steps, values)} for the runs that have it."""
    from gendyn import registry
    from gendyn.config import stage_settings

    settings = dict(settings or {})
    rows: dict[str, Series] = {}
    for var, label in _METRIC_ROWS.items():
        rows[label] = {
            r: (ds["step"].values.astype(float), ds[var].values.astype(float)) for r, ds in metrics.items() if var in ds
        }
    for m in registry.measures():
        if m.run_analysis is None or not any(m.run_analysis in a for a in analyses.values()):
            continue
        figs = importlib.import_module(f"gendyn.{m.name}.figures")
        s = stage_settings(m.name, settings.get(m.name))
        for run, a in analyses.items():
            if m.run_analysis not in a:
                continue
            for label, da in figs.compare_rows(a[m.run_analysis], s).items():
                rows.setdefault(label, {})[run] = (da["step"].values.astype(float), np.asarray(da.values, dtype=float))
    return rows


def sweep_comparison(
    runs: pd.DataFrame,
    key: str,
    metrics: Mapping[str, xr.Dataset],
    analyses: Mapping[str, Mapping[str, xr.Dataset]] | None = None,
    *,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    title: str = "",
    log_x: bool = False,
) -> Figure:
    """Curves of every measure over training, one colour per value of the swept ``key``.

    Parameters
    ----------
    runs : DataFrame
        ``runs.csv`` of the experiment (column ``run`` and the swept keys).
    key : str
        The swept key to colour by (a column of ``runs``). Runs that share a value (other
        keys differ, e.g. seeds) are drawn in the same colour.
    metrics : mapping run -> Dataset
        ``/metrics`` of each run.
    analyses : mapping run -> {measure: Dataset}, optional
        Per-run analysis outputs by measure name, as in
        :func:`gendyn.figures.dashboard.run_dashboard`.
    settings : mapping measure -> settings, optional
        Resolved settings per measure (their figure options choose what a row shows).
    log_x : bool
        Log x axis (step + 1).
    """
    analyses = dict(analyses or {})
    if key not in runs.columns:
        raise KeyError(f"runs.csv has no column {key!r}; swept keys: {[c for c in runs.columns if c != 'run']}")
    rows = comparison_rows(metrics, analyses, settings)
    values = list(dict.fromkeys(runs[key].tolist()))
    cmap = plt.get_cmap("viridis")
    colors = {v: cmap(i / max(len(values) - 1, 1)) for i, v in enumerate(values)}
    ncol = 2
    nrow = int(np.ceil(len(rows) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(9.0, 2.3 * nrow + 0.6), sharex=True, constrained_layout=True, squeeze=False)
    off = 1.0 if log_x else 0.0
    for ax, (label, series) in zip(axes.flat, rows.items()):
        seen: set = set()
        for _, row in runs.iterrows():
            s = series.get(row["run"])
            if s is None:
                continue
            x, y = s
            v = row[key]
            ax.plot(x + off, y, color=colors[v], lw=1.1, marker="o", ms=1.8, label=f"{key} = {v}" if v not in seen else None)
            seen.add(v)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if log_x:
            ax.set_xscale("log")
    for ax in axes.flat[len(rows) :]:
        ax.set_visible(False)
    for col in range(ncol):
        visible = [axes[r, col] for r in range(nrow) if axes[r, col].get_visible()]
        if visible:
            visible[-1].xaxis.set_tick_params(labelbottom=True)
            visible[-1].set_xlabel("optimisation step" + (" + 1" if log_x else ""))
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside upper right", fontsize=8, frameon=False, ncol=min(len(handles), 4))
    fig.suptitle(title, fontsize=10)
    return fig
