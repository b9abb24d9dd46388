"""Image functions (paper 000): ReLU path similarity between images and over training.

A tracked image's *path* at record ``t`` in layer ``k`` is its binary ReLU mask
``p_i^t`` (unit on iff its pre-activation is > 0). This module measures how paths change:

* cross-path similarity ``S_ij^t`` (Sec. 6.1, Figs 1-3, 16): cosine between the
  intersection masks ``q_ij^t = p_i^t AND p_j^t`` at record ``t`` and ``q_ij^{t-1}`` at
  the previous record;
* self-similarity ``sigma_i^t`` (Sec. 7, Fig 5): cosine between ``p_i^t`` and ``p_i^{t-1}``;
* the activation variant ``A_ij^t`` (Fig 1 right column, App. E);
* path overlap ``O_ij^t = p_i^t . p_j^t`` against input distance (Sec. 6.4, Fig 4);
* nearest-neighbour ranks by overlap and their changes (Sec. 8, Fig 6);
* the early/mid ratio of mean cross-path similarity (Fig 7).

Exact Gram formulation
----------------------
With ``s_i = p_i^t AND p_i^{t-1}`` every count is an entry of a Gram matrix:
``|q_ij^t AND q_ij^{t-1}| = (s s^T)_ij``, ``|q_ij^t| = (P_t P_t^T)_ij``, so
``S = G_s / sqrt(G_t * G_{t-1})``. Grams are accumulated over chunks of units as 0/1
float32 matrix products, each exact (a chunk has fewer than 2**24 units) and cast to int64
before summing, so every count is an exact integer. Ratios are taken in float64.

Out of core
-----------
Inputs may be numpy boolean arrays, bit-packed uint8 arrays exactly as stored in
``run.h5`` (``numpy.packbits(..., bitorder="little")``), dask arrays or lazily loaded
(dask-backed) xarray objects; only the slices a step needs are materialised. The engine
tiles the image-pair plane into blocks and the units into chunks chosen from an explicit
memory budget (:func:`plan_blocks`), so one record of N = 8192 images x D = 65,536 units
stays within the default 4 GiB. :func:`cross_path_dataset` streams every record of a
layer through the engine and keeps full N x N matrices only for the first
``max_pairwise`` images, summaries (mean, histogram, quantiles, within/between class
means, NaN fraction) for all.

All functions are pure: they open no files and read no configuration.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

__all__ = [
    "DEFAULT_MEM_BUDGET_BYTES",
    "cross_path_similarity",
    "cross_path_counts",
    "self_similarity",
    "activation_similarity",
    "activation_cosine",
    "path_overlap",
    "input_distances",
    "overlap_distance_stats",
    "neighbour_ranks",
    "rank_changes",
    "early_mid_ratio",
    "StageRatio",
    "BlockPlan",
    "plan_blocks",
    "histogram_quantiles",
    "cross_path_dataset",
    "batch_stat_masks",
]

logger = logging.getLogger(__name__)

#: Default memory budget of one pairwise stage (4 GiB).
DEFAULT_MEM_BUDGET_BYTES = 4 << 30
#: Largest unit chunk of a float32 0/1 Gram whose integer sums are exact (< 2**24).
_MAX_EXACT_CHUNK = (1 << 24) - 8

Norm = Literal["l2", "jaccard"]


# =========================================================================== inputs


def _materialize(x: Any) -> np.ndarray:
    """A numpy array from a numpy/dask/xarray slice (reads only that slice)."""
    data = getattr(x, "data", x) if type(x).__name__ in ("DataArray", "Variable") else x
    if hasattr(data, "compute") and not isinstance(data, np.ndarray):
        # A slice is read in this process: the synchronous scheduler avoids a thread-pool
        # round trip per slice (the pairwise work itself runs in BLAS threads).
        data = data.compute(scheduler="sync")
    return np.asarray(data)


class _Stack:
    """R records of (N, W) masks or activations, sliced lazily.

    ``arrays`` is one (R, N, W) array-like or a sequence of R (N, W) array-likes (numpy,
    dask or xarray). ``kind`` is ``"bool"`` (W = D units), ``"packed"`` (W = ceil(D/8)
    bytes, little bit order) or ``"float"`` (W = D activations).
    """

    def __init__(self, arrays: Any, kind: str, n_units: int, name: str) -> None:
        self.arrays = arrays
        self.kind = kind
        self.n_units = int(n_units)
        self.name = name
        if isinstance(arrays, (list, tuple)):
            self.n_records = len(arrays)
            self.n_images = int(arrays[0].shape[0])
        else:
            self.n_records = int(arrays.shape[0])
            self.n_images = int(arrays.shape[1])

    def _raw(self, r: int, rows: slice, cols: slice) -> np.ndarray:
        if isinstance(self.arrays, (list, tuple)):
            return _materialize(self.arrays[r][rows, cols])
        return _materialize(self.arrays[r, rows, cols])

    def get(self, r: int, r0: int, r1: int, u0: int, u1: int) -> np.ndarray:
        """Rows [r0, r1), units [u0, u1) of record r: bool (masks) or float64 (activations)."""
        if self.kind == "packed":
            if u0 % 8:
                raise ValueError(f"{self.name}: packed unit chunks must start at a multiple of 8, got {u0}")
            raw = self._raw(r, slice(r0, r1), slice(u0 // 8, (u1 + 7) // 8))
            return np.unpackbits(raw, axis=-1, count=u1 - u0, bitorder="little").view(bool)
        raw = self._raw(r, slice(r0, r1), slice(u0, u1))
        if self.kind == "bool":
            return raw.astype(bool, copy=False)
        return raw.astype(np.float64, copy=False)

    def preload(self, max_bytes: int) -> _Stack:
        """A numpy-backed copy when the whole stack fits in ``max_bytes`` (else self)."""
        if isinstance(self.arrays, np.ndarray):
            return self
        if isinstance(self.arrays, (list, tuple)) and all(isinstance(a, np.ndarray) for a in self.arrays):
            return self
        width = (self.n_units + 7) // 8 if self.kind == "packed" else self.n_units
        item = 1 if self.kind in ("packed", "bool") else 8
        if self.n_records * self.n_images * width * item > max_bytes:
            return self
        if isinstance(self.arrays, (list, tuple)):
            data = np.stack([_materialize(a) for a in self.arrays])
        else:
            data = _materialize(self.arrays)
        return _Stack(data, self.kind, self.n_units, self.name)


def _check_mask(x: Any, n_units: int | None, name: str) -> tuple[str, int]:
    """Kind ("bool"/"packed") and unit count of an (N, D) bool or (N, B) uint8 mask array."""
    shape = tuple(int(s) for s in x.shape)
    if len(shape) != 2:
        raise ValueError(f"{name}: expected a 2-D (images, units) array, got shape {shape}")
    dtype = np.dtype(x.dtype)
    if dtype == np.bool_:
        if n_units is not None and n_units != shape[1]:
            raise ValueError(f"{name}: n_units={n_units} but the boolean mask has {shape[1]} units")
        return "bool", shape[1]
    if dtype == np.uint8:
        n = 8 * shape[1] if n_units is None else int(n_units)
        if not (8 * shape[1] - 7 <= n <= 8 * shape[1]) or n < 1:
            raise ValueError(
                f"{name}: n_units={n_units} does not fit {shape[1]} packed bytes (needs {8 * shape[1] - 7}..{8 * shape[1]})"
            )
        return "packed", n
    raise TypeError(
        f"{name}: masks must be bool (N, D) or bit-packed uint8 (N, ceil(D/8)); got dtype {dtype}. "
        "Convert 0/1 integers with .astype(bool)."
    )


def _check_pair(p_t: Any, p_prev: Any, n_units: int | None) -> tuple[str, int]:
    kind_t, d_t = _check_mask(p_t, n_units, "p_t")
    kind_p, d_p = _check_mask(p_prev, n_units, "p_prev")
    if tuple(p_t.shape) != tuple(p_prev.shape) or kind_t != kind_p:
        raise ValueError(
            f"p_t has shape {tuple(p_t.shape)} ({p_t.dtype}) but p_prev has shape {tuple(p_prev.shape)} "
            f"({p_prev.dtype}); both must be masks of the same images and units"
        )
    return kind_t, d_t


# =========================================================================== planning


@dataclass(frozen=True)
class BlockPlan:
    """Tiling of the pairwise stage.

    Attributes
    ----------
    block_images : int
        Images per block edge (the N x N plane is cut into blocks of this size).
    chunk_units : int
        Units per chunk of the Gram accumulation (a multiple of 8 below 2**24).
    est_bytes : int
        Estimated peak bytes held by the stage with this plan.
    """

    block_images: int
    chunk_units: int
    est_bytes: int


def _plan_bytes(nb: int, dc: int, *, n_grams: int, gram_item: int, chunk_item: int, strip: int) -> int:
    # Grams (int64 or float64) + one product buffer + two sides x (current, pair) chunk
    # features + the raw chunks of both records + per-strip temporaries of the ratio.
    grams = n_grams * nb * nb * gram_item + nb * nb * chunk_item
    # per element of a (block edge x unit chunk) slice, both sides of an off-diagonal block:
    # masks: packed + unpacked current/previous, AND temp, float32 P and s (~12 B);
    # activations: raw float32 + float64 copies, ReLU copies, squares and products (~56 B).
    chunks = 2 * nb * dc * (12 if chunk_item == 4 else 56)
    temps = 10 * strip * nb * 8
    return grams + chunks + temps


def plan_blocks(
    n_images: int,
    n_units: int,
    *,
    mem_budget_bytes: int = DEFAULT_MEM_BUDGET_BYTES,
    lag: int = 1,
    kind: Literal["mask", "act"] = "mask",
    reserved_bytes: int = 0,
) -> BlockPlan:
    """Choose image blocks and unit chunks so the pairwise stage fits the budget.

    Parameters
    ----------
    n_images, n_units : int
        N and D of one record.
    mem_budget_bytes : int
        Bytes the stage may hold (Grams, chunk buffers, temporaries).
    lag : int
        Records compared (t vs t - lag): ``lag`` earlier Grams are cached per block.
    kind : {"mask", "act"}
        int64 Grams of float32 0/1 chunks, or float64 Grams of float64 chunks.
    reserved_bytes : int
        Bytes already committed elsewhere (outputs), subtracted from the budget.

    Returns
    -------
    BlockPlan
        The largest block edge (preferring a single block) and then the largest unit chunk
        that fit; raises ``MemoryError`` if even a 16-image block with 64-unit chunks does not.
    """
    budget = int(mem_budget_bytes) - int(reserved_bytes)
    gram_item = 8
    chunk_item = 4 if kind == "mask" else 8
    n_grams = lag + 2
    n_images = max(int(n_images), 1)
    n_units = max(int(n_units), 1)
    nb = n_images
    while True:
        strip = min(nb, 256)
        fixed = _plan_bytes(nb, 0, n_grams=n_grams, gram_item=gram_item, chunk_item=chunk_item, strip=strip)
        per_unit = _plan_bytes(nb, 1, n_grams=0, gram_item=gram_item, chunk_item=chunk_item, strip=0) - nb * nb * chunk_item
        dc_max = (budget - fixed) // max(per_unit, 1)
        dc_need = min(n_units, 64)
        if dc_max >= dc_need:
            dc = int(min(n_units, dc_max, _MAX_EXACT_CHUNK))
            if dc < n_units:
                dc = max(8, dc - dc % 8)
            est = fixed + per_unit * dc
            return BlockPlan(block_images=nb, chunk_units=dc, est_bytes=est)
        if nb <= 16:
            raise MemoryError(
                f"mem_budget_bytes={mem_budget_bytes} (minus {reserved_bytes} reserved) is too small for the pairwise "
                f"stage of {n_images} images x {n_units} units; raise resources.analysis.mem_budget_mb"
            )
        nb = max(16, (nb + 1) // 2)


def _blas_limit(n_images: int, n_units: int) -> Any:
    """One BLAS thread for small Grams: multi-threaded OpenBLAS on tiny products is slower
    by orders of magnitude on a loaded machine; large products keep the caller's threads."""
    import contextlib

    if n_images * n_images * n_units >= (1 << 27):
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _blocks(n: int, nb: int) -> list[tuple[int, int, int, int]]:
    edges = list(range(0, n, nb)) + [n]
    spans = list(zip(edges[:-1], edges[1:]))
    return [(i0, i1, j0, j1) for bi, (i0, i1) in enumerate(spans) for (j0, j1) in spans[bi:]]


# =========================================================================== Gram engine


def _product(a: np.ndarray, b: np.ndarray | None, out: np.ndarray) -> np.ndarray:
    """out = a @ b.T (b None: a @ a.T, which numpy hands to BLAS syrk: half the work)."""
    np.matmul(a, a.T if b is None else b.T, out=out)
    return out


def _features(kind: str, act: str, cur: np.ndarray, prev: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Chunk features: (F for G_cur, F for G_pair). Masks: P and P_t AND P_prev (float32 0/1).
    Activations (post: a = max(x, 0)): a_t**2 and a_t * a_prev (float64)."""
    if kind == "mask":
        pair = None if prev is None else np.logical_and(cur, prev).astype(np.float32)
        return cur.astype(np.float32), pair
    if act == "post":
        cur = np.maximum(cur, 0.0)
        prev = None if prev is None else np.maximum(prev, 0.0)
    pair = None if prev is None else cur * prev
    return cur * cur, pair


@dataclass
class _Block:
    """Grams of one image block at one record (views; valid until the next yield)."""

    i0: int
    i1: int
    j0: int
    j1: int
    record: int
    g_cur: np.ndarray  # (ni, nj) counts at this record (int64 masks / float64 activations)
    g_prev: np.ndarray | None  # the same at record - lag
    g_pair: np.ndarray | None  # Gram of the pair features
    diag: bool


def _block_grams(
    stack: _Stack,
    plan: BlockPlan,
    *,
    kind: str = "mask",
    act: str = "post",
    lag: int = 1,
    records: Sequence[int] | None = None,
) -> Iterator[_Block]:
    """Exact Grams block by block, record by record (records in increasing order).

    For every block (i-range, j-range with j >= i) and record r this yields ``G_cur(r)``,
    ``G_cur(r - lag)`` and ``G_pair(r, r - lag)`` (the last two None for r < lag).
    """
    n, d = stack.n_images, stack.n_units
    recs = list(range(stack.n_records)) if records is None else sorted(set(int(r) for r in records))
    needed = sorted(set(recs) | {r - lag for r in recs if r - lag >= 0})
    acc_dtype = np.int64 if kind == "mask" else np.float64
    buf_dtype = np.float32 if kind == "mask" else np.float64
    dc = plan.chunk_units
    chunks = [(u0, min(u0 + dc, d)) for u0 in range(0, d, dc)]
    for i0, i1, j0, j1 in _blocks(n, plan.block_images):
        diag = (i0, i1) == (j0, j1)
        ni, nj = i1 - i0, j1 - j0
        buf = np.empty((ni, nj), dtype=buf_dtype)
        cache: dict[int, np.ndarray] = {}
        for r in needed:
            with_prev = r in recs and r - lag >= 0
            g_cur = np.zeros((ni, nj), dtype=acc_dtype)
            g_pair = np.zeros((ni, nj), dtype=acc_dtype) if with_prev else None
            for u0, u1 in chunks:
                cur_i = stack.get(r, i0, i1, u0, u1)
                prev_i = stack.get(r - lag, i0, i1, u0, u1) if with_prev else None
                fc_i, fp_i = _features(kind, act, cur_i, prev_i)
                del cur_i, prev_i
                if diag:
                    fc_j, fp_j = None, None
                else:
                    cur_j = stack.get(r, j0, j1, u0, u1)
                    prev_j = stack.get(r - lag, j0, j1, u0, u1) if with_prev else None
                    fc_j, fp_j = _features(kind, act, cur_j, prev_j)
                    del cur_j, prev_j
                np.add(g_cur, _product(fc_i, fc_j, buf), out=g_cur, casting="unsafe")
                if with_prev:
                    np.add(g_pair, _product(fp_i, fp_j, buf), out=g_pair, casting="unsafe")
                del fc_i, fp_i, fc_j, fp_j
            if r in recs:
                yield _Block(i0, i1, j0, j1, r, g_cur, cache.get(r - lag), g_pair, diag)
            cache[r] = g_cur
            for old in [k for k in cache if k <= r - lag]:
                del cache[old]
            del g_pair


def _ratio(g_pair: np.ndarray, g_cur: np.ndarray, g_prev: np.ndarray, norm: str, kind: str) -> np.ndarray:
    """Similarity from Grams in float64; NaN where the denominator is zero."""
    num = g_pair.astype(np.float64)
    if norm == "jaccard":
        if kind != "mask":
            raise ValueError("norm='jaccard' is defined for masks only; use norm='l2' for activations")
        den = g_cur.astype(np.float64) + g_prev.astype(np.float64) - num
    else:
        den = np.sqrt(g_cur.astype(np.float64) * g_prev.astype(np.float64))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


# =========================================================================== public pairwise functions


def cross_path_counts(
    p_t: Any,
    p_prev: Any,
    *,
    n_units: int | None = None,
    mem_budget_bytes: int = DEFAULT_MEM_BUDGET_BYTES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three exact Gram matrices behind cross-path similarity.

    Parameters
    ----------
    p_t, p_prev : (N, D) bool or (N, ceil(D/8)) uint8 packed little-endian
        Masks of the same N images at record t and at the earlier record (numpy, dask or
        xarray; packed pad bits must be zero).
    n_units : int, optional
        D for packed input (default 8 * bytes; zero pad bits do not change any count).
    mem_budget_bytes : int

    Returns
    -------
    g_s, g_t, g_prev : (N, N) int64
        ``|s_i AND s_j|`` with ``s = p_t AND p_prev``, ``|p_i^t AND p_j^t|``,
        ``|p_i^{t-1} AND p_j^{t-1}|``. Paper 000, Sec. 6.1.
    """
    kind, d = _check_pair(p_t, p_prev, n_units)
    n = int(p_t.shape[0])
    stack = _Stack([p_prev, p_t], kind, d, "masks")
    plan = plan_blocks(n, d, mem_budget_bytes=mem_budget_bytes, reserved_bytes=3 * n * n * 8)
    out = [np.zeros((n, n), dtype=np.int64) for _ in range(3)]
    with _blas_limit(plan.block_images, plan.chunk_units):
        for blk in _block_grams(stack, plan, kind="mask", lag=1, records=[1]):
            for dst, src in zip(out, (blk.g_pair, blk.g_cur, blk.g_prev)):
                dst[blk.i0 : blk.i1, blk.j0 : blk.j1] = src
                if not blk.diag:  # diagonal blocks are symmetric already
                    dst[blk.j0 : blk.j1, blk.i0 : blk.i1] = src.T
    return out[0], out[1], out[2]


def cross_path_similarity(
    p_t: Any,
    p_prev: Any,
    *,
    n_units: int | None = None,
    norm: Norm = "l2",
    mem_budget_bytes: int = DEFAULT_MEM_BUDGET_BYTES,
) -> np.ndarray:
    """Cross-path similarity of every image pair between two records.

    ``S_ij = |q^t AND q^{t-1}| / sqrt(|q^t| |q^{t-1}|)`` with ``q^t = p_i^t AND p_j^t``
    (the cosine of the two intersection masks), computed exactly as
    ``G_s / sqrt(G_t * G_prev)`` from integer Gram matrices.

    Parameters
    ----------
    p_t, p_prev : (N, D) bool or (N, ceil(D/8)) uint8, packed little-endian
        Masks at record t and at the previous record; numpy, dask or (lazy) xarray.
    n_units : int, optional
        D for packed input.
    norm : {"l2", "jaccard"}
        ``l2``: cosine (default). ``jaccard``: ``G_s / (G_t + G_prev - G_s)``.
    mem_budget_bytes : int
        Budget of the chunked stage; the (N, N) result and its three int64 Grams come on top.

    Returns
    -------
    (N, N) float64, dims ("image_i", "image_j"); symmetric, values in [0, 1] or NaN; the
    diagonal equals :func:`self_similarity`. Paper 000, Sec. 6.1, Figs 1-3.

    Notes
    -----
    A zero denominator (no unit shared by i and j at t or at t-1, e.g. an all-zero mask)
    gives NaN, never 0. Grams are sums over unit chunks of float32 0/1 products, each exact
    (chunks < 2**24 units), cast to int64.

    Examples
    --------
    >>> import numpy as np
    >>> p0 = np.array([[1, 1, 0], [1, 0, 1]], bool)
    >>> p1 = np.array([[1, 1, 0], [1, 1, 1]], bool)
    >>> cross_path_similarity(p1, p0).round(3)
    array([[1.   , 0.707],
           [0.707, 0.816]])
    """
    if norm not in ("l2", "jaccard"):
        raise ValueError(f"norm={norm!r}; choose 'l2' (cosine) or 'jaccard'")
    g_s, g_t, g_p = cross_path_counts(p_t, p_prev, n_units=n_units, mem_budget_bytes=mem_budget_bytes)
    return _ratio(g_s, g_t, g_p, norm, "mask")


def _row_counts(stack: _Stack, r: int, chunk: int, other: int | None = None) -> np.ndarray:
    """Per-image counts |p_r| (other None) or |p_r AND p_other|, exact int64."""
    n, d = stack.n_images, stack.n_units
    out = np.zeros(n, dtype=np.int64)
    for u0 in range(0, d, chunk):
        u1 = min(u0 + chunk, d)
        m = stack.get(r, 0, n, u0, u1)
        if other is not None:
            m = np.logical_and(m, stack.get(other, 0, n, u0, u1))
        out += np.count_nonzero(m, axis=1)
    return out


def _self_from_counts(c_s: np.ndarray, c_t: np.ndarray, c_p: np.ndarray, norm: str) -> np.ndarray:
    num = c_s.astype(np.float64)
    den = (c_t + c_p - c_s).astype(np.float64) if norm == "jaccard" else np.sqrt(c_t.astype(np.float64) * c_p)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def self_similarity(
    p_t: Any,
    p_prev: Any,
    *,
    n_units: int | None = None,
    norm: Norm = "l2",
    mem_budget_bytes: int = DEFAULT_MEM_BUDGET_BYTES,
) -> np.ndarray:
    """Self-similarity of each image's path between two records.

    ``sigma_i = |p_i^t AND p_i^{t-1}| / sqrt(|p_i^t| |p_i^{t-1}|)`` (``jaccard``:
    intersection over union).

    Parameters
    ----------
    p_t, p_prev : (N, D) bool or (N, ceil(D/8)) uint8 packed little-endian
    n_units : int, optional
    norm : {"l2", "jaccard"}
    mem_budget_bytes : int

    Returns
    -------
    (N,) float64, dim "image": 1 iff the two masks are equal (and nonzero); NaN if either
    mask is all zero. Paper 000, Sec. 7, Fig 5.
    """
    if norm not in ("l2", "jaccard"):
        raise ValueError(f"norm={norm!r}; choose 'l2' (cosine) or 'jaccard'")
    kind, d = _check_pair(p_t, p_prev, n_units)
    stack = _Stack([p_prev, p_t], kind, d, "masks")
    n = stack.n_images
    chunk = max(8, min(d, mem_budget_bytes // max(1, 4 * n)) // 8 * 8)
    c_s = _row_counts(stack, 1, chunk, other=0)
    return _self_from_counts(c_s, _row_counts(stack, 1, chunk), _row_counts(stack, 0, chunk), norm)


def _check_acts(a_t: Any, a_prev: Any) -> int:
    for name, a in (("a_t", a_t), ("a_prev", a_prev)):
        if len(a.shape) != 2:
            raise ValueError(f"{name}: expected a 2-D (images, units) array, got shape {tuple(a.shape)}")
        if np.dtype(a.dtype).kind != "f":
            raise TypeError(f"{name}: activations must be floating point, got dtype {a.dtype}")
    if tuple(a_t.shape) != tuple(a_prev.shape):
        raise ValueError(f"a_t has shape {tuple(a_t.shape)} but a_prev has shape {tuple(a_prev.shape)}; they must match")
    return int(a_t.shape[1])


def activation_similarity(
    a_t: Any,
    a_prev: Any,
    *,
    act: Literal["post", "pre"] = "post",
    mem_budget_bytes: int = DEFAULT_MEM_BUDGET_BYTES,
) -> np.ndarray:
    """Cross-activation similarity of every image pair between two records.

    ``A_ij = ((a_i^t * a_j^t) . (a_i^{t-1} * a_j^{t-1})) / (||a_i^t * a_j^t|| ||a_i^{t-1} * a_j^{t-1}||)``
    (``*`` elementwise), computed as ``U U^T / sqrt(N_t * N_prev)`` with
    ``u_i = a_i^t * a_i^{t-1}`` and ``N = (a**2)(a**2)^T``, all in float64.

    Parameters
    ----------
    a_t, a_prev : (N, D) float
        ReLU pre-activations as stored in ``/activations`` (numpy, dask or xarray).
    act : {"post", "pre"}
        ``post`` (default): use the ReLU output ``max(a, 0)``, values in [0, 1].
        ``pre``: the pre-activations themselves, values in [-1, 1].
    mem_budget_bytes : int

    Returns
    -------
    (N, N) float64, dims ("image_i", "image_j"); NaN where a denominator is zero. With
    binary 0/1 inputs it equals :func:`cross_path_similarity`. Paper 000, Fig 1 (right), App. E.
    """
    if act not in ("post", "pre"):
        raise ValueError(f"act={act!r}; choose 'post' (ReLU output) or 'pre' (pre-activation)")
    d = _check_acts(a_t, a_prev)
    n = int(a_t.shape[0])
    stack = _Stack([a_prev, a_t], "float", d, "activations")
    plan = plan_blocks(n, d, mem_budget_bytes=mem_budget_bytes, kind="act", reserved_bytes=4 * n * n * 8)
    out = np.empty((n, n))
    with _blas_limit(plan.block_images, plan.chunk_units):
        for blk in _block_grams(stack, plan, kind="act", act=act, lag=1, records=[1]):
            val = _ratio(blk.g_pair, blk.g_cur, blk.g_prev, "l2", "act")
            out[blk.i0 : blk.i1, blk.j0 : blk.j1] = val
            out[blk.j0 : blk.j1, blk.i0 : blk.i1] = val.T
    return out


def activation_cosine(a: Any, *, act: Literal["post", "pre"] = "post") -> np.ndarray:
    """Cosine similarity ``cos(a_i, a_j)`` of activations at one record (App. E ranks).

    Parameters
    ----------
    a : (N, D) float
    act : {"post", "pre"}
        ``post``: ReLU output ``max(a, 0)``.

    Returns
    -------
    (N, N) float64; NaN where a row is all zero.
    """
    if len(a.shape) != 2:
        raise ValueError(f"a: expected a 2-D (images, units) array, got shape {tuple(a.shape)}")
    x = _materialize(a).astype(np.float64)
    if act == "post":
        x = np.maximum(x, 0.0)
    return _cosine_from_gram(x @ x.T)


def path_overlap(
    p: Any,
    *,
    n_units: int | None = None,
    overlap: Literal["count", "cosine"] = "count",
    mem_budget_bytes: int = DEFAULT_MEM_BUDGET_BYTES,
) -> np.ndarray:
    """Path overlap of every image pair at one record.

    Parameters
    ----------
    p : (N, D) bool or (N, ceil(D/8)) uint8 packed little-endian
    n_units : int, optional
    overlap : {"count", "cosine"}
        ``count``: the raw dot product ``O_ij = p_i . p_j`` (the paper's Fig 4, 6);
        ``cosine``: ``O_ij / sqrt(|p_i| |p_j|)`` (NaN for an all-zero mask).
    mem_budget_bytes : int

    Returns
    -------
    (N, N) float64 (integer-valued for ``count``). Paper 000, Sec. 6.4, Figs 4 and 6.

    Notes
    -----
    Raw counts scale with layer width: compare layers only with ``cosine``.
    """
    if overlap not in ("count", "cosine"):
        raise ValueError(f"overlap={overlap!r}; choose 'count' or 'cosine'")
    kind, d = _check_mask(p, n_units, "p")
    n = int(p.shape[0])
    stack = _Stack([p], kind, d, "masks")
    plan = plan_blocks(n, d, mem_budget_bytes=mem_budget_bytes, lag=0, reserved_bytes=2 * n * n * 8)
    g = np.zeros((n, n), dtype=np.int64)
    with _blas_limit(plan.block_images, plan.chunk_units):
        for blk in _block_grams(stack, plan, kind="mask", lag=1, records=[0]):
            g[blk.i0 : blk.i1, blk.j0 : blk.j1] = blk.g_cur
            g[blk.j0 : blk.j1, blk.i0 : blk.i1] = blk.g_cur.T
    return _overlap_values(g, overlap)


def _overlap_values(g: np.ndarray, overlap: str, diag: np.ndarray | None = None) -> np.ndarray:
    if overlap == "count":
        return g.astype(np.float64)
    c = np.diag(g).astype(np.float64) if diag is None else diag
    den = np.sqrt(c[:, None] * c[None, :])
    out = np.full(g.shape, np.nan)
    np.divide(g.astype(np.float64), den, out=out, where=den > 0)
    return out


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


# =========================================================================== whole-run analysis


@dataclass
class _Summary:
    """Streaming summaries over pairs i < j for (record, layer)."""

    n_rec: int
    n_lay: int
    bins: int
    lo: float
    hi: float

    def __post_init__(self) -> None:
        shape = (self.n_rec, self.n_lay)
        self.total = np.zeros(shape)
        self.count = np.zeros(shape, dtype=np.int64)
        self.nan = np.zeros(shape, dtype=np.int64)
        self.within = np.zeros(shape)
        self.within_n = np.zeros(shape, dtype=np.int64)
        self.between = np.zeros(shape)
        self.between_n = np.zeros(shape, dtype=np.int64)
        self.hist = np.zeros((*shape, self.bins), dtype=np.int64)

    def update(self, r: int, k: int, val: np.ndarray, i0: int, j0: int, labels: np.ndarray | None) -> None:
        """Add the pairs i < j of block ``val`` (rows from i0, columns from j0)."""
        ni, nj = val.shape
        rows = np.arange(i0, i0 + ni)[:, None]
        cols = np.arange(j0, j0 + nj)[None, :]
        upper = cols > rows
        finite = np.isfinite(val)
        sel = upper & finite
        v = val[sel]
        self.total[r, k] += v.sum()
        self.count[r, k] += v.size
        self.nan[r, k] += int(np.count_nonzero(upper & ~finite))
        _hist_update(self.hist[r, k], v, self.lo, self.hi)
        if labels is not None:
            same = labels[i0 : i0 + ni, None] == labels[None, j0 : j0 + nj]
            w = sel & same
            self.within[r, k] += val[w].sum()
            self.within_n[r, k] += int(np.count_nonzero(w))
            b = sel & ~same
            self.between[r, k] += val[b].sum()
            self.between_n[r, k] += int(np.count_nonzero(b))

    def arrays(self, prefix: str, quantiles: Sequence[float]) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.total / self.count
            within = self.within / self.within_n
            between = self.between / self.between_n
            nan_frac = self.nan / (self.nan + self.count)
        edges = np.linspace(self.lo, self.hi, self.bins + 1)
        q = histogram_quantiles(self.hist, edges, quantiles)
        d = ("record", "layer")
        return {
            f"{prefix}_mean": (d, mean),
            f"{prefix}_within": (d, within),
            f"{prefix}_between": (d, between),
            f"{prefix}_nan_fraction": (d, nan_frac),
            f"{prefix}_n_pairs": (d, self.count),
            f"{prefix}_hist": ((*d, "bin"), self.hist),
            f"{prefix}_q": ((*d, "quantile"), q),
        }


def _strips(n: int, size: int) -> Iterator[tuple[int, int]]:
    for a in range(0, n, size):
        yield a, min(a + size, n)


def _layer_stack(data: Any, n_units: int, name: str, *, activations: bool) -> _Stack:
    dtype = np.dtype(data.dtype)
    if activations:
        return _Stack(data, "float", n_units, name)
    if dtype == np.uint8:
        return _Stack(data, "packed", n_units, name)
    if dtype == np.bool_:
        return _Stack(data, "bool", n_units, name)
    raise TypeError(f"layer {name}: masks must be packed uint8 or bool, got {dtype}")


class _Concat(_Stack):
    """Several layers' stacks as one unit axis (pseudo-layer ``all``: counts summed over layers)."""

    def __init__(self, parts: Sequence[_Stack]) -> None:
        self.parts = list(parts)
        self.kind = "concat"
        self.name = "all"
        self.n_records = parts[0].n_records
        self.n_images = parts[0].n_images
        self.offsets = np.cumsum([0] + [p.n_units for p in parts])
        self.n_units = int(self.offsets[-1])

    def get(self, r: int, r0: int, r1: int, u0: int, u1: int) -> np.ndarray:
        out = []
        for p, off in zip(self.parts, self.offsets[:-1]):
            a, b = max(u0, off), min(u1, off + p.n_units)
            if a < b:
                # keep packed reads byte aligned: read from the byte boundary and trim
                la = a - off
                start = la - la % 8 if p.kind == "packed" else la
                blk = p.get(r, r0, r1, start, b - off)
                out.append(blk[:, la - start :])
        return np.concatenate(out, axis=1)

    def preload(self, max_bytes: int) -> _Stack:
        return _Concat([p.preload(max_bytes // max(len(self.parts), 1)) for p in self.parts])


def cross_path_dataset(
    masks: Mapping[str, Any],
    n_units: Mapping[str, int],
    *,
    labels: np.ndarray | None = None,
    activations: Mapping[str, Any] | None = None,
    norm: Norm = "l2",
    lag: int = 1,
    act: Literal["post", "pre"] = "post",
    max_pairwise: int = 128,
    hist_bins: int = 1000,
    quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
    layers_combined: Literal["none", "sum"] = "none",
    overlap: Literal["count", "cosine"] = "count",
    overlap_records: Sequence[int] = (),
    overlap_images: int | None = None,
    n_candidates: int = 128,
    baselines: Sequence[int] = (5, 10, 15),
    top_k: int = 6,
    mem_budget_bytes: int = DEFAULT_MEM_BUDGET_BYTES,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Stream every record of every layer through the exact Gram engine.

    Parameters
    ----------
    masks : mapping layer -> (R, N, ceil(D/8)) uint8 packed or (R, N, D) bool
        Masks of the analysed images (one split) at each record, in forward layer order;
        numpy, dask or lazily loaded xarray (only the slices in use are read).
    n_units : mapping layer -> int
    labels : (N,) int, optional
        Class labels for within/between-class means.
    activations : mapping layer -> (R, N, D) float, optional
        Pre-activations for the activation variant (``act_cross``) and App. E ranks.
    norm, lag, act, overlap
        Definitions (see :func:`cross_path_similarity`, :func:`activation_similarity`,
        :func:`path_overlap`).
    max_pairwise : int
        Full (M, M) matrices are kept for the first ``M = min(max_pairwise, N)`` images.
    hist_bins : int
        Bins of the stored histograms over pairs (quantiles are read from them).
    quantiles : sequence of float
    layers_combined : {"none", "sum"}
        ``sum`` adds a pseudo-layer ``all``: counts summed over layers before dividing.
    overlap_records : sequence of int
        Records at which overlap ``O`` is kept for the first ``overlap_images`` images (Fig 4).
    overlap_images : int, optional
        Images of the Fig 4 overlap matrices (None: all N).
    n_candidates, baselines, top_k
        Nearest-neighbour ranks (Fig 6, App. E).
    mem_budget_bytes : int
        Budget of everything held at once (outputs are reserved first).
    progress : callable, optional
        Called with a message per layer (logging).

    Returns
    -------
    dict mapping variable name -> (dims tuple, array), from which the caller builds the
    Dataset (``gendyn paths compute``; docs/measures.md lists the variables), plus the
    private keys ``_names`` (layer names, ``all`` last), ``_records`` (record indices
    ``lag..R-1`` of the ``record`` dim), ``_overlap_records``, ``_m`` and ``_mo`` (image counts
    of the full matrices).

    Notes
    -----
    Small problems run with one BLAS thread (see ``_blas_limit``). Masks and activations of
    a layer are read into memory when they fit in an eighth of the budget; otherwise every
    (record, image block, unit chunk) slice is read when needed.
    """
    kwargs = dict(
        labels=labels, activations=activations, norm=norm, lag=lag, act=act, max_pairwise=max_pairwise,
        hist_bins=hist_bins, quantiles=quantiles, layers_combined=layers_combined, overlap=overlap,
        overlap_records=overlap_records, overlap_images=overlap_images, n_candidates=n_candidates,
        baselines=baselines, top_k=top_k, mem_budget_bytes=mem_budget_bytes, progress=progress,
    )
    n_img = max(int(a.shape[1]) for a in masks.values()) if masks else 0
    total_units = sum(int(v) for v in n_units.values())
    with _blas_limit(n_img, total_units):
        return _cross_path_dataset(masks, n_units, **kwargs)


def _cross_path_dataset(
    masks: Mapping[str, Any],
    n_units: Mapping[str, int],
    *,
    labels: np.ndarray | None = None,
    activations: Mapping[str, Any] | None = None,
    norm: Norm = "l2",
    lag: int = 1,
    act: Literal["post", "pre"] = "post",
    max_pairwise: int = 128,
    hist_bins: int = 1000,
    quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
    layers_combined: Literal["none", "sum"] = "none",
    overlap: Literal["count", "cosine"] = "count",
    overlap_records: Sequence[int] = (),
    overlap_images: int | None = None,
    n_candidates: int = 128,
    baselines: Sequence[int] = (5, 10, 15),
    top_k: int = 6,
    mem_budget_bytes: int = DEFAULT_MEM_BUDGET_BYTES,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """:func:`cross_path_dataset` without the BLAS thread limit."""
    layers = list(masks)
    if not layers:
        raise ValueError("masks: no layers given")
    if lag < 1:
        raise ValueError(f"lag={lag}; must be >= 1")
    if norm not in ("l2", "jaccard"):
        raise ValueError(f"norm={norm!r}; choose 'l2' or 'jaccard'")
    stacks = [_layer_stack(masks[k], n_units[k], k, activations=False) for k in layers]
    n_rec, n = stacks[0].n_records, stacks[0].n_images
    for s in stacks:
        if (s.n_records, s.n_images) != (n_rec, n):
            raise ValueError(
                f"layer {s.name}: {s.n_records} records x {s.n_images} images, but layer {stacks[0].name} has "
                f"{n_rec} x {n}; all layers must come from the same records and images"
            )
    if n_rec <= lag:
        raise ValueError(f"{n_rec} records but lag={lag}: need at least lag + 1 records to compare")
    names = list(layers)
    if layers_combined == "sum":
        stacks.append(_Concat(stacks))
        names.append("all")
    n_lay = len(stacks)
    recs = list(range(lag, n_rec))
    nr = len(recs)
    m = min(int(max_pairwise), n)
    mo = n if overlap_images is None else min(int(overlap_images), n)
    ov_recs = sorted(set(int(r) for r in overlap_records))
    for r in ov_recs:
        if not 0 <= r < n_rec:
            raise ValueError(f"overlap record {r} outside 0..{n_rec - 1}")
    lab = None if labels is None else np.asarray(labels)
    use_acts = activations is not None
    if use_acts:
        missing = [k for k in layers if k not in activations]
        if missing:
            raise ValueError(f"activations lack layers {missing}")

    # Outputs held for the whole analysis are reserved from the budget first.
    out_bytes = (
        n_lay * nr * m * m * 8 * (2 if use_acts else 1)
        + n_lay * len(ov_recs) * (mo * mo * 4 + m * m * 8)
        + n_lay * n_rec * n * 8
        + n_lay * nr * hist_bins * 8 * (2 if use_acts else 1)
    )
    budget = int(mem_budget_bytes)
    if out_bytes > budget // 2:
        raise MemoryError(
            f"the stored outputs alone need {out_bytes / 2**20:.0f} MiB of the {budget / 2**20:.0f} MiB budget; "
            "lower analyses.paths.max_pairwise / overlap_images or raise resources.analysis.mem_budget_mb"
        )
    stage_budget = budget - out_bytes

    out: dict[str, Any] = {}
    cross = np.full((nr, n_lay, m, m), np.nan)
    self_sim = np.full((nr, n_lay, n), np.nan)
    summ = _Summary(nr, n_lay, hist_bins, 0.0, 1.0)
    ov_full = np.full((len(ov_recs), n_lay, mo, mo), np.nan, dtype=np.float32)
    counts_diag = np.zeros((n_rec, n_lay, n), dtype=np.int64)
    if use_acts:
        act_cross = np.full((nr, n_lay, m, m), np.nan)
        lo = -1.0 if act == "pre" else 0.0
        act_summ = _Summary(nr, n_lay, hist_bins, lo, 1.0)

    # Neighbour ranks (Fig 6) by overlap; App. E by activation cosine: the first n_candidates + 1 images.
    rank_rows = n_candidates + 1
    do_ranks = bool(baselines) and n >= rank_rows
    if baselines and not do_ranks:
        logger.warning("neighbour ranks skipped: %d images < %d candidates + 1", n, n_candidates)
    n_real = len(layers)
    ranks = np.zeros((nr, n_lay, len(baselines), n_candidates), dtype=np.int64) if do_ranks else None
    act_ranks = np.full_like(ranks, -1) if (do_ranks and use_acts) else None
    cands = None
    rank_chunk = max(8, min(stage_budget // (16 * rank_rows), _MAX_EXACT_CHUNK) // 8 * 8)

    for k, lazy in enumerate(stacks):
        if progress:
            progress(f"layer {names[k]} ({k + 1}/{n_lay}): {n} images x {lazy.n_units} units x {n_rec} records")
        # Read a layer into memory only when it fits an eighth of the budget, and only while it
        # is analysed (the pseudo-layer `all` shares that eighth among its parts).
        stack = lazy.preload(stage_budget // 8)
        plan = plan_blocks(n, stack.n_units, mem_budget_bytes=stage_budget, lag=lag, kind="mask")
        logger.debug("layer %s: plan %s", names[k], plan)
        strip = min(plan.block_images, 256)
        for blk in _block_grams(stack, plan, kind="mask", lag=lag, records=range(n_rec)):
            r = blk.record
            if blk.diag:
                counts_diag[r, k, blk.i0 : blk.i1] = np.diag(blk.g_cur)
            if r in ov_recs and blk.i0 < mo and blk.j0 < mo:
                a1, b1 = min(blk.i1, mo), min(blk.j1, mo)
                sub = blk.g_cur[: a1 - blk.i0, : b1 - blk.j0].astype(np.float32)
                t = ov_recs.index(r)
                ov_full[t, k, blk.i0 : a1, blk.j0 : b1] = sub
                ov_full[t, k, blk.j0 : b1, blk.i0 : a1] = sub.T
            if blk.g_pair is None:
                continue
            ri = r - lag
            for a, b in _strips(blk.i1 - blk.i0, strip):
                val = _ratio(blk.g_pair[a:b], blk.g_cur[a:b], blk.g_prev[a:b], norm, "mask")
                summ.update(ri, k, val, blk.i0 + a, blk.j0, lab)
                _store_square(cross[ri, k], val, blk.i0 + a, blk.j0, m)
            if blk.diag:
                self_sim[ri, k, blk.i0 : blk.i1] = _self_from_counts(
                    np.diag(blk.g_pair), np.diag(blk.g_cur), np.diag(blk.g_prev), norm
                )
        if do_ranks:
            for ri, r in enumerate(recs):
                g = _small_gram(stack, r, rank_rows, rank_chunk, kind="mask")
                ranks[ri, k], cands = neighbour_ranks(_overlap_values(g, overlap), baselines, n_candidates)
        del stack
        if use_acts and k < n_real:
            astack = _layer_stack(activations[names[k]], n_units[names[k]], names[k], activations=True)
            astack = astack.preload(stage_budget // 8)
            aplan = plan_blocks(n, astack.n_units, mem_budget_bytes=stage_budget, lag=lag, kind="act")
            for blk in _block_grams(astack, aplan, kind="act", act=act, lag=lag, records=recs):
                ri = blk.record - lag
                for a, b in _strips(blk.i1 - blk.i0, min(aplan.block_images, 256)):
                    val = _ratio(blk.g_pair[a:b], blk.g_cur[a:b], blk.g_prev[a:b], "l2", "act")
                    act_summ.update(ri, k, val, blk.i0 + a, blk.j0, lab)
                    _store_square(act_cross[ri, k], val, blk.i0 + a, blk.j0, m)
            if do_ranks:
                for ri, r in enumerate(recs):
                    ga = _small_gram(astack, r, rank_rows, rank_chunk, kind="act", act=act)
                    act_ranks[ri, k], _ = neighbour_ranks(_cosine_from_gram(ga), baselines, n_candidates)
            del astack

    # Overlap (Fig 4): counts or cosine from the kept Grams (diagonal = |p_i|).
    ov_vals = np.full_like(ov_full, np.nan)
    for t, r in enumerate(ov_recs):
        for k in range(n_lay):
            diag = counts_diag[r, k, :mo].astype(np.float64)
            ov_vals[t, k] = _overlap_values(ov_full[t, k].astype(np.float64), overlap, diag=diag)

    if do_ranks:
        out["nn_rank"] = (("record", "layer", "baseline", "candidate"), ranks)
        out["nn_candidate_image"] = (("baseline", "candidate"), cands)
        ch = [rank_changes(ranks[:, k], top_k=top_k) for k in range(n_lay)]
        out["nn_n_top1_changes"] = (("layer", "baseline"), np.stack([c["n_top1_changes"] for c in ch]))
        out["nn_n_distinct_top"] = (("layer", "baseline"), np.stack([c["n_distinct_top"] for c in ch]))
        out["nn_kendall_tau"] = (("record", "layer", "baseline"), np.stack([c["kendall_tau"] for c in ch], axis=1))
        if use_acts:
            out["nn_rank_act"] = (("record", "layer", "baseline", "candidate"), act_ranks)
            cha = [rank_changes(act_ranks[:, k], top_k=top_k) for k in range(n_real)]
            pad = [np.full(len(baselines), -1, dtype=np.int64)] * (n_lay - n_real)
            out["nn_act_n_top1_changes"] = (("layer", "baseline"), np.stack([c["n_top1_changes"] for c in cha] + pad))
            out["nn_act_n_distinct_top"] = (("layer", "baseline"), np.stack([c["n_distinct_top"] for c in cha] + pad))

    out["cross_path"] = (("record", "layer", "image_i", "image_j"), cross)
    out["self_sim"] = (("record", "layer", "image"), self_sim)
    out.update(summ.arrays("cross_path", quantiles))
    with np.errstate(invalid="ignore", divide="ignore"):
        finite = np.isfinite(self_sim)
        out["self_sim_mean"] = (("record", "layer"), np.where(finite, self_sim, 0.0).sum(axis=2) / finite.sum(axis=2))
    out["self_sim_q"] = (("record", "layer", "quantile"), _nanquantile(self_sim, quantiles))
    out["n_active"] = (("record", "layer", "image"), counts_diag[lag:])
    if ov_recs:
        out["overlap"] = (("overlap_record", "layer", "overlap_image_i", "overlap_image_j"), ov_vals)
    if use_acts:
        out["act_cross"] = (("record", "layer", "image_i", "image_j"), act_cross)
        out.update(act_summ.arrays("act_cross", quantiles))
    out["_names"] = names
    out["_records"] = recs
    out["_overlap_records"] = ov_recs
    out["_m"] = m
    out["_mo"] = mo
    return out


def _small_gram(stack: _Stack, r: int, rows: int, chunk: int, *, kind: str, act: str = "post") -> np.ndarray:
    """Gram of the first ``rows`` images at record r, accumulated over unit chunks
    (masks: exact int64 counts; activations: float64, ReLU output for ``act="post"``)."""
    d = stack.n_units
    g = np.zeros((rows, rows), dtype=np.int64 if kind == "mask" else np.float64)
    for u0 in range(0, d, chunk):
        x = stack.get(r, 0, rows, u0, min(u0 + chunk, d))
        if kind == "mask":
            f = x.astype(np.float32)
            np.add(g, f @ f.T, out=g, casting="unsafe")
        else:
            f = np.maximum(x, 0.0) if act == "post" else x
            g += f @ f.T
    return g


def _cosine_from_gram(g: np.ndarray) -> np.ndarray:
    nrm = np.sqrt(np.clip(np.diag(g), 0.0, None))
    den = nrm[:, None] * nrm[None, :]
    out = np.full(g.shape, np.nan)
    np.divide(g, den, out=out, where=den > 0)
    return out


def _nanquantile(x: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """(record, layer, image) -> (record, layer, quantile) without all-NaN warnings."""
    out = np.full((*x.shape[:2], len(q)), np.nan)
    for r in range(x.shape[0]):
        for k in range(x.shape[1]):
            v = x[r, k][np.isfinite(x[r, k])]
            if v.size:
                out[r, k] = np.quantile(v, q)
    return out


def _store_square(dst: np.ndarray, val: np.ndarray, i0: int, j0: int, m: int) -> None:
    """Copy the part of block ``val`` (rows from i0, cols from j0) inside [0, m)^2, both triangles."""
    if i0 >= m or j0 >= m:
        return
    a1 = min(i0 + val.shape[0], m)
    b1 = min(j0 + val.shape[1], m)
    sub = val[: a1 - i0, : b1 - j0]
    dst[i0:a1, j0:b1] = sub
    dst[j0:b1, i0:a1] = sub.T


# =========================================================================== record_bn: batch


def batch_stat_masks(model: Any, x: Any, *, batch_size: int | None = None) -> dict[str, np.ndarray]:
    """ReLU masks with BatchNorm using the batch statistics of ``x`` (option ``record_bn: batch``).

    Every BatchNorm layer normalises with the mean/variance of the tracked set (one batch
    of ``len(x)`` images unless ``batch_size``); dropout stays off. Running statistics,
    ``model.training`` and the modules' modes are restored afterwards.

    Parameters
    ----------
    model : torch.nn.Module
    x : (N, ...) tensor of tracked inputs
    batch_size : int, optional

    Returns
    -------
    dict layer name -> (N, ceil(D/8)) uint8 masks packed little-endian (pre-activation > 0).
    """
    import torch
    from torch import nn

    from gendyn.record import layer_name, packbits

    bn_types = (nn.modules.batchnorm._BatchNorm,)
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    modes = {name: mod.training for name, mod in model.named_modules()}
    found: dict[str, list[torch.Tensor]] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ReLU):
            hooks.append(
                mod.register_forward_hook(
                    lambda m_, i_, o_, n_=layer_name(name): found.setdefault(n_, []).append(packbits((o_ > 0).flatten(1)).cpu())
                )
            )
    try:
        model.eval()
        for mod in model.modules():
            if isinstance(mod, bn_types):
                mod.train()
        bs = len(x) if batch_size is None else int(batch_size)
        with torch.no_grad():
            for i in range(0, len(x), bs):
                model(x[i : i + bs])
    finally:
        for h in hooks:
            h.remove()
        model.load_state_dict(saved)
        for name, mod in model.named_modules():
            mod.training = modes[name]
    return {k: torch.cat(v).numpy() for k, v in found.items()}
