"""What every LE engine shares: the result type, the loss of one sample, reductions, batching.

Paper 002 (Sec. 3, "Local elasticity", after He & Su 2020) defines, for pre-softmax logits
``z(x, w)`` in R^K, an update (base) sample ``(x, y)`` and a probe ``x'``::

    w+ = w - lr * grad_w loss(z(x, w), y)                  # one plain SGD step on (x, y) alone
    LE(x, x') = || z(x', w+) - z(x', w) ||_2 / || z(x, w+) - z(x, w) ||_2

The engines (:mod:`gendyn.elasticity.rank1`, :mod:`gendyn.elasticity.relu_chain`,
:mod:`gendyn.elasticity.vmap`) return the numerator (N, M) and the denominator (N,) of this
ratio; :func:`gendyn.elasticity.engines.local_elasticity` turns them into LE. This module
holds what they read: :class:`_Job` (samples, loss, reduction, batching), the one-sample loss,
the reduction over logits, the bit-identical-image test behind ``LE(x, x) = 1``, eval mode
and chunking.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DEFAULT_DEN_EPS", "ElasticityParts", "logits_module", "LossName", "Form", "Reduce"]

logger = logging.getLogger(__name__)

DEFAULT_DEN_EPS: dict[torch.dtype, float] = {torch.float64: 1e-30, torch.float32: 1e-20}

LossName = Literal["ce", "cross_entropy", "mse"]
Form = Literal["exact", "kernel"]
Reduce = Literal["l2", "label", "signed"]


@dataclass(frozen=True)
class ElasticityParts:
    """LE with its numerator and denominator (``return_parts=True``).

    Attributes
    ----------
    le : (N, M) tensor
        ``num / den[:, None]``; NaN where ``den < den_eps``; exactly 1 where the probe is the
        update image itself.
    num : (N, M) tensor
        ``||z(x'_m, w+_n) - z(x'_m, w)||`` (``reduce="label"``: ``|.|`` of the update label's
        logit; ``reduce="signed"``: the signed change of the one output); for ``form="kernel"``
        its first-order value ``lr ||J(x'_m) g_n||``.
    den : (N,) tensor
        The same at the update sample itself (signed for ``reduce="signed"``).
    rel_change : (N,) tensor
        ``||z(x_n, w+_n) - z(x_n, w)|| / ||z(x_n, w)||``: how far above rounding the change is.
    lr : (N,) tensor
        Step size used for each update sample (differs from the requested one only where the
        retry rule enlarged it).
    form, reduce : str
    """

    le: Tensor
    num: Tensor
    den: Tensor
    rel_change: Tensor
    lr: Tensor
    form: str
    reduce: str

    @property
    def nan_fraction(self) -> float:
        """Fraction of NaN entries of ``le``."""
        return float(torch.isnan(self.le).float().mean()) if self.le.numel() else 0.0


@dataclass(frozen=True)
class _Job:
    """What every LE engine reads: the samples (compute dtype, device), the loss, the reduction
    over logits and how to batch (``chunk`` updates, ``mem_budget_bytes``, ``itemsize``)."""

    xu: Tensor
    yu: Tensor
    xp: Tensor
    loss1: Callable[[Tensor, Tensor], Tensor]
    dtype: torch.dtype
    device: torch.device
    reduce: str
    chunk: int | None
    mem_budget_bytes: int
    itemsize: int
    progress: bool


def logits_module(model: nn.Module) -> nn.Module:
    """``model`` without a final softmax (sharing its parameters), so outputs are logits.

    Handles an ``nn.Sequential`` ending in ``nn.Softmax`` and models with a ``softmax``
    attribute (gendyn's VGG, AlexNet and ResNets with ``softmax_head: true``). The caller's
    module is not modified.
    """
    if isinstance(model, nn.Sequential) and len(model) and isinstance(model[-1], nn.Softmax):
        return model[:-1]
    if isinstance(getattr(model, "softmax", None), nn.Softmax):
        view = copy.copy(model)
        object.__setattr__(view, "_modules", type(model._modules)(model._modules))
        view._modules["softmax"] = None
        return view
    return model


def _loss_single(loss: LossName | Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    """Loss of one sample: ``(z (K,), y) -> scalar`` (vmap-compatible)."""
    if callable(loss):
        return loss
    if loss in ("ce", "cross_entropy"):

        def ce(z: Tensor, y: Tensor) -> Tensor:
            return F.cross_entropy(z[None], y[None])

        return ce
    if loss == "mse":

        def mse(z: Tensor, y: Tensor) -> Tensor:
            if y.is_floating_point():
                t = y.to(z.dtype)
            else:
                t = (torch.arange(z.shape[-1], device=z.device) == y).to(z.dtype)
            return 0.5 * ((z - t) ** 2).sum()

        return mse
    raise ValueError(f"loss: {loss!r} is not supported; use 'ce' (cross-entropy), 'mse' (1/2 ||z - y||^2) or a callable")


def _image_keys(x: Tensor) -> list[str]:
    arr = x.detach().cpu().contiguous().numpy()
    return [hashlib.sha1(row.tobytes()).hexdigest() for row in arr.reshape(arr.shape[0], -1)]


def _same_pairs(x_update: Tensor, x_probe: Tensor) -> Tensor:
    """(N, M) bool: probe m is bit-identical to update sample n."""
    ku, kp = _image_keys(x_update), _image_keys(x_probe)
    where: dict[str, list[int]] = {}
    for m, k in enumerate(kp):
        where.setdefault(k, []).append(m)
    same = torch.zeros(len(ku), len(kp), dtype=torch.bool)
    for n, k in enumerate(ku):
        for m in where.get(k, ()):
            same[n, m] = True
    return same


def _reduce(dz: Tensor, y: Tensor, reduce: str) -> Tensor:
    """``dz`` (C, M, K) -> (C, M) by the L2 norm over K, |dz| at the update label y (C,), or the
    signed change of a one-output model (``"signed"``, K = 1)."""
    if reduce == "l2":
        return torch.linalg.vector_norm(dz, dim=-1)
    if reduce == "signed":
        if dz.shape[-1] != 1:
            raise ValueError(f"reduce='signed' needs a model with one output; it has {dz.shape[-1]}")
        return dz[..., 0]
    idx = y.to(dz.device).long().view(-1, 1, 1).expand(-1, dz.shape[1], 1)
    return dz.gather(-1, idx).squeeze(-1).abs()


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="update", disable=not enabled or not sys.stderr.isatty())


def _in_chunks(n: int, size: int) -> Iterator[slice]:
    """Slices of ``range(n)`` of ``size`` (at least 1) items each."""
    size = max(1, int(size))
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


def working_copy(model: nn.Module, dtype: torch.dtype | None) -> tuple[nn.Module, torch.device, torch.dtype]:
    """A deep copy of ``model``'s logits part in eval mode and compute dtype (default: the model's).

    Returns the copy, its device and the compute dtype; the caller's model is never touched.
    """
    net = logits_module(copy.deepcopy(model))
    p0 = next(iter(net.parameters()))
    cdtype = dtype or p0.dtype
    return net.to(cdtype).eval(), p0.device, cdtype
