"""The exact out-of-core Gram engine behind every pairwise path measure (paper 000).

Every count of the path measures is an entry of a Gram matrix of 0/1 features (masks) or of
float features (activations). This module holds the machinery that produces those Grams
without ever holding more than an explicit memory budget:

* inputs (:class:`_Stack`): numpy boolean arrays, bit-packed uint8 arrays exactly as stored in
  ``run.h5`` (``numpy.packbits(..., bitorder="little")``), dask arrays or lazily loaded
  (dask-backed) xarray objects; only the slices a step needs are materialised;
* planning (:func:`plan_blocks`): the image-pair plane is tiled into blocks and the units into
  chunks so that Grams, chunk buffers and temporaries fit the budget;
* products (:func:`_block_grams`): exact Grams block by block, record by record. Mask Grams are
  accumulated over unit chunks as float32 0/1 products, each exact (a chunk has fewer than
  2**24 units), cast to int64 before summing, so every count is an exact integer.

Nothing here knows what a similarity is: :mod:`gendyn.paths.similarity` turns Grams into the
paper's measures and :mod:`gendyn.paths.streaming` streams whole runs through the engine.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["BlockPlan", "plan_blocks"]

logger = logging.getLogger(__name__)

#: Largest unit chunk of a float32 0/1 Gram whose integer sums are exact (< 2**24).
_MAX_EXACT_CHUNK = (1 << 24) - 8


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


def _layer_stack(data: Any, n_units: int, name: str, *, activations: bool) -> _Stack:
    """The stack of one layer's (R, N, W) masks (packed uint8 or bool) or activations (float)."""
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


def _budget(mem_budget_bytes: int | None) -> int:
    """``mem_budget_bytes``, or the one default budget (``resources.analysis.mem_budget_mb``)."""
    if mem_budget_bytes is None:
        from gendyn.parallel import mem_budget_bytes as default_budget

        return default_budget()
    return int(mem_budget_bytes)


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
    mem_budget_bytes: int | None = None,
    lag: int = 1,
    kind: Literal["mask", "act"] = "mask",
    reserved_bytes: int = 0,
) -> BlockPlan:
    """Choose image blocks and unit chunks so the pairwise stage fits the budget.

    Parameters
    ----------
    n_images, n_units : int
        N and D of one record.
    mem_budget_bytes : int, optional
        Bytes the stage may hold (Grams, chunk buffers, temporaries); None:
        :func:`gendyn.parallel.mem_budget_bytes` (``resources.analysis.mem_budget_mb``).
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
    mem_budget_bytes = _budget(mem_budget_bytes)
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


def _strips(n: int, size: int) -> Iterator[tuple[int, int]]:
    """Row ranges [a, b) of at most ``size`` rows covering ``range(n)`` (bounds the ratio temporaries)."""
    for a in range(0, n, size):
        yield a, min(a + size, n)


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

