"""Path similarity between images and over training (paper 000, Secs. 6-7): the definitions.

A tracked image's *path* at record ``t`` in layer ``k`` is its binary ReLU mask ``p_i^t``
(unit on iff its pre-activation is > 0). The measures:

* cross-path similarity ``S_ij^t`` (Sec. 6.1, Figs 1-3, 16): cosine between the intersection
  masks ``q_ij^t = p_i^t AND p_j^t`` at record ``t`` and ``q_ij^{t-1}`` at the previous record;
* self-similarity ``sigma_i^t`` (Sec. 7, Fig 5): cosine between ``p_i^t`` and ``p_i^{t-1}``;
* the activation variant ``A_ij^t`` (Fig 1 right column, App. E) and the activation cosine;
* path overlap ``O_ij^t = p_i^t . p_j^t`` (Sec. 6.4, Figs 4 and 6).

Exact Gram formulation
----------------------
With ``s_i = p_i^t AND p_i^{t-1}`` every count is an entry of a Gram matrix:
``|q_ij^t AND q_ij^{t-1}| = (s s^T)_ij``, ``|q_ij^t| = (P_t P_t^T)_ij``, so
``S = G_s / sqrt(G_t * G_{t-1})``. The Grams come exact (int64) from the out-of-core engine
(:mod:`gendyn.paths.gram`); ratios are taken in float64.

All functions are pure: they open no files and read no configuration. Inputs may be numpy,
bit-packed uint8 (as stored in ``run.h5``), dask or lazily loaded xarray arrays.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np

from gendyn.paths.gram import (
    _blas_limit,
    _block_grams,
    _budget,
    _check_mask,
    _check_pair,
    _materialize,
    _Stack,
    plan_blocks,
)

__all__ = [
    "Norm",
    "cross_path_counts",
    "cross_path_similarity",
    "self_similarity",
    "activation_similarity",
    "activation_cosine",
    "path_overlap",
]

logger = logging.getLogger(__name__)

Norm = Literal["l2", "jaccard"]


# =========================================================================== Grams -> similarities


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


def _cosine_from_gram(g: np.ndarray) -> np.ndarray:
    """(N, N) cosine ``g_ij / sqrt(g_ii g_jj)`` from a Gram of activations; NaN for a zero row."""
    nrm = np.sqrt(np.clip(np.diag(g), 0.0, None))
    den = nrm[:, None] * nrm[None, :]
    out = np.full(g.shape, np.nan)
    np.divide(g, den, out=out, where=den > 0)
    return out


def _overlap_values(g: np.ndarray, overlap: str, diag: np.ndarray | None = None) -> np.ndarray:
    """Overlap from a mask Gram: the counts (``count``) or ``g_ij / sqrt(|p_i| |p_j|)`` (``cosine``;
    ``diag`` = the counts |p_i| when ``g`` is a sub-block without its own diagonal)."""
    if overlap == "count":
        return g.astype(np.float64)
    c = np.diag(g).astype(np.float64) if diag is None else diag
    den = np.sqrt(c[:, None] * c[None, :])
    out = np.full(g.shape, np.nan)
    np.divide(g.astype(np.float64), den, out=out, where=den > 0)
    return out


# =========================================================================== public pairwise functions


def cross_path_counts(
    p_t: Any,
    p_prev: Any,
    *,
    n_units: int | None = None,
    mem_budget_bytes: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three exact Gram matrices behind cross-path similarity.

    Parameters
    ----------
    p_t, p_prev : (N, D) bool or (N, ceil(D/8)) uint8 packed little-endian
        Masks of the same N images at record t and at the earlier record (numpy, dask or
        xarray; packed pad bits must be zero).
    n_units : int, optional
        D for packed input (default 8 * bytes; zero pad bits do not change any count).
    mem_budget_bytes : int, optional
        None: the default budget (:func:`gendyn.parallel.mem_budget_bytes`).

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
    mem_budget_bytes: int | None = None,
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
    mem_budget_bytes : int, optional
        Budget of the chunked stage (None: :func:`gendyn.parallel.mem_budget_bytes`); the
        (N, N) result and its three int64 Grams come on top.

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
    mem_budget_bytes: int | None = None,
) -> np.ndarray:
    """Self-similarity of each image's path between two records.

    ``sigma_i = |p_i^t AND p_i^{t-1}| / sqrt(|p_i^t| |p_i^{t-1}|)`` (``jaccard``:
    intersection over union).

    Parameters
    ----------
    p_t, p_prev : (N, D) bool or (N, ceil(D/8)) uint8 packed little-endian
    n_units : int, optional
    norm : {"l2", "jaccard"}
    mem_budget_bytes : int, optional
        None: the default budget (:func:`gendyn.parallel.mem_budget_bytes`).

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
    chunk = max(8, min(d, _budget(mem_budget_bytes) // max(1, 4 * n)) // 8 * 8)
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
    mem_budget_bytes: int | None = None,
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
    mem_budget_bytes : int, optional
        None: the default budget (:func:`gendyn.parallel.mem_budget_bytes`).

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
    mem_budget_bytes: int | None = None,
) -> np.ndarray:
    """Path overlap of every image pair at one record.

    Parameters
    ----------
    p : (N, D) bool or (N, ceil(D/8)) uint8 packed little-endian
    n_units : int, optional
    overlap : {"count", "cosine"}
        ``count``: the raw dot product ``O_ij = p_i . p_j`` (the paper's Fig 4, 6);
        ``cosine``: ``O_ij / sqrt(|p_i| |p_j|)`` (NaN for an all-zero mask).
    mem_budget_bytes : int, optional
        None: the default budget (:func:`gendyn.parallel.mem_budget_bytes`).

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


