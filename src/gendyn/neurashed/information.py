"""Mutual information of a noisy level representation (paper 002, Fig. 4; spec §2.4.2).

Pure maths on score arrays: :func:`mutual_information` gives I(X; T) and I(Y; T) in bits of
the normalised scores of one neurashed level plus Gaussian noise.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["mutual_information"]


def mutual_information(
    scores: np.ndarray, labels: np.ndarray, *, sigma: float = 0.02, s0: float = 0.03, n_draws: int = 400, seed: int = 0
) -> tuple[float, float]:
    """Monte-Carlo mutual information of a noisy level representation, in bits.

    The paper (Fig. 4) only says noise is added; the spec's definition (§2.4.2) is used:
    ``T = S / max(max|S|, s0) + N(0, sigma^2 I)`` with S the level's scores of every type
    (max over types and nodes), X uniform over the types, so T is a Gaussian mixture with
    means ``mu_x``::

        I(X; T) = log|X| + E[ log p(x | t) ],   p(x | t) = softmax_x'(-||t - mu_x'||^2 / 2 sigma^2)
        I(Y; T) = H(Y)   + E[ log p(y | t) ],   p(y | t) = sum_{x in y} p(x | t)

    Parameters
    ----------
    scores : (T, D) float array — scores of each type on the level's D nodes
    labels : (T,) int array — class of each type
    sigma, s0 : float
    n_draws : int — seeded draws of t per type
    seed : int

    Returns
    -------
    (I(X; T), I(Y; T)) in bits.
    """
    S = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    n_types = S.shape[0]
    mu = S / max(float(np.abs(S).max()) if S.size else 0.0, s0)
    rng = np.random.default_rng(seed)
    classes, y = np.unique(labels, return_inverse=True)
    py = np.bincount(y, minlength=classes.size) / n_types
    h_y = float(-(py * np.log(py)).sum())
    ix, iy = 0.0, 0.0
    for x in range(n_types):
        t = mu[x] + sigma * rng.standard_normal((n_draws, S.shape[1]))
        logits = -((t[:, None, :] - mu[None, :, :]) ** 2).sum(-1) / (2 * sigma**2)  # (draws, types)
        m = logits.max(1, keepdims=True)
        log_norm = m[:, 0] + np.log(np.exp(logits - m).sum(1))
        ix += float(np.mean(logits[:, x] - log_norm))
        same = labels == labels[x]
        log_y = m[:, 0] + np.log(np.exp(logits[:, same] - m).sum(1))
        iy += float(np.mean(log_y - log_norm))
    ix = math.log(n_types) + ix / n_types
    iy = h_y + iy / n_types
    return ix / math.log(2), iy / math.log(2)
