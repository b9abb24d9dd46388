"""Exact linear regions of a network on a 2-D plane through input space (paper 001, Figs. 1, 12).

:func:`region_map` splits a convex polygon of a plane (:class:`Plane`: through three data points,
:func:`anchor_plane`, or spanned by two LC directions around a point, :func:`local_plane`) layer
by layer along every ReLU's zero line and every max-pool's argmax change, SplineCAM-like without
graph-tool. It works for any network built from affine maps, ReLU / LeakyReLU / PReLU,
max-pooling and skip connections. :func:`region_count` counts regions; :func:`raster_regions`
is the pixel-sampled cross-check; :func:`pattern_hashes` hashes activation patterns.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gendyn.lc.complexity import find_sites, model_logits
from gendyn.sites import Site
from gendyn.runtime import eval_mode, model_device_dtype

__all__ = ["Plane", "anchor_plane", "local_plane", "RegionMap", "region_map", "raster_regions", "region_count", "pattern_hashes"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plane:
    """A 2-D slice of input space: x(u, v) = origin + u a + v b for (u, v) in ``domain``.

    Attributes
    ----------
    origin, a, b : (*input_shape) float64 tensors
    domain : (m, 2) float64 array
        A convex polygon, counter-clockwise, in (u, v) coordinates.
    anchors : (k, 2) float64 array
        (u, v) of the data points that define the plane (drawn in figures).
    """

    origin: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    domain: np.ndarray
    anchors: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    def points(self, uv: np.ndarray) -> torch.Tensor:
        """Inputs at (M, 2) plane coordinates: (M, *input_shape) float64."""
        uv_t = torch.as_tensor(np.asarray(uv, dtype=np.float64))
        o, a, b = self.origin.to(torch.float64), self.a.to(torch.float64), self.b.to(torch.float64)
        shape = (-1,) + (1,) * o.ndim
        return o + uv_t[:, 0].reshape(shape) * a + uv_t[:, 1].reshape(shape) * b


def _ccw(poly: np.ndarray) -> np.ndarray:
    poly = np.asarray(poly, dtype=np.float64)
    return poly[::-1].copy() if _area_signed(poly) < 0 else poly.copy()


def anchor_plane(x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor, enlarge: float = 0.2) -> Plane:
    """The plane through three data points (paper 001, Fig. 1; SplineCAM's anchor slice).

    ``origin = x1``, ``a = x2 - x1``, ``b = x3 - x1``; the domain is the triangle (0,0), (1,0),
    (0,1) enlarged by ``enlarge`` (20 %) about its centroid, so the anchors sit inside it.
    """
    x1, x2, x3 = (torch.as_tensor(t).to(torch.float64).cpu() for t in (x1, x2, x3))
    tri = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    c = tri.mean(0)
    dom = c + (1.0 + float(enlarge)) * (tri - c)
    return Plane(x1, x2 - x1, x3 - x1, _ccw(dom), anchors=tri)


def local_plane(x: torch.Tensor, directions: torch.Tensor, radius: float) -> Plane:
    """The plane through x spanned by r v_1, r v_2 over the square [-1, 1]^2 (paper 001, Fig. 12)."""
    x = torch.as_tensor(x).to(torch.float64).cpu()
    v = torch.as_tensor(directions).to(torch.float64).cpu()
    if v.shape[0] < 2:
        raise ValueError(f"directions: a local plane needs at least 2 directions, got {v.shape[0]}")
    sq = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    return Plane(x, float(radius) * v[0], float(radius) * v[1], sq, anchors=np.zeros((1, 2)))


# --------------------------------------------------------------------------- polygon maths


def _area_signed(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(x[:-1] @ y[1:] - x[1:] @ y[:-1] + x[-1] * y[0] - x[0] * y[-1])


def _area(poly: np.ndarray) -> float:
    return abs(_area_signed(poly)) if len(poly) >= 3 else 0.0


def _centroid(poly: np.ndarray) -> np.ndarray:
    """Area centroid of a convex polygon (an interior point)."""
    x, y = poly[:, 0], poly[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cr = x * yn - xn * y
    a = cr.sum() / 2.0
    if abs(a) < 1e-300:
        return poly.mean(0)
    return np.array([((x + xn) * cr).sum(), ((y + yn) * cr).sum()]) / (6.0 * a)


def _sign(vals: np.ndarray, tol: float) -> np.ndarray:
    s = np.zeros(vals.shape, dtype=np.int8)
    s[vals > tol] = 1
    s[vals < -tol] = -1
    return s


def _clip(
    poly: np.ndarray, labels: np.ndarray, vals: np.ndarray, s: np.ndarray, new_label: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the part of a convex polygon where the affine f >= 0 (Sutherland-Hodgman).

    ``vals``/``s`` are f and its tolerant sign at the vertices; ``labels[e]`` labels the edge
    from vertex e to e + 1, and edges on the cut line get ``new_label``.
    """
    out_v: list[np.ndarray] = []
    out_l: list[int] = []
    m = len(poly)
    for e in range(m):
        q_i = e + 1 if e + 1 < m else 0
        sp, sq = s[e], s[q_i]
        if sp >= 0:
            out_v.append(poly[e])
            if sq < 0:
                if sp > 0:
                    out_l.append(int(labels[e]))
                    t = vals[e] / (vals[e] - vals[q_i])
                    out_v.append(poly[e] + t * (poly[q_i] - poly[e]))
                out_l.append(new_label)
            else:
                out_l.append(int(labels[e]))
        elif sq > 0:
            t = vals[e] / (vals[e] - vals[q_i])
            out_v.append(poly[e] + t * (poly[q_i] - poly[e]))
            out_l.append(int(labels[e]))
    if len(out_v) < 3:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    return np.array(out_v), np.array(out_l, dtype=np.int64)


def _fit_affine(poly: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Affine functions f(p) = (p - c) @ coef[:2] + coef[2] through vertex values (m, K)."""
    c = poly.mean(0)
    design = np.column_stack([poly - c, np.ones(len(poly))])
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    return c, coef


# --------------------------------------------------------------------------- region maps


@dataclass(frozen=True)
class RegionMap:
    """Exact linear regions of a network on a 2-D plane.

    Attributes
    ----------
    polygons : tuple of (m_i, 2) float64 arrays
        The regions: convex polygons, counter-clockwise, in plane coordinates (u, v).
    patterns : (R,) int64
        Hash of each region's activation pattern (ReLU signs and max-pool argmaxes), from
        its centroid; distinct regions have distinct patterns.
    classes : (R,) int64
        Predicted class (argmax of the logits) at each region's centroid.
    boundary : (S, 2, 2) float64
        Decision-boundary segments [[u0, v0], [u1, v1]]: where the top logit changes, exact
        within each region (zero sets of logit_c - logit_c').
    domain : (m, 2) float64
    anchors : (k, 2) float64
    sites : tuple of str
        Split sites in forward order.
    n_regions_per_site : tuple of int
        Region count after each site (the last equals ``n_regions``).
    """

    polygons: tuple[np.ndarray, ...]
    patterns: np.ndarray
    classes: np.ndarray
    boundary: np.ndarray
    domain: np.ndarray
    anchors: np.ndarray
    sites: tuple[str, ...]
    n_regions_per_site: tuple[int, ...]

    @property
    def n_regions(self) -> int:
        return len(self.polygons)

    def areas(self) -> np.ndarray:
        return np.array([_area(p) for p in self.polygons])


class _Stop(Exception):
    """Ends a forward pass once the wanted site has been read."""


def _site_values(
    model: nn.Module,
    plane: Plane,
    site: Site | None,
    uv: np.ndarray,
    dev: torch.device,
    batch: int,
) -> np.ndarray:
    """Values at one site for plane points (M, 2): (M, units), (M, windows, k) or logits (M, C)."""
    out: list[np.ndarray] = []
    if site is None:
        with torch.no_grad():
            for lo in range(0, len(uv), batch):
                xb = plane.points(uv[lo : lo + batch]).to(dev)
                out.append(model_logits(model, xb).to(torch.float64).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0))
    mod = model.get_submodule(site.module)
    grabbed: list[torch.Tensor] = []

    def pre(m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        z = inputs[0]
        if site.kind == "maxpool":
            grabbed.append(_pool_windows(m, z))
        else:
            grabbed.append(z.reshape(z.shape[0], -1))
        raise _Stop

    h = mod.register_forward_pre_hook(pre)
    try:
        with torch.no_grad():
            for lo in range(0, len(uv), batch):
                xb = plane.points(uv[lo : lo + batch]).to(dev)
                try:
                    model(xb)
                except _Stop:
                    pass
                out.append(grabbed.pop().to(torch.float64).cpu().numpy())
    finally:
        h.remove()
    return np.concatenate(out)


def _pool_windows(pool: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Max-pool candidates: (n, *in) -> (n, windows, k); replicate padding keeps the max."""

    def pair(v: Any) -> tuple[int, int]:
        return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))

    if getattr(pool, "ceil_mode", False) or getattr(pool, "return_indices", False):
        raise ValueError(f"{type(pool).__name__}: ceil_mode/return_indices are not supported by region maps")
    if isinstance(pool, nn.MaxPool1d):
        z = z.unsqueeze(-2)
        k, s, p, d = (1, int(pool.kernel_size)), (1, int(pool.stride)), (0, int(pool.padding)), (1, int(pool.dilation))
    else:
        k, s, p, d = pair(pool.kernel_size), pair(pool.stride), pair(pool.padding), pair(pool.dilation)
    if d != (1, 1) and p != (0, 0):
        # replicate padding keeps the window max only when every padded cell's source is in the window
        raise ValueError(f"{type(pool).__name__}: dilation together with padding is not supported by region maps")
    if p != (0, 0):
        n, c, hh, ww = z.shape
        z = F.pad(z.reshape(n * c, 1, hh, ww), (p[1], p[1], p[0], p[0]), mode="replicate").reshape(
            n, c, hh + 2 * p[0], ww + 2 * p[1]
        )
    span = ((k[0] - 1) * d[0] + 1, (k[1] - 1) * d[1] + 1)
    win = z.unfold(2, span[0], s[0]).unfold(3, span[1], s[1])[..., :: d[0], :: d[1]]  # (n, c, oh, ow, kh, kw)
    return win.reshape(win.shape[0], -1, k[0] * k[1])


def pattern_hashes(model: nn.Module, x: torch.Tensor, *, batch: int = 4096) -> np.ndarray:
    """Hash of each input's activation pattern: ReLU signs (z > 0) and max-pool argmaxes.

    Parameters
    ----------
    model : nn.Module
    x : (N, *input_shape) tensor

    Returns
    -------
    (N,) int64 (8-byte BLAKE2b of the concatenated pattern).

    Notes
    -----
    A unit is "on" when z > 1e-12 max|z| of its site (for that input), and a window's argmax
    is the first candidate within rounding of the maximum: functions that are exactly 0 or
    exactly tied then hash the same wherever rounding noise falls.
    """
    dev, dtype = model_device_dtype(model)
    sites = find_sites(model, x[:1].to(dev, dtype), "regions")
    mods = {s.module: model.get_submodule(s.module) for s in sites}
    parts: list[np.ndarray] = []
    hashes: list[np.ndarray] = []

    def make(site: Site) -> Callable[..., None]:
        def pre(m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            # Values within rounding of a tie (1e-12 of the site's largest |value| for this
            # input, 1e-9 of the window's) count as ties, as in region_map, so the hash does
            # not depend on rounding noise of functions that are exactly 0 or exactly equal.
            z = inputs[0]
            if site.kind == "maxpool":
                w = _pool_windows(m, z)
                site_tol = 1e-12 * w.abs().amax(dim=(1, 2), keepdim=True)
                tol = torch.maximum(1e-9 * w.abs().amax(dim=2, keepdim=True), site_tol)
                first = (w >= w.amax(dim=2, keepdim=True) - tol).to(torch.uint8).argmax(-1)
                parts.append(first.to(torch.int16).cpu().numpy().view(np.uint8).reshape(len(z), -1))
            else:
                zf = z.reshape(len(z), -1)
                on = zf > 1e-12 * zf.abs().amax(dim=1, keepdim=True)
                parts.append(np.packbits(on.cpu().numpy(), axis=1))

        return pre

    handles = [mods[s.module].register_forward_pre_hook(make(s)) for s in sites]
    try:
        with eval_mode(model), torch.no_grad():
            for lo in range(0, len(x), batch):
                parts.clear()
                model(x[lo : lo + batch].to(dev, dtype))
                rows = np.ascontiguousarray(np.concatenate(parts, axis=1))
                hashes.append(
                    np.array(
                        [int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(), "little", signed=True) for r in rows],
                        dtype=np.int64,
                    )
                )
    finally:
        for h in handles:
            h.remove()
    return np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.int64)


def _relu_split(
    pieces: list[np.ndarray], values: np.ndarray, offsets: np.ndarray, area_min: float
) -> list[np.ndarray]:
    """Split each region by the zero lines of its units; ``values`` (M, U) at all vertices."""
    out: list[np.ndarray] = []
    floor = 1e-12 * float(np.abs(values).max(initial=0.0))  # rounding noise of the whole site
    for i, poly in enumerate(pieces):
        z = values[offsets[i] : offsets[i + 1]]
        scale = np.abs(z).max(0)
        tol = np.maximum(1e-9 * scale, floor)
        cross = np.flatnonzero((z > tol).any(0) & (z < -tol).any(0))
        if not len(cross):
            out.append(poly)
            continue
        c, coef = _fit_affine(poly, z[:, cross])
        sub = [poly]
        for j, k in enumerate(cross):
            w, t = coef[:, j], tol[k]
            nxt: list[np.ndarray] = []
            if len(sub) > 1:
                allv = np.concatenate(sub)
                vals_all = (allv - c) @ w[:2] + w[2]
                starts = np.cumsum([0] + [len(p) for p in sub[:-1]])
                hit = (np.maximum.reduceat(vals_all, starts) > t) & (np.minimum.reduceat(vals_all, starts) < -t)
            else:
                hit = np.array([True])
            for q, piece in enumerate(sub):
                if not hit[q]:
                    nxt.append(piece)
                    continue
                vals = (piece - c) @ w[:2] + w[2]
                s = _sign(vals, t)
                if not ((s > 0).any() and (s < 0).any()):
                    nxt.append(piece)
                    continue
                lab = np.zeros(len(piece), dtype=np.int64)
                for part in (_clip(piece, lab, vals, s, 0)[0], _clip(piece, lab, -vals, -s, 0)[0]):
                    if _area(part) > area_min:
                        nxt.append(part)
            sub = nxt
        out.extend(sub)
    return out


def _envelope_cells(
    piece: np.ndarray, c: np.ndarray, coef: np.ndarray, tol: float, area_min: float
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Cells {f_i >= f_j for all j} of the upper envelope of affine f (coef (3, k)) on a piece.

    Returns (candidate index, polygon, edge labels) for every non-empty cell; an edge created
    by the constraint against candidate j carries label j + 1 (0 = an edge of the piece).
    """
    vals = (piece - c) @ coef[:2] + coef[2]  # (m, k)
    top = vals.max(1, keepdims=True)
    active = vals >= top - tol
    dom = np.flatnonzero(active.all(0))
    if len(dom):
        return [(int(dom[0]), piece, np.zeros(len(piece), dtype=np.int64))]
    # A candidate can top the envelope inside the piece without topping it at any vertex, so
    # every candidate is tried, except those strictly below another one at every vertex.
    below = ((vals[:, None, :] - vals[:, :, None]) > tol).all(0)  # below[a, b]: f_a < f_b everywhere
    cand = np.flatnonzero(~below.any(1))
    # candidates equal to an earlier one everywhere on the piece are the same affine function
    keep: list[int] = []
    for i in cand:
        if not any(np.all(np.abs(vals[:, i] - vals[:, j]) <= tol) for j in keep):
            keep.append(int(i))
    cells = []
    for i in keep:
        poly, lab = piece, np.zeros(len(piece), dtype=np.int64)
        for j in keep:
            if j == i:
                continue
            if not len(poly):
                break
            diff_coef = coef[:, i] - coef[:, j]
            d = (poly - c) @ diff_coef[:2] + diff_coef[2]
            s = _sign(d, tol)
            if (s < 0).any():
                poly, lab = _clip(poly, lab, d, s, j + 1)
        if len(poly) and _area(poly) > area_min:
            cells.append((i, poly, lab))
    return cells


def _maxpool_split(
    pieces: list[np.ndarray], values: np.ndarray, offsets: np.ndarray, area_min: float
) -> list[np.ndarray]:
    """Split each region where the argmax of some max-pool window changes; values (M, W, k)."""
    out: list[np.ndarray] = []
    floor = 1e-12 * float(np.abs(values).max(initial=0.0))  # rounding noise of the whole site
    for i, poly in enumerate(pieces):
        cvals = values[offsets[i] : offsets[i + 1]]  # (m, W, k)
        scale = np.abs(cvals).max(axis=(0, 2))  # (W,)
        tol = np.maximum(1e-9 * scale, floor)
        top = cvals.max(2)
        active = cvals >= (top - tol[None, :])[:, :, None]
        change = np.flatnonzero(~active.all(0).any(1))
        if not len(change):
            out.append(poly)
            continue
        sub = [poly]
        for w in change:
            c, coef = _fit_affine(poly, cvals[:, w, :])
            nxt: list[np.ndarray] = []
            for piece in sub:
                nxt.extend(p for _, p, _ in _envelope_cells(piece, c, coef, tol[w], area_min))
            sub = nxt
        out.extend(sub)
    return out


def region_map(
    model: nn.Module,
    plane: Plane,
    *,
    decision_boundary: bool = True,
    device: str | torch.device | None = "cpu",
    batch: int = 4096,
    area_tol: float = 1e-12,
) -> RegionMap:
    """Exact linear regions of ``model`` on a 2-D plane (paper 001, Fig. 1 and Fig. 12).

    Regions start as the plane's domain polygon. For each site in forward order (ReLU-like
    inputs and max-pool inputs), the network restricted to a current region is affine, so every
    unit's pre-activation is an affine function of (u, v) there; it is read at the region's
    vertices (exact by continuity) and each unit whose sign changes across the vertices splits
    the region along its zero line (half-plane clipping). A max-pool window whose argmax is not
    constant splits the region into the cells of its upper envelope. Skip connections, BatchNorm
    (eval), average pooling and other affine maps need nothing special. Pieces with area below
    ``area_tol`` times the domain's are dropped. Everything runs in float64 (a float64 copy of
    the model); unlike LC it is exact but 2-D only and much slower.

    Parameters
    ----------
    model : nn.Module
        Network of affine maps, ReLU/LeakyReLU/PReLU, max-pooling; eval mode is used.
    plane : Plane
        From :func:`anchor_plane`, :func:`local_plane` or built by hand.
    decision_boundary : bool
        Also compute the decision-boundary segments.
    device : str or torch.device
        Where the forward passes run (default CPU).
    batch : int
        Points per forward pass.
    area_tol : float
        Relative area below which a piece is discarded (rounding slivers).

    Returns
    -------
    RegionMap
    """
    dev = torch.device(device) if device is not None else model_device_dtype(model)[0]
    m64 = copy.deepcopy(model).to(device=dev, dtype=torch.float64).eval()
    dom = _ccw(plane.domain)
    area_min = float(area_tol) * _area(dom)
    example = plane.points(_centroid(dom)[None]).to(dev)
    sites = find_sites(m64, example, "regions")
    pieces: list[np.ndarray] = [dom]
    per_site: list[int] = []
    for site in sites:
        lens = np.array([len(p) for p in pieces])
        offsets = np.concatenate([[0], np.cumsum(lens)])
        # adjacent pieces share vertices (bit-identical: computed by the same clip), so each
        # distinct vertex is forwarded once
        uniq, inv = np.unique(np.concatenate(pieces), axis=0, return_inverse=True)
        vals = _site_values(m64, plane, site, uniq, dev, batch)[inv.reshape(-1)]
        if site.kind == "maxpool":
            pieces = _maxpool_split(pieces, vals, offsets, area_min)
        else:
            pieces = _relu_split(pieces, vals, offsets, area_min)
        per_site.append(len(pieces))
        logger.debug("region map: %d regions after %s", len(pieces), site.name)
    cents = np.array([_centroid(p) for p in pieces])
    patterns = pattern_hashes(m64, plane.points(cents).to(dev), batch=batch)
    logits_c = _site_values(m64, plane, None, cents, dev, batch)
    classes = logits_c.argmax(1).astype(np.int64)
    segs: list[np.ndarray] = []
    if decision_boundary:
        lens = np.array([len(p) for p in pieces])
        offsets = np.concatenate([[0], np.cumsum(lens)])
        logits_v = _site_values(m64, plane, None, np.concatenate(pieces), dev, batch)
        for i, poly in enumerate(pieces):
            lv = logits_v[offsets[i] : offsets[i + 1]]
            tol = 1e-9 * max(float(np.abs(lv).max()), 1e-300)
            c, coef = _fit_affine(poly, lv)
            cells = _envelope_cells(poly, c, coef, tol, area_min * 1e-3)
            if len(cells) < 2:
                continue
            present = {ci for ci, _, _ in cells}
            for ci, cp, lab in cells:
                for e in np.flatnonzero(lab > 0):
                    other = int(lab[e]) - 1
                    if other in present and ci < other:
                        segs.append(np.array([cp[e], cp[(e + 1) % len(cp)]]))
    return RegionMap(
        polygons=tuple(pieces),
        patterns=patterns,
        classes=classes,
        boundary=np.array(segs).reshape(-1, 2, 2),
        domain=dom,
        anchors=np.asarray(plane.anchors, dtype=np.float64).reshape(-1, 2),
        sites=tuple(s.name for s in sites),
        n_regions_per_site=tuple(per_site),
    )


def _inside(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points (M, 2) strictly inside a CCW convex polygon."""
    inside = np.ones(len(pts), dtype=bool)
    for e in range(len(poly)):
        p, q = poly[e], poly[(e + 1) % len(poly)]
        cross = (q[0] - p[0]) * (pts[:, 1] - p[1]) - (q[1] - p[1]) * (pts[:, 0] - p[0])
        inside &= cross > 0
    return inside


def raster_regions(
    model: nn.Module, plane: Plane, resolution: int = 512, *, device: str | torch.device | None = "cpu", batch: int = 4096
) -> tuple[int, np.ndarray, np.ndarray]:
    """Cross-check of :func:`region_map` on a grid (tests only).

    Samples a ``resolution`` x ``resolution`` grid over the domain's bounding box, keeps the
    points inside the domain and hashes their activation patterns. Activation regions are
    convex, so each region hit by the grid shows up as exactly one distinct pattern: the count
    of distinct patterns is <= the exact count (regions missed by the grid are lost). Counting
    4-connected pixel components instead can exceed it (a thin diagonal sliver falls apart
    into several components), so distinct patterns are counted.

    Returns
    -------
    n_regions : int
    uv : (M, 2) float64 grid points inside the domain
    hashes : (M,) int64 their patterns
    """
    dom = _ccw(plane.domain)
    lo, hi = dom.min(0), dom.max(0)
    us = lo[0] + (np.arange(resolution) + 0.5) * (hi[0] - lo[0]) / resolution
    vs = lo[1] + (np.arange(resolution) + 0.5) * (hi[1] - lo[1]) / resolution
    uu, vv = np.meshgrid(us, vs, indexing="xy")
    uv = np.column_stack([uu.ravel(), vv.ravel()])
    uv = uv[_inside(dom, uv)]
    dev = torch.device(device) if device is not None else model_device_dtype(model)[0]
    m64 = copy.deepcopy(model).to(device=dev, dtype=torch.float64).eval()
    hashes = np.concatenate(
        [pattern_hashes(m64, plane.points(uv[i : i + batch]).to(dev), batch=batch) for i in range(0, len(uv), batch)]
    ) if len(uv) else np.zeros(0, dtype=np.int64)
    return int(len(np.unique(hashes))), uv, hashes


def region_count(
    model: nn.Module,
    plane: Plane,
    method: Literal["exact", "raster"] = "exact",
    *,
    resolution: int = 512,
    device: str | torch.device | None = "cpu",
) -> int:
    """Number of linear regions on the plane: exact (:func:`region_map`) or ``"raster"`` (<= exact)."""
    if method == "exact":
        return region_map(model, plane, decision_boundary=False, device=device).n_regions
    if method == "raster":
        return raster_regions(model, plane, resolution, device=device)[0]
    raise ValueError(f"method: {method!r} is not one of 'exact', 'raster'")
