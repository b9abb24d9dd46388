"""LE clustering (a project extension after He & Su 2020; paper 002 reports none).

Pure NumPy / scikit-learn on arrays: the symmetric :func:`affinity` of an LE matrix, clustered
by spectral clustering, K-means on its rows or :func:`kernel_kmeans` (:func:`cluster_le`),
scored by :func:`hungarian_accuracy` and the adjusted Rand index against the labels; the
K-means baselines on pixels and on their PCA (:func:`cluster_baselines`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["affinity", "hungarian_accuracy", "kernel_kmeans", "ClusterResult", "cluster_le", "cluster_baselines"]


def affinity(le: np.ndarray) -> np.ndarray:
    """Symmetric affinity ``W = (LE + LE^T) / 2`` with diagonal 1 and NaN -> 0 (N, N)."""
    le = np.asarray(le, dtype=np.float64)
    if le.ndim != 2 or le.shape[0] != le.shape[1]:
        raise ValueError(f"le: expected a square (N, N) matrix (probes = update samples), got {le.shape}")
    w = np.nan_to_num((le + le.T) / 2.0, nan=0.0, posinf=0.0, neginf=0.0)
    w = np.clip(w, 0.0, None)
    np.fill_diagonal(w, 1.0)
    return w


def hungarian_accuracy(labels: np.ndarray, pred: np.ndarray) -> float:
    """Accuracy of cluster ids ``pred`` after the best one-to-one matching to ``labels``."""
    from scipy.optimize import linear_sum_assignment

    labels, pred = np.asarray(labels), np.asarray(pred)
    lu, pu = np.unique(labels), np.unique(pred)
    conf = np.zeros((lu.size, pu.size), dtype=np.int64)
    for a, la in enumerate(lu):
        for b, pb in enumerate(pu):
            conf[a, b] = np.sum((labels == la) & (pred == pb))
    r, c = linear_sum_assignment(-conf)
    return float(conf[r, c].sum() / max(labels.size, 1))


def kernel_kmeans(kernel: np.ndarray, n_clusters: int, *, seed: int = 0, n_init: int = 10, max_iter: int = 100) -> np.ndarray:
    """Kernel K-means (Lloyd iterations in the feature space of ``kernel``) -> (N,) labels.

    Distance of point i to cluster c: ``K_ii - 2 mean_{j in c} K_ij + mean_{j,l in c} K_jl``.
    Each of ``n_init`` seeded random initial assignments is iterated to convergence; the
    assignment with the lowest within-cluster sum is returned.
    """
    K = np.asarray(kernel, dtype=np.float64)
    n = K.shape[0]
    rng = np.random.default_rng(seed)
    best, best_obj = np.zeros(n, dtype=np.int64), np.inf
    diag = np.diag(K)
    for _ in range(n_init):
        lab = rng.integers(0, n_clusters, size=n)
        for _ in range(max_iter):
            dist = np.empty((n, n_clusters))
            for c in range(n_clusters):
                mask = lab == c
                cnt = mask.sum()
                if cnt == 0:
                    dist[:, c] = np.inf
                    continue
                dist[:, c] = diag - 2.0 * K[:, mask].sum(1) / cnt + K[np.ix_(mask, mask)].sum() / cnt**2
            new = dist.argmin(1)
            if np.array_equal(new, lab):
                break
            lab = new
        obj = float(dist[np.arange(n), lab].sum())
        if obj < best_obj:
            best, best_obj = lab.copy(), obj
    return best


@dataclass(frozen=True)
class ClusterResult:
    """Cluster assignment and its agreement with the labels."""

    pred: np.ndarray
    accuracy: float
    ari: float


def cluster_le(
    le: np.ndarray,
    labels: np.ndarray,
    *,
    method: Literal["spectral", "kmeans_rows", "kernel_kmeans"] = "spectral",
    n_clusters: int | None = None,
    seed: int = 0,
) -> ClusterResult:
    """Cluster samples by their LE affinity (an extension after He & Su 2020; paper 002 has none).

    Parameters
    ----------
    le : (N, N) array
        LE with probes = update samples (NaN allowed).
    labels : (N,) int array
        True classes (only for scoring; n_clusters defaults to their number).
    method : {"spectral", "kmeans_rows", "kernel_kmeans"}
        ``spectral``: ``SpectralClustering(affinity="precomputed")`` on :func:`affinity`;
        ``kmeans_rows``: K-means (n_init=10) on the rows of the affinity;
        ``kernel_kmeans``: :func:`kernel_kmeans` with the affinity as kernel.
    seed : int

    Returns
    -------
    ClusterResult: ``pred`` (N,), Hungarian-matched ``accuracy`` and adjusted Rand index.
    """
    from sklearn.cluster import KMeans, SpectralClustering
    from sklearn.metrics import adjusted_rand_score

    labels = np.asarray(labels)
    k = int(n_clusters or np.unique(labels).size)
    w = affinity(le)
    if method == "spectral":
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            pred = SpectralClustering(n_clusters=k, affinity="precomputed", random_state=seed).fit_predict(w)
    elif method == "kmeans_rows":
        pred = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(w)
    elif method == "kernel_kmeans":
        pred = kernel_kmeans(w, k, seed=seed)
    else:
        raise ValueError(f"method: {method!r} is not allowed; choose 'spectral', 'kmeans_rows' or 'kernel_kmeans'")
    return ClusterResult(pred=np.asarray(pred), accuracy=hungarian_accuracy(labels, pred), ari=float(adjusted_rand_score(labels, pred)))


def cluster_baselines(x: np.ndarray, labels: np.ndarray, *, seed: int = 0, pca_dims: int = 50) -> dict[str, ClusterResult]:
    """K-means (n_init=10) on raw inputs and on their ``pca_dims``-d PCA: the baselines of LE clustering.

    Parameters
    ----------
    x : (N, ...) array of inputs; labels : (N,) int array

    Returns
    -------
    dict ``{"pixels": ClusterResult, "pca": ClusterResult}``.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    labels = np.asarray(labels)
    k = np.unique(labels).size
    out = {}
    dims = max(1, min(pca_dims, x.shape[0] - 1, x.shape[1]))
    for name, feats in (("pixels", x), ("pca", PCA(n_components=dims, random_state=seed).fit_transform(x))):
        pred = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(feats)
        out[name] = ClusterResult(pred=pred, accuracy=hungarian_accuracy(labels, pred), ari=float(adjusted_rand_score(labels, pred)))
    return out
