"""The rank-1 engine: exact LE of plain MLPs without copying the model (paper 002, Sec. 3).

For an ``nn.Sequential`` of Flatten / Linear / BatchNorm1d / elementwise activations /
Dropout / Identity, the per-sample gradient of a Linear layer is the outer product
``delta_n u_n^T``, so one SGD step on sample n changes the layer's output on any input v by

    (W - lr delta_n u_n^T) v - W v = -lr delta_n (u_n . v)

exactly. The first layer then costs O(width) per pair instead of O(d_in * width), only the
columns an update changes enter the next layer's product, and the change of the logits is
propagated directly (no ``z(w+) - z(w)`` cancellation). It is exact algebra, not an
approximation; :func:`gendyn.elasticity.engines.local_elasticity` uses it (``engine="auto"``)
wherever :func:`rank1_supported` holds. Plain ReLU chains take the leaner layout of
:class:`gendyn.elasticity.relu_chain._ReluChain`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import vmap

from gendyn.elasticity.common import _in_chunks, _Job, _progress, _reduce, logits_module
from gendyn.elasticity.relu_chain import _ReluChain

__all__ = ["rank1_supported"]

logger = logging.getLogger(__name__)

_ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.LeakyReLU, nn.Softplus, nn.SiLU)


def _flat_children(model: nn.Module) -> list[nn.Module] | None:
    """The leaf modules of nested ``nn.Sequential`` containers in order (None: not a Sequential)."""
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
    """``model`` as ``[(kind, module)]`` with kind in flatten/linear/bn/act, or None if unsupported."""
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


def _exact_rank1(ops: list[tuple[str, nn.Module | None]], job: _Job) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]:
    """The exact rank-1 engine on ``job``'s samples: ``run(idx (C,), lr (C,)) -> (num (C, M), den (C,), z (C, K))``.

    ``run`` may be called again on a subset of the update samples with other step sizes (the
    retry rule of :func:`gendyn.elasticity.engines.local_elasticity`).
    """
    xu, yu, xp, loss1, dtype, device = job.xu, job.yu, job.xp, job.loss1, job.dtype, job.device
    reduce, chunk, budget, itemsize, progress = job.reduce, job.chunk, job.mem_budget_bytes, job.itemsize, job.progress
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
