"""He & Su's (2020) unsupervised LE clustering protocol, as read by the spec (paper 002 extension).

:func:`he_su_similarity` trains a one-output copy of a model for one epoch of batch-1 SGD on
primary (+1) and auxiliary (-1) samples and accumulates the relative changes on the primary
samples into a similarity matrix; cluster ``abs(S)`` with
:func:`gendyn.elasticity.clustering.cluster_le`. Not verified against He & Su's code.
"""

from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gendyn.elasticity.common import working_copy

__all__ = ["he_su_similarity"]


def he_su_similarity(
    model: nn.Module,
    x_primary: Tensor,
    x_auxiliary: Tensor,
    *,
    lr: float = 0.01,
    seed: int = 0,
    dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Similarity matrix of He & Su's (2020) unsupervised LE clustering protocol (as read by the spec).

    The primary samples (to be clustered) are labelled +1, the auxiliary ones -1; a copy of
    ``model`` (one output, f(x) in R) is trained for one epoch of batch-1 SGD on the
    shuffled union with the logistic loss ``log(1 + exp(-y f(x)))``. Whenever the step
    uses a primary sample i, the relative changes ``(f(x_j, w+) - f(x_j, w)) /
    (f(x_i, w+) - f(x_i, w))`` on every primary sample j are added to row i of S.

    Parameters
    ----------
    model : nn.Module with a single output; not modified
    x_primary : (N, ...) tensor; x_auxiliary : (A, ...) tensor
    lr : float; seed : int (shuffling); dtype : torch.dtype, optional

    Returns
    -------
    (N, N) float64 array S (rows: updated sample). Cluster ``abs(S)`` with :func:`cluster_le`.

    Notes
    -----
    Written from the protocol's description; check against He & Su's released algorithm
    before claiming a reproduction of their numbers.
    """
    m, dev, cdtype = working_copy(model, dtype)
    xp = x_primary.detach().to(dev, cdtype)
    xa = x_auxiliary.detach().to(dev, cdtype)
    x_all = torch.cat([xp, xa])
    y_all = torch.cat([torch.ones(len(xp)), -torch.ones(len(xa))]).to(dev, cdtype)
    order = np.random.default_rng(seed).permutation(len(x_all))
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=lr, momentum=0, weight_decay=0)
    n = len(xp)
    S = np.zeros((n, n))
    for i in order:
        if i < n:
            with torch.no_grad():
                before = m(xp).reshape(n)
        opt.zero_grad()
        out = m(x_all[i : i + 1]).reshape(())
        F.softplus(-y_all[i] * out).backward()
        opt.step()
        if i < n:
            with torch.no_grad():
                change = (m(xp).reshape(n) - before).double().cpu().numpy()
            if change[i] != 0:
                S[i] += change / change[i]
    return S
