"""Experiment-level comparisons: every measure's curve across the values of one swept key."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from gendyn.figures.dashboard import _pick_layer, _pick_radius

__all__ = ["sweep_comparison", "comparison_rows"]

logger = logging.getLogger(__name__)


def comparison_rows(
    metrics: Mapping[str, xr.Dataset], analyses: Mapping[str, Mapping[str, xr.Dataset]]
) -> list[tuple[str, str]]:
    """(source, variable) rows the comparison draws, given what the runs have."""
    rows = [("metrics", "train_acc"), ("metrics", "test_acc"), ("metrics", "test_loss")]
    have = {m for a in analyses.values() for m in a}
    if "lc" in have:
        rows += [("lc", "train"), ("lc", "test")]
    if "paths" in have:
        rows += [("paths", "cross_path_within"), ("paths", "self_sim_mean")]
    if "elasticity" in have:
        rows += [("elasticity", "within"), ("elasticity", "between")]
    return rows


def _label(source: str, var: str) -> str:
    return {
        ("metrics", "train_acc"): "train accuracy",
        ("metrics", "test_acc"): "test accuracy",
        ("metrics", "test_loss"): "test loss",
        ("lc", "train"): "LC, train points",
        ("lc", "test"): "LC, test points",
        ("paths", "cross_path_within"): "cross-path sim.,\nsame class",
        ("paths", "self_sim_mean"): "self-similarity",
        ("elasticity", "within"): "LE, same class",
        ("elasticity", "between"): "LE, different class",
    }.get((source, var), var)


def _series(
    source: str, var: str, run: str, metrics: Mapping[str, xr.Dataset], analyses: Mapping[str, Mapping[str, xr.Dataset]]
) -> tuple[np.ndarray, np.ndarray] | None:
    if source == "metrics":
        ds = metrics[run]
        if var not in ds:
            return None
        return ds["step"].values.astype(float), ds[var].values.astype(float)
    ds = analyses.get(run, {}).get(source)
    if ds is None:
        return None
    if source == "lc":
        if var not in [str(s) for s in ds["split"].values]:
            return None
        sel = ds["lc_mean"].sel(split=var, radius=_pick_radius(ds, None))
    elif source == "paths":
        if var not in ds:
            return None
        sel = ds[var].sel(layer=_pick_layer(ds, None))
    else:
        if var not in ds:
            return None
        sel = ds[var]
    return sel["step"].values.astype(float), np.asarray(sel.values, dtype=float)


def sweep_comparison(
    runs: pd.DataFrame,
    key: str,
    metrics: Mapping[str, xr.Dataset],
    analyses: Mapping[str, Mapping[str, xr.Dataset]] | None = None,
    *,
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
        Per-run analysis outputs (``lc``, ``paths``, ``elasticity``), as in
        :func:`gendyn.figures.dashboard.run_dashboard`.
    log_x : bool
        Log x axis (step + 1).
    """
    analyses = dict(analyses or {})
    if key not in runs.columns:
        raise KeyError(f"runs.csv has no column {key!r}; swept keys: {[c for c in runs.columns if c != 'run']}")
    rows = comparison_rows(metrics, analyses)
    values = list(dict.fromkeys(runs[key].tolist()))
    cmap = plt.get_cmap("viridis")
    colors = {v: cmap(i / max(len(values) - 1, 1)) for i, v in enumerate(values)}
    ncol = 2
    nrow = int(np.ceil(len(rows) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(9.0, 2.3 * nrow + 0.6), sharex=True, constrained_layout=True, squeeze=False)
    off = 1.0 if log_x else 0.0
    for ax, (source, var) in zip(axes.flat, rows):
        seen: set = set()
        for _, row in runs.iterrows():
            s = _series(source, var, row["run"], metrics, analyses)
            if s is None:
                continue
            x, y = s
            v = row[key]
            ax.plot(x + off, y, color=colors[v], lw=1.1, marker="o", ms=1.8, label=f"{key} = {v}" if v not in seen else None)
            seen.add(v)
        ax.set_ylabel(_label(source, var))
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
