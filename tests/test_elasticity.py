"""Local elasticity (paper 002): closed form, naive-loop oracle, kernel limit, summaries,
clustering, the pretrained (VGG-19) path, the stages, CLI and figure job, and the quick
experiment's outcome on real output."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from gendyn import elasticity as el
from gendyn.config import stage_settings
from gendyn.elasticity.rank1 import _Rank1MLP, _rank1_ops
from gendyn.elasticity.relu_chain import _ReluChain
from gendyn.models import build_model

from conftest import BIN, ROOT

F64 = torch.float64


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float(((a - b).abs() / b.abs().clamp_min(1e-300)).max())


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _with_running_stats(model: nn.Module, shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """Give BN layers non-trivial running statistics (a few train-mode forwards), then eval."""
    model.train()
    g = _gen(seed)
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(32, *shape, generator=g, dtype=next(model.parameters()).dtype))
    return model.eval()


# --------------------------------------------------------------------------- oracles


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("form", ["exact", "kernel"])
@pytest.mark.parametrize("wrap", [False, True])
def test_linear_model_matches_closed_form(k: int, form: str, wrap: bool) -> None:
    """Linear model f(x) = W x + b, loss l = 1/2 ||f(x) - y||^2 (real targets y).

    grad_W l = e x^T and grad_b l = e with e = f(x) - y, so one SGD step on (x, y) gives
    W+ = W - lr e x^T, b+ = b - lr e and, for every probe x',

        f(x'; w+) - f(x'; w) = -lr e (x . x') - lr e = -lr (x . x' + 1) e.

    Hence ||df(x')|| = lr |x . x' + 1| ||e|| and ||df(x)|| = lr (||x||^2 + 1) ||e||:

        LE(x, x') = |x . x' + 1| / (||x||^2 + 1)

    for any lr (f is linear in its parameters, so the kernel form is the same number).
    ``wrap`` puts the layer in an nn.Sequential, which takes the rank-1 engine (it propagates
    the change itself); the vmap engine subtracts z(w+) - z(w), whose rounding error grows
    like eps ||z|| / ||dz|| ~ 1 / lr, hence the tolerance 1e-12 * max(1, 0.1 / lr).
    """
    g = _gen(k)
    lin = nn.Linear(6, k).double()
    model = nn.Sequential(lin) if wrap else lin
    x = torch.randn(9, 6, generator=g, dtype=F64)
    xp = torch.randn(7, 6, generator=g, dtype=F64)
    y = torch.randn(9, k, generator=g, dtype=F64)
    want = (x @ xp.T + 1).abs() / ((x * x).sum(1, keepdim=True) + 1)
    for lr in (0.1, 1e-3):
        got = el.local_elasticity(model, x, y, xp, lr=lr, loss="mse", form=form)
        tol = 1e-12 * (max(1.0, 0.1 / lr) if form == "exact" and not wrap else 1.0)
        assert _rel(got, want) <= tol, (lr, _rel(got, want))


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh])
@pytest.mark.parametrize("lr", [0.1, 0.01])
@pytest.mark.parametrize("engine", ["rank1", "vmap"])
def test_exact_matches_naive_loop_on_mlp(act: type[nn.Module], lr: float, engine: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), act(), nn.Linear(32, 32), act(), nn.Linear(32, 3)).double()
    g = _gen(1)
    x = torch.randn(16, 10, generator=g, dtype=F64)
    y = torch.randint(0, 3, (16,), generator=g)
    ref = el.local_elasticity_loop(model, x, y, x, lr=lr)
    got = el.local_elasticity(model, x, y, x, lr=lr, engine=engine, return_parts=True)
    for name in ("le", "num", "den"):
        assert _rel(getattr(got, name), getattr(ref, name)) <= 1e-9, name
    probes = torch.randn(5, 10, generator=g, dtype=F64)  # probes different from the updates
    ref2 = el.local_elasticity_loop(model, x, y, probes, lr=lr)
    got2 = el.local_elasticity(model, x, y, probes, lr=lr, engine=engine, chunk=3, return_parts=True)
    assert _rel(got2.le, ref2.le) <= 1e-9


def _relu_mlp(widths: list[int], bias: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers += [nn.Linear(a, b, bias=bias)] + ([nn.ReLU()] if i < len(widths) - 2 else [])
    return nn.Sequential(*layers).double()


@pytest.mark.parametrize(
    "widths, bias, frozen",
    [
        ([10, 24, 3], True, ()),  # one hidden layer: the output reads the changed rows only
        ([10, 24, 20, 3], True, ()),  # two: the last hidden layer's min(a, 0) is folded
        ([10, 24, 20, 16, 4], True, ()),  # three: a middle hidden layer is made exact
        ([10, 24, 20, 3], False, ()),  # no biases
        ([10, 24, 20, 16, 4], True, ("3.weight", "3.bias")),  # a frozen middle layer
        ([10, 24, 20, 3], True, ("1.bias", "5.weight")),  # frozen first bias, frozen last weight
        ([10, 24, 20, 3], True, ("3.weight", "3.bias", "5.weight", "5.bias")),  # only layer 1 moves
    ],
)
def test_relu_chain_path_matches_naive_loop(widths: list[int], bias: bool, frozen: tuple[str, ...]) -> None:
    """The ReLU-MLP fast path of the rank-1 engine against the loop, with many units flipping.

    lr = 0.5 on unit-scale inputs flips a large share of the ReLUs (checked), so the exact
    max(d, -a) + min(a, 0) changes, the folded min(a, 0) of the last hidden layer and the
    stacked rank-1 rows are all exercised; frozen parameters must not move.
    """
    torch.manual_seed(0)
    model = _relu_mlp(widths, bias)
    for name, p in model.named_parameters():
        p.requires_grad_(name not in frozen)
    assert _ReluChain.supported(_Rank1MLP(_rank1_ops(model), F64, torch.device("cpu")))
    g = _gen(4)
    x = torch.randn(12, widths[0], generator=g, dtype=F64)
    y = torch.randint(0, widths[-1], (12,), generator=g)
    probes = torch.randn(9, widths[0], generator=g, dtype=F64)
    for lr in (0.5, 0.01):
        for reduce in ("l2", "label"):
            ref = el.local_elasticity_loop(model, x, y, probes, lr=lr, reduce=reduce)
            got = el.local_elasticity(model, x, y, probes, lr=lr, reduce=reduce, engine="rank1", return_parts=True)
            for part in ("le", "num", "den"):
                assert _rel(getattr(got, part), getattr(ref, part)) <= 1e-9, (lr, reduce, part)
    # units do flip at lr = 0.5: the first hidden layer's pattern changes for some pair
    with torch.no_grad():
        a = probes @ model[1].weight.T + (model[1].bias if bias else 0)
        step = 0.5 * (x @ probes.T + 1.0).abs().max() * model[1].weight.abs().max()
    assert bool(((a.abs() < step) & (a != 0)).any())


def test_relu_chain_path_uses_per_update_step_sizes() -> None:
    """The retry rule enlarges lr for vanishing rows; each row must use its own lr."""
    torch.manual_seed(1)
    model = _relu_mlp([6, 16, 16, 3])
    g = _gen(5)
    x = torch.randn(6, 6, generator=g, dtype=F64)
    y = torch.randint(0, 3, (6,), generator=g)
    got = el.local_elasticity(model, x, y, x, lr=0.05, den_eps=1e300, retry=(2.0, 2), engine="rank1", return_parts=True)
    assert torch.all(got.lr == 0.2)  # every row retried twice (den < 1e300 always)
    ref = el.local_elasticity_loop(model, x, y, x, lr=0.2)
    assert _rel(got.num, ref.num) <= 1e-9 and _rel(got.den, ref.den) <= 1e-9


@pytest.mark.parametrize(
    "name, cfg, shape",
    [
        ("mlp-bn", {"name": "mlp", "depth": 2, "width": 16, "bn": True}, (1, 4, 4)),
        ("cnn-bn", {"name": "cnn", "depth": 2, "width": 4, "bn": True}, (1, 8, 8)),
        ("resnet18", {"name": "resnet18", "width_factor": 0.0625}, (3, 6, 6)),
    ],
)
def test_exact_matches_naive_loop_on_bn_models(name: str, cfg: dict, shape: tuple[int, ...]) -> None:
    """MLP with BN (rank-1 engine), CNN with BN and a ResNet (vmap engine), BN in eval mode."""
    torch.manual_seed(0)
    model = _with_running_stats(build_model({**cfg, "dtype": "float64"}, shape, 4), shape)
    g = _gen(2)
    x = torch.randn(4, *shape, generator=g, dtype=F64)
    y = torch.randint(0, 4, (4,), generator=g)
    ref = el.local_elasticity_loop(model, x, y, x, lr=0.05)
    got = el.local_elasticity(model, x, y, x, lr=0.05, return_parts=True)
    for part in ("le", "num", "den"):
        assert _rel(getattr(got, part), getattr(ref, part)) <= 1e-9, (name, part)


def test_train_mode_model_with_bn_and_dropout_is_evaluated_in_eval_mode_and_left_unchanged() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)).double()
    _with_running_stats(model, (5,))
    g = _gen(3)
    x = torch.randn(8, 5, generator=g, dtype=F64)
    y = torch.randint(0, 3, (8,), generator=g)
    want = el.local_elasticity(copy.deepcopy(model).eval(), x, y, x, lr=0.1)
    model.train()
    model[3].eval()  # mixed flags must come back exactly as they were
    flags = [m.training for m in model.modules()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for engine in ("rank1", "vmap"):
        got = el.local_elasticity(model, x, y, x, lr=0.1, engine=engine)
        assert _rel(got, want) <= 1e-12
        assert [m.training for m in model.modules()] == flags
        for k, v in model.state_dict().items():
            assert torch.equal(v, state[k]), k


def test_le_of_an_image_with_itself_is_one_and_vanishing_steps_are_nan() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    x = torch.randn(5, 4, generator=_gen(4), dtype=F64)
    le = el.local_elasticity(model, x, torch.tensor([0, 1, 0, 1, 1]), x, lr=0.3)
    assert torch.equal(le.diagonal(), torch.ones(5, dtype=F64))
    # MSE on the model's own outputs: r = dloss/dz = 0, the step is zero -> NaN rows, never inf
    with torch.no_grad():
        target = model(x).clone()
    target[0] += 1.0  # only sample 0 has a non-zero residual
    parts = el.local_elasticity(model, x, target, x, lr=0.3, loss="mse", return_parts=True)
    assert torch.isfinite(parts.le[0]).all()
    assert torch.isnan(parts.le[1:]).all() and not torch.isinf(parts.le).any()
    assert parts.nan_fraction == pytest.approx(4 / 5)


def test_retry_rule_recomputes_vanishing_rows_with_a_larger_step() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    g = _gen(5)
    x = torch.randn(6, 4, generator=g, dtype=F64)
    y = torch.randint(0, 3, (6,), generator=g)
    base = el.local_elasticity(model, x, y, x, lr=1e-4, return_parts=True)
    eps = float(base.den.median())  # half of the rows "vanish" at lr = 1e-4
    small = base.den < eps
    got = el.local_elasticity(model, x, y, x, lr=1e-4, den_eps=eps, retry=(10.0, 1), return_parts=True)
    big = el.local_elasticity(model, x, y, x, lr=1e-3, return_parts=True)
    assert torch.equal(got.lr[small], torch.full((int(small.sum()),), 1e-3, dtype=F64))
    assert torch.equal(got.lr[~small], torch.full((int((~small).sum()),), 1e-4, dtype=F64))
    assert _rel(got.le[small], big.le[small]) <= 1e-10
    assert _rel(got.le[~small], base.le[~small]) <= 1e-12


def test_kernel_form_is_the_first_order_limit_of_the_exact_form() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    g = _gen(6)
    x = torch.randn(8, 6, generator=g, dtype=F64)
    y = torch.randint(0, 3, (8,), generator=g)
    ker = el.local_elasticity(model, x, y, x, lr=1.0, form="kernel")
    errs = []
    for lr in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5):
        ex = el.local_elasticity(model, x, y, x, lr=lr)
        errs.append(float(((ex - ker).abs() / ker.abs()).mean()))
    ratios = [a / b for a, b in zip(errs, errs[1:])]
    assert all(3 <= r <= 30 for r in ratios), (errs, ratios)
    assert float(((el.local_elasticity(model, x, y, x, lr=1e-5) - ker).abs() / ker.abs()).max()) <= 1e-3


def test_kernel_jacobian_path_equals_jvp_path_and_he_su_form_for_one_output() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 3)).double()
    g = _gen(7)
    x, xp = torch.randn(6, 5, generator=g, dtype=F64), torch.randn(4, 5, generator=g, dtype=F64)
    y = torch.randint(0, 3, (6,), generator=g)
    a = el.local_elasticity(model, x, y, xp, form="kernel", kernel_method="jacobian", return_parts=True)
    b = el.local_elasticity(model, x, y, xp, form="kernel", kernel_method="jvp", return_parts=True)
    assert _rel(a.num, b.num) <= 1e-10 and _rel(a.den, b.den) <= 1e-10
    # K = 1: LE_ker = |<grad f(x'), grad f(x)>| / ||grad f(x)||^2 (the loss derivative cancels)
    one = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 1)).double()
    t = torch.randn(6, 1, generator=g, dtype=F64)
    got = el.local_elasticity(one, x, t, xp, form="kernel", loss="mse")

    def grad_f(v: torch.Tensor) -> torch.Tensor:
        one.zero_grad()
        one(v[None]).sum().backward()
        return torch.cat([p.grad.flatten() for p in one.parameters()]).clone()

    gu = torch.stack([grad_f(v) for v in x])
    gp = torch.stack([grad_f(v) for v in xp])
    want = (gu @ gp.T).abs() / (gu * gu).sum(1, keepdim=True)
    assert _rel(got, want) <= 1e-10


@pytest.mark.parametrize("engine", ["rank1", "vmap"])
def test_signed_reduction_of_one_output_keeps_the_sign_of_the_change(engine: str) -> None:
    """reduce="signed": num/den are the signed changes of the one output; their moduli are the l2 LE."""
    torch.manual_seed(0)
    one = nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 1)).double()
    g = _gen(8)
    x, xp = torch.randn(7, 5, generator=g, dtype=F64), torch.randn(9, 5, generator=g, dtype=F64)
    t = torch.randn(7, 1, generator=g, dtype=F64)
    signed = el.local_elasticity(one, x, t, xp, lr=0.01, loss="mse", reduce="signed", engine=engine, return_parts=True)
    l2 = el.local_elasticity(one, x, t, xp, lr=0.01, loss="mse", engine=engine, return_parts=True)
    loop = el.local_elasticity_loop(one, x, t, xp, lr=0.01, loss="mse", reduce="signed")
    assert (signed.num < 0).any() and (signed.num > 0).any() and (signed.den < 0).any() and (signed.den > 0).any()
    assert _rel(signed.num.abs(), l2.num) <= 1e-12 and _rel(signed.den.abs(), l2.den) <= 1e-12
    assert _rel(signed.le.abs(), l2.le) <= 1e-12
    assert _rel(signed.num, loop.num) <= 1e-9 and _rel(signed.den, loop.den) <= 1e-9
    with pytest.raises(ValueError, match="one output"):
        el.local_elasticity(nn.Linear(5, 2).double(), x, torch.zeros(7, dtype=torch.long), xp, reduce="signed")


def test_label_reduction_and_softmax_head_use_the_logits() -> None:
    torch.manual_seed(0)
    core = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    with_head = nn.Sequential(*core, nn.Softmax(dim=1))
    g = _gen(8)
    x = torch.randn(5, 4, generator=g, dtype=F64)
    y = torch.randint(0, 3, (5,), generator=g)
    assert torch.equal(el.local_elasticity(with_head, x, y, x, lr=0.1), el.local_elasticity(core, x, y, x, lr=0.1))
    ref = el.local_elasticity_loop(core, x, y, x, lr=0.1, reduce="label")
    got = el.local_elasticity(core, x, y, x, lr=0.1, reduce="label", return_parts=True)
    assert _rel(got.num, ref.num) <= 1e-9 and _rel(got.den, ref.den) <= 1e-9


def test_invalid_arguments_name_the_problem() -> None:
    model = nn.Linear(3, 2).double()
    x = torch.zeros(2, 3, dtype=F64)
    with pytest.raises(ValueError, match="form"):
        el.local_elasticity(model, x, torch.tensor([0, 1]), x, form="ntk")
    with pytest.raises(ValueError, match="y_update"):
        el.local_elasticity(model, x, torch.tensor([0]), x)
    with pytest.raises(ValueError, match="rank1"):
        el.local_elasticity(build_model({"name": "cnn", "depth": 1, "width": 2}, (1, 4, 4), 2), torch.zeros(2, 1, 4, 4),
                            torch.tensor([0, 1]), torch.zeros(2, 1, 4, 4), engine="rank1")  # fmt: skip


# --------------------------------------------------------------------------- summaries and clustering


def test_histogram_counts_cover_every_off_diagonal_pair_and_ratio_ignores_probe_order() -> None:
    rng = np.random.default_rng(0)
    n = 30
    labels = rng.integers(0, 3, n)
    le = rng.gamma(2.0, 0.3, (n, n))  # some values > 1
    le[3, 7] = np.nan
    np.fill_diagonal(le, 1.0)
    same = np.eye(n, dtype=bool)
    s = el.pair_summary(le, labels, labels, same, n_bins=50)
    assert int(s["hist"].sum() + s["overflow"].sum() + s["n_nan"].sum()) == n * n - n
    assert int(s["n_pairs"].sum()) == n * n - n
    assert s["overflow"].sum() == np.sum(le[~same] > 1)
    perm = rng.permutation(n)
    s2 = el.pair_summary(le[:, perm], labels, labels[perm], same[:, perm], n_bins=50)
    assert float(s2["ratio"]) == pytest.approx(float(s["ratio"]), rel=1e-12)
    assert float(s2["ratio_median"]) == float(s["ratio_median"])
    w = le[(labels[:, None] == labels[None]) & ~same & np.isfinite(le)]
    assert float(s["within"]) == pytest.approx(w.mean(), rel=1e-12)


@pytest.mark.parametrize("method", ["spectral", "kmeans_rows", "kernel_kmeans"])
def test_clustering_recovers_block_structure(method: str) -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat([2, 0, 1], 12)
    le = np.where(labels[:, None] == labels[None], 0.8, 0.1) + rng.uniform(0, 0.05, (36, 36))
    le[0, 5] = np.nan
    res = el.cluster_le(le, labels, method=method, seed=0)
    assert res.accuracy == 1.0 and res.ari == pytest.approx(1.0)
    assert el.hungarian_accuracy(labels, (labels + 1) % 3) == 1.0
    assert el.hungarian_accuracy(labels, np.zeros_like(labels)) == pytest.approx(1 / 3)


# --------------------------------------------------------------------------- the pretrained (VGG-19) path


def _write_imagefolder(root: Path, wnids: list[str], n: int, size: int = 72) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for k, w in enumerate(wnids):
            d = root / split / w
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n if split == "train" else 1):
                base = rng.integers(0, 256, (size, size, 3)) // 2 + 60 * k
                Image.fromarray(base.clip(0, 255).astype(np.uint8)).save(d / f"{w}_{i}.png")


def test_vgg19_histograms_load_weights_from_the_configured_file(tmp_path: Path) -> None:
    from gendyn.cli import main
    from gendyn.elasticity.stage import histograms, pretrained_model

    wnids = ["n02132136", "n02128385", "n02129604"]  # brown bear, leopard, tiger
    _write_imagefolder(tmp_path / "imagenet", wnids, n=4)
    model_cfg = {"name": "vgg19", "width_factor": 0.0625}
    torch.manual_seed(0)
    net = build_model(model_cfg, (3, 64, 64), 10)
    weights = tmp_path / "vgg19_random.pth"
    torch.save(net.state_dict(), weights)
    loaded = pretrained_model(model_cfg, (3, 64, 64), 10, weights)
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    exp = {
        "experiment": "le_vgg19",
        "data": {"name": "imagenet", "root": str(tmp_path / "imagenet"), "classes": wnids, "image_size": 64},
        "model": model_cfg,
        "pretrained": {"weights": str(weights), "n_outputs": 10, "output_index": [7, 3, 5]},
    }
    settings = {"dtype": "float32", "lr": 1e-3, "histograms": {"n_per_class": 3, "class_names": ["brown bear", "leopard", "tiger"]}}
    out = tmp_path / "hist.nc"
    assert main(["elasticity", "histograms", str(out), "--pretrained", json.dumps(exp), "--settings", json.dumps(settings)]) == 0
    ds = xr.open_dataset(out)
    assert ds.attrs["pretrained"] == 1 and ds.attrs["source"] == str(weights)
    assert list(ds["class_name_i"].values) == ["brown bear", "leopard", "tiger"]
    assert int(ds["hist"].sum() + ds["overflow"].sum() + ds["n_nan"].sum()) == 9 * 8
    assert ds["le"].shape == (9, 9) and np.allclose(np.diag(ds["le"].values), 1.0)
    figs = tmp_path / "figs"  # the figure job of an experiment with given weights: its only input
    assert main(["figures", "elasticity", "run", str(figs), "--input", f"histograms={out}", "--experiment", "le_vgg19",
                 "--run", "pretrained", "--settings", '{"view": {"dpi": 40}}']) == 0  # fmt: skip
    assert [p.name for p in figs.glob("*.png")] == ["histograms.png"]
    # the same numbers from the library on the loaded weights and the model's output indices
    from gendyn.data import load_data

    data = load_data(exp["data"])
    idx = ds["index_i"].values
    x, y = data.train.get(idx)
    want = el.local_elasticity(loaded, x, torch.tensor([7, 3, 5])[y], x, lr=1e-3)
    np.testing.assert_allclose(ds["le"].values, want.numpy(), rtol=1e-6)
    # a missing file names the config key
    exp["pretrained"]["weights"] = str(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match=r"le_vgg19\.analyses\.elasticity\.pretrained\.weights"):
        histograms(stage_settings("elasticity", settings), pretrained=exp)
    with pytest.raises(ValueError, match="exactly one"):
        histograms(stage_settings("elasticity", settings))


def test_pretrained_experiment_is_analysed_without_training(tmp_path: Path) -> None:
    """Dry-run of a config whose experiment gives weights: no train job, the histogram jobs only."""
    wnids = ["n02132136", "n02128385", "n02129604"]
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"placeholder")  # the dry-run only checks that the file exists
    cfg = {
        "active_experiments": ["le_vgg19"],
        "experiments": {"le_vgg19": {
            "data": {"name": "imagenet", "root": str(tmp_path), "classes": wnids},
            "model": {"name": "vgg19"},
            "training": {"epochs": 1},
            "analyses": {"elasticity": {"pretrained": {"weights": str(weights), "n_outputs": 1000,
                                                       "output_index": [294, 288, 292]},
                                        "histograms": {"n_per_class": 120}}},
        }},
    }  # fmt: skip
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(json.dumps(cfg))
    res = subprocess.run([str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--configfile",
                          str(cfg_file), "-n", "--quiet", "rules"], capture_output=True, text=True, timeout=240)  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    rules = {line.split()[0] for line in res.stdout.splitlines() if line.strip()}
    assert {"elasticity_histograms", "elasticity_figures"} <= rules, out
    assert not rules & {"train", "elasticity_run", "elasticity_figures_experiment", "views_figures"}, out


# --------------------------------------------------------------------------- quick experiment on real output


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, xr.Dataset]:
    """The default config's ``le_quick`` experiment, trained for real and analysed by the CLI."""
    from gendyn.cli import main
    from gendyn.config import expand_experiment, load_yaml, validate_config
    from gendyn.train import train_run

    cfg = validate_config(load_yaml(ROOT / "config" / "config.yaml"))
    exp = cfg["experiments"]["le_quick"]
    [(rid, _, run_cfg)] = expand_experiment("le_quick", exp)
    run_cfg["training"]["device"] = "cpu"
    out = tmp_path_factory.mktemp("le_quick")
    threads = torch.get_num_threads()
    try:  # one thread: on a shared 2-core machine two contend badly (3x slower)
        torch.set_num_threads(1)
        train_run(run_cfg, out / rid)
        settings = {k: v for k, v in exp["analyses"]["elasticity"].items() if k != "figures"}
        nc = out / f"{rid}.nc"
        assert main(["elasticity", "run", str(out / rid), str(nc), "--settings", json.dumps(settings), "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    return out / rid, xr.open_dataset(nc).load()


def test_quick_experiment_local_elasticity_rises_over_training(quick_run: tuple[Path, xr.Dataset]) -> None:
    import gendyn

    run_dir, ds = quick_run
    acc = float(gendyn.open_run(run_dir)["metrics"]["test_acc"].values[-1])
    assert acc >= 0.85
    assert ds.sizes["image_i"] == 100 and ds.sizes["record"] == 5
    assert list(ds["epoch"].values) == pytest.approx([0, 1, 2, 5, 10])
    r = ds["ratio"].values
    assert float(ds["nan_fraction"].max()) == 0.0
    assert r[-1] >= 1.2, r
    assert r[-1] - r[0] >= 0.1, r
    assert np.all(np.diff(r) >= -0.02), r
    assert np.all(np.diff(ds["ratio_median"].values) >= -0.02)
    le = ds["le"].values
    assert np.all(np.diagonal(le, axis1=1, axis2=2) == 1.0)
    assert ds["cluster_accuracy"].sizes["record"] == 5


def test_quick_experiment_batched_equals_naive_loop_at_a_record(quick_run: tuple[Path, xr.Dataset]) -> None:
    import gendyn

    run_dir, ds = quick_run
    x, y = gendyn.tracked_inputs(run_dir)
    sel = ds["tracked_i"].values[:20]
    step = int(ds["step"].values[2])
    model = gendyn.load_model(run_dir, step)
    ref = el.local_elasticity_loop(model, x[sel], y[sel], x[ds["tracked_j"].values], lr=0.01)
    got = ds["le"].isel(record=2).values[:20]
    off = ~np.eye(20, ds.sizes["image_j"], dtype=bool)
    np.testing.assert_allclose(got[off], ref.le.numpy()[off], rtol=1e-9)


def test_quick_experiment_figure_jobs_draw_every_figure(quick_run: tuple[Path, xr.Dataset], tmp_path: Path) -> None:
    from gendyn.cli import main

    run_dir, ds = quick_run
    nc = run_dir.parent / f"{run_dir.name}.nc"
    view = json.dumps({"view": {"dpi": 40}, "elasticity": {"figures": {"matrix_stat": "mean", "log_x": True}}})
    run_figs, exp_figs = tmp_path / "run", tmp_path / "experiment"
    assert main(["figures", "elasticity", "run", str(run_figs), "--input", f"elasticity={nc}", "--settings", view,
                 "--experiment", "le_quick", "--run", run_dir.name]) == 0  # fmt: skip
    assert main(["figures", "elasticity", "experiment", str(exp_figs), "--input", f"elasticity={nc}", "--settings", view,
                 "--experiment", "le_quick"]) == 0  # fmt: skip
    for folder, names in ((run_figs, ["classes"]), (exp_figs, ["clustering", "training"])):
        assert sorted(p.stem for p in folder.glob("*.png")) == names
        for name in names:
            assert (folder / f"{name}.png").stat().st_size > 2_000 and (folder / f"{name}.pdf").exists()
    table = (exp_figs / "clustering.csv").read_text().splitlines()
    assert table[0].startswith("run,step,epoch,le_accuracy,le_ari") and len(table) == 6
    assert all(line.startswith(f"{run_dir.name},") for line in table[1:])


def test_quick_experiment_dashboard_panel_and_comparison_rows(quick_run: tuple[Path, xr.Dataset]) -> None:
    import gendyn.figures.style  # noqa: F401 - headless backend first
    import matplotlib.pyplot as plt

    from gendyn.elasticity.figures import compare_rows, dashboard_panel
    from gendyn.figures.style import XAxis

    _, ds = quick_run
    s = stage_settings("elasticity", None)
    rows = compare_rows(ds, s)
    assert [label.split("\n")[0] for label in rows] == ["LE, same class", "LE, different class"]
    for da, name in zip(rows.values(), ("within", "between")):
        assert da.dims == ("record",) and np.array_equal(da.values, ds[name].values)
        assert np.array_equal(da["step"].values, ds["step"].values)
    fig, ax = plt.subplots()
    dashboard_panel(ax, ds, s, XAxis(log=True))
    lines = [ln for ln in ax.get_lines() if ln.get_label() in ("LE, same class", "LE, different class")]
    assert len(lines) == 2 and np.array_equal(lines[0].get_xdata(), ds["step"].values + 1.0)
    plt.close(fig)
    assert compare_rows(ds.drop_vars(["within", "between"]), s) == {}


def test_set_overrides_reach_the_stage_and_histograms_cli(quick_run: tuple[Path, xr.Dataset], tmp_path: Path) -> None:
    from gendyn import store
    from gendyn.cli import main

    run_dir, full = quick_run
    out = tmp_path / "final.nc"
    assert main(["elasticity", "run", str(run_dir), str(out), "--settings", '{"cluster": null, "lr": 0.01}', "--set", "records=final",
                 "--set", "n_per_class=3", "--threads", "1", "--mem-budget-mb", "64"]) == 0  # fmt: skip
    ds = store.open_analysis(out).load()
    assert ds.sizes["record"] == 1 and ds.sizes["image_i"] == 30 and "cluster_accuracy" not in ds
    assert int(ds["step"].values[0]) == int(full["step"].values[-1]) and ds.attrs["n_per_class"] == 3
    # the same images and weights as the full run: its LE restricted to the first 3 per class
    pos = {int(t): k for k, t in enumerate(full["tracked_i"].values)}
    sel = [pos[int(t)] for t in ds["tracked_i"].values]
    np.testing.assert_allclose(ds["le"].values[0], full["le"].values[-1][np.ix_(sel, sel)], rtol=1e-12)
    hist = tmp_path / "hist.nc"
    settings = json.dumps({"histograms": {"classes": [1, 7], "n_per_class": 4}})
    assert main(["elasticity", "histograms", str(hist), "--run-dir", str(run_dir), "--settings", settings, "--threads", "1"]) == 0
    h = store.open_analysis(hist).load()
    assert h.attrs["pretrained"] == 0 and h.attrs["source"] == str(run_dir) and list(h["class_i"].values) == [1, 7]
    assert h["le"].shape == (8, 8) and int(h["hist"].sum() + h["overflow"].sum() + h["n_nan"].sum()) == 8 * 7


def test_he_su_stage_clusters_both_forms_of_the_primary_classes(quick_run: tuple[Path, xr.Dataset], tmp_path: Path) -> None:
    from gendyn import store
    from gendyn.cli import main
    from gendyn.config import ConfigError, load_yaml, validate_config

    exp = validate_config(load_yaml(ROOT / "config" / "config.yaml"))["experiments"]["le_quick"]
    settings = {"cluster": {"he_su": {"primary": [4, 9], "n_per_class": 8, "n_auxiliary": 10, "train": {"epochs": 3}}}}
    out = tmp_path / "he_su.nc"
    experiment = json.dumps({"data": exp["data"], "model": exp["model"]})
    args = ["elasticity", "he-su", str(out), "--experiment", experiment, "--settings", json.dumps(settings), "--threads", "1"]
    assert main(args) == 0
    ds = store.open_analysis(out).load()
    assert ds["ripple"].shape == (16, 16) and ds["kernel"].shape == (16, 16)
    np.testing.assert_array_equal(np.diag(ds["ripple"].values), 1.0)
    assert (ds["ripple"].values >= 0).all() and np.isfinite(ds["kernel"].values).all()
    # the kernel is the signed change over -lr l'; the ripple its modulus over the own change
    change, scale = ds["change"].values, -ds["lr_used"].values * ds["dloss"].values
    np.testing.assert_allclose(ds["kernel"].values, change / scale[:, None], rtol=1e-12)
    np.testing.assert_allclose(ds["ripple"].values, np.abs(change) / np.abs(np.diag(change))[:, None], rtol=1e-12)
    assert np.all(ds["lr_used"].values == 1e-6) and ds.attrs["lr"] == 1e-6 and ds.attrs["loss"] == "mse"
    assert ds.attrs["theta"] == "trained" and np.isfinite(float(ds["train_loss"]))
    assert list(ds["form"].values) == ["ripple", "kernel"] and ds["cluster_accuracy"].dims == ("form",)
    assert ((0.5 <= ds["cluster_accuracy"].values) & (ds["cluster_accuracy"].values <= 1.0)).all()
    assert sorted(set(ds["label"].values.tolist())) == [4, 9] and list(ds["baseline"].values) == ["pixels", "pca"]
    assert list(ds.attrs["primary"]) == [4, 9] and "not verified" not in ds.attrs["protocol"]
    with pytest.raises(ValueError, match="cluster.he_su"):
        from gendyn.elasticity.stage import he_su

        he_su(stage_settings("elasticity", None), {"data": exp["data"], "model": exp["model"]})
    # both forms are always computed: a form switch is an unknown key, named in the error
    with pytest.raises(ConfigError, match=r"he_su: unknown key\(s\) 'form'"):
        stage_settings("elasticity", {"cluster": {"he_su": {"primary": [4, 9], "form": "kernel"}}})


def _he_su_loop(model: nn.Module, x: torch.Tensor, loss: str, lr: float, target: float = 1.0) -> dict[str, np.ndarray]:
    """The slow obvious protocol: per primary sample deep-copy the fixed network, one SGD step on
    (x_i, target) with torch's own loss, forward every sample, subtract."""
    import torch.nn.functional as F

    base = copy.deepcopy(model).double().eval()
    if loss == "bce":
        base = nn.Sequential(base, nn.Sigmoid())
    with torch.no_grad():
        f0 = base(x)[:, 0]
    n = len(x)
    change = torch.zeros(n, n, dtype=F64)
    for i in range(n):
        m = copy.deepcopy(base)
        opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=0, weight_decay=0)
        out = m(x[i : i + 1])[:, 0]
        t = torch.full_like(out, target)
        (F.mse_loss(out, t) if loss == "mse" else F.binary_cross_entropy(out, t)).backward()
        opt.step()
        with torch.no_grad():
            change[i] = m(x)[:, 0] - f0
    dl = 2 * (f0 - target) if loss == "mse" else (f0 - target) / (f0 * (1 - f0))
    d = change.diagonal()
    return {"change": change.numpy(), "ripple": (change.abs() / d.abs()[:, None]).numpy(),
            "kernel": (change / (-lr * dl)[:, None]).numpy(), "dloss": dl.numpy(), "output": f0.numpy()}  # fmt: skip


@pytest.mark.parametrize("engine", ["auto", "vmap"])
@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh])
def test_he_su_similarity_equals_the_explicit_reset_loop(act: type[nn.Module], loss: str, engine: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 16), act(), nn.Linear(16, 16), act(), nn.Linear(16, 1)).double()
    x = torch.randn(12, 2, 3, generator=_gen(4), dtype=F64)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    model[1].eval()  # mixed mode flags must come back as they were
    flags = [m.training for m in model.modules()]
    for lr, tol in ((1e-3, 1e-10), (1e-6, 1e-6)):  # 1e-6: the loop's own subtraction loses ~6 digits
        got = el.he_su_similarity(model, x, loss=loss, lr=lr, engine=engine)
        want = _he_su_loop(model, x, loss, lr)
        for key in ("change", "ripple", "kernel"):
            ref = want[key]
            err = np.abs(getattr(got, key) - ref) / np.abs(ref).max(axis=1, keepdims=True)
            assert err.max() <= tol, (key, lr, err.max())
        np.testing.assert_allclose(got.dloss, want["dloss"], rtol=1e-12)
        np.testing.assert_allclose(got.output, want["output"], rtol=1e-12)
        np.testing.assert_array_equal(got.lr, lr)
        np.testing.assert_array_equal(np.diag(got.ripple), 1.0)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])  # the weights stay fixed
    assert [m.training for m in model.modules()] == flags  # and so do the caller's mode flags


@pytest.mark.parametrize("lr", [1e-6, 0.1])
@pytest.mark.parametrize("wrap", [True, False], ids=["sequential-rank1", "module-vmap"])
def test_he_su_similarity_of_a_linear_model_is_the_closed_form(lr: float, wrap: bool) -> None:
    """f(x) = w.x + b and (f - y)^2: one step is exact, df_ij = -2 lr (f_i - y)(x_i.x_j + 1), so the
    kernel form is x_i.x_j + 1 and the ripple |x_i.x_j + 1| / (|x_i|^2 + 1), for any lr.

    The rank-1 engine (a Sequential) propagates the change itself: exact to 1e-10 at any lr. The
    vmap engine subtracts f(w+) - f(w): relative error ~ 1e-16 |f| / |df|, ~1e-10 at lr 1e-6."""
    torch.manual_seed(1)
    lin = nn.Linear(5, 1).double()
    model = nn.Sequential(lin) if wrap else lin
    x = torch.randn(9, 5, generator=_gen(2), dtype=F64)
    got = el.he_su_similarity(model, x, loss="mse", lr=lr)
    tol = 1e-10 if wrap or lr > 1e-3 else 1e-8
    gram = (x @ x.T + 1).numpy()
    np.testing.assert_allclose(got.kernel, gram, rtol=tol)
    np.testing.assert_allclose(got.ripple, np.abs(gram) / np.diag(gram)[:, None], rtol=tol)
    with torch.no_grad():
        f = lin(x)[:, 0].numpy()
    np.testing.assert_allclose(got.change, -2 * lr * (f - 1)[:, None] * gram, rtol=tol)
    np.testing.assert_allclose(got.dloss, 2 * (f - 1), rtol=1e-12)


def test_he_su_similarity_needs_one_output_and_a_valid_loss() -> None:
    x = torch.randn(3, 4, dtype=F64)
    with pytest.raises(ValueError, match="one output"):
        el.he_su_similarity(nn.Linear(4, 2).double(), x)
    with pytest.raises(ValueError, match="loss"):
        el.he_su_similarity(nn.Linear(4, 1).double(), x, loss="hinge")


def test_he_su_train_fits_a_copy_reproducibly_without_the_global_rng() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1)).double()
    g = _gen(3)
    x = torch.cat([torch.randn(20, 4, generator=g, dtype=F64) + 1, torch.randn(20, 4, generator=g, dtype=F64) - 1])
    y = torch.cat([torch.ones(20), torch.zeros(20)]).double()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    for loss in ("mse", "bce"):
        net = el.he_su_output(model, loss)
        with torch.no_grad():
            before = float(el.he_su_loss(loss)(net(x)[:, 0], y)) / len(x)
        a, last = el.he_su_train(model, x, y, loss=loss, lr=0.05, batch_size=8, epochs=30, seed=5)
        b, _ = el.he_su_train(model, x, y, loss=loss, lr=0.05, batch_size=8, epochs=30, seed=5)
        assert last < 0.5 * before and not a.training
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert torch.equal(torch.get_rng_state(), rng)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])


# --------------------------------------------------------------------------- package


def test_import_is_light_and_every_public_name_resolves() -> None:
    code = (
        "import sys, gendyn.elasticity as el, gendyn.elasticity.cli, gendyn.elasticity.spec; "
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, 'heavy import'; "
        "[getattr(el, n) for n in el.__all__]; print(len(el.__all__))"
    )
    res = subprocess.run([str(BIN / "python"), "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert set(el.__all__) >= {
        "DEFAULT_DEN_EPS", "ElasticityParts", "local_elasticity", "local_elasticity_loop", "logits_module",
        "rank1_supported", "pair_summary", "affinity", "cluster_le", "cluster_baselines", "hungarian_accuracy",
        "kernel_kmeans", "ClusterResult", "he_su_similarity", "he_su_train", "HeSuSimilarity",
    }  # fmt: skip
    with pytest.raises(AttributeError, match="no attribute"):
        el.no_such_name  # noqa: B018


def test_memory_budget_does_not_change_the_result() -> None:
    """Chunks sized from a tiny budget, the default (None = the schema default) and an explicit one agree."""
    from gendyn.parallel import mem_budget_bytes

    torch.manual_seed(0)
    g = _gen(11)
    for model, shape in (
        (nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.Tanh(), nn.Linear(12, 3)).double(), (6,)),
        (build_model({"name": "cnn", "depth": 1, "width": 3, "dtype": "float64"}, (1, 5, 5), 3), (1, 5, 5)),
    ):
        _with_running_stats(model, shape)
        x = torch.randn(7, *shape, generator=g, dtype=F64)
        y = torch.randint(0, 3, (7,), generator=g)
        default = el.local_elasticity(model, x, y, x, lr=0.1)
        assert torch.equal(default, el.local_elasticity(model, x, y, x, lr=0.1, mem_budget_bytes=mem_budget_bytes()))
        for form in ("exact", "kernel"):
            want = el.local_elasticity(model, x, y, x, lr=0.1, form=form)
            got = el.local_elasticity(model, x, y, x, lr=0.1, form=form, mem_budget_bytes=1)
            assert _rel(got, want) <= 1e-12, form
