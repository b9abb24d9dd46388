"""Training curves of one run: loss and accuracy over training, LR decays marked."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from gendyn.figures.style import TEST_COLOR, TRAIN_COLOR, use_log_x

import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["training_curves", "lr_change_steps"]

logger = logging.getLogger(__name__)


def lr_change_steps(metrics: xr.Dataset) -> np.ndarray:
    """Steps at which the learning rate first takes a new value (LR decays)."""
    lr = metrics["lr"].values
    steps = metrics["step"].values
    if len(lr) < 2:
        return np.array([], dtype=np.int64)
    changed = np.flatnonzero(~np.isclose(lr[1:], lr[:-1], rtol=1e-9, atol=0)) + 1
    return steps[changed]


def training_curves(
    metrics: xr.Dataset,
    *,
    title: str = "",
    x_axis: str = "step",
    log_x: Any = "auto",
    attrs: Mapping[str, Any] | None = None,
) -> Figure:
    """Train/test loss and accuracy of one run over training, LR decays marked.

    Parameters
    ----------
    metrics : Dataset
        ``/metrics`` of ``run.h5`` (dim ``step``).
    title : str
    x_axis : {"step", "epoch"}
    log_x : {"auto", True, False}
        Log-scale x (plotted as step + 1); auto = when the record schedule is log-spaced.
    attrs : mapping, optional
        Root attributes of ``run.h5`` (for ``record_schedule`` and ``diverged``).
    """
    attrs = attrs or {}
    logx = use_log_x(log_x, attrs)
    steps = metrics["step"].values.astype(float)
    if x_axis == "epoch":
        x = metrics["epoch"].values.astype(float)
        xlabel = "epoch"
    else:
        x = steps
        xlabel = "optimisation step"
    if logx:
        x = x + (1 if x_axis == "step" else 1.0 / max(float(attrs.get("steps_per_epoch", 1)), 1.0))
        xlabel += " + 1" if x_axis == "step" else " (log)"
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9.0, 3.4), constrained_layout=True)
    for ax, kind in ((ax_loss, "loss"), (ax_acc, "acc")):
        for split, color in (("train", TRAIN_COLOR), ("test", TEST_COLOR)):
            var = f"{split}_{kind}"
            if var in metrics:
                ax.plot(x, metrics[var].values, color=color, marker="o", ms=2.5, lw=1.2, label=split)
        ax.set_xlabel(xlabel)
        if logx:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    if "batch_loss" in metrics and np.isfinite(metrics["batch_loss"].values).any():
        ax_loss.plot(x, metrics["batch_loss"].values, color="0.5", lw=0.8, ls="--", label="train batches")
    ax_loss.set_ylabel("loss")
    loss_vals = np.concatenate([metrics[v].values for v in ("train_loss", "test_loss") if v in metrics])
    if np.all(loss_vals[np.isfinite(loss_vals)] > 0) and np.isfinite(loss_vals).any():
        ax_loss.set_yscale("log")
    ax_acc.set_ylabel("accuracy (fraction)")
    ax_acc.set_ylim(-0.02, 1.02)
    decays = lr_change_steps(metrics)
    for s in decays:
        xs = s if x_axis == "step" else float(metrics["epoch"].sel(step=s))
        if logx:
            xs = xs + (1 if x_axis == "step" else 0)
        for ax in (ax_loss, ax_acc):
            ax.axvline(xs, color="0.3", ls=":", lw=1)
    handles, labels = ax_loss.get_legend_handles_labels()
    if len(decays):
        handles.append(plt.Line2D([], [], color="0.3", ls=":", lw=1))
        labels.append("LR decay")
    ax_loss.legend(handles, labels, fontsize=8, frameon=False)
    if int(attrs.get("diverged", 0)):
        title += f"  (diverged at step {attrs.get('diverged_step')})"
    fig.suptitle(title, fontsize=10)
    return fig
