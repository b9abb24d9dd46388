"""Engines of LE for any model, through ``torch.func``: exact (``vmap``) and first-order (kernel).

* ``engine="vmap"``: per-sample gradients with ``vmap(grad(...))``, then the probes' forward
  under a chunk of the N updated parameter sets at once through ``functional_call`` under
  ``vmap``; chunks are sized to the memory budget.
* ``form="kernel"`` is the **first-order (NTK) approximation**, not the paper's quantity:
  ``z(x', w+) - z(x', w) ~ -lr J(x') g`` with ``J = dz/dw`` and ``g = J(x)^T r``, so
  ``LE_ker = ||Theta(x', x) r|| / ||Theta(x, x) r||`` with the block NTK
  ``Theta(a, b) = J(a) J(b)^T`` and ``r = dloss/dz(x)`` (lr cancels). For K = 1 it is He & Su's
  ``|<grad f(x'), grad f(x)>| / ||grad f(x)||^2``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jacrev, jvp, vmap

from gendyn.elasticity.common import _in_chunks, _Job, _progress, _reduce

__all__: list[str] = []

logger = logging.getLogger(__name__)


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


def _functional(
    net: nn.Module, fixed: dict[str, Tensor], loss1: Callable[[Tensor, Tensor], Tensor]
) -> tuple[Callable[[dict[str, Tensor], Tensor], Tensor], Callable[..., dict[str, Tensor]]]:
    """The model as a function of its trainable parameters, and its per-sample loss gradients.

    Returns
    -------
    f : ``(params, x (B, ...)) -> z (B, K)`` (``fixed``: frozen parameters and buffers)
    per_sample_grad : ``(params, x (C, ...), y (C,)) -> {name: (C, *shape)}``, the gradient of
        each sample's own loss (``vmap(grad(...))``).
    """

    def f(p: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(net, (p, fixed), (x,))

    def loss_of(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return loss1(f(p, x[None])[0], y)

    return f, vmap(grad(loss_of), in_dims=(None, 0, 0))


def _exact_vmap(net: nn.Module, job: _Job) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]:
    """The exact vmap engine on ``job``'s samples: ``run(idx (C,), lr (C,)) -> (num (C, M), den (C,), z (C, K))``.

    Per chunk of updates: per-sample gradients, the updated parameter sets
    ``theta_n = w - lr_n g_n``, and the probes' forward under all of them at once
    (``vmap(functional_call)``), chunks sized to ``job.mem_budget_bytes``.
    """
    xu, yu, xp, loss1, dtype, device = job.xu, job.yu, job.xp, job.loss1, job.dtype, job.device
    reduce, chunk, budget, itemsize, progress = job.reduce, job.chunk, job.mem_budget_bytes, job.itemsize, job.progress
    params, fixed = _param_dicts(net, dtype, device)
    f, per_sample_grad = _functional(net, fixed, loss1)
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
    """First-order change ``-lr J(x') g_n`` of the probes' logits (the NTK approximation).

    Returns ``num`` (N, M), ``den`` (N,) and the logits ``z`` (N, K) of the update samples.
    ``method``: ``jacobian`` contracts the probes' Jacobians (M, K, P) with the gradients,
    ``jvp`` pushes each gradient forward; ``auto`` picks by ``job.mem_budget_bytes``.
    """
    xu, yu, xp, loss1, dtype, device = job.xu, job.yu, job.xp, job.loss1, job.dtype, job.device
    reduce, chunk, budget, itemsize, progress = job.reduce, job.chunk, job.mem_budget_bytes, job.itemsize, job.progress
    params, fixed = _param_dicts(net, dtype, device)
    names = list(params)
    f, per_sample_grad = _functional(net, fixed, loss1)

    def f1(p: dict[str, Tensor], x: Tensor) -> Tensor:
        return f(p, x[None])[0]
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
