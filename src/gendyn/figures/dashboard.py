"""One view of a run: every measure it has, on one shared step axis."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gendyn.figures import TEST_COLOR, TRAIN_COLOR, lr_change_steps

__all__ = ["run_dashboard", "dashboard_panels"]

logger = logging.getLogger(__name__)

RANDOM_COLOR = "tab:blue"
WITHIN_COLOR = "tab:purple"
BETWEEN_COLOR = "tab:orange"


def _steps(ds: xr.Dataset | xr.DataArray, off: float) -> np.ndarray:
    """Steps as x values; ``off`` = 1 on a log axis (step 0 is the initial model)."""
    return np.asarray(ds["step"].values, dtype=float) + off


def _pick_radius(lc: xr.Dataset, radius: float | None) -> float:
    radii = np.asarray(lc["radius"].values, dtype=float)
    target = 1.0 if radius is None else radius
    return float(radii[np.argmin(np.abs(np.log(radii) - np.log(target)))])


def _pick_layer(ds: xr.Dataset, layer: str | None) -> str:
    names = [str(v) for v in ds["layer"].values]
    if layer is not None:
        if layer not in names:
            raise KeyError(f"layer {layer!r} not in the paths analysis; layers: {names}")
        return layer
    if "layer_index" in ds.coords:
        idx = np.asarray(ds["layer_index"].values)
        real = [n for n, i in zip(names, idx) if int(i) > 0]
        # Paper 000 reads layer 2 by default; fall back to the first recorded layer.
        if len(real) >= 2:
            return real[1]
        if real:
            return real[0]
    return names[0]


def _panel_loss(ax: Axes, metrics: xr.Dataset, off: float) -> None:
    x = _steps(metrics, off)
    for split, color in (("train", TRAIN_COLOR), ("test", TEST_COLOR)):
        if f"{split}_loss" in metrics:
            ax.plot(x, metrics[f"{split}_loss"].values, color=color, marker="o", ms=2, lw=1, label=f"{split} loss")
    vals = np.concatenate([metrics[v].values for v in ("train_loss", "test_loss") if v in metrics])
    if vals.size and np.all(vals[np.isfinite(vals)] > 0):
        ax.set_yscale("log")
    ax.set_ylabel("loss")


def _panel_acc(ax: Axes, metrics: xr.Dataset, off: float) -> None:
    x = _steps(metrics, off)
    for name, color, ls in (
        ("train_acc", TRAIN_COLOR, "-"),
        ("test_acc", TEST_COLOR, "-"),
        ("heldout_acc", "0.4", "--"),
    ):
        if name in metrics:
            ax.plot(x, metrics[name].values, color=color, ls=ls, marker="o", ms=2, lw=1, label=name.replace("_", " "))
    ax.set_ylabel("accuracy (fraction)")
    ax.set_ylim(-0.02, 1.02)


def _panel_gradnorm(ax: Axes, metrics: xr.Dataset, off: float) -> bool:
    names = [v for v in metrics.data_vars if str(v).startswith("gradnorm_") and np.isfinite(metrics[v].values).any()]
    if not names:
        return False
    x = _steps(metrics, off)
    cmap = plt.get_cmap("viridis")
    for k, name in enumerate(names):
        ax.plot(x, metrics[name].values, color=cmap(k / max(len(names) - 1, 1)), lw=0.9, label=str(name)[9:])
    if "grad_norm" in metrics:
        ax.plot(x, metrics["grad_norm"].values, color="k", lw=1.4, label="total")
    ax.set_yscale("log")
    ax.set_ylabel("gradient norm")
    return True


def _panel_lc(ax: Axes, lc: xr.Dataset, radius: float | None, off: float) -> None:
    r = _pick_radius(lc, radius)
    sel = lc.sel(radius=r)
    x = _steps(sel, off)
    colors = {"train": TRAIN_COLOR, "test": TEST_COLOR, "random": RANDOM_COLOR}
    for split in [str(s) for s in lc["split"].values]:
        mean = sel["lc_mean"].sel(split=split).values
        line = ax.plot(x, mean, color=colors.get(split, "0.3"), marker="o", ms=2, lw=1, label=f"LC {split}")
        if "lc_std" in sel:
            std = sel["lc_std"].sel(split=split).values
            ax.fill_between(x, mean - 0.25 * std, mean + 0.25 * std, color=line[0].get_color(), alpha=0.15, lw=0)
    ax.set_ylabel(f"local complexity\n(r = {r:g})")


def _panel_paths(ax: Axes, paths: xr.Dataset, layer: str | None, off: float) -> None:
    lay = _pick_layer(paths, layer)
    sel = paths.sel(layer=lay)
    x = _steps(sel, off)
    for name, color, label in (
        ("cross_path_within", WITHIN_COLOR, "cross-path, same class"),
        ("cross_path_between", BETWEEN_COLOR, "cross-path, different class"),
        ("self_sim_mean", "k", "self-similarity"),
    ):
        if name in sel:
            ax.plot(x, sel[name].values, color=color, marker="o", ms=2, lw=1, label=label)
    ax.set_ylabel(f"path similarity\n({lay})")
    ax.set_ylim(-0.02, 1.02)


def _panel_le(ax: Axes, le: xr.Dataset, off: float) -> None:
    x = _steps(le, off)
    for name, color, label in (("within", WITHIN_COLOR, "LE same class"), ("between", BETWEEN_COLOR, "LE different class")):
        if name in le:
            ax.plot(x, np.asarray(le[name].values, dtype=float), color=color, marker="o", ms=2, lw=1, label=label)
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_ylabel("local elasticity")


def dashboard_panels(
    metrics: xr.Dataset,
    analyses: Mapping[str, xr.Dataset],
) -> list[str]:
    """Names of the panels :func:`run_dashboard` draws for these inputs, top to bottom."""
    panels = ["loss", "accuracy"]
    grad = [v for v in metrics.data_vars if str(v).startswith("gradnorm_") and np.isfinite(metrics[v].values).any()]
    if grad:
        panels.append("gradnorm")
    for key in ("lc", "paths", "elasticity"):
        if key in analyses:
            panels.append(key)
    return panels


def run_dashboard(
    metrics: xr.Dataset,
    analyses: Mapping[str, xr.Dataset] | None = None,
    *,
    attrs: Mapping[str, Any] | None = None,
    title: str = "",
    log_x: Any = "auto",
    lc_radius: float | None = None,
    paths_layer: str | None = None,
) -> Figure:
    """Every measure of one run on a shared optimisation-step axis.

    Parameters
    ----------
    metrics : Dataset
        ``/metrics`` of ``run.h5`` (dim ``step``): loss, accuracy, gradient norms.
    analyses : mapping, optional
        Per-run analysis outputs by measure: ``"lc"`` (``analysis/lc/{run}.nc``: ``lc_mean``,
        ``lc_std`` over (record, split, radius)), ``"paths"`` (``analysis/paths/{run}.nc``:
        ``cross_path_within``, ``cross_path_between``, ``self_sim_mean`` over (record, layer)),
        ``"elasticity"`` (``analysis/elasticity/{run}.nc``: ``within``, ``between`` over record).
        Each must carry a ``step`` coordinate on ``record``.
    attrs : mapping, optional
        Root attributes of ``run.h5`` (record schedule for ``log_x="auto"``).
    log_x : {"auto", True, False}
        Log x axis (plotted as step + 1); auto = when the record schedule is log-spaced.
    lc_radius : float, optional
        Radius of the LC panel (the stored radius nearest to it; default nearest to 1).
    paths_layer : str, optional
        Layer of the path panel (default: the second recorded layer, paper 000's choice).

    Returns
    -------
    Figure with one row per available measure; LR decays are dotted vertical lines.
    """
    analyses = dict(analyses or {})
    attrs = attrs or {}
    panels = dashboard_panels(metrics, analyses)
    if log_x == "auto":
        try:
            kind = json.loads(attrs.get("record_schedule", "{}")).get("kind")
        except (TypeError, ValueError):
            kind = None
        logx = kind in ("log", "lc")
    else:
        logx = log_x in (True, "true")
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 1.9 * len(panels) + 0.6), sharex=True, constrained_layout=True)
    axes = np.atleast_1d(axes)
    _draw(axes, panels, metrics, analyses, lc_radius, paths_layer, 1.0 if logx else 0.0)
    decays = lr_change_steps(metrics)
    for ax in axes:
        for s in decays:
            ax.axvline(s + (1 if logx else 0), color="0.3", ls=":", lw=1)
        if logx:
            ax.set_xscale("log")
    axes[-1].set_xlabel("optimisation step" + (" + 1" if logx else ""))
    if decays.size:
        axes[0].plot([], [], color="0.3", ls=":", lw=1, label="LR decay")
        axes[0].legend(fontsize=7, frameon=False, loc="best", ncol=2)
    fig.suptitle(title, fontsize=10)
    return fig


def _draw(
    axes: np.ndarray,
    panels: list[str],
    metrics: xr.Dataset,
    analyses: Mapping[str, xr.Dataset],
    lc_radius: float | None,
    paths_layer: str | None,
    off: float,
) -> None:
    for ax, panel in zip(axes, panels):
        if panel == "loss":
            _panel_loss(ax, metrics, off)
        elif panel == "accuracy":
            _panel_acc(ax, metrics, off)
        elif panel == "gradnorm":
            _panel_gradnorm(ax, metrics, off)
        elif panel == "lc":
            _panel_lc(ax, analyses["lc"], lc_radius, off)
        elif panel == "paths":
            _panel_paths(ax, analyses["paths"], paths_layer, off)
        elif panel == "elasticity":
            _panel_le(ax, analyses["elasticity"], off)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False, loc="best", ncol=2)
