"""Local elasticity (LE) of a network, computed exactly and in batches, and LE clustering.

Paper 002 (Sec. 3, "Local elasticity", after He & Su 2020) defines, for pre-softmax logits
``z(x, w)`` in R^K, an update (base) sample ``(x, y)`` and a probe ``x'``::

    w+ = w - lr * grad_w loss(z(x, w), y)                  # one plain SGD step on (x, y) alone
    LE(x, x') = || z(x', w+) - z(x', w) ||_2 / || z(x, w+) - z(x, w) ||_2

:func:`local_elasticity` evaluates this for every pair of N update samples and M probes
without copying the model or running an optimiser:

* ``engine="vmap"`` (any model): per-sample gradients with ``torch.func.vmap(grad(...))``,
  then the probes' forward under a chunk of the N updated parameter sets at once through
  ``functional_call`` under ``vmap``; chunks are sized to a memory budget.
* ``engine="rank1"`` (plain MLPs: ``nn.Sequential`` of Flatten / Linear / BatchNorm1d /
  elementwise activations / Dropout / Identity): the per-sample gradient of a Linear layer
  is the outer product ``delta_n u_n^T``, so ``(W - lr delta_n u_n^T) v = W v - lr delta_n
  (u_n . v)`` exactly. The first layer then costs O(width) per pair instead of
  O(d_in * width), only the columns that an update changes enter the next layer's product,
  and the change of the logits is propagated directly (no ``z(w+) - z(w)`` cancellation).
  It is exact algebra, not an approximation; ``engine="auto"`` uses it where it applies.

``form="kernel"`` is the **first-order (NTK) approximation**, not the paper's quantity:
``z(x', w+) - z(x', w) ~ -lr J(x') g`` with ``J = dz/dw`` and ``g = J(x)^T r``, so
``LE_ker = ||Theta(x', x) r|| / ||Theta(x, x) r||`` with the block NTK
``Theta(a, b) = J(a) J(b)^T`` and ``r = dloss/dz(x)`` (lr cancels). For K = 1 it is He & Su's
``|<grad f(x'), grad f(x)>| / ||grad f(x)||^2``.

All forwards run in eval mode (BatchNorm uses its running statistics, dropout is off): in
train mode a one-sample BN batch is degenerate and dropout makes the change random. The
caller's model, its mode, parameters and buffers are never changed.

The module also holds the pair summaries (class-pair means/medians, histograms, within- and
between-class means and their ratio) and LE clustering (spectral, K-means on affinity rows,
kernel K-means; Hungarian-matched accuracy and ARI) used by ``gendyn elasticity``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, jacrev, jvp, vmap

__all__ = [
    "DEFAULT_DEN_EPS",
    "ElasticityParts",
    "local_elasticity",
    "local_elasticity_loop",
    "logits_module",
    "rank1_supported",
    "pair_summary",
    "affinity",
    "cluster_le",
    "cluster_baselines",
    "hungarian_accuracy",
    "kernel_kmeans",
    "ClusterResult",
    "he_su_similarity",
]

logger = logging.getLogger(__name__)

#: Denominators below this are treated as a vanishing step (LE = NaN), per dtype.
DEFAULT_DEN_EPS: dict[torch.dtype, float] = {torch.float64: 1e-30, torch.float32: 1e-20}

LossName = Literal["ce", "cross_entropy", "mse"]
Form = Literal["exact", "kernel"]
Reduce = Literal["l2", "label"]

_ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.LeakyReLU, nn.Softplus, nn.SiLU)


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
        logit); for ``form="kernel"`` its first-order value ``lr ||J(x'_m) g_n||``.
    den : (N,) tensor
        The same at the update sample itself.
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


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Job:
    """What every LE engine reads: the samples (compute dtype, device), the loss, the reduction
    over logits and how to batch (``chunk`` updates, ``budget`` bytes, ``itemsize``)."""

    xu: Tensor
    yu: Tensor
    xp: Tensor
    loss1: Callable[[Tensor, Tensor], Tensor]
    dtype: torch.dtype
    device: torch.device
    reduce: str
    chunk: int | None
    budget: int
    itemsize: int
    progress: bool


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode; restore each one's own flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


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
    """``dz`` (C, M, K) -> (C, M) by the L2 norm over K or |dz| at the update label y (C,)."""
    if reduce == "l2":
        return torch.linalg.vector_norm(dz, dim=-1)
    idx = y.to(dz.device).long().view(-1, 1, 1).expand(-1, dz.shape[1], 1)
    return dz.gather(-1, idx).squeeze(-1).abs()


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="update", disable=not enabled or not sys.stderr.isatty())


# --------------------------------------------------------------------------- rank-1 engine (MLPs)


def _flat_children(model: nn.Module) -> list[nn.Module] | None:
    if not isinstance(model, nn.Sequential):
        return None
    out: list[nn.Module] = []
    for m in model.children():
        if isinstance(m, nn.Sequential):
            sub = _flat_children(m)
            if sub is None:
                return None
            out += sub
        else:
            out.append(m)
    return out


def rank1_supported(model: nn.Module) -> bool:
    """Whether ``engine="rank1"`` applies: an ``nn.Sequential`` MLP of supported layers.

    Supported: ``Flatten(1, -1)``, ``Linear``, ``BatchNorm1d`` with running statistics,
    elementwise activations (ReLU, Tanh, Sigmoid, GELU, ELU, LeakyReLU, Softplus, SiLU),
    ``Dropout`` and ``Identity`` (eval mode), a final ``Softmax`` (stripped).
    """
    return _rank1_ops(logits_module(model)) is not None


def _rank1_ops(model: nn.Module) -> list[tuple[str, nn.Module | None]] | None:
    mods = _flat_children(model)
    if mods is None:
        return None
    ops: list[tuple[str, nn.Module | None]] = []
    for m in mods:
        if isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                return None
            ops.append(("flatten", None))
        elif isinstance(m, nn.Linear):
            ops.append(("linear", m))
        elif isinstance(m, nn.BatchNorm1d):
            if not m.track_running_stats or m.running_mean is None:
                return None
            ops.append(("bn", m))
        elif isinstance(m, _ACTIVATIONS):
            ops.append(("act", m))
        elif isinstance(m, (nn.Dropout, nn.Identity)):
            continue
        else:
            return None
    if not any(kind == "linear" for kind, _ in ops):
        return None
    return ops


class _Rank1MLP:
    """Exact LE of an MLP through rank-1 parameter updates (see the module docstring).

    Every quantity lives in ``dtype``; ``lr`` may differ per update sample (retry rule).
    """

    def __init__(self, ops: list[tuple[str, nn.Module | None]], dtype: torch.dtype, device: torch.device) -> None:
        self.ops: list[dict[str, Any]] = []
        for kind, m in ops:
            op: dict[str, Any] = {"kind": kind}
            if kind == "linear":
                assert isinstance(m, nn.Linear)
                op["W"] = m.weight.detach().to(device, dtype)
                op["b"] = None if m.bias is None else m.bias.detach().to(device, dtype)
                op["train_W"] = m.weight.requires_grad
                op["train_b"] = m.bias is not None and m.bias.requires_grad
            elif kind == "bn":
                assert isinstance(m, nn.BatchNorm1d)
                op["mean"] = m.running_mean.detach().to(device, dtype)
                op["invstd"] = torch.rsqrt(m.running_var.detach().to(device, dtype) + m.eps)
                op["gamma"] = None if m.weight is None else m.weight.detach().to(device, dtype)
                op["beta"] = None if m.bias is None else m.bias.detach().to(device, dtype)
                op["train_g"] = m.weight is not None and m.weight.requires_grad
                op["train_b"] = m.bias is not None and m.bias.requires_grad
            elif kind == "act":
                op["fn"] = m
                op["relu"] = isinstance(m, nn.ReLU)
            self.ops.append(op)

    # -- plain forward keeping the input of every op
    def bases(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        ins = []
        h = x
        for op in self.ops:
            ins.append(h)
            h = self._apply(op, h)
        return ins, h

    def _apply(self, op: dict[str, Any], h: Tensor) -> Tensor:
        kind = op["kind"]
        if kind == "flatten":
            return h.flatten(1)
        if kind == "linear":
            return F.linear(h, op["W"], op["b"])
        if kind == "bn":
            out = (h - op["mean"]) * op["invstd"]
            if op["gamma"] is not None:
                out = out * op["gamma"]
            if op["beta"] is not None:
                out = out + op["beta"]
            return out
        return op["fn"](h)

    def deltas(self, x: Tensor, y: Tensor, loss1: Callable[[Tensor, Tensor], Tensor]) -> list[Tensor | None]:
        """Per-sample backprop signals ``dloss_n / d(output of op)`` (N, d_out) of Linear/BN ops."""
        taps: list[Tensor | None] = []
        with torch.enable_grad():
            h = x
            for op in self.ops:
                h = self._apply(op, h)
                if op["kind"] in ("linear", "bn"):
                    tap = torch.zeros_like(h, requires_grad=True)
                    h = h + tap
                    taps.append(tap)
                else:
                    taps.append(None)
            losses = vmap(loss1)(h, y)
            wanted = [t for t in taps if t is not None]
            grads = torch.autograd.grad(losses.sum(), wanted)
        it = iter(grads)
        return [next(it).detach() if t is not None else None for t in taps]

    def forward_delta(
        self,
        bases: list[Tensor],
        u_in: list[Tensor],
        deltas: list[Tensor | None],
        idx: Tensor,
        lr: Tensor,
        shared: bool,
    ) -> Tensor:
        """Change of the logits (C, M, K) under the updates ``idx`` (C,) with step sizes ``lr`` (C,).

        ``bases[l]`` is the input of op l for the probes: (M, d) if ``shared`` (one probe set
        for all updates) else (C, M, d) (each update's own probes, e.g. itself). ``u_in[l]``
        (N, d) and ``deltas[l]`` (N, d_out) are the update samples' op inputs and backprop
        signals.
        """
        C = idx.numel()
        lr3 = lr.view(C, 1, 1)
        d: Tensor | None = None
        for op, base, u, dl in zip(self.ops, bases, u_in, deltas):
            kind = op["kind"]
            b3 = base.unsqueeze(0) if shared else base
            if kind == "flatten":
                if d is not None:
                    d = d.flatten(2)
                continue
            if kind == "linear":
                out = None
                if d is not None:
                    out = self._matmul_changed(d, op["W"])
                s = None
                if op["train_W"]:
                    un = u[idx]  # (C, d_in)
                    s = un @ base.T if shared else (b3 * un[:, None, :]).sum(-1)  # (C, M)
                    if d is not None:
                        s = s + (d * un[:, None, :]).sum(-1)
                if op["train_b"]:
                    s = 1.0 if s is None else s + 1.0
                if s is not None:
                    s_t = s if isinstance(s, Tensor) else torch.ones(C, b3.shape[1], dtype=b3.dtype, device=b3.device)
                    upd = lr3 * dl[idx][:, None, :] * s_t[..., None]
                    out = -upd if out is None else out - upd
                d = out
            elif kind == "bn":
                xhat = (b3 - op["mean"]) * op["invstd"]
                out = None
                if d is not None:
                    g = op["gamma"]
                    out = d * op["invstd"] if g is None else d * (g * op["invstd"])
                    xhat = xhat + d * op["invstd"]
                dn = dl[idx][:, None, :]
                if op["train_g"]:
                    xhat_n = ((u[idx] - op["mean"]) * op["invstd"])[:, None, :]
                    upd = lr3 * (dn * xhat_n) * xhat
                    out = -upd if out is None else out - upd
                if op["train_b"]:
                    upd = lr3 * dn
                    out = -upd if out is None else out - upd
                d = out
            else:  # elementwise activation
                if d is None:
                    continue
                new = b3 + d
                if op["relu"]:
                    change = F.relu(new) - F.relu(b3)
                    d = torch.where((b3 > 0) & (new > 0), d, change)
                else:
                    fn = op["fn"]
                    d = fn(new) - fn(b3)
        if d is None:  # nothing trainable
            raise ValueError("model: no parameter requires grad; one SGD step changes nothing")
        return d

    def probe_products(self, bases: list[Tensor], u_in: list[Tensor]) -> list[Tensor | None]:
        """``u_n . base_m`` (N, M) for every Linear op with a trainable weight (else None)."""
        return [u @ b.T if op["kind"] == "linear" and op["train_W"] else None for op, b, u in zip(self.ops, bases, u_in)]

    def prepare_probes(self, bases: list[Tensor]) -> list[dict[str, Tensor]]:
        """Per-op constants of the probe set for :meth:`forward_delta_one`, feature-major.

        Activations are kept transposed, (d, M), so that selecting the changed features is a
        gather of contiguous rows. ReLU: ``[-b | min(b, 0)]`` (d, 2M); Linear: ``W^T``.
        """
        out: list[dict[str, Tensor]] = []
        for op, b in zip(self.ops, bases):
            extra: dict[str, Tensor] = {}
            if op["kind"] == "act":
                bt = b.T.contiguous()
                extra = {"neglow": torch.cat([-bt, bt.clamp_max(0)], dim=1)} if op["relu"] else {"bT": bt}
            elif op["kind"] == "linear":
                extra = {"Wt": op["W"].T.contiguous()}
            out.append(extra)
        return out

    def forward_delta_one(
        self,
        bases: list[Tensor],
        u_in: list[Tensor],
        deltas: list[Tensor | None],
        prods: list[Tensor | None],
        consts: list[dict[str, Tensor]],
        n: int,
        lr: float,
    ) -> Tensor:
        """Change of the probes' logits (M, K) under the update of sample ``n`` alone.

        Same algebra as :meth:`forward_delta`, for one update, keeping the change of an
        activation only on the features where it can be non-zero (after the first Linear
        layer the change is ``-lr delta_n s^T``, zero wherever ``delta_n`` is), so the next
        layer's product runs over those features only. The ReLU change is evaluated as
        ``max(d, -b) + min(b, 0)``, which equals ``relu(b + d) - relu(b)`` without its
        cancellation. Works feature-major: ``dT`` is (features, M).
        """
        dT: Tensor | None = None
        rows: Tensor | None = None  # features of the full activation that dT holds (None = all)
        for op, base, u, dl, prod, const in zip(self.ops, bases, u_in, deltas, prods, consts):
            kind = op["kind"]
            if kind == "flatten":
                if dT is not None:
                    dT = self._dense_t(dT, rows, base[0].numel())
                    dT = dT.reshape(-1, dT.shape[-1]) if dT.dim() > 2 else dT
                    rows = None
                continue
            if kind == "linear":
                un, dn = u[n], dl[n]
                s = None
                if op["train_W"]:
                    s = prod[n] if dT is None else prod[n] + (un if rows is None else un[rows]) @ dT
                if op["train_b"]:
                    s = torch.ones(base.shape[0], dtype=base.dtype, device=base.device) if s is None else s + 1.0
                if dT is None:
                    if s is None:
                        continue
                    keep = dn.nonzero().squeeze(1)
                    if keep.numel() < dn.numel():
                        dT, rows = torch.outer(dn[keep], s * -lr), keep
                    else:
                        dT, rows = torch.outer(dn, s * -lr), None
                    continue
                Wt = const["Wt"] if rows is None else const["Wt"][rows]
                out = Wt.T @ dT
                if s is not None:
                    out.addr_(dn, s, alpha=-lr)
                dT, rows = out, None
            elif kind == "bn":
                if dT is not None:
                    d = self._dense_t(dT, rows, base.shape[1]).T
                    rows = None
                else:
                    d = None
                d = self._bn_delta(op, base, u[n], dl[n], d, lr)
                dT = None if d is None else d.T
            else:
                if dT is None:
                    continue
                if op["relu"]:
                    nl = const["neglow"] if rows is None else const["neglow"][rows]  # one gather of [-b | min(b, 0)]
                    M = dT.shape[1]
                    dT = torch.maximum(dT, nl[:, :M]).add_(nl[:, M:])
                else:
                    bT = const["bT"] if rows is None else const["bT"][rows]
                    dT = op["fn"](bT + dT) - op["fn"](bT)
        if dT is None:
            raise ValueError("model: no parameter requires grad; one SGD step changes nothing")
        return self._dense_t(dT, rows, bases[-1].shape[1] if rows is not None else dT.shape[0]).T

    @staticmethod
    def _dense_t(dT: Tensor, rows: Tensor | None, width: int) -> Tensor:
        if rows is None:
            return dT
        out = dT.new_zeros(width, dT.shape[1])
        out[rows] = dT
        return out

    @staticmethod
    def _bn_delta(op: dict[str, Any], base: Tensor, un: Tensor, dn: Tensor, d: Tensor | None, lr: float) -> Tensor | None:
        xhat = (base - op["mean"]) * op["invstd"]
        out = None
        if d is not None:
            g = op["gamma"]
            out = d * op["invstd"] if g is None else d * (g * op["invstd"])
            xhat = xhat + d * op["invstd"]
        if op["train_g"]:
            upd = lr * (dn * (un - op["mean"]) * op["invstd"])[None, :] * xhat
            out = -upd if out is None else out - upd
        if op["train_b"]:
            upd = lr * dn[None, :]
            out = -upd.expand_as(xhat) if out is None else out - upd
        return out

    @staticmethod
    def _matmul_changed(d: Tensor, W: Tensor) -> Tensor:
        """``d @ W.T`` for d (C, M, d_in), using only the columns each update actually changed."""
        C, M, din = d.shape
        nz = (d != 0).any(dim=1)  # (C, d_in)
        density = float(nz.float().mean()) if nz.numel() else 1.0
        if M == 1 or density > 0.7 or C == 1 and density > 0.5:
            return (d.reshape(C * M, din) @ W.T).reshape(C, M, -1)
        out = d.new_zeros(C, M, W.shape[0])
        Wt = W.T
        for c in range(C):
            cols = nz[c].nonzero().squeeze(1)
            if cols.numel():
                out[c] = d[c][:, cols] @ Wt[cols]
        return out


class _ReluChain:
    """Exact LE of a plain ReLU MLP (Linear, ReLU, Linear, ..., Linear), one update at a time.

    The algebra of :meth:`_Rank1MLP.forward_delta_one`, laid out for few operations per update:

    * the first layer's change is ``-lr delta_n s_n^T`` (``s_n[m] = u_n . x_m (+1)``), non-zero
      only on the features where ``delta_n != 0``; its ReLU change is ``max(d, -a) + min(a, 0)``
      (no ``relu(a + d) - relu(a)`` cancellation);
    * a hidden Linear layer's change ``W d - lr delta_n (u_n . h' + 1)`` is one product of
      ``[W^T[rows]; delta_n]`` and ``[d; coef]``: the rank-1 update rides along;
    * the last hidden layer keeps ``max(d, -a)`` only when a full product produced it: the
      constant ``min(a, 0)`` part reaches the output through ``W_L min(a, 0)`` and
      ``u_n . min(a, 0)``, computed once; the output layer and ``u_n . h'`` are one
      ``(K + 1) x d`` product;
    * every work array is allocated once and reused (on a CPU a fresh array of a few hundred
      kilobytes per update costs more than the arithmetic around it).
    """

    def __init__(self, mlp: _Rank1MLP, bases: list[Tensor], u_in: list[Tensor], deltas: list[Tensor | None], prods: list[Tensor | None]) -> None:
        lin = [i for i, op in enumerate(mlp.ops) if op["kind"] == "linear"]
        acts = [i for i, op in enumerate(mlp.ops) if op["kind"] == "act"]
        rows = lambda t: None if t is None else list(t.unbind(0))  # noqa: E731 - per-update views, indexed in Python
        self.layers: list[dict[str, Any]] = []
        for i in lin:
            op = mlp.ops[i]
            s = prods[i]  # u_n . h_m for a trainable weight, (N, M)
            if op["train_b"]:
                s = 1.0 + (s if s is not None else bases[i].new_zeros(u_in[i].shape[0], bases[i].shape[0]))
            self.layers.append({
                "W": op["W"], "Wt": op["W"].T.contiguous(), "u": rows(u_in[i]), "delta": rows(deltas[i]), "s": rows(s),
                "train_W": op["train_W"], "move": bool(op["train_W"] or op["train_b"]),
            })  # fmt: skip
        a_t = [bases[i].T.contiguous() for i in acts]  # pre-activations of the probes, (d, M)
        self.nega = [-a for a in a_t]
        self.mina = [a.clamp_max(0) for a in a_t]
        self.neglow0 = torch.cat([self.nega[0], self.mina[0]], dim=1)  # one gather serves both
        last = self.layers[-1]
        self.n_out, d_last = last["W"].shape
        # fold min(a, 0) of the last hidden layer into the output when a full product made it
        fold = len(self.layers) >= 3
        self.out_off = last["W"] @ self.mina[-1] if fold else None  # (K, M)
        self.u_off = rows(u_in[lin[-1]] @ self.mina[-1]) if fold and last["train_W"] else None  # (N, M)
        M, dt, dev = a_t[0].shape[1], a_t[0].dtype, a_t[0].device
        width = max(a.shape[0] for a in a_t)
        new = lambda *shape: torch.empty(*shape, dtype=dt, device=dev)  # noqa: E731
        self._x = new(a_t[0].shape[0] + 1, M)
        self._nl = new(a_t[0].shape[0], 2 * M)
        self._y = [new(width + 1, M), new(width + 1, M)]
        # [W^T; delta_n] per hidden Linear after the first (W^T rows gathered or copied once)
        self._wa = [new(L["W"].shape[1] + 1, L["W"].shape[0]) for L in self.layers[1:-1]]
        for li in range(2, len(self.layers) - 1):
            self._wa[li - 1][:-1] = self.layers[li]["Wt"]
        self._out = new(self.n_out + 1, d_last)
        self._out[: self.n_out] = last["W"]

    @staticmethod
    def supported(mlp: _Rank1MLP) -> bool:
        """A leading Flatten, then strictly Linear, ReLU, Linear, ..., Linear; the first Linear moves."""
        ops = mlp.ops[1:] if mlp.ops and mlp.ops[0]["kind"] == "flatten" else mlp.ops
        if len(ops) < 3 or len(ops) % 2 == 0:
            return False
        for j, op in enumerate(ops):
            if op["kind"] != ("linear" if j % 2 == 0 else "act") or (op["kind"] == "act" and not op["relu"]):
                return False
        return bool(ops[0]["train_W"] or ops[0]["train_b"])

    def delta_one(self, n: int, lr: float) -> Tensor:
        """Change of the probes' logits (K, M) after one SGD step of size ``lr`` on update ``n``."""
        L = len(self.layers)
        first = self.layers[0]
        M = self.nega[0].shape[1]
        dn = first["delta"][n]
        rows = dn.nonzero().squeeze(1)
        k = rows.numel()
        X = self._x[: k + 1]  # exact change on `rows`, and a spare row for the next coef
        Xk = X[:k]
        nl = torch.index_select(self.neglow0, 0, rows, out=self._nl[:k])
        torch.outer(dn.index_select(0, rows), first["s"][n] * -lr, out=Xk)
        torch.maximum(Xk, nl[:, :M], out=Xk)
        Xk.add_(nl[:, M:])
        sel: Tensor | None = rows  # features of the previous activation that X holds (None: all)
        for li in range(1, L):
            layer = self.layers[li]
            u = layer["u"][n] if sel is None else layer["u"][n].index_select(0, sel)
            if li == L - 1:
                if sel is None:
                    wo = self._out
                    wo[-1] = u
                else:  # one hidden layer: the output reads the changed rows only
                    wo = torch.cat([layer["W"].index_select(1, sel), u[None]])
                if not layer["train_W"]:
                    wo = wo[:-1]
                prod = torch.mm(wo, Xk)  # (K [+1], M)
                dz = prod[: self.n_out]
                if self.out_off is not None:
                    dz = dz + self.out_off
                if layer["move"]:
                    coef = layer["s"][n] + prod[-1] if layer["train_W"] else layer["s"][n]
                    if self.u_off is not None:
                        coef = coef + self.u_off[n]
                    dz = dz.addr(layer["delta"][n], coef, alpha=-lr)
                return dz
            wa = self._wa[li - 1][: Xk.shape[0] + 1]
            if sel is not None:
                torch.index_select(layer["Wt"], 0, sel, out=wa[:-1])
            if layer["move"]:
                kk = Xk.shape[0]
                if layer["train_W"]:
                    torch.mv(Xk.T, u, out=X[kk])
                    X[kk].add_(layer["s"][n]).mul_(-lr)
                else:
                    torch.mul(layer["s"][n], -lr, out=X[kk])
                wa[-1] = layer["delta"][n]
                A, B = wa, X
            else:
                A, B = wa[:-1], Xk
            d_out = A.shape[1]
            Y = self._y[li % 2][: d_out + 1]
            Yk = Y[:d_out]
            torch.mm(A.T, B, out=Yk)
            torch.maximum(Yk, self.nega[li], out=Yk)
            if li + 1 < L - 1:  # another hidden layer follows: make the change exact
                Yk.add_(self.mina[li])
            X, Xk, sel = Y, Yk, None
        raise AssertionError("unreachable")


# --------------------------------------------------------------------------- vmap engine (any model)


def _param_dicts(model: nn.Module, dtype: torch.dtype, device: torch.device) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Trainable parameters (moved by the step) and everything else (frozen params, buffers)."""
    params: dict[str, Tensor] = {}
    fixed: dict[str, Tensor] = {}
    for k, p in model.named_parameters():
        t = p.detach().to(device=device, dtype=dtype if p.is_floating_point() else p.dtype)
        (params if p.requires_grad else fixed)[k] = t
    for k, b in model.named_buffers():
        fixed[k] = b.detach().to(device=device, dtype=dtype if b.is_floating_point() else b.dtype)
    if not params:
        raise ValueError("model: no parameter requires grad; one SGD step changes nothing")
    return params, fixed


def _activation_numel(model: nn.Module, f: Callable[[dict[str, Tensor], Tensor], Tensor], params: dict[str, Tensor], x1: Tensor) -> int:
    """Elements of all leaf-module outputs for one input (memory planning)."""
    total = [0]

    def hook(_m: nn.Module, _i: Any, out: Any) -> None:
        if isinstance(out, Tensor):
            total[0] += out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            f(params, x1)
    finally:
        for h in handles:
            h.remove()
    return max(total[0], 1)


def _in_chunks(n: int, size: int) -> Iterator[slice]:
    size = max(1, int(size))
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


# --------------------------------------------------------------------------- public function


def local_elasticity(
    model: nn.Module,
    x_update: Tensor,
    y_update: Tensor,
    x_probe: Tensor,
    lr: float = 0.01,
    loss: LossName | Callable[[Tensor, Tensor], Tensor] = "ce",
    *,
    form: Form = "exact",
    reduce: Reduce = "l2",
    chunk: int | None = None,
    dtype: torch.dtype | None = None,
    memory_budget: int = 2 << 30,
    den_eps: float | None = None,
    retry: tuple[float, int] | None = None,
    engine: Literal["auto", "vmap", "rank1"] = "auto",
    kernel_method: Literal["auto", "jacobian", "jvp"] = "auto",
    return_parts: bool = False,
    progress: bool = False,
) -> Tensor | ElasticityParts:
    """Local elasticity of every (update sample, probe) pair, exact and batched.

    Entry (n, m) is the change of the logits at probe m after one plain SGD step (batch 1,
    no momentum, no weight decay) on update sample n alone, divided by the change at sample
    n itself (paper 002, Sec. 3, the LE formula above Fig. 5).

    Parameters
    ----------
    model : nn.Module
        Any model of the zoo (or any module mapping (B, ...) to (B, K) logits). Evaluated in
        eval mode; a final softmax is stripped (:func:`logits_module`). Only parameters with
        ``requires_grad`` move. Not modified.
    x_update : (N, ...) tensor
        Update (base) samples.
    y_update : (N,) int64 tensor, or (N, K) float for ``loss="mse"`` with real targets
        Their labels (cross-entropy on the true label).
    x_probe : (M, ...) tensor
        Probes x'.
    lr : float
        SGD step size eta of the single update.
    loss : {"ce", "cross_entropy", "mse"} or callable
        ``ce``: cross-entropy on the logits; ``mse``: ``1/2 ||z - y||^2`` (one-hot y for
        integer labels); a callable ``(z (K,), y) -> scalar`` (vmap-compatible).
    form : {"exact", "kernel"}
        ``exact``: the paper's LE. ``kernel``: the first-order (NTK) approximation
        ``||Theta(x', x) r|| / ||Theta(x, x) r||`` — an approximation, labelled as such in
        every output.
    reduce : {"l2", "label"}
        L2 norm over all K logits (paper) or ``|dz_y|`` at the update label y.
    chunk : int, optional
        Update samples per batch (vmap engine, kernel form, and the rank-1 engine's
        denominators; the rank-1 engine takes the probes one update at a time); default
        from ``memory_budget``.
    dtype : torch.dtype, optional
        Compute dtype (default: the model's). ``torch.float64`` is recommended: the exact form
        subtracts nearly equal logits (relative error ~ eps ||z|| / ||dz||).
    memory_budget : int
        Bytes one batched stage may hold (default 2 GiB).
    den_eps : float, optional
        Denominators below this give NaN (never inf); default 1e-30 (float64) / 1e-20
        (float32).
    retry : (factor, max_tries), optional
        Retry rule for vanishing steps (exact form): rows whose denominator is below
        ``den_eps`` are recomputed with ``lr * factor**k``, k = 1..max_tries, until it is not;
        the step size used is returned in ``ElasticityParts.lr``.
    engine : {"auto", "vmap", "rank1"}
        Exact-form engine (see the module docstring); ``auto`` = ``rank1`` for plain MLPs.
    kernel_method : {"auto", "jacobian", "jvp"}
        Kernel form: probe Jacobians (M, K, P) contracted with the gradients (small P), or
        forward-mode products along each gradient (large P); auto picks by memory.
    return_parts : bool
        Return :class:`ElasticityParts` instead of the (N, M) matrix.
    progress : bool
        Show a tqdm bar (only on a TTY).

    Returns
    -------
    (N, M) tensor in the compute dtype on the CPU, or :class:`ElasticityParts`.

    Notes
    -----
    * ``LE(x, x) = 1``: pairs whose probe is bit-identical to the update image get exactly 1.
    * A well-fit sample has ``r = dloss/dz ~ 0`` and a vanishing step; its row is NaN (see
      ``den_eps``, ``retry``). Aggregate with nan-aware statistics and report medians.
    * ReLU networks: exact and kernel forms differ at small lr where units flip.
    * Cost: the exact form needs the probes' forward under N parameter sets, i.e. N*M
      forwards (the rank-1 engine removes the first layer's share). VGG-19 at 224 px with
      N = M = 360 is ~2.6 PFLOP: a GPU job.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    >>> x = torch.randn(5, 4, dtype=torch.float64); y = torch.tensor([0, 1, 2, 0, 1])
    >>> le = local_elasticity(net, x, y, x, lr=0.1)
    >>> le.shape, bool(torch.allclose(le.diagonal(), torch.ones(5, dtype=torch.float64)))
    (torch.Size([5, 5]), True)
    """
    if form not in ("exact", "kernel"):
        raise ValueError(f"form: {form!r} is not allowed; choose 'exact' or 'kernel'")
    if reduce not in ("l2", "label"):
        raise ValueError(f"reduce: {reduce!r} is not allowed; choose 'l2' or 'label'")
    if engine not in ("auto", "vmap", "rank1"):
        raise ValueError(f"engine: {engine!r} is not allowed; choose 'auto', 'vmap' or 'rank1'")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr: {lr!r} is invalid; expected a finite step size > 0")
    if x_update.shape[0] != y_update.shape[0]:
        raise ValueError(f"y_update: {tuple(y_update.shape)} does not match x_update {tuple(x_update.shape)} (first dim N)")
    if x_update.shape[1:] != x_probe.shape[1:]:
        raise ValueError(f"x_probe: sample shape {tuple(x_probe.shape[1:])} differs from x_update's {tuple(x_update.shape[1:])}")
    if reduce == "label" and y_update.is_floating_point():
        raise ValueError("reduce='label' needs integer class labels in y_update")
    if retry is not None:
        factor, tries = retry
        if not (factor > 1 and int(tries) >= 0):
            raise ValueError(f"retry: {retry!r} is invalid; expected (factor > 1, max_tries >= 0)")

    net = logits_module(model)
    p0 = next(iter(net.parameters()), None)
    if p0 is None:
        raise ValueError("model: has no parameters")
    device = p0.device
    cdtype = dtype or p0.dtype
    eps = DEFAULT_DEN_EPS.get(cdtype, 1e-20) if den_eps is None else float(den_eps)
    xu = x_update.detach().to(device=device, dtype=cdtype)
    xp = x_probe.detach().to(device=device, dtype=cdtype)
    yu = y_update.detach().to(device)
    if yu.is_floating_point():
        yu = yu.to(cdtype)
    N, M = xu.shape[0], xp.shape[0]
    loss1 = _loss_single(loss)
    itemsize = torch.empty((), dtype=cdtype).element_size()

    job = _Job(xu, yu, xp, loss1, cdtype, device, reduce, chunk, memory_budget, itemsize, progress)
    with _eval_mode(model), torch.no_grad():
        if form == "exact":
            ops = _rank1_ops(net) if engine in ("auto", "rank1") else None
            if engine == "rank1" and ops is None:
                raise ValueError(f"engine='rank1' needs a plain nn.Sequential MLP; got {type(net).__name__} (use engine='vmap')")
            runner = _exact_rank1(ops, job) if ops is not None else _exact_vmap(net, job)
            lr_rows = torch.full((N,), float(lr), dtype=cdtype)
            num, den, zn = runner(torch.arange(N), lr_rows)
            if retry is not None:
                factor, tries = retry
                for _ in range(int(tries)):
                    bad = torch.nonzero(den < eps).squeeze(1)
                    if not bad.numel():
                        break
                    lr_rows[bad] *= factor
                    logger.debug("LE retry: %d update sample(s) with lr x %g", bad.numel(), factor)
                    n2, d2, _ = runner(bad, lr_rows[bad])
                    num[bad], den[bad] = n2, d2
        else:
            num, den, zn = _kernel(net, job, kernel_method, float(lr))
            lr_rows = torch.full((N,), float(lr), dtype=cdtype)

    num = num.cpu()
    den = den.cpu()
    same = _same_pairs(xu, xp)
    if same.any():
        rows, cols = same.nonzero(as_tuple=True)
        num[rows, cols] = den[rows]
    ok = den >= eps
    le = torch.where(ok[:, None], num / torch.where(ok, den, torch.ones_like(den))[:, None], torch.full_like(num, float("nan")))
    if same.any():
        le[same & ok[:, None]] = 1.0
    rel = den / torch.linalg.vector_norm(zn.cpu(), dim=-1).clamp_min(torch.finfo(cdtype).tiny)
    n_bad = int((~ok).sum())
    if n_bad:
        logger.info("LE: %d of %d update samples have a vanishing step (den < %g): their rows are NaN", n_bad, N, eps)
    if cdtype == torch.float32 and form == "exact" and N and float(rel[ok].median() if ok.any() else 0) < 1e-4:
        logger.warning(
            "LE in float32: median relative logit change %.2e < 1e-4 — the difference z(w+) - z(w) is dominated "
            "by rounding; use dtype=torch.float64 or a larger lr", float(rel[ok].median()) if ok.any() else 0.0,
        )
    if not return_parts:
        return le
    return ElasticityParts(le=le, num=num, den=den, rel_change=rel, lr=lr_rows.cpu(), form=form, reduce=reduce)


def _exact_rank1(ops: list[tuple[str, nn.Module | None]], job: _Job) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]:
    xu, yu, xp, loss1, dtype, device = job.xu, job.yu, job.xp, job.loss1, job.dtype, job.device
    reduce, chunk, budget, itemsize, progress = job.reduce, job.chunk, job.budget, job.itemsize, job.progress
    mlp = _Rank1MLP(ops, dtype, device)
    ins_u, z_u = mlp.bases(xu)
    ins_p, _ = mlp.bases(xp)
    dl = mlp.deltas(xu, yu, loss1)
    prods = mlp.probe_products(ins_p, ins_u)
    width = max(int(t[0].numel()) for t in ins_u)
    chain = _ReluChain(mlp, ins_p, ins_u, dl, prods) if _ReluChain.supported(mlp) and xp.shape[0] else None
    consts = mlp.prepare_probes(ins_p) if chain is None else []
    own_size = chunk or max(1, min(xu.shape[0], budget // max(1, width * itemsize * 8)))

    def run(idx: Tensor, lr_rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        nums = []
        bar = _progress(idx.numel(), "LE exact (rank-1)", progress)
        if chain is not None:  # (K, M) per update, reduced in one call
            dzs = xp.new_empty(idx.numel(), xp.shape[0], chain.n_out)
            for k, (n, lr_n) in enumerate(zip(idx.tolist(), lr_rows.tolist())):
                dzs[k] = chain.delta_one(n, lr_n).T
                bar.update(1)
            y = yu[idx.to(device)] if not yu.is_floating_point() else idx
            nums = list(_reduce(dzs, y, reduce))
        else:
            for k, n in enumerate(idx.tolist()):
                dz = mlp.forward_delta_one(ins_p, ins_u, dl, prods, consts, n, float(lr_rows[k]))
                y = yu[n : n + 1] if not yu.is_floating_point() else torch.tensor([n])
                nums.append(_reduce(dz[None], y, reduce)[0])
                bar.update(1)
        bar.close()
        dens = []
        for sl in _in_chunks(idx.numel(), own_size):
            ids = idx[sl].to(device)
            lrc = lr_rows[sl].to(device=device, dtype=dtype)
            own = [t[ids].unsqueeze(1) for t in ins_u]
            dz0 = mlp.forward_delta(own, ins_u, dl, ids, lrc, shared=False)
            y = yu[ids] if not yu.is_floating_point() else ids
            dens.append(_reduce(dz0, y, reduce)[:, 0])
        num = torch.stack(nums) if nums else xp.new_zeros(0, xp.shape[0])
        return num, torch.cat(dens), z_u[idx.to(device)]

    return run


def _exact_vmap(net: nn.Module, job: _Job) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]:
    xu, yu, xp, loss1, dtype, device = job.xu, job.yu, job.xp, job.loss1, job.dtype, job.device
    reduce, chunk, budget, itemsize, progress = job.reduce, job.chunk, job.budget, job.itemsize, job.progress
    params, fixed = _param_dicts(net, dtype, device)

    def f(p: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(net, (p, fixed), (x,))

    def loss_of(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return loss1(f(p, x[None])[0], y)

    per_sample_grad = vmap(grad(loss_of), in_dims=(None, 0, 0))
    n_params = sum(t.numel() for t in params.values())
    act = _activation_numel(net, f, params, xp[:1] if xp.shape[0] else xu[:1])
    M = xp.shape[0]
    # Budget: C parameter sets (gradient + updated copy) and C x Mc activations (x3 for temporaries).
    c_size = chunk or max(1, min(xu.shape[0], budget // max(1, 4 * n_params * itemsize)))
    m_size = max(1, min(M, (budget - 2 * c_size * n_params * itemsize) // max(1, 3 * c_size * act * itemsize)))
    logger.debug("LE vmap engine: P=%d, activations/sample=%d, chunk %d updates x %d probes", n_params, act, c_size, m_size)
    z_p = torch.cat([f(params, xp[s]) for s in _in_chunks(M, max(m_size * c_size, 1))]) if M else xp.new_zeros(0, 1)
    z_u = torch.cat([f(params, xu[s]) for s in _in_chunks(xu.shape[0], max(m_size * c_size, 1))])

    def run(idx: Tensor, lr_rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        nums, dens = [], []
        bar = _progress(idx.numel(), "LE exact (vmap)", progress)
        for sl in _in_chunks(idx.numel(), c_size):
            ids = idx[sl].to(device)
            with torch.enable_grad():
                g = per_sample_grad(params, xu[ids], yu[ids])
            lrc = lr_rows[sl].to(device=device, dtype=dtype)
            theta = {k: params[k].unsqueeze(0) - lrc.view(-1, *([1] * params[k].dim())) * g[k] for k in params}
            del g
            parts = []
            for ms in _in_chunks(M, m_size):
                out = vmap(f, in_dims=(0, None))(theta, xp[ms])  # (C, Mc, K)
                parts.append(out - z_p[ms].unsqueeze(0))
            dz = torch.cat(parts, dim=1) if parts else xp.new_zeros(ids.numel(), 0, 1)
            own = vmap(f, in_dims=(0, 0))(theta, xu[ids].unsqueeze(1))  # (C, 1, K)
            dz0 = own - z_u[ids].unsqueeze(1)
            y = yu[ids] if not yu.is_floating_point() else ids
            nums.append(_reduce(dz, y, reduce))
            dens.append(_reduce(dz0, y, reduce)[:, 0])
            bar.update(ids.numel())
        bar.close()
        return torch.cat(nums), torch.cat(dens), z_u[idx.to(device)]

    return run


def _kernel(net: nn.Module, job: _Job, method: str, lr: float) -> tuple[Tensor, Tensor, Tensor]:
    """First-order change ``-lr J(x') g_n`` of the probes' logits (the NTK approximation)."""
    xu, yu, xp, loss1, dtype, device = job.xu, job.yu, job.xp, job.loss1, job.dtype, job.device
    reduce, chunk, budget, itemsize, progress = job.reduce, job.chunk, job.budget, job.itemsize, job.progress
    params, fixed = _param_dicts(net, dtype, device)
    names = list(params)

    def f(p: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(net, (p, fixed), (x,))

    def f1(p: dict[str, Tensor], x: Tensor) -> Tensor:
        return f(p, x[None])[0]

    def loss_of(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return loss1(f1(p, x), y)

    per_sample_grad = vmap(grad(loss_of), in_dims=(None, 0, 0))
    N, M = xu.shape[0], xp.shape[0]
    n_params = sum(t.numel() for t in params.values())
    K = int(f(params, xu[:1]).shape[-1])
    z_u = f(params, xu)
    if method == "auto":
        method = "jacobian" if M * K * n_params * itemsize <= budget // 2 else "jvp"
    if method not in ("jacobian", "jvp"):
        raise ValueError(f"kernel_method: {method!r} is not allowed; choose 'auto', 'jacobian' or 'jvp'")
    c_size = chunk or max(1, min(N, budget // max(1, 4 * n_params * itemsize)))

    def tangent_out(x: Tensor, tangent: dict[str, Tensor]) -> Tensor:
        return jvp(lambda p: f(p, x), (params,), (tangent,))[1]

    act = _activation_numel(net, f, params, xp[:1] if M else xu[:1])
    m_jvp = max(1, min(M, (budget // 2) // max(1, 3 * c_size * act * itemsize)))
    nums, dens = [], []
    jac = None
    if method == "jacobian":
        m_size = max(1, min(M, (budget // 2) // max(1, K * n_params * itemsize)))
        jac_chunks = []
        for ms in _in_chunks(M, m_size):
            with torch.enable_grad():
                jd = vmap(jacrev(f1), in_dims=(None, 0))(params, xp[ms])  # {k: (Mc, K, *shape)}
            jac_chunks.append(torch.cat([jd[k].reshape(jd[k].shape[0], K, -1) for k in names], dim=-1))
        jac = torch.cat(jac_chunks) if jac_chunks else None  # (M, K, P)
    bar = _progress(N, f"LE kernel ({method})", progress)
    for sl in _in_chunks(N, c_size):
        with torch.enable_grad():
            g = per_sample_grad(params, xu[sl], yu[sl])
        C = sl.stop - sl.start
        if jac is not None:
            gflat = torch.cat([g[k].reshape(C, -1) for k in names], dim=-1)  # (C, P)
            dz = -lr * torch.einsum("mkp,cp->cmk", jac, gflat)
        else:
            parts = [vmap(lambda t, xs=xp[ms]: tangent_out(xs, t))(g) for ms in _in_chunks(M, m_jvp)]  # (C, Mc, K)
            dz = -lr * torch.cat(parts, dim=1) if parts else xp.new_zeros(C, 0, K)
        own = -lr * vmap(lambda t, x: tangent_out(x[None], t), in_dims=(0, 0))(g, xu[sl])  # (C, 1, K)
        y = yu[sl] if not yu.is_floating_point() else torch.arange(sl.start, sl.stop)
        nums.append(_reduce(dz, y, reduce))
        dens.append(_reduce(own, y, reduce)[:, 0])
        bar.update(C)
    bar.close()
    return torch.cat(nums), torch.cat(dens), z_u


# --------------------------------------------------------------------------- oracle


def local_elasticity_loop(
    model: nn.Module,
    x_update: Tensor,
    y_update: Tensor,
    x_probe: Tensor,
    lr: float = 0.01,
    loss: LossName | Callable[[Tensor, Tensor], Tensor] = "ce",
    *,
    reduce: Reduce = "l2",
    dtype: torch.dtype | None = None,
) -> ElasticityParts:
    """The naive oracle: per update sample deep-copy the model, take one SGD step, forward.

    For each n: ``copy.deepcopy(model)`` (cast to ``dtype``), eval mode,
    ``torch.optim.SGD(lr, momentum=0, weight_decay=0)``, the loss of ``x_n[None]`` (the mean
    over that single sample), ``step()``, then the probes' and x_n's logits. Slow and
    obvious; :func:`local_elasticity` is tested against it. No NaN masking, no LE(x, x) = 1
    restoration.

    Returns
    -------
    ElasticityParts with ``le = num / den`` (N, M), ``num`` (N, M), ``den`` (N,).
    """
    loss1 = _loss_single(loss)
    base = logits_module(copy.deepcopy(model))
    p0 = next(iter(base.parameters()))
    cdtype = dtype or p0.dtype
    base = base.to(cdtype).eval()
    xu = x_update.detach().to(p0.device, cdtype)
    xp = x_probe.detach().to(p0.device, cdtype)
    yu = y_update.to(p0.device)
    if yu.is_floating_point():
        yu = yu.to(cdtype)
    with torch.no_grad():
        z_p = base(xp)
        z_u = base(xu)
    nums, dens = [], []
    for n in range(xu.shape[0]):
        m = copy.deepcopy(base).eval()
        opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=lr, momentum=0, weight_decay=0)
        opt.zero_grad()
        loss1(m(xu[n : n + 1])[0], yu[n]).backward()
        opt.step()
        with torch.no_grad():
            dz = (m(xp) - z_p)[None]
            dz0 = (m(xu[n : n + 1]) - z_u[n : n + 1])[None]
        y = yu[n : n + 1] if not yu.is_floating_point() else torch.tensor([n])
        nums.append(_reduce(dz, y, reduce)[0])
        dens.append(_reduce(dz0, y, reduce)[0, 0])
    num = torch.stack(nums).cpu() if nums else torch.zeros(0, xp.shape[0], dtype=cdtype)
    den = torch.stack(dens).cpu() if dens else torch.zeros(0, dtype=cdtype)
    rel = den / torch.linalg.vector_norm(z_u.cpu(), dim=-1)
    return ElasticityParts(
        le=num / den[:, None], num=num, den=den, rel_change=rel, lr=torch.full_like(den, float(lr)), form="exact", reduce=reduce
    )


# --------------------------------------------------------------------------- pair summaries


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


# --------------------------------------------------------------------------- clustering


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
    m = logits_module(copy.deepcopy(model))
    p0 = next(iter(m.parameters()))
    cdtype = dtype or p0.dtype
    m = m.to(cdtype).eval()
    xp = x_primary.detach().to(p0.device, cdtype)
    xa = x_auxiliary.detach().to(p0.device, cdtype)
    x_all = torch.cat([xp, xa])
    y_all = torch.cat([torch.ones(len(xp)), -torch.ones(len(xa))]).to(p0.device, cdtype)
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

