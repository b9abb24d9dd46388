"""Training with recording: mask oracle, HDF5 contract, resume, failure modes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

import gendyn
from gendyn import store
from gendyn.config import write_run_config
from gendyn.record import Recorder, packbits, record_steps, relu_layers, unpackbits
from gendyn.train import TrainingDiverged, lr_at, train_run

from conftest import BIN, tiny_run_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    cfg = tiny_run_config(
        model={"name": "cnn", "width": 6, "depth": 2, "bn": True},
        recording={"n_tracked_train": 24, "n_tracked_test": 8, "schedule": {"kind": "steps", "every": 10},
                   "activations": True},
    )
    out = tmp_path_factory.mktemp("run")
    train_run(cfg, out)
    return out, cfg


# --------------------------------------------------------------------------- oracle


def _oracle_masks(model: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Masks from independent forward hooks: output of each ReLU > 0 (== input > 0)."""
    found: dict[str, torch.Tensor] = {}
    handles = [
        m.register_forward_hook(lambda mod, inp, out, name=name: found.__setitem__(name, (out > 0).flatten(1)))
        for name, m in model.named_modules()
        if isinstance(m, nn.ReLU)
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return {name.replace(".", "_"): v.numpy() for name, v in found.items()}


def test_masks_equal_independent_hooks_at_several_records(trained):
    out, _ = trained
    x, y = gendyn.tracked_inputs(out)
    tracked = xr.open_dataset(out / "run.h5", group="tracked", engine="h5netcdf")
    assert np.array_equal(y.numpy(), tracked["label"].values)
    steps = gendyn.open_run(out)["masks"]["step"].values
    assert len(steps) >= 5
    for r in (0, 1, len(steps) // 2, len(steps) - 1):
        model = gendyn.load_model(out, step=int(steps[r]))
        assert not model.training
        want = _oracle_masks(model, x)
        for layer, expected in want.items():
            got = gendyn.masks(out, layer=layer).isel(record=r).values
            assert got.shape == expected.shape
            assert np.array_equal(got, expected), f"layer {layer} record {r}"
        allm = gendyn.masks(out).isel(record=r)
        assert allm.sizes["unit"] == sum(v.shape[1] for v in want.values())


def test_activations_match_masks(trained):
    out, _ = trained
    acts = xr.open_dataset(out / "run.h5", group="activations", engine="h5netcdf")
    for layer in json.loads(gendyn.open_run(out).attrs["layers"]):
        a = acts[layer].values
        m = gendyn.masks(out, layer=layer).values
        assert np.array_equal(a > 0, m)


def test_packbits_matches_numpy_little_endian():
    rng = np.random.default_rng(0)
    for d in (1, 7, 8, 9, 130):
        mask = rng.random((5, d)) > 0.5
        got = packbits(torch.from_numpy(mask)).numpy()
        assert np.array_equal(got, np.packbits(mask, axis=1, bitorder="little"))
        assert np.array_equal(unpackbits(got, d), mask)


# --------------------------------------------------------------------------- contract


def test_hdf5_contract(trained):
    out, cfg = trained
    path = out / "run.h5"
    tree = xr.open_datatree(path, engine="h5netcdf")
    attrs = tree.attrs
    for key in ("gendyn_format", "gendyn_version", "config", "status", "seed", "torch_version", "device"):
        assert key in attrs, key
    assert attrs["gendyn_format"] == store.FORMAT
    assert attrs["status"] == "complete"
    assert json.loads(attrs["config"])["model"] == cfg["model"]
    for group in ("metrics", "tracked", "masks", "activations"):
        xr.open_dataset(path, group=group, engine="h5netcdf")  # each group opens alone
    met = tree["metrics"]
    assert met.dims["step"] == len(record_steps(cfg["recording"]["schedule"], 3 * 24, 24))
    for var in ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "grad_norm"):
        assert var in met, var
    assert (met["train_acc"] >= 0).all() and (met["train_acc"] <= 1).all()
    tr = tree["tracked"]
    assert set(tr["split"].values.astype(str)) == {"train", "test"}
    assert tr.dims["image"] == 32
    masks = tree["masks"]
    assert masks["step"].dims == ("record",) and masks["epoch"].dims == ("record",)
    n_bits = 0
    n_bytes = 0
    for layer in json.loads(attrs["layers"]):
        v = masks[layer]
        assert v.dtype == np.uint8
        assert v.dims == ("record", "image", f"byte_{layer}")
        assert v.sizes[f"byte_{layer}"] == (int(v.attrs["n_units"]) + 7) // 8
        assert int(np.prod(v.attrs["unit_shape"])) == int(v.attrs["n_units"])
        n_bits += v.sizes["record"] * v.sizes["image"] * int(v.attrs["n_units"])
        with h5py.File(path) as f:
            n_bytes += f["masks"][layer].id.get_storage_size()
    assert n_bytes / (n_bits / 8) <= 1.05
    with h5py.File(out / "checkpoints.h5") as f:
        assert f.attrs["gendyn_format"] == store.CHECKPOINT_FORMAT
        assert np.array_equal(f["step"][:], masks["step"].values)


def test_no_partial_files_left_after_success(trained):
    out, _ = trained
    names = sorted(p.name for p in out.iterdir())
    assert names == ["checkpoints.h5", "config.yaml", "run.h5"]


def test_load_model_unknown_step_lists_available(trained):
    out, _ = trained
    with pytest.raises(store.StoreError, match="available steps"):
        gendyn.load_model(out, step=123456)


def test_recording_leaves_model_state_and_rng_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    model.train()
    x = torch.randn(10, 1, 4, 4)
    layers = relu_layers(model, x)
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    model.eval()
    with Recorder(model, layers) as rec, torch.no_grad():
        model(x)
    model.train()
    assert all(torch.equal(buffers[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    assert all(not m._forward_pre_hooks for m in model.modules())
    packed, _ = rec.result()
    assert packed["3"].shape == (10, 1)


# --------------------------------------------------------------------------- schedules


def test_record_schedules():
    assert record_steps({"kind": "epoch", "every": 2}, 100, 10).tolist() == [0, 20, 40, 60, 80, 100]
    assert record_steps({"kind": "steps", "every": 30}, 100, 10).tolist() == [0, 30, 60, 90, 100]
    s = record_steps({"kind": "log", "n": 10}, 1000, 10)
    assert s[0] == 0 and s[-1] == 1000 and np.all(np.diff(s) > 0)
    assert np.all(np.diff(np.log(s[1:])) > 0.2)  # log-spaced
    assert record_steps({"kind": "list", "steps": [5, 3]}, 10, 5).tolist() == [0, 3, 5, 10]
    assert record_steps({"kind": "list", "steps": [5], "include_init": False, "include_final": False}, 10, 5).tolist() == [5]
    lc = record_steps({"kind": "lc", "freq": 200}, 2000, 10)
    assert lc[:30].tolist() == list(range(30)) and 140 in lc and 1800 in lc and 1850 not in lc
    with pytest.raises(ValueError, match="exceed"):
        record_steps({"kind": "list", "steps": [50]}, 10, 5)


def test_lr_schedules():
    tr = {"lr": 1.0, "lr_schedule": {"kind": "step", "milestones": [2, 3], "gamma": 0.1, "unit": "epoch"}}
    assert [lr_at(tr, s, 40, 10) for s in (0, 19, 20, 29, 30)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    tr = {"lr": 1.0, "lr_schedule": {"kind": "cosine", "min_lr": 0.0}}
    assert lr_at(tr, 0, 100, 10) == pytest.approx(1.0) and lr_at(tr, 100, 100, 10) == pytest.approx(0.0)
    assert lr_at(tr, 50, 100, 10) == pytest.approx(0.5)


# --------------------------------------------------------------------------- determinism and resume


def _read_all(out: Path) -> dict[str, np.ndarray]:
    res = {}
    with h5py.File(out / "run.h5") as f:
        for gname in ("metrics", "masks", "tracked"):
            for k, v in f[gname].items():
                if isinstance(v, h5py.Dataset) and not k.startswith(("byte_", "unit_")):
                    res[f"{gname}/{k}"] = v[()]
    with h5py.File(out / "checkpoints.h5") as f:
        res["ckpt/step"] = f["step"][:]
        for k, v in f["state"].items():
            res[f"ckpt/{k}"] = v[()]
    return res


def _assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k


def test_same_seed_same_results(tmp_path):
    cfg = tiny_run_config()
    train_run(cfg, tmp_path / "a")
    train_run(cfg, tmp_path / "b")
    _assert_identical(_read_all(tmp_path / "a"), _read_all(tmp_path / "b"))


def test_resume_after_crash_in_process_is_bit_identical(tmp_path, monkeypatch):
    """Crash inside a record point (after some records), rerun, compare with a clean run."""
    cfg = tiny_run_config(recording={"n_tracked_train": 20, "n_tracked_test": 10,
                                     "schedule": {"kind": "steps", "every": 7}, "resume_every_s": 1e9},
                          data={"name": "digits", "n_test": 200, "seed": 0, "augment": False})
    train_run(cfg, tmp_path / "clean")

    from gendyn import train as train_mod

    original = train_mod._Trainer._record
    calls = {"n": 0}

    def crashing(self, step):
        calls["n"] += 1
        if calls["n"] == 6:
            # The crash lands after the record was half written: masks appended, metrics not.
            self.writer.append_record(step, 0.0, {lay.name: np.zeros((30, lay.n_bytes), np.uint8) for lay in self.layers})
            raise KeyboardInterrupt("simulated kill")
        return original(self, step)

    monkeypatch.setattr(train_mod._Trainer, "_record", crashing)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "crashed")
    assert not (tmp_path / "crashed" / "run.h5").exists()
    assert (tmp_path / "crashed" / "run.partial").exists()
    assert (tmp_path / "crashed" / "resume.pt").exists()
    monkeypatch.setattr(train_mod._Trainer, "_record", original)
    train_run(cfg, tmp_path / "crashed")
    _assert_identical(_read_all(tmp_path / "clean"), _read_all(tmp_path / "crashed"))
    assert not (tmp_path / "crashed" / "resume.pt").exists()


def _slow_cfg() -> dict:
    return tiny_run_config(
        data={"name": "mnist5k", "n_test": 1000, "seed": 0},
        model={"name": "mlp", "width": 256, "depth": 2},
        training={"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "batch_size": 32, "epochs": 6, "seed": 0,
                  "device": "cpu", "lr_schedule": {"kind": "step", "milestones": [3], "gamma": 0.1}},
        recording={"n_tracked_train": 64, "n_tracked_test": 32, "schedule": {"kind": "steps", "every": 50},
                   "resume_every_s": 0.2, "metrics_subset": 500},
    )


def test_kill_9_mid_run_then_rerun_equals_uninterrupted(tmp_path, cli_env):
    cfg = _slow_cfg()
    write_run_config(cfg, tmp_path / "cfg.yaml")
    cmd = [str(BIN / "gendyn"), "train", str(tmp_path / "cfg.yaml")]
    clean = subprocess.run([*cmd, str(tmp_path / "clean"), "--threads", "1"], env=cli_env, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr

    out = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, str(out), "--threads", "1"], env=cli_env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    # Wait until a few record points exist, then kill -9 mid-run.
    while time.monotonic() < deadline:
        if (out / "resume.pt").exists():
            state = torch.load(out / "resume.pt", weights_only=False)
            if state["step"] >= 150:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed; make _slow_cfg slower"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "run.h5").exists() and not (out / "checkpoints.h5").exists()
    resumed = subprocess.run([*cmd, str(out), "--threads", "1"], env=cli_env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    _assert_identical(_read_all(tmp_path / "clean"), _read_all(out))


def test_changed_config_does_not_resume_from_old_state(tmp_path, monkeypatch):
    cfg = tiny_run_config()
    from gendyn import train as train_mod

    original = train_mod._Trainer._record
    calls = {"n": 0}

    def crashing(self, step):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(train_mod._Trainer, "_record", crashing)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "r")
    monkeypatch.setattr(train_mod._Trainer, "_record", original)
    cfg2 = tiny_run_config(training={**cfg["training"], "lr": 0.05})
    train_run(cfg2, tmp_path / "r")
    train_run(cfg2, tmp_path / "fresh")
    _assert_identical(_read_all(tmp_path / "r"), _read_all(tmp_path / "fresh"))


# --------------------------------------------------------------------------- failure modes


def test_divergence_stops_with_step_and_last_finite_loss(tmp_path):
    cfg = tiny_run_config(training={"optimizer": "sgd", "lr": 1e6, "batch_size": 64, "epochs": 3, "device": "cpu"})
    with pytest.raises(TrainingDiverged, match=r"step \d+.*last finite loss"):
        train_run(cfg, tmp_path)
    assert not (tmp_path / "run.h5").exists()


def test_divergence_record_ends_cleanly_and_marks_run(tmp_path):
    cfg = tiny_run_config(
        training={"optimizer": "sgd", "lr": 1e6, "batch_size": 64, "epochs": 3, "device": "cpu", "on_divergence": "record"}
    )
    train_run(cfg, tmp_path)
    tree = gendyn.open_run(tmp_path)
    assert tree.attrs["status"] == "complete"
    assert int(tree.attrs["diverged"]) == 1 and int(tree.attrs["diverged_step"]) >= 1
    assert gendyn.load_model(tmp_path) is not None


def test_truncated_run_file_error_names_the_file(trained, tmp_path):
    out, _ = trained
    data = (out / "run.h5").read_bytes()
    bad = tmp_path / "run.h5"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(store.StoreError, match=str(bad)):
        gendyn.open_run(bad)


def test_foreign_hdf5_file_error_names_the_file(tmp_path):
    path = tmp_path / "run.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(store.StoreError, match=f"{path}.*not a gendyn file"):
        gendyn.open_run(path)
    path.write_text("hello")
    with pytest.raises(store.StoreError, match=str(path)):
        gendyn.masks(path)


def test_missing_data_root_fails_before_training(tmp_path, cli_env):
    cfg = tiny_run_config(data={"name": "cifar10", "root": str(tmp_path / "nowhere")},
                          model={"name": "cnn", "width": 4, "depth": 1})
    write_run_config(cfg, tmp_path / "cfg.yaml")
    res = subprocess.run([str(BIN / "gendyn"), "train", str(tmp_path / "cfg.yaml"), str(tmp_path / "out")],
                         env=cli_env, capture_output=True, text=True)
    assert res.returncode == 2
    assert str(tmp_path / "nowhere") in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out" / "run.partial").exists()


def test_complete_run_is_not_retrained(tmp_path, caplog):
    cfg = tiny_run_config()
    train_run(cfg, tmp_path)
    mtime = (tmp_path / "run.h5").stat().st_mtime_ns
    with caplog.at_level("INFO"):
        train_run(cfg, tmp_path)
    assert (tmp_path / "run.h5").stat().st_mtime_ns == mtime
    assert "nothing to do" in caplog.text


def test_info_cli_summarises_run(trained, cli_env):
    out, _ = trained
    res = subprocess.run([str(BIN / "gendyn"), "info", str(out / "run.h5")], env=cli_env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    for word in ("status complete", "/masks", "records", "relu1", "checkpoints", "tracked images: 32"):
        assert word in res.stdout, word


def test_float64_run(tmp_path):
    cfg = tiny_run_config(model={"name": "mlp", "width": 8, "depth": 1, "dtype": "float64"})
    train_run(cfg, tmp_path)
    model = gendyn.load_model(tmp_path)
    assert next(model.parameters()).dtype == torch.float64
    x, _ = gendyn.tracked_inputs(tmp_path)
    assert x.dtype == torch.float64
