"""Claims of paper 001 (local complexity) checked by the reproduction index.

Each function takes the :class:`~gendyn.reproduction.core.Evidence` of the experiments that
declare its figure (``reproduces: ["001:Fig 2", ...]``) and the thresholds
``reproduction.thresholds.lc`` (schema defaults filled) and returns an
:class:`~gendyn.reproduction.core.Outcome`; ``docs/reproduction.md`` lists them. The per-run
analyses are read by stage name: ``compute`` (``analysis/lc/{run}.nc``), ``regions``,
``robust``.

LC curves are the mean over points (``lc_mean``) of split ``split`` at radius ``radius``
(null: the largest stored radius) against the record points. The *phases* of a curve c(t)
(:func:`phases`): the ascent is the largest rise c(b)/c(a), a < b (the trough a and the peak
b); the first descent is 1 − min_{t ≤ b} c(t)/c(0); the second descent 1 − c(end)/c(b).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gendyn.reproduction.core import (
    NOT_REPRODUCED,
    Evidence,
    Outcome,
    RunResult,
    at_least,
    at_most,
    fmt,
    not_run,
    per_run,
    spearman,
    trend,
)

__all__ = [
    "phases",
    "first_descent",
    "ascent",
    "second_descent",
    "grokking_delayed_generalization",
    "grokking_second_ascent",
    "no_first_descent",
    "region_migration",
    "regions_track_lc",
    "shallow_layers_sharper",
    "shallow_layers_train_test_gap",
    "delayed_robustness",
    "depth_flattens_ascent",
    "bn_removes_second_descent",
    "bn_raises_lc",
    "cnn_depth_raises_peak",
    "width_first_descent",
    "weight_decay_lowers_peak",
    "grok_depth_raises_peak",
    "data_shrinks_ascent",
    "random_labels_data_raises_peak",
]


# --------------------------------------------------------------------------- curves


def phases(curve: np.ndarray) -> dict[str, Any]:
    """The descent-ascent-descent phases of an LC curve.

    Parameters
    ----------
    curve : (R,) float
        Mean LC at the record points, in step order.

    Returns
    -------
    dict with ``trough`` a and ``peak`` b (record indices of the largest rise c(b)/c(a), a ≤ b;
    a = b when the curve never rises), ``first_descent`` = 1 − min_{t ≤ b} c(t)/c(0),
    ``ascent`` = c(b)/c(a), ``second_descent`` = 1 − c(R−1)/c(b), ``peak_value`` = c(b).

    Notes
    -----
    The largest *ratio* rise is found in one pass (running minimum). A curve that only falls
    has ascent 1 and its first descent is its overall fall.
    """
    c = np.asarray(curve, dtype=float)
    if c.ndim != 1 or len(c) < 2 or not np.all(np.isfinite(c)):
        raise ValueError(f"an LC curve needs ≥ 2 finite values, got {c!r}")
    best, a, b = 1.0, 0, 0
    lo = 0
    for j in range(1, len(c)):
        if c[j] < c[lo]:
            lo = j
        ratio = c[j] / c[lo] if c[lo] > 0 else (np.inf if c[j] > 0 else 1.0)
        if ratio > best:
            best, a, b = ratio, lo, j
    if best <= 1.0:  # never rises: the trough is the overall minimum, no peak after it
        a = b = int(np.argmin(c))
    first = 1.0 - float(np.min(c[: b + 1])) / c[0] if c[0] > 0 else 0.0
    second = 1.0 - c[-1] / c[b] if c[b] > 0 else 0.0
    return {"trough": a, "peak": b, "first_descent": first, "ascent": float(best), "second_descent": float(second),
            "peak_value": float(c[b])}  # fmt: skip


def _radius(ds: Any, t: Mapping[str, Any]) -> float:
    radii = np.asarray(ds["radius"].values, dtype=float)
    if t.get("radius") is None:
        return float(radii.max())
    return float(radii[np.argmin(np.abs(radii - float(t["radius"])))])


def _curve(run: RunResult, t: Mapping[str, Any], var: str = "lc_mean", layer: Any = None) -> tuple[np.ndarray, np.ndarray, str]:
    """(steps, curve, description) of LC of split ``t['split']`` at the claim's radius."""
    ds = run.analyses["compute"]
    r = _radius(ds, t)
    sel = ds[var].sel(split=t.get("split", "train"), radius=r)
    if layer is not None:
        sel = sel.isel(layer=layer)
    steps, c = np.asarray(ds["step"].values), np.asarray(sel.values, dtype=float)
    keep = np.isfinite(c)  # a record without points of the split (or a failed one) is skipped
    return steps[keep], c[keep], f"{t.get('split', 'train')} LC, r = {fmt(r)}"


def _phases_of(run: RunResult, t: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, dict[str, Any], str]:
    steps, c, what = _curve(run, t)
    return steps, c, phases(c), what


def _phase_note(steps: np.ndarray, c: np.ndarray, p: Mapping[str, Any], what: str) -> str:
    a, b = p["trough"], p["peak"]
    return (f"{what}: {fmt(c[0])} at step 0, trough {fmt(c[a])} at step {int(steps[a])}, peak {fmt(c[b])} at step "
            f"{int(steps[b])}, {fmt(c[-1])} at the last step {int(steps[-1])}")  # fmt: skip


# --------------------------------------------------------------------------- Fig 2: the three phases


def first_descent(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4 / Fig. 2: after initialisation LC around training points first decreases.

    Statistic: depth of the first descent, 1 − min_{t ≤ peak} LC(t) / LC(0) (:func:`phases`).
    ``reproduced`` ≥ ``first_descent``, ``partial`` ≥ ``first_descent_partial``. Per run, then
    over runs (:func:`~gendyn.reproduction.core.per_run`).
    """

    def one(run: RunResult) -> Outcome:
        steps, c, p, what = _phases_of(run, t)
        thr = f"≥ {fmt(t['first_descent'])} (partial ≥ {fmt(t['first_descent_partial'])})"
        v = p["first_descent"]
        return Outcome(v, at_least(v, t["first_descent"], t["first_descent_partial"]), thr, _phase_note(steps, c, p, what))

    return per_run(ev, one, t)


def ascent(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4 / Fig. 2: after the first descent LC rises again (the ascent).

    Statistic: the largest rise of the curve, LC(peak) / LC(trough) (:func:`phases`).
    ``reproduced`` ≥ ``ascent``, ``partial`` ≥ ``ascent_partial``. Per run, then over runs.
    """

    def one(run: RunResult) -> Outcome:
        steps, c, p, what = _phases_of(run, t)
        thr = f"≥ {fmt(t['ascent'])} (partial ≥ {fmt(t['ascent_partial'])})"
        v = p["ascent"]
        return Outcome(v, at_least(v, t["ascent"], t["ascent_partial"]), thr, _phase_note(steps, c, p, what))

    return per_run(ev, one, t)


def second_descent(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4 / Fig. 2: after the ascent LC falls again until the end of training.

    Statistic: 1 − LC(last record) / LC(peak), the peak of the ascent (:func:`phases`).
    ``reproduced`` ≥ ``second_descent``, ``partial`` ≥ ``second_descent_partial``; a curve
    without an ascent (below ``ascent_partial``) or whose peak is the last record is not
    reproduced, the note says which. Per run, then over runs.
    """

    def one(run: RunResult) -> Outcome:
        steps, c, p, what = _phases_of(run, t)
        thr = f"≥ {fmt(t['second_descent'])} (partial ≥ {fmt(t['second_descent_partial'])})"
        note = _phase_note(steps, c, p, what)
        v = p["second_descent"]
        if p["ascent"] < t["ascent_partial"]:
            return Outcome(v, NOT_REPRODUCED, thr, note + "; no ascent, so no second descent after it")
        if p["peak"] == len(c) - 1:
            return Outcome(v, NOT_REPRODUCED, thr, note + "; LC still rising at the last record: training ended in the ascent")
        return Outcome(v, at_least(v, t["second_descent"], t["second_descent_partial"]), thr, note)

    return per_run(ev, one, t)


# --------------------------------------------------------------------------- Figs 8, 9: grokking


def _acc(run: RunResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ds = run.analyses["compute"]
    return (np.asarray(ds["step"].values), np.asarray(ds["train_acc"].values, dtype=float),
            np.asarray(ds["test_acc"].values, dtype=float))  # fmt: skip


def _grok_times(run: RunResult, t: Mapping[str, Any]) -> dict[str, Any]:
    """Memorisation step (train acc ≥ grok_train_acc) and generalisation step (test acc at the
    middle of its rise after memorisation), with the rise."""
    steps, tr, te = _acc(run)
    hit = np.flatnonzero(tr >= t["grok_train_acc"])
    out: dict[str, Any] = {"train_max": float(np.nanmax(tr))}
    if not len(hit):
        return out
    i = int(hit[0])
    after = te[i:]
    jump = float(np.nanmax(after) - te[i])
    out.update(i_train=i, step_train=int(steps[i]), test_at_train=float(te[i]), jump=jump)
    if jump <= 0:
        return out
    mid = te[i] + 0.5 * jump
    j = i + int(np.flatnonzero(after >= mid)[0])
    out.update(i_test=j, step_test=int(steps[j]), delay=(steps[j] + 1.0) / (steps[i] + 1.0))
    return out


def grokking_delayed_generalization(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4.4 / Fig. 9 (after Liu et al. 2022): with α-scaled initialisation the
    training accuracy saturates early and the test accuracy jumps much later (grokking).

    Statistic: the delay (s_test + 1) / (s_train + 1) between the first record with train
    accuracy ≥ ``grok_train_acc`` and the record where the test accuracy has covered half of its
    rise after it. ``reproduced``: delay ≥ ``grok_delay`` and the rise ≥ ``grok_min_jump``;
    ``partial``: delay ≥ ``grok_delay_partial`` with that rise; ``not reproduced`` when the
    training accuracy never reaches ``grok_train_acc`` or the test accuracy does not rise.
    """
    thr = f"delay ≥ {fmt(t['grok_delay'])} (partial ≥ {fmt(t['grok_delay_partial'])}), test rise ≥ {fmt(t['grok_min_jump'])}"

    def one(run: RunResult) -> Outcome:
        g = _grok_times(run, t)
        if "step_train" not in g:
            return Outcome(float("nan"), NOT_REPRODUCED, thr,
                           f"train accuracy reaches only {fmt(g['train_max'])} < {fmt(t['grok_train_acc'])}: not memorised yet")  # fmt: skip
        note = f"train acc ≥ {fmt(t['grok_train_acc'])} at step {g['step_train']} (test {fmt(g['test_at_train'])}); test rise after it {fmt(g['jump'])}"
        if g["jump"] < t["grok_min_jump"] or "delay" not in g:
            return Outcome(float("nan"), NOT_REPRODUCED, thr, note + " (no jump)")
        note += f", half-way at step {g['step_test']}"
        return Outcome(g["delay"], at_least(g["delay"], t["grok_delay"], t["grok_delay_partial"]), thr, note)

    return per_run(ev, one, t)


def grokking_second_ascent(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4.4 / Fig. 9: in grokking LC around training points rises again (a second
    ascent) right before the test accuracy jumps.

    Statistic: the largest relative LC rise max_{a<b} LC(b)/LC(a) − 1 within the window of
    ``grok_window_decades`` decades of steps that ends at the test-accuracy jump (located as in
    :func:`grokking_delayed_generalization`). ``reproduced`` ≥ ``grok_lc_rise``, ``partial`` > 0;
    ``not reproduced`` when there is no jump to locate the window.
    """
    thr = f"rise ≥ {fmt(t['grok_lc_rise'])} in the {fmt(t['grok_window_decades'])} decade(s) before the test jump (partial > 0)"

    def one(run: RunResult) -> Outcome:
        g = _grok_times(run, t)
        if "delay" not in g or g["jump"] < t["grok_min_jump"]:
            return Outcome(float("nan"), NOT_REPRODUCED, thr, "no test-accuracy jump after memorisation: the window before it cannot be located")
        steps, c, what = _curve(run, t)
        lo = (g["step_test"] + 1.0) / 10 ** float(t["grok_window_decades"]) - 1.0
        window = np.flatnonzero((steps >= lo) & (steps <= g["step_test"]))
        if len(window) < 2:
            return Outcome(float("nan"), NOT_REPRODUCED, thr, f"fewer than 2 records between step {fmt(lo)} and the jump at {g['step_test']}")
        rise = phases(c[window])["ascent"] - 1.0
        note = f"{what} rises by {fmt(rise)} between steps {int(steps[window[0]])} and {g['step_test']} (test jump)"
        return Outcome(rise, at_least(rise, t["grok_lc_rise"], 1e-12), thr, note)

    return per_run(ev, one, t)


def no_first_descent(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4.4 / Fig. 8: with α-scaled initialisation (grokking) the first descent
    is almost absent; the ascent starts early.

    Statistic: the first-descent depth (:func:`phases`). ``reproduced`` ≤ ``grok_first_descent``,
    ``partial`` ≤ ``first_descent`` (shallower than a normal first descent).
    """

    def one(run: RunResult) -> Outcome:
        steps, c, p, what = _phases_of(run, t)
        thr = f"≤ {fmt(t['grok_first_descent'])} (partial ≤ {fmt(t['first_descent'])})"
        v = p["first_descent"]
        return Outcome(v, at_most(v, t["grok_first_descent"], t["first_descent"]), thr, _phase_note(steps, c, p, what))

    return per_run(ev, one, t)


# --------------------------------------------------------------------------- Fig 1, Fig 12: exact regions


def _segment_distance(points: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """Distance of each point (N, 2) to the nearest segment (S, 2, 2); inf without segments."""
    if len(segs) == 0:
        return np.full(len(points), np.inf)
    p0, p1 = segs[:, 0], segs[:, 1]
    d = p1 - p0
    dd = np.maximum((d * d).sum(-1), 1e-300)
    rel = points[:, None, :] - p0[None]
    s = np.clip((rel * d[None]).sum(-1) / dd[None], 0.0, 1.0)
    closest = p0[None] + s[..., None] * d[None]
    return np.sqrt(((points[:, None, :] - closest) ** 2).sum(-1)).min(axis=1)


def boundary_share(regions: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per record of a region map: the share of regions nearer the decision boundary than any anchor.

    Parameters
    ----------
    regions : xarray.Dataset
        ``analysis/regions/{run}.nc`` (``vertex_uv``, ``region_record``, ``region_start``,
        ``region_size``, ``segment_uv``, ``segment_record``, ``anchor_uv``, coord ``step``).

    Returns
    -------
    (steps, share) of shape (R,): share = fraction of the record's regions whose vertex centroid
    is closer to a decision-boundary segment than to the nearest of the three anchor images
    (0 where a record has no decision boundary in the plane).
    """
    verts = np.asarray(regions["vertex_uv"].values, dtype=float)
    start = np.asarray(regions["region_start"].values)
    size = np.asarray(regions["region_size"].values)
    rec = np.asarray(regions["region_record"].values)
    sums = np.add.reduceat(verts, start, axis=0) if len(start) else np.zeros((0, 2))
    centroids = sums / np.maximum(size, 1)[:, None]
    anchors = np.asarray(regions["anchor_uv"].values, dtype=float)
    segs = np.asarray(regions["segment_uv"].values, dtype=float)
    seg_rec = np.asarray(regions["segment_record"].values)
    records = np.asarray(regions["record"].values)
    share = np.zeros(len(records))
    for k, r in enumerate(records):
        cen = centroids[rec == r]
        if not len(cen):
            continue
        d_db = _segment_distance(cen, segs[seg_rec == r])
        d_a = np.sqrt(((cen[:, None, :] - anchors[None]) ** 2).sum(-1)).min(axis=1)
        share[k] = float(np.mean(d_db < d_a))
    return np.asarray(regions["step"].values), share


def region_migration(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4 / Fig. 1: in the final LC descent the linear regions migrate away from
    the training points towards the decision boundary.

    Statistic: the rise of the boundary share (:func:`boundary_share`, exact region maps on the
    plane through three training images) from the map nearest the peak of the LC ascent
    (:func:`phases` of the ``compute`` curve) to the last map. ``reproduced`` ≥ ``migration``,
    ``partial`` ≥ ``migration_partial``; ``not reproduced`` when the LC peak is at the last
    record (no final descent yet) or no map lies after the peak.
    """
    thr = f"share rise ≥ {fmt(t['migration'])} (partial ≥ {fmt(t['migration_partial'])})"

    def one(run: RunResult) -> Outcome:
        steps, c, p, what = _phases_of(run, t)
        peak_step = int(steps[p["peak"]])
        rsteps, share = boundary_share(run.analyses["regions"])
        table = ", ".join(f"step {int(s)}: {fmt(v)}" for s, v in zip(rsteps, share))
        note = f"boundary share {table}; {what} peaks at step {peak_step}"
        if p["peak"] == len(c) - 1:
            return Outcome(float("nan"), NOT_REPRODUCED, thr, note + " (the last record): no final descent yet")
        ref = int(np.argmin(np.abs(np.log1p(rsteps) - np.log1p(peak_step))))
        if ref == len(rsteps) - 1:
            return Outcome(float("nan"), NOT_REPRODUCED, thr, note + "; no region map after the peak")
        v = float(share[-1] - share[ref])
        return Outcome(v, at_least(v, t["migration"], t["migration_partial"]), thr, note)

    return per_run(ev, one, t)


def regions_track_lc(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 3.3 / Fig. 12: the exact number of linear regions in a local 2-D
    neighbourhood and LC follow the same trend over training.

    Statistic: Spearman ρ over the local records between the mean exact region count and the
    mean LC of the same points (``regions`` stage, ``local_n_regions`` / ``local_lc``).
    ``reproduced`` ≥ ``regions_lc_rho``, ``partial`` ≥ ``regions_lc_rho_partial``.
    """
    thr = f"ρ ≥ {fmt(t['regions_lc_rho'])} (partial ≥ {fmt(t['regions_lc_rho_partial'])})"

    def one(run: RunResult) -> Outcome:
        ds = run.analyses["regions"]
        if "local_n_regions" not in ds or ds.sizes.get("local_record", 0) < 3:
            return not_run("no local region counts (analyses.lc.regions.local_points = 0 or < 3 records)", thr)
        n = np.asarray(ds["local_n_regions"].mean("local_point").values, dtype=float)
        lc = np.asarray(ds["local_lc"].mean("local_point").values, dtype=float)
        rho = spearman(n, lc)
        note = f"{ds.sizes['local_record']} records, {ds.sizes['local_point']} points"
        return Outcome(rho, at_least(rho, t["regions_lc_rho"], t["regions_lc_rho_partial"]), thr, note)

    return per_run(ev, one, t)


# --------------------------------------------------------------------------- Figs 13-14: layers


def _layer_curves(run: RunResult, t: Mapping[str, Any]) -> tuple[Any, float]:
    ds = run.analyses["compute"]
    return ds, _radius(ds, t)


def shallow_layers_sharper(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4.2 / Figs. 13-14: shallow layers have a sharper ascent peak than deep layers.

    Statistic: the ascent (:func:`phases` of the per-layer mean LC_l of split ``split``) of the
    first ReLU layer divided by that of the last. ``reproduced`` ≥ ``layer_sharpness``,
    ``partial`` > 1; ``not run`` with one layer.
    """
    thr = f"≥ {fmt(t['layer_sharpness'])} (partial > 1)"

    def one(run: RunResult) -> Outcome:
        ds, r = _layer_curves(run, t)
        if ds.sizes.get("layer", 0) < 2:
            return not_run("one ReLU layer: nothing to compare", thr)
        cur = ds["lc_layer_mean"].sel(split=t["split"], radius=r)
        first, last = phases(np.asarray(cur.isel(layer=0).values)), phases(np.asarray(cur.isel(layer=-1).values))
        v = first["ascent"] / last["ascent"]
        layers = [str(x) for x in ds["layer"].values]
        note = f"ascent {layers[0]}: {fmt(first['ascent'])}, {layers[-1]}: {fmt(last['ascent'])} (r = {fmt(r)})"
        return Outcome(v, at_least(v, t["layer_sharpness"], 1.0 + 1e-12), thr, note)

    return per_run(ev, one, t)


def shallow_layers_train_test_gap(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4.2 / Figs. 13-14: train and test LC differ in shallow layers and agree in
    deep layers.

    Statistic: the mean relative gap |LC_l(train) − LC_l(test)| / LC_l(test) over the records
    from the trough of the total train LC onwards, first ReLU layer minus last.
    ``reproduced`` ≥ ``layer_gap``, ``partial`` > 0; ``not run`` with one layer.
    """
    thr = f"gap(first) − gap(last) ≥ {fmt(t['layer_gap'])} (partial > 0)"

    def one(run: RunResult) -> Outcome:
        ds, r = _layer_curves(run, t)
        if ds.sizes.get("layer", 0) < 2:
            return not_run("one ReLU layer: nothing to compare", thr)
        _, _, p, _ = _phases_of(run, t)
        cur = ds["lc_layer_mean"].sel(radius=r).isel(record=slice(p["trough"], None))
        tr, te = cur.sel(split="train"), cur.sel(split="test")
        gap = (np.abs(tr - te) / te.where(te > 0)).mean("record")
        g0, g1 = float(gap.isel(layer=0)), float(gap.isel(layer=-1))
        v = g0 - g1
        layers = [str(x) for x in ds["layer"].values]
        note = f"relative train-test gap {layers[0]}: {fmt(g0)}, {layers[-1]}: {fmt(g1)} (r = {fmt(r)})"
        return Outcome(v, at_least(v, t["layer_gap"], 1e-12), thr, note)

    return per_run(ev, one, t)


# --------------------------------------------------------------------------- R1: robustness


def delayed_robustness(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001, authors' code (R1): adversarial robustness emerges late in training, with the
    second LC descent, after the clean accuracy has saturated.

    Statistic: PGD robust accuracy at the last robustness record minus its value at the first
    record where the clean accuracy reaches ``clean_saturation`` × its maximum (``robust``
    stage). ``reproduced`` ≥ ``robust_gain``, ``partial`` ≥ ``robust_gain_partial``.
    """
    thr = f"robust-acc gain after clean saturation ≥ {fmt(t['robust_gain'])} (partial ≥ {fmt(t['robust_gain_partial'])})"

    def one(run: RunResult) -> Outcome:
        ds = run.analyses["robust"]
        steps = np.asarray(ds["step"].values)
        rob, clean = np.asarray(ds["robust_acc"].values, dtype=float), np.asarray(ds["clean_acc"].values, dtype=float)
        i = int(np.flatnonzero(clean >= t["clean_saturation"] * np.nanmax(clean))[0])
        v = float(rob[-1] - rob[i])
        table = ", ".join(f"{int(s)}: {fmt(r_)}/{fmt(c_)}" for s, r_, c_ in zip(steps, rob, clean))
        note = f"robust/clean acc by step {table}; clean saturates at step {int(steps[i])}"
        if i == len(steps) - 1:
            return Outcome(float("nan"), NOT_REPRODUCED, thr, note + " (the last record): nothing after it")
        return Outcome(v, at_least(v, t["robust_gain"], t["robust_gain_partial"]), thr, note)

    return per_run(ev, one, t)


# --------------------------------------------------------------------------- sweeps: Figs 3-8, 10, 11


def _stat(name: str, t: Mapping[str, Any]) -> Any:
    def get(run: RunResult) -> float:
        return float(phases(_curve(run, t)[1])[name])

    return get


def _n_train(run: RunResult) -> Any:
    return run.attrs.get("n_train") or run.get("data.train_subset") or run.get("data.first_n")


def depth_flattens_ascent(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4.2 / Fig. 3: deeper MLPs have a lower, flatter ascent.

    Statistic: Spearman ρ between ``model.depth`` and the ascent (:func:`phases`), seeds averaged;
    expected ρ < 0 (``reproduced``: ρ of that sign with |ρ| ≥ ``trend_min_rho`` over ≥ ``trend_min_values`` values; ``partial``: the
    right sign; :func:`~gendyn.reproduction.core.trend`).
    """
    return trend(ev.runs, lambda r: r.get("model.depth"), _stat("ascent", t), -1, t, key_name="model.depth", stat_name="ascent")


def _bn_split(ev: Evidence) -> tuple[list[RunResult], list[RunResult]]:
    runs = ev.healthy()
    return [r for r in runs if not r.get("model.bn")], [r for r in runs if r.get("model.bn")]


def bn_removes_second_descent(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4.3 / Figs. 4-5: batch normalisation largely removes the second descent.

    Statistic: mean second-descent depth (:func:`phases`) of the runs without BN minus that of
    the runs with BN (``model.bn``). ``reproduced`` ≥ ``bn_gap``, ``partial`` > 0; ``not run``
    without runs of both kinds.
    """
    thr = f"≥ {fmt(t['bn_gap'])} (partial > 0)"
    plain, bn = _bn_split(ev)
    if not plain or not bn:
        return not_run(f"needs runs with and without model.bn (got {len(plain)} without, {len(bn)} with)", thr)
    sd = _stat("second_descent", t)
    a, b = float(np.mean([sd(r) for r in plain])), float(np.mean([sd(r) for r in bn]))
    v = a - b
    note = f"mean second descent without BN {fmt(a)} ({len(plain)} runs), with BN {fmt(b)} ({len(bn)} runs)"
    return Outcome(v, at_least(v, t["bn_gap"], 1e-12), thr, note, tuple(r.key for r in plain + bn))


def bn_raises_lc(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4.3 / Figs. 4-5: batch normalisation raises LC throughout training.

    Statistic: mean over records and runs of the LC curve with BN divided by that without.
    ``reproduced`` ≥ ``bn_lc_ratio``, ``partial`` > 1; ``not run`` without runs of both kinds.
    """
    thr = f"≥ {fmt(t['bn_lc_ratio'])} (partial > 1)"
    plain, bn = _bn_split(ev)
    if not plain or not bn:
        return not_run(f"needs runs with and without model.bn (got {len(plain)} without, {len(bn)} with)", thr)
    a = float(np.mean([_curve(r, t)[1].mean() for r in plain]))
    b = float(np.mean([_curve(r, t)[1].mean() for r in bn]))
    v = b / a if a > 0 else float("nan")
    note = f"mean LC with BN {fmt(b)}, without {fmt(a)}"
    return Outcome(v, at_least(v, t["bn_lc_ratio"], 1.0 + 1e-12), thr, note, tuple(r.key for r in plain + bn))


def cnn_depth_raises_peak(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4.2 / Fig. 4: for CNNs on CIFAR-10 (without BN) depth raises the ascent peak.

    Statistic: Spearman ρ between ``model.depth`` and the peak LC (:func:`phases`) of the runs
    without BN; expected ρ > 0 (``reproduced``: ρ of that sign with |ρ| ≥ ``trend_min_rho`` over ≥ ``trend_min_values`` values; ``partial``: the
    right sign; :func:`~gendyn.reproduction.core.trend`).
    """
    runs = [r for r in ev.runs if not r.get("model.bn")]
    return trend(runs, lambda r: r.get("model.depth"), _stat("peak_value", t), +1, t, key_name="model.depth", stat_name="peak LC")


def width_first_descent(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4.2 / Fig. 6: narrow networks start from a low LC and show no first descent;
    the first descent deepens with width.

    Statistic: Spearman ρ between ``model.width`` and the first-descent depth; expected ρ > 0
    (``reproduced``: ρ of that sign with |ρ| ≥ ``trend_min_rho`` over ≥ ``trend_min_values`` values; ``partial``: the
    right sign; :func:`~gendyn.reproduction.core.trend`).
    """
    return trend(ev.runs, lambda r: r.get("model.width"), _stat("first_descent", t), +1, t, key_name="model.width",
                 stat_name="first descent")  # fmt: skip


def weight_decay_lowers_peak(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4.3 / Fig. 7: stronger weight decay lowers the ascent peak (and delays or
    removes the second descent).

    Statistic: Spearman ρ between ``training.weight_decay`` and the peak LC; expected ρ < 0
    (``reproduced``: ρ of that sign with |ρ| ≥ ``trend_min_rho`` over ≥ ``trend_min_values`` values; ``partial``: the
    right sign; :func:`~gendyn.reproduction.core.trend`).
    """
    return trend(ev.runs, lambda r: r.get("training.weight_decay"), _stat("peak_value", t), -1, t,
                 key_name="training.weight_decay", stat_name="peak LC")  # fmt: skip


def grok_depth_raises_peak(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4.4 / Fig. 8: under grokking initialisation deeper networks reach a higher
    ascent peak.

    Statistic: Spearman ρ between ``model.depth`` and the peak LC; expected ρ > 0
    (``reproduced``: ρ of that sign with |ρ| ≥ ``trend_min_rho`` over ≥ ``trend_min_values`` values; ``partial``: the
    right sign; :func:`~gendyn.reproduction.core.trend`).
    """
    return trend(ev.runs, lambda r: r.get("model.depth"), _stat("peak_value", t), +1, t, key_name="model.depth", stat_name="peak LC")


def data_shrinks_ascent(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4.4 / Fig. 10: with true labels more training data shrinks (removes) the ascent.

    Statistic: Spearman ρ between the number of training images (``run.h5`` ``n_train``) and the
    ascent; expected ρ < 0
    (``reproduced``: ρ of that sign with |ρ| ≥ ``trend_min_rho`` over ≥ ``trend_min_values`` values; ``partial``: the
    right sign; :func:`~gendyn.reproduction.core.trend`).
    """
    return trend(ev.runs, _n_train, _stat("ascent", t), -1, t, key_name="training-set size", stat_name="ascent")


def random_labels_data_raises_peak(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 001 Sec. 4.4 / Fig. 11: with random labels more training data lengthens the ascent
    and raises the LC peak.

    Statistic: Spearman ρ between the number of training images and the peak train LC;
    expected ρ > 0
    (``reproduced``: ρ of that sign with |ρ| ≥ ``trend_min_rho`` over ≥ ``trend_min_values`` values; ``partial``: the
    right sign; :func:`~gendyn.reproduction.core.trend`).
    """
    return trend(ev.runs, _n_train, _stat("peak_value", t), +1, t, key_name="training-set size", stat_name="peak LC")
