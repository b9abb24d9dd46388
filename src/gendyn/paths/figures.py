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
from typing import Any

import gendyn.figures.style  # noqa: F401 - headless backend first
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gendyn.figures.style import BETWEEN_COLOR, WITHIN_COLOR  # noqa: E402
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

BAND_COLOR = "tab:blue"
ACT_COLOR = "tab:orange"
SELF_COLOR = "tab:green"
_Q = (0.05, 0.25, 0.5, 0.75, 0.95)


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
        ax.axvline(e, color="0.35", ls=":", lw=1)


def _legend(ax: Axes, ds: xr.Dataset, **kw: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if _decays(ds):
        handles.append(plt.Line2D([], [], color="0.35", ls=":", lw=1))
        labels.append("LR decay")
    ax.legend(handles, labels, fontsize=7, frameon=False, **kw)


def _bands(ax: Axes, x: np.ndarray, q: np.ndarray, mean: np.ndarray | None, color: str, label: str) -> None:
    """Median line, 25-75 % and 5-95 % bands (q: (R, 5) at _Q), mean dashed."""
    ax.fill_between(x, q[:, 0], q[:, 4], color=color, alpha=0.15, lw=0, label="5-95 %")
    ax.fill_between(x, q[:, 1], q[:, 3], color=color, alpha=0.35, lw=0, label="25-75 %")
    ax.plot(x, q[:, 2], color=color, lw=1.6, marker="o", ms=2.5, label=f"median {label}")
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
        _bands(ax, x, q, ds[f"{prefix}_mean"].sel(layer=layer).values, color, "")
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
    fig, axes = plt.subplots(
        len(names), cols, figsize=(4.4 * cols, 2.5 * len(names) + 0.6), squeeze=False, sharex=True, constrained_layout=True
    )
    for r, name in enumerate(names):
        _dist_panel(axes[r, 0], ds, "cross_path", name, style, BAND_COLOR, "bin")
        axes[r, 0].set_ylabel(f"{_label(ds, name)}\ncross-path similarity S")
        if has_act:
            if int(ds["layer_index"].sel(layer=name)) > 0:
                _dist_panel(axes[r, 1], ds, "act_cross", name, style, ACT_COLOR, "act_bin")
            else:
                axes[r, 1].text(0.5, 0.5, "A is per layer only", ha="center", va="center",
                                transform=axes[r, 1].transAxes, color="0.4")
            axes[r, 1].set_ylabel("activation similarity A")
    for c in range(cols):
        axes[-1, c].set_xlabel("epoch (record t vs t - lag)")
    axes[0, 0].set_title(f"S over pairs (masks, norm={ds.attrs.get('norm', 'l2')})", fontsize=9)
    if has_act:
        axes[0, 1].set_title(f"A over pairs (activations, {ds.attrs.get('act', 'post')}-ReLU)", fontsize=9)
    _legend(axes[0, 0], ds, loc="lower right")
    fig.suptitle(title, fontsize=10)
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
    fig, axes = plt.subplots(len(names), 1, figsize=(5.0, 2.5 * len(names) + 0.6), squeeze=False, sharex=True,
                             constrained_layout=True)
    x = ds["epoch"].values
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
            _bands(ax, x, q, ds["self_sim_mean"].sel(layer=name).values, SELF_COLOR, "")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(f"{_label(ds, name)}\nself-similarity σ")
        _mark_decays(ax, ds)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("epoch (record t vs t - lag)")
    _legend(axes[0, 0], ds, loc="lower right")
    axes[0, 0].set_title(f"σ_i over {ds.sizes['image']} images", fontsize=9)
    fig.suptitle(title, fontsize=10)
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
    fig, axes = plt.subplots(1, len(names), figsize=(4.0 * len(names), 3.6), squeeze=False, constrained_layout=True)
    d = ds["input_dist"].values
    iu = np.triu_indices(d.shape[0], k=1)
    rng = np.random.default_rng(seed)
    pick = np.arange(iu[0].size)
    if pick.size > max_points:
        pick = np.sort(rng.choice(pick.size, size=max_points, replace=False))
    mid = 0.5 * (ds["dist_bin_lo"].values + ds["dist_bin_hi"].values)
    for c, name in enumerate(names):
        ax = axes[0, c]
        o = ds["overlap"].isel(overlap_record=t).sel(layer=name).values
        ax.scatter(d[iu][pick], o[iu][pick], s=2, alpha=0.25, color="tab:purple", lw=0, rasterized=True, label="pair i<j")
        med = ds["overlap_binned_median"].isel(overlap_record=t).sel(layer=name).values
        q25 = ds["overlap_binned_q25"].isel(overlap_record=t).sel(layer=name).values
        q75 = ds["overlap_binned_q75"].isel(overlap_record=t).sel(layer=name).values
        ok = np.isfinite(med)
        ax.errorbar(mid[ok], med[ok], yerr=[med[ok] - q25[ok], q75[ok] - med[ok]], color="k", lw=1.2, capsize=2,
                    label="binned median, IQR")
        r = float(ds["overlap_pearson"].isel(overlap_record=t).sel(layer=name))
        rho = float(ds["overlap_spearman"].isel(overlap_record=t).sel(layer=name))
        ax.set_title(f"{_label(ds, name)}\nPearson r = {r:.2f}, Spearman ρ = {rho:.2f}", fontsize=9)
        ax.set_xlabel(f"input distance ||x_i - x_j||_2 ({ds.attrs.get('space', 'model')} space)")
        kind = ds.attrs.get("overlap", "count")
        ax.set_ylabel("path overlap p_i·p_j (shared active units)" if kind == "count" else "path overlap (cosine)")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, frameon=False, markerscale=4)
    ep = float(ds["overlap_epoch"].values[t])
    fig.suptitle(f"{title}  (epoch {ep:g}, {iu[0].size} pairs)", fontsize=10)
    return fig


def _rank_axes(ax: Axes, ds: xr.Dataset, ranks: np.ndarray, cand_img: np.ndarray, top_k: int) -> tuple[int, int]:
    """Draw ranks (record, candidate) of one baseline; return (n distinct in top, top-1 changes)."""
    x = ds["epoch"].values
    shown = np.flatnonzero(((ranks >= 0) & (ranks < top_k)).any(axis=0))
    cmap = plt.get_cmap("tab20")
    for n, c in enumerate(shown):
        y = np.where((ranks[:, c] >= 0) & (ranks[:, c] < top_k), ranks[:, c], np.nan).astype(float)
        ax.plot(x, y, marker="o", ms=3, lw=1.2, color=cmap(n % 20), label=f"image {int(cand_img[c])}")
    ax.set_ylim(top_k - 0.5, -0.5)
    ax.set_yticks(range(top_k))
    ax.grid(alpha=0.3)
    _mark_decays(ax, ds)
    top1 = ranks.argmin(axis=1)
    return len(shown), int((top1[1:] != top1[:-1]).sum())


def neighbour_rank_figure(ds: xr.Dataset, *, layer: Any = 2, title: str = "") -> Figure:
    """Ranks 0..top_k-1 of the nearest neighbours of each baseline image over epochs (Fig 6).

    One panel per baseline; each candidate that is in the top k at some record gets a line
    (colour = candidate image), drawn only where its rank is below k. Closeness is path
    overlap with the baseline (``overlap`` attr).
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
    return _rank_grid(ds, "nn_rank_act", names, title, "activation cosine")


def _rank_grid(ds: xr.Dataset, var: str, names: list[str], title: str, what: str) -> Figure:
    top_k = int(ds.attrs.get("top_k", 6))
    nb = ds.sizes["baseline"]
    fig, axes = plt.subplots(len(names), nb, figsize=(3.8 * nb, 2.8 * len(names) + 0.7), squeeze=False, sharey=True,
                             constrained_layout=True)
    cand = ds["nn_candidate_image"].values
    for r, name in enumerate(names):
        for b in range(nb):
            ax = axes[r, b]
            ranks = ds[var].sel(layer=name).isel(baseline=b).values
            n_shown, n_changes = _rank_axes(ax, ds, ranks, cand[b], top_k)
            j = int(ds["baseline"].values[b])
            ax.set_title(f"baseline image j = {j}: {n_shown} distinct in top {top_k}, top-1 changed {n_changes}x",
                         fontsize=8)
            if b == 0:
                ax.set_ylabel(f"{_label(ds, name)}\nneighbour rank (0 = nearest)")
            if r == len(names) - 1:
                ax.set_xlabel("epoch")
            if len(ax.get_lines()) <= 12:
                ax.legend(fontsize=6, frameon=False, ncol=2, loc="lower right")
    fig.suptitle(f"{title}  (closeness: {what}; {ds.sizes['candidate']} candidates)", fontsize=10)
    return fig


_GEN = {
    "test_acc": ("final test accuracy (%)", lambda s: 100 * s["test_acc"].values),
    "test_error": ("final test error (%)", lambda s: 100 * (1 - s["test_acc"].values)),
    "gap": ("train - test accuracy (%)", lambda s: 100 * (s["train_acc"].values - s["test_acc"].values)),
}


def early_mid_figure(summaries: Sequence[xr.Dataset], *, generalization: str = "test_acc", title: str = "") -> Figure:
    """Early/mid cross-path ratio against generalization, one point per run (Fig 7).

    Parameters
    ----------
    summaries : sequence of Dataset
        ``analysis/paths/summary.nc`` of one or more experiments (dim ``run``: ``R``,
        ``test_acc``, ``train_acc``; coords ``experiment``, ``model``, ``data``, ``layer_index``).
    generalization : {"test_acc", "test_error", "gap"}
    """
    if generalization not in _GEN:
        raise ValueError(f"generalization={generalization!r}; choose one of {sorted(_GEN)}")
    ylabel, fn = _GEN[generalization]
    xs, ys, labels = [], [], []
    diverged: list[str] = []
    for s in summaries:
        diverged += [f"{s.attrs.get('experiment', '')}/{r}".lstrip("/") for r in json.loads(s.attrs.get("diverged_runs", "[]"))]
        xs.append(s["R"].values)
        ys.append(fn(s))
        for i in range(s.sizes["run"]):
            labels.append(
                f"{s['model'].values[i]} layer {int(s['layer_index'].values[i])}, {s['data'].values[i]} "
                f"({s['experiment'].values[i]}/{s['run'].values[i]})"
            )
    x, y = np.concatenate(xs), np.concatenate(ys)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    cmap = plt.get_cmap("tab10")
    for i in range(len(x)):
        ax.scatter(x[i], y[i], s=40, color=cmap(i % 10), label=labels[i], zorder=3)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() >= 3 and np.ptp(x[ok]) > 0:
        slope, icpt = np.polyfit(x[ok], y[ok], 1)
        r = float(np.corrcoef(x[ok], y[ok])[0, 1])
        xx = np.linspace(x[ok].min(), x[ok].max(), 20)
        ax.plot(xx, slope * xx + icpt, color="0.4", ls="--", lw=1, label=f"least squares (Pearson r = {r:.2f})")
    ax.set_xlabel("ratio of early to mid cross-path similarity (R)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False, loc="best")
    ax.set_title(title or f"early/mid cross-path ratio vs generalization ({len(x)} runs)", fontsize=10)
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
    ``summary.nc`` of this experiment and of ``figures.fig7_experiments``):
    ``fig7_early_mid_ratio``. Options: ``analyses.paths.figures``.
    """
    f = job.measure_settings("paths")["figures"]
    if job.scope == "experiment":
        if job.has("summary"):
            sums = [job.open(p) for p in job.many("summary")]
            yield "fig7_early_mid_ratio", early_mid_figure(sums, generalization=f["generalization"])
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


def dashboard_panel(ax: Axes, ds: xr.Dataset, settings: Mapping[str, Any], x_offset: float) -> None:
    """The paths panel of the run dashboard: cross-path similarity within/between classes and
    self-similarity at :func:`shown_layer`, x = step (+ ``x_offset`` on a log axis)."""
    lay = shown_layer(ds)
    sel = ds.sel(layer=lay)
    x = np.asarray(sel["step"].values, dtype=float) + x_offset
    for name, color, label in (
        ("cross_path_within", WITHIN_COLOR, "cross-path, same class"),
        ("cross_path_between", BETWEEN_COLOR, "cross-path, different class"),
        ("self_sim_mean", "k", "self-similarity"),
    ):
        if name in sel:
            ax.plot(x, sel[name].values, color=color, marker="o", ms=2, lw=1, label=label)
    ax.set_ylabel(f"path similarity\n({lay})")
    ax.set_ylim(-0.02, 1.02)


def compare_rows(ds: xr.Dataset, settings: Mapping[str, Any]) -> dict[str, xr.DataArray]:
    """The paths rows of the sweep comparison at :func:`shown_layer` (over ``record``, coord ``step``)."""
    lay = shown_layer(ds)
    rows = {"cross-path sim.,\nsame class": "cross_path_within", "self-similarity": "self_sim_mean"}
    return {label: ds[var].sel(layer=lay) for label, var in rows.items() if var in ds}
