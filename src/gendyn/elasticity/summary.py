"""Class-pair statistics of an LE matrix (paper 002, Fig. 5; within/between ratio after He & Su 2020).

Pure NumPy on arrays: :func:`pair_summary` turns an (N, M) LE matrix and the classes of its
rows and columns into class-pair means, medians and histograms on [0, 1], and the pooled
within- and between-class means (and medians) with their ratio R = within / between.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pair_summary"]


def pair_summary(
    le: np.ndarray,
    labels_i: np.ndarray,
    labels_j: np.ndarray,
    same: np.ndarray | None = None,
    *,
    classes: Sequence[int] | None = None,
    n_bins: int = 50,
) -> dict[str, np.ndarray]:
    """Class-pair statistics of an LE matrix (pairs of the same image excluded).

    Parameters
    ----------
    le : (N, M) float array
        LE of update i on probe j (NaN allowed).
    labels_i : (N,) int array; labels_j : (M,) int array
        Classes of the update samples and of the probes.
    same : (N, M) bool array, optional
        Pairs of one image with itself (excluded from every statistic).
    classes : sequence of int, optional
        Class order of the matrices (default: sorted union of the labels).
    n_bins : int
        Histogram bins on [0, 1]; values > 1 are counted in ``overflow``.

    Returns
    -------
    dict of arrays, C = len(classes):
        ``class_mean``, ``class_median`` (C, C) [update class, probe class], nan-aware;
        ``hist`` (C, C, n_bins) int64, ``overflow`` (C, C) (LE > 1), ``n_nan`` (C, C)
        — together they count every off-diagonal pair; ``n_pairs`` (C, C);
        ``within``, ``between``, ``ratio`` (within / between) of pooled means and
        ``within_median``, ``between_median``, ``ratio_median``: 0-d arrays;
        ``bin_edges`` (n_bins + 1,).
    """
    le = np.asarray(le, dtype=np.float64)
    li, lj = np.asarray(labels_i), np.asarray(labels_j)
    if le.shape != (li.size, lj.size):
        raise ValueError(f"le: shape {le.shape} does not match labels ({li.size}, {lj.size})")
    valid = np.ones(le.shape, dtype=bool) if same is None else ~np.asarray(same, dtype=bool)
    cls = np.asarray(sorted(set(li.tolist()) | set(lj.tolist())) if classes is None else list(classes))
    C = cls.size
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    out = {
        "class_mean": np.full((C, C), np.nan),
        "class_median": np.full((C, C), np.nan),
        "hist": np.zeros((C, C, n_bins), dtype=np.int64),
        "overflow": np.zeros((C, C), dtype=np.int64),
        "n_nan": np.zeros((C, C), dtype=np.int64),
        "n_pairs": np.zeros((C, C), dtype=np.int64),
        "bin_edges": edges,
    }
    for a, ca in enumerate(cls):
        for b, cb in enumerate(cls):
            block = le[np.ix_(li == ca, lj == cb)][valid[np.ix_(li == ca, lj == cb)]]
            out["n_pairs"][a, b] = block.size
            fin = block[np.isfinite(block)]
            out["n_nan"][a, b] = block.size - fin.size
            if fin.size:
                out["class_mean"][a, b] = fin.mean()
                out["class_median"][a, b] = np.median(fin)
            inside = fin[fin <= 1.0]
            out["overflow"][a, b] = fin.size - inside.size
            out["hist"][a, b] = np.histogram(inside, bins=edges)[0]
    same_class = li[:, None] == lj[None, :]
    fin_all = np.isfinite(le) & valid
    w = le[same_class & fin_all]
    bt = le[~same_class & fin_all]
    out["within"] = np.asarray(w.mean() if w.size else np.nan)
    out["between"] = np.asarray(bt.mean() if bt.size else np.nan)
    out["within_median"] = np.asarray(np.median(w) if w.size else np.nan)
    out["between_median"] = np.asarray(np.median(bt) if bt.size else np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = np.asarray(out["within"] / out["between"])
        out["ratio_median"] = np.asarray(out["within_median"] / out["between_median"])
    return out
