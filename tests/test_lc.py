"""Local complexity (paper 001): oracles first, then the batched estimator, region maps, PGD,
the analysis stages and the quick experiment's phases on real (reduced) runs."""

from __future__ import annotations

import math
import random
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

import gendyn
from gendyn import store
from gendyn.cli import main as cli_main
from gendyn.config import load_yaml, validate_config, validate_run
from gendyn.lc import (
    Plane,
    anchor_plane,
    find_sites,
    local_complexity,
    local_plane,
    orthonormal_directions,
    pgd_attack,
    raster_regions,
    region_count,
    region_map,
    robust_accuracy,
)
from gendyn.lc.regions import _inside
from gendyn.models import build_model
from gendyn.train import train_run

from conftest import tiny_run_config

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- helpers


def _randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters, as after training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g, dtype=m.running_mean.dtype) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g, dtype=m.running_var.dtype) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g, dtype=m.weight.dtype) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g, dtype=m.bias.dtype) * 0.2 - 0.1)
    return model


def _model(name: str, shape: tuple[int, ...], seed: int = 0, **cfg) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        m = build_model({"name": name, "dtype": "float64", **cfg}, shape, 3)
    return _randomise_bn(m, seed).eval()


def _naive_lc(model: nn.Module, x: torch.Tensor, radius: float, v: torch.Tensor, sites: str = "relu") -> np.ndarray:
    """One vertex at a time: forward hooks store which units are on, Python sets do the rest."""
    kinds = (nn.ReLU,) if sites == "relu" else (nn.Linear, nn.Conv2d)
    mods = [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]
    seen: dict[str, torch.Tensor] = {}
    if sites == "relu":
        hooks = [m.register_forward_pre_hook(lambda mod, inp, n=n: seen.__setitem__(n, inp[0].detach())) for n, m in mods]
    else:
        hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: seen.__setitem__(n, out.detach())) for n, m in mods]
    order: list[str] = []
    out = []
    try:
        with torch.no_grad():
            for xi in x:
                on_sets: dict[str, list[set[int]]] = {}
                for p in range(v.shape[0]):
                    for sign in (1.0, -1.0):
                        seen.clear()
                        model((xi + sign * radius * v[p]).unsqueeze(0))
                        if not order:
                            order = list(seen)  # dict order = firing order
                        for name, z in seen.items():
                            on = set(np.flatnonzero((z.reshape(-1) > 0).numpy()).tolist())
                            on_sets.setdefault(name, []).append(on)
                row = []
                for name in order:
                    sets = on_sets[name]
                    union = set().union(*sets)
                    inter = set.intersection(*sets)
                    row.append(len(union - inter))
                out.append(row)
    finally:
        for h in hooks:
            h.remove()
    return np.array(out)


# --------------------------------------------------------------------------- directions


def test_directions_are_orthonormal_seeded_and_shaped():
    v = orthonormal_directions((1, 6, 5), 12, seed=3)
    assert v.shape == (12, 1, 6, 5) and v.dtype == torch.float64
    flat = v.reshape(12, -1)
    assert torch.allclose(flat @ flat.T, torch.eye(12, dtype=torch.float64), atol=1e-10, rtol=0)
    assert torch.equal(v, orthonormal_directions((1, 6, 5), 12, seed=3))
    assert not torch.allclose(v, orthonormal_directions((1, 6, 5), 12, seed=4))
    with pytest.raises(ValueError, match="n_directions"):
        orthonormal_directions((2, 2), 5, seed=0)


# --------------------------------------------------------------------------- exact oracle


@pytest.mark.parametrize("identity", [True, False], ids=["V=I", "seeded V"])
def test_one_hidden_layer_equals_hyperplane_cut_oracle(identity):
    """LC_1(x) = #{k : |w_k.x + b_k| < r max_p |w_k.v_p|}, exactly, point by point."""
    g = torch.Generator().manual_seed(0)
    d, m, r = 12, 40, 0.7
    net = nn.Sequential(nn.Linear(d, m), nn.ReLU(), nn.Linear(m, 4)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.randn(m, d, generator=g, dtype=torch.float64))
        net[0].bias.copy_(torch.randn(m, generator=g, dtype=torch.float64))
    x = torch.randn(200, d, generator=g, dtype=torch.float64)
    v = torch.eye(d, dtype=torch.float64) if identity else orthonormal_directions((d,), 7, seed=5)
    lc = local_complexity(net, x, r, directions=v)
    w, b = net[0].weight.detach(), net[0].bias.detach()
    reach = r * (w @ v.T).abs().max(1).values  # (m,)
    margin = (x @ w.T + b).abs()  # (N, m)
    near = ((margin - reach).abs() < 1e-9).any(1)
    want = (margin < reach).sum(1).numpy()
    assert near.sum() < 5
    np.testing.assert_array_equal(lc.values[~near.numpy(), 0], want[~near.numpy()])
    assert 0 < want.mean() < m  # the oracle is not trivial


# --------------------------------------------------------------------------- naive loop


@pytest.mark.parametrize(
    "name, shape, cfg, sites",
    [
        ("mlp", (1, 5, 5), {"depth": 3, "width": 12, "bn": True}, "relu"),
        ("mlp", (1, 5, 5), {"depth": 2, "width": 12}, "linear"),
        ("cnn", (1, 8, 8), {"depth": 2, "width": 3, "bn": True}, "relu"),
        ("resnet18", (1, 8, 8), {"width_factor": 0.0625, "bn": True, "stem": "imagenet"}, "relu"),
        ("convonly", (1, 6, 6), {"depth": 3, "width": 3, "bn": True}, "relu"),
        ("convonly", (1, 6, 6), {"depth": 2, "width": 3}, "linear"),
        ("preact_resnet18", (1, 8, 8), {"width_factor": 0.0625, "bn": True}, "relu"),
        ("preact_resnet18", (1, 8, 8), {"width_factor": 0.0625}, "relu"),
    ],
    ids=["mlp-bn", "mlp-linear-sites", "cnn-bn-maxpool", "resnet18-skips", "convonly-bn-gap", "convonly-linear-sites",
         "preact-resnet18-bn", "preact-resnet18-no-bn"],
)
def test_batched_lc_equals_naive_vertex_loop(name, shape, cfg, sites):
    model = _model(name, shape, **cfg)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, *shape, generator=g, dtype=torch.float64)
    v = orthonormal_directions(shape, 4, seed=2)
    want = _naive_lc(model, x, 0.3, v, sites)
    got = local_complexity(model, x, 0.3, directions=v, count_sites=sites, max_batch=7)
    assert list(got["layer"].values) == [s.name for s in find_sites(model, x, sites)]
    np.testing.assert_array_equal(got.values, want)
    assert want.sum() > 0
    if sites == "linear":  # the logits are counted too
        assert got["layer"].values[-1] == {"mlp": "out", "convonly": "fc"}[name] and got.sizes["layer"] == cfg["depth"] + 1


def test_include_center_and_per_point_match_the_naive_loop():
    model = _model("mlp", (6,), depth=2, width=10)
    x = torch.rand(5, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    v = orthonormal_directions((6,), 3, seed=0)
    # the centre lies inside the cross-polytope: adding it never changes a sign-change count
    with_c = local_complexity(model, x, 0.5, directions=v, include_center=True)
    np.testing.assert_array_equal(with_c.values, _naive_lc(model, x, 0.5, v))
    a = local_complexity(model, x, 0.5, n_directions=3, seed=9, per_point=True, max_batch=6)
    b = local_complexity(model, x, 0.5, n_directions=3, seed=9, per_point=True, max_batch=1000)
    np.testing.assert_array_equal(a.values, b.values)
    shared = local_complexity(model, x, 0.5, n_directions=3, seed=9)
    assert not np.array_equal(a.values, shared.values) or a.values.sum() == 0


# --------------------------------------------------------------------------- contract


def test_output_contract_dims_attrs_and_radius_dim():
    model = _model("cnn", (1, 8, 8), depth=2, width=3)
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lc = local_complexity(model, x, 0.2, n_directions=5, seed=1)
    assert lc.dims == ("point", "layer")
    assert list(lc["layer"].values) == ["relu1", "relu2"]
    assert list(lc["n_units"].values) == [3 * 8 * 8, 3 * 4 * 4]
    assert lc.dtype == np.int64
    assert {"radius", "n_directions", "seed", "count_sites"} <= set(lc.attrs)
    assert lc.attrs["radius"] == 0.2 and lc.attrs["n_directions"] == 5 and lc.attrs["seed"] == 1
    assert (lc >= 0).all() and (lc <= lc["n_units"]).all()
    both = local_complexity(model, x, [0.2, 2.0], n_directions=5, seed=1)
    assert both.dims == ("radius", "point", "layer") and list(both["radius"].values) == [0.2, 2.0]
    np.testing.assert_array_equal(both.sel(radius=0.2).values, lc.values)


def test_chunk_size_and_memory_budget_do_not_change_the_result():
    model = _model("mlp", (1, 5, 5), depth=3, width=16)
    x = torch.rand(23, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = local_complexity(model, x, 0.4, n_directions=6, seed=0).values
    for kw in ({"max_batch": 1}, {"max_batch": 13}, {"max_batch": 10_000}, {"mem_budget_bytes": 1}):
        np.testing.assert_array_equal(local_complexity(model, x, 0.4, n_directions=6, seed=0, **kw).values, ref)


@pytest.mark.parametrize(
    "name, shape, cfg, sites, center",
    [
        ("mlp", (1, 5, 5), {"depth": 3, "width": 16}, "relu", False),
        ("mlp", (1, 5, 5), {"depth": 2, "width": 16, "bn": True}, "relu", True),
        ("mlp", (1, 5, 5), {"depth": 2, "width": 16}, "linear", True),
        ("cnn", (1, 8, 8), {"depth": 2, "width": 3, "bn": True}, "relu", False),
        ("convonly", (1, 6, 6), {"depth": 2, "width": 3}, "linear", False),
    ],
    ids=["mlp", "mlp-bn-center", "mlp-linear-sites-center", "cnn-conv-first", "convonly-linear-sites"],
)
def test_split_first_layer_equals_the_forward_of_the_vertices(name, shape, cfg, sites, center):
    """(W x + b) ± W (r v) for the first affine layer, then the rest of the network, gives the counts
    of forwarding the materialised vertices (float64: rounding differences stay far from 0), and
    the first layer itself never sees the N·2P vertices."""
    model = _model(name, shape, **cfg)
    x = torch.rand(17, *shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    v = orthonormal_directions(shape, 5, seed=1)
    kw = {"directions": v, "count_sites": sites, "include_center": center, "max_batch": 33}
    calls: list[int] = []
    first = next(m for m in model if isinstance(m, (nn.Linear, nn.Conv2d)))
    h = first.register_forward_hook(lambda _m, inp, _out: calls.append(len(inp[0])))
    try:
        split = local_complexity(model, x, [0.05, 0.5], **kw)
        assert calls == [1]  # one example finds the sites; the first layer is then computed functionally
        calls.clear()
        vertices = local_complexity(model, x, [0.05, 0.5], split_first_layer=False, **kw)
        assert calls[0] == 1 and sum(calls[1:]) == 2 * 17 * (10 + int(center))  # 2 radii, 17 points
    finally:
        h.remove()
    np.testing.assert_array_equal(split.values, vertices.values)
    assert split.values.sum() > 0 and list(split["layer"].values) == list(vertices["layer"].values)


def test_split_first_layer_is_skipped_where_it_does_not_apply():
    """Per-point directions and non-sequential models take the vertex forward."""
    from gendyn.lc.complexity import _leading_affine

    assert _leading_affine(_model("mlp", (1, 5, 5), depth=2, width=4)) == 1
    assert _leading_affine(_model("convonly", (1, 6, 6), depth=2, width=3)) == 0
    assert _leading_affine(_model("preact_resnet18", (1, 8, 8), width_factor=0.0625)) is None
    assert _leading_affine(nn.Sequential(nn.ReLU(), nn.Linear(3, 3))) is None
    model = _model("mlp", (6,), depth=2, width=10)
    x = torch.rand(5, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = local_complexity(model, x, 0.3, n_directions=3, seed=4, per_point=True)
    b = local_complexity(model, x, 0.3, n_directions=3, seed=4, per_point=True, split_first_layer=False)
    np.testing.assert_array_equal(a.values, b.values)


def test_same_seed_same_result_and_global_rng_untouched():
    model = _model("mlp", (1, 5, 5), depth=2, width=16, bn=True)
    x = torch.rand(10, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.manual_seed(1234)
    np.random.seed(99)
    random.seed(7)
    before = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    cuda_before = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    a = local_complexity(model, x, 1.0, n_directions=8, seed=5)
    b = local_complexity(model, x, 1.0, n_directions=8, seed=5)
    c = local_complexity(model, x, 1.0, directions=orthonormal_directions((1, 5, 5), 8, seed=5))
    local_complexity(model, x, 1.0, n_directions=8, seed=5, per_point=True)
    assert torch.equal(torch.get_rng_state(), before[0])
    np.testing.assert_array_equal(np.random.get_state()[1], before[1][1])
    assert random.getstate() == before[2]
    if cuda_before is not None:
        assert all(torch.equal(p, q) for p, q in zip(torch.cuda.get_rng_state_all(), cuda_before))
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.values, c.values)
    assert c.attrs["seed"] == -1


def test_eval_mode_used_and_model_left_as_it_was():
    model = _model("mlp", (1, 5, 5), depth=2, width=8, bn=True).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(9, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = local_complexity(model, x, 0.5, n_directions=4, seed=0)
    assert model.training
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    model.eval()
    np.testing.assert_array_equal(got.values, local_complexity(model, x, 0.5, n_directions=4, seed=0).values)


def test_bad_directions_and_arguments_are_rejected():
    model = _model("mlp", (4,), depth=1, width=4)
    x = torch.rand(3, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="orthonormal"):
        local_complexity(model, x, 1.0, directions=torch.ones(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="shape"):
        local_complexity(model, x, 1.0, directions=torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="radius"):
        local_complexity(model, x, -1.0)
    with pytest.raises(ValueError, match="count_sites"):
        local_complexity(model, x, 1.0, count_sites="conv")


@pytest.mark.gpu
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    model = _model("cnn", (1, 8, 8), depth=2, width=4, bn=True)
    x = torch.rand(20, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    cpu = local_complexity(model, x, 0.3, n_directions=6, seed=0)
    gpu = local_complexity(model, x, 0.3, n_directions=6, seed=0, device="cuda")
    np.testing.assert_array_equal(cpu.values, gpu.values)


# --------------------------------------------------------------------------- region maps


def _line_net(w: np.ndarray, b: np.ndarray) -> nn.Module:
    net = nn.Sequential(nn.Linear(2, len(b)), nn.ReLU(), nn.Linear(len(b), 2)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.as_tensor(w))
        net[0].bias.copy_(torch.as_tensor(b))
    return net.eval()


def _square_plane(half: float) -> Plane:
    e1, e2 = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    dom = half * np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    return Plane(torch.zeros(2, dtype=torch.float64), e1, e2, dom)


def _arrangement_count(w: np.ndarray, b: np.ndarray, half: float) -> int:
    """Regions of lines w.x + b = 0 inside the square (convex): 1 + #chords + #crossings inside."""
    plane_pts = half * np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    chords = [k for k in range(len(b)) if np.ptp(np.sign(plane_pts @ w[k] + b[k])) > 0]
    crossings = 0
    for i, j in combinations(chords, 2):
        p = np.linalg.solve(np.array([w[i], w[j]]), -np.array([b[i], b[j]]))
        crossings += int(np.all(np.abs(p) < half))
    return 1 + len(chords) + crossings


def test_k_lines_in_general_position_give_the_arrangement_count():
    rng = np.random.default_rng(0)
    k = 7
    w, b = rng.normal(size=(k, 2)), rng.normal(size=k) * 0.5
    rm = region_map(_line_net(w, b), _square_plane(100.0))
    assert rm.n_regions == 1 + k + math.comb(k, 2) == _arrangement_count(w, b, 100.0)
    np.testing.assert_allclose(rm.areas().sum(), 200.0**2, rtol=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_region_count_equals_line_arrangement_in_a_window(seed):
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=(12, 2)), rng.normal(size=12) * 1.5
    assert region_count(_line_net(w, b), _square_plane(1.0)) == _arrangement_count(w, b, 1.0)


def test_three_lines_forming_a_triangle_give_seven_regions_and_a_dead_unit_none():
    w = np.array([[0.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    b = np.array([0.5, 0.2, 0.3])  # triangle inside [-2, 2]^2
    plane = _square_plane(2.0)
    assert region_count(_line_net(w, b), plane) == 7
    w_dead = np.vstack([w, [[1e-3, 0.0]]])
    b_dead = np.append(b, -10.0)  # pre-activation < 0 on the whole window
    assert region_count(_line_net(w_dead, b_dead), plane) == 7


def test_decision_boundary_of_an_affine_classifier_is_its_line():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)).double().eval()
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2, dtype=torch.float64))
        net[0].bias.fill_(50.0)  # both units on in the whole window: one region
        net[2].weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=torch.float64))
        net[2].bias.copy_(torch.tensor([0.3, 174.9], dtype=torch.float64))
    rm = region_map(net, _square_plane(1.0))
    assert rm.n_regions == 1 and len(rm.boundary) == 1
    # logit_0 - logit_1 = 2 (u + 50) + 1.5 (v + 50) + 0.3 - 174.9 = 2u + 1.5v + 0.4: zero on the segment
    diff = (net[2].weight[0] - net[2].weight[1]).detach().numpy()
    const = float(diff @ net[0].bias.detach().numpy() + (net[2].bias[0] - net[2].bias[1]).detach())
    ends = rm.boundary[0]
    np.testing.assert_allclose(ends @ diff + const, 0.0, atol=1e-9)
    assert np.all(np.abs(ends) <= 1.0 + 1e-12)


@pytest.mark.parametrize(
    "name, shape, cfg",
    [
        ("cnn", (1, 8, 8), {"depth": 2, "width": 3, "bn": True}),
        ("resnet18", (1, 8, 8), {"width_factor": 0.0625, "bn": True, "stem": "imagenet"}),
        ("convonly", (1, 6, 6), {"depth": 2, "width": 2, "bn": True}),
        ("preact_resnet18", (1, 4, 4), {"width_factor": 0.03125, "bn": True}),
    ],
    ids=["cnn-maxpool", "resnet18-skips-maxpool", "convonly-gap", "preact-resnet18-skips"],
)
def test_exact_regions_agree_with_raster_patterns(name, shape, cfg):
    """Every grid point's activation pattern (ReLU signs + max-pool argmaxes) is the pattern of
    the exact polygon that contains it, and the exact count is >= the raster count."""
    model = _model(name, shape, seed=1, **cfg)
    g = torch.Generator().manual_seed(0)
    x1, x2, x3 = (torch.rand(*shape, generator=g, dtype=torch.float64) for _ in range(3))
    plane = anchor_plane(x1, x2, x3)
    rm = region_map(model, plane)
    n_raster, uv, hashes = raster_regions(model, plane, 40)
    assert rm.n_regions >= n_raster > 1
    assert len(np.unique(rm.patterns)) == rm.n_regions  # distinct regions, distinct patterns
    np.testing.assert_allclose(rm.areas().sum(), 0.5 * 1.2**2, rtol=1e-9)
    owner = np.full(len(uv), -1)
    for i, poly in enumerate(rm.polygons):
        owner[_inside(poly, uv)] = i
    located = owner >= 0
    assert located.mean() > 0.99  # the rest lie on a boundary
    np.testing.assert_array_equal(rm.patterns[owner[located]], hashes[located])
    if name == "cnn":
        assert "pool1" in rm.sites


def test_local_plane_spans_the_first_two_directions():
    v = orthonormal_directions((3,), 3, seed=0)
    x = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    plane = local_plane(x, v, 0.5)
    pts = plane.points(np.array([[1.0, 0.0], [0.0, -1.0]]))
    torch.testing.assert_close(pts[0], x + 0.5 * v[0])
    torch.testing.assert_close(pts[1], x - 0.5 * v[1])


# --------------------------------------------------------------------------- PGD


def test_pgd_on_a_linear_classifier_reaches_the_worst_box_corner():
    """Two classes, logits W x: the cross-entropy gradient sign is sign(w_other - w_true)
    everywhere, so PGD with k alpha >= eps ends at clip(x + eps sign(w_other - w_true))."""
    w = torch.tensor([[1.0, -2.0, 0.5, 0.0], [-1.0, 1.0, -0.5, 3.0]], dtype=torch.float64)
    net = nn.Sequential(nn.Linear(4, 2, bias=False)).double().eval()
    with torch.no_grad():
        net[0].weight.copy_(w)
    x = torch.rand(6, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.6 + 0.2
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    eps = 0.15
    adv = pgd_attack(net, x, y, eps=eps, alpha=0.04, steps=5, lo=0.0, hi=1.0)
    direction = torch.sign(w[1 - y] - w[y])
    torch.testing.assert_close(adv, (x + eps * direction).clamp(0, 1))
    assert net[0].weight.grad is None


def test_robust_accuracy_bounds_and_eps_zero():
    model = _model("mlp", (1, 5, 5), depth=2, width=16)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, 5, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)
    r0, c0, rc0 = robust_accuracy(model, x, y, eps=0.0, alpha=0.01, steps=3, lo=0.0, hi=1.0, batch_size=7)
    np.testing.assert_array_equal(c0, rc0)
    r, c, rc = robust_accuracy(model, x, y, eps=0.3, alpha=0.05, steps=10, lo=0.0, hi=1.0)
    assert np.all(rc <= c) and r <= c.mean()
    adv = pgd_attack(model, x, y, eps=0.3, alpha=0.05, steps=10, lo=0.0, hi=1.0)
    assert float((adv - x).abs().max()) <= 0.3 + 1e-12 and adv.min() >= 0 and adv.max() <= 1


# --------------------------------------------------------------------------- analysis stages


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    cfg = tiny_run_config(
        model={"name": "mlp", "width": 16, "depth": 2},
        training={"optimizer": "adam", "lr": 0.01, "batch_size": 64, "steps": 40, "seed": 0, "device": "cpu"},
        recording={"n_tracked_train": 0, "n_tracked_test": 0, "masks": False, "grad_norms": False,
                   "schedule": {"kind": "list", "steps": [0, 1, 2, 5, 10, 20, 30, 40]}},
    )
    out = tmp_path_factory.mktemp("lc_run")
    train_run(cfg, out)
    return out


def test_cli_stages_write_the_documented_outputs(digits_run, tmp_path):
    import json

    settings = json.dumps(
        {
            "radii": [0.5, 2.0],
            "n_directions": 4,
            "n_train": 30,
            "n_test": 20,
            "n_random": 25,
            "n_records": 6,
            "regions": {"n_records": 2, "local_points": 2, "local_n_records": 3},
            "robust": {"enabled": True, "steps": 3, "n_points": 30, "n_records": 3},
        }
    )
    lc_nc, reg_nc, rob_nc = tmp_path / "lc.nc", tmp_path / "regions.nc", tmp_path / "robust.nc"
    for stage, out in (("compute", lc_nc), ("regions", reg_nc), ("robust", rob_nc)):
        assert cli_main(["lc", stage, str(digits_run), str(out), "--settings", settings, "--threads", "1"]) == 0
    ds = store.open_analysis(lc_nc).load()
    assert ds["lc"].dims == ("record", "split", "radius", "point", "layer")
    assert list(ds["split"].values) == ["train", "test", "random"] and list(ds["radius"].values) == [0.5, 2.0]
    assert list(ds["n_points"].values) == [30, 20, 25] and ds.sizes["point"] == 30
    assert ds.sizes["record"] == 6 and ds["step"].values[0] == 0 and ds["step"].values[-1] == 40
    assert list(ds["layer"].values) == ["relu1", "relu2"]
    test_part = ds["lc"].sel(split="test").isel(point=slice(20, None))
    assert bool(test_part.isnull().all())
    vals = ds["lc"].values[np.isfinite(ds["lc"].values)]
    assert np.all(vals == np.round(vals)) and vals.min() >= 0 and vals.max() <= 16
    assert ds.attrs["measure"] == "lc" and ds.attrs["n_directions"] == 4 and ds.attrs["count_sites"] == "relu"
    assert "train_acc" in ds and np.isfinite(ds["train_acc"]).all()
    # the stored values are what local_complexity gives for the same points and directions
    model = gendyn.load_model(digits_run, int(ds["step"].values[-1]))
    from gendyn.config import stage_settings
    from gendyn.data import load_data
    from gendyn.lc.stage import lc_points

    cfg = gendyn.run_config(digits_run)
    s = stage_settings("lc", settings)
    pts = lc_points(load_data(cfg["data"]), s, int(ds.attrs["points_seed"]))
    v = orthonormal_directions((1, 8, 8), 4, int(ds.attrs["direction_seed"]))
    direct = local_complexity(model, pts["test"][0], 2.0, directions=v)
    np.testing.assert_array_equal(ds["lc"].sel(split="test", radius=2.0).isel(record=-1, point=slice(0, 20)).values, direct.values)
    np.testing.assert_array_equal(ds["point_index"].sel(split="test").values[:20], pts["test"][1])

    reg = store.open_analysis(reg_nc).load()
    assert (reg["n_regions"] >= 1).all() and reg.sizes["record"] == 2
    assert int(reg["region_size"].sum()) == reg.sizes["vertex"]
    assert reg["local_n_regions"].dims == ("local_record", "local_point") and (reg["local_n_regions"] >= 1).all()
    assert len(set(reg["anchor_label"].values.tolist())) == 3
    rob = store.open_analysis(rob_nc).load()
    assert rob["robust_acc"].dims == ("record",) and (rob["robust_acc"] <= rob["clean_acc"]).all()
    assert rob.attrs["eps"] == 0.1

    view = json.dumps({"view": {"dpi": 40}, "lc": {"figures": {"radius": 2.0}}})
    run_figs = tmp_path / "figs_run"
    args = ["--input", f"lc={lc_nc}", "--input", f"regions={reg_nc}", "--input", f"robust={rob_nc}"]
    assert cli_main(["figures", "lc", "run", str(run_figs), *args, "--settings", view]) == 0
    exp_figs = tmp_path / "figs_experiment"
    assert cli_main(["figures", "lc", "experiment", str(exp_figs), "--input", f"lc={lc_nc}", "--input", f"lc={lc_nc}",
                     "--settings", view, "--experiment", "tiny"]) == 0  # fmt: skip
    for folder, names in ((run_figs, ["dynamics", "layers", "regions", "regions_vs_lc", "robust"]), (exp_figs, ["sweep"])):
        assert sorted(p.stem for p in folder.glob("*.png")) == sorted(names)
        for name in names:
            assert (folder / f"{name}.png").stat().st_size > 1000 and (folder / f"{name}.pdf").exists()


def test_settings_are_validated_with_the_key_in_the_message():
    from gendyn.config import ConfigError, stage_settings

    s = stage_settings("lc", None)
    assert s["n_directions"] == 25 and s["regions"]["enabled"] and not s["robust"]["enabled"]
    with pytest.raises(ConfigError, match="radii"):
        stage_settings("lc", '{"radii": [-1]}')
    with pytest.raises(ConfigError, match="n_dirs"):
        stage_settings("lc", '{"n_dirs": 3}')
    assert stage_settings("lc", None, {"regions.n_records": 3})["regions"]["n_records"] == 3


def test_set_overrides_reach_the_stage(digits_run, tmp_path):
    out = tmp_path / "lc.nc"
    assert cli_main(["lc", "compute", str(digits_run), str(out), "--set", "radii=[0.25]", "--set", "n_directions=3",
                     "--set", "n_train=5", "--set", "n_test=5", "--set", "n_random=5", "--set", "n_records=2"]) == 0  # fmt: skip
    ds = store.open_analysis(out).load()
    assert list(ds["radius"].values) == [0.25] and ds.attrs["n_directions"] == 3 and ds.sizes["record"] == 2


def test_lc_configs_validate_and_select_their_own_experiments():
    base = load_yaml(ROOT / "config" / "config.yaml")
    quick = validate_config(base)["experiments"]["lc_quick"]
    assert quick["analyses"]["lc"]["regions"]["enabled"] and quick["analyses"]["lc"]["robust"]["enabled"]
    files = sorted((ROOT / "config" / "experiments").glob("lc_*.yaml"))
    assert len(files) >= 7
    for path in files:
        raw = load_yaml(path)
        cfg = validate_config({**base, **raw}, source=str(path))
        assert set(raw["active_experiments"]) == set(raw["experiments"]), path
        assert all(cfg["experiments"][e]["analyses"].get("lc") is not None for e in raw["active_experiments"])
        gpu = raw["resources"]["train"]["gpu"]
        assert gpu == (0 if path.name == "lc_quick_sweeps.yaml" else 1), path


# --------------------------------------------------------------------------- quick experiment


def _quick_run(tmp: Path, alpha: float, steps: int, record: list[int]) -> Path:
    cfg = validate_run(
        {
            "experiment": "lc_quick",
            "run": f"alpha{alpha:g}",
            "data": {"name": "mnist5k", "n_test": 4000, "seed": 0},
            "model": {"name": "mlp", "depth": 2, "width": 64, "init_scale": alpha},
            "training": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01, "loss": "mse", "batch_size": 100,
                         "steps": steps, "seed": 0, "device": "cpu"},
            "recording": {"schedule": {"kind": "list", "steps": record}, "n_tracked_train": 0, "n_tracked_test": 0,
                          "masks": False, "grad_norms": False, "metrics_subset": 1000},
        }
    )
    train_run(cfg, tmp)
    return tmp


@pytest.fixture(scope="module")
def quick_lc(tmp_path_factory) -> dict[str, xr.Dataset]:
    """The spec's quick experiment reduced to fit the test budget: the base run for 600 steps
    (the ascent is under way by then), the grokking run for 200 steps (enough for its
    no-descent check), recorded at fewer, still log-spaced steps."""
    import json

    out = {}
    settings = json.dumps({"radii": [0.1, 1.0], "n_directions": 10, "n_train": 200, "n_test": 200, "n_random": 200})
    base_steps = [0, 1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 100, 150, 200, 300, 400, 500, 600]
    grok_steps = [0, 5, 10, 20, 50, 75, 100, 150, 200]
    for name, alpha, steps, record in (("base", 1.0, 600, base_steps), ("grok", 8.0, 200, grok_steps)):
        run = _quick_run(tmp_path_factory.mktemp(name), alpha, steps, record)
        nc = run / "lc.nc"
        assert cli_main(["lc", "compute", str(run), str(nc), "--settings", settings, "--threads", "2"]) == 0
        out[name] = store.open_analysis(nc).load()
        out[name].attrs["run_dir"] = str(run)
    return out


def test_quick_experiment_base_run_descends_then_ascends(quick_lc):
    ds = quick_lc["base"]
    steps = ds["step"].values
    train = ds["lc"].sel(split="train", radius=1.0).sum("layer").mean("point").values
    rand = ds["lc"].sel(split="random", radius=1.0).sum("layer").mean("point").values
    assert ds["train_acc"].values[-1] >= 0.99  # (1)
    early = steps <= 100
    lo = train[early].min()
    assert lo <= 0.6 * train[0], (train[0], lo)  # (2) first descent
    assert train[-1] >= 1.3 * lo, (lo, train[-1])  # (3) ascent
    assert train[-1] > 1.5 * rand[-1], (train[-1], rand[-1])  # (4) concentrated near training data
    vals = ds["lc"].values
    assert np.all(vals == np.round(vals)) and (ds["lc"] <= ds["n_units"]).all()  # (5)
    l1 = ds["lc"].sel(split="train", layer="relu1")
    assert bool((l1.sel(radius=1.0) >= l1.sel(radius=0.1)).all())  # (6) layer 1 is monotone in r


def test_quick_experiment_grokking_run_has_no_first_descent(quick_lc):
    ds = quick_lc["grok"]
    steps = ds["step"].values
    train = ds["lc"].sel(split="train", radius=1.0).sum("layer").mean("point").values
    window = (steps >= 50) & (steps <= 200)
    assert window.sum() >= 4
    assert np.all(train[window] >= 0.9 * train[0]), (train[0], train[window])  # (9)


def test_quick_experiment_region_maps_are_consistent(quick_lc):
    run = Path(quick_lc["base"].attrs["run_dir"])
    model = gendyn.load_model(run, 600)
    from gendyn.data import load_data

    data = load_data(gendyn.run_config(run)["data"])
    labels = data.train.labels.numpy()
    idx = [int(np.flatnonzero(labels == c)[0]) for c in (0, 1, 2)]
    x = data.train.get(np.array(idx))[0]
    plane = anchor_plane(x[0], x[1], x[2])
    exact = region_count(model, plane)
    assert exact >= 1 and exact >= region_count(model, plane, "raster", resolution=64)  # (7)


def test_lc_phase_steps_find_descent_minimum_ascent_peak_and_end():
    from gendyn.lc.stage import lc_phase_steps

    steps = np.array([0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000])
    curve = np.array([9.0, 7.0, 4.0, 3.0, 3.5, 5.0, 6.8, 4.0, 1.0, 0.5])  # descent, ascent, second descent
    lc_mean = np.stack([curve, curve + 1, curve / 2])[None].transpose(2, 1, 0)  # (record, split, radius=1)
    ds = xr.Dataset(
        {"lc_mean": (("record", "split", "radius"), lc_mean)},
        coords={"record": np.arange(len(steps)), "step": ("record", steps), "split": ["train", "test", "random"], "radius": [1.0]},
    )
    assert lc_phase_steps(ds) == {"init": 0, "minimum": 10, "peak": 300, "end": 10000}
    # a minimum after the geometric middle of training (sqrt(10000) = 100) is not the first descent
    late = ds.copy(deep=True)
    late["lc_mean"].loc[{"record": 9, "split": "train"}] = -1.0
    assert lc_phase_steps(late)["minimum"] == 10


def test_regions_at_lc_phases_needs_the_lc_analysis(digits_run):
    from gendyn.config import stage_settings
    from gendyn.lc.stage import regions

    s = stage_settings("lc", {"regions": {"at": "lc_phases", "local_points": 0}})
    with pytest.raises(ValueError, match="lc_phases"):
        regions(digits_run, s)


def test_regions_at_lc_phases_map_the_phases_of_the_lc_curve(digits_run):
    from gendyn.config import stage_settings
    from gendyn.lc.stage import compute, lc_phase_steps, regions

    s = stage_settings("lc", {"radii": [1.0], "n_directions": 4, "n_train": 20, "n_test": 5, "n_random": 5,
                              "regions": {"at": "lc_phases", "local_points": 0}})  # fmt: skip
    lc = compute(digits_run, s)
    phases = lc_phase_steps(lc)
    reg = regions(digits_run, s, lc=lc)
    assert reg["step"].values.tolist() == sorted(set(phases.values()))
    assert set(reg["phase"].values.tolist()) <= set(phases) and "end" in reg["phase"].values.tolist()
