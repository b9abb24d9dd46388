"""Local elasticity (LE) of a network, exact and batched (paper 002, Sec. 3): the public engine.

For pre-softmax logits ``z(x, w)`` in R^K, an update (base) sample ``(x, y)`` and a probe ``x'``::

    w+ = w - lr * grad_w loss(z(x, w), y)                  # one plain SGD step on (x, y) alone
    LE(x, x') = || z(x', w+) - z(x', w) ||_2 / || z(x, w+) - z(x, w) ||_2

:func:`local_elasticity` evaluates this for every pair of N update samples and M probes
without copying the model or running an optimiser:

* ``engine="vmap"`` (any model; :mod:`gendyn.elasticity.vmap`): per-sample gradients with
  ``torch.func.vmap(grad(...))``, then the probes' forward under a chunk of the N updated
  parameter sets at once through ``functional_call`` under ``vmap``; chunks are sized to a
  memory budget.
* ``engine="rank1"`` (plain MLPs: ``nn.Sequential`` of Flatten / Linear / BatchNorm1d /
  elementwise activations / Dropout / Identity; :mod:`gendyn.elasticity.rank1`): the
  per-sample gradient of a Linear layer is the outer product ``delta_n u_n^T``, so
  ``(W - lr delta_n u_n^T) v = W v - lr delta_n (u_n . v)`` exactly. The first layer then
  costs O(width) per pair instead of O(d_in * width), only the columns that an update changes
  enter the next layer's product, and the change of the logits is propagated directly (no
  ``z(w+) - z(w)`` cancellation). It is exact algebra, not an approximation; ``engine="auto"``
  uses it where it applies.

``form="kernel"`` is the **first-order (NTK) approximation**, not the paper's quantity:
``z(x', w+) - z(x', w) ~ -lr J(x') g`` with ``J = dz/dw`` and ``g = J(x)^T r``, so
``LE_ker = ||Theta(x', x) r|| / ||Theta(x, x) r||`` with the block NTK
``Theta(a, b) = J(a) J(b)^T`` and ``r = dloss/dz(x)`` (lr cancels). For K = 1 it is He & Su's
``|<grad f(x'), grad f(x)>| / ||grad f(x)||^2``.

All forwards run in eval mode (BatchNorm uses its running statistics, dropout is off): in
train mode a one-sample BN batch is degenerate and dropout makes the change random. The
caller's model, its mode, parameters and buffers are never changed.

:func:`local_elasticity_loop` is the slow obvious oracle (deep copy, ``torch.optim.SGD``,
one step, forward) the fast path is tested against.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

from gendyn import parallel as _parallel
from gendyn.elasticity.common import (
    DEFAULT_DEN_EPS,
    ElasticityParts,
    Form,
    LossName,
    Reduce,
    _Job,
    _loss_single,
    _reduce,
    _same_pairs,
    logits_module,
    working_copy,
)
from gendyn.elasticity.rank1 import _exact_rank1, _rank1_ops, rank1_supported
from gendyn.elasticity.vmap import _exact_vmap, _kernel
from gendyn.runtime import eval_mode

__all__ = ["DEFAULT_DEN_EPS", "ElasticityParts", "local_elasticity", "local_elasticity_loop", "logits_module", "rank1_supported"]

logger = logging.getLogger(__name__)


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
    mem_budget_bytes: int | None = None,
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
    reduce : {"l2", "label", "signed"}
        L2 norm over all K logits (paper), ``|dz_y|`` at the update label y, or the signed
        change ``dz`` of a one-output model (K = 1; He & Su's forms,
        :func:`gendyn.elasticity.he_su.he_su_similarity`): then ``num``, ``den`` and ``le`` are
        signed and ``den_eps`` applies to ``|den|``.
    chunk : int, optional
        Update samples per batch (vmap engine, kernel form, and the rank-1 engine's
        denominators; the rank-1 engine takes the probes one update at a time); default
        from ``mem_budget_bytes``.
    dtype : torch.dtype, optional
        Compute dtype (default: the model's). ``torch.float64`` is recommended: the exact form
        subtracts nearly equal logits (relative error ~ eps ||z|| / ||dz||).
    mem_budget_bytes : int, optional
        Bytes one batched stage may hold; None: the job default
        (:func:`gendyn.parallel.mem_budget_bytes`, ``resources.analysis.mem_budget_mb``).
    den_eps : float, optional
        Denominators below this give NaN (never inf); default 1e-30 (float64) / 1e-20
        (float32).
    retry : (factor, max_tries), optional
        Retry rule for vanishing steps (exact form): rows whose denominator is below
        ``den_eps`` are recomputed with ``lr * factor**k``, k = 1..max_tries, until it is not;
        the step size used is returned in ``ElasticityParts.lr``.
    engine : {"auto", "vmap", "rank1"}
        Exact-form engine (see the module docstring); ``auto`` = ``rank1`` for plain MLPs
        (:func:`rank1_supported`).
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
    if reduce not in ("l2", "label", "signed"):
        raise ValueError(f"reduce: {reduce!r} is not allowed; choose 'l2', 'label' or 'signed'")
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
    N = xu.shape[0]
    loss1 = _loss_single(loss)
    itemsize = torch.empty((), dtype=cdtype).element_size()

    budget = _parallel.mem_budget_bytes() if mem_budget_bytes is None else int(mem_budget_bytes)
    job = _Job(xu, yu, xp, loss1, cdtype, device, reduce, chunk, budget, itemsize, progress)
    with eval_mode(model), torch.no_grad():
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
                    bad = torch.nonzero(den.abs() < eps).squeeze(1)
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
    ok = den.abs() >= eps
    le = torch.where(ok[:, None], num / torch.where(ok, den, torch.ones_like(den))[:, None], torch.full_like(num, float("nan")))
    if same.any():
        le[same & ok[:, None]] = 1.0
    rel = den.abs() / torch.linalg.vector_norm(zn.cpu(), dim=-1).clamp_min(torch.finfo(cdtype).tiny)
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
    base, dev, cdtype = working_copy(model, dtype)
    xu = x_update.detach().to(dev, cdtype)
    xp = x_probe.detach().to(dev, cdtype)
    yu = y_update.to(dev)
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
