"""Training curves of one run: loss and accuracy over training, LR decays marked."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from gendyn.figures.style import (
    DECAY_STYLE,
    SPLIT_COLORS,
    XAxis,
    decay_handle,
    figure_legend,
    marker_kw,
    set_log_y,
    x_axis_for,
)

import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["training_curves", "lr_change_steps", "batch_loss_label"]

logger = logging.getLogger(__name__)


def lr_change_steps(metrics: xr.Dataset) -> np.ndarray:
    """Steps at which the learning rate first takes a new value (LR decays)."""
    lr = metrics["lr"].values
    steps = metrics["step"].values
    if len(lr) < 2:
        return np.array([], dtype=np.int64)
    changed = np.flatnonzero(~np.isclose(lr[1:], lr[:-1], rtol=1e-9, atol=0)) + 1
    return steps[changed]


def batch_loss_label(attrs: Mapping[str, Any]) -> str:
    """Legend text of ``/metrics/batch_loss``: the optimised objective's minibatch mean.

    Under a gradient-splitting objective (paper 003, J′ = L_train - L_test) it is not a loss of
    the training set and may be negative, so the label says which it is.
    """
    objective = str(attrs.get("objective", "") or "")
    if objective and objective != "J":
        from gendyn.figures.style import readable_value

        return f"objective {readable_value('training.objective.name', objective)}, minibatch mean"
    return "train loss, minibatch mean"


def training_curves(
    metrics: xr.Dataset,
    *,
    title: str = "",
    x_axis: str = "auto",
    log_x: Any = "auto",
    attrs: Mapping[str, Any] | None = None,
) -> Figure:
    """Train/test loss and accuracy of one run over training, LR decays marked.

    Parameters
    ----------
    metrics : Dataset
        ``/metrics`` of ``run.h5`` (dim ``step``).
    title : str
    x_axis : {"auto", "step", "epoch"}
        auto = epochs when the run records once per epoch, else optimisation steps.
    log_x : {"auto", True, False}
        Log-scale x (plotted as x + 1); auto = when the record schedule is log-spaced.
    attrs : mapping, optional
        Root attributes of ``run.h5`` (``record_schedule``, ``objective``, ``diverged``).

    Notes
    -----
    The loss axis is logarithmic only when every loss drawn is positive and they span at least
    a decade (a J′ objective can be negative).
    """
    attrs = attrs or {}
    xa: XAxis = x_axis_for({"x_axis": x_axis, "log_x": log_x}, attrs)
    x = xa.values(metrics)
    mk = marker_kw(len(x))
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9.6, 3.4), constrained_layout=True)
    drawn: list[np.ndarray] = []
    for ax, kind in ((ax_loss, "loss"), (ax_acc, "acc")):
        for split in ("train", "test", "heldout"):
            var = f"{split}_{kind}"
            if var in metrics and np.isfinite(metrics[var].values).any():
                ax.plot(x, metrics[var].values, color=SPLIT_COLORS[split], lw=1.3, label="held-out" if split == "heldout" else split, **mk)
                if kind == "loss":
                    drawn.append(metrics[var].values)
        xa.apply(ax)
        ax.grid(alpha=0.3)
    if "batch_loss" in metrics and np.isfinite(metrics["batch_loss"].values).any():
        ax_loss.plot(x, metrics["batch_loss"].values, color="0.45", lw=0.9, ls="--", label=batch_loss_label(attrs))
        drawn.append(metrics["batch_loss"].values)
    ax_loss.set_ylabel("loss")
    if drawn:
        set_log_y(ax_loss, *drawn)
    ax_acc.set_ylabel("accuracy (fraction)")
    ax_acc.set_ylim(-0.02, 1.02)
    decays = lr_change_steps(metrics)
    for xs in xa.of_steps(decays, metrics):
        for ax in (ax_loss, ax_acc):
            ax.axvline(xs, **DECAY_STYLE)
    handles, labels = ax_loss.get_legend_handles_labels()
    h2, l2 = ax_acc.get_legend_handles_labels()
    for h, lab in zip(h2, l2):
        if lab not in labels:
            handles.append(h)
            labels.append(lab)
    if len(decays):
        handles.append(decay_handle())
        labels.append("LR decay")
    figure_legend(fig, handles, labels, side="bottom")
    if int(attrs.get("diverged", 0)):
        title += f"  (diverged at step {attrs.get('diverged_step')})"
    fig.suptitle(title, fontsize=10)
    return fig
