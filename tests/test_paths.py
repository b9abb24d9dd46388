"""Paper 000 path measures: naive oracles, invariants, out-of-core memory, the quick experiment.

Order: naive per-pair references on small inputs first, then the fast (Gram, chunked, packed,
dask) paths against them, then the whole-run analysis and the stages (:mod:`gendyn.paths.stage`),
CLI and figure job on real runs of the ``paths_quick`` experiment of ``config/config.yaml``
(trained here, in process).
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
import tracemalloc
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from gendyn import paths

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- naive references


def naive_cross_path(pt: np.ndarray, pp: np.ndarray, norm: str = "l2") -> tuple[np.ndarray, np.ndarray]:
    """Python loops over pairs on unpacked booleans: (S, counts |q^t AND q^{t-1}|)."""
    n = len(pt)
    s = np.full((n, n), np.nan)
    c = np.zeros((n, n), dtype=np.int64)
    for i in range(n):
        for j in range(n):
            qt = np.logical_and(pt[i], pt[j])
            qp = np.logical_and(pp[i], pp[j])
            num = int(np.sum(np.logical_and(qt, qp)))
            c[i, j] = num
            if norm == "l2":
                den = math.sqrt(int(np.sum(qt)) * int(np.sum(qp)))
            else:
                den = int(np.sum(np.logical_or(qt, qp)))
            if den > 0:
                s[i, j] = num / den
    return s, c


def naive_self(pt: np.ndarray, pp: np.ndarray) -> np.ndarray:
    out = np.full(len(pt), np.nan)
    for i in range(len(pt)):
        den = math.sqrt(int(np.sum(pt[i])) * int(np.sum(pp[i])))
        if den > 0:
            out[i] = int(np.sum(pt[i] & pp[i])) / den
    return out


def naive_activation(at: np.ndarray, ap: np.ndarray, act: str = "post") -> np.ndarray:
    if act == "post":
        at, ap = np.maximum(at, 0), np.maximum(ap, 0)
    n = len(at)
    out = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            u, v = at[i] * at[j], ap[i] * ap[j]
            den = math.sqrt(float(np.sum(u * u))) * math.sqrt(float(np.sum(v * v)))
            if den > 0:
                out[i, j] = float(np.sum(u * v)) / den
    return out


def random_masks(rng: np.random.Generator, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks with per-image densities spanning 0..1 (all-zero and all-one rows included)."""
    dens = rng.uniform(0, 1, size=(n, 1))
    dens[0] = 0.0
    if n > 2:
        dens[1] = 1.0
    pt = rng.random((n, d)) < dens
    pp = rng.random((n, d)) < np.clip(dens + rng.normal(0, 0.2, size=(n, 1)), 0, 1)
    return pt, pp


def pack(m: np.ndarray) -> np.ndarray:
    return np.packbits(m, axis=-1, bitorder="little")


def assert_same(a: np.ndarray, b: np.ndarray, atol: float = 0.0) -> None:
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b)), "NaN positions differ"
    np.testing.assert_allclose(np.nan_to_num(a), np.nan_to_num(b), rtol=0, atol=atol)


# --------------------------------------------------------------------------- oracle tests


@pytest.mark.parametrize("d", [1, 7, 8, 9, 100])
@pytest.mark.parametrize("norm", ["l2", "jaccard"])
def test_cross_path_equals_naive_loops(d: int, norm: str) -> None:
    rng = np.random.default_rng(d)
    for n in (1, 5, 12):
        pt, pp = random_masks(rng, n, d)
        want, counts = naive_cross_path(pt, pp, norm)
        got = paths.cross_path_similarity(pt, pp, norm=norm)
        assert got.dtype == np.float64
        assert_same(got, want, atol=1e-12)
        g_s, g_t, g_p = paths.cross_path_counts(pt, pp)
        assert g_s.dtype == np.int64 and np.array_equal(g_s, counts)
        assert np.array_equal(g_t, (pt.astype(int) @ pt.T.astype(int)))
        assert np.array_equal(g_p, (pp.astype(int) @ pp.T.astype(int)))
        if norm == "l2":
            assert_same(paths.self_similarity(pt, pp), naive_self(pt, pp), atol=1e-12)


@pytest.mark.parametrize("d", [9, 100, 1001])
def test_packed_bool_and_dask_inputs_give_identical_results(d: int) -> None:
    rng = np.random.default_rng(1)
    pt, pp = random_masks(rng, 11, d)
    ref = paths.cross_path_similarity(pt, pp)
    got_packed = paths.cross_path_similarity(pack(pt), pack(pp), n_units=d)
    got_packed_default = paths.cross_path_similarity(pack(pt), pack(pp))  # zero pad bits count nothing
    got_dask = paths.cross_path_similarity(da.from_array(pt, chunks=(4, 3)), da.from_array(pp, chunks=(4, 3)))
    got_dask_packed = paths.cross_path_similarity(
        da.from_array(pack(pt), chunks=(5, 2)), da.from_array(pack(pp), chunks=(5, 2)), n_units=d
    )
    got_xr = paths.cross_path_similarity(xr.DataArray(pt).chunk({"dim_0": 3}), xr.DataArray(pp))
    for got in (got_packed, got_packed_default, got_dask, got_dask_packed, got_xr):
        assert_same(got, ref)
    sref = paths.self_similarity(pt, pp)
    assert_same(paths.self_similarity(pack(pt), pack(pp), n_units=d), sref)
    assert_same(paths.self_similarity(da.from_array(pt, chunks=(4, 7)), da.from_array(pp, chunks=(4, 7))), sref)


def test_tiled_out_of_core_path_equals_in_memory() -> None:
    rng = np.random.default_rng(2)
    n, d = 160, 400
    pt, pp = random_masks(rng, n, d)
    ref = paths.cross_path_similarity(pt, pp)
    budget = 900_000
    plan = paths.plan_blocks(n, d, mem_budget_bytes=budget)
    assert plan.block_images < n and plan.chunk_units < d  # both axes really are chunked
    tiled = paths.cross_path_similarity(pack(pt), pack(pp), n_units=d, mem_budget_bytes=budget + 3 * n * n * 8)
    assert_same(tiled, ref)
    with pytest.raises(MemoryError, match="mem_budget"):
        paths.plan_blocks(10_000, 10_000, mem_budget_bytes=1000)


def test_invariants_symmetry_range_diagonal_and_permutations() -> None:
    rng = np.random.default_rng(3)
    pt, pp = random_masks(rng, 12, 64)
    s = paths.cross_path_similarity(pt, pp)
    assert_same(s, s.T)
    fin = s[np.isfinite(s)]
    assert fin.min() >= 0 and fin.max() <= 1
    assert_same(np.diag(s).copy(), paths.self_similarity(pt, pp))
    perm = rng.permutation(12)
    assert_same(paths.cross_path_similarity(pt[perm], pp[perm]), s[np.ix_(perm, perm)])
    uperm = rng.permutation(64)
    assert_same(paths.cross_path_similarity(pt[:, uperm], pp[:, uperm]), s)
    # frozen paths: S = 1 wherever defined, sigma = 1 exactly for nonzero masks
    same = paths.cross_path_similarity(pt, pt)
    assert np.all(same[np.isfinite(same)] == 1.0)
    sig = paths.self_similarity(pt, pt)
    nonzero = pt.any(axis=1)
    assert np.all(sig[nonzero] == 1.0) and np.all(np.isnan(sig[~nonzero]))
    # sigma == 1 only for equal masks
    sig = paths.self_similarity(pt, pp)
    equal = (pt == pp).all(axis=1)
    assert np.array_equal(sig == 1.0, equal & nonzero)


def test_edge_cases_nan_zero_and_shapes() -> None:
    pt = np.array([[0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0]], bool)
    pp = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 1, 0, 0]], bool)
    s = paths.cross_path_similarity(pt, pp)
    assert np.isnan(s[0]).all() and np.isnan(s[:, 0]).all()  # dead image at t: NaN row and column
    assert np.isnan(s[1, 2])  # no shared unit at all: zero denominator -> NaN, not 0
    # q^t AND q^{t-1} empty while both are nonzero -> exactly 0
    assert s[1, 3] == 0.0 or np.isnan(s[1, 3])
    a = np.array([[1, 1, 0]], bool)
    b = np.array([[1, 0, 1]], bool)
    pair_t = np.array([[1, 1, 0], [1, 1, 0]], bool)
    pair_p = np.array([[1, 0, 1], [1, 0, 1]], bool)
    sp = paths.cross_path_similarity(pair_t, pair_p)
    assert sp[0, 1] == 0.5  # q^t = {0,1}, q^{t-1} = {0,2}: 1 / sqrt(2 * 2)
    disjoint = paths.cross_path_similarity(np.array([[1, 0], [1, 0]], bool), np.array([[0, 1], [0, 1]], bool))
    assert disjoint[0, 1] == 0.0  # both intersections nonzero, their intersection empty
    assert paths.cross_path_similarity(a, b).shape == (1, 1)  # N = 1
    assert paths.cross_path_similarity(np.ones((3, 1), bool), np.ones((3, 1), bool)).tolist() == [[1.0] * 3] * 3  # D = 1
    with pytest.raises(ValueError, match=r"\(3, 5\).*\(3, 6\)"):
        paths.cross_path_similarity(np.ones((3, 5), bool), np.ones((3, 6), bool))
    with pytest.raises(TypeError, match="bool"):
        paths.cross_path_similarity(np.ones((3, 5)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="n_units"):
        paths.cross_path_similarity(pack(np.ones((3, 5), bool)), pack(np.ones((3, 5), bool)), n_units=20)


def test_activation_variant_equals_naive_and_masks() -> None:
    rng = np.random.default_rng(4)
    at = rng.normal(size=(9, 23))
    ap = at + rng.normal(scale=0.7, size=(9, 23))
    at[0] = -1.0  # all units off after the ReLU: NaN row
    got = paths.activation_similarity(at, ap)
    assert_same(got, naive_activation(at, ap), atol=1e-12)
    pre = paths.activation_similarity(at, ap, act="pre")
    assert_same(pre, naive_activation(at, ap, act="pre"), atol=1e-12)
    assert np.nanmin(pre) >= -1 - 1e-12 and np.nanmin(pre) < 0  # pre-activations can anti-align
    # scale invariance a -> c a, and float32 input
    assert_same(paths.activation_similarity(3.5 * at, 0.25 * ap), got, atol=1e-12)
    assert_same(paths.activation_similarity(at.astype(np.float32), ap.astype(np.float32)),
                naive_activation(at.astype(np.float32).astype(float), ap.astype(np.float32).astype(float)), atol=1e-12)
    # binary activations reproduce the mask measure
    pt, pp = random_masks(rng, 10, 37)
    assert_same(paths.activation_similarity(pt.astype(float), pp.astype(float)),
                paths.cross_path_similarity(pt, pp), atol=1e-12)
    # chunked / tiled under a small budget, dask input
    big_t, big_p = rng.normal(size=(150, 300)), rng.normal(size=(150, 300))
    ref = paths.activation_similarity(big_t, big_p)
    tiled = paths.activation_similarity(da.from_array(big_t, chunks=(40, 70)), da.from_array(big_p, chunks=(40, 70)),
                                        mem_budget_bytes=2_500_000 + 4 * 150 * 150 * 8)
    assert_same(tiled, ref, atol=1e-12)


def test_path_overlap_and_input_distances() -> None:
    rng = np.random.default_rng(5)
    p = rng.random((7, 13)) < 0.4
    p[2] = False
    o = paths.path_overlap(pack(p), n_units=13)
    assert np.array_equal(o, (p.astype(int) @ p.T.astype(int)).astype(float))
    cos = paths.path_overlap(p, overlap="cosine")
    c = p.sum(1)
    for i in range(7):
        for j in range(7):
            if c[i] and c[j]:
                assert math.isclose(cos[i, j], o[i, j] / math.sqrt(c[i] * c[j]), rel_tol=1e-12)
            else:
                assert np.isnan(cos[i, j])
    x = rng.normal(size=(6, 2, 3))
    d = paths.input_distances(x)
    for i in range(6):
        for j in range(6):
            assert math.isclose(d[i, j], float(np.linalg.norm(x[i] - x[j])), rel_tol=1e-9, abs_tol=1e-12)
    st = paths.overlap_distance_stats(d, o[:6, :6], n_bins=3)
    assert st["n_pairs"] == 15
    iu = np.triu_indices(6, 1)
    assert math.isclose(st["pearson"], float(np.corrcoef(d[iu], o[:6, :6][iu])[0, 1]), rel_tol=1e-9)
    from scipy import stats

    assert math.isclose(st["spearman"], float(stats.spearmanr(d[iu], o[:6, :6][iu])[0]), rel_tol=1e-9)


def test_neighbour_ranks_ties_baseline_excluded_and_known_ranks() -> None:
    n = 6
    o = np.zeros((n, n))
    # overlaps of candidates with baseline 2: images 0,1,3,4,5
    o[2] = [5.0, 7.0, 99.0, 5.0, np.nan, 7.0]
    ranks, cands = paths.neighbour_ranks(o, [2], n_candidates=5)
    assert cands.tolist() == [[0, 1, 3, 4, 5]]  # baseline excluded from its own candidates
    # order: 1 (7, lower position wins the tie), 5 (7), 0 (5), 3 (5), 4 (NaN last)
    assert ranks.tolist() == [[2, 0, 3, 4, 1]]
    ranks, cands = paths.neighbour_ranks(o, [0], n_candidates=3)
    assert cands.tolist() == [[1, 2, 3]]
    with pytest.raises(ValueError, match="candidates"):
        paths.neighbour_ranks(o, [0], n_candidates=6)
    series = np.array([[[0, 1, 2, 3]], [[1, 0, 2, 3]], [[1, 0, 3, 2]], [[0, 1, 2, 3]]])
    ch = paths.rank_changes(series, top_k=1)
    assert ch["n_top1_changes"].tolist() == [2]
    assert ch["n_distinct_top"].tolist() == [2]
    assert np.isnan(ch["kendall_tau"][0, 0]) and math.isclose(ch["kendall_tau"][1, 0], 4 / 6)


def test_early_mid_ratio_exact_and_errors() -> None:
    epoch = np.arange(0, 13, dtype=float)
    m = np.full(13, np.nan)
    m[1:7] = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]  # early mean 0.75
    m[7:10] = [1.4, 1.5, 1.6]  # mid mean 1.5
    m[10:] = 9.0  # late: ignored
    r = paths.early_mid_ratio(m, epoch, [6, 9])
    assert math.isclose(r.ratio, 0.5, rel_tol=1e-12) and r.early_epochs == (1, 2, 3, 4, 5, 6)
    assert r.mid_epochs == (7, 8, 9)
    one = paths.early_mid_ratio(m[:10], epoch[:10], [6])  # one decay: mid runs to the end
    assert math.isclose(one.ratio, 0.5, rel_tol=1e-12)
    st = paths.early_mid_ratio(m, epoch, [], stages={"early": [1, 2], "mid": [11, 12]})
    assert math.isclose(st.ratio, 0.55 / 9.0, rel_tol=1e-12)
    with pytest.raises(ValueError, match="'constlr'.*never decays"):
        paths.early_mid_ratio(m, epoch, [], run="constlr")


def test_histogram_quantiles_within_one_bin() -> None:
    rng = np.random.default_rng(6)
    v = rng.beta(5, 2, size=5000)
    hist = np.histogram(v, bins=200, range=(0, 1))[0]
    q = paths.histogram_quantiles(hist, np.linspace(0, 1, 201), [0.05, 0.5, 0.95])
    np.testing.assert_allclose(q, np.quantile(v, [0.05, 0.5, 0.95]), atol=1 / 200)


# --------------------------------------------------------------------------- whole-run engine


def _brute_dataset(stack: np.ndarray, labels: np.ndarray, lag: int = 1) -> dict[str, np.ndarray]:
    """Per record r >= lag: S over all pairs from the naive reference, and summaries."""
    out = {"S": [], "sigma": [], "mean": [], "within": [], "between": [], "nanfrac": []}
    n = stack.shape[1]
    iu = np.triu_indices(n, 1)
    same = (labels[:, None] == labels[None, :])[iu]
    for r in range(lag, len(stack)):
        s, _ = naive_cross_path(stack[r], stack[r - lag])
        v = s[iu]
        out["S"].append(s)
        out["sigma"].append(naive_self(stack[r], stack[r - lag]))
        out["mean"].append(np.nanmean(v))
        out["within"].append(np.nanmean(v[same]))
        out["between"].append(np.nanmean(v[~same]))
        out["nanfrac"].append(np.isnan(v).mean())
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("budget", [4 << 30, 400_000])
def test_cross_path_dataset_summaries_equal_brute_force(budget: int) -> None:
    rng = np.random.default_rng(7)
    n_rec, n, d1, d2 = 4, 40, 30, 17
    l1 = rng.random((n_rec, n, d1)) < rng.uniform(0.05, 0.9, size=(1, n, 1))
    l2 = rng.random((n_rec, n, d2)) < 0.5
    l2[:, 3] = False  # a dead image in layer 2
    acts = rng.normal(size=(n_rec, n, d1))
    labels = rng.integers(0, 3, size=n)
    res = paths.cross_path_dataset(
        {"a": da.from_array(pack(l1), chunks=(1, 16, 2)), "b": l2}, {"a": d1, "b": d2},
        labels=labels, activations={"a": acts, "b": rng.normal(size=(n_rec, n, d2))},
        max_pairwise=25, hist_bins=100, layers_combined="sum", overlap="count", overlap_records=[0, 3],
        overlap_images=30, n_candidates=12, baselines=[0, 5], lag=1, mem_budget_bytes=budget,
    )
    assert res.layers == ("a", "b", "all") and res.records == (1, 2, 3) and res.prev_records == (0, 1, 2)
    assert res.overlap_records == (0, 3) and (res.n_pairwise, res.n_overlap) == (25, 30)
    for k, m in enumerate([l1, l2, np.concatenate([l1, l2], axis=2)]):
        want = _brute_dataset(m, labels)
        np.testing.assert_allclose(res["cross_path_mean"][1][:, k], want["mean"], rtol=1e-12)
        np.testing.assert_allclose(res["cross_path_within"][1][:, k], want["within"], rtol=1e-12)
        np.testing.assert_allclose(res["cross_path_between"][1][:, k], want["between"], rtol=1e-12)
        np.testing.assert_allclose(res["cross_path_nan_fraction"][1][:, k], want["nanfrac"], rtol=1e-12)
        for r in range(3):
            assert_same(res["cross_path"][1][r, k], want["S"][r][:25, :25], atol=1e-12)
            assert_same(res["self_sim"][1][r, k], want["sigma"][r], atol=1e-12)
            iu = np.triu_indices(n, 1)
            v = want["S"][r][iu]
            np.testing.assert_allclose(res["cross_path_q"][1][r, k], np.nanquantile(v, [0.05, 0.25, 0.5, 0.75, 0.95]),
                                       atol=1 / 100)
        for t, rec in enumerate([0, 3]):
            mm = m[rec, :30].astype(int)
            np.testing.assert_array_equal(res["overlap"][1][t, k], mm @ mm.T)
        for r in range(3):
            o = (m[r + 1, :13].astype(int) @ m[r + 1, :13].T.astype(int)).astype(float)
            want_ranks, _ = paths.neighbour_ranks(o, [0, 5], 12)
            np.testing.assert_array_equal(res["nn_rank"][1][r, k], want_ranks)
    assert np.isnan(res["self_sim"][1][:, 1, 3]).all()
    for k, a in enumerate([acts]):
        for r in range(3):
            assert_same(res["act_cross"][1][r, k], naive_activation(a[r + 1], a[r])[:25, :25], atol=1e-12)
            cos = paths.activation_cosine(a[r + 1, :13])
            np.testing.assert_array_equal(res["nn_rank_act"][1][r, k], paths.neighbour_ranks(cos, [0, 5], 12)[0])


def test_out_of_core_peak_memory_stays_under_budget() -> None:
    """One record pair, N = 1024 images x D = 4096 units, packed and lazily sliced from dask,
    with a 24 MiB budget: the N x N int64 Grams alone would need 25 MiB, so the engine must tile."""
    rng = np.random.default_rng(8)
    n, d = 1024, 4096
    m0 = rng.random((n, d)) < 0.3
    m1 = m0 ^ (rng.random((n, d)) < 0.05)
    masks = da.from_array(np.stack([pack(m0), pack(m1)]), chunks=(1, 256, 128))
    budget = 24 << 20
    plan = paths.plan_blocks(n, d, mem_budget_bytes=budget)
    assert plan.block_images < n
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        res = paths.cross_path_dataset({"l": masks}, {"l": d}, max_pairwise=64, hist_bins=200, baselines=[],
                                       mem_budget_bytes=budget)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= budget, f"peak {peak / 2**20:.1f} MiB > budget {budget / 2**20:.0f} MiB"
    # and the tiled summary is exact: compare the mean with a direct in-memory Gram computation
    g_s, g_t, g_p = (x.astype(np.float64) for x in paths.cross_path_counts(m1, m0))
    s = g_s / np.sqrt(g_t * g_p)
    iu = np.triu_indices(n, 1)
    np.testing.assert_allclose(res["cross_path_mean"][1][0, 0], s[iu].mean(), rtol=1e-12)
    assert_same(res["cross_path"][1][0, 0], s[:64, :64], atol=1e-12)


# --------------------------------------------------------------------------- record_bn: batch


def test_batch_stat_masks_use_batch_statistics_and_restore_state() -> None:
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU())
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1, generator=gen)
        model[1].running_var.uniform_(0.5, 2, generator=gen)
    model.train()
    x = torch.randn(32, 5, generator=gen) * 3 + 1
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.get_rng_state()
    got = paths.batch_stat_masks(model, x)
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng_before)
    with torch.no_grad():  # oracle: normalise with the batch's own mean and biased variance
        h = model[0](x)
        hb = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + model[1].eps) * model[1].weight + model[1].bias
        want1 = hb > 0
        want2 = model[3](torch.relu(hb)) > 0
    assert np.array_equal(np.unpackbits(got["2"], axis=1, count=8, bitorder="little").astype(bool), want1.numpy())
    assert np.array_equal(np.unpackbits(got["4"], axis=1, count=6, bitorder="little").astype(bool), want2.numpy())
    with torch.no_grad():
        model.eval()
        eval1 = model[:2](x) > 0
    assert not np.array_equal(eval1.numpy(), want1.numpy())  # the option really changes the masks


# --------------------------------------------------------------------------- the quick experiment


#: Reduced training sets for the in-process version of ``paths_quick`` (keeps the test within its
#: time budget); everything else (models, schedule, recording, analysis settings) is the config's.
QUICK_SUBSETS = {1000: 500, 4000: 1500}


def _quick_runs() -> list[tuple[str, dict]]:
    from gendyn.config import expand_experiment, load_yaml, validate_config

    cfg = validate_config(load_yaml(ROOT / "config" / "config.yaml"))
    exp = cfg["experiments"]["paths_quick"]
    # the four configurations of the first seed (the other seeds only repeat them)
    first = exp["sweep"].get("training.seed", [None])[0]
    runs = [r for r in expand_experiment("paths_quick", exp) if r[1].get("training.seed") == first]
    assert len(runs) == 4
    out = []
    for rid, _, rcfg in runs:
        rcfg = copy.deepcopy(rcfg)
        rcfg["training"]["device"] = "cpu"
        rcfg["data"]["train_subset"] = QUICK_SUBSETS[rcfg["data"]["train_subset"]]
        out.append((rid, rcfg))
    return out


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> dict:
    """Train the four configurations of ``paths_quick`` (config/config.yaml; seed 0) and analyse them in process."""
    import torch

    from gendyn.cli import main
    from gendyn.train import train_run

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("paths_quick")
    files = {}
    for rid, cfg in _quick_runs():
        train_run(cfg, root / "runs" / rid)
        out = root / "analysis" / f"{rid}.nc"
        assert main(["-v", "paths", "compute", str(root / "runs" / rid), str(out), "--threads", "1"]) == 0
        files[rid] = out
    summary = root / "analysis" / "summary.nc"
    assert main(["paths", "summary", *map(str, files.values()), str(summary)]) == 0
    data = {rid: _open(f) for rid, f in files.items()}
    return {"root": root, "files": files, "summary": summary, "data": data}


def _open(path: Path) -> xr.Dataset:
    from gendyn.store import open_analysis

    with open_analysis(path) as ds:
        return ds.load()


def test_quick_experiment_shapes_and_nan_fraction(quick) -> None:
    assert len(quick["files"]) == 4
    for ds in quick["data"].values():
        assert ds["cross_path"].dims == ("record", "layer", "image_i", "image_j")
        assert ds["record"].values.tolist() == list(range(1, 13))
        assert ds.sizes["image_i"] == ds.sizes["image_j"] == 128 and ds.sizes["layer"] == 3
        assert (ds["prev_step"].values < ds["step"].values).all()
        assert (ds["cross_path_nan_fraction"].values < 0.5).all()
        assert ds.attrs["norm"] == "l2" and ds.attrs["record_bn"] == "eval" and ds.attrs["activation_variant"] == 1
        for var in ("cross_path", "act_cross"):
            v = ds[var].values
            fin = v[np.isfinite(v)]
            assert fin.min() >= 0 and fin.max() <= 1 + 1e-6
            np.testing.assert_array_equal(np.isnan(v), np.isnan(np.swapaxes(v, 2, 3)))


def test_quick_experiment_similarity_rises_and_is_not_perfect_early(quick) -> None:
    for ds in quick["data"].values():
        s_first = ds["cross_path"].sel(record=1).values
        s_last = ds["cross_path"].sel(record=12).values
        sig = ds["self_sim"]
        for k in range(ds.sizes["layer"]):
            assert np.nanmean(s_first[k]) < np.nanmean(s_last[k])
            assert np.nanmean(sig.sel(record=1).values[k]) < np.nanmean(sig.sel(record=12).values[k])
            assert np.nanmean(sig.sel(record=12).values[k]) > 0.9
            iu = np.triu_indices(128, 1)
            v = s_first[k][iu]
            assert np.mean(v[np.isfinite(v)] < 1) > 0.5
            assert np.mean(sig.sel(record=1).values[k] < 1) > 0.5


def test_quick_experiment_overlap_is_no_clean_line_and_neighbours_change(quick) -> None:
    for ds in quick["data"].values():
        r = ds["overlap_pearson"].isel(overlap_record=-1).values
        assert np.all(np.abs(r) < 0.95)
        assert int(ds["overlap_epoch"].values[-1]) == 12
        assert (ds["nn_n_distinct_top"].values > 6).any()
        assert ds["nn_rank"].sizes["candidate"] == 128


def test_quick_experiment_early_mid_ratio_between_0_and_1(quick) -> None:
    s = _open(quick["summary"])
    assert s.sizes["run"] == 4
    assert np.all(np.isfinite(s["R"].values)) and np.all((s["R"].values > 0) & (s["R"].values < 1))
    assert set(s["layer_index"].values.tolist()) == {2}
    assert np.all((s["test_acc"].values > 0.5) & (s["test_acc"].values <= 1))


def test_quick_experiment_rerun_is_identical(quick, tmp_path) -> None:
    from gendyn.cli import main
    from gendyn.train import train_run

    rid, cfg = _quick_runs()[0]
    train_run(cfg, tmp_path / rid)
    out = tmp_path / "again.nc"
    assert main(["paths", "compute", str(tmp_path / rid), str(out), "--threads", "1"]) == 0
    again = _open(out)
    first = quick["data"][rid]
    assert set(first.data_vars) == set(again.data_vars)
    for name in first.data_vars:
        assert np.array_equal(first[name].values, again[name].values, equal_nan=True), name


def test_quick_experiment_figure_job_draws_every_figure(quick, tmp_path) -> None:
    from gendyn.cli import main

    rid, f = next(iter(quick["files"].items()))
    for style in ("bands", "hist2d"):
        out = tmp_path / style
        settings = json.dumps({"view": {"dpi": 30}, "paths": {"figures": {"layers": [-1], "style": style}}})
        assert main(["figures", "paths", "run", str(out), "--input", f"paths={f}", "--settings", settings]) == 0
        names = sorted(p.stem for p in out.glob("*.png"))
        # the quick runs record activations and track 160 >= 128 + 1 images: every run figure
        assert names == ["fig1_cross_path", "fig4_overlap_distance", "fig5_self_similarity", "fig6_neighbour_ranks",
                         "figE_activation_ranks"]
        assert all((out / f"{n}.pdf").exists() and (out / f"{n}.png").stat().st_size > 1000 for n in names)
    out = tmp_path / "experiment"
    settings = json.dumps({"view": {"dpi": 30}, "paths": {"figures": {"generalization": "gap"}}})
    assert main(["figures", "paths", "experiment", str(out), "--input", f"summary={quick['summary']}",
                 "--settings", settings]) == 0
    assert sorted(p.stem for p in out.glob("*.png")) == ["fig7_early_mid_ratio"]


def test_figure_job_decides_rank_figures_from_the_data(quick) -> None:
    """Fig 6 needs neighbour ranks, App. E ranks by activation cosine: both are read off the dataset."""
    import dataclasses

    import matplotlib.pyplot as plt

    from gendyn.figures.jobs import FigureJob
    from gendyn.paths.figures import draw

    @dataclasses.dataclass(frozen=True)
    class InMemoryJob(FigureJob):
        data: xr.Dataset | None = None

        def open(self, path: Path | str) -> xr.Dataset:
            return self.data

    ds = quick["data"][next(iter(quick["files"]))]
    no_act = ds.drop_vars([v for v in ds.data_vars if str(v).startswith(("act_", "nn_rank_act", "nn_act_"))])
    no_ranks = no_act.drop_vars([v for v in no_act.data_vars if str(v).startswith("nn_")])
    always = {"fig1_cross_path", "fig4_overlap_distance", "fig5_self_similarity"}
    for data, want in ((ds, {"fig6_neighbour_ranks", "figE_activation_ranks"}), (no_act, {"fig6_neighbour_ranks"}),
                       (no_ranks, set())):
        job = InMemoryJob(figure_set="paths", scope="run", inputs={"paths": (Path("x.nc"),)}, data=data)
        got = dict(draw(job))
        assert set(got) == always | want
        for fig in got.values():
            plt.close(fig)


def test_shared_views_show_the_second_recorded_layer(quick) -> None:
    import matplotlib.pyplot as plt

    from gendyn.config import stage_settings
    from gendyn.paths.figures import compare_rows, dashboard_panel, shown_layer

    ds = quick["data"][next(iter(quick["files"]))]
    assert shown_layer(ds) == "relu2"
    assert shown_layer(ds.sel(layer=["relu3"])) == "relu3"
    settings = stage_settings("paths", None)
    from gendyn.figures.style import XAxis

    rows = compare_rows(ds, settings)
    assert list(rows) == ["cross-path S, same class\n(layer 2, mean)", "self-similarity σ\n(layer 2, mean)"]
    sigma = rows["self-similarity σ\n(layer 2, mean)"]
    np.testing.assert_array_equal(sigma.values, ds["self_sim_mean"].sel(layer="relu2").values)
    np.testing.assert_array_equal(sigma["step"].values, ds["step"].values)
    fig, ax = plt.subplots()
    dashboard_panel(ax, ds, settings, XAxis(log=True))
    assert len(ax.get_lines()) == 3 and "layer 2" in ax.get_ylabel()
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), ds["step"].values + 1.0)
    plt.close(fig)


def test_settings_are_validated_with_named_keys() -> None:
    from gendyn.config import ConfigError, stage_settings
    from gendyn.paths.stage import resolve_layers

    s = stage_settings("paths", {"norm": "jaccard"})
    assert s["norm"] == "jaccard" and s["lag"] == 1 and s["figures"]["layers"] == [1, 2, -1]
    with pytest.raises(ConfigError, match="analyses.paths.norm"):
        stage_settings("paths", {"norm": "l1"})
    with pytest.raises(ConfigError, match="analyses.paths"):
        stage_settings("paths", {"unknown_key": 1})
    assert resolve_layers([2, -1, "relu1"], ["relu1", "relu2", "relu3"]) == ["relu2", "relu3", "relu1"]
    with pytest.raises(KeyError, match="layer index 4"):
        resolve_layers([4], ["relu1", "relu2", "relu3"])


def test_options_object_and_default_budget() -> None:
    from gendyn.parallel import mem_budget_bytes

    assert not hasattr(paths, "DEFAULT_MEM_BUDGET_BYTES")
    with pytest.raises(TypeError, match="no field 'max_pairs'.*max_pairwise"):
        paths.CrossPathOptions().replace(max_pairs=3)
    with pytest.raises(ValueError, match="lag=0"):
        paths.CrossPathOptions(lag=0)
    opts = paths.CrossPathOptions(baselines=[1, 2], quantiles=[0.5])
    assert opts.baselines == (1, 2) and opts.quantiles == (0.5,)
    # the one default budget: resources.analysis.mem_budget_mb
    assert paths.plan_blocks(20_000, 50_000) == paths.plan_blocks(20_000, 50_000, mem_budget_bytes=mem_budget_bytes())
    rng = np.random.default_rng(9)
    m = rng.random((3, 20, 40)) < 0.5
    by_kw = paths.cross_path_dataset({"l": m}, {"l": 40}, max_pairwise=8, hist_bins=10, baselines=[])
    by_obj = paths.cross_path_dataset({"l": m}, {"l": 40}, paths.CrossPathOptions(max_pairwise=8, hist_bins=10, baselines=()))
    assert list(by_kw) == list(by_obj)
    for name in by_kw:
        assert by_kw[name][0] == by_obj[name][0]
        np.testing.assert_array_equal(by_kw[name][1], by_obj[name][1])


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, gendyn.paths, gendyn.paths.cli, gendyn.paths.spec; "
        "assert gendyn.paths.cross_path_similarity; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'xarray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_layer_subset_keeps_model_layer_numbering(quick, tmp_path) -> None:
    """`layers: [2]` analyses one site; ratio_layer 2 and figure layer 2 still mean the model's 2nd ReLU."""
    from gendyn.cli import main
    from gendyn.config import stage_settings
    from gendyn.paths.figures import select_layers
    from gendyn.paths.stage import summary

    rid = next(iter(quick["files"]))
    run_dir = quick["root"] / "runs" / rid
    out = tmp_path / "l2.nc"
    assert main(["paths", "compute", str(run_dir), str(out), "--set", "layers=[2]", "--threads", "1"]) == 0
    ds = _open(out)
    assert ds["layer"].values.tolist() == ["relu2"] and ds["layer_index"].values.tolist() == [2]
    assert json.loads(ds.attrs["settings"])["layers"] == [2] and "figures" not in json.loads(ds.attrs["settings"])
    full = quick["data"][rid]
    np.testing.assert_array_equal(ds["cross_path_mean"].values[:, 0], full["cross_path_mean"].sel(layer="relu2").values)
    assert main(["paths", "summary", str(out), str(tmp_path / "s.nc"), "--settings", '{"ratio_layer": 2}']) == 0
    assert float(_open(tmp_path / "s.nc")["R"][0]) == float(full["early_mid_ratio"].sel(layer="relu2"))
    with pytest.raises(KeyError, match="not analysed"):
        summary([out], stage_settings("paths", {"ratio_layer": 3}))

    assert select_layers(ds, [2, -1, 1]) == ["relu2"]  # -1 (relu3) and 1 were not analysed: skipped


def test_record_bn_batch_recomputes_masks_from_checkpoints(tmp_path) -> None:
    import torch

    import gendyn
    from gendyn.config import stage_settings
    from gendyn.parallel import AnalysisJob
    from gendyn.paths.stage import compute
    from gendyn.train import train_run

    from conftest import tiny_run_config

    cfg = tiny_run_config(model={"name": "cnn", "width": 4, "depth": 2, "bn": True},
                          recording={"n_tracked_train": 24, "n_tracked_test": 4, "schedule": {"kind": "epoch"}})
    train_run(cfg, tmp_path / "run")
    job = AnalysisJob.create(1, 256)
    ev = compute(tmp_path / "run", stage_settings("paths", {"baselines": []}), job=job)
    bt = compute(tmp_path / "run", stage_settings("paths", {"baselines": [], "record_bn": "batch"}), job=job)
    assert ev.attrs["mem_budget_bytes"] == 256 << 20
    assert ev.attrs["record_bn"] == "eval" and bt.attrs["record_bn"] == "batch"
    assert not np.array_equal(ev["n_active"].values, bt["n_active"].values)
    # oracle at the last record: the tracked train images in one batch with batch statistics
    x, _ = gendyn.tracked_inputs(tmp_path / "run")
    steps = gendyn.open_run(tmp_path / "run")["masks"]["step"].values
    model = gendyn.load_model(tmp_path / "run", step=int(steps[-1]))
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.train()
    acts = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, n=n: acts.__setitem__(n.replace(".", "_"), o > 0))
             for n, m in model.named_modules() if isinstance(m, torch.nn.ReLU)]
    with torch.no_grad():
        model(x[:24])
    for h in hooks:
        h.remove()
    for k, name in enumerate(bt["layer"].values.tolist()):
        want = acts[name].flatten(1).sum(1).numpy()
        np.testing.assert_array_equal(bt["n_active"].values[-1, k], want)
