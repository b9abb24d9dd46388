"""Experiment-level comparisons: every measure's curve across the values of one swept key.

Rows: train/test accuracy and test loss from ``/metrics``, then the rows each registered
measure (:mod:`gendyn.registry`) contributes through its ``figures.compare_rows`` for the runs
that have its per-run analysis. Colour = the compared key's value; line style = the values of
the other swept keys; runs that differ only in ``training.seed`` are one curve (mean over
seeds, min-max band).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from gendyn.figures.style import (
    SEED_BAND,
    XAxis,
    assignment_label,
    figure_legend,
    group_colors,
    group_styles,
    readable_key,
    readable_value,
    seed_band,
    set_log_y,
)

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

__all__ = ["sweep_comparison", "comparison_rows", "SEED_KEYS"]

logger = logging.getLogger(__name__)

from gendyn.figures.names import SEED_KEYS  # noqa: E402 - swept keys pooled, never compared

_METRIC_ROWS = {"train_acc": "train accuracy", "test_acc": "test accuracy", "test_loss": "test loss"}

Series = dict[str, tuple[np.ndarray, np.ndarray]]


def comparison_rows(
    metrics: Mapping[str, xr.Dataset],
    analyses: Mapping[str, Mapping[str, xr.Dataset]],
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    xa: XAxis | None = None,
) -> dict[str, Series]:
    """Rows of the comparison: row label -> {run: (x, values)} for the runs that have it.

    ``xa`` chooses x (steps by default, epochs, + 1 on a log axis).
    """
    from gendyn import registry
    from gendyn.config import stage_settings

    xa = xa or XAxis()
    settings = dict(settings or {})
    rows: dict[str, Series] = {}
    for var, label in _METRIC_ROWS.items():
        row = {r: (xa.values(ds), ds[var].values.astype(float)) for r, ds in metrics.items() if var in ds}
        if row:
            rows[label] = row
    for m in registry.measures():
        if m.run_analysis is None or not any(m.run_analysis in a for a in analyses.values()):
            continue
        figs = importlib.import_module(f"gendyn.{m.name}.figures")
        s = stage_settings(m.name, settings.get(m.name))
        for run, a in analyses.items():
            if m.run_analysis not in a:
                continue
            for label, da in figs.compare_rows(a[m.run_analysis], s).items():
                rows.setdefault(label, {})[run] = (xa.values(da), np.asarray(da.values, dtype=float))
    return rows


def _stack(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Curves of several seeds on the union of their x values (NaN where a seed has no record)."""
    xs = np.unique(np.concatenate([s[0] for s in series]))
    out = np.full((len(series), xs.size), np.nan)
    for i, (x, y) in enumerate(series):
        out[i, np.searchsorted(xs, x)] = y
    return xs, out


def sweep_comparison(
    runs: pd.DataFrame,
    key: str,
    metrics: Mapping[str, xr.Dataset],
    analyses: Mapping[str, Mapping[str, xr.Dataset]] | None = None,
    *,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    title: str = "",
    xa: XAxis | None = None,
    log_x: bool | None = None,
) -> Figure:
    """Curves of every measure over training, one colour per value of the swept ``key``.

    Parameters
    ----------
    runs : DataFrame
        ``runs.csv`` of the experiment (column ``run`` and the swept keys).
    key : str
        The swept key to colour by (a column of ``runs``).
    metrics : mapping run -> Dataset
        ``/metrics`` of each run.
    analyses : mapping run -> {measure: Dataset}, optional
        Per-run analysis outputs by measure name, as in
        :func:`gendyn.figures.dashboard.run_dashboard`.
    settings : mapping measure -> settings, optional
        Resolved settings per measure (their figure options choose what a row shows).
    xa : XAxis, optional
        The x axis (:func:`gendyn.figures.style.x_axis_for`); default optimisation steps.
    log_x : bool, optional
        Shorthand for ``XAxis(log=log_x)`` when ``xa`` is not given.

    Notes
    -----
    The other swept keys (except :data:`SEED_KEYS`) are line styles; runs that differ only in
    a seed key are one curve, their mean, with a min-max band. A row's y axis is logarithmic
    only for positive values spanning a decade or more.
    """
    analyses = dict(analyses or {})
    if key not in runs.columns:
        raise KeyError(f"runs.csv has no column {key!r}; swept keys: {[c for c in runs.columns if c != 'run']}")
    xa = xa or XAxis(log=bool(log_x))
    rows = comparison_rows(metrics, analyses, settings, xa)
    table = runs[runs["run"].astype(str).isin(metrics)].reset_index(drop=True)
    swept = [c for c in table.columns if c != "run" and table[c].nunique() > 1]
    others = [c for c in swept if c != key and c not in SEED_KEYS]
    seeds = [c for c in swept if c in SEED_KEYS]
    colors = group_colors(table[key].tolist())
    style_of = {}
    if others:
        combos = [tuple(r[c] for c in others) for _, r in table.iterrows()]
        styles = group_styles(combos)
        style_of = {str(r["run"]): styles[c] for (_, r), c in zip(table.iterrows(), combos)}
    # groups: (key value, other values) -> runs (the seeds)
    groups: dict[tuple[Any, ...], list[str]] = {}
    for _, r in table.iterrows():
        groups.setdefault((r[key], *(r[c] for c in others)), []).append(str(r["run"]))
    n_seeds = max((len(g) for g in groups.values()), default=1) if seeds else 1

    ncol = 2
    n_panels = len(rows)
    nrow = max(1, int(np.ceil(n_panels / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(10.0, 2.4 * nrow + 0.8), sharex=True, constrained_layout=True,
                             squeeze=False)  # fmt: skip
    for ax, (label, series) in zip(axes.flat, rows.items()):
        drawn = []
        for gkey, members in groups.items():
            have = [series[r] for r in members if r in series]
            if not have:
                continue
            x, y = _stack(have)
            seed_band(ax, x, y, color=colors[gkey[0]], ls=style_of.get(members[0], "-"), lw=1.3)
            drawn.append(y)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if "loss" in label and drawn:
            set_log_y(ax, *drawn)
        if "accuracy" in label:
            ax.set_ylim(-0.02, 1.02)
        xa.apply(ax, label=False)
    handles: list[Any] = [Line2D([], [], color=colors[v], lw=2) for v in colors]
    labels = [f"{readable_key(key)}: {readable_value(key, v)}" if key not in ("training.objective.name", "data.name")
              else readable_value(key, v) for v in colors]  # fmt: skip
    if others:
        combos = list(dict.fromkeys(tuple(r[c] for c in others) for _, r in table.iterrows()))
        styles = group_styles(combos)
        for c in combos:
            handles.append(Line2D([], [], color="0.2", ls=styles[c], lw=1.3))
            labels.append(assignment_label(dict(zip(others, c))))
    if n_seeds > 1:
        handles.append(Patch(color="0.5", alpha=0.3, lw=0))
        labels.append(f"mean of {n_seeds} seeds, band {SEED_BAND}")
    spare = list(axes.flat[n_panels:])
    for ax in spare:
        ax.set_axis_off()
    if spare:  # the legend fills the empty panel: no blank space, nothing covered
        spare[0].legend(handles, labels, loc="center", fontsize=8, frameon=False,
                        title=f"compared: {readable_key(key)}", title_fontsize=8)  # fmt: skip
    else:
        figure_legend(fig, handles, labels, side="right", title=f"compared: {readable_key(key)}", title_fontsize=8)
    for col in range(ncol):
        visible = [axes[r, col] for r in range(nrow) if axes[r, col].axison]
        if visible:
            visible[-1].xaxis.set_tick_params(labelbottom=True)
            visible[-1].set_xlabel(xa.label)
    fig.suptitle(title, fontsize=10)
    return fig
