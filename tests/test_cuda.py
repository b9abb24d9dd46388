"""The code paths that only run on CUDA: device moves, the CUDA numerics settings (no TF32,
deterministic cuDNN), the CUDA RNG in the resume state, bit packing on the device and the
analyses on the GPU. Marked ``cuda``; skipped with the reason on machines without a GPU.

Run them where a GPU is: ``pytest -m cuda``.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

import gendyn
from gendyn.config import stage_settings
from gendyn.train import train_run

from conftest import tiny_run_config

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (no GPU visible to torch on this machine)"),
]


def _read(out: Path) -> dict[str, np.ndarray]:
    res = {}
    with h5py.File(out / "run.h5") as f:
        for group in ("metrics", "masks"):
            for k, v in f[group].items():
                if isinstance(v, h5py.Dataset) and not k.startswith("byte_"):
                    res[f"{group}/{k}"] = v[()]
    with h5py.File(out / "checkpoints.h5") as f:
        for k, v in f["state"].items():
            res[f"ckpt/{k}"] = v[()]
    return res


def _cuda_cfg(**over):
    base = dict(
        model={"name": "cnn", "width": 6, "depth": 2, "bn": True},
        training={"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "batch_size": 64, "epochs": 3, "seed": 0, "device": "cuda"},
        recording={"n_tracked_train": 24, "n_tracked_test": 8, "schedule": {"kind": "steps", "every": 10}},
    )  # fmt: skip
    base.update(over)
    return tiny_run_config(**base)


def test_resolving_a_cuda_device_turns_tf32_off_and_cudnn_deterministic() -> None:
    from gendyn.runtime import resolve_device

    torch.backends.cudnn.benchmark = True
    dev = resolve_device("auto")
    assert dev.type == "cuda"
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert torch.backends.cudnn.conv.fp32_precision == "ieee"
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    # full float32: a product that TF32 (10-bit mantissa) would round far off
    a = torch.full((64, 64), 1 + 2**-20, device=dev)
    assert torch.allclose((a @ a).cpu().double(), torch.full((64, 64), 64 * (1 + 2**-20) ** 2, dtype=torch.float64), rtol=1e-6)


def test_bit_packing_on_the_device_equals_numpy() -> None:
    from gendyn.record import packbits

    rng = np.random.default_rng(0)
    for d in (1, 7, 8, 130, 4099):
        mask = rng.random((9, d)) > 0.5
        got = packbits(torch.from_numpy(mask).cuda())
        assert got.device.type == "cuda"
        assert np.array_equal(got.cpu().numpy(), np.packbits(mask, axis=1, bitorder="little"))


def test_training_on_the_gpu_records_the_masks_of_its_checkpoints(tmp_path: Path) -> None:
    """Masks recorded on the GPU equal the masks of the saved weights recomputed on the CPU
    (float64: no rounding flip), and the run says where it trained."""
    cfg = _cuda_cfg(model={"name": "mlp", "width": 32, "depth": 2, "dtype": "float64"})
    train_run(cfg, tmp_path)
    attrs = gendyn.open_run(tmp_path).attrs
    assert attrs["device"].startswith("cuda")
    x, _ = gendyn.tracked_inputs(tmp_path)
    steps = gendyn.open_run(tmp_path)["masks"]["step"].values
    for r in (0, len(steps) - 1):
        model = gendyn.load_model(tmp_path, step=int(steps[r]))
        found = {}
        hooks = [m.register_forward_pre_hook(lambda _m, inp, n=n: found.__setitem__(n.replace(".", "_"), inp[0] > 0))
                 for n, m in model.named_modules() if isinstance(m, nn.ReLU)]  # fmt: skip
        with torch.no_grad():
            model(x)
        for h in hooks:
            h.remove()
        for layer, want in found.items():
            got = gendyn.masks(tmp_path, layer=layer).isel(record=r).values
            assert np.array_equal(got, want.numpy()), (layer, r)


def test_two_gpu_runs_of_the_same_config_are_identical(tmp_path: Path) -> None:
    """Deterministic cuDNN and the seeded CUDA dropout RNG: the same config twice, the same numbers."""
    cfg = _cuda_cfg(model={"name": "alexnet", "width_factor": 0.0625, "dropout": 0.5},
                    data={"name": "digits", "n_test": 200, "seed": 0})  # fmt: skip
    cfg = tiny_run_config(**{**{k: cfg[k] for k in ("model", "training", "recording")}, "data": cfg["data"]})
    train_run(cfg, tmp_path / "a")
    train_run(cfg, tmp_path / "b")
    a, b = _read(tmp_path / "a"), _read(tmp_path / "b")
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=True), k


def test_a_gpu_run_resumes_with_its_cuda_rng_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Crash after a few record points, resume: equal to an uninterrupted GPU run."""
    from gendyn import train as train_mod

    cfg = _cuda_cfg(model={"name": "mlp", "width": 32, "depth": 2})
    train_run(cfg, tmp_path / "clean")
    original = train_mod._Trainer._record
    calls = {"n": 0}

    def crashing(self, step):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(train_mod._Trainer, "_record", crashing)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "resumed")
    state = torch.load(tmp_path / "resumed" / "resume.pt", weights_only=False)
    assert state["rng_cuda"] is not None
    monkeypatch.setattr(train_mod._Trainer, "_record", original)
    train_run(cfg, tmp_path / "resumed")
    a, b = _read(tmp_path / "clean"), _read(tmp_path / "resumed")
    for k in a:
        assert np.allclose(a[k], b[k], rtol=1e-6, atol=1e-7, equal_nan=True), k


def test_gpu_analyses_equal_the_cpu(tmp_path: Path) -> None:
    """LC, PGD robustness and exact LE with ``device: cuda`` against the same stages on the CPU."""
    from gendyn.elasticity.stage import compute as le_compute
    from gendyn.lc.stage import compute as lc_compute
    from gendyn.lc.stage import robust

    cfg = tiny_run_config(model={"name": "mlp", "width": 24, "depth": 2, "dtype": "float64"})
    train_run(cfg, tmp_path)
    base = {"radii": [0.1, 1.0], "n_directions": 4, "n_train": 20, "n_test": 20, "n_random": 10, "n_records": 3,
            "regions": {"enabled": False}, "robust": {"enabled": True, "n_points": 20, "steps": 3, "n_records": 2}}  # fmt: skip
    cpu = lc_compute(tmp_path, stage_settings("lc", {**base, "device": "cpu"}))
    gpu = lc_compute(tmp_path, stage_settings("lc", {**base, "device": "cuda"}))
    np.testing.assert_array_equal(cpu["lc"].values, gpu["lc"].values)
    rc = robust(tmp_path, stage_settings("lc", {**base, "device": "cpu"}))
    rg = robust(tmp_path, stage_settings("lc", {**base, "device": "cuda"}))
    np.testing.assert_array_equal(rc["correct_robust"].values, rg["correct_robust"].values)
    s = {"n_per_class": 2, "records": "all", "dtype": "float64"}
    lc_ = le_compute(tmp_path, stage_settings("elasticity", {**s, "device": "cpu"}))
    lg = le_compute(tmp_path, stage_settings("elasticity", {**s, "device": "cuda"}))
    np.testing.assert_allclose(lc_["le"].values, lg["le"].values, rtol=1e-9, atol=1e-12)


def test_float32_conv_le_on_the_gpu_is_not_tf32(tmp_path: Path) -> None:
    """Exact LE of a float32 CNN on the GPU agrees with the CPU far better than TF32 would allow."""
    from gendyn.elasticity.engines import local_elasticity
    from gendyn.models import build_model
    from gendyn.runtime import resolve_device

    torch.manual_seed(0)
    model = build_model({"name": "cnn", "width": 16, "depth": 2}, (3, 16, 16), 4).eval()
    x = torch.randn(6, 3, 16, 16)
    y = torch.arange(6) % 4
    cpu = local_elasticity(model, x, y, x, lr=1e-2)
    dev = resolve_device("cuda")
    gpu = local_elasticity(model.to(dev), x.to(dev), y.to(dev), x.to(dev), lr=1e-2)
    np.testing.assert_allclose(cpu.cpu().numpy(), gpu.cpu().numpy(), rtol=1e-3)


def test_plan_calibration_times_the_gpu() -> None:
    from gendyn.config import validate_config
    from gendyn.plan import plan_config

    cfg = validate_config({"active_experiments": ["a"], "experiments": {"a": {
        "data": {"name": "digits", "n_test": 300}, "model": {"name": "cnn", "width": 8, "depth": 2},
        "training": {"epochs": 1, "batch_size": 64}}}})  # fmt: skip
    plan = plan_config(cfg, calibrate=True)
    assert plan.device.startswith("cuda") and plan.experiments["a"].time["seconds_total"] > 0


def test_smoke_stand_ins_train_on_the_gpu(tmp_path: Path) -> None:
    """A paper-scale model on stand-in CIFAR data trains on the GPU with the real input shape."""
    from gendyn.config import expand_experiment, load_yaml, validate_config
    from gendyn.smoke import smoke_config, write_standins

    data = write_standins(tmp_path / "data", datasets=["cifar10"])
    cfg = load_yaml(Path(__file__).resolve().parents[1] / "config" / "experiments" / "paths_resnet18_cifar10.yaml")
    cfg = smoke_config(validate_config(cfg), data_root=data)
    name = cfg["active_experiments"][0]
    ((rid, _, run),) = expand_experiment(name, cfg["experiments"][name], data_root=cfg["data_root"])
    run["training"]["device"] = "cuda"
    train_run(run, tmp_path / rid)
    attrs = gendyn.open_run(tmp_path / rid).attrs
    assert attrs["device"].startswith("cuda") and list(attrs["input_shape"]) == [3, 32, 32]
    assert json.loads(attrs["layers"])[0] == "relu"
