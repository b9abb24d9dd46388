"""He & Su's (2020) local-elasticity similarities and their clustering protocol (paper 002 extension).

He & Su, "The local elasticity of neural networks", ICLR 2020, Sec. 4 (local-elasticity based
clustering). A network with one output ``f(x, w)`` in R is trained on a binary problem: the
*primary* samples (the classes to be clustered, target 1) against *auxiliary* samples (other
classes, target 0). At these fixed weights ``w`` every primary sample ``x_i`` in turn gets one
plain SGD step on its own loss, always from ``w`` (the weights are reset before each update)::

    w+_i = w - lr * d loss(f(x_i, w), y_i) / dw          # y_i = 1, batch 1, no momentum

and the change of the output is read on every primary sample ``x_j``:
``df_ij = f(x_j, w+_i) - f(x_j, w)``. Two similarity matrices (row i = the updated sample):

* **ripple** (their relative similarity): ``S_ij = |df_ij| / |df_ii|``;
* **kernel** (their kernelized similarity, signed):
  ``K_ij = df_ij / (-lr * l'_i)`` with ``l'_i = d loss / d f`` at ``(f(x_i, w), y_i)``; to first
  order in lr it is the tangent kernel ``<grad_w f(x_i), grad_w f(x_j)>``.

They cluster the symmetrised matrices, ``(S + S^T) / 2`` (K-means on its rows and spectral
clustering) and ``(K + K^T) / 2`` (kernel K-means).

:func:`he_su_similarity` computes both at fixed weights with
:func:`gendyn.elasticity.engines.local_elasticity` (``reduce="signed"``: one SGD step from the
same weights for every row, exactly the construction above); :func:`he_su_train` is the plain
minibatch SGD that fits the binary model first (their ``theta_option="optimal"``).

What is implemented, and why
----------------------------
* Loss ``"mse"``: ``(f - y)^2`` on the raw output (``torch.nn.MSELoss`` of one scalar, their
  ``MLPNet``); ``"bce"``: binary cross-entropy on the probability ``p = sigmoid(f)``, and the
  similarities are then measured on ``p`` (their ``MLPProb``, whose last layer is a sigmoid).
  Targets 1 (primary) and 0 (auxiliary), as in their data code.
* Step size ``lr = 1e-6`` (their ``prob_lr``); a row whose own change vanishes is recomputed with
  ``lr * 3^k``, k <= 20 (their retry rule multiplies by 3 while ``lr < 1e4``).
* Only primary samples are updated; auxiliary samples only shape the trained weights.
* The kernel form divides by ``-lr l'_i`` (the paper's definition). Their code divides by
  ``2 lr (y - f)`` for both losses: equal for the squared loss (``l' = 2 (f - y)``), but for BCE it
  omits ``1 / (p (1 - p))`` in place of the factor 2, so their BCE kernel is half of this one —
  a constant factor that does not change the clustering.

Differences to their code (deliberate): every forward here runs in eval mode (theirs steps in
train mode and reads outputs in eval mode; identical for networks without BatchNorm/dropout, the
MLPs of their clustering tables), and the computation is float64 (theirs float32 on a GPU, where
the lr 1e-6 change is close to rounding, hence their retry rule).

Checked against the released code of He & Su (``HornHehhf/LocalElasticity``:
``sources/elastic_effect.py`` ``train_elastic_effect``/``get_similarity_matrix``,
``sources/train_models.py``, ``sources/clustering.py``) by reading it; not run against it (it
needs CUDA and downloads MNIST), so their numbers are not reproduced here.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from gendyn.elasticity.common import logits_module

__all__ = ["HeSuLoss", "HeSuSimilarity", "he_su_similarity", "he_su_train", "he_su_output", "he_su_loss"]

logger = logging.getLogger(__name__)

HeSuLoss = Literal["mse", "bce"]

#: Their retry rule: lr x 3 while the updated sample's own output does not move (lr < 1e4 from 1e-6).
RETRY: tuple[float, int] = (3.0, 20)


@dataclass(frozen=True)
class HeSuSimilarity:
    """He & Su's similarities of N primary samples at fixed weights (row i = updated sample).

    Attributes
    ----------
    ripple : (N, N) float64
        ``|df_ij| / |df_ii|`` (relative similarity); 1 on the diagonal; NaN rows where the step
        vanished even after the retry rule.
    kernel : (N, N) float64
        ``df_ij / (-lr_i l'_i)`` (kernelized similarity, signed); NaN rows likewise.
    change : (N, N) float64
        ``df_ij = f(x_j, w+_i) - f(x_j, w)``, signed.
    lr : (N,) float64
        Step size of each row (the requested lr unless the retry rule enlarged it).
    dloss : (N,) float64
        ``l'_i = d loss / d f`` at ``(f(x_i, w), y_i)``.
    output : (N,) float64
        ``f(x_i, w)`` (the probability for ``loss="bce"``).
    loss : str
    """

    ripple: np.ndarray
    kernel: np.ndarray
    change: np.ndarray
    lr: np.ndarray
    dloss: np.ndarray
    output: np.ndarray
    loss: str


def he_su_loss(loss: HeSuLoss) -> Callable[[Tensor, Tensor], Tensor]:
    """Loss of one sample, ``(f (1,), y (1,)) -> scalar`` (vmap-compatible); on longer vectors the sum.

    ``"mse"``: ``(f - y)^2`` (``torch.nn.MSELoss`` of one output); ``"bce"``:
    ``-(y log f + (1 - y) log(1 - f))`` of a probability f, each log clamped at -100 as
    ``torch.nn.BCELoss`` does.
    """
    if loss == "mse":
        return lambda f, y: ((f - y) ** 2).sum()
    if loss == "bce":

        def bce(f: Tensor, y: Tensor) -> Tensor:
            return -(y * torch.log(f).clamp_min(-100.0) + (1 - y) * torch.log1p(-f).clamp_min(-100.0)).sum()

        return bce
    raise ValueError(f"loss: {loss!r} is not allowed; choose 'mse' or 'bce'")


def he_su_output(model: nn.Module, loss: HeSuLoss) -> nn.Module:
    """The one-output network whose output ``f`` the protocol trains and reads (shares parameters).

    ``"mse"``: the model's output (a final softmax stripped); ``"bce"``: followed by a sigmoid, so
    that ``f`` is a probability (He & Su's ``MLPProb``).
    """
    if loss not in ("mse", "bce"):
        raise ValueError(f"loss: {loss!r} is not allowed; choose 'mse' or 'bce'")
    net = logits_module(model)
    return nn.Sequential(net, nn.Sigmoid()) if loss == "bce" else net


def _check_one_output(net: nn.Module, x: Tensor) -> None:
    from gendyn.runtime import eval_mode

    with torch.no_grad(), eval_mode(net):  # every submodule's mode comes back as it was
        out = net(x[:1])
    if out.ndim != 2 or out.shape[1] != 1:
        raise ValueError(f"model: He & Su's protocol needs one output per sample, got output shape {tuple(out.shape)}; "
                         "build the model with 1 output")  # fmt: skip


def he_su_similarity(
    model: nn.Module,
    x_primary: Tensor,
    *,
    loss: HeSuLoss = "mse",
    lr: float = 1e-6,
    target: float = 1.0,
    retry: tuple[float, int] | None = RETRY,
    dtype: torch.dtype | None = torch.float64,
    mem_budget_bytes: int | None = None,
    engine: Literal["auto", "vmap", "rank1"] = "auto",
) -> HeSuSimilarity:
    """He & Su's ripple and kernel similarities of the primary samples at fixed weights.

    Every row i is one plain SGD step (batch 1, no momentum, no weight decay) on ``(x_i, target)``
    alone, from the same weights ``w`` (the model is never stepped), and the change
    ``df_ij = f(x_j, w+_i) - f(x_j, w)`` of the one output on every primary sample ``x_j``; then
    ``ripple = |df_ij| / |df_ii|`` and ``kernel = df_ij / (-lr l'_i)`` (module docstring).

    Parameters
    ----------
    model : nn.Module
        A network with one output (its weights are the fixed ``w``; not modified). Evaluated in
        eval mode.
    x_primary : (N, ...) tensor
        The primary samples (to be clustered).
    loss : {"mse", "bce"}
        ``(f - y)^2`` on the output, or BCE on ``sigmoid(output)`` (then f is that probability).
    lr : float
        Step size (He & Su: 1e-6).
    target : float
        Label of the primary samples (He & Su: 1; auxiliary samples are 0).
    retry : (factor, max_tries) or None
        Rows whose own change is below the engine's threshold (1e-30 in float64) are recomputed
        with ``lr * factor**k``; default He & Su's x3 (at most 20 times).
    dtype : torch.dtype, optional
        Compute dtype (default float64; None = the model's).
    mem_budget_bytes : int, optional
        Memory budget of the batched engine (None: the job default).
    engine : {"auto", "vmap", "rank1"}
        Engine of :func:`~gendyn.elasticity.engines.local_elasticity`.

    Returns
    -------
    HeSuSimilarity
        ``ripple``, ``kernel``, ``change`` (N, N) and ``lr``, ``dloss``, ``output`` (N,), float64.

    Notes
    -----
    For a linear model ``f(x) = w.x + b`` and ``loss="mse"`` one step is exact:
    ``df_ij = -2 lr (f_i - y) (x_i.x_j + 1)``, so ``kernel_ij = x_i.x_j + 1`` and
    ``ripple_ij = |x_i.x_j + 1| / (|x_i|^2 + 1)`` for any lr. With ReLU networks the exact
    change and its first-order (tangent-kernel) value differ where units flip.
    """
    from gendyn.elasticity.engines import local_elasticity

    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr: {lr!r} is invalid; expected a finite step size > 0")
    net = he_su_output(model, loss)
    x = x_primary.detach()
    if x.shape[0] == 0:
        raise ValueError("x_primary: no samples")
    p0 = next(iter(net.parameters()), None)
    if p0 is None:
        raise ValueError("model: has no parameters")
    cdtype = dtype or p0.dtype
    _check_one_output(net, x.to(p0.device, p0.dtype))
    n = x.shape[0]
    y = torch.full((n, 1), float(target), dtype=cdtype)
    loss1 = he_su_loss(loss)
    parts = local_elasticity(
        net, x, y, x, lr=float(lr), loss=loss1, form="exact", reduce="signed", dtype=cdtype,
        mem_budget_bytes=mem_budget_bytes, retry=retry, engine=engine, return_parts=True,
    )  # fmt: skip
    assert not isinstance(parts, Tensor)
    # f(x_i, w) and l'_i = d loss / d f there
    work = copy.deepcopy(net).to(cdtype).eval()
    with torch.no_grad():
        f = work(x.to(p0.device, cdtype))[:, 0].cpu()
    fg = f.clone().requires_grad_(True)
    (dloss,) = torch.autograd.grad(loss1(fg, y[:, 0]), fg)  # the loss is a sum over samples: per-sample l'
    change = parts.num.double()
    lr_rows = parts.lr.double()
    ok = torch.isfinite(parts.le).any(dim=1) if n else torch.zeros(0, dtype=torch.bool)
    ripple = parts.le.double().abs()
    scale = -lr_rows * dloss.double()
    kernel = torch.where(ok[:, None] & (scale != 0)[:, None], change / torch.where(scale != 0, scale, 1.0)[:, None],
                         torch.full_like(change, float("nan")))  # fmt: skip
    n_bad = int((~ok).sum())
    if n_bad:
        logger.warning("He & Su similarity: %d of %d primary samples have a vanishing step (l' ~ 0): their rows are NaN", n_bad, n)
    return HeSuSimilarity(
        ripple=ripple.numpy(), kernel=kernel.numpy(), change=change.numpy(), lr=lr_rows.numpy(),
        dloss=dloss.double().numpy(), output=f.double().numpy(), loss=loss,
    )  # fmt: skip


def he_su_train(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    loss: HeSuLoss = "mse",
    lr: float = 3e-3,
    batch_size: int = 50,
    epochs: int = 200,
    seed: int = 0,
    dtype: torch.dtype | None = None,
) -> tuple[nn.Module, float]:
    """Fit the one-output network on the binary problem (He & Su's ``train_models.py``).

    Plain minibatch SGD (no momentum, no weight decay) on a deep copy of ``model`` in train mode,
    the batches a seeded permutation per epoch, loss averaged over the batch (``"mse"``: ``(f -
    y)^2``; ``"bce"``: BCE of ``sigmoid(f)``).

    Parameters
    ----------
    model : nn.Module with one output; not modified
    x : (M, ...) tensor; y : (M,) float tensor of targets (1 primary, 0 auxiliary)
    loss, lr, batch_size, epochs : training settings (He & Su, MNIST MLP: mse, 3e-3, 50, 200)
    seed : int
        Seed of the batch order (a local generator; the global RNG is untouched).
    dtype : torch.dtype, optional
        Training dtype (default: the model's).

    Returns
    -------
    (trained copy in eval mode, mean loss of the last epoch)
    """
    if epochs < 0 or batch_size < 1 or not lr > 0:
        raise ValueError(f"he_su_train: epochs {epochs}, batch_size {batch_size}, lr {lr}: expected >= 0, >= 1, > 0")
    m = copy.deepcopy(model)
    p0 = next(iter(m.parameters()))
    cdtype = dtype or p0.dtype
    m = m.to(cdtype)
    net = he_su_output(m, loss)
    _check_one_output(net, x.to(p0.device, cdtype))
    loss1 = he_su_loss(loss)
    xs = x.detach().to(p0.device, cdtype)
    ys = y.detach().to(p0.device, cdtype).reshape(-1)
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=lr, momentum=0.0, weight_decay=0.0)
    gen = torch.Generator().manual_seed(int(seed))
    last = float("nan")
    net.train()
    for _ in range(int(epochs)):
        order = torch.randperm(len(xs), generator=gen).to(p0.device)
        total, count = 0.0, 0
        for lo in range(0, len(xs), batch_size):
            idx = order[lo : lo + batch_size]
            batch_loss = loss1(net(xs[idx])[:, 0], ys[idx]) / len(idx)  # mean over the batch
            opt.zero_grad()
            batch_loss.backward()
            opt.step()
            total += float(batch_loss.detach()) * len(idx)
            count += len(idx)
        last = total / max(count, 1)
    return m.eval(), last
