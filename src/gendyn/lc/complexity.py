"""Local complexity (LC): density of linear-region boundaries around points (paper 001, Sec. 3).

A ReLU network is continuous and piecewise affine: the input space is cut into linear regions
by the zero sets of its pre-activations. LC counts how many of those boundaries pass through a
small neighbourhood of a point, and its trajectory over training shows the paper's descent /
ascent / second-descent phases.

:func:`local_complexity` is the paper's statistic. The neighbourhood of ``x`` is the
cross-polytope ``conv{x ± r v_p}`` spanned by ``P`` orthonormal directions
(:func:`orthonormal_directions`); its ``2P`` vertices go through one batched forward pass, and a
unit counts when its pre-activation is > 0 at some vertex and <= 0 at another. Counts are per
layer, in forward order. Pure functions on models and tensors (no files, no config).

Randomness: the directions come from a local ``torch.Generator`` seeded by ``seed``; the global
RNG states of torch (CPU and CUDA), NumPy and ``random`` are never touched.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn

from gendyn.runtime import eval_mode, on_device
from gendyn.sites import Site
from gendyn.sites import find_sites as _find_sites

__all__ = [
    "SITE_TYPES",
    "LINEAR_TYPES",
    "Site",
    "find_sites",
    "orthonormal_directions",
    "local_complexity",
    "model_logits",
]

logger = logging.getLogger(__name__)

#: Nonlinearities whose inputs are LC units (``count_sites="relu"``): the test is ``z > 0``.
SITE_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.GELU)
#: Modules whose outputs are LC units with ``count_sites="linear"`` (the authors' MLP code).
LINEAR_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

CountSites = Literal["relu", "linear"]


def find_sites(
    model: nn.Module, example: torch.Tensor, count_sites: CountSites | Literal["regions"] = "relu"
) -> list[Site]:
    """Counting sites of ``model`` in the order they fire in one forward pass.

    Parameters
    ----------
    model : nn.Module
    example : (n, *input_shape) tensor
        At least one input on the model's device and dtype; only ``example[:1]`` is used.
    count_sites : {"relu", "linear", "regions"}
        ``"relu"``: inputs of :data:`SITE_TYPES` modules; ``"linear"``: outputs of
        :data:`LINEAR_TYPES` modules (logits included); ``"regions"``: inputs of
        piecewise-linear activations and of ``nn.MaxPool1d/2d`` (exact region maps).

    Raises
    ------
    ValueError
        If there is no site, a site module runs twice in one forward (give each use its own
        module), ``count_sites`` is unknown, or a region map meets a GELU.
    """
    kind_of: Callable[[nn.Module], str | None]
    if count_sites == "relu":
        kind_of = lambda m: "relu" if isinstance(m, SITE_TYPES) else None  # noqa: E731
    elif count_sites == "linear":
        kind_of = lambda m: "linear" if isinstance(m, LINEAR_TYPES) else None  # noqa: E731
    elif count_sites == "regions":
        def kind_of(m: nn.Module) -> str | None:
            if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
                return "maxpool"
            return "relu" if isinstance(m, SITE_TYPES) else None
    else:
        raise ValueError(f"count_sites: {count_sites!r} is not one of 'relu', 'linear'")
    what = {"relu": "ReLU/LeakyReLU/PReLU/GELU module", "linear": "Linear/Conv module", "regions": "ReLU/max-pool module"}[count_sites]
    sites = _find_sites(model, example, kind_of, what=what)
    if count_sites == "regions":
        modules = dict(model.named_modules())
        bad = [s.module for s in sites if isinstance(modules[s.module], nn.GELU)]
        if bad:
            raise ValueError(f"region maps need piecewise-linear activations; {bad} are GELU (not piecewise linear)")
    return sites


# --------------------------------------------------------------------------- directions


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: {seed!r} is not a non-negative integer")
    return int(seed)


def _point_seed(seed: int, index: int) -> int:
    ss = np.random.SeedSequence([int(seed), 0x1C0, int(index)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _haar_rows(d: int, p: int, gen: torch.Generator) -> torch.Tensor:
    """(p, d) float64 rows of a Haar-random orthonormal frame (QR of a Gaussian, signs fixed)."""
    g = torch.randn(d, p, generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(g, mode="reduced")
    s = torch.sign(torch.diagonal(r))
    s[s == 0] = 1.0
    return (q * s).T.contiguous()


def orthonormal_directions(input_shape: Sequence[int], n_directions: int, seed: int) -> torch.Tensor:
    """Seeded Haar-random orthonormal directions, the same for every point and checkpoint.

    G ~ N(0, 1)^(d x P) from a local CPU ``torch.Generator(seed)`` in float64, ``Q, R = qr(G)``,
    ``Q <- Q sign(diag R)``, ``V = Q^T`` reshaped. Paper 001, Sec. 3.2 (first bullet).

    Parameters
    ----------
    input_shape : sequence of int
        Shape of one input (e.g. (1, 28, 28)); d = its product.
    n_directions : int
        P, 1 <= P <= d.
    seed : int

    Returns
    -------
    (P, *input_shape) float64 CPU tensor with orthonormal rows (V V^T = I to ~1e-15).
    """
    shape = tuple(int(s) for s in input_shape)
    d = int(math.prod(shape))
    if isinstance(n_directions, bool) or not isinstance(n_directions, (int, np.integer)) or not 1 <= n_directions <= d:
        raise ValueError(f"n_directions: {n_directions!r} must be an integer in [1, {d}] (the input dimension)")
    gen = torch.Generator(device="cpu").manual_seed(_check_seed(seed))
    return _haar_rows(d, int(n_directions), gen).reshape(int(n_directions), *shape)


def _check_directions(directions: torch.Tensor, input_shape: tuple[int, ...], tol: float = 1e-6) -> torch.Tensor:
    v = torch.as_tensor(directions)
    if v.ndim < 2 or tuple(v.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"directions: shape {tuple(v.shape)} does not match (P, *input_shape) = (P, {', '.join(map(str, input_shape))})"
        )
    flat = v.reshape(v.shape[0], -1).to(torch.float64).cpu()
    err = (flat @ flat.T - torch.eye(flat.shape[0], dtype=torch.float64)).abs().max().item()
    if err > tol:
        raise ValueError(
            f"directions: rows are not orthonormal (max |V V^T - I| = {err:.3g} > {tol:g}); "
            "orthonormalise them (e.g. torch.linalg.qr) or pass seed= instead"
        )
    return v


# --------------------------------------------------------------------------- LC


def _chunk_points(n_vertices: int, per_vertex_bytes: int, max_batch: int, mem_budget_bytes: int | None) -> int:
    n = max(1, max_batch // n_vertices)
    if mem_budget_bytes is not None:
        n = min(n, max(1, mem_budget_bytes // max(1, n_vertices * per_vertex_bytes)))
    return n


_AFFINE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _leading_affine(model: nn.Module) -> int | None:
    """Index of the first affine layer of a plain ``nn.Sequential`` whose earlier modules are only
    ``Identity`` / ``Flatten(1, -1)`` (the input reaches it unchanged but for a reshape), else None."""
    if not isinstance(model, nn.Sequential) or type(model).forward is not nn.Sequential.forward:
        return None
    for i, m in enumerate(model):
        if isinstance(m, _AFFINE_TYPES):
            return i
        if isinstance(m, nn.Identity) or (isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1):
            continue
        return None
    return None


def _affine_prefix(model: nn.Sequential, k: int, h: torch.Tensor, bias: bool) -> torch.Tensor:
    """Modules ``0..k`` of ``model`` applied functionally (no hooks fire); the affine layer ``k``
    without its bias when ``bias`` is False (its linear part)."""
    for m in list(model)[:k]:
        if isinstance(m, nn.Flatten):
            h = h.flatten(1)
    aff = model[k]
    b = aff.bias if bias else None
    if isinstance(aff, nn.Linear):
        return F.linear(h, aff.weight, b)
    return aff._conv_forward(h, aff.weight, b)  # type: ignore[operator]


def local_complexity(
    model: nn.Module,
    x: torch.Tensor,
    radius: float | Sequence[float],
    n_directions: int = 25,
    seed: int = 0,
    directions: torch.Tensor | None = None,
    *,
    count_sites: CountSites = "relu",
    include_center: bool = False,
    per_point: bool = False,
    max_batch: int = 10_000,
    mem_budget_bytes: int | None = None,
    device: str | torch.device | None = None,
    split_first_layer: bool = True,
) -> xr.DataArray:
    """Local complexity: per layer, the number of units whose boundary cuts the neighbourhood.

    For each point x_n the neighbourhood is the cross-polytope H = conv{x_n ± r v_p}, p = 1..P,
    with orthonormal directions V shared by all points. Its 2P vertices are forwarded in eval
    mode; unit k of layer l counts when ``z_lk > 0`` at one vertex and ``z_lk <= 0`` at another:
    LC_l(x) = #{k : the vertices disagree on [z_lk > 0]}. Paper 001, Sec. 3.2; LC(x) = sum_l LC_l.
    Layer 1 is exact (the hyperplane meets H iff ``|w.x + b| < r max_p |w.v_p|``); deeper layers
    see the embedded vertices only (a proxy).

    Parameters
    ----------
    model : nn.Module
        Any network; run in eval mode (BatchNorm uses running statistics) and restored to its
        previous mode afterwards. Its weights are not changed.
    x : (N, *input_shape) tensor
        Points, in the model's input units (after normalisation).
    radius : float or sequence of float
        r > 0 in input units. A sequence adds a leading ``radius`` dim (one pass per radius).
    n_directions : int
        P (default 25: 50 vertices, the authors' ``hull_n=50``). Ignored when ``directions``
        is given.
    seed : int
        Seed of the directions (:func:`orthonormal_directions`); the global RNG is untouched.
    directions : (P, *input_shape) tensor, optional
        Orthonormal rows (checked to 1e-6) that replace the seeded ones.
    count_sites : {"relu", "linear"}
        ``"relu"`` (default): units are the inputs of every ReLU/LeakyReLU/PReLU/GELU module
        (MLP neurons; conv units per (C, H, W); ResNet: after BN and after the residual sum).
        ``"linear"``: the outputs of every Linear/Conv module, logits included (the authors'
        MLP code).
    include_center : bool
        Also forward x itself (vertex 2P + 1).
    per_point : bool
        Independent directions per point (seeded per point index) instead of shared ones.
    max_batch : int
        At most this many vertices per forward (default 10000, the authors' batch).
    mem_budget_bytes : int, optional
        Also bound a chunk by this estimate of its memory (inputs + activations).
    device : str or torch.device, optional
        Where to compute; default the model's device. A model on another device is copied.
    split_first_layer : bool
        For an ``nn.Sequential`` that starts with an affine layer (Linear or Conv, after at most a
        Flatten): compute that layer's outputs at the vertices as ``(W x + b) ± r (W v_p)``
        without building the ``N·2P`` input vertices, and forward the rest of the network from
        there (default). False forwards the materialised vertices through the whole network.
        The two agree up to rounding (see Notes).

    Returns
    -------
    DataArray of int64, dims ("point", "layer") — or ("radius", "point", "layer") for a sequence
    of radii — with coords ``layer`` (stored site names, forward order), ``module`` and
    ``n_units`` on ``layer``, ``radius``; attrs ``radius``, ``n_directions``, ``seed``
    (-1 when ``directions`` were given), ``count_sites``, ``include_center``, ``per_point``,
    ``n_vertices``, ``definition``.

    Notes
    -----
    One forward of N·2P vertices in chunks (with ``split_first_layer``, a forward from the first
    affine layer's outputs, built as ``A[:, None] ± B[None]`` from ``A = W x + b`` (N points) and
    ``B = W (r V)`` (P directions)); a forward pre-hook (ReLU inputs, before any
    in-place op) reduces each chunk's (n, 2P, units) pre-activations with one max and one min
    over the vertex axis and keeps only the per-point counts, so no activation is stored. Ties: a vertex with z exactly
    0 counts as "off" (the authors' ``torch.sign`` differs only there). Float32 models can flip
    a unit whose boundary passes within rounding error of a vertex; use float64 when exact
    agreement matters. ``split_first_layer`` rounds the first layer's outputs differently from a
    forward of the vertices (``fl(Wx + b) + fl(W r v)`` instead of ``fl(W (x + r v) + b)``): a
    count can differ where a unit's pre-activation at the one vertex that sets it apart is
    within a few ulps of 0 (on the ``lc_quick`` runs in float32: docs/measures.md, "Fast path").

    Examples
    --------
    >>> lc = local_complexity(model, x_test, radius=1.0, n_directions=25, seed=0)  # doctest: +SKIP
    >>> lc.sum("layer").mean("point")                                               # mean LC
    """
    if count_sites not in ("relu", "linear"):
        raise ValueError(f"count_sites: {count_sites!r} is not one of 'relu', 'linear'")
    if isinstance(max_batch, bool) or not isinstance(max_batch, (int, np.integer)) or max_batch < 1:
        raise ValueError(f"max_batch: {max_batch!r} must be a positive integer")
    x = torch.as_tensor(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x: expected a non-empty batch (N, *input_shape), got shape {tuple(x.shape)}")
    scalar = not isinstance(radius, (Sequence, np.ndarray, torch.Tensor))
    radii = [float(radius)] if scalar else [float(r) for r in np.asarray(radius, dtype=np.float64).ravel()]
    if not radii or not all(math.isfinite(r) and r > 0 for r in radii):
        raise ValueError(f"radius: {radius!r} must be positive and finite")
    input_shape = tuple(x.shape[1:])
    if directions is not None:
        v64 = _check_directions(directions, input_shape)
        n_dir, seed_attr = int(v64.shape[0]), -1
    elif per_point:
        seed = _check_seed(seed)
        d = int(math.prod(input_shape))
        if not 1 <= n_directions <= d:
            raise ValueError(f"n_directions: {n_directions!r} must be an integer in [1, {d}] (the input dimension)")
        v64, n_dir, seed_attr = None, int(n_directions), seed
    else:
        v64 = orthonormal_directions(input_shape, n_directions, seed)
        n_dir, seed_attr = int(n_directions), int(seed)

    model, dev, dtype = on_device(model, device)
    n_vert = 2 * n_dir + int(include_center)
    n = x.shape[0]
    lead = _leading_affine(model) if split_first_layer and v64 is not None else None
    with eval_mode(model):
        x_dev = x.to(device=dev, dtype=dtype)
        sites = find_sites(model, x_dev[:1], count_sites)
        itemsize = torch.empty((), dtype=dtype).element_size()
        per_vertex = itemsize * (int(math.prod(input_shape)) + 3 * sum(s.n_units for s in sites))
        chunk = _chunk_points(n_vert, per_vertex, int(max_batch), mem_budget_bytes)
        # (radius, layer, point): each chunk writes one contiguous slice per layer
        counts = torch.zeros((len(radii), len(sites), n), dtype=torch.int64, device=dev)
        modules = dict(model.named_modules())
        state: dict[str, Any] = {"n": 0, "ri": 0, "lo": 0}

        def make_hook(j: int, kind: str) -> Callable[..., None]:
            def count(z: torch.Tensor) -> None:
                m = state["n"]
                zz = z.detach().reshape(m, n_vert, -1)
                # on at some vertex and off at another; separate amax/amin are far faster
                # than aminmax on CPU for a reduction over a strided middle dim
                changed = (zz.amax(dim=1) > 0).logical_and_(zz.amin(dim=1) <= 0)
                torch.sum(changed, dim=1, out=counts[state["ri"], j, state["lo"] : state["lo"] + m])

            if kind == "linear":
                return lambda _m, _i, out: count(out)
            return lambda _m, inputs: count(inputs[0])

        handles = []
        # with the split first layer, a site on that layer's output is counted by hand
        lead_site = None
        if lead is not None:
            lead_name = next(nm for nm, mm in modules.items() if mm is model[lead])
            lead_site = next((j for j, s in enumerate(sites) if s.kind == "linear" and s.module == lead_name), None)
        try:
            for j, s in enumerate(sites):
                if j == lead_site:
                    continue
                mod = modules[s.module]
                h = make_hook(j, s.kind)
                handles.append(mod.register_forward_hook(h) if s.kind == "linear" else mod.register_forward_pre_hook(h))
            with torch.inference_mode():
                v_dev = None if v64 is None else v64.to(device=dev, dtype=dtype)
                rest = None if lead is None else model[lead + 1 :]
                lead_count = None if lead_site is None else make_hook(lead_site, "linear")
                buf_all: torch.Tensor | None = None  # reused (chunk, n_vert, ...) buffer
                for ri, r in enumerate(radii):
                    rv = None if v_dev is None else v_dev * r
                    # split first layer: its outputs at x ± r v_p are A ± B, A = W x + b, B = W (r v_p)
                    b_lin = None if rest is None else _affine_prefix(model, lead, rv, bias=False).unsqueeze(0)
                    for lo in range(0, n, chunk):
                        m = min(chunk, n - lo)
                        state.update(n=m, ri=ri, lo=lo)
                        if b_lin is not None:
                            a = _affine_prefix(model, lead, x_dev[lo : lo + m], bias=True).unsqueeze(1)  # (m, 1, *out)
                            if buf_all is None:
                                buf_all = torch.empty((chunk, n_vert, *b_lin.shape[2:]), device=dev, dtype=dtype)
                            buf = buf_all[:m]
                            torch.add(a, b_lin, out=buf[:, :n_dir])
                            torch.sub(a, b_lin, out=buf[:, n_dir : 2 * n_dir])
                            if include_center:
                                buf[:, 2 * n_dir] = a[:, 0]
                            z = buf.reshape(m * n_vert, *b_lin.shape[2:])
                            if lead_count is not None:
                                lead_count(None, None, z)
                            rest(z)
                            continue
                        xc = x_dev[lo : lo + m].unsqueeze(1)
                        if rv is None:
                            rvc = torch.stack(
                                [
                                    _haar_rows(
                                        int(math.prod(input_shape)),
                                        n_dir,
                                        torch.Generator().manual_seed(_point_seed(seed, lo + i)),
                                    ).reshape(n_dir, *input_shape)
                                    for i in range(m)
                                ]
                            ).to(device=dev, dtype=dtype).mul_(r)
                        else:
                            rvc = rv.unsqueeze(0)
                        if buf_all is None:
                            buf_all = torch.empty((chunk, n_vert, *input_shape), device=dev, dtype=dtype)
                        buf = buf_all[:m]
                        torch.add(xc, rvc, out=buf[:, :n_dir])
                        torch.sub(xc, rvc, out=buf[:, n_dir : 2 * n_dir])
                        if include_center:
                            buf[:, 2 * n_dir] = x_dev[lo : lo + m]
                        model(buf.reshape(m * n_vert, *input_shape))
        finally:
            for h in handles:
                h.remove()
    data = counts.transpose(1, 2).cpu().numpy()
    coords: dict[str, Any] = {
        "point": np.arange(n),
        "layer": [s.name for s in sites],
        "module": ("layer", [s.module for s in sites]),
        "n_units": ("layer", np.array([s.n_units for s in sites], dtype=np.int64)),
    }
    attrs = {
        "radius": radii[0] if scalar else radii,
        "n_directions": n_dir,
        "seed": seed_attr,
        "count_sites": count_sites,
        "include_center": int(include_center),
        "per_point": int(per_point),
        "n_vertices": n_vert,
        "definition": "LC_l(x) = number of units of layer l whose pre-activation is > 0 at some vertex "
        "x ± r v_p and <= 0 at another (paper 001, Sec. 3.2)",
    }
    if scalar:
        out = xr.DataArray(data[0], dims=("point", "layer"), coords={**coords, "radius": radii[0]}, attrs=attrs)
    else:
        out = xr.DataArray(data, dims=("radius", "point", "layer"), coords={**coords, "radius": radii}, attrs=attrs)
    out.name = "lc"
    return out


# --------------------------------------------------------------------------- logits


def model_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's logits: its output, or the input of its ``nn.Softmax`` head if it has one."""
    soft = [m for m in model.modules() if isinstance(m, nn.Softmax)]
    if not soft:
        return model(x)
    got: list[torch.Tensor] = []
    h = soft[-1].register_forward_pre_hook(lambda _m, inputs: got.append(inputs[0]))
    try:
        model(x)
    finally:
        h.remove()
    return got[-1]
