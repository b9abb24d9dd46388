"""Figures of paper 000 (image functions) from ``analysis/paths`` datasets.

One function per figure; each takes datasets written by ``gendyn paths compute`` /
``gendyn paths summary`` and returns a :class:`matplotlib.figure.Figure` (no global
state is changed; save with :func:`gendyn.figures.save_figure`). :func:`draw` is the
workflow's figure job (every figure the inputs allow); :func:`dashboard_panel` and
:func:`compare_rows` are the paths part of the shared run views, both at the layer
:func:`shown_layer` picks.

| function | paper |
|---|---|
| :func:`cross_path_figure` | Figs 1, 2, 3, 16 (distribution of S, and of A in a right column) |
| :func:`overlap_distance_figure` | Fig 4 (path overlap vs input distance) |
| :func:`self_similarity_figure` | Fig 5 (distribution of sigma) |
| :func:`neighbour_rank_figure` | Fig 6 (nearest-neighbour ranks 0..top_k-1) |
| :func:`activation_rank_figure` | App. E (ranks by activation similarity) |
| :func:`early_mid_figure` | Fig 7 (early/mid ratio vs generalization) |
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import gendyn.figures.style  # noqa: F401 - headless backend first
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gendyn.figures.style import (  # noqa: E402
    BETWEEN_COLOR,
    DECAY_STYLE,
    GROUP_PALETTE,
    SEED_BAND,
    SPLIT_COLORS,
    WITHIN_COLOR,
    XAxis,
    assignment_label,
    decay_handle,
    figure_legend,
    legend_outside,
    marker_kw,
)
from gendyn.paths.stats import histogram_quantiles  # noqa: E402

__all__ = [
    "select_layers",
    "shown_layer",
    "draw",
    "dashboard_panel",
    "compare_rows",
    "cross_path_figure",
    "self_similarity_figure",
    "overlap_distance_figure",
    "neighbour_rank_figure",
    "activation_rank_figure",
    "early_mid_figure",
]

logger = logging.getLogger(__name__)

_Q = (0.05, 0.25, 0.5, 0.75, 0.95)


def _split_color(ds: xr.Dataset) -> str:
    """The colour of the analysed images' split (``split`` attribute; train by default)."""
    return SPLIT_COLORS.get(str(ds.attrs.get("split", "train")), SPLIT_COLORS["train"])


def select_layers(ds: xr.Dataset, layers: Sequence[Any]) -> list[str]:
    """Layer names of ``ds`` from 1-based indices (negative from the end) or names, deepest first.

    Indices count the model's ReLU sites in forward order (attribute ``model_layers``), as
    ``analyses.paths.layers`` does; the pseudo-layer ``all`` is selected by name. Layers that
    were not analysed are skipped with a warning.
    """
    names = [str(v) for v in ds["layer"].values]
    index = {n: int(i) for n, i in zip(names, ds["layer_index"].values)}
    model = json.loads(ds.attrs.get("model_layers", "null") or "null") or [n for n in names if index[n] > 0]
    out: list[str] = []
    for item in layers:
        if isinstance(item, str) and not item.lstrip("-").isdigit():
            name = item
        else:
            i = int(item)
            if not (1 <= i <= len(model) or -len(model) <= i <= -1):
                logger.warning("layer index %d outside 1..%d; skipped", i, len(model))
                continue
            name = model[i - 1] if i > 0 else model[i]
        if name in names:
            out.append(name)
        else:
            logger.warning("layer %r was not analysed (layers: %s); skipped", name, names)
    out = list(dict.fromkeys(out))
    if not out:
        raise KeyError(f"none of the layers {list(layers)} is in the analysis; layers: {names}")
    return sorted(out, key=lambda n: -index[n] if index[n] > 0 else -10**9)


def _label(ds: xr.Dataset, name: str) -> str:
    idx = int(ds["layer_index"].sel(layer=name))
    return f"layer {idx} ({name})" if idx > 0 else "all layers (counts summed)"


def _decays(ds: xr.Dataset) -> list[float]:
    try:
        return [float(e) for e in json.loads(ds.attrs.get("decay_epochs", "[]"))]
    except (TypeError, ValueError):
        return []


def _mark_decays(ax: Axes, ds: xr.Dataset) -> None:
    for e in _decays(ds):
        ax.axvline(e, **DECAY_STYLE)


def _legend(fig: Figure, ax: Axes, ds: xr.Dataset) -> None:
    """The legend of ``ax``'s entries (plus the LR decays) below the figure, outside every axes."""
    handles, labels = ax.get_legend_handles_labels()
    if _decays(ds):
        handles.append(decay_handle())
        labels.append("LR decay")
    figure_legend(fig, handles, labels, side="bottom")


def _bands(ax: Axes, x: np.ndarray, q: np.ndarray, mean: np.ndarray | None, color: str, what: str) -> None:
    """Median line, 25-75 % and 5-95 % bands over ``what`` (q: (R, 5) at _Q), mean dashed."""
    ax.fill_between(x, q[:, 0], q[:, 4], color=color, alpha=0.15, lw=0, label=f"5-95 % of {what}")
    ax.fill_between(x, q[:, 1], q[:, 3], color=color, alpha=0.35, lw=0, label=f"25-75 % of {what}")
    ax.plot(x, q[:, 2], color=color, lw=1.6, label="median", **marker_kw(len(x)))
    if mean is not None:
        ax.plot(x, mean, color="k", lw=1.0, ls="--", label="mean")


def _hist2d(ax: Axes, x: np.ndarray, hist: np.ndarray, lo: float, hi: float) -> None:
    h = hist.astype(float)
    # coarsen to at most 100 bins for display, then scale each record's column to its mode
    nb = h.shape[1]
    f = max(1, nb // 100)
    h = h[:, : nb - nb % f].reshape(len(x), -1, f).sum(axis=2)
    top = h.max(axis=1, keepdims=True)
    frac = np.divide(h, top, out=np.zeros_like(h), where=top > 0)
    if len(x) > 1:
        dx = np.diff(x)
        xe = np.concatenate([[x[0] - dx[0] / 2], x[:-1] + dx / 2, [x[-1] + dx[-1] / 2]])
    else:
        xe = np.array([x[0] - 0.5, x[0] + 0.5])
    ye = np.linspace(lo, hi, frac.shape[1] + 1)
    mesh = ax.pcolormesh(xe, ye, frac.T, cmap="Blues", shading="flat", vmin=0, vmax=1)
    ax.figure.colorbar(mesh, ax=ax, pad=0.01, fraction=0.05, label="count / mode of the record")


def _dist_panel(ax: Axes, ds: xr.Dataset, prefix: str, layer: str, style: str, color: str, bin_dim: str) -> None:
    x = ds["epoch"].values
    hist = ds[f"{prefix}_hist"].sel(layer=layer).values
    lo_name, hi_name = f"{bin_dim}_lo", f"{bin_dim}_hi"
    lo, hi = float(ds[lo_name].values[0]), float(ds[hi_name].values[-1])
    edges = np.concatenate([ds[lo_name].values, ds[hi_name].values[-1:]])
    if style == "hist2d":
        _hist2d(ax, x, hist, lo, hi)
        ax.plot(x, ds[f"{prefix}_mean"].sel(layer=layer).values, color="k", lw=1.0, ls="--", label="mean")
    else:
        q = histogram_quantiles(hist, edges, _Q)
        _bands(ax, x, q, ds[f"{prefix}_mean"].sel(layer=layer).values, color, "pairs")
    ax.set_ylim(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))
    _mark_decays(ax, ds)
    ax.grid(alpha=0.3)


def cross_path_figure(
    ds: xr.Dataset, *, layers: Sequence[Any] = (1, 2, -1), style: str = "bands", title: str = ""
) -> Figure:
    """Distribution over image pairs of cross-path similarity S per epoch (Figs 1, 2, 3, 16).

    Rows are layers (deepest on top, as in the paper); the left column is S on masks, the
    right column (when the run recorded activations) the activation variant A.

    Parameters
    ----------
    ds : Dataset
        ``analysis/paths/{run}.nc``: ``cross_path_hist`` / ``cross_path_mean`` (record, layer[, bin]),
        optionally ``act_cross_hist`` / ``act_cross_mean``; coord ``epoch`` on ``record``.
    layers : sequence of int or str
    style : {"bands", "hist2d"}
    title : str
    """
    names = select_layers(ds, layers)
    has_act = "act_cross_hist" in ds
    cols = 2 if has_act else 1
    color = _split_color(ds)
    fig, axes = plt.subplots(
        len(names), cols, figsize=(4.6 * cols, 2.4 * len(names) + 1.1), squeeze=False, sharex=True, constrained_layout=True
    )
    for r, name in enumerate(names):
        _dist_panel(axes[r, 0], ds, "cross_path", name, style, color, "bin")
        axes[r, 0].set_ylabel(f"{_label(ds, name)}\ncross-path similarity S")
        if has_act:
            if int(ds["layer_index"].sel(layer=name)) > 0:
                _dist_panel(axes[r, 1], ds, "act_cross", name, style, color, "act_bin")
            else:
                axes[r, 1].text(0.5, 0.5, "A is per layer only", ha="center", va="center",
                                transform=axes[r, 1].transAxes, color="0.4")
            axes[r, 1].set_ylabel("activation similarity A")
    for c in range(cols):
        axes[-1, c].set_xlabel("epoch (record t vs t - lag)")
    n_img = ds.sizes.get("image", 0)
    axes[0, 0].set_title(f"S on ReLU masks ({ds.attrs.get('norm', 'l2')} norm)", fontsize=9)
    if has_act:
        axes[0, 1].set_title(f"A on {ds.attrs.get('act', 'post')}-ReLU activations", fontsize=9)
    _legend(fig, axes[0, 0], ds)
    split = ds.attrs.get("split", "train")
    fig.suptitle(f"{title}: over pairs of {n_img} tracked {split} images".strip(": "), fontsize=10)
    return fig


def self_similarity_figure(
    ds: xr.Dataset, *, layers: Sequence[Any] = (1, 2, -1), style: str = "bands", title: str = ""
) -> Figure:
    """Distribution over images of self-similarity sigma per epoch (Fig 5); rows = layers, deepest on top.

    Parameters
    ----------
    ds : Dataset
        ``self_sim`` (record, layer, image); coord ``epoch`` on ``record``.
    """
    names = select_layers(ds, layers)
    fig, axes = plt.subplots(len(names), 1, figsize=(5.4, 2.4 * len(names) + 1.1), squeeze=False, sharex=True,
                             constrained_layout=True)
    x = ds["epoch"].values
    color = _split_color(ds)
    for r, name in enumerate(names):
        ax = axes[r, 0]
        v = ds["self_sim"].sel(layer=name).values  # (record, image)
        if style == "hist2d":
            bins = 100
            hist = np.stack([np.histogram(row[np.isfinite(row)], bins=bins, range=(0.0, 1.0))[0] for row in v])
            _hist2d(ax, x, hist, 0.0, 1.0)
            ax.plot(x, ds["self_sim_mean"].sel(layer=name).values, color="k", lw=1.0, ls="--", label="mean")
        else:
            q = np.full((len(x), len(_Q)), np.nan)
            for i, row in enumerate(v):
                row = row[np.isfinite(row)]
                if row.size:
                    q[i] = np.quantile(row, _Q)
            _bands(ax, x, q, ds["self_sim_mean"].sel(layer=name).values, color, "images")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(f"{_label(ds, name)}\nself-similarity σ")
        _mark_decays(ax, ds)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("epoch (record t vs t - lag)")
    _legend(fig, axes[0, 0], ds)
    split = ds.attrs.get("split", "train")
    fig.suptitle(f"{title}\nσ_i over {ds.sizes['image']} tracked {split} images".strip(), fontsize=10)
    return fig


def overlap_distance_figure(
    ds: xr.Dataset, *, layers: Sequence[Any] = (1, 2, -1), max_points: int = 20000, title: str = "", seed: int = 0
) -> Figure:
    """Path overlap O_ij against input distance ||x_i - x_j|| for pairs i < j (Fig 4).

    One panel per layer (deepest on the left) at the last overlap record; dots are pairs
    (a seeded subsample of at most ``max_points``), the line is the binned median with its
    interquartile range; Pearson r and Spearman rho over all pairs are printed.
    """
    if "overlap" not in ds:
        raise KeyError(f"run {ds.attrs.get('run')!r}: no overlap in the analysis (no overlap records)")
    names = select_layers(ds, layers)
    t = ds.sizes["overlap_record"] - 1
    fig, axes = plt.subplots(1, len(names), figsize=(4.0 * len(names), 3.9), squeeze=False, constrained_layout=True)
    d = ds["input_dist"].values
    iu = np.triu_indices(d.shape[0], k=1)
    rng = np.random.default_rng(seed)
    pick = np.arange(iu[0].size)
    if pick.size > max_points:
        pick = np.sort(rng.choice(pick.size, size=max_points, replace=False))
    mid = 0.5 * (ds["dist_bin_lo"].values + ds["dist_bin_hi"].values)
    color = _split_color(ds)
    for c, name in enumerate(names):
        ax = axes[0, c]
        o = ds["overlap"].isel(overlap_record=t).sel(layer=name).values
        ax.scatter(d[iu][pick], o[iu][pick], s=2, alpha=0.25, color=color, lw=0, rasterized=True,
                   label=f"pair i < j ({pick.size} drawn)")  # fmt: skip
        med = ds["overlap_binned_median"].isel(overlap_record=t).sel(layer=name).values
        q25 = ds["overlap_binned_q25"].isel(overlap_record=t).sel(layer=name).values
        q75 = ds["overlap_binned_q75"].isel(overlap_record=t).sel(layer=name).values
        ok = np.isfinite(med)
        ax.errorbar(mid[ok], med[ok], yerr=[med[ok] - q25[ok], q75[ok] - med[ok]], color="k", lw=1.2, capsize=2,
                    label="median per distance bin, interquartile range")  # fmt: skip
        r = float(ds["overlap_pearson"].isel(overlap_record=t).sel(layer=name))
        rho = float(ds["overlap_spearman"].isel(overlap_record=t).sel(layer=name))
        ax.set_title(f"{_label(ds, name)}\nPearson r = {r:.2f}, Spearman ρ = {rho:.2f}", fontsize=9)
        ax.set_xlabel(f"input distance ||x_i - x_j||_2 ({ds.attrs.get('space', 'model')} space)")
        kind = ds.attrs.get("overlap", "count")
        if c == 0:
            ax.set_ylabel("path overlap p_i·p_j (shared active units)" if kind == "count" else "path overlap (cosine)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure_legend(fig, handles, labels, side="bottom", markerscale=4)
    ep = float(ds["overlap_epoch"].values[t])
    fig.suptitle(f"{title}  (epoch {ep:g}, {iu[0].size} pairs)", fontsize=10)
    return fig


def rank_matrix(ranks: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """The neighbours that reach the top ``top_k`` at some record, as an image (candidate, record).

    Parameters
    ----------
    ranks : (R, C) int
        Rank of each candidate at each record (negative = not ranked).

    Returns
    -------
    shown : (S,) int
        Candidate positions that are in the top ``top_k`` at one record or more, ordered by the
        first record at which they enter it, then by their best rank there.
    image : (S, R) float
        Their rank where it is below ``top_k``, NaN elsewhere.
    """
    top = (ranks >= 0) & (ranks < top_k)
    shown = np.flatnonzero(top.any(axis=0))
    first = np.array([np.flatnonzero(top[:, c])[0] for c in shown], dtype=int)
    rank_at_first = np.array([ranks[f, c] for f, c in zip(first, shown)], dtype=int)
    order = np.lexsort((rank_at_first, first))
    shown = shown[order]
    image = np.where(top[:, shown], ranks[:, shown], np.nan).T.astype(float)
    return shown, image


def _rank_axes(ax: Axes, ds: xr.Dataset, ranks: np.ndarray, cand_img: np.ndarray, top_k: int, cmap: Any,
               ylabels: bool) -> tuple[int, int, Any]:  # fmt: skip
    """One baseline's neighbours as a heatmap (rows = neighbours, columns = records, colour = rank).

    Returns (distinct neighbours in the top, top-1 changes, the image for a colour bar).
    """
    shown, image = rank_matrix(ranks, top_k)
    x = np.asarray(ds["epoch"].values, dtype=float)
    im = ax.imshow(image, aspect="auto", cmap=cmap, vmin=-0.5, vmax=top_k - 0.5, interpolation="nearest",
                   extent=(-0.5, len(x) - 0.5, len(shown) - 0.5, -0.5))  # fmt: skip
    ax.set_facecolor("white")
    step = max(1, int(np.ceil(len(x) / 12)))
    ax.set_xticks(range(0, len(x), step), [f"{v:g}" for v in x[::step]], fontsize=7)
    ax.set_yticks(range(len(shown)), [f"image {int(cand_img[c])}" for c in shown] if ylabels else [],
                  fontsize=6 if len(shown) > 16 else 7)  # fmt: skip
    ax.set_ylim(len(shown) - 0.5, -0.5)
    for e in _decays(ds):  # a decay after epoch e: between the columns of e and the next record
        pos = np.searchsorted(x, e, side="right") - 0.5
        if -0.5 < pos < len(x) - 0.5:
            ax.axvline(pos, color="0.2", ls=":", lw=1.2)
    top1 = ranks.argmin(axis=1)
    return len(shown), int((top1[1:] != top1[:-1]).sum()), im


def neighbour_rank_figure(ds: xr.Dataset, *, layer: Any = 2, title: str = "") -> Figure:
    """Nearest neighbours of each baseline image over epochs (Fig 6), one heatmap per baseline.

    Rows are the candidates that are among the ``top_k`` nearest at some record (ordered by when
    they first enter), columns the records, colour the rank (0 = nearest); blank where a
    candidate is not in the top. Closeness is path overlap with the baseline (``overlap`` attr).
    """
    if "nn_rank" not in ds:
        raise KeyError(f"run {ds.attrs.get('run')!r}: no nn_rank in the analysis (too few tracked images?)")
    name = select_layers(ds, [layer])[0]
    return _rank_grid(ds, "nn_rank", [name], title, "path overlap p_i·p_j")


def activation_rank_figure(ds: xr.Dataset, *, layers: Sequence[Any] = (1, 2, -1), title: str = "") -> Figure:
    """Nearest-neighbour ranks by activation cosine cos(a_i, a_j) (App. E); rows = layers, columns = baselines."""
    if "nn_rank_act" not in ds:
        raise KeyError(f"run {ds.attrs.get('run')!r}: no nn_rank_act (the run has no /activations)")
    names = [n for n in select_layers(ds, layers) if int(ds["layer_index"].sel(layer=n)) > 0]
    return _rank_grid(ds, "nn_rank_act", names, title, "activation cosine cos(a_i, a_j)")


def _rank_grid(ds: xr.Dataset, var: str, names: list[str], title: str, what: str) -> Figure:
    from matplotlib.colors import ListedColormap

    top_k = int(ds.attrs.get("top_k", 6))
    nb = ds.sizes["baseline"]
    cand = ds["nn_candidate_image"].values
    rows_per = [[len(rank_matrix(ds[var].sel(layer=n).isel(baseline=b).values, top_k)[0]) for b in range(nb)]
                for n in names]  # fmt: skip
    heights = [max(max(r), 4) for r in rows_per]
    fig, axes = plt.subplots(len(names), nb, figsize=(3.5 * nb + 1.2, sum(0.17 * h + 1.0 for h in heights) + 0.8),
                             squeeze=False, constrained_layout=True, gridspec_kw={"height_ratios": heights})  # fmt: skip
    base = plt.get_cmap("viridis")
    cmap = ListedColormap([base(0.85 * k / max(top_k - 1, 1)) for k in range(top_k)]).with_extremes(bad="white")
    im = None
    for r, name in enumerate(names):
        for b in range(nb):
            ax = axes[r, b]
            ranks = ds[var].sel(layer=name).isel(baseline=b).values
            n_shown, n_changes, im = _rank_axes(ax, ds, ranks, cand[b], top_k, cmap, ylabels=True)
            j = int(ds["baseline"].values[b])
            ax.set_title(f"baseline j = {j}: {n_shown} in the top {top_k}, nearest changed {n_changes}×", fontsize=8)
            if b == 0:
                ax.set_ylabel(f"{_label(ds, name)}\nneighbour (top {top_k} at some epoch)", fontsize=8)
            if r == len(names) - 1:
                ax.set_xlabel("epoch")
    if im is not None:
        cb = fig.colorbar(im, ax=axes.ravel().tolist(), ticks=range(top_k), shrink=0.6, pad=0.01)
        cb.set_label("rank (0 = nearest; blank: not in the top)", fontsize=8)
    handles = [decay_handle()] if _decays(ds) else []
    figure_legend(fig, handles, ["LR decay (between epochs)"] if handles else [], side="bottom")
    fig.suptitle(f"{title}  (closeness: {what}; {ds.sizes['candidate']} candidates per baseline)", fontsize=10)
    return fig


_GEN = {
    "test_acc": ("final test accuracy (%)", lambda s: 100 * s["test_acc"].values),
    "test_error": ("final test error (%)", lambda s: 100 * (1 - s["test_acc"].values)),
    "gap": ("train - test accuracy (%)", lambda s: 100 * (s["train_acc"].values - s["test_acc"].values)),
}


def _fig7_groups(summaries: Sequence[xr.Dataset], tables: Mapping[str, Any] | None) -> list[tuple[str, list[tuple[int, int]]]]:
    """Points of Fig 7 grouped by configuration: runs that differ only in ``training.seed`` are one group.

    Returns [(label, [(summary index, run index), ...])], in order of first appearance.
    """
    from gendyn.figures.compare import SEED_KEYS

    several = len({str(e) for s in summaries for e in np.atleast_1d(s["experiment"].values)}) > 1
    groups: dict[tuple[Any, ...], tuple[str, list[tuple[int, int]]]] = {}
    for si, s in enumerate(summaries):
        for ri in range(s.sizes["run"]):
            exp, run = str(s["experiment"].values[ri]), str(s["run"].values[ri])
            table = (tables or {}).get(exp)
            swept: dict[str, Any] = {}
            if table is not None:
                row = table[table["run"].astype(str) == run]
                if len(row):
                    cols = [c for c in table.columns if c != "run" and c not in SEED_KEYS and table[c].nunique() > 1]
                    swept = {c: row.iloc[0][c] for c in cols}
            if table is None or not len(table[table["run"].astype(str) == run]):
                swept = {"run": run}
            head = f"{s['model'].values[ri]} layer {int(s['layer_index'].values[ri])}, {s['data'].values[ri]}"
            label = f"{head}: {assignment_label(swept)}" if swept and "run" not in swept else f"{head} ({run})"
            if several:
                label = f"{exp}: {label}"
            key = (exp, tuple(sorted((k, str(v)) for k, v in swept.items())))
            groups.setdefault(key, (label, []))[1].append((si, ri))
    return list(groups.values())


def early_mid_figure(
    summaries: Sequence[xr.Dataset],
    *,
    generalization: str = "test_acc",
    title: str = "",
    tables: Mapping[str, Any] | None = None,
) -> Figure:
    """Early/mid cross-path ratio against generalization (Fig 7), one point per configuration.

    Parameters
    ----------
    summaries : sequence of Dataset
        ``analysis/paths/summary.nc`` of one or more experiments (dim ``run``: ``R``,
        ``test_acc``, ``train_acc``; coords ``experiment``, ``model``, ``data``, ``layer_index``).
    generalization : {"test_acc", "test_error", "gap"}
    tables : mapping experiment -> runs.csv DataFrame, optional
        Runs that differ only in ``training.seed`` are pooled: the mean is the point, the
        min-max over seeds its error bars in x and y, each seed a faint dot.

    Notes
    -----
    The least-squares line and Pearson r are over the configurations' means.
    """
    if generalization not in _GEN:
        raise ValueError(f"generalization={generalization!r}; choose one of {sorted(_GEN)}")
    ylabel, fn = _GEN[generalization]
    diverged: list[str] = []
    for s in summaries:
        diverged += [f"{s.attrs.get('experiment', '')}/{r}".lstrip("/") for r in json.loads(s.attrs.get("diverged_runs", "[]"))]
    xs = [np.asarray(s["R"].values, dtype=float) for s in summaries]
    ys = [np.asarray(fn(s), dtype=float) for s in summaries]
    groups = _fig7_groups(summaries, tables)
    fig, ax = plt.subplots(figsize=(8.6, 4.2), constrained_layout=True)
    mx, my = [], []
    n_seeds = 1
    for k, (label, members) in enumerate(groups):
        color = GROUP_PALETTE[k % len(GROUP_PALETTE)]
        gx = np.array([xs[si][ri] for si, ri in members])
        gy = np.array([ys[si][ri] for si, ri in members])
        n_seeds = max(n_seeds, len(members))
        cx, cy = float(np.nanmean(gx)), float(np.nanmean(gy))
        mx.append(cx)
        my.append(cy)
        if len(members) > 1:
            ax.scatter(gx, gy, s=12, color=color, alpha=0.35, lw=0, zorder=2)
            ax.errorbar(cx, cy, xerr=[[cx - np.nanmin(gx)], [np.nanmax(gx) - cx]],
                        yerr=[[cy - np.nanmin(gy)], [np.nanmax(gy) - cy]], color=color, lw=1.0, capsize=2, zorder=3)  # fmt: skip
        ax.scatter([cx], [cy], s=46, color=color, label=label, zorder=4, edgecolors="white", linewidths=0.6)
    x, y = np.array(mx), np.array(my)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() >= 3 and np.ptp(x[ok]) > 0:
        slope, icpt = np.polyfit(x[ok], y[ok], 1)
        r = float(np.corrcoef(x[ok], y[ok])[0, 1])
        xx = np.linspace(x[ok].min(), x[ok].max(), 20)
        what = "configuration means" if n_seeds > 1 else "runs"
        ax.plot(xx, slope * xx + icpt, color="0.4", ls="--", lw=1, label=f"least squares over {what} (Pearson r = {r:.2f})")
    ax.set_xlabel("ratio of early to mid cross-path similarity (R)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if n_seeds > 1:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="0.4", marker="o", ms=4, lw=1.0))
        labels.append(f"mean of {n_seeds} seeds, bars {SEED_BAND}, dots single seeds")
    legend_outside(ax, handles, labels)
    n_runs = sum(len(m) for _, m in groups)
    ax.set_title(title or f"early/mid cross-path ratio vs generalization ({len(groups)} configurations, {n_runs} runs)",
                 fontsize=10)  # fmt: skip
    if diverged:
        fig.suptitle(f"diverged, left out: {', '.join(diverged)}", fontsize=9, color="tab:red")
    return fig


# --------------------------------------------------------------------------- figure job and shared views


def _title(ds: xr.Dataset) -> str:
    return f"{ds.attrs.get('experiment', '')} / {ds.attrs.get('run', '')}"


def draw(job: Any) -> Iterator[tuple[str, Figure]]:
    """Every paths figure a figure job's inputs allow (a :class:`gendyn.figures.jobs.FigureJob`).

    Run scope (input ``paths``: ``analysis/paths/{run}.nc``): ``fig1_cross_path``,
    ``fig4_overlap_distance`` and ``fig5_self_similarity``; ``fig6_neighbour_ranks`` when the
    analysis has neighbour ranks (baselines given and enough tracked images) and
    ``figE_activation_ranks`` when it also has ranks by activation cosine (the run recorded
    activations and the settings use them). Experiment scope (input ``summary``: the
    ``summary.nc`` of this experiment and of ``figures.fig7_experiments``; optional
    ``runs_table``: their ``runs.csv``, to pool seeds): ``fig7_early_mid_ratio``. Options:
    ``analyses.paths.figures``.
    """
    f = job.measure_settings("paths")["figures"]
    if job.scope == "experiment":
        if job.has("summary"):
            import pandas as pd

            sums = [job.open(p) for p in job.many("summary")]
            tables = {Path(p).parent.name: pd.read_csv(p) for p in job.many("runs_table")}
            yield "fig7_early_mid_ratio", early_mid_figure(sums, generalization=f["generalization"], tables=tables)
        return
    ds = job.open(job.one("paths"))
    title = _title(ds)
    yield "fig1_cross_path", cross_path_figure(ds, layers=f["layers"], style=f["style"], title=title)
    yield "fig4_overlap_distance", overlap_distance_figure(
        ds, layers=f["layers"], max_points=f["max_points"], title=title
    )
    yield "fig5_self_similarity", self_similarity_figure(ds, layers=f["layers"], style=f["style"], title=title)
    if "nn_rank" in ds:
        yield "fig6_neighbour_ranks", neighbour_rank_figure(ds, layer=f["rank_layer"], title=title)
    if "nn_rank_act" in ds:
        yield "figE_activation_ranks", activation_rank_figure(ds, layers=f["layers"], title=title)


def shown_layer(ds: xr.Dataset) -> str:
    """The layer the shared views (dashboard, sweep comparison) show: the second recorded layer.

    Paper 000 reads layer 2; with a single real layer, that one; the pseudo-layer ``all``
    (``layer_index`` 0) only when nothing else was analysed.
    """
    names = [str(v) for v in ds["layer"].values]
    if "layer_index" in ds.coords:
        real = [n for n, i in zip(names, np.asarray(ds["layer_index"].values)) if int(i) > 0]
        if len(real) >= 2:
            return real[1]
        if real:
            return real[0]
    return names[0]


def dashboard_panel(ax: Axes, ds: xr.Dataset, settings: Mapping[str, Any], xa: XAxis) -> None:
    """The paths panel of the run dashboard: cross-path similarity within/between classes and
    self-similarity at :func:`shown_layer`, on the dashboard's x axis ``xa``."""
    lay = shown_layer(ds)
    sel = ds.sel(layer=lay)
    x = xa.values(sel)
    for name, color, ls, label in (
        ("cross_path_within", WITHIN_COLOR, "-", "cross-path S, same class"),
        ("cross_path_between", BETWEEN_COLOR, "-", "cross-path S, different class"),
        ("self_sim_mean", _split_color(ds), "--", "self-similarity σ"),
    ):
        if name in sel:
            ax.plot(x, sel[name].values, color=color, ls=ls, lw=1.1, label=label, **marker_kw(len(x), size=2.5))
    ax.set_ylabel(f"path similarity\n(layer {int(ds['layer_index'].sel(layer=lay))}, mean)")
    ax.set_ylim(-0.02, 1.02)


def compare_rows(ds: xr.Dataset, settings: Mapping[str, Any]) -> dict[str, xr.DataArray]:
    """The paths rows of the sweep comparison at :func:`shown_layer` (over ``record``, coord ``step``)."""
    lay = shown_layer(ds)
    idx = int(ds["layer_index"].sel(layer=lay)) if "layer_index" in ds.coords else 0
    where = f"layer {idx}" if idx > 0 else str(lay)
    rows = {f"cross-path S, same class\n({where}, mean)": "cross_path_within", f"self-similarity σ\n({where}, mean)": "self_sim_mean"}
    return {label: ds[var].sel(layer=lay) for label, var in rows.items() if var in ds}
