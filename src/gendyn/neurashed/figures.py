"""Figures of the neurashed simulator (paper 002, Figs. 1-4 and the LE claim of Sec. 3).

Graph drawings put levels in rows (level 1 at the bottom, classes on top), edges from a
node to its parents; firing nodes are red. Every function returns a ``Figure`` and changes
no global matplotlib state. :func:`draw` is the workflow's figure job (figure set
``neurashed``, experiment scope, ``job.experiment`` = the study).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import gendyn.figures.style  # noqa: F401 - headless backend first
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gendyn.figures.style import GROUP_PALETTE, SEED_BAND, figure_legend, legend_outside, seed_band
from gendyn.neurashed.graphs import Graph, builtin_graph

__all__ = ["draw", "draw_graph", "fig1_graph", "fig2_pathways", "fig3_implicit_regularization", "fig4_information_bottleneck",
           "elasticity_bars"]  # fmt: skip

logger = logging.getLogger(__name__)

FIRE = "#D55E00"  # vermillion (Okabe & Ito): firing nodes
IDLE = "0.85"


def _positions(graph: Graph) -> dict[str, tuple[float, float]]:
    pos = {}
    for li, lev in enumerate(graph.levels):
        n = len(lev)
        for k, node in enumerate(lev):
            pos[node] = ((k + 0.5) / n, float(li))
    return pos


def draw_graph(
    ax: Axes,
    graph: Graph,
    *,
    firing: set[str] | frozenset[str] | None = None,
    sizes: Mapping[str, float] | None = None,
    title: str = "",
    labels: bool = True,
) -> None:
    """Draw ``graph`` on ``ax``: levels as rows, firing nodes red, node area ∝ ``sizes`` (0-1)."""
    from matplotlib.collections import LineCollection

    pos = _positions(graph)
    firing = firing or set()
    segs, cols, widths = [], [], []
    for child, parents in graph.parents.items():
        for p in parents:
            on = child in firing and p in firing
            segs.append([pos[p], pos[child]])
            cols.append(FIRE if on else "0.6")
            widths.append(1.4 if on else 0.7)
    ax.add_collection(LineCollection(segs, colors=cols, linewidths=widths, zorder=1))
    names = list(pos)
    xy = np.array([pos[n] for n in names])
    area = [420.0 if sizes is None else 30.0 + 900.0 * float(sizes.get(n, 0.0)) for n in names]
    ax.scatter(xy[:, 0], xy[:, 1], s=area, c=[FIRE if n in firing else IDLE for n in names], edgecolors="0.2", linewidths=0.8, zorder=2)
    if labels:
        for n, (x, y) in zip(names, xy):
            ax.text(x, y, n, ha="center", va="center", fontsize=7, zorder=3)
    ax.set_yticks(range(len(graph.levels)), [f"level {i + 1}" for i in range(len(graph.levels) - 1)] + ["classes"], fontsize=7)
    ax.set_xticks([])
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.6, len(graph.levels) - 0.4)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)


def fig1_graph(graph: Graph | str = "fig1") -> Figure:
    """Paper Fig. 1: a neurashed imitating a four-layer network for three classes."""
    g = builtin_graph(graph) if isinstance(graph, str) else graph
    fig, ax = plt.subplots(figsize=(6.0, 3.8), constrained_layout=True)
    draw_graph(ax, g, title=f"neurashed '{g.name}': {g.description}")
    return fig


def fig2_pathways(graph: Graph | str = "fig1") -> Figure:
    """Paper Fig. 2: the feature pathway of every type (firing nodes red)."""
    g = builtin_graph(graph) if isinstance(graph, str) else graph
    names = list(g.types)
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.4), constrained_layout=True, squeeze=False)
    for ax, t in zip(axes[0], names):
        draw_graph(ax, g, firing=g.pathway(t), title=f"type {t} (class {g.types[t][1]})")
    return fig


def _sizes(lam: np.ndarray, nodes: Sequence[str], graph: Graph) -> dict[str, float]:
    """lambda normalised per level (largest node of a level = 1)."""
    out: dict[str, float] = {}
    idx = {n: i for i, n in enumerate(nodes)}
    for lev in graph.levels[:-1]:
        vals = np.array([lam[idx[n]] for n in lev], dtype=float)
        top = np.nanmax(vals) if np.isfinite(vals).any() and np.nanmax(vals) > 0 else 1.0
        for n, v in zip(lev, vals):
            out[n] = float(v / top) if np.isfinite(v) else 0.0
    for c in graph.classes:
        out[c] = 0.5
    return out


def fig3_implicit_regularization(ds: xr.Dataset, graph: Graph | str = "fig3") -> Figure:
    """Paper Fig. 3: small- vs large-batch training of one class with two pathways.

    Top: the firing patterns (P1, P2 for batch 1; their union for the large batch) and the
    share of the shared level-1 nodes in the level-1 amplification over steps; bottom: the
    learned models of the first seed (node area ∝ lambda, per level) and the participation
    ratio (sum lambda)^2 / sum lambda^2 of level-1 nodes 0-5 over steps. Curves: mean over
    seeds, min-max band.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    g = builtin_graph(graph) if isinstance(graph, str) else graph
    fig, axes = plt.subplots(2, 3, figsize=(13.5, 7.0), constrained_layout=True)
    draw_graph(axes[0, 0], g, firing=g.pathway("P1"), title="small batch: one pathway per step (here P1)")
    draw_graph(axes[0, 1], g, firing=g.pathway("P1") | g.pathway("P2"), title="large batch: P1 and P2 fire together")
    sel = ds.isel(seed=0) if "seed" in ds.dims else ds
    nodes = [str(n) for n in ds["node"].values]
    for ax, b in zip((axes[1, 0], axes[1, 1]), ("small", "large")):
        lam = sel["lam"].sel(batch=b).values[-1]
        draw_graph(ax, g, sizes=_sizes(lam, nodes, g), title=f"learned, {b} batch (step {int(sel['step'].values[-1])}; area ∝ λ)")
    colors = {"small": GROUP_PALETTE[0], "large": GROUP_PALETTE[1]}
    n_seeds = ds.sizes.get("seed", 1)
    x = ds["step"].values
    for var, ax, ylabel in (
        ("shared_share", axes[0, 2], "share of the shared nodes 2, 3\nin level-1 λ: Σλ(2,3) / Σλ(0..5)"),
        ("participation", axes[1, 2], "participation ratio of level-1 λ\n(Σλ)² / Σλ² over nodes 0-5"),
    ):
        for b in ("small", "large"):
            da = ds[var].sel(batch=b)
            y = da.transpose("seed", ...).values if "seed" in da.dims else da.values[None]
            seed_band(ax, x, y, color=colors[b], markers=False)
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0, 2].set_ylim(0, 1.05)
    axes[1, 2].set_ylim(0, 6.3)
    handles = [Line2D([], [], color=colors["small"], lw=2), Line2D([], [], color=colors["large"], lw=2)]
    labels = ["small batch (one pathway per step)", "large batch (both pathways every step)"]
    if n_seeds > 1:
        handles.append(Patch(color="0.5", alpha=0.3, lw=0))
        labels.append(f"mean of {n_seeds} seeds, band {SEED_BAND}")
    figure_legend(fig, handles, labels, side="bottom")
    fig.suptitle(f"implicit regularisation in neurashed (g+ = {ds.attrs.get('a')}x, g- = {ds.attrs.get('b')}x, "
                 f"{n_seeds} seed(s))", fontsize=10)  # fmt: skip
    return fig


def _arrows(ax: Axes, x: np.ndarray, y: np.ndarray, color: Any, *, n: int = 6, lw: float = 1.0) -> None:
    """Arrowheads along the trajectory (x, y) in the direction of time, on its ``n`` longest steps."""
    d = np.hypot(np.diff(x) / 3.0, np.diff(y) / 1.2)  # in axis fractions of the information plane
    idx = np.sort(np.argsort(d)[::-1][:n])
    for i in idx:
        if d[i] < 0.01:
            continue
        ax.annotate("", xy=(x[i + 1], y[i + 1]), xytext=(x[i], y[i]),
                    arrowprops={"arrowstyle": "-|>", "color": color, "lw": lw, "mutation_scale": 10}, zorder=4)  # fmt: skip


def fig4_information_bottleneck(ds: xr.Dataset, graph: Graph | str = "fig4") -> Figure:
    """Paper Fig. 4: a class-1 pathway (left) and the information plane of levels 1 and 2 (right).

    One panel per level; each seed is one trajectory from the first record (circle) to the
    last (square), arrows in the direction of training, the steps of the first seed's start,
    turning point and end written beside it.
    """
    from matplotlib.lines import Line2D

    g = builtin_graph(graph) if isinstance(graph, str) else graph
    fig, axes = plt.subplots(1, 3, figsize=(15.0, 4.6), constrained_layout=True, gridspec_kw={"width_ratios": [1.3, 1, 1]})
    first = next(iter(g.types))
    draw_graph(axes[0], g, firing=g.pathway(first), title=f"a class-1 pathway (type {first}); D, D' dominant (k = 2 rule)")
    steps = ds["step"].values
    seeds = list(ds["seed"].values) if "seed" in ds.dims else [None]
    for ax, level in zip(axes[1:], ds["level"].values):
        for k, sd in enumerate(seeds):
            sub = ds.sel(level=level) if sd is None else ds.sel(level=level, seed=sd)
            x, y = sub["mi_x"].values, sub["mi_y"].values
            c = GROUP_PALETTE[k % len(GROUP_PALETTE)]
            lw = 1.5 if k == 0 else 1.0
            ax.plot(x, y, color=c, lw=lw, alpha=0.9, zorder=2, marker="o", ms=2)
            _arrows(ax, x, y, c, lw=lw)
            ax.plot(x[:1], y[:1], "o", ms=7, mfc="white", mec=c, mew=1.5, zorder=5)
            ax.plot(x[-1:], y[-1:], "s", ms=7, color=c, zorder=5)
            if k == 0:
                turn = int(np.nanargmax(x))
                for i, dy in ((0, 0.05), (turn, 0.05), (len(x) - 1, -0.09)):
                    ax.annotate(f"step {int(steps[i])}", (x[i], y[i]), xytext=(4, 26 * dy / 0.05 if dy > 0 else -14),
                                textcoords="offset points", fontsize=7, color=c)  # fmt: skip
        ax.set_xlim(0, 3.1)
        ax.set_ylim(0, 1.2)
        ax.set_xlabel("I(X; T): information about the input (bits)")
        ax.set_ylabel("I(Y; T): information about the label (bits)")
        ax.grid(alpha=0.3)
        ax.set_title(f"information plane, level {int(level)}", fontsize=9)
    handles = [Line2D([], [], color=GROUP_PALETTE[k % len(GROUP_PALETTE)], lw=1.5) for k in range(len(seeds))]
    labels = [f"seed {sd}" if sd is not None else "run" for sd in seeds]
    handles += [Line2D([], [], ls="", marker="o", mfc="white", mec="0.3", ms=7), Line2D([], [], ls="", marker="s", color="0.3", ms=7),
                Line2D([], [], color="0.3", marker=">", ms=5, lw=1)]  # fmt: skip
    labels += [f"start (step {int(steps[0])})", f"end (step {int(steps[-1])})", "direction of training"]
    legend_outside(axes[-1], handles, labels)
    fig.suptitle(f"information bottleneck in neurashed ({len(seeds)} seed(s); noise σ = {ds.attrs.get('sigma')})", fontsize=10)
    return fig


def elasticity_bars(ds: xr.Dataset) -> Figure:
    """Sec. 3: LE of one step on type 1a at the other types, per seed (graph fig1; paper Fig. 2 argument)."""
    fig, (ax_g, ax_b) = plt.subplots(1, 2, figsize=(11.0, 3.8), constrained_layout=True, gridspec_kw={"width_ratios": [1.3, 1]})
    g = builtin_graph("fig1")
    upd = str(ds.attrs.get("update", "1a"))
    draw_graph(ax_g, g, firing=g.pathway(upd), title=f"pathway of the update type {upd}")
    probes = [str(p) for p in ds["probe"].values if str(p) != upd]
    vals = ds["le"].sel(probe=probes)
    seeds = ds["seed"].values if "seed" in ds.dims else [0]
    rng = np.random.default_rng(0)
    for k, p in enumerate(probes):
        v = np.atleast_1d(vals.sel(probe=p).values)
        ax_b.scatter(k + rng.uniform(-0.12, 0.12, size=v.size), v, s=18, color=GROUP_PALETTE[0], alpha=0.8, label="one seed" if k == 0 else None)
        ax_b.hlines(np.median(v), k - 0.25, k + 0.25, color="k", lw=1.5, label="median over seeds" if k == 0 else None)
    ax_b.set_xticks(range(len(probes)), [f"{upd} → {p}" for p in probes])
    ax_b.set_ylabel("LE(update, probe) on the logits Z")
    ax_b.set_xlim(-0.6, len(probes) - 0.4)
    ax_b.grid(alpha=0.3, axis="y")
    ax_b.set_title(f"after {ds.attrs.get('steps')} training steps, {len(seeds)} seed(s)", fontsize=9)
    legend_outside(ax_b)
    return fig


# --------------------------------------------------------------------------- figure job


def draw(job: Any) -> Iterator[tuple[str, Figure]]:
    """The neurashed figures of a study (a :class:`gendyn.figures.jobs.FigureJob`).

    ``fig1_graph`` and ``fig2_pathways`` always (no input); ``fig3_implicit_regularization``,
    ``fig4_information_bottleneck`` and ``elasticity`` when the simulation of their phenomenon
    is given as input role ``implicit_regularization``, ``information_bottleneck``,
    ``local_elasticity`` (written by ``gendyn neurashed simulate``).
    """
    yield "fig1_graph", fig1_graph()
    yield "fig2_pathways", fig2_pathways()
    for role, name, figure in (
        ("implicit_regularization", "fig3_implicit_regularization", fig3_implicit_regularization),
        ("information_bottleneck", "fig4_information_bottleneck", fig4_information_bottleneck),
        ("local_elasticity", "elasticity", elasticity_bars),
    ):
        if job.has(role):
            yield name, figure(job.open(job.one(role)))
