"""Whole-run path analysis (paper 000): every record of every layer through the Gram engine.

:func:`cross_path_dataset` streams a run's masks (and, optionally, activations) record by
record through the exact out-of-core Gram engine (:mod:`gendyn.paths.gram`). It keeps full
N x N matrices only for the first ``max_pairwise`` images and summaries (mean, histogram,
quantiles, within/between class means, NaN fraction) for all pairs, plus the overlap
matrices of Fig 4 and the nearest-neighbour ranks of Fig 6 / App. E. What it computes is
one :class:`CrossPathOptions`; what it returns is one :class:`CrossPathResult`.

Everything held for the whole analysis (the outputs) is reserved from the memory budget
first; the rest sizes the engine's tiles, so one record of N = 8192 images x D = 65,536 units
stays within a few GiB. Pure: no files, no configuration.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gendyn.paths.gram import (
    _MAX_EXACT_CHUNK,
    _blas_limit,
    _Block,
    _block_grams,
    _budget,
    _Concat,
    _layer_stack,
    _small_gram,
    _Stack,
    _strips,
    BlockPlan,
    plan_blocks,
)
from gendyn.paths.similarity import Norm, _cosine_from_gram, _overlap_values, _ratio, _self_from_counts
from gendyn.paths.stats import _hist_update, histogram_quantiles, neighbour_ranks, rank_changes

__all__ = ["CrossPathOptions", "CrossPathResult", "cross_path_dataset", "reserved_bytes"]

logger = logging.getLogger(__name__)

#: A variable of the result: (dims, values).
Variable = tuple[tuple[str, ...], np.ndarray]


@dataclass(frozen=True)
class CrossPathOptions:
    """What :func:`cross_path_dataset` computes and keeps (``analyses.paths`` in array terms).

    Attributes
    ----------
    norm, lag, act, overlap
        Definitions (see :func:`gendyn.paths.cross_path_similarity`,
        :func:`gendyn.paths.activation_similarity`, :func:`gendyn.paths.path_overlap`).
    max_pairwise : int
        Full (M, M) matrices are kept for the first ``M = min(max_pairwise, N)`` images.
    hist_bins : int
        Bins of the stored histograms over pairs (quantiles are read from them).
    quantiles : tuple of float
    layers_combined : {"none", "sum"}
        ``sum`` adds a pseudo-layer ``all``: counts summed over layers before dividing.
    overlap_records : tuple of int
        Records at which overlap ``O`` is kept for the first ``overlap_images`` images (Fig 4).
    overlap_images : int, optional
        Images of the Fig 4 overlap matrices (None: all N).
    n_candidates, baselines, top_k
        Nearest-neighbour ranks (Fig 6, App. E): 0-based baseline positions; none = no ranks.
    """

    norm: Norm = "l2"
    lag: int = 1
    act: Literal["post", "pre"] = "post"
    max_pairwise: int = 128
    hist_bins: int = 1000
    quantiles: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
    layers_combined: Literal["none", "sum"] = "none"
    overlap: Literal["count", "cosine"] = "count"
    overlap_records: tuple[int, ...] = ()
    overlap_images: int | None = None
    n_candidates: int = 128
    baselines: tuple[int, ...] = (5, 10, 15)
    top_k: int = 6

    def __post_init__(self) -> None:
        for name in ("quantiles", "overlap_records", "baselines"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if int(self.lag) < 1:
            raise ValueError(f"lag={self.lag}; must be >= 1")
        if self.norm not in ("l2", "jaccard"):
            raise ValueError(f"norm={self.norm!r}; choose 'l2' or 'jaccard'")

    def replace(self, **changes: Any) -> CrossPathOptions:
        """A copy with some fields changed (unknown names raise ``TypeError`` listing the fields)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"CrossPathOptions has no field {', '.join(map(repr, unknown))}; fields: {sorted(names)}")
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, eq=False)
class CrossPathResult(Mapping[str, Variable]):
    """The arrays of one whole-run analysis and the indices that label them.

    A mapping variable name -> ``(dims, values)`` (docs/measures.md lists the variables;
    ``gendyn paths compute`` turns them into the Dataset), plus:

    Attributes
    ----------
    layers : tuple of str
        Names along dim ``layer``: the analysed layers, then ``all`` with ``layers_combined: sum``.
    records : tuple of int
        Record indices along dim ``record`` (``lag .. R - 1``).
    prev_records : tuple of int
        The record each one is compared with (``record - lag``).
    overlap_records : tuple of int
        Record indices along dim ``overlap_record`` (sorted, unique).
    n_pairwise, n_overlap : int
        Images of the full matrices (``image_i``/``image_j``) and of the overlap matrices
        (``overlap_image_i``/``overlap_image_j``).
    """

    variables: dict[str, Variable]
    layers: tuple[str, ...]
    records: tuple[int, ...]
    prev_records: tuple[int, ...]
    overlap_records: tuple[int, ...]
    n_pairwise: int
    n_overlap: int

    def __getitem__(self, name: str) -> Variable:
        return self.variables[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.variables)

    def __len__(self) -> int:
        return len(self.variables)


def cross_path_dataset(
    masks: Mapping[str, Any],
    n_units: Mapping[str, int],
    options: CrossPathOptions | None = None,
    *,
    labels: np.ndarray | None = None,
    activations: Mapping[str, Any] | None = None,
    mem_budget_bytes: int | None = None,
    progress: Callable[[str], None] | None = None,
    **changes: Any,
) -> CrossPathResult:
    """Stream every record of every layer through the exact Gram engine.

    Parameters
    ----------
    masks : mapping layer -> (R, N, ceil(D/8)) uint8 packed or (R, N, D) bool
        Masks of the analysed images (one split) at each record, in forward layer order;
        numpy, dask or lazily loaded xarray (only the slices in use are read).
    n_units : mapping layer -> int
    options : CrossPathOptions, optional
        What to compute (default: ``CrossPathOptions()``).
    labels : (N,) int, optional
        Class labels for within/between-class means.
    activations : mapping layer -> (R, N, D) float, optional
        Pre-activations for the activation variant (``act_cross``) and App. E ranks.
    mem_budget_bytes : int, optional
        Budget of everything held at once (outputs are reserved first); None:
        :func:`gendyn.parallel.mem_budget_bytes`.
    progress : callable, optional
        Called with a message per layer (logging).
    **changes
        Fields of :class:`CrossPathOptions` set on top of ``options``
        (``cross_path_dataset(m, d, max_pairwise=64)``).

    Returns
    -------
    CrossPathResult

    Notes
    -----
    Small problems run with one BLAS thread (see ``gendyn.paths.gram._blas_limit``). Masks and
    activations of a layer are read into memory when they fit in an eighth of the budget;
    otherwise every (record, image block, unit chunk) slice is read when needed.
    """
    opts = (options or CrossPathOptions()).replace(**changes)
    n_img = max(int(a.shape[1]) for a in masks.values()) if masks else 0
    total_units = sum(int(v) for v in n_units.values())
    with _blas_limit(n_img, total_units):
        run = _RunAnalysis(masks, n_units, opts, labels, activations, _budget(mem_budget_bytes), progress)
        for k in range(len(run.stacks)):
            run.mask_layer(k)
            if run.use_acts and k < run.n_real:
                run.activation_layer(k)
        return run.result()


def reserved_bytes(
    n_layers: int, n_records: int, n_images: int, options: CrossPathOptions, *, n_overlap_records: int, activations: bool
) -> int:
    """Bytes of the outputs :func:`cross_path_dataset` holds for the whole analysis.

    They are reserved from the memory budget before the pairwise tiles are sized; the analysis
    refuses to start (``MemoryError``) when they exceed half the budget.
    """
    o = options
    nr = max(0, n_records - int(o.lag))
    m = min(int(o.max_pairwise), n_images)
    mo = n_images if o.overlap_images is None else min(int(o.overlap_images), n_images)
    n_var = 2 if activations else 1
    return (
        n_layers * nr * m * m * 8 * n_var
        + n_layers * n_overlap_records * (mo * mo * 4 + m * m * 8)
        + n_layers * n_records * n_images * 8
        + n_layers * nr * o.hist_bins * 8 * n_var
    )


# =========================================================================== streaming summaries


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


# =========================================================================== the analysis of one run


class _RunAnalysis:
    """Output arrays of one run, filled layer by layer (see :func:`cross_path_dataset`)."""

    def __init__(
        self,
        masks: Mapping[str, Any],
        n_units: Mapping[str, int],
        o: CrossPathOptions,
        labels: np.ndarray | None,
        activations: Mapping[str, Any] | None,
        budget: int,
        progress: Callable[[str], None] | None,
    ) -> None:
        layers = list(masks)
        if not layers:
            raise ValueError("masks: no layers given")
        stacks = [_layer_stack(masks[k], n_units[k], k, activations=False) for k in layers]
        n_rec, n = stacks[0].n_records, stacks[0].n_images
        for s in stacks:
            if (s.n_records, s.n_images) != (n_rec, n):
                raise ValueError(
                    f"layer {s.name}: {s.n_records} records x {s.n_images} images, but layer {stacks[0].name} has "
                    f"{n_rec} x {n}; all layers must come from the same records and images"
                )
        lag = int(o.lag)
        if n_rec <= lag:
            raise ValueError(f"{n_rec} records but lag={lag}: need at least lag + 1 records to compare")
        names = list(layers)
        if o.layers_combined == "sum":
            stacks.append(_Concat(stacks))
            names.append("all")
        self.o, self.lag, self.n, self.n_rec = o, lag, n, n_rec
        self.stacks, self.names, self.n_real = stacks, names, len(layers)
        self.n_units, self.activations, self.progress = n_units, activations, progress
        n_lay = len(stacks)
        self.recs = list(range(lag, n_rec))
        nr = len(self.recs)
        m = self.m = min(int(o.max_pairwise), n)
        mo = self.mo = n if o.overlap_images is None else min(int(o.overlap_images), n)
        self.ov_recs = sorted(set(int(r) for r in o.overlap_records))
        for r in self.ov_recs:
            if not 0 <= r < n_rec:
                raise ValueError(f"overlap record {r} outside 0..{n_rec - 1}")
        self.labels = None if labels is None else np.asarray(labels)
        self.use_acts = activations is not None
        if self.use_acts:
            missing = [k for k in layers if k not in activations]
            if missing:
                raise ValueError(f"activations lack layers {missing}")

        # Outputs held for the whole analysis are reserved from the budget first.
        out_bytes = reserved_bytes(n_lay, n_rec, n, o, n_overlap_records=len(self.ov_recs), activations=self.use_acts)
        if out_bytes > budget // 2:
            raise MemoryError(
                f"the stored outputs alone need {out_bytes / 2**20:.0f} MiB of the {budget / 2**20:.0f} MiB budget; "
                "lower analyses.paths.max_pairwise / overlap_images or raise resources.analysis.mem_budget_mb"
            )
        self.stage_budget = budget - out_bytes

        self.cross = np.full((nr, n_lay, m, m), np.nan)
        self.self_sim = np.full((nr, n_lay, n), np.nan)
        self.summ = _Summary(nr, n_lay, o.hist_bins, 0.0, 1.0)
        self.ov_full = np.full((len(self.ov_recs), n_lay, mo, mo), np.nan, dtype=np.float32)
        self.counts_diag = np.zeros((n_rec, n_lay, n), dtype=np.int64)
        if self.use_acts:
            self.act_cross = np.full((nr, n_lay, m, m), np.nan)
            self.act_summ = _Summary(nr, n_lay, o.hist_bins, -1.0 if o.act == "pre" else 0.0, 1.0)

        # Neighbour ranks (Fig 6) by overlap; App. E by activation cosine: the first n_candidates + 1 images.
        self.rank_rows = o.n_candidates + 1
        self.do_ranks = bool(o.baselines) and n >= self.rank_rows
        if o.baselines and not self.do_ranks:
            logger.warning("neighbour ranks skipped: %d images < %d candidates + 1", n, o.n_candidates)
        shape = (nr, n_lay, len(o.baselines), o.n_candidates)
        self.ranks = np.zeros(shape, dtype=np.int64) if self.do_ranks else None
        self.act_ranks = np.full(shape, -1, dtype=np.int64) if (self.do_ranks and self.use_acts) else None
        self.cands: np.ndarray | None = None
        self.rank_chunk = max(8, min(self.stage_budget // (16 * self.rank_rows), _MAX_EXACT_CHUNK) // 8 * 8)

    def _pair_blocks(
        self, stack: _Stack, plan: BlockPlan, k: int, *, kind: str, records: Sequence[int]
    ) -> Iterator[_Block]:
        """The engine's blocks of layer ``k``, their similarities already added to the summaries
        and full matrices of record ``record - lag`` (masks: S; activations: A)."""
        o = self.o
        summ, full = (self.summ, self.cross) if kind == "mask" else (self.act_summ, self.act_cross)
        norm = o.norm if kind == "mask" else "l2"
        strip = min(plan.block_images, 256)
        for blk in _block_grams(stack, plan, kind=kind, act=o.act, lag=self.lag, records=records):
            if blk.g_pair is not None:
                ri = blk.record - self.lag
                for a, b in _strips(blk.i1 - blk.i0, strip):
                    val = _ratio(blk.g_pair[a:b], blk.g_cur[a:b], blk.g_prev[a:b], norm, kind)
                    summ.update(ri, k, val, blk.i0 + a, blk.j0, self.labels)
                    _store_square(full[ri, k], val, blk.i0 + a, blk.j0, self.m)
            yield blk

    def _ranks(self, stack: _Stack, k: int, dst: np.ndarray, *, kind: str) -> None:
        """Neighbour ranks of layer ``k`` at every compared record into ``dst[:, k]``: by overlap
        (masks) or by activation cosine."""
        o = self.o
        for ri, r in enumerate(self.recs):
            g = _small_gram(stack, r, self.rank_rows, self.rank_chunk, kind=kind, act=o.act)
            sim = _overlap_values(g, o.overlap) if kind == "mask" else _cosine_from_gram(g)
            dst[ri, k], cands = neighbour_ranks(sim, o.baselines, o.n_candidates)
            if kind == "mask":
                self.cands = cands

    def mask_layer(self, k: int) -> None:
        """S, sigma, |p_i|, the overlap matrices and the neighbour ranks of (pseudo-)layer ``k``."""
        n, mo = self.n, self.mo
        lazy = self.stacks[k]
        if self.progress:
            self.progress(
                f"layer {self.names[k]} ({k + 1}/{len(self.stacks)}): "
                f"{n} images x {lazy.n_units} units x {self.n_rec} records"
            )
        # Read a layer into memory only when it fits an eighth of the budget, and only while it
        # is analysed (the pseudo-layer `all` shares that eighth among its parts).
        stack = lazy.preload(self.stage_budget // 8)
        plan = plan_blocks(n, stack.n_units, mem_budget_bytes=self.stage_budget, lag=self.lag, kind="mask")
        logger.debug("layer %s: plan %s", self.names[k], plan)
        for blk in self._pair_blocks(stack, plan, k, kind="mask", records=range(self.n_rec)):
            r = blk.record
            if blk.diag:
                self.counts_diag[r, k, blk.i0 : blk.i1] = np.diag(blk.g_cur)
            if r in self.ov_recs and blk.i0 < mo and blk.j0 < mo:
                a1, b1 = min(blk.i1, mo), min(blk.j1, mo)
                sub = blk.g_cur[: a1 - blk.i0, : b1 - blk.j0].astype(np.float32)
                t = self.ov_recs.index(r)
                self.ov_full[t, k, blk.i0 : a1, blk.j0 : b1] = sub
                self.ov_full[t, k, blk.j0 : b1, blk.i0 : a1] = sub.T
            if blk.g_pair is not None and blk.diag:
                self.self_sim[r - self.lag, k, blk.i0 : blk.i1] = _self_from_counts(
                    np.diag(blk.g_pair), np.diag(blk.g_cur), np.diag(blk.g_prev), self.o.norm
                )
        if self.do_ranks:
            self._ranks(stack, k, self.ranks, kind="mask")

    def activation_layer(self, k: int) -> None:
        """A and the activation-cosine ranks of layer ``k`` (a real layer)."""
        name = self.names[k]
        stack = _layer_stack(self.activations[name], self.n_units[name], name, activations=True)
        stack = stack.preload(self.stage_budget // 8)
        plan = plan_blocks(self.n, stack.n_units, mem_budget_bytes=self.stage_budget, lag=self.lag, kind="act")
        for _ in self._pair_blocks(stack, plan, k, kind="act", records=self.recs):
            pass
        if self.do_ranks:
            self._ranks(stack, k, self.act_ranks, kind="act")

    def result(self) -> CrossPathResult:
        """The variables (in the stored order) and their labels."""
        o, n_lay = self.o, len(self.stacks)
        # Overlap (Fig 4): counts or cosine from the kept Grams (diagonal = |p_i|).
        ov_vals = np.full_like(self.ov_full, np.nan)
        for t, r in enumerate(self.ov_recs):
            for k in range(n_lay):
                diag = self.counts_diag[r, k, : self.mo].astype(np.float64)
                ov_vals[t, k] = _overlap_values(self.ov_full[t, k].astype(np.float64), o.overlap, diag=diag)

        out: dict[str, Variable] = {}
        if self.do_ranks:
            rec_lay_base = ("record", "layer", "baseline")
            out["nn_rank"] = ((*rec_lay_base, "candidate"), self.ranks)
            out["nn_candidate_image"] = (("baseline", "candidate"), self.cands)
            ch = [rank_changes(self.ranks[:, k], top_k=o.top_k) for k in range(n_lay)]
            out["nn_n_top1_changes"] = (("layer", "baseline"), np.stack([c["n_top1_changes"] for c in ch]))
            out["nn_n_distinct_top"] = (("layer", "baseline"), np.stack([c["n_distinct_top"] for c in ch]))
            out["nn_kendall_tau"] = (rec_lay_base, np.stack([c["kendall_tau"] for c in ch], axis=1))
            if self.use_acts:
                out["nn_rank_act"] = ((*rec_lay_base, "candidate"), self.act_ranks)
                cha = [rank_changes(self.act_ranks[:, k], top_k=o.top_k) for k in range(self.n_real)]
                pad = [np.full(len(o.baselines), -1, dtype=np.int64)] * (n_lay - self.n_real)
                for key in ("n_top1_changes", "n_distinct_top"):
                    out[f"nn_act_{key}"] = (("layer", "baseline"), np.stack([c[key] for c in cha] + pad))

        out["cross_path"] = (("record", "layer", "image_i", "image_j"), self.cross)
        out["self_sim"] = (("record", "layer", "image"), self.self_sim)
        out.update(self.summ.arrays("cross_path", o.quantiles))
        with np.errstate(invalid="ignore", divide="ignore"):
            finite = np.isfinite(self.self_sim)
            mean = np.where(finite, self.self_sim, 0.0).sum(axis=2) / finite.sum(axis=2)
        out["self_sim_mean"] = (("record", "layer"), mean)
        out["self_sim_q"] = (("record", "layer", "quantile"), _nanquantile(self.self_sim, o.quantiles))
        out["n_active"] = (("record", "layer", "image"), self.counts_diag[self.lag :])
        if self.ov_recs:
            out["overlap"] = (("overlap_record", "layer", "overlap_image_i", "overlap_image_j"), ov_vals)
        if self.use_acts:
            out["act_cross"] = (("record", "layer", "image_i", "image_j"), self.act_cross)
            out.update(self.act_summ.arrays("act_cross", o.quantiles))
        return CrossPathResult(
            variables=out,
            layers=tuple(self.names),
            records=tuple(self.recs),
            prev_records=tuple(r - self.lag for r in self.recs),
            overlap_records=tuple(self.ov_recs),
            n_pairwise=self.m,
            n_overlap=self.mo,
        )
