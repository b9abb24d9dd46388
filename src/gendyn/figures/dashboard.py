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
from gendyn.figures.style import (
    DECAY_STYLE,
    SPLIT_COLORS,
    XAxis,
    decay_handle,
    legend_outside,
    marker_kw,
    set_log_y,
    x_axis_for,
)

import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["run_dashboard", "dashboard_panels", "gradnorm_names"]

logger = logging.getLogger(__name__)


def _panel_loss(ax: Axes, metrics: xr.Dataset, xa: XAxis) -> None:
    x = xa.values(metrics)
    drawn = []
    for split in ("train", "test", "heldout"):
        var = f"{split}_loss"
        if var in metrics and np.isfinite(metrics[var].values).any():
            label = "held-out loss" if split == "heldout" else f"{split} loss"
            ax.plot(x, metrics[var].values, color=SPLIT_COLORS[split], lw=1.1, label=label, **marker_kw(len(x)))
            drawn.append(metrics[var].values)
    if drawn:
        set_log_y(ax, *drawn)
    ax.set_ylabel("loss")


def _panel_acc(ax: Axes, metrics: xr.Dataset, xa: XAxis) -> None:
    x = xa.values(metrics)
    for split in ("train", "test", "heldout"):
        var = f"{split}_acc"
        if var in metrics and np.isfinite(metrics[var].values).any():
            label = "held-out acc" if split == "heldout" else f"{split} acc"
            ax.plot(x, metrics[var].values, color=SPLIT_COLORS[split], lw=1.1, label=label, **marker_kw(len(x)))
    ax.set_ylabel("accuracy (fraction)")
    ax.set_ylim(-0.02, 1.02)


def gradnorm_names(metrics: xr.Dataset) -> list[str]:
    """Per-layer gradient-norm variables of ``/metrics`` the dashboard draws (``gradnorm_<layer>``).

    ``gradnorm_first_weight`` and ``gradnorm_first_weight_mean`` (paper 003's first-layer
    weight norm, a view of the first layer already drawn) are left to the memorization figures.
    """
    return [
        str(v)
        for v in metrics.data_vars
        if str(v).startswith("gradnorm_")
        and not str(v).startswith("gradnorm_first_weight")
        and np.isfinite(metrics[v].values).any()
    ]


def _panel_gradnorm(ax: Axes, metrics: xr.Dataset, xa: XAxis) -> bool:
    names = gradnorm_names(metrics)
    if not names:
        return False
    x = xa.values(metrics)
    cmap = plt.get_cmap("viridis")
    drawn = []
    for k, name in enumerate(names):
        color = cmap(0.78 * k / max(len(names) - 1, 1))
        ax.plot(x, metrics[name].values, color=color, lw=0.9, label=f"layer {name[9:]}", **marker_kw(len(x), size=2))
        drawn.append(metrics[name].values)
    if "grad_norm" in metrics:
        ax.plot(x, metrics["grad_norm"].values, color="k", lw=1.4, label="all parameters", **marker_kw(len(x), size=2))
        drawn.append(metrics["grad_norm"].values)
    set_log_y(ax, *drawn)
    ax.set_ylabel("gradient norm\n(last update before the record)")
    return True


def _measure_panels(analyses: Mapping[str, xr.Dataset]) -> list[str]:
    from gendyn import registry

    return [m.name for m in registry.measures() if m.run_analysis is not None and m.run_analysis in analyses]


def dashboard_panels(metrics: xr.Dataset, analyses: Mapping[str, xr.Dataset]) -> list[str]:
    """Names of the panels :func:`run_dashboard` draws for these inputs, top to bottom."""
    panels = ["loss", "accuracy"]
    if gradnorm_names(metrics):
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
    x_axis: str = "auto",
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
        Log x axis (plotted as x + 1); auto = when the record schedule is log-spaced.
    x_axis : {"auto", "step", "epoch"}
        auto = epochs when the run records once per epoch, else optimisation steps.

    Returns
    -------
    Figure with one row per available measure; LR decays are dotted vertical lines.
    """
    from gendyn.config import stage_settings

    analyses = dict(analyses or {})
    settings = dict(settings or {})
    attrs = attrs or {}
    panels = dashboard_panels(metrics, analyses)
    xa = x_axis_for({"x_axis": x_axis, "log_x": log_x}, attrs)
    fig, axes = plt.subplots(len(panels), 1, figsize=(8.6, 1.9 * len(panels) + 0.7), sharex=True, constrained_layout=True)
    axes = np.atleast_1d(axes)
    for ax, panel in zip(axes, panels):
        if panel == "loss":
            _panel_loss(ax, metrics, xa)
        elif panel == "accuracy":
            _panel_acc(ax, metrics, xa)
        elif panel == "gradnorm":
            _panel_gradnorm(ax, metrics, xa)
        else:
            figs = importlib.import_module(f"gendyn.{panel}.figures")
            figs.dashboard_panel(ax, analyses[panel], stage_settings(panel, settings.get(panel)), xa)
        ax.grid(alpha=0.3)
    decays = lr_change_steps(metrics)
    for ax in axes:
        for xs in xa.of_steps(decays, metrics):
            ax.axvline(xs, **DECAY_STYLE)
        xa.apply(ax, label=False)
    for k, ax in enumerate(axes):
        handles, labels = ax.get_legend_handles_labels()
        if k == 0 and decays.size:
            handles.append(decay_handle())
            labels.append("LR decay")
        legend_outside(ax, handles, labels)
    axes[-1].set_xlabel(xa.label)
    fig.suptitle(title, fontsize=10)
    return fig
