"""Claims of paper 000 (image functions: paths) checked by the reproduction index.

Each function takes the :class:`~gendyn.reproduction.core.Evidence` of the experiments that
declare its figure (``reproduces: ["000:Fig 5", ...]``) and the thresholds
``reproduction.thresholds.paths`` and returns an :class:`~gendyn.reproduction.core.Outcome`;
``docs/reproduction.md`` lists them. Per-run values come from ``analysis/paths/{run}.nc``
(stage ``compute``), the early/mid ratio from ``analysis/paths/summary.nc`` (stage
``summary``). Claims about "every layer" take the weakest layer among the analysed ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gendyn.reproduction.core import (
    NOT_REPRODUCED,
    NOT_RUN,
    PARTIAL,
    REPRODUCED,
    Evidence,
    Outcome,
    RunResult,
    Verdict,
    at_least,
    at_most,
    fmt,
    not_run,
    per_run,
    summary_rows,
)

__all__ = [
    "cross_path_below_one",
    "cross_path_rises",
    "activation_below_one",
    "overlap_not_linear",
    "self_similarity_below_one_early",
    "self_similarity_rises_to_one",
    "self_similarity_constant_lr",
    "neighbours_change",
    "activation_neighbours_change",
    "ratio_predicts_generalization",
    "constant_lr_records",
]


def _by_layer(values: Any) -> str:
    return ", ".join(f"{k}: {fmt(float(v))}" for k, v in zip(values["layer"].values, values.values))


def _median_below(run: RunResult, var: str, t: Mapping[str, Any]) -> Outcome:
    ds = run.analyses["compute"]
    if var not in ds:
        return not_run(f"{var} not computed (needs recorded activations)")
    med = ds[var].sel(quantile=0.5, method="nearest")
    frac = (med < t["perfect"]).mean("record")
    v = float(frac.min())
    thr = f"fraction of records with median < {fmt(t['perfect'])} ≥ {fmt(t['below_one_fraction'])} in every layer (partial > 0)"
    note = f"fraction by layer {_by_layer(frac)} over {ds.sizes['record']} records"
    return Outcome(v, at_least(v, t["below_one_fraction"], 1e-12), thr, note)


def cross_path_below_one(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 000 Sec. 6.1-6.3 / Figs. 1-3, 16: for most of training the cross-path similarity S
    of image pairs is below 1 — pairs meet on different units at different times.

    Statistic: the fraction of record points at which the median of S over pairs
    (``cross_path_q``) is below ``perfect``, in the weakest layer. ``reproduced`` ≥
    ``below_one_fraction`` (a majority of training), ``partial`` > 0 (only early).
    """
    return per_run(ev, lambda r: _median_below(r, "cross_path_q", t), t)


def activation_below_one(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 000 Sec. 6.1 / Fig. 1 (right column): the activation similarity A of image pairs
    is also below 1 for most of training.

    Statistic as :func:`cross_path_below_one`, on ``act_cross_q``: ``reproduced`` ≥
    ``below_one_fraction``, ``partial`` > 0; ``not run`` when the runs recorded no activations.
    """
    return per_run(ev, lambda r: _median_below(r, "act_cross_q", t), t)


def cross_path_rises(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 000 Sec. 6.2-6.3 / Figs. 1-3, 16: the cross-path similarity becomes higher (more
    correlated) later in training.

    Statistic: mean S over pairs (``cross_path_mean``) at the last record minus at the first,
    in the weakest layer. ``reproduced`` ≥ ``cross_path_rise``, ``partial`` > 0.
    """
    thr = f"last − first ≥ {fmt(t['cross_path_rise'])} in every layer (partial > 0)"

    def one(run: RunResult) -> Outcome:
        m = run.analyses["compute"]["cross_path_mean"]
        rise = m.isel(record=-1) - m.isel(record=0)
        v = float(rise.min())
        return Outcome(v, at_least(v, t["cross_path_rise"], 1e-12), thr, f"rise by layer {_by_layer(rise)}")

    return per_run(ev, one, t)


def overlap_not_linear(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 000 Sec. 6.4 / Fig. 4: there is no clean linear relation between the input distance
    ‖x_i − x_j‖ of two images and their path overlap.

    Statistic: the largest |Pearson r| over layers between distance and overlap at the last
    overlap record (``overlap_pearson``). ``reproduced`` ≤ ``max_abs_pearson``, ``partial`` ≤
    ``max_abs_pearson_partial``.
    """
    thr = f"max |r| ≤ {fmt(t['max_abs_pearson'])} (partial ≤ {fmt(t['max_abs_pearson_partial'])})"

    def one(run: RunResult) -> Outcome:
        r = abs(run.analyses["compute"]["overlap_pearson"].isel(overlap_record=-1))
        v = float(r.max())
        return Outcome(v, at_most(v, t["max_abs_pearson"], t["max_abs_pearson_partial"]), thr, f"|r| by layer {_by_layer(r)}")

    return per_run(ev, one, t)


def self_similarity_below_one_early(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 000 Sec. 7.1 / Fig. 5: especially early in training an image does not pass through
    the same units from one epoch to the next (self-similarity σ < 1).

    Statistic: the fraction of tracked images with σ < ``perfect`` at the first record, in the
    weakest layer. ``reproduced`` ≥ ``early_below_one``, ``partial`` > 0.
    """
    thr = f"fraction of images with σ < {fmt(t['perfect'])} at the first record ≥ {fmt(t['early_below_one'])} (partial > 0)"

    def one(run: RunResult) -> Outcome:
        s = run.analyses["compute"]["self_sim"].isel(record=0)
        frac = (s < t["perfect"]).mean("image")
        v = float(frac.min())
        return Outcome(v, at_least(v, t["early_below_one"], 1e-12), thr, f"fraction by layer {_by_layer(frac)}")

    return per_run(ev, one, t)


def self_similarity_rises_to_one(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 000 Sec. 7.1 / Fig. 5: self-similarity approaches 1 late in training (the same
    image settles on the same units).

    Statistic: mean σ over images (``self_sim_mean``) at the last record, in the weakest layer.
    ``reproduced`` ≥ ``late_self_sim`` and above the first record's; ``partial`` when it rose
    but stays below ``late_self_sim``.
    """
    thr = f"≥ {fmt(t['late_self_sim'])} and rising (partial: rising)"

    def one(run: RunResult) -> Outcome:
        m = run.analyses["compute"]["self_sim_mean"]
        last, first = m.isel(record=-1), m.isel(record=0)
        v = float(last.min())
        rose = bool(((last - first) > 0).all())
        verdict: Verdict = REPRODUCED if (rose and v >= t["late_self_sim"]) else PARTIAL if rose else NOT_REPRODUCED
        return Outcome(v, verdict, thr, f"first → last by layer: {_by_layer(first)} → {_by_layer(last)}")

    return per_run(ev, one, t)


def constant_lr_records(run: RunResult) -> tuple[np.ndarray, str]:
    """Indices of the records (of the paths analysis) trained at the first learning rate.

    A record t compares masks at steps ``prev_step`` and ``step``; the updates between them
    used the learning rate recorded at ``prev_step`` (``lr`` in ``/metrics`` is the rate of the
    next update). The records from the first while that rate equals the first record's form
    the constant-LR stretch; without metrics the decays in the attribute ``decay_epochs`` are
    used. Returns (indices, description).
    """
    ds = run.analyses["compute"]
    prev = np.asarray(ds["prev_step"].values)
    if run.metrics is not None and "lr" in run.metrics:
        lr = np.asarray(run.metrics["lr"].sel(step=prev, method="nearest").values, dtype=float)
        same = np.isclose(lr, lr[0], rtol=1e-9, atol=0.0)
        n = len(same) if same.all() else int(np.argmin(same))
        kind = "constant learning rate" if same.all() else f"learning rate {fmt(lr[0])} until its first change"
        return np.arange(n), kind
    decays = ds.attrs.get("decay_epochs")
    if isinstance(decays, str):
        import json

        decays = json.loads(decays)
    decays = list(np.atleast_1d(decays)) if decays is not None and len(np.atleast_1d(decays)) else []
    epochs = np.asarray(ds["epoch"].values, dtype=float)
    if not decays:
        return np.arange(len(epochs)), "constant learning rate"
    return np.flatnonzero(epochs <= float(decays[0]) + 1e-9), f"epochs up to the first decay ({fmt(decays[0])})"


def self_similarity_constant_lr(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 000 Fig. 5, control: self-similarity rises towards 1 while the learning rate is
    constant, so its rise is not only the effect of the learning-rate decay.

    Statistic: mean σ (weakest layer) at the end of the constant-learning-rate stretch
    (:func:`constant_lr_records`: a whole run trained at a constant rate, or the records before
    the first decay of a decaying run). ``reproduced``: it rose over the stretch by ≥
    ``constant_lr_rise`` and reached ``late_self_sim``; ``partial``: it rose by ≥
    ``constant_lr_rise`` but stays below ``late_self_sim``; ``not reproduced`` otherwise. Runs
    with a constant rate over the whole training are preferred when the experiment has them.
    """
    thr = f"σ ≥ {fmt(t['late_self_sim'])} after a rise ≥ {fmt(t['constant_lr_rise'])} at constant LR (partial: the rise)"
    runs = ev.healthy()
    constant = [r for r in runs if len(constant_lr_records(r)[0]) == r.analyses["compute"].sizes["record"]]

    def one(run: RunResult) -> Outcome:
        idx, kind = constant_lr_records(run)
        m = run.analyses["compute"]["self_sim_mean"]
        if len(idx) < 2:
            return Outcome(float("nan"), NOT_REPRODUCED, thr, f"fewer than 2 records at the first learning rate ({kind})")
        first, last = m.isel(record=int(idx[0])), m.isel(record=int(idx[-1]))
        rise = float((last - first).min())
        v = float(last.min())
        ep = m["epoch"].values
        note = f"{kind}: epochs {fmt(ep[idx[0]])}-{fmt(ep[idx[-1]])}, σ {_by_layer(first)} → {_by_layer(last)}"
        if rise < t["constant_lr_rise"]:
            return Outcome(v, NOT_REPRODUCED, thr, note)
        return Outcome(v, REPRODUCED if v >= t["late_self_sim"] else PARTIAL, thr, note)

    keys = {r.key for r in constant}
    chosen = [r for r in ev.runs if r.key in keys or r.diverged] if constant else list(ev.runs)
    out = per_run(ev, one, t, chosen)
    if not constant and ev.runs:
        out = Outcome(out.value, out.verdict, out.threshold, "no run at a constant learning rate: the stretch before the first decay; " + out.note, out.runs)
    return out


def _top1_changes(run: RunResult, var: str, t: Mapping[str, Any]) -> Outcome:
    ds = run.analyses["compute"]
    if var not in ds:
        return not_run(f"{var} not computed (baselines need ≥ n_candidates + 1 tracked images; App. E needs activations)")
    layer = int(t["rank_layer"])
    idx = np.asarray(ds["layer_index"].values)
    if layer not in idx:
        return not_run(f"layer {layer} (rank_layer) not analysed; layers {idx.tolist()}")
    ranks = np.asarray(ds[var].isel(layer=int(np.flatnonzero(idx == layer)[0])).values)  # (record, baseline, candidate)
    top1 = ranks.argmin(axis=-1)
    changes = (np.diff(top1, axis=0) != 0).sum(axis=0)
    v = float(np.mean(changes >= 1))
    thr = f"fraction of baselines whose nearest neighbour changes ≥ {fmt(t['neighbour_change_fraction'])} (partial > 0)"
    note = f"layer {layer}: nearest-neighbour changes per baseline {changes.tolist()} over {ranks.shape[0]} records"
    return Outcome(v, at_least(v, t["neighbour_change_fraction"], 1e-12), thr, note)


def neighbours_change(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 000 Sec. 8 / Fig. 6: the nearest neighbours of an image by path overlap change
    during training.

    Statistic: the fraction of baseline images whose nearest neighbour (rank 0 by path overlap,
    ``nn_rank`` in layer ``rank_layer``) changes at least once. ``reproduced`` ≥
    ``neighbour_change_fraction``, ``partial`` > 0.
    """
    return per_run(ev, lambda r: _top1_changes(r, "nn_rank", t), t)


def activation_neighbours_change(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 000 App. E: ranked by activation similarity too, the nearest neighbours change.

    As :func:`neighbours_change` on ``nn_rank_act`` (ranks by activation cosine): ``reproduced`` ≥
    ``neighbour_change_fraction``, ``partial`` > 0; ``not run`` without recorded activations.
    """
    return per_run(ev, lambda r: _top1_changes(r, "nn_rank_act", t), t)


def ratio_predicts_generalization(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 000 Sec. 8 / Fig. 7: the ratio R of early to mid cross-path similarity is roughly
    linearly related to generalisation across models.

    Statistic: Pearson r between R and the final test accuracy over the declared runs of every
    declaring experiment (pooled; ``summary`` stage). ``reproduced``: at least
    ``fig7_min_runs`` runs and fig7_sign · r ≥ ``fig7_min_r`` (the paper's hypothesis: a higher
    early/mid ratio goes with better generalisation, sign +1); ``partial``: the right sign but
    fewer runs or a weaker r; ``not reproduced``: the wrong sign; ``not run`` with fewer than
    3 runs.
    """
    thr = f"{'r' if t['fig7_sign'] > 0 else '−r'} ≥ {fmt(t['fig7_min_r'])} over ≥ {int(t['fig7_min_runs'])} runs (partial: right sign)"
    rows = [(run, row) for run, row in summary_rows(ev) if run is not None]
    dropped = [run.diverged_note for run, _ in rows if run.diverged]
    rows = [(run, row) for run, row in rows if not run.diverged and np.isfinite(row.get("R", np.nan)) and np.isfinite(row.get("test_acc", np.nan))]
    keys = tuple(run.key for run, _ in rows)
    if len(rows) < 3:
        extra = f"; left out: {', '.join(dropped)}" if dropped else ""
        return Outcome(float("nan"), NOT_RUN, thr, f"{len(rows)} runs with a finite R: a correlation needs ≥ 3{extra}", keys)
    R = np.array([row["R"] for _, row in rows])
    acc = np.array([row["test_acc"] for _, row in rows])
    r = float(np.corrcoef(R, acc)[0, 1]) if R.std() > 0 and acc.std() > 0 else float("nan")
    s = float(t["fig7_sign"]) * r
    note = f"{len(rows)} runs, R {fmt(R.min())}-{fmt(R.max())}, test acc {fmt(acc.min())}-{fmt(acc.max())}"
    if dropped:
        note += f"; left out: {', '.join(dropped)}"
    if len(rows) < t["fig7_min_runs"]:
        note += f"; fewer than {int(t['fig7_min_runs'])} runs"
    if not np.isfinite(s) or s <= 0:
        verdict: Verdict = NOT_REPRODUCED
        note += "; the correlation has the opposite sign" if np.isfinite(s) else "; no variation"
    elif s >= t["fig7_min_r"] and len(rows) >= t["fig7_min_runs"]:
        verdict = REPRODUCED
    else:
        verdict = PARTIAL
    return Outcome(r, verdict, thr, note, keys)

