"""Figures of paper 001 (local complexity): LC dynamics, sweeps, layers, region maps, robustness.

:func:`draw` is the figure job of the workflow (every figure the inputs allow);
:func:`dashboard_panel` and :func:`compare_rows` are LC's part of the shared run views.

Every function takes analysis datasets (``analysis/lc``, ``analysis/regions``,
``analysis/robust``; see docs/measures) and returns a :class:`~matplotlib.figure.Figure`;
:func:`gendyn.figures.save_figure` writes it. No global matplotlib state is changed.

Colours are the project's split colours (:mod:`gendyn.figures.style`): training points and
training accuracy blue, test vermillion, random inputs green; LC is drawn solid on the left
axis, accuracy dashed on a twin axis; x = optimisation step (+ 1 on a log axis, the paper's
choice and the default for log-spaced record schedules); shaded bands are ± ``band`` × the
standard deviation over points (paper: 0.25).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from pathlib import Path
from typing import Any

import gendyn.figures.style  # noqa: F401 - headless backend first
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from gendyn.figures.style import (
    SPLIT_COLORS as _SPLITS,
    XAxis,
    figure_legend,
    legend_outside,
    marker_kw,
    readable_key,
    readable_value,
)

__all__ = [
    "shown_radius",
    "draw",
    "dashboard_panel",
    "compare_rows",
    "SPLIT_COLORS",
    "ACC_COLORS",
    "lc_dynamics",
    "lc_layers",
    "lc_sweep",
    "pool_runs",
    "region_maps",
    "regions_vs_lc",
    "robustness",
]

logger = logging.getLogger(__name__)

SPLIT_COLORS = {k: _SPLITS[k] for k in ("train", "test", "random")}
ACC_COLORS = {k: _SPLITS[k] for k in ("train", "test")}
#: The paper's axis: optimisation step + 1 on a log scale (figures given no run attributes).
PAPER_X = XAxis(epoch=False, log=True)


def shown_radius(ds: xr.Dataset, radius: float | None = None) -> float:
    """The LC radius a view shows: the stored radius nearest ``radius``, default the largest.

    The one rule for every view of LC (LC figures, dashboard, sweep comparison); ``radius`` is
    ``analyses.lc.figures.radius``.
    """
    radii = np.atleast_1d(ds["radius"].values).astype(float)
    if radius is None:
        return float(radii.max())
    return float(radii[np.argmin(np.abs(radii - float(radius)))])


def _lc_panel(
    ax: plt.Axes,
    ds: xr.Dataset,
    radius: float,
    splits: Sequence[str],
    acc_splits: Sequence[str],
    band: float,
    xa: XAxis,
    *,
    ylabel: bool = True,
    acc_label: bool = True,
) -> plt.Axes | None:
    x = xa.values(ds)
    mk = marker_kw(len(x), size=2.5)
    total = ds["lc"].sel(radius=radius).sum("layer", skipna=False)
    for sp in splits:
        if sp not in ds["split"].values or int(ds["n_points"].sel(split=sp)) == 0:
            continue
        t = total.sel(split=sp)
        mean = t.mean("point", skipna=True).values
        std = t.std("point", skipna=True).values
        c = SPLIT_COLORS[sp]
        ax.plot(x, mean, color=c, lw=1.4, label=f"LC, {sp} points", **mk)
        if band > 0:
            ax.fill_between(x, mean - band * std, mean + band * std, color=c, alpha=0.2, lw=0)
    xa.apply(ax)
    if ylabel:
        ax.set_ylabel("LC (units cut, count)")
    ax.grid(alpha=0.3)
    twin = None
    accs = [sp for sp in acc_splits if f"{sp}_acc" in ds]
    if accs:
        twin = ax.twinx()
        for sp in accs:
            twin.plot(x, ds[f"{sp}_acc"].values, color=ACC_COLORS[sp], lw=1.0, ls="--", label=f"{sp} accuracy (right axis)", **mk)
        twin.set_ylim(-0.02, 1.02)
        if acc_label:
            twin.set_ylabel("accuracy (fraction)")
        else:
            twin.set_yticklabels([])
    return twin


def _handles(ax: plt.Axes, twin: plt.Axes | None) -> tuple[list[Any], list[str]]:
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels() if twin is not None else ([], [])
    return h1 + h2, l1 + l2


def _band_note(band: float) -> str:
    return f"bands: ± {band:g} std over points" if band > 0 else ""


def _title(ds: xr.Dataset) -> str:
    return f"{ds.attrs.get('experiment', '')} / {ds.attrs.get('run', '')}".strip(" /")


def lc_dynamics(
    lc: xr.Dataset,
    *,
    radius: float | None = None,
    band: float = 0.25,
    splits: Sequence[str] = ("train", "test", "random"),
    acc_splits: Sequence[str] = ("train", "test"),
    title: str | None = None,
    xa: XAxis = PAPER_X,
) -> Figure:
    """LC of train/test/random points and accuracy over training (paper 001, Fig. 2 and Fig. 9).

    Parameters
    ----------
    lc : Dataset
        ``analysis/lc/{run}.nc``: ``lc`` (record, split, radius, point, layer), ``step`` on
        record, ``train_acc``/``test_acc`` (record).
    radius : float, optional
        Neighbourhood radius (nearest stored one; default the largest).
    band : float
        Band half-width in standard deviations over points.
    splits, acc_splits : sequences of str
    title : str, optional
    xa : XAxis
        The x axis (default the paper's: step + 1, log scale).
    """
    r = shown_radius(lc, radius)
    fig, ax = plt.subplots(figsize=(8.2, 3.6), constrained_layout=True)
    twin = _lc_panel(ax, lc, r, splits, acc_splits, band, xa)
    handles, labels = _handles(ax, twin)
    if band > 0:
        handles.append(Patch(color="0.5", alpha=0.3, lw=0))
        labels.append(_band_note(band))
    figure_legend(fig, handles, labels, side="right")
    ax.set_title(f"{title if title is not None else _title(lc)}  (r = {r:g}, P = {lc.attrs.get('n_directions', '?')})", fontsize=9)
    return fig


def lc_layers(
    lc: xr.Dataset,
    *,
    radius: float | None = None,
    splits: Sequence[str] = ("train", "test", "random"),
    title: str | None = None,
    xa: XAxis = PAPER_X,
) -> Figure:
    """Layer-wise LC_l (mean over points) over training, one panel per layer (paper 001, Fig. 13-14)."""
    r = shown_radius(lc, radius)
    layers = list(lc["layer"].values)
    n = len(layers)
    ncol = min(n, 4)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.1 * ncol + 1.6, 2.6 * nrow + 0.3), squeeze=False, constrained_layout=True)
    x = xa.values(lc)
    for k, layer in enumerate(layers):
        ax = axes[k // ncol][k % ncol]
        sel = lc["lc"].sel(radius=r, layer=layer)
        for sp in splits:
            if int(lc["n_points"].sel(split=sp)) == 0:
                continue
            ax.plot(x, sel.sel(split=sp).mean("point", skipna=True).values, color=SPLIT_COLORS[sp], lw=1.2,
                    label=f"{sp} points", **marker_kw(len(x), size=2.5))  # fmt: skip
        n_units = int(lc["n_units"].sel(layer=layer)) if "n_units" in lc.coords else None
        ax.set_title(f"layer {k + 1} ({layer}" + (f", {n_units} units)" if n_units else ")"), fontsize=8)
        xa.apply(ax, label=False)
        ax.set_xlabel(xa.label, fontsize=8)
        ax.set_ylabel("LC_l (units cut, mean)", fontsize=8)
        ax.grid(alpha=0.3)
    spare = [axes[k // ncol][k % ncol] for k in range(n, nrow * ncol)]
    for ax in spare:
        ax.set_axis_off()
    handles, labels = axes[0][0].get_legend_handles_labels()
    if spare:
        spare[0].legend(handles, labels, loc="center", fontsize=8, frameon=False)
    else:
        figure_legend(fig, handles, labels, side="right")
    fig.suptitle(f"{title if title is not None else _title(lc)}: layer-wise LC (r = {r:g})", fontsize=10)
    return fig


def pool_runs(datasets: Sequence[xr.Dataset]) -> xr.Dataset:
    """Pool runs that differ only in their seed: points concatenated, accuracies averaged.

    Parameters
    ----------
    datasets : sequence of ``analysis/lc`` Datasets with the same record steps, splits, radii
        and layers.

    Returns
    -------
    Dataset with ``lc`` (record, split, radius, point, layer) over the points of every run,
    ``n_points`` summed and ``train_acc``/``test_acc`` averaged over the runs.
    """
    if len(datasets) == 1:
        return datasets[0]
    first = datasets[0]
    for ds in datasets[1:]:
        if not np.array_equal(ds["step"].values, first["step"].values):
            raise ValueError("pool_runs: the runs have different record steps; plot them separately")
    lc = xr.concat([ds["lc"].drop_vars("point") for ds in datasets], dim="point")
    out = xr.Dataset({"lc": lc, "n_points": sum(ds["n_points"] for ds in datasets)})
    for name in ("train_acc", "test_acc", "train_loss", "test_loss"):
        if all(name in ds for ds in datasets):
            out[name] = sum(ds[name] for ds in datasets) / len(datasets)
    out.attrs = dict(first.attrs)
    out.attrs["run"] = f"{len(datasets)} runs pooled"
    return out


def lc_sweep(
    runs: Mapping[str, xr.Dataset | Sequence[xr.Dataset]],
    *,
    radii: Sequence[float] | None = None,
    splits: Sequence[str] = ("train", "test", "random"),
    acc_splits: Sequence[str] = ("train", "test"),
    band: float = 0.25,
    title: str = "",
    xa: XAxis = PAPER_X,
) -> Figure:
    """LC dynamics of every run of a sweep: columns = runs, rows = radii (paper 001, Fig. 3-8, 10, 11).

    Parameters
    ----------
    runs : mapping of label -> Dataset or list of Datasets
        ``analysis/lc/{run}.nc`` of each run, labelled by its swept values (column titles); a
        list (runs differing only in their seed) is pooled with :func:`pool_runs`.
    radii : sequence of float, optional
        One row per radius (nearest stored one); default every stored radius.
    """
    if not runs:
        raise ValueError("lc_sweep: no runs given")
    n_pooled = {k: (len(v) if isinstance(v, (list, tuple)) else 1) for k, v in runs.items()}
    runs = {k: (pool_runs(v) if isinstance(v, (list, tuple)) else v) for k, v in runs.items()}
    first = next(iter(runs.values()))
    rows = [float(r) for r in (radii if radii else np.atleast_1d(first["radius"].values))]
    ncol = len(runs)
    fig, axes = plt.subplots(
        len(rows), ncol, figsize=(3.1 * ncol + 0.8, 2.5 * len(rows) + 1.0), squeeze=False, constrained_layout=True
    )
    handles: list = []
    for i, r in enumerate(rows):
        ymax = 0.0
        for j, (label, ds) in enumerate(runs.items()):
            ax = axes[i][j]
            rr = shown_radius(ds, r)
            twin = _lc_panel(ax, ds, rr, splits, acc_splits, band, xa, ylabel=False, acc_label=(j == ncol - 1))
            if not handles:
                handles = list(_handles(ax, twin))
            ymax = max(ymax, ax.get_ylim()[1])
            if i == 0:
                pooled = f"\n({n_pooled[label]} seeds pooled)" if n_pooled[label] > 1 else ""
                ax.set_title(label + pooled, fontsize=9)
            if j == 0:
                ax.set_ylabel(f"LC, r = {rr:g} (count)")
            if i != len(rows) - 1:
                ax.set_xlabel("")
        for j in range(ncol):
            axes[i][j].set_ylim(bottom=0, top=ymax)
    if handles:
        if band > 0:
            handles[0].append(Patch(color="0.5", alpha=0.3, lw=0))
            handles[1].append(_band_note(band))
        figure_legend(fig, *handles, side="bottom")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _regions_of(ds: xr.Dataset, record: int) -> tuple[list[np.ndarray], np.ndarray]:
    sel = np.flatnonzero(ds["region_record"].values == record)
    starts = ds["region_start"].values[sel]
    sizes = ds["region_size"].values[sel]
    verts = ds["vertex_uv"].values
    polys = [verts[s : s + n] for s, n in zip(starts, sizes)]
    return polys, ds["region_class"].values[sel]


def _grid(n: int) -> tuple[int, int]:
    """Rows and columns for ``n`` panels with as few blank cells as possible (at most 4 columns)."""
    if n <= 4:
        return 1, n
    best = min(((int(np.ceil(n / c)) * c - n, -c, c) for c in (3, 4)))
    c = best[2]
    return int(np.ceil(n / c)), c


def region_maps(regions: xr.Dataset, *, max_panels: int = 6, title: str | None = None) -> Figure:
    """Exact linear regions on the anchor plane at several steps (paper 001, Fig. 1).

    Region edges in black, faces coloured by the predicted class (legend), the decision boundary
    in red, the three anchor training images as white markers labelled by their class.
    """
    n_rec = regions.sizes["record"]
    pick = np.unique(np.round(np.linspace(0, n_rec - 1, min(max_panels, n_rec))).astype(int))
    nrow, ncol = _grid(len(pick))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol + 1.4, 3.2 * nrow + 0.4), squeeze=False, constrained_layout=True)
    cmap = plt.get_cmap("tab10")
    dom = regions["domain_uv"].values
    anchors = regions["anchor_uv"].values
    labels = regions["anchor_label"].values
    classes: set[int] = set()
    for k, rec in enumerate(pick):
        ax = axes[k // ncol][k % ncol]
        polys, cls = _regions_of(regions, int(rec))
        classes.update(int(c) for c in cls)
        faces = [(*cmap(int(c) % 10)[:3], 0.35) for c in cls]
        ax.add_collection(PolyCollection(polys, facecolors=faces, edgecolors="black", linewidths=0.25))
        segs = regions["segment_uv"].values[regions["segment_record"].values == rec]
        if len(segs):
            ax.add_collection(LineCollection(segs, colors="red", linewidths=1.4))
        ax.plot(*np.vstack([dom, dom[:1]]).T, color="0.3", lw=0.8)
        ax.scatter(anchors[:, 0], anchors[:, 1], s=30, c="white", edgecolors="black", zorder=5)
        for (u, v), lab in zip(anchors, labels):
            ax.annotate(str(int(lab)), (u, v), xytext=(3, 3), textcoords="offset points", fontsize=7)
        step = int(regions["step"].values[rec])
        ax.set_title(f"step {step}: {int(regions['n_regions'].values[rec])} regions", fontsize=9)
        ax.set_xlim(dom[:, 0].min(), dom[:, 0].max())
        ax.set_ylim(dom[:, 1].min(), dom[:, 1].max())
        ax.set_aspect("equal")
        ax.set_xlabel("u (along x2 - x1)", fontsize=8)
        ax.set_ylabel("v (along x3 - x1)", fontsize=8)
        ax.tick_params(labelsize=7)
    handles: list[Any] = [Patch(facecolor=(*cmap(c % 10)[:3], 0.35), edgecolor="0.3", lw=0.5) for c in sorted(classes)]
    names = [f"predicted class {c}" for c in sorted(classes)]
    from matplotlib.lines import Line2D

    handles += [Line2D([], [], color="red", lw=1.4), Line2D([], [], color="black", lw=0.5),
                Line2D([], [], ls="", marker="o", mfc="white", mec="black")]  # fmt: skip
    names += ["decision boundary", "region boundary", "anchor image (label = its class)"]
    spare = [axes[k // ncol][k % ncol] for k in range(len(pick), nrow * ncol)]
    for ax in spare:
        ax.set_axis_off()
    if spare:
        spare[0].legend(handles, names, loc="center", fontsize=8, frameon=False)
    else:
        figure_legend(fig, handles, names, side="right")
    head = title if title is not None else f"{regions.attrs.get('experiment', '')} / {regions.attrs.get('run', '')}"
    fig.suptitle(f"{head}: linear regions on the plane through three training images", fontsize=9)
    return fig


def regions_vs_lc(regions: xr.Dataset, *, title: str | None = None, xa: XAxis = PAPER_X) -> Figure:
    """Exact region count on local planes vs LC at the same points, over training (paper 001, Fig. 12)."""
    if "local_n_regions" not in regions:
        raise ValueError("regions_vs_lc: the regions dataset has no local_n_regions (analyses.lc.regions.local_points was 0)")
    x = regions["local_step"].values.astype(float) + (1.0 if xa.log else 0.0)
    mk = marker_kw(len(x), size=2.5)
    cnt = regions["local_n_regions"].values.astype(float)
    lc = regions["local_lc"].values.astype(float)
    fig, ax = plt.subplots(figsize=(8.8, 3.6), constrained_layout=True)
    m, s = cnt.mean(1), cnt.std(1)
    ax.plot(x, m, color="black", lw=1.4, label="exact regions in the 2-D local square (left axis)", **mk)
    ax.fill_between(x, m - 0.25 * s, m + 0.25 * s, color="black", alpha=0.15, lw=0)
    XAxis(epoch=False, log=xa.log).apply(ax)
    ax.set_ylabel("linear regions in the local square (count)")
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    m2, s2 = lc.mean(1), lc.std(1)
    twin.plot(x, m2, color=SPLIT_COLORS["train"], lw=1.4, label="LC, P-dim. cross-polytope (right axis)", **mk)
    twin.fill_between(x, m2 - 0.25 * s2, m2 + 0.25 * s2, color=SPLIT_COLORS["train"], alpha=0.2, lw=0)
    twin.set_ylabel("LC (units cut, count)", color=SPLIT_COLORS["train"])
    handles, labels = _handles(ax, twin)
    handles.append(Patch(color="0.5", alpha=0.3, lw=0))
    labels.append(_band_note(0.25))
    figure_legend(fig, handles, labels, side="right")
    head = title if title is not None else f"{regions.attrs.get('experiment', '')} / {regions.attrs.get('run', '')}"
    ax.set_title(
        f"{head}: mean over {regions.sizes['local_point']} training points, r = {float(regions.attrs.get('local_radius', np.nan)):g}",
        fontsize=9,
    )
    return fig


def robustness(
    robust: xr.Dataset,
    lc: xr.Dataset,
    *,
    radius: float | None = None,
    splits: Sequence[str] = ("train", "test", "random"),
    title: str | None = None,
    xa: XAxis = PAPER_X,
) -> Figure:
    """PGD robust accuracy next to LC over training (paper 001 code: delayed robustness, R1)."""
    r = shown_radius(lc, radius)
    fig, ax = plt.subplots(figsize=(8.8, 3.6), constrained_layout=True)
    _lc_panel(ax, lc, r, splits, (), 0.25, xa)
    twin = ax.twinx()
    xr_ = robust["step"].values.astype(float) + (1.0 if xa.log else 0.0)
    mk = marker_kw(len(xr_), size=3.5)
    twin.plot(xr_, robust["robust_acc"].values, color="black", lw=1.4,
              label=f"PGD robust accuracy, ε = {robust.attrs.get('eps', '?')} (right axis)", **mk)  # fmt: skip
    twin.plot(xr_, robust["clean_acc"].values, color=ACC_COLORS["test"], lw=1.0, ls="--",
              label="clean accuracy, same test images (right axis)", **mk)  # fmt: skip
    twin.set_ylim(-0.02, 1.02)
    twin.set_ylabel("accuracy (fraction)")
    handles, labels = _handles(ax, twin)
    handles.append(Patch(color="0.5", alpha=0.3, lw=0))
    labels.append(_band_note(0.25))
    figure_legend(fig, handles, labels, side="right")
    head = title if title is not None else _title(lc)
    ax.set_title(f"{head}: PGD-{robust.attrs.get('steps', '?')} robustness and LC (r = {r:g})", fontsize=9)
    return fig


# --------------------------------------------------------------------------- figure job and shared views


def _sweep_inputs(datasets: Sequence[xr.Dataset], table: Path | None) -> dict[str, list[xr.Dataset]]:
    """{label: [lc datasets]} in the order given: runs labelled by their swept values in
    runs.csv; runs that differ only in ``training.seed`` share a label (pooled in the figure)."""
    import pandas as pd

    from gendyn.figures.style import assignment_label

    rows: dict[str, str] = {}
    if table is not None:
        df = pd.read_csv(table)
        cols = [c for c in df.columns if c not in ("run", "training.seed") and df[c].nunique() > 1]
        for _, row in df.iterrows():
            rows[str(row["run"])] = assignment_label({c: row[c] for c in cols}) or "all seeds"
    out: dict[str, list[xr.Dataset]] = {}
    for ds in datasets:
        run = str(ds.attrs.get("run", ""))
        out.setdefault(rows.get(run, run), []).append(ds)
    return out


def _x_axis(job: Any) -> XAxis:
    """The jobs's x axis: the experiment's plot options on the run attributes (input ``run``),
    else the paper's log axis."""
    from gendyn import store
    from gendyn.figures.style import x_axis_for

    if not job.has("run"):
        return PAPER_X
    attrs = [store.check_run_file(p) for p in job.many("run")]
    return x_axis_for(job.view, attrs)


def draw(job: Any) -> Any:
    """Every LC figure a figure job's inputs allow (a :class:`gendyn.figures.jobs.FigureJob`).

    Run scope: ``dynamics`` and ``layers`` (input ``lc``), ``regions`` and, with local-plane
    counts, ``regions_vs_lc`` (input ``regions``), ``robust`` (inputs ``robust`` and ``lc``).
    Experiment scope: ``sweep`` (inputs ``lc`` of every run and ``runs_table``). With input
    ``run`` (``run.h5``, one per ``lc``) the x axis follows the experiment's plot options
    (log exactly for log-spaced record schedules); without it, the paper's log step axis.
    """
    f = job.measure_settings("lc")["figures"]
    xa = _x_axis(job)
    if job.scope == "experiment":
        runs = _sweep_inputs([job.open(p) for p in job.many("lc")], job.one("runs_table") if job.has("runs_table") else None)
        yield "sweep", lc_sweep(runs, radii=f["sweep_radii"], splits=f["splits"], acc_splits=f["acc_splits"],
                                band=f["band"], title=job.experiment, xa=xa)  # fmt: skip
        return
    lc = job.open(job.one("lc"))
    yield "dynamics", lc_dynamics(lc, radius=f["radius"], band=f["band"], splits=f["splits"], acc_splits=f["acc_splits"], xa=xa)
    yield "layers", lc_layers(lc, radius=f["radius"], splits=f["splits"], xa=xa)
    if job.has("regions"):
        regions = job.open(job.one("regions"))
        yield "regions", region_maps(regions, max_panels=f["max_region_panels"])
        if "local_n_regions" in regions:
            yield "regions_vs_lc", regions_vs_lc(regions, xa=xa)
    if job.has("robust"):
        yield "robust", robustness(job.open(job.one("robust")), lc, radius=f["radius"], xa=xa)


def dashboard_panel(ax: plt.Axes, lc: xr.Dataset, settings: Mapping[str, Any], xa: XAxis) -> None:
    """LC's panel of the run dashboard: mean LC of every point set at the shown radius."""
    r = shown_radius(lc, settings["figures"]["radius"])
    sel = lc.sel(radius=r)
    x = xa.values(sel)
    band = float(settings["figures"]["band"])
    for split in [str(s) for s in lc["split"].values]:
        mean = sel["lc_mean"].sel(split=split).values
        color = SPLIT_COLORS.get(split, "0.3")
        ax.plot(x, mean, color=color, lw=1.1, label=f"LC, {split} points", **marker_kw(len(x), size=2.5))
        if "lc_std" in sel and band > 0:
            std = sel["lc_std"].sel(split=split).values
            ax.fill_between(x, mean - band * std, mean + band * std, color=color, alpha=0.15, lw=0)
    if "lc_std" in sel and band > 0:
        ax.fill_between([], [], [], color="0.5", alpha=0.3, lw=0, label=_band_note(band))
    ax.set_ylabel(f"local complexity\n(r = {r:g}, mean)")


def compare_rows(lc: xr.Dataset, settings: Mapping[str, Any]) -> dict[str, xr.DataArray]:
    """LC's rows of the sweep comparison: mean LC of train and test points at the shown radius."""
    r = shown_radius(lc, settings["figures"]["radius"])
    splits = [str(s) for s in lc["split"].values]
    return {f"LC, {sp} points\n(r = {r:g}, mean)": lc["lc_mean"].sel(split=sp, radius=r) for sp in ("train", "test") if sp in splits}
