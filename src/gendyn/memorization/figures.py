"""Figures of paper 003 (memorization via gradient splitting).

One function per figure kind; each takes datasets and returns a ``Figure`` (no global
state). Seeds are aggregated per group: mean line, min-max band. :func:`draw` is the
workflow's figure job (experiment scope).

==================  =====================================================  ===============
function            plots                                                  paper
==================  =====================================================  ===============
accuracy_curves     train / test / held-out accuracy vs epoch per group    Figs. 1a, 2a-d
threshold_plot      epochs to threshold per group (bars or vs a size)      Figs. 1b, 2c
gradnorm_curves     first-layer weight-gradient Frobenius norm, log y      Sec. 4
gap_curves          train minus test accuracy vs epoch                     Fig. S1
basins_schematic    1-D loss with minima a and b, basin ratio (2/3)^n      Fig. 3
==================  =====================================================  ===============
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any

import gendyn.figures.style  # noqa: F401 - headless backend first
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from gendyn.memorization.summary import basin_ratio_log10

__all__ = [
    "FIGURES",
    "draw",
    "accuracy_curves",
    "threshold_plot",
    "gradnorm_curves",
    "gap_curves",
    "basins_schematic",
    "groups",
]

logger = logging.getLogger(__name__)

#: The figures of paper 003 (``analyses.memorization.figures``).
FIGURES = ("curves", "threshold", "gradnorm", "gap", "basins")
#: Basin-ratio dimension n of Fig. 3 ((2/3)^n).
BASINS_N_DIMS = 1000

SEED_KEY = "training.seed"
SPLIT_STYLES = {"train": "-", "test": "--", "heldout": ":"}
SPLIT_LABELS = {"train": "train", "test": "test (objective's)", "heldout": "held-out"}
_OBJECTIVE_LABELS = {"J": "J", "J_prime": "J′", "J0": "J⁰", "Jt": "Jᵗ"}


def _swept_keys(ds: xr.Dataset) -> list[str]:
    return [str(c) for c in ds.coords if ds[c].dims == ("run",) and c not in ("run", "objective")]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _label(key: str, value: Any) -> str:
    last = key.split(".")[-1]
    if key.endswith("objective.name"):
        return _OBJECTIVE_LABELS.get(str(value), str(value))
    if last == "name":
        return str(value)
    if _is_number(value):
        return f"{last}={value:g}"
    return f"{last}={value}"


def groups(ds: xr.Dataset, group_by: Sequence[str] | None = None) -> list[tuple[str, dict[str, Any], list[Any]]]:
    """Group the runs of ``ds`` (dim ``run``) by swept keys.

    Parameters
    ----------
    ds : Dataset with dim ``run`` and swept parameters as coordinates on ``run``.
    group_by : sequence of str, optional
        Coordinate names; None = every swept coordinate except ``training.seed``.

    Returns
    -------
    list of (label, {key: value}, [run ids]) in order of first appearance.
    """
    keys = [k for k in _swept_keys(ds) if k != SEED_KEY] if group_by is None else list(group_by)
    missing = [k for k in keys if k not in ds.coords]
    if missing:
        raise KeyError(f"group_by: {missing} are not swept keys of these runs; swept keys: {_swept_keys(ds)}")
    out: dict[tuple[Any, ...], tuple[str, dict[str, Any], list[Any]]] = {}
    for i, rid in enumerate(ds["run"].values):
        vals = tuple(ds[k].values[i].item() if hasattr(ds[k].values[i], "item") else ds[k].values[i] for k in keys)
        if vals not in out:
            label = ", ".join(_label(k, v) for k, v in zip(keys, vals)) or "all runs"
            out[vals] = (label, dict(zip(keys, vals)), [])
        out[vals][2].append(rid)
    return list(out.values())


def _colors(n: int, sequential: bool) -> list[Any]:
    if sequential and n > 1:
        cmap = plt.get_cmap("viridis")
        return [cmap(0.05 + 0.85 * i / (n - 1)) for i in range(n)]
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def _sequential(grps: list[tuple[str, dict[str, Any], list[Any]]]) -> bool:
    return len(grps) > 2 and len(grps[0][1]) == 1 and all(_is_number(next(iter(g[1].values()))) for g in grps)


def _grouped_axes(ds: xr.Dataset, group_by: Sequence[str] | None) -> tuple[list[Any], list[Any], np.ndarray, Figure, Any]:
    """The groups of runs, a colour per group, the epoch axis, and a fresh figure with one axes."""
    grps = groups(ds, group_by)
    colors = _colors(len(grps), _sequential(grps))
    fig, ax = plt.subplots(figsize=(7.4, 4.0), constrained_layout=True)
    return grps, colors, _epoch_axis(ds), fig, ax


def _band(ax: Any, x: np.ndarray, y: np.ndarray, color: Any, ls: str, label: str | None, lw: float = 1.4) -> None:
    """Mean over the first axis (seeds) as a line, min-max as a band."""
    with np.errstate(all="ignore"):
        finite = np.isfinite(y).any(axis=0)
        if not finite.any():
            return
        mean = np.nanmean(np.where(np.isfinite(y), y, np.nan)[:, finite], axis=0)
        lo = np.nanmin(y[:, finite], axis=0)
        hi = np.nanmax(y[:, finite], axis=0)
    ax.plot(x[finite], mean, color=color, ls=ls, lw=lw, label=label)
    if y.shape[0] > 1:
        ax.fill_between(x[finite], lo, hi, color=color, alpha=0.18, lw=0)


def _seed_note(ax: Any, grps: list[Any]) -> None:
    n = max(len(g[2]) for g in grps)
    if n > 1:
        ax.text(0.99, 0.01, f"mean of up to {n} seeds, band min-max", transform=ax.transAxes, ha="right",
                va="bottom", fontsize=7, color="0.4")


def _epoch_axis(ds: xr.Dataset) -> np.ndarray:
    return np.asarray(ds["epoch"].values, dtype=np.float64)


def _group_legend(ax: Any, grps: list[Any], colors: list[Any], extra: list[tuple[Any, str]] | None = None) -> None:
    handles = [Line2D([], [], color=c, lw=2) for c in colors]
    labels = [g[0] for g in grps]
    for h, lab in extra or []:
        handles.append(h)
        labels.append(lab)
    ax.legend(handles, labels, fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))


def accuracy_curves(
    ds: xr.Dataset,
    *,
    group_by: Sequence[str] | None = None,
    splits: Sequence[str] = ("train", "test", "heldout"),
    title: str = "",
    chance: float | None = None,
    k: float | None = None,
) -> Figure:
    """Accuracy vs epoch per group (paper 003 Figs. 1a, 2a-2d).

    Parameters
    ----------
    ds : Dataset, dims (``run``, ``epoch``)
        :func:`gendyn.memorization.summary.stack_epochs` of the experiment's runs, with
        ``train_acc``, ``test_acc`` and (``test_source: train_split``) ``heldout_acc``.
    group_by : sequence of str, optional
        Swept keys defining the colours (default: all but ``training.seed``).
    splits : sequence of {"train", "test", "heldout"}
        Curves drawn per group (solid, dashed, dotted).
    chance : float, optional
        Chance accuracy 1/C (grey line).
    k : float, optional
        J0 threshold (dotted red line).
    """
    grps, colors, x, fig, ax = _grouped_axes(ds, group_by)
    drawn = []
    for (label, _, rids), color in zip(grps, colors):
        sub = ds.sel(run=rids)
        for split in splits:
            var = f"{split}_acc"
            if var not in sub or not np.isfinite(sub[var].values).any():
                continue
            _band(ax, x, np.atleast_2d(sub[var].values), color, SPLIT_STYLES[split], None)
            if split not in drawn:
                drawn.append(split)
    extra: list[tuple[Any, str]] = [(Line2D([], [], color="k", ls=SPLIT_STYLES[s]), SPLIT_LABELS[s]) for s in drawn]
    if chance is not None:
        ax.axhline(chance, color="0.5", lw=0.8, ls="-.")
        extra.append((Line2D([], [], color="0.5", lw=0.8, ls="-."), f"chance {chance:.2g}"))
    if k is not None:
        ax.axhline(k, color="tab:red", lw=0.8, ls=":")
        extra.append((Line2D([], [], color="tab:red", lw=0.8, ls=":"), f"k = {k:g}"))
    _group_legend(ax, grps, colors, extra)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (fraction)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, float(np.nanmax(x)) if x.size else 1)
    ax.grid(alpha=0.3)
    _seed_note(ax, grps)
    ax.set_title(title, fontsize=9)
    return fig


def threshold_plot(summary: xr.Dataset, *, group_by: Sequence[str] | None = None, title: str = "") -> Figure:
    """Epochs to threshold per group (paper 003 Figs. 1b and 2c right).

    Parameters
    ----------
    summary : Dataset, dim ``run``
        ``analysis/memorization/summary.nc`` (``epochs_to_threshold``, ``censored_at`` and swept
        coordinates; attrs ``threshold_metric``, ``tau``).
    group_by : sequence of str, optional
        With exactly one numeric key (e.g. ``data.first_n``) among several, T is drawn against
        it, one line per remaining group; otherwise one bar per group.

    Notes
    -----
    Bars show the mean over the seeds that reached the threshold; every seed is a dot; a run
    that never reached it is an open triangle at its last epoch (a lower bound).
    """
    grps = groups(summary, group_by)
    t = summary["epochs_to_threshold"]
    cens = summary["censored_at"]
    metric = summary.attrs.get("threshold_metric", "train_acc")
    tau = summary.attrs.get("tau", float("nan"))
    keys = list(grps[0][1]) if grps else []
    numeric = [kk for kk in keys if all(_is_number(g[1][kk]) for g in grps)]
    fig, ax = plt.subplots(figsize=(7.0, 3.8), constrained_layout=True)
    cens_handle = Line2D([], [], ls="", marker="^", mfc="none", mec="0.3", label="not reached (lower bound)")
    any_cens = False
    if len(numeric) == 1 and len(keys) > 1:
        xkey = numeric[0]
        rest = [kk for kk in keys if kk != xkey]
        lines: dict[tuple[Any, ...], list[tuple[float, list[Any]]]] = {}
        for _, vals, rids in grps:
            lines.setdefault(tuple(vals[kk] for kk in rest), []).append((float(vals[xkey]), rids))
        colors = _colors(len(lines), False)
        for (key, pts), color in zip(lines.items(), colors):
            pts.sort()
            xs, means = [], []
            for xv, rids in pts:
                tv = t.sel(run=rids).values
                cv = cens.sel(run=rids).values
                ax.plot(np.full(np.isfinite(tv).sum(), xv), tv[np.isfinite(tv)], "o", color=color, ms=3, alpha=0.6)
                if np.isfinite(cv).any():
                    any_cens = True
                    ax.plot(np.full(np.isfinite(cv).sum(), xv), cv[np.isfinite(cv)], "^", mfc="none", mec=color)
                xs.append(xv)
                means.append(np.nanmean(tv) if np.isfinite(tv).any() else np.nan)
            label = ", ".join(_label(kk, v) for kk, v in zip(rest, key))
            ax.plot(xs, means, "-", color=color, lw=1.5, label=label)
        ax.set_xlabel(xkey.split(".")[-1])
        handles, labels = ax.get_legend_handles_labels()
    else:
        colors = _colors(len(grps), _sequential(grps))
        for i, ((label, _, rids), color) in enumerate(zip(grps, colors)):
            tv = t.sel(run=rids).values
            cv = cens.sel(run=rids).values
            if np.isfinite(tv).any():
                ax.bar(i, np.nanmean(tv), color=color, alpha=0.7, width=0.6)
                ax.plot(np.full(np.isfinite(tv).sum(), i), tv[np.isfinite(tv)], "o", color="k", ms=3)
            if np.isfinite(cv).any():
                any_cens = True
                ax.plot(np.full(np.isfinite(cv).sum(), i), cv[np.isfinite(cv)], "^", mfc="none", mec="0.3", ms=7)
        ax.set_xticks(range(len(grps)), [g[0] for g in grps], rotation=20 if len(grps) > 4 else 0, fontsize=8)
        handles, labels = [], []
    if any_cens:
        handles.append(cens_handle)
        labels.append(cens_handle.get_label())
    if handles:
        ax.legend(handles, labels, fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_ylabel(f"epochs to {metric} ≥ {tau:g}")
    top = np.nanmax(np.concatenate([t.values, cens.values, [1.0]]))
    ax.set_ylim(0, 1.12 * top)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(title, fontsize=9)
    return fig


def gradnorm_curves(ds: xr.Dataset, *, group_by: Sequence[str] | None = None, title: str = "") -> Figure:
    """First-layer weight-gradient Frobenius norm vs epoch, log y (paper 003 Sec. 4).

    Solid: the norm after the last backward of each epoch (``gradnorm_first_weight``, as in
    the author's code); thin dashed: its mean over the epoch's steps.
    """
    grps, colors, x, fig, ax = _grouped_axes(ds, group_by)
    for (_, _, rids), color in zip(grps, colors):
        sub = ds.sel(run=rids)
        for var, ls, lw in (("gradnorm_first_weight", "-", 1.4), ("gradnorm_first_weight_mean", "--", 0.8)):
            if var in sub:
                y = np.atleast_2d(sub[var].values).astype(float)
                y[y <= 0] = np.nan
                _band(ax, x, y, color, ls, None, lw=lw)
    extra = [
        (Line2D([], [], color="k", ls="-"), "last step of the epoch"),
        (Line2D([], [], color="k", ls="--", lw=0.8), "mean over the epoch"),
    ]
    _group_legend(ax, grps, colors, extra)
    _seed_note(ax, grps)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("‖∂loss/∂W₁‖_F (first-layer weight)")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title, fontsize=9)
    return fig


def gap_curves(ds: xr.Dataset, *, group_by: Sequence[str] | None = None, title: str = "") -> Figure:
    """Train minus test accuracy vs epoch per group (paper 003 Fig. S1)."""
    grps, colors, x, fig, ax = _grouped_axes(ds, group_by)
    for (_, _, rids), color in zip(grps, colors):
        sub = ds.sel(run=rids)
        gap = sub["gap"] if "gap" in sub else sub["train_acc"] - sub["test_acc"]
        _band(ax, x, np.atleast_2d(gap.values), color, "-", None)
    _group_legend(ax, grps, colors)
    _seed_note(ax, grps)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("train − test accuracy")
    ax.set_ylim(-0.25, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    return fig


def basins_schematic(*, n_dims: int = 1000, title: str = "") -> Figure:
    """Paper 003 Fig. 3: two minima of a 1-D loss; b is twice as stable as a.

    Each minimum has a flat, delta-stable bottom (a: width 2, b: width 4) and slopes of
    width m = 1 on both sides, so the basins have sizes 4 and 6: ratio a/b = 2/3 in one
    dimension, (2/3)^n in n dimensions (n = 1000: 1 / 1.23e176).
    """
    xs = [0.0, 1.0, 3.0, 4.0, 5.0, 9.0, 10.0]  # a: slope m, s_a = 2, slope m; b: slope m, s_b = 4, slope m
    ys = [1.0, 0.25, 0.25, 1.0, 0.0, 0.0, 1.0]
    fig, ax = plt.subplots(figsize=(6.0, 3.4), constrained_layout=True)
    ax.plot(xs, ys, color="k", lw=1.8)
    ax.annotate("a", (2.0, 0.25), xytext=(2.0, 0.42), ha="center", fontsize=12)
    ax.annotate("b", (7.0, 0.0), xytext=(7.0, 0.12), ha="center", fontsize=12)
    arrows = (
        (1.0, 3.0, 0.16, "$s_a$"),
        (0.0, 1.0, 0.16, "m"),
        (3.0, 4.0, 0.16, "m"),
        (5.0, 9.0, -0.09, "$s_b$"),
        (4.0, 5.0, -0.09, "m"),
        (9.0, 10.0, -0.09, "m"),
    )
    for x0, x1, y, text in arrows:
        ax.annotate("", (x0, y), (x1, y), arrowprops={"arrowstyle": "<->", "lw": 0.8, "color": "0.3"})
        ax.text((x0 + x1) / 2, y - 0.07, text, ha="center", fontsize=9, color="0.3")
    ax.axvline(4.0, color="0.6", lw=0.8, ls=":")
    log_ratio = basin_ratio_log10(n_dims)
    exponent = math.floor(-log_ratio)
    mant = 10 ** (-log_ratio - exponent)
    ax.text(
        0.5,
        0.98,
        f"basin a : basin b = 4 : 6 = 2/3 (1-D)\n"
        f"n dimensions: (2/3)^n; n = {n_dims}: 1 / {mant:.2f}e{exponent}",
        transform=ax.transAxes,
        va="top",
        ha="center",
        fontsize=8,
    )
    ax.set_xlabel("parameter θ")
    ax.set_ylabel("loss J")
    ax.set_ylim(-0.25, 1.45)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or "Fig. 3: attractor geometry (schematic)", fontsize=9)
    return fig


# --------------------------------------------------------------------------- figure job


def draw(job: Any) -> Iterator[tuple[str, Figure]]:
    """The memorization figures of an experiment (a :class:`gendyn.figures.jobs.FigureJob`).

    Draws exactly the figures listed in ``analyses.memorization.figures``, in that order.
    Inputs by role: ``run`` (every run's ``run.h5``, in run order) and ``runs_table``
    (``runs.csv``) for ``curves``, ``gradnorm`` and ``gap``; ``summary``
    (``analysis/memorization/summary.nc``) for ``threshold``; ``basins`` needs none. Titles
    are the experiment name (``job.experiment``, else the folder holding ``runs.csv``) and
    ``paper_figure``.

    Raises
    ------
    ValueError
        If a listed figure lacks its input (the message names the role).
    """
    from gendyn.memorization.stage import runs_from_files
    from gendyn.memorization.summary import stack_epochs

    s = job.measure_settings("memorization")
    group_by = s["group_by"]
    name = job.experiment or (job.one("runs_table").parent.name if job.has("runs_table") else "")
    title = name + (f" ({s['paper_figure']})" if s["paper_figure"] else "")
    runs = None
    curves: xr.Dataset | None = None
    for fig in s["figures"]:
        if fig == "basins":
            yield fig, basins_schematic(n_dims=BASINS_N_DIMS)
            continue
        if fig == "threshold":
            _require(job, fig, "summary")
            yield fig, threshold_plot(job.open(job.one("summary")), group_by=group_by, title=title)
            continue
        if curves is None:
            _require(job, fig, "run")
            runs = runs_from_files(job.many("run"), job.one("runs_table") if job.has("runs_table") else None)
            curves = stack_epochs(runs.metrics, swept=runs.swept)
        if fig == "curves":
            assert runs is not None
            n_classes, ks = runs.n_classes(), runs.j0_thresholds()
            yield fig, accuracy_curves(
                curves,
                group_by=group_by,
                splits=s["curve_splits"],
                title=title,
                chance=1.0 / n_classes.pop() if len(n_classes) == 1 and 0 not in n_classes else None,
                k=ks.pop() if len(ks) == 1 else None,
            )
        elif fig == "gradnorm":
            yield fig, gradnorm_curves(curves, group_by=group_by, title=title)
        elif fig == "gap":
            yield fig, gap_curves(curves, group_by=group_by, title=title)
        else:  # pragma: no cover - the schema allows only FIGURES
            raise ValueError(f"analyses.memorization.figures: {fig!r} is not one of {', '.join(FIGURES)}")


def _require(job: Any, figure: str, role: str) -> None:
    if not job.has(role):
        raise ValueError(
            f"gendyn figures memorization: figure {figure!r} needs --input {role}=PATH "
            f"(analyses.memorization.figures lists it); inputs: {sorted(job.inputs)}"
        )
