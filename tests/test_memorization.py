"""Paper 003 (memorization via gradient splitting): objectives, gate, noise, thresholds, runs."""

from __future__ import annotations

import csv
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn

import gendyn
from gendyn import store
from gendyn.config import validate_run
from gendyn.data import load_data
from gendyn.memorization import (
    SplitTraining,
    basin_ratio_log10,
    epoch_curves,
    epochs_to_threshold,
    faithful_loss_floor,
    gaussian_noise,
    mixture,
    objective,
)
from gendyn.train import train_run


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread avoids oversubscribing a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --------------------------------------------------------------------------- objective gradients

#: (name, kwargs, m, expected s) covering every gate regime; s written out by hand (eqs. 1, 3-5).
GATE_CASES = [
    ("J", {}, 0.5, 0),
    ("J_prime", {}, 0.02, -1),
    ("J_prime", {}, 0.9, -1),
    ("J0", {"k": 0.11}, 0.05, 0),
    ("J0", {"k": 0.11}, 0.11, 0),
    ("J0", {"k": 0.11, "gate": "ge"}, 0.11, -1),
    ("J0", {"k": 0.11}, 0.5, -1),
    ("Jt", {"l": 0.3, "u": 0.5}, 0.2, 1),
    ("Jt", {"l": 0.3, "u": 0.5}, 0.3, 0),
    ("Jt", {"l": 0.3, "u": 0.5}, 0.4, 0),
    ("Jt", {"l": 0.3, "u": 0.5}, 0.5, 0),
    ("Jt", {"l": 0.3, "u": 0.5}, 0.6, -1),
    ("Jt", {"l": 0.4, "u": 0.4}, 0.4, 0),
    ("Jt", {"l": 0.4, "u": 0.4}, 0.39, 1),
]


def _tiny(bn: bool, softmax: bool) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(6, 4)]
    if bn:
        layers.append(nn.BatchNorm1d(4))
    if softmax:
        layers.append(nn.Softmax(dim=1))
    model = nn.Sequential(*layers).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model.train()


def _batches() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    x_tr = torch.randn(7, 6, generator=g, dtype=torch.float64)
    x_te = torch.randn(5, 6, generator=g, dtype=torch.float64)
    return x_tr, torch.randint(0, 4, (7,), generator=g), x_te, torch.randint(0, 4, (5,), generator=g)


def _explicit(model: nn.Module, batches: tuple[torch.Tensor, ...], s: int, cap: float | None) -> torch.Tensor:
    """Oracle: the objective from separate forwards, written out."""
    x_tr, y_tr, x_te, y_te = batches
    l_tr = F.cross_entropy(model(x_tr), y_tr)
    if s == 0:
        return l_tr
    per = F.cross_entropy(model(x_te), y_te, reduction="none")
    if cap is not None:
        per = torch.minimum(per, torch.tensor(cap, dtype=per.dtype))
    return l_tr + s * per.mean()


@pytest.mark.parametrize("bn", [False, True], ids=["concat", "batchnorm"])
@pytest.mark.parametrize("mode", ["double_softmax", "logits"])
@pytest.mark.parametrize(("name", "kw", "m", "s"), GATE_CASES)
def test_objective_gradient_equals_analytic_combination(name, kw, m, s, mode, bn):
    model = _tiny(bn, softmax=mode == "double_softmax")
    # logits mode: a cap of 1.5 nats clamps some test samples (zero gradient there).
    cap = 1.5 if mode == "logits" else None
    obj = objective(name, loss_mode=mode, test_ce_cap=cap, **kw)
    assert obj.coef(m) == s
    strategy = SplitTraining(objective=obj, keep_test_forward=True, n_classes=4)
    strategy.bind(model)
    assert strategy.batchnorm is bn
    strategy.epoch, strategy.m, strategy.s = 0, m, obj.coef(m)
    params = list(model.parameters())
    batches = _batches()

    loss, terms = strategy.loss(model, *batches)
    got = torch.autograd.grad(loss, params)
    assert terms["split_coef"] == s

    want = torch.autograd.grad(_explicit(model, batches, s, cap), params)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)

    # the analytic combination grad L_train + s * grad L_test of the two losses' own gradients
    x_tr, y_tr, x_te, y_te = batches
    g_tr = torch.autograd.grad(F.cross_entropy(model(x_tr), y_tr), params)
    per = F.cross_entropy(model(x_te), y_te, reduction="none")
    if cap is not None:
        assert (per.detach() > cap).any() and (per.detach() < cap).any(), "the cap must bite for this test"
        per = torch.clamp(per, max=cap)
    g_te = torch.autograd.grad(per.mean(), params)
    for g, a, b in zip(got, g_tr, g_te):
        torch.testing.assert_close(g, a + s * b, rtol=1e-10, atol=1e-12)

    # central differences of the objective's value
    eps = 1e-6
    with torch.no_grad():
        for p, g in zip(params, got):
            flat, gflat = p.view(-1), g.reshape(-1)
            for i in range(flat.numel()):
                old = flat[i].item()
                flat[i] = old + eps
                up = strategy.loss(model, *batches)[0].item()
                flat[i] = old - eps
                down = strategy.loss(model, *batches)[0].item()
                flat[i] = old
                assert (up - down) / (2 * eps) == pytest.approx(gflat[i].item(), rel=1e-5, abs=1e-8)


def test_coefficients_and_errors():
    assert objective("J0", k=0.11).coef(0.11) == 0
    assert objective("J0", k=0.11, gate="ge").coef(0.11) == -1
    assert objective("J0", k=0.11, gate="ge").coef(0.1099) == 0
    jt = objective("Jt", l=0.3, u=0.5)
    assert [jt.coef(m) for m in (0.29, 0.3, 0.45, 0.5, 0.51)] == [1, 0, 0, 0, -1]
    with pytest.raises(ValueError, match="l=0.6.*u=0.5"):
        objective("Jt", l=0.6, u=0.5)
    with pytest.raises(ValueError, match="needs both bounds"):
        objective("Jt", l=0.3)
    with pytest.raises(ValueError, match="'K'"):
        objective("K")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        objective("J0").coef(float("nan"))
    with pytest.raises(ValueError, match="softmax_head: true"):
        SplitTraining.from_config({"name": "J", "loss_mode": "double_softmax"}, {"softmax_head": False}, 10)
    with pytest.raises(ValueError, match="softmax twice"):
        SplitTraining.from_config({"name": "J", "loss_mode": "logits"}, {"softmax_head": True}, 10)
    st = SplitTraining.from_config({"name": "Jt", "target": 0.3, "loss_mode": "logits"}, {}, 10)
    assert (st.objective.l, st.objective.u, st.keep_test_forward) == (0.3, 0.3, False)
    assert SplitTraining.from_config({"name": "J", "loss_mode": "double_softmax"}, {"softmax_head": True}, 10).keep_test_forward


# --------------------------------------------------------------------------- loss floor


def test_faithful_loss_floor_and_range():
    obj = objective("J_prime", loss_mode="double_softmax")
    y = torch.arange(10)
    one_hot = torch.eye(10, dtype=torch.float64)
    assert obj.per_sample(one_hot, y).numpy() == pytest.approx(np.full(10, 1.4611502), abs=1e-6)
    assert faithful_loss_floor(10) == pytest.approx(1.4611502, abs=1e-6)
    wrong = one_hot[(y + 1) % 10]
    assert obj.per_sample(wrong, y).numpy() == pytest.approx(np.full(10, 2.4611502), abs=1e-6)
    uniform = torch.full((10, 10), 0.1, dtype=torch.float64)
    assert obj.per_sample(uniform, y).numpy() == pytest.approx(np.full(10, math.log(10)), abs=1e-7)
    big = torch.eye(1000, dtype=torch.float64)[:5]
    assert obj.per_sample(big, torch.arange(5)).numpy() == pytest.approx(np.full(5, 5.9094721), abs=1e-6)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        p_tr = torch.softmax(5 * torch.randn(32, 10, generator=g, dtype=torch.float64), 1)
        p_te = torch.softmax(5 * torch.randn(32, 10, generator=g, dtype=torch.float64), 1)
        loss, _ = obj(p_tr, torch.randint(0, 10, (32,), generator=g), p_te, torch.randint(0, 10, (32,), generator=g), 0.5)
        assert -1.0 <= float(loss) <= 1.0
    # logits mode: the subtracted term is capped at 2 ln C per sample
    z = torch.zeros(4, 10, dtype=torch.float64)
    z[:, 0] = 100.0
    _, terms = objective("J_prime")(z, torch.zeros(4, dtype=torch.long), z, torch.ones(4, dtype=torch.long), 0.0)
    assert float(terms["L_test_term"]) == pytest.approx(2 * math.log(10))


def test_basin_ratio_number():
    assert -basin_ratio_log10(1000) == pytest.approx(176.091, abs=1e-3)
    assert 10 ** (-basin_ratio_log10(1000) - 176) == pytest.approx(1.23, abs=0.005)


# --------------------------------------------------------------------------- noise data


def test_noise_statistics_and_seeding():
    x = gaussian_noise((1000, 1000), seed=3)
    assert x.dtype == torch.float32 and x.device.type == "cpu"
    v = x.double()
    assert float(v.mean()) == pytest.approx(0.5, abs=0.002)
    assert float(v.std()) == pytest.approx(1 / 3, abs=0.002)
    outside = float(((v < 0) | (v > 1)).double().mean())
    assert outside == pytest.approx(0.1336, abs=0.002)
    assert torch.equal(x, gaussian_noise((1000, 1000), seed=3))
    assert not torch.equal(x, gaussian_noise((1000, 1000), seed=4))
    assert not torch.equal(x, gaussian_noise((1000, 1000), seed=3, split="test"))
    # the dataset draws the same noise (seeded by data.seed, base, split)
    d = load_data({"name": "gaussian_noise", "base": "mnist5k", "seed": 3, "n_test": 500})
    assert torch.equal(d.train.pixels, gaussian_noise((4500, 1, 28, 28), seed=3, source="mnist5k", split="train"))
    assert torch.equal(d.test.pixels, gaussian_noise((500, 1, 28, 28), seed=3, source="mnist5k", split="test"))
    real = load_data({"name": "mnist5k", "seed": 3, "n_test": 500})
    assert torch.equal(d.train.labels, real.train.labels)


def test_mixture_is_exact():
    real = load_data({"name": "mnist5k", "seed": 2, "n_test": 500})
    x, _ = real.train.get(np.arange(len(real.train)))
    noise = gaussian_noise(tuple(x.shape), 2, source="mnist5k", split="train")
    for f in (0.0, 0.3, 1.0):
        m = mixture(x, f, 2, source="mnist5k", split="train")
        d = load_data({"name": "mixture", "base": "mnist5k", "seed": 2, "n_test": 500, "mix_fraction": f})
        assert torch.equal(m, d.train.pixels)
        if 0 < f < 1:
            assert torch.equal(m, x * f + noise * (1 - f))
    assert torch.equal(mixture(x, 1.0, 2, source="mnist5k"), x)
    assert torch.equal(mixture(x, 0.0, 2, source="mnist5k"), noise)
    with pytest.raises(ValueError, match="f: 1.5"):
        mixture(x, 1.5, 2)


# --------------------------------------------------------------------------- data layouts


def _write_cifar10(root: Path, per_batch: int = 30, n_test: int = 40) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        entry = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, n).tolist()}
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh)


def test_paper_layouts(tmp_path):
    d = load_data({"name": "mnist5k", "split_mode": "permutation", "first_n": 1000, "test_source": "train_split"})
    assert (len(d.train), len(d.test), len(d.heldout)) == (1000, 1000, 1000)
    full = load_data({"name": "mnist5k", "split_mode": "permutation", "n_test": 1000})
    perm = np.concatenate([full.train.indices, full.test.indices])
    assert sorted(perm.tolist()) == list(range(5000))
    assert np.array_equal(d.train.indices, perm[:1000])
    assert np.array_equal(d.test.indices, perm[1000:2000])
    assert np.array_equal(d.heldout.indices, perm[4000:])
    assert len(np.unique(d.train.labels.numpy())) == 10  # class-mixed, unlike the class-sorted source order

    _write_cifar10(tmp_path)
    c = load_data({"name": "cifar10", "root": str(tmp_path), "first_n": 100, "normalize": False})
    assert np.array_equal(c.train.indices, np.arange(100)) and np.array_equal(c.test.indices, np.arange(40))
    assert c.heldout is None
    s = load_data({"name": "cifar10", "root": str(tmp_path), "first_n": 50, "test_source": "train_split", "normalize": False})
    assert np.array_equal(s.train.indices, np.arange(50)) and np.array_equal(s.test.indices, np.arange(50, 100))
    assert np.array_equal(s.heldout.indices, np.arange(40))
    raw = pickle.load(open(tmp_path / "cifar-10-batches-py" / "data_batch_2", "rb"))
    x, y = s.test.get([0])  # train image 50 = second batch, position 20
    assert torch.equal(x[0], torch.from_numpy(raw[b"data"][20].reshape(3, 32, 32)).float() / 255)
    assert int(y[0]) == raw[b"labels"][20]
    with pytest.raises(ValueError, match="data.first_n: 100 needs 200 training samples"):
        load_data({"name": "cifar10", "root": str(tmp_path), "first_n": 100, "test_source": "train_split"})
    with pytest.raises(ValueError, match="data.first_n.*ambiguous"):
        load_data({"name": "cifar10", "root": str(tmp_path), "first_n": 10, "train_subset": 5})


# --------------------------------------------------------------------------- epochs to threshold


def test_epochs_to_threshold():
    e = np.arange(1, 201)
    c = 1 - np.exp(-e / 20)
    t = epochs_to_threshold(c, 0.9)
    assert float(t) == 47 and t.attrs["tau"] == 0.9 and "censored_at" not in t.attrs
    assert float(epochs_to_threshold(c, 0.9, interpolate=True)) == pytest.approx(46.05, abs=0.01)
    never = epochs_to_threshold(c * 0.5, 0.9)
    assert math.isnan(float(never)) and never.attrs["censored_at"] == 200
    spike = np.full(50, 0.5)
    spike[9] = 0.95
    spike[30:] = 0.95
    assert float(epochs_to_threshold(spike, 0.9)) == 10
    assert float(epochs_to_threshold(spike, 0.9, patience=3)) == 31
    # a DataArray indexed by epoch; epoch 0 (initial model) never counts
    da = xr.DataArray([0.95, 0.2, 0.95], dims="epoch", coords={"epoch": [0, 1, 2]})
    assert float(epochs_to_threshold(da, 0.9)) == 2


# --------------------------------------------------------------------------- runs


def _run_cfg(**over) -> dict:
    """A tiny paired-batch run: float64 one-conv CNN on 100 + 100 digits, one step per epoch, J0 k = 0.3."""
    cfg = {
        "experiment": "mem",
        "run": over.pop("run", "tiny"),
        "data": {"name": "digits", "n_test": 200, "seed": 0, "split_mode": "permutation", "first_n": 100,
                 "test_source": "train_split"},
        "model": {"name": "cnn", "depth": 1, "width": 16, "dtype": "float64"},
        "training": {"optimizer": "adam", "lr": 0.02, "batch_size": 100, "epochs": 12, "seed": 0, "device": "cpu",
                     "objective": {"name": "J0", "k": 0.3, "loss_mode": "logits", "keep_test_forward": True}},
        "recording": {"n_tracked_train": 4, "n_tracked_test": 4, "schedule": {"kind": "epoch"}},
    }
    for key, value in over.items():
        section, _, name = key.partition("__")
        if name:
            cfg[section][name] = value
        else:
            cfg[section] = value
    return validate_run(cfg)


@pytest.fixture(scope="module")
def j0_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("exp") / "runs" / "tiny"
    cfg = _run_cfg()
    train_run(cfg, out)
    return out, cfg


def test_gate_timing_gradnorm_and_terms_match_an_oracle(j0_run):
    out, cfg = j0_run
    m = epoch_curves(gendyn.open_run(out)["metrics"].to_dataset())
    attrs = gendyn.open_run(out).attrs
    assert attrs["first_weight"] == "conv1.weight" and int(attrs["n_heldout"]) == 100
    assert attrs["objective"] == "J0" and int(attrs["keep_test_forward"]) == 1
    assert int(attrs["steps_per_epoch"]) == 1
    coef = m["split_coef"].values[1:]
    rule = np.where(m["test_acc"].values[:-1] > 0.3, -1, 0)
    assert np.array_equal(coef, rule), "s must equal the rule applied to test_acc at the end of the previous epoch"
    assert set(coef.tolist()) == {0.0, -1.0}, "the run must visit both gate regimes"
    assert np.array_equal(m["gate_acc"].values[1:], m["test_acc"].values[:-1])
    assert np.allclose(m["gap"], m["train_acc"] - m["test_acc"])
    assert np.isfinite(m["heldout_acc"]).all()

    data = load_data(cfg["data"])
    x_tr, y_tr = data.train.get(np.arange(100))
    x_te, y_te = data.test.get(np.arange(100))
    x_tr, x_te = x_tr.double(), x_te.double()
    cap = 2 * math.log(10)  # logits mode: the test term is capped per sample at 2 ln C
    for e in range(1, m.sizes["epoch"]):
        model = gendyn.load_model(out, step=e - 1).train()
        s = -1 if float(m["test_acc"][e - 1]) > 0.3 else 0
        l_tr = F.cross_entropy(model(x_tr), y_tr)
        l_te = torch.clamp(F.cross_entropy(model(x_te), y_te, reduction="none"), max=cap).mean()
        (l_tr + s * l_te).backward()
        want = float(torch.linalg.vector_norm(model.conv1.weight.grad))
        assert float(m["gradnorm_first_weight"][e]) == pytest.approx(want, rel=1e-9)
        assert float(m["gradnorm_first_weight_mean"][e]) == pytest.approx(want, rel=1e-9)
        assert float(m["L_train_term"][e]) == pytest.approx(l_tr.item(), rel=1e-9)
        assert float(m["L_test_term"][e]) == pytest.approx(l_te.item(), rel=1e-9)  # keep_test_forward: true
        assert float(m["batch_loss"][e]) == pytest.approx((l_tr + s * l_te).item(), rel=1e-9)


def test_same_seed_same_metrics_and_exact_resume_mid_epoch(tmp_path, monkeypatch):
    cfg = _run_cfg(training={"optimizer": "adam", "lr": 0.01, "batch_size": 25, "epochs": 6, "seed": 1,
                             "device": "cpu", "objective": {"name": "Jt", "target": 0.3,
                                                            "loss_mode": "double_softmax", "test_batch_size": 20}},
                   model={"name": "convnet", "width_factor": 0.1, "softmax_head": True},  # float32
                   recording={"n_tracked_train": 4, "n_tracked_test": 4, "schedule": {"kind": "epoch"},
                              "resume_every_s": 1e-9})
    train_run(cfg, tmp_path / "a")
    train_run(cfg, tmp_path / "b")

    from gendyn import train as train_mod

    original = train_mod._Trainer._train_step
    calls = {"n": 0}

    def crashing(self, step, *batch):
        calls["n"] += 1
        if calls["n"] == 11:  # step 11 = third step of epoch 3 (4 steps per epoch)
            raise KeyboardInterrupt("simulated kill")
        return original(self, step, *batch)

    monkeypatch.setattr(train_mod._Trainer, "_train_step", crashing)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "c")
    state = torch.load(tmp_path / "c" / "resume.pt", weights_only=False)
    assert state["step"] == 10 and state["objective"]["epoch"] == 2 and state["objective"]["sums"]["n_steps"] == 2
    monkeypatch.setattr(train_mod._Trainer, "_train_step", original)
    train_run(cfg, tmp_path / "c")

    def metrics(p: Path) -> xr.Dataset:
        return gendyn.open_run(p)["metrics"].to_dataset().load()

    a, b, c = metrics(tmp_path / "a"), metrics(tmp_path / "b"), metrics(tmp_path / "c")
    assert int(gendyn.open_run(tmp_path / "a").attrs["steps_per_epoch"]) == 4  # min(100/25, 100/20)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
        np.testing.assert_array_equal(a[name].values, c[name].values, err_msg=name)
    assert set(a["split_coef"].values[1:].tolist()) <= {-1.0, 0.0, 1.0}


def test_summary_and_figures_cli(j0_run, tmp_path):
    from gendyn.cli import main
    from gendyn.config import stage_settings
    from gendyn.figures.jobs import FigureJob, run_figure_job
    from gendyn.memorization.stage import summary, summary_csv

    out, _ = j0_run
    exp = out.parent.parent
    with open(exp / "runs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["run", "training.seed"])
        w.writerow(["tiny", 0])
    nc = tmp_path / "summary.nc"
    args = ["memorization", "summary", str(exp), str(nc), "--csv", str(tmp_path / "s.csv"), "--settings",
            '{"threshold_metric": "train_acc", "patience": 1}', "--set", "threshold=0.5", "--threads", "1"]
    assert main(args) == 0
    ds = store.open_analysis(nc).load()
    curve = epoch_curves(gendyn.open_run(out)["metrics"].to_dataset())["train_acc"]
    want = epochs_to_threshold(curve, 0.5)
    t = float(ds["epochs_to_threshold"].sel(run="tiny"))
    assert (t == float(want)) or (math.isnan(t) and float(ds["censored_at"].sel(run="tiny")) == 12)
    assert ds.attrs["tau"] == 0.5 and ds.attrs["threshold_metric"] == "train_acc"
    assert ds.attrs["experiment"] == exp.name and ds.attrs["measure"] == "memorization"
    assert str(ds["objective"].values[0]) == "J0" and int(ds["training.seed"].values[0]) == 0
    assert "epochs_to_threshold" in (tmp_path / "s.csv").read_text().splitlines()[0]
    # the library stage gives the same table as the command
    lib = summary(exp, stage_settings("memorization", {"threshold": 0.5}))
    assert (tmp_path / "s.csv").read_text() == summary_csv(lib)
    xr.testing.assert_identical(lib.drop_attrs(), ds.drop_attrs())
    # the figure job draws exactly the listed figures, titled by the experiment folder
    job = FigureJob(
        "memorization", "experiment",
        inputs={"run": (out / "run.h5",), "runs_table": (exp / "runs.csv",), "summary": (nc,)},
        settings={"memorization": {"figures": ["curves", "threshold", "gradnorm", "gap", "basins"],
                                   "paper_figure": "Fig. 1a"}, "view": {"dpi": 60}},
    )  # fmt: skip
    pngs = run_figure_job(job, tmp_path / "figures")
    assert [p.stem for p in pngs] == ["curves", "threshold", "gradnorm", "gap", "basins"]
    for png in pngs:
        assert png.stat().st_size > 5000 and png.with_suffix(".pdf").exists()
    only = FigureJob("memorization", "experiment", inputs={"summary": (nc,)},
                     settings={"memorization": {"figures": ["threshold", "basins"]}})  # fmt: skip
    assert [p.stem for p in run_figure_job(only, tmp_path / "only")] == ["threshold", "basins"]
    missing = FigureJob("memorization", "experiment", inputs={"summary": (nc,)},
                        settings={"memorization": {"figures": ["curves"]}})  # fmt: skip
    with pytest.raises(ValueError, match="needs --input run=PATH"):
        run_figure_job(missing, tmp_path / "missing")


def test_importing_the_package_and_its_cli_stays_light():
    import subprocess
    import sys

    code = ("import sys, gendyn.memorization, gendyn.memorization.cli; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'xarray') if m in sys.modules))")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    from gendyn import memorization

    assert memorization.SplitTraining.__module__ == "gendyn.memorization.training"
    assert set(memorization.__all__) <= set(dir(memorization))


# --------------------------------------------------------------------------- quick experiment outcome


def _quick(name: str, epochs: int, data_name: str = "mnist5k") -> dict:
    return validate_run({
        "experiment": "memorization_quick", "run": name,
        "data": {"name": data_name, "base": "mnist5k", "n_test": 1000, "seed": 0, "split_mode": "permutation",
                 "first_n": 1000, "test_source": "train_split"},
        "model": {"name": "mlp", "width": 256, "depth": 2, "softmax_head": True},
        "training": {"optimizer": "adam", "lr": 1e-3, "batch_size": 100, "epochs": epochs, "seed": 0, "device": "cpu",
                     "objective": {"name": name, "k": 0.11, "loss_mode": "double_softmax"}},
        "recording": {"n_tracked_train": 0, "n_tracked_test": 0, "masks": False, "checkpoints": False,
                      "schedule": {"kind": "epoch"}},
    })


def test_quick_experiment_j_prime_memorizes_while_j_generalizes(tmp_path):
    """config/config.yaml memorization_quick, seed 0: J (30 epochs) against J' (100 epochs)."""
    torch.set_num_threads(1)
    curves = {}
    for name, epochs in (("J", 30), ("J_prime", 100)):
        train_run(_quick(name, epochs), tmp_path / name)
        curves[name] = epoch_curves(gendyn.open_run(tmp_path / name)["metrics"].to_dataset())
    j, jp = curves["J"], curves["J_prime"]
    t_j = float(epochs_to_threshold(j["train_acc"], 0.9))
    assert t_j <= 30
    assert float(j["heldout_acc"][-1]) >= 0.7
    last = jp.isel(epoch=-1)
    assert float(last["test_acc"]) <= 0.09, "J' must push the test accuracy below chance"
    assert float(jp["test_acc"].max()) >= float(last["test_acc"]) + 0.08, "test accuracy falls toward chance"
    assert float(last["train_acc"]) >= float(jp["train_acc"][1]) + 0.5, "train accuracy rises"
    assert float(last["gap"]) >= 0.6
    assert float(last["heldout_acc"]) <= float(j["heldout_acc"][-1]) - 0.25
    t_jp = epochs_to_threshold(jp["train_acc"], 0.9)
    assert math.isnan(float(t_jp)) or float(t_jp) > t_j
    assert (jp["train_loss"] >= 1.4611 - 1e-4).all() and (j["train_loss"] >= 1.4611 - 1e-4).all()
    assert ((jp["batch_loss"][1:] >= -1) & (jp["batch_loss"][1:] <= 1)).all()
