"""Claims of paper 002's neurashed simulator (Figs. 1-4, Sec. 3) checked by the reproduction index.

The evidence is one study (``neurashed.studies.<study>`` with ``reproduces``): its outputs
``results/neurashed/<study>/<phenomenon>.nc`` by phenomenon (stage) name, every one with a
``seed`` dim. Claims over seeds report the median and the spread over seeds and need the
effect in at least a fraction ``min_run_fraction`` of the seeds for ``reproduced``. Figs. 1
and 2 are drawings of the built-in graph ``fig1``: their claims check the graph the study
draws (``gendyn.neurashed.graphs``). ``docs/reproduction.md`` lists the claims.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gendyn.reproduction.core import (
    NOT_REPRODUCED,
    PARTIAL,
    REPRODUCED,
    Evidence,
    Outcome,
    Verdict,
    fmt,
    not_run,
)

__all__ = [
    "graph_structure",
    "pathways",
    "small_batch_concentrates",
    "large_batch_uniform",
    "information_bottleneck",
    "local_elasticity_ordering",
]


def _seeds_verdict(ok: Sequence[bool], partial: Sequence[bool], t: Mapping[str, Any]) -> Verdict:
    """``reproduced`` when ≥ min_run_fraction of the seeds satisfy ``ok``, ``partial`` when any
    seed satisfies ``ok`` or all satisfy ``partial``."""
    n = len(ok)
    if sum(ok) >= math.ceil(float(t.get("min_run_fraction", 1.0)) * n - 1e-9):
        return REPRODUCED
    if any(ok) or all(partial):
        return PARTIAL
    return NOT_REPRODUCED


def _spread(values: np.ndarray) -> str:
    return f"median {fmt(np.median(values))}, range {fmt(values.min())}-{fmt(values.max())} over {len(values)} seeds"


def _output(ev: Evidence, stage: str) -> Any:
    found = ev.output(stage)
    return found[0][1] if found else None


def graph_structure(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 002 Sec. 2 / Fig. 1: a neurashed imitating a four-layer network for a three-class
    problem (levels as rows, class nodes on top).

    Statistic: levels and classes of the built-in graph ``fig1`` that the study draws.
    ``reproduced`` for 4 levels and 3 classes, else ``not reproduced``.
    """
    from gendyn.neurashed.graphs import builtin_graph

    g = builtin_graph("fig1")
    levels, classes = len(g.levels), len(g.classes)
    ok = levels == 4 and classes == 3
    return Outcome(f"{levels} levels, {classes} classes", REPRODUCED if ok else NOT_REPRODUCED, "4 levels, 3 classes",
                   f"graph fig1: {g.description}", runs=())  # fmt: skip


def pathways(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 002 Sec. 2 / Fig. 2: the feature pathways of types 1a and 1b (class 1) nearly
    coincide, type 2 shares low-level features with class 1, type 3 is disjoint from class 1.

    Statistic: the Jaccard index of the pathways of 1a and 1b in graph ``fig1``.
    ``reproduced``: Jaccard ≥ ``pathway_jaccard``, type 2 shares level-1 nodes with 1a or 1b
    and type 3 shares no node with them; ``partial``: only the Jaccard fails.
    """
    from gendyn.neurashed.graphs import builtin_graph

    g = builtin_graph("fig1")
    p = {k: g.pathway(k) for k in ("1a", "1b", "2", "3")}
    jac = len(p["1a"] & p["1b"]) / len(p["1a"] | p["1b"])
    class1 = p["1a"] | p["1b"]
    level1 = set(g.levels[0])
    shares_low = bool(p["2"] & class1 & level1)
    disjoint = not (p["3"] & class1)
    thr = f"Jaccard(1a, 1b) ≥ {fmt(t['pathway_jaccard'])}, 2 shares level-1 nodes with class 1, 3 disjoint"
    note = f"type 2 shares level-1 nodes with class 1: {shares_low}; type 3 disjoint from class 1: {disjoint}"
    if not (shares_low and disjoint):
        verdict: Verdict = NOT_REPRODUCED
    else:
        verdict = REPRODUCED if jac >= t["pathway_jaccard"] else PARTIAL
    return Outcome(jac, verdict, thr, note, runs=())


def small_batch_concentrates(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 002 Sec. 3 / Fig. 3 (implicit regularisation): with batch 1 the amplification
    concentrates on the features the pathways share (the share of the shared nodes → 1).

    Statistic: the share of the shared level-1 nodes at the last step of the small-batch runs
    (``shared_share``), median over seeds. Per seed ``reproduced`` ≥ ``shared_share``,
    ``partial`` when it rose from its initial value.
    """
    ds = _output(ev, "implicit_regularization")
    thr = f"≥ {fmt(t['shared_share'])} in each seed (partial: rising)"
    if ds is None:
        return not_run("implicit_regularization.nc missing", thr)
    s = ds["shared_share"].sel(batch="small")
    first, last = np.asarray(s.isel(record=0).values), np.asarray(s.isel(record=-1).values)
    verdict = _seeds_verdict(list(last >= t["shared_share"]), list(last > first), t)
    return Outcome(float(np.median(last)), verdict, thr, f"initial {_spread(first)}; final {_spread(last)}", runs=())


def large_batch_uniform(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 002 Sec. 3 / Fig. 3: with large batches (both pathways every step) every firing node
    grows alike; the share of the shared nodes keeps its initial value.

    Statistic: the largest change of the large-batch share over training among seeds.
    ``reproduced`` ≤ ``large_batch_tolerance``, ``partial`` ≤ ``large_batch_tolerance_partial``.
    """
    ds = _output(ev, "implicit_regularization")
    thr = f"≤ {fmt(t['large_batch_tolerance'])} (partial ≤ {fmt(t['large_batch_tolerance_partial'])})"
    if ds is None:
        return not_run("implicit_regularization.nc missing", thr)
    s = ds["shared_share"].sel(batch="large")
    change = np.abs(np.asarray(s.isel(record=-1).values) - np.asarray(s.isel(record=0).values))
    v = float(change.max())
    verdict: Verdict = (REPRODUCED if v <= t["large_batch_tolerance"] else PARTIAL if v <= t["large_batch_tolerance_partial"]
                        else NOT_REPRODUCED)  # fmt: skip
    return Outcome(v, verdict, thr, f"|final − initial| {_spread(change)}", runs=())


def information_bottleneck(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 002 Sec. 3 / Fig. 4: level 2 first fits (its mutual information with the input
    grows) and then compresses down to the label's information (1 bit), keeping I(Y; T) ≈ 1.

    Statistic: the compression of level 2, max_t I(X; T₂) − I(X; T₂)(end) in bits, median over
    seeds. Per seed ``reproduced``: I(X; T₂) starts ≤ ``ib_initial_max``, peaks ≥
    ``ib_peak_min``, ends within ``ib_final_tolerance`` of 1 bit and I(Y; T₂) ends ≥ 1 −
    ``ib_final_tolerance``; ``partial``: it rises and then falls by ≥ ``ib_compression_partial``.
    """
    ds = _output(ev, "information_bottleneck")
    thr = (f"start ≤ {fmt(t['ib_initial_max'])}, peak ≥ {fmt(t['ib_peak_min'])}, end 1 ± {fmt(t['ib_final_tolerance'])} bit "
           f"(partial: compression ≥ {fmt(t['ib_compression_partial'])})")  # fmt: skip
    if ds is None:
        return not_run("information_bottleneck.nc missing", thr)
    mx = np.asarray(ds["mi_x"].sel(level=2).values)  # (seed, record)
    my = np.asarray(ds["mi_y"].sel(level=2).values)
    start, peak, end, end_y = mx[:, 0], mx.max(axis=1), mx[:, -1], my[:, -1]
    tol = t["ib_final_tolerance"]
    ok = (start <= t["ib_initial_max"]) & (peak >= t["ib_peak_min"]) & (np.abs(end - 1.0) <= tol) & (end_y >= 1.0 - tol)
    comp = peak - end
    part = (peak > start) & (comp >= t["ib_compression_partial"])
    note = f"I(X;T2) start {_spread(start)}; peak {_spread(peak)}; end {_spread(end)}; I(Y;T2) end {_spread(end_y)}"
    return Outcome(float(np.median(comp)), _seeds_verdict(list(ok), list(part), t), thr, note, runs=())


def local_elasticity_ordering(ev: Evidence, t: Mapping[str, Any]) -> Outcome:
    """Paper 002 Sec. 3 (local elasticity in neurashed, no figure): a step on type 1a changes
    the logits of type 1b most, of type 2 less and of type 3 (disjoint pathway) hardly at all.

    Statistic: the fraction of seeds with LE(1a→1b) > LE(1a→2) > LE(1a→3) and LE(1a→3) ≤
    ``le_negligible``. ``reproduced`` ≥ ``min_run_fraction``, ``partial`` > 0.
    """
    ds = _output(ev, "local_elasticity")
    thr = f"ordering 1b > 2 > 3 with LE(3) ≤ {fmt(t['le_negligible'])} in ≥ {fmt(100 * t.get('min_run_fraction', 1.0))} % of seeds (partial > 0)"
    if ds is None:
        return not_run("local_elasticity.nc missing", thr)
    le = {str(p): np.asarray(ds["le"].sel(probe=p).values) for p in ds["probe"].values}
    ok = (le["1b"] > le["2"]) & (le["2"] > le["3"]) & (le["3"] <= t["le_negligible"])
    v = float(ok.mean())
    note = f"LE(1a→1b) {_spread(le['1b'])}; LE(1a→2) {_spread(le['2'])}; LE(1a→3) {_spread(le['3'])}"
    return Outcome(v, _seeds_verdict(list(ok), [False] * len(ok), t), thr, note, runs=())
