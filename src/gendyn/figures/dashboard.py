"""One view of a run: every measure it has, on one shared step axis.

The top panels come from ``/metrics`` (loss, accuracy, gradient norms); below them, one panel
per registered measure (:mod:`gendyn.registry`) whose per-run analysis the run has, drawn by
that measure's ``figures.dashboard_panel`` with the measure's figure settings, so a measure
shows the same view here as in its own figures.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from gendyn.figures.curves import lr_change_steps
from gendyn.figures.style import TEST_COLOR, TRAIN_COLOR, use_log_x, x_offset

import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["run_dashboard", "dashboard_panels"]

logger = logging.getLogger(__name__)


def _steps(ds: xr.Dataset | xr.DataArray, off: float) -> np.ndarray:
    """Steps as x values; ``off`` = 1 on a log axis (step 0 is the initial model)."""
    return np.asarray(ds["step"].values, dtype=float) + off


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


def _measure_panels(analyses: Mapping[str, xr.Dataset]) -> list[str]:
    from gendyn import registry

    return [m.name for m in registry.measures() if m.run_analysis is not None and m.run_analysis in analyses]


def dashboard_panels(metrics: xr.Dataset, analyses: Mapping[str, xr.Dataset]) -> list[str]:
    """Names of the panels :func:`run_dashboard` draws for these inputs, top to bottom."""
    panels = ["loss", "accuracy"]
    grad = [v for v in metrics.data_vars if str(v).startswith("gradnorm_") and np.isfinite(metrics[v].values).any()]
    if grad:
        panels.append("gradnorm")
    return panels + _measure_panels(analyses)


def run_dashboard(
    metrics: xr.Dataset,
    analyses: Mapping[str, xr.Dataset] | None = None,
    *,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    attrs: Mapping[str, Any] | None = None,
    title: str = "",
    log_x: Any = "auto",
) -> Figure:
    """Every measure of one run on a shared optimisation-step axis.

    Parameters
    ----------
    metrics : Dataset
        ``/metrics`` of ``run.h5`` (dim ``step``): loss, accuracy, gradient norms.
    analyses : mapping, optional
        Per-run analysis outputs by measure name (``"lc"``: ``analysis/lc/{run}.nc``, ...),
        each with a ``step`` coordinate on ``record``.
    settings : mapping, optional
        Resolved settings per measure name (their figure options choose what a panel shows,
        e.g. the LC radius); missing ones take the schema defaults.
    attrs : mapping, optional
        Root attributes of ``run.h5`` (record schedule for ``log_x="auto"``).
    log_x : {"auto", True, False}
        Log x axis (plotted as step + 1); auto = when the record schedule is log-spaced.

    Returns
    -------
    Figure with one row per available measure; LR decays are dotted vertical lines.
    """
    from gendyn.config import stage_settings

    analyses = dict(analyses or {})
    settings = dict(settings or {})
    attrs = attrs or {}
    panels = dashboard_panels(metrics, analyses)
    logx = use_log_x(log_x, attrs)
    off = x_offset(logx)
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 1.9 * len(panels) + 0.6), sharex=True, constrained_layout=True)
    axes = np.atleast_1d(axes)
    for ax, panel in zip(axes, panels):
        if panel == "loss":
            _panel_loss(ax, metrics, off)
        elif panel == "accuracy":
            _panel_acc(ax, metrics, off)
        elif panel == "gradnorm":
            _panel_gradnorm(ax, metrics, off)
        else:
            figs = importlib.import_module(f"gendyn.{panel}.figures")
            figs.dashboard_panel(ax, analyses[panel], stage_settings(panel, settings.get(panel)), off)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False, loc="best", ncol=2)
    decays = lr_change_steps(metrics)
    for ax in axes:
        for s in decays:
            ax.axvline(s + off, color="0.3", ls=":", lw=1)
        if logx:
            ax.set_xscale("log")
    axes[-1].set_xlabel("optimisation step" + (" + 1" if logx else ""))
    if decays.size:
        axes[0].plot([], [], color="0.3", ls=":", lw=1, label="LR decay")
        axes[0].legend(fontsize=7, frameon=False, loc="best", ncol=2)
    fig.suptitle(title, fontsize=10)
    return fig
