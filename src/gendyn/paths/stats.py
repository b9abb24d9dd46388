"""Statistics of the path measures (paper 000): distances, neighbour ranks, stage ratios, histograms.

* :func:`input_distances` and :func:`overlap_distance_stats`: path overlap against input
  distance (Sec. 6.4, Fig 4);
* :func:`neighbour_ranks` and :func:`rank_changes`: nearest neighbours by overlap and how
  they change over training (Sec. 8, Fig 6, App. E);
* :func:`early_mid_ratio`: the early/mid ratio of mean cross-path similarity (Fig 7);
* :func:`histogram_quantiles`: quantiles from the stored histograms over pairs.

All functions are pure numpy: they open no files and read no configuration.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "input_distances",
    "overlap_distance_stats",
    "neighbour_ranks",
    "rank_changes",
    "StageRatio",
    "early_mid_ratio",
    "histogram_quantiles",
]

logger = logging.getLogger(__name__)


# =========================================================================== overlap vs input distance


def input_distances(x: Any) -> np.ndarray:
    """Euclidean distances ``||x_i - x_j||_2`` between flattened inputs.

    Parameters
    ----------
    x : (N, ...) float array or tensor
        Images exactly as the model sees them (``gendyn.tracked_inputs``).

    Returns
    -------
    (N, N) float64 with an exact zero diagonal. Paper 000, Fig 4 (x axis).
    """
    a = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    sq = np.einsum("ij,ij->i", a, a)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (a @ a.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(d2)


def overlap_distance_stats(distance: np.ndarray, overlap: np.ndarray, *, n_bins: int = 20) -> dict[str, Any]:
    """Pearson r, Spearman rho and binned median/IQR of overlap against input distance.

    Parameters
    ----------
    distance, overlap : (M, M) float
        Symmetric matrices over the same images; pairs i < j are used, NaN pairs dropped.
    n_bins : int
        Equal-width distance bins between the smallest and largest pair distance.

    Returns
    -------
    dict with ``pearson``, ``spearman`` (floats, NaN if undefined), ``n_pairs``,
    ``bin_edges`` (n_bins + 1,), ``median``, ``q25``, ``q75``, ``count`` (n_bins,). Paper 000, Fig 4.
    """
    iu = np.triu_indices(distance.shape[0], k=1)
    x, y = distance[iu], overlap[iu]
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    out: dict[str, Any] = {"n_pairs": int(x.size)}
    if x.size >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
        out["pearson"] = _pearson(x, y)
        out["spearman"] = _pearson(_average_ranks(x), _average_ranks(y))
    else:
        out["pearson"] = out["spearman"] = float("nan")
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n_bins - 1)
    med, q25, q75, cnt = (np.full(n_bins, np.nan) for _ in range(4))
    for b in range(n_bins):
        v = y[idx == b]
        cnt[b] = v.size
        if v.size:
            q25[b], med[b], q75[b] = np.quantile(v, [0.25, 0.5, 0.75])
    out.update(bin_edges=edges, median=med, q25=q25, q75=q75, count=cnt)
    return out


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    # np.sum (pairwise, single-threaded) rather than BLAS dots: identical across thread counts
    xc, yc = x - x.mean(), y - y.mean()
    den = math.sqrt(float(np.sum(xc * xc)) * float(np.sum(yc * yc)))
    return float(np.sum(xc * yc)) / den if den > 0 else float("nan")


def _average_ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as for Spearman's rho)."""
    order = np.argsort(v, kind="mergesort")
    sv = v[order]
    new = np.concatenate([[True], sv[1:] != sv[:-1]])
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.concatenate([starts[1:], [len(v)]])
    avg = (starts + ends - 1) / 2.0 + 1.0
    out = np.empty(len(v))
    out[order] = avg[group]
    return out


def _kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall tau-b of two score vectors (O(n^2) pairs; n is the number of candidates)."""
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    iu = np.triu_indices(len(a), k=1)
    da, db = da[iu], db[iu]
    n_a, n_b = np.count_nonzero(da), np.count_nonzero(db)
    if n_a == 0 or n_b == 0:
        return float("nan")
    return float((da * db).sum()) / math.sqrt(float(n_a) * float(n_b))


# =========================================================================== nearest-neighbour ranks


def neighbour_ranks(
    O: np.ndarray, baselines: Sequence[int], n_candidates: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each candidate image by overlap with each baseline image (Fig 6).

    Parameters
    ----------
    O : (N, N) or (N_rows, N) float
        Similarity (overlap) matrix at one record; row ``j`` holds ``O_j.``.
    baselines : sequence of int
        Positions of the baseline images (0-based rows of ``O``).
    n_candidates : int
        Candidates per baseline: the ``n_candidates`` lowest positions other than the baseline.

    Returns
    -------
    ranks : (n_baselines, n_candidates) int64
        ``ranks[b, c]`` = position of candidate ``c`` when the candidates are sorted by
        overlap with baseline ``b`` descending (0 = nearest); ties go to the lower image
        position; NaN overlaps rank last.
    candidates : (n_baselines, n_candidates) int64
        The candidates' image positions.
    """
    O = np.asarray(O, dtype=np.float64)
    n = O.shape[1]
    base = [int(b) for b in baselines]
    if n < n_candidates + 1:
        raise ValueError(f"neighbour ranks need {n_candidates} candidates + the baseline but only {n} images are tracked")
    ranks = np.empty((len(base), n_candidates), dtype=np.int64)
    cands = np.empty((len(base), n_candidates), dtype=np.int64)
    for k, j in enumerate(base):
        if not 0 <= j < min(O.shape[0], n):
            raise ValueError(f"baseline {j} is outside the {n} tracked images")
        cand = np.array([i for i in range(n_candidates + 1) if i != j], dtype=np.int64)[:n_candidates]
        vals = O[j, cand]
        key = np.where(np.isnan(vals), np.inf, -vals)
        order = np.lexsort((cand, key))
        r = np.empty(n_candidates, dtype=np.int64)
        r[order] = np.arange(n_candidates)
        ranks[k], cands[k] = r, cand
    return ranks, cands


def rank_changes(ranks: np.ndarray, *, top_k: int = 6) -> dict[str, np.ndarray]:
    """How the nearest neighbours change over records.

    Parameters
    ----------
    ranks : (R, n_baselines, n_candidates) int
        :func:`neighbour_ranks` at consecutive records.
    top_k : int
        Size of the "top" set (the paper plots ranks 0..5).

    Returns
    -------
    dict of
    ``n_top1_changes`` (n_baselines,) int: records whose nearest neighbour differs from the previous record's;
    ``n_distinct_top`` (n_baselines,) int: size of the union of the top-k sets over all records;
    ``kendall_tau`` (R, n_baselines) float: Kendall tau between consecutive rankings (NaN at the first record).
    """
    ranks = np.asarray(ranks)
    n_rec, n_b, _ = ranks.shape
    top1 = ranks.argmin(axis=2)  # candidate slot with rank 0
    changes = (top1[1:] != top1[:-1]).sum(axis=0) if n_rec > 1 else np.zeros(n_b, dtype=np.int64)
    distinct = np.array([len(set(np.flatnonzero((ranks[:, b] < top_k).any(axis=0)))) for b in range(n_b)])
    tau = np.full((n_rec, n_b), np.nan)
    for r in range(1, n_rec):
        for b in range(n_b):
            tau[r, b] = _kendall_tau(ranks[r, b], ranks[r - 1, b])
    return {"n_top1_changes": changes.astype(np.int64), "n_distinct_top": distinct.astype(np.int64), "kendall_tau": tau}


# =========================================================================== early / mid ratio


class StageRatio(NamedTuple):
    """Early/mid stage means of the mean cross-path similarity and their ratio."""

    ratio: float
    early: float
    mid: float
    early_epochs: tuple[float, ...]
    mid_epochs: tuple[float, ...]


def early_mid_ratio(
    m: Sequence[float] | np.ndarray,
    epoch: Sequence[float] | np.ndarray,
    decays: Sequence[float],
    *,
    stages: Mapping[str, Sequence[float]] | None = None,
    run: str = "",
) -> StageRatio:
    """Ratio of early to mid mean cross-path similarity (Fig 7).

    Parameters
    ----------
    m : (R,) float
        Per record, the mean over training pairs i != j of ``S_ij`` between that record and
        the previous one (NaN where undefined, e.g. the initial record).
    epoch : (R,) float
        Completed epochs at each record.
    decays : sequence of float
        Epochs after which the learning rate decays (e1, e2, ...). Early = records with
        ``0 < epoch <= e1``; mid = ``e1 < epoch <= e2`` (e2 = the last epoch if one decay).
    stages : mapping, optional
        ``{"early": [a, b], "mid": [c, d]}`` inclusive epoch ranges; overrides ``decays``.
    run : str
        Run name for error messages.

    Returns
    -------
    StageRatio ``(ratio, early, mid, early_epochs, mid_epochs)``; the means are nanmeans.

    Raises
    ------
    ValueError
        Without a decay and without ``stages`` (naming ``run``), or when a stage holds no record.
    """
    m = np.asarray(m, dtype=np.float64)
    ep = np.asarray(epoch, dtype=np.float64)
    who = f"run {run!r}: " if run else ""
    if m.shape != ep.shape:
        raise ValueError(f"{who}m has shape {m.shape} but epoch has shape {ep.shape}")
    tol = 1e-9
    if stages is not None:
        (a, b), (c, d) = stages["early"], stages["mid"]
        early_sel = (ep >= a - tol) & (ep <= b + tol)
        mid_sel = (ep >= c - tol) & (ep <= d + tol)
    else:
        dec = sorted(float(x) for x in decays)
        if not dec:
            raise ValueError(
                f"{who}the learning rate never decays, so early and mid stages are undefined; "
                "give analyses.paths.stages: {early: [first, last], mid: [first, last]} (epochs)"
            )
        e1 = dec[0]
        e2 = dec[1] if len(dec) > 1 else float(np.nanmax(ep))
        early_sel = (ep > tol) & (ep <= e1 + tol)
        mid_sel = (ep > e1 + tol) & (ep <= e2 + tol)
    early_sel &= np.isfinite(m)
    mid_sel &= np.isfinite(m)
    if not early_sel.any() or not mid_sel.any():
        raise ValueError(
            f"{who}no record with a defined similarity in the {'early' if not early_sel.any() else 'mid'} stage "
            f"(record epochs {ep.tolist()[:12]}...); record every epoch or set analyses.paths.stages"
        )
    early, mid = float(m[early_sel].mean()), float(m[mid_sel].mean())
    ratio = early / mid if mid != 0 else float("nan")
    return StageRatio(ratio, early, mid, tuple(ep[early_sel].tolist()), tuple(ep[mid_sel].tolist()))


# =========================================================================== histograms


def _hist_update(hist: np.ndarray, v: np.ndarray, lo: float, hi: float) -> None:
    """Add the values ``v`` to ``hist`` (equal-width bins on [lo, hi]; values outside go to the end bins)."""
    n = hist.shape[-1]
    idx = np.floor((v - lo) * (n / (hi - lo))).astype(np.int64)
    np.clip(idx, 0, n - 1, out=idx)
    hist += np.bincount(idx, minlength=n)


def histogram_quantiles(hist: np.ndarray, edges: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """Quantiles from histogram counts, linear within a bin.

    Parameters
    ----------
    hist : (..., n_bins) counts
    edges : (n_bins + 1,) bin edges
    q : sequence of float in [0, 1]

    Returns
    -------
    (..., len(q)) float64; NaN where a histogram is empty. Exact to one bin width.
    """
    hist = np.asarray(hist, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    flat = hist.reshape(-1, hist.shape[-1])
    out = np.full((flat.shape[0], len(q)), np.nan)
    for k, h in enumerate(flat):
        total = h.sum()
        if total <= 0:
            continue
        cum = np.concatenate([[0.0], np.cumsum(h)])
        for qi, qq in enumerate(q):
            target = qq * total
            b = int(np.searchsorted(cum, target, side="left"))
            b = min(max(b, 1), len(h))
            # first bin whose cumulative count reaches target
            while b < len(h) and h[b - 1] == 0:
                b += 1
            frac = (target - cum[b - 1]) / h[b - 1] if h[b - 1] > 0 else 0.0
            out[k, qi] = edges[b - 1] + min(max(frac, 0.0), 1.0) * (edges[b] - edges[b - 1])
    return out.reshape(*hist.shape[:-1], len(q))
