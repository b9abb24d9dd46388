"""Claims of paper 002 (local elasticity, Fig. 5) checked by the reproduction index.

Each function takes the :class:`~gendyn.reproduction.core.Evidence` of the experiments that
declare ``"002:Fig 5"`` and the thresholds ``reproduction.thresholds.elasticity``; it reads the
Fig. 5 analysis ``analysis/elasticity/histograms/{run}.nc`` (stage ``histograms``; ``{run}``
is ``pretrained`` for given weights). ``docs/reproduction.md`` lists the claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gendyn.reproduction.core import Evidence, Outcome, RunResult, at_least, fmt, per_run

__all__ = ["own_class_highest", "within_exceeds_between"]


def own_class_highest(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 002 Sec. 3 / Fig. 5: an SGD step on an image of one class moves the logits of
    images of that class most (its histogram of LE(x, x') lies furthest right); dissimilar
    classes move least.

    Statistic: the fraction of update classes whose own class has the highest median LE among
    the probe classes (``class_median``, rows = update class). ``reproduced`` ≥
    ``own_class_fraction``, ``partial`` ≥ ``own_class_fraction_partial``.

    Notes
    -----
    The paper's classes are two similar felines and a bear; the check is the generic reading
    of its ordering (own class first), which needs no list of similar classes.
    """
    thr = f"≥ {fmt(t['own_class_fraction'])} (partial ≥ {fmt(t['own_class_fraction_partial'])})"

    def one(run: RunResult) -> Outcome:
        ds = run.analyses["histograms"]
        m = np.asarray(ds["class_median"].values, dtype=float)
        names = [str(x) for x in ds["class_name_i"].values] if "class_name_i" in ds.coords else [str(x) for x in ds["class_i"].values]
        ok = [bool(np.nanargmax(row) == i) for i, row in enumerate(m)]
        v = float(np.mean(ok))
        rows = "; ".join(f"{n} → " + ", ".join(f"{names[j]} {fmt(m[i, j])}" for j in range(len(names))) for i, n in enumerate(names))
        note = f"median LE by update → probe class: {rows}"
        return Outcome(v, at_least(v, t["own_class_fraction"], t["own_class_fraction_partial"]), thr, note)

    return per_run(ev, one, t)


def within_exceeds_between(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 002 Sec. 3 / Fig. 5 (after He & Su 2020): LE is larger between images of the same
    class than between images of different classes (local elasticity).

    Statistic: R = median LE over same-class pairs ÷ median LE over different-class pairs
    (``ratio_median`` of the Fig. 5 analysis; LE is heavy-tailed). ``reproduced`` ≥
    ``le_ratio``, ``partial`` > 1.
    """
    thr = f"≥ {fmt(t['le_ratio'])} (partial > 1)"

    def one(run: RunResult) -> Outcome:
        ds = run.analyses["histograms"]
        v = float(ds["ratio_median"])
        note = f"median within {fmt(float(ds['within_median']))}, between {fmt(float(ds['between_median']))}; means ratio {fmt(float(ds['ratio']))}"
        return Outcome(v, at_least(v, t["le_ratio"], 1.0 + 1e-12), thr, note)

    return per_run(ev, one, t)
