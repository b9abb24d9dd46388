"""Claims of paper 003 (memorization by gradient splitting) checked by the reproduction index.

Each function takes the :class:`~gendyn.reproduction.core.Evidence` of the experiments that
declare its figure and the thresholds ``reproduction.thresholds.memorization``. Per-run numbers
come from the experiment's ``analysis/memorization/summary.nc`` (stage ``summary``: epochs to
threshold, final and last-epochs accuracies, gradient-norm peak and final value) and the runs'
``/metrics``; runs are told apart by their configuration (``training.objective.name``,
``data.name``, ``data.mix_fraction``, ``training.objective.target``, the training-set size
``n_train``), never by their names. Epochs to threshold of a run that never reached it are
its last epoch, a lower bound (named in the note). ``docs/reproduction.md`` lists the claims.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from gendyn.reproduction.core import (
    NOT_REPRODUCED,
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
    trend,
)

__all__ = [
    "j_prime_below_chance",
    "j_generalizes",
    "heldout_drops",
    "memorization_slower",
    "noise_fitted_faster",
    "j0_holds_test_near_k",
    "mixture_noise_faster",
    "noise_larger_faster",
    "images_larger_slower",
    "jt_tracks_target",
    "jt_higher_target_faster",
    "gradnorm_peak_lower",
    "gradnorm_final_higher",
    "basin_ratio",
]

_NOISE = "gaussian_noise"


def _objective(run: RunResult) -> str | None:
    return run.get("training.objective.name")


def _is_noise(run: RunResult) -> bool:
    return run.get("data.name") == _NOISE


def _rows(ev: Evidence) -> dict[tuple[str, str], dict[str, Any]]:
    return {run.key: row for run, row in summary_rows(ev) if run is not None}


def _epochs(row: Mapping[str, Any]) -> tuple[float, bool]:
    """(epochs to threshold, censored): a run that never reached it gives its last epoch."""
    e = row.get("epochs_to_threshold", np.nan)
    if np.isfinite(e):
        return float(e), False
    return float(row.get("censored_at", np.nan)), True


def _chance(run: RunResult) -> float:
    n = run.attrs.get("n_classes")
    return 1.0 / float(n) if n else float("nan")


def _with_row(ev: Evidence, fn: Callable[[RunResult, Mapping[str, Any]], Outcome]) -> Callable[[RunResult], Outcome]:
    rows = _rows(ev)

    def one(run: RunResult) -> Outcome:
        if run.key not in rows:
            return not_run(f"{run.run} missing from summary.nc")
        return fn(run, rows[run.key])

    return one


def _select(ev: Evidence, pred: Callable[[RunResult], bool]) -> list[RunResult]:
    return [r for r in ev.runs if pred(r)]


# --------------------------------------------------------------------------- Fig 1


def j_prime_below_chance(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 003 Sec. 2 / Fig. 1a: gradient splitting J′ drives the test accuracy to or below
    chance while the training accuracy rises above 90 %.

    Statistic: the final test accuracy of the J′ runs (median over runs). Per run
    ``reproduced``: test accuracy ≤ chance (1 / classes) and final train accuracy ≥
    ``train_min``; ``partial``: test ≤ chance but the train accuracy below ``train_min``;
    ``not reproduced``: test above chance.
    """
    thr = f"test ≤ chance and train ≥ {fmt(t['train_min'])} (partial: test ≤ chance)"

    def one(run: RunResult, row: Mapping[str, Any]) -> Outcome:
        test, train, chance = row["final_test_acc"], row["final_train_acc"], _chance(run)
        note = f"final test {fmt(test)} (chance {fmt(chance)}), train {fmt(train)}"
        verdict: Verdict = NOT_REPRODUCED if not test <= chance else REPRODUCED if train >= t["train_min"] else PARTIAL
        return Outcome(test, verdict, thr, note)

    return per_run(ev, _with_row(ev, one), t, _select(ev, lambda r: _objective(r) == "J_prime"), what="J_prime runs")


def j_generalizes(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 003 Sec. 2 / Fig. 1a: with the ordinary objective J the same model generalizes: at
    90 % training accuracy the test accuracy is about 60 % (CIFAR-10).

    Statistic: the test accuracy at the first epoch with train accuracy ≥ ``train_min``
    (``/metrics``), median over the J runs. ``reproduced`` ≥ ``j_test_min``, ``partial`` above
    chance; ``not reproduced`` when the training accuracy never gets there.
    """
    thr = f"test acc at train ≥ {fmt(t['train_min'])}: ≥ {fmt(t['j_test_min'])} (partial > chance)"

    def one(run: RunResult) -> Outcome:
        m = run.metrics
        tr, te = np.asarray(m["train_acc"].values), np.asarray(m["test_acc"].values)
        hit = np.flatnonzero(tr >= t["train_min"])
        if not len(hit):
            return Outcome(float("nan"), NOT_REPRODUCED, thr, f"train accuracy reaches only {fmt(np.nanmax(tr))}")
        v = float(te[hit[0]])
        note = f"train {fmt(tr[hit[0]])} at epoch {fmt(float(m['epoch'].values[hit[0]]))}, chance {fmt(_chance(run))}"
        return Outcome(v, at_least(v, t["j_test_min"], _chance(run) + 1e-12), thr, note)

    return per_run(ev, one, t, _select(ev, lambda r: _objective(r) == "J" and r.metrics is not None), what="J runs")


def heldout_drops(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 003 Sec. 2 / Fig. 1a (unseen data): splitting against one half of the training set
    also ruins the accuracy on data the model never used (the held-out test set).

    Statistic: mean held-out accuracy of the J runs minus that of the J′ runs over the last
    epochs (``heldout_acc_last``). ``reproduced`` ≥ ``heldout_drop``, ``partial`` > 0;
    ``not run`` without held-out data (``test_source: train_split``) or without both objectives.
    """
    thr = f"J − J′ held-out acc ≥ {fmt(t['heldout_drop'])} (partial > 0)"
    rows = _rows(ev)
    runs = ev.healthy()
    j = [rows[r.key]["heldout_acc_last"] for r in runs if _objective(r) == "J" and r.key in rows]
    jp = [rows[r.key]["heldout_acc_last"] for r in runs if _objective(r) == "J_prime" and r.key in rows]
    j, jp = [v for v in j if np.isfinite(v)], [v for v in jp if np.isfinite(v)]
    if not j or not jp:
        return not_run(f"needs held-out accuracies of J and J′ runs (got {len(j)} J, {len(jp)} J′)", thr)
    v = float(np.mean(j) - np.mean(jp))
    used = tuple(r.key for r in runs if _objective(r) in ("J", "J_prime"))
    return Outcome(v, at_least(v, t["heldout_drop"], 1e-12), thr, f"held-out acc J {fmt(np.mean(j))}, J′ {fmt(np.mean(jp))}", used)


def _mean_epochs(rows: Mapping[tuple[str, str], Mapping[str, Any]], runs: list[RunResult]) -> tuple[float, int]:
    vals = [_epochs(rows[r.key]) for r in runs if r.key in rows]
    return float(np.mean([v for v, _ in vals])) if vals else float("nan"), sum(c for _, c in vals)


def _ratio_claim(ev: Evidence, t: Mapping[str, Any], slow: list[RunResult], fast: list[RunResult], names: tuple[str, str],
                 full: float) -> Outcome:  # fmt: skip
    """slow/fast ratio of mean epochs to threshold, with censoring spelled out."""
    thr = f"{names[0]} / {names[1]} epochs ≥ {fmt(full)} (partial > 1)"
    rows = _rows(ev)
    slow, fast = [r for r in slow if r.key in rows], [r for r in fast if r.key in rows]
    if not slow or not fast:
        return not_run(f"needs {names[0]} and {names[1]} runs (got {len(slow)}, {len(fast)})", thr)
    es, cs = _mean_epochs(rows, slow)
    ef, cf = _mean_epochs(rows, fast)
    note = f"mean epochs to threshold: {names[0]} {fmt(es)} ({cs}/{len(slow)} censored), {names[1]} {fmt(ef)} ({cf}/{len(fast)} censored)"
    used = tuple(r.key for r in slow + fast)
    ratio = es / ef if ef > 0 else float("nan")
    if cf and cs:
        return Outcome(ratio, NOT_REPRODUCED, thr, note + "; both never reached the threshold in some runs: no ordering", used)
    if cf:  # the fast side is a lower bound: the ratio is an upper bound
        verdict: Verdict = NOT_REPRODUCED if ratio <= 1 else PARTIAL
        return Outcome(ratio, verdict, thr, note + f"; {names[1]} censored: the ratio is an upper bound", used)
    verdict = at_least(ratio, full, 1.0 + 1e-12)
    if cs:
        note += f"; {names[0]} censored: the ratio is a lower bound"
    return Outcome(ratio, verdict, thr, note, used)


def memorization_slower(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 003 Sec. 2 / Fig. 1b: memorizing (J′) needs many more epochs to reach 90 % training
    accuracy than generalizing training (J).

    Statistic: mean epochs to threshold (``summary.nc``) of the J′ runs ÷ that of the J runs.
    ``reproduced`` ≥ ``epochs_ratio`` (J′ never reaching it counts with its last epoch, a lower
    bound), ``partial`` > 1.
    """
    runs = ev.healthy()
    return _ratio_claim(ev, t, [r for r in runs if _objective(r) == "J_prime"], [r for r in runs if _objective(r) == "J"],
                        ("J′", "J"), t["epochs_ratio"])  # fmt: skip


# --------------------------------------------------------------------------- Fig 2


def _j0(run: RunResult) -> bool:
    return _objective(run) == "J0"


def noise_fitted_faster(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 003 Sec. 2 / Fig. 2a: under J⁰ fixed Gaussian noise is memorized in fewer epochs
    than natural images (CIFAR-10).

    Statistic: mean epochs to threshold of the J⁰ image runs ÷ that of the J⁰ noise runs
    (``data.name: gaussian_noise``), pooled over the declaring experiments. ``reproduced`` ≥
    ``noise_speedup``, ``partial`` > 1.
    """
    runs = [r for r in ev.healthy() if _j0(r)]
    images = [r for r in runs if not _is_noise(r) and r.get("data.name") != "mixture"]
    return _ratio_claim(ev, t, images, [r for r in runs if _is_noise(r)], ("images", "noise"), t["noise_speedup"])


def j0_holds_test_near_k(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 003 Sec. 2 / Fig. 2a: J⁰ holds the test accuracy at (or below) its threshold k.

    Statistic: mean test accuracy over the last epochs (``test_acc_last``) minus k, median over
    the J⁰ runs. Per run ``reproduced`` ≤ ``k_tolerance``, ``partial`` ≤ ``k_tolerance_partial``.
    """
    thr = f"test − k ≤ {fmt(t['k_tolerance'])} (partial ≤ {fmt(t['k_tolerance_partial'])})"

    def one(run: RunResult, row: Mapping[str, Any]) -> Outcome:
        k = float(run.get("training.objective.k", np.nan))
        v = row["test_acc_last"] - k
        return Outcome(v, at_most(v, t["k_tolerance"], t["k_tolerance_partial"]), thr, f"test acc (last epochs) {fmt(row['test_acc_last'])}, k {fmt(k)}")

    return per_run(ev, _with_row(ev, one), t, _select(ev, _j0), what="J0 runs")


def _epochs_of(ev: Evidence) -> Callable[[RunResult], float]:
    rows = _rows(ev)
    return lambda r: _epochs(rows[r.key])[0] if r.key in rows else float("nan")


def _n_train(run: RunResult) -> Any:
    return run.attrs.get("n_train") or run.get("data.first_n") or run.get("data.train_subset")


def mixture_noise_faster(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 003 Sec. 2 / Fig. 2b: mixing noise into CIFAR-10 makes memorization faster — the
    smaller the fraction f of real signal, the fewer epochs.

    Statistic: Spearman ρ between ``data.mix_fraction`` and the epochs to threshold (censored
    runs at their last epoch); expected ρ > 0 (``reproduced``: ρ of that sign with |ρ| ≥ ``trend_min_rho`` over ≥ ``trend_min_values`` values; ``partial``: the
    right sign; :func:`~gendyn.reproduction.core.trend`).
    """
    runs = [r for r in ev.runs if r.get("data.mix_fraction") is not None]
    return trend(runs, lambda r: r.get("data.mix_fraction"), _epochs_of(ev), +1, t, key_name="data.mix_fraction", stat_name="epochs")


def noise_larger_faster(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 003 Sec. 2 / Fig. 2c (ConvNet), Fig. S1a (ResNet-18): larger noise datasets are
    memorized in fewer epochs.

    Statistic: Spearman ρ between the training-set size (``n_train``) and the epochs to
    threshold of the noise runs; expected ρ < 0
    (``reproduced``: ρ of that sign with |ρ| ≥ ``trend_min_rho`` over ≥ ``trend_min_values`` values; ``partial``: the
    right sign; :func:`~gendyn.reproduction.core.trend`).
    """
    return trend([r for r in ev.runs if _is_noise(r)], _n_train, _epochs_of(ev), -1, t, key_name="training-set size (noise)",
                 stat_name="epochs")  # fmt: skip


def images_larger_slower(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 003 Sec. 2 / Fig. 2c (ConvNet), Fig. S1b (ResNet-18): larger CIFAR-10 subsets are
    memorized more slowly.

    Statistic: Spearman ρ between the training-set size and the epochs to threshold of the
    image runs (not noise, not mixtures); expected ρ > 0
    (``reproduced``: ρ of that sign with |ρ| ≥ ``trend_min_rho`` over ≥ ``trend_min_values`` values; ``partial``: the
    right sign; :func:`~gendyn.reproduction.core.trend`).
    """
    runs = [r for r in ev.runs if not _is_noise(r) and r.get("data.name") != "mixture"]
    return trend(runs, _n_train, _epochs_of(ev), +1, t, key_name="training-set size (images)", stat_name="epochs")


def jt_tracks_target(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 003 Sec. 2 / Fig. 2d: under Jᵗ (l = u = target) the test accuracy is sent towards
    the target.

    Statistic: |mean test accuracy over the last epochs − target|, median over the Jᵗ runs. Per
    run ``reproduced`` ≤ ``target_tolerance``, ``partial`` ≤ ``target_tolerance_partial``.
    """
    thr = f"|test − target| ≤ {fmt(t['target_tolerance'])} (partial ≤ {fmt(t['target_tolerance_partial'])})"

    def one(run: RunResult, row: Mapping[str, Any]) -> Outcome:
        target = run.get("training.objective.target")
        if target is None:
            target = run.get("training.objective.u")
        v = abs(row["test_acc_last"] - float(target))
        return Outcome(v, at_most(v, t["target_tolerance"], t["target_tolerance_partial"]), thr,
                       f"test acc (last epochs) {fmt(row['test_acc_last'])}, target {fmt(target)}")  # fmt: skip

    return per_run(ev, _with_row(ev, one), t, _select(ev, lambda r: _objective(r) == "Jt"), what="Jt runs")


def jt_higher_target_faster(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 003 Sec. 2 / Fig. 2d: the higher the target test accuracy, the easier (fewer
    epochs) the training under Jᵗ.

    Statistic: Spearman ρ between ``training.objective.target`` and the epochs to threshold;
    expected ρ < 0
    (``reproduced``: ρ of that sign with |ρ| ≥ ``trend_min_rho`` over ≥ ``trend_min_values`` values; ``partial``: the
    right sign; :func:`~gendyn.reproduction.core.trend`).
    """
    runs = _select(ev, lambda r: _objective(r) == "Jt")
    return trend(runs, lambda r: r.get("training.objective.target"), _epochs_of(ev), -1, t, key_name="training.objective.target",
                 stat_name="epochs")  # fmt: skip


# --------------------------------------------------------------------------- Sec. 4, Fig 3


def _gradnorm(ev: Evidence, var: str) -> tuple[float, float, tuple[tuple[str, str], ...]]:
    rows = _rows(ev)
    runs = ev.healthy()
    j = [rows[r.key][var] for r in runs if _objective(r) == "J" and r.key in rows]
    jp = [rows[r.key][var] for r in runs if _objective(r) == "J_prime" and r.key in rows]
    used = tuple(r.key for r in runs if _objective(r) in ("J", "J_prime") and r.key in rows)
    return (float(np.mean(j)) if j else float("nan"), float(np.mean(jp)) if jp else float("nan"), used)


def gradnorm_peak_lower(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 003 Sec. 4: the first-layer gradient norm peaks lower under J′ (about 0.1) than
    under J (just under 1).

    Statistic: mean peak of ``gradnorm_first_weight`` of the J′ runs ÷ that of the J runs
    (``summary.nc``). ``reproduced`` ≤ ``gradnorm_peak_ratio``, ``partial`` < 1.
    """
    thr = f"J′ / J peak ≤ {fmt(t['gradnorm_peak_ratio'])} (partial < 1)"
    j, jp, used = _gradnorm(ev, "gradnorm_first_weight_peak")
    if not (np.isfinite(j) and np.isfinite(jp)):
        return not_run("needs J and J′ runs", thr)
    v = jp / j
    return Outcome(v, at_most(v, t["gradnorm_peak_ratio"], 1.0 - 1e-12), thr, f"peak J {fmt(j)}, J′ {fmt(jp)}", used)


def gradnorm_final_higher(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 003 Sec. 4: at the end of training the first-layer gradient norm is far larger
    under J′ (about 5e-3) than under J (about 5e-6): memorizing ends in less stable regions.

    Statistic: mean final ``gradnorm_first_weight`` of the J′ runs ÷ that of the J runs.
    ``reproduced`` ≥ ``gradnorm_final_ratio``, ``partial`` > 1.
    """
    thr = f"J′ / J final ≥ {fmt(t['gradnorm_final_ratio'])} (partial > 1)"
    j, jp, used = _gradnorm(ev, "gradnorm_first_weight_final")
    if not (np.isfinite(j) and np.isfinite(jp)):
        return not_run("needs J and J′ runs", thr)
    v = jp / j if j > 0 else float("nan")
    return Outcome(v, at_least(v, t["gradnorm_final_ratio"], 1.0 + 1e-12), thr, f"final J {fmt(j)}, J′ {fmt(jp)}", used)


def basin_ratio(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 003 Sec. 3 / Fig. 3 (schematic): in n = 1000 dimensions the less stable basin is
    (2/3)^1000 = 1/1.2e176 of the more stable one.

    Statistic: log10 of the basin-size ratio b/a for n = 1000
    (:func:`gendyn.memorization.summary.basin_ratio_log10`, computed, no runs). ``reproduced``
    within ``basin_tolerance`` of the paper's 176.09.
    """
    from gendyn.memorization.summary import basin_ratio_log10

    v = -float(basin_ratio_log10(1000))  # log10(b / a)
    paper = 176.0913
    thr = f"|value − {paper}| ≤ {fmt(t['basin_tolerance'])}"
    return Outcome(v, REPRODUCED if abs(v - paper) <= t["basin_tolerance"] else NOT_REPRODUCED, thr, "computed (schematic)", runs=())
