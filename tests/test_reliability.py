"""Reliability (issue #15): never publish a wrong result as complete.

One section per defect of the issue:

1. a write failing during the assembly of run.h5/checkpoints.h5 (full disk) publishes nothing
   wrong: an ``OSError`` injected at every write call, HDF5 losing data silently, errors HDF5
   only prints ("Exception ignored"), and real write failures of the C library (a file-size
   limit, ``RLIMIT_FSIZE``, fails writes with ``EFBIG`` like a full disk fails them with ``ENOSPC``);
2. one writer per run directory and per analysis output (a second one is refused at once);
3. the thread count is part of a run's identity (recorded; resuming under another is refused);
4. a kill after checkpoints.h5 is published resumes the assembly, not the training;
5. config values never reach a shell (schema patterns; quoted paths; test_workflow runs a real
   workflow with a space in results_dir);
6. a user --configfile replaces the default experiments (``gendyn validate`` = Snakemake);
7. a diverged run flows through the paths analysis, its summary and its figures;
8. checksums catch corruption on read; read errors name the file and the step that rewrites
   it; data-dependent config checks run in ``gendyn validate``; ``data_root`` does not reach
   runs on embedded data; logs of earlier attempts are kept.
"""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml

import gendyn
from gendyn import store
from gendyn.config import ConfigError, expand_experiment, validate_config, write_run_config
from gendyn.train import train_run

from conftest import BIN, ROOT, tiny_run_config

GENDYN = str(BIN / "gendyn")
SNAKEMAKE = str(BIN / "snakemake")


# --------------------------------------------------------------------------- helpers


def _cfg(**over: Any) -> dict:
    """A tiny run whose run.h5 (masks + activations of 90 images) outgrows its checkpoints.h5."""
    rec = {"n_tracked_train": 60, "n_tracked_test": 30, "schedule": {"kind": "epoch"}, "activations": True}
    rec.update(over.pop("recording", {}))
    return tiny_run_config(recording=rec, **over)


def _contents(out: Path) -> dict[str, Any]:
    """Every dataset and root attribute of a run's two files (independent of gendyn's reader)."""
    res: dict[str, Any] = {}
    for name in (store.RUN_FILE, store.CHECKPOINT_FILE):
        with h5py.File(out / name, "r") as f:
            f.visititems(lambda k, v, n=name: res.__setitem__(f"{n}/{k}", v[()]) if isinstance(v, h5py.Dataset) else None)
            for k, v in f.attrs.items():
                if k not in ("checksums",):
                    res[f"{name}@{k}"] = v
    return res


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        if x.shape != y.shape or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
            return False
    return True


def _file_same_as_reference(path: Path, reference: Path) -> bool:
    """A published file equals the reference's (datasets and attributes)."""
    def read(p: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        with h5py.File(p, "r") as f:
            f.visititems(lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
            out.update({f"@{k}": v for k, v in f.attrs.items() if k != "checksums"})
        return out

    return _same(read(path), read(reference))


@pytest.fixture(scope="module")
def data():
    from gendyn.data import load_data

    return load_data(_cfg()["data"])


def _small_cfg() -> dict:
    """The smallest run with every group of run.h5: its assembly makes about 140 write calls."""
    return tiny_run_config(
        model={"name": "mlp", "width": 8, "depth": 1},
        training={**tiny_run_config()["training"], "epochs": 2},
        recording={"n_tracked_train": 8, "n_tracked_test": 4, "grad_norms": False, "activations": True},
    )


def _reference(out: Path, cfg: dict, data) -> Path:
    """An uninterrupted run (1 thread)."""
    train_run(cfg, out, data=data, threads=1)
    return out


def _ready_to_assemble(out: Path, cfg: dict, data) -> Path:
    """The run killed when training had finished, before checkpoints.h5 was written."""
    original = store.CheckpointWriter.finish

    def killed(self, final):
        raise KeyboardInterrupt("killed before the assembly")

    store.CheckpointWriter.finish = killed
    try:
        with pytest.raises(KeyboardInterrupt):
            train_run(cfg, out, data=data, threads=1)
    finally:
        store.CheckpointWriter.finish = original
    assert (out / store.RESUME_FILE).exists() and (out / "run.partial").is_dir()
    assert not (out / store.RUN_FILE).exists()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data) -> Path:
    return _reference(tmp_path_factory.mktemp("reference"), _cfg(), data)


@pytest.fixture(scope="module")
def ready_to_assemble(tmp_path_factory, data) -> Path:
    return _ready_to_assemble(tmp_path_factory.mktemp("assemble"), _cfg(), data)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _no_training(monkeypatch) -> None:
    """Make any optimisation step fail: a resumed assembly must not train."""
    from gendyn import train as train_mod

    def refuse(self, *a, **k):
        raise AssertionError("training restarted; the assembly should have resumed")

    monkeypatch.setattr(train_mod._Trainer, "_train_step", refuse)


def _check_nothing_wrong_published(out: Path, reference: Path) -> None:
    """Whatever is published equals the reference; what is not is still staged for a resume."""
    for name in (store.RUN_FILE, store.CHECKPOINT_FILE):
        if (out / name).exists():
            assert _file_same_as_reference(out / name, reference / name), f"{name} published with wrong content"
    if not (out / store.RUN_FILE).exists():
        assert (out / store.RESUME_FILE).exists(), "resume state deleted before the run was published"
        assert (out / "run.partial").is_dir() and (out / "checkpoints.partial").is_dir(), "staging deleted"


# --------------------------------------------------------------------------- 1. failed writes during assembly


class _Injector:
    """Count the write calls of the assembly (inside :func:`gendyn.store.publish_hdf5`: HDF5
    writes, flushes, attributes, fsync, rename); raise ENOSPC at call ``fail_at``."""

    TARGETS = (
        (h5py.Dataset, "__setitem__"),
        (h5py.Group, "create_dataset"),
        (h5py.Group, "create_group"),
        (h5py.AttributeManager, "__setitem__"),
        (h5py.File, "flush"),
        (os, "fsync"),
        (os, "replace"),
    )

    def __init__(self, monkeypatch, fail_at: int | None) -> None:
        import multiprocessing

        self._calls = multiprocessing.Value("i", 0)  # shared with the forked writer (store._isolated)
        self.fail_at = fail_at
        self.active = False
        for owner, name in self.TARGETS:
            monkeypatch.setattr(owner, name, self._wrap(getattr(owner, name), f"{getattr(owner, '__name__', owner)}.{name}"))
        publish = store.publish_hdf5

        def assembling(*args, **kwargs):
            self.active = True
            try:
                return publish(*args, **kwargs)
            finally:
                self.active = False

        monkeypatch.setattr(store, "publish_hdf5", assembling)

    @property
    def calls(self) -> int:
        return self._calls.value

    def _wrap(self, fn, label):
        def call(*args, **kwargs):
            if not self.active:
                return fn(*args, **kwargs)
            with self._calls.get_lock():
                k = self._calls.value
                self._calls.value += 1
            if k == self.fail_at:
                raise OSError(errno.ENOSPC, f"No space left on device (injected at {label}, call {k})")
            return fn(*args, **kwargs)

        return call


def _assembly_write_calls(src: Path, cfg: dict, tmp: Path, data, monkeypatch) -> int:
    out = _copy(src, tmp / "count")
    with monkeypatch.context() as m:
        inj = _Injector(m, None)
        train_run(cfg, out, data=data, threads=1)
    return inj.calls


@pytest.mark.slow
def test_enospc_at_every_write_call_of_the_assembly_publishes_nothing_wrong(data, tmp_path, monkeypatch):
    """Issue #15.1: a full disk during assembly must not publish a corrupt run.h5 marked complete.

    For every write call of the assembly in turn, the call fails with ENOSPC: the error names the
    file, no published file differs from the uninterrupted run, the staged records and the resume
    state survive, and rerunning resumes the assembly (no training step) to the same result.
    """
    cfg = _small_cfg()
    reference = _reference(tmp_path / "reference", cfg, data)
    ready_to_assemble = _ready_to_assemble(tmp_path / "ready", cfg, data)
    n = _assembly_write_calls(ready_to_assemble, cfg, tmp_path, data, monkeypatch)
    assert n > 50, n  # the assembly of both files really goes through these calls
    want = _contents(reference)
    for k in range(n):
        out = _copy(ready_to_assemble, tmp_path / f"k{k}")
        with monkeypatch.context() as m:
            _Injector(m, k)
            try:
                train_run(cfg, out, data=data, threads=1)
            except store.StoreError as e:
                assert re.search(r"(run|checkpoints)\.h5: .*(No space left|not written|differ)", str(e)), str(e)
            else:  # the failed call did not matter (the directory fsync after the rename)
                assert (out / store.RUN_FILE).exists(), f"write call {k} failed silently"
        _check_nothing_wrong_published(out, reference)
        assert not list(out.glob(".*.tmp")), "temporary file left behind"
        with monkeypatch.context() as m:
            _no_training(m)
            m.setattr(store, "ISOLATE_WRITES", False)  # (faster; the failing attempt above ran as in production)
            train_run(cfg, out, data=data, threads=1)
        assert _same(_contents(out), want), f"write call {k}: resumed assembly differs from the reference"
        assert not (out / store.RESUME_FILE).exists() and not (out / "run.partial").exists()
        shutil.rmtree(out)


def test_data_lost_silently_by_hdf5_is_caught_before_publishing(ready_to_assemble, reference, data, tmp_path, monkeypatch):
    """Issue #15.1: HDF5 dropping a chunk without an error (the issue saw zeros in
    tracked/index and a different masks/relu1) must not reach a published file."""
    original = h5py.Dataset.__setitem__
    state = {"n": 0}

    def lossy(self, key, value):
        state["n"] += 1
        if state["n"] == 7:  # a chunk that "never reached the disk"
            value = np.zeros_like(np.asarray(value))
        return original(self, key, value)

    out = _copy(ready_to_assemble, tmp_path / "lossy")
    with monkeypatch.context() as m:
        m.setattr(h5py.Dataset, "__setitem__", lossy)
        with pytest.raises(store.StoreError, match="read back differ"):
            train_run(_cfg(), out, data=data, threads=1)
    _check_nothing_wrong_published(out, reference)
    train_run(_cfg(), out, data=data, threads=1)
    assert _same(_contents(out), _contents(reference))


def test_errors_hdf5_only_prints_fail_the_write(ready_to_assemble, data, tmp_path, monkeypatch):
    """Issue #15.1: HDF5 reports a failed chunk write when a buffer is released, where Python
    prints "Exception ignored" and goes on; such an error must fail the write."""
    original = h5py.Dataset.__setitem__

    class _Finaliser:
        def __del__(self):
            raise OSError("Can't decrement id ref count (file write failed: errno = 28, No space left on device)")

    def leaky(self, key, value):
        _Finaliser()  # an error raised in a finaliser: Python only prints it
        return original(self, key, value)

    out = _copy(ready_to_assemble, tmp_path / "printed")
    with monkeypatch.context() as m:
        m.setattr(h5py.Dataset, "__setitem__", leaky)
        with pytest.raises(store.StoreError, match="checkpoints.h5: not written: .*No space left"):
            train_run(_cfg(), out, data=data, threads=1)
    assert not (out / store.CHECKPOINT_FILE).exists() and not (out / store.RUN_FILE).exists()


def _limit_file_size(limit: int):
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_real_write_failures_during_assembly_end_in_one_line_and_resume(
    ready_to_assemble, reference, data, tmp_path, cli_env, monkeypatch
):
    """Issue #15.1 with the C library's own writes failing: a file-size limit makes every write
    past it fail (EFBIG), as a full disk does (ENOSPC). ``gendyn train`` exits with one line naming
    the file (no traceback, no segfault, no "Exception ignored"), publishes nothing wrong, and the
    next attempt assembles the run without training."""
    ckpt_size = (reference / store.CHECKPOINT_FILE).stat().st_size
    run_size = (reference / store.RUN_FILE).stat().st_size
    assert run_size > ckpt_size + 20_000, (run_size, ckpt_size)  # limits below hit each file in turn
    cfg_path = tmp_path / "cfg.yaml"
    write_run_config(_cfg(), cfg_path)
    want = _contents(reference)
    limits = [3000, ckpt_size // 2, ckpt_size + (run_size - ckpt_size) // 2]
    for limit in limits:
        out = _copy(ready_to_assemble, tmp_path / f"limit{limit}")
        res = subprocess.run(
            [GENDYN, "train", str(cfg_path), str(out), "--threads", "1"], env=cli_env, capture_output=True,
            text=True, preexec_fn=_limit_file_size(limit), timeout=300,
        )  # fmt: skip
        assert res.returncode == 2, (limit, res.returncode, res.stderr[-3000:])
        errors = [line for line in res.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and "gendyn train: error:" in errors[0], res.stderr[-3000:]
        assert str(out / store.CHECKPOINT_FILE) in errors[0] or str(out / store.RUN_FILE) in errors[0], errors
        assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr, res.stderr[-3000:]
        _check_nothing_wrong_published(out, reference)
        assert not list(out.glob(".*.tmp"))
        with monkeypatch.context() as m:
            _no_training(m)
            train_run(_cfg(), out, data=data, threads=1)
        assert _same(_contents(out), want), f"limit {limit}"
        shutil.rmtree(out)


# --------------------------------------------------------------------------- 4. kill during assembly


def test_kill_after_checkpoints_published_resumes_assembly_not_training(reference, data, tmp_path, monkeypatch):
    """Issue #15.4: a kill between publishing checkpoints.h5 and run.h5 resumed training from
    zero ("partial result files are missing"); now the staged state is kept until both files
    are published, the rerun only assembles, and orphaned temporary files are removed."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        def killed(self, final, **attrs):
            (final.parent / f".{final.name}.deadbeef.tmp").write_bytes(b"half a file")  # what a kill leaves
            raise KeyboardInterrupt("killed during run.h5 assembly")

        m.setattr(store.RunWriter, "finish", killed)
        with pytest.raises(KeyboardInterrupt):
            train_run(_cfg(), out, data=data, threads=1)
    assert (out / store.CHECKPOINT_FILE).exists() and not (out / store.RUN_FILE).exists()
    assert (out / store.RESUME_FILE).exists()
    assert (out / "checkpoints.partial").is_dir() and (out / "run.partial").is_dir()
    with monkeypatch.context() as m:
        _no_training(m)
        train_run(_cfg(), out, data=data, threads=1)
    assert _same(_contents(out), _contents(reference))
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints.h5", "config.yaml", "run.h5"]


def test_kill_after_publishing_leaves_a_complete_run_and_cleans_up(reference, data, tmp_path, monkeypatch):
    """A kill after both files are published but before the staged state is deleted: the next
    start finds the run complete (nothing to do) and removes the leftovers."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(store.CheckpointWriter, "remove", lambda self: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            train_run(_cfg(), out, data=data, threads=1)
    assert (out / store.RUN_FILE).exists() and (out / "run.partial").exists()
    with monkeypatch.context() as m:
        _no_training(m)
        train_run(_cfg(), out, data=data, threads=1)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints.h5", "config.yaml", "run.h5"]
    assert _same(_contents(out), _contents(reference))


# --------------------------------------------------------------------------- 2. one writer per run


def _slow_cfg() -> dict:
    return tiny_run_config(
        data={"name": "mnist5k", "n_test": 1000, "seed": 0},
        model={"name": "mlp", "width": 256, "depth": 2},
        training={"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "batch_size": 32, "epochs": 3, "seed": 0,
                  "device": "cpu"},
        recording={"n_tracked_train": 64, "n_tracked_test": 32, "schedule": {"kind": "steps", "every": 50},
                   "resume_every_s": 0.2, "metrics_subset": 500},
    )  # fmt: skip


def test_second_train_into_the_same_run_directory_is_refused_at_once(tmp_path, cli_env):
    """Issue #15.2: two `gendyn train` in one directory interleaved their records (lr 0.05 in the
    attributes, records from the lr 0.01 run). The second writer now exits at once, naming the first."""
    first_cfg, second_cfg = _slow_cfg(), _slow_cfg()
    second_cfg["training"]["lr"] = 0.05
    write_run_config(first_cfg, tmp_path / "first.yaml")
    write_run_config(second_cfg, tmp_path / "second.yaml")
    out = tmp_path / "run"
    first = subprocess.Popen([GENDYN, "train", str(tmp_path / "first.yaml"), str(out), "--threads", "1"],
                             env=cli_env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / store.RESUME_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        # Hold the first writer mid-run (as a slow job would be) while the second one starts.
        os.kill(first.pid, signal.SIGSTOP)
        assert first.poll() is None, "the first run ended before the second could start; make _slow_cfg slower"
        start = time.monotonic()
        second = subprocess.run([GENDYN, "train", str(tmp_path / "second.yaml"), str(out), "--threads", "1"],
                                env=cli_env, capture_output=True, text=True, timeout=300)  # fmt: skip
        os.kill(first.pid, signal.SIGCONT)
        assert second.returncode == 2, second.stderr[-2000:]
        assert time.monotonic() - start < 60  # at once (process start-up only), not after training
        assert f"pid {first.pid}" in second.stderr and "gendyn train" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
    finally:
        os.kill(first.pid, signal.SIGCONT)
        _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    attrs = store.check_run_file(out / store.RUN_FILE)
    assert json.loads(attrs["config"])["training"]["lr"] == 0.01
    assert gendyn.verify(out) > 0
    assert not (out / ".gendyn.lock").exists()


def test_second_writer_of_an_analysis_output_is_refused(reference, tmp_path, cli_env):
    """Issue #15.2: every analysis writer takes the lock of its output."""
    from gendyn.locks import exclusive

    nc = tmp_path / "analysis" / "paths" / "tiny.nc"
    with exclusive(nc, "gendyn paths compute (test holder)"):
        res = subprocess.run([GENDYN, "paths", "compute", str(reference), str(nc)], env=cli_env,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 2, res.stderr[-2000:]
    assert f"pid {os.getpid()}" in res.stderr and "test holder" in res.stderr, res.stderr
    assert not nc.exists()


def test_lock_of_a_killed_writer_is_taken_over(tmp_path, cli_env):
    """A writer killed with -9 leaves its lock file; the lock itself died with it."""
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from gendyn.locks import exclusive\n"
         f"with exclusive({str(out)!r}, 'holder', directory=True):\n print('held', flush=True); time.sleep(600)"],
        env=cli_env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    assert (out / ".gendyn.lock").exists()  # left behind by the kill
    from gendyn.locks import exclusive, read_holder

    assert read_holder(out / ".gendyn.lock")["pid"] == holder.pid
    with exclusive(out, "next", directory=True) as path:
        assert read_holder(path)["pid"] == os.getpid()
    assert not path.exists()


# --------------------------------------------------------------------------- 3. thread count


def test_resume_under_another_thread_count_is_refused_and_the_count_is_recorded(tmp_path, data, monkeypatch):
    """Issue #15.3: a run killed at 1 thread resumed at 2 without a word and matched neither."""
    from gendyn import train as train_mod
    from gendyn.train import ResumeMismatch

    cfg = _cfg()
    clean = tmp_path / "clean"
    train_run(cfg, clean, data=data, threads=1)
    original = train_mod._Trainer._record
    calls = {"n": 0}

    def crashing(self, step):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return original(self, step)

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(train_mod._Trainer, "_record", crashing)
        with pytest.raises(KeyboardInterrupt):
            train_run(cfg, out, data=data, threads=1)
    with pytest.raises(ResumeMismatch, match=r"started with 1 torch thread.*--threads 1"):
        train_run(cfg, out, data=data, threads=2)
    assert not (out / store.RUN_FILE).exists() and (out / store.RESUME_FILE).exists()
    train_run(cfg, out, data=data)  # no count given: the recorded one
    assert _same(_contents(out), _contents(clean))
    attrs = store.check_run_file(out / store.RUN_FILE)
    assert int(attrs["threads"]) == 1
    det = json.loads(attrs["determinism"])
    assert det["threads"] == 1 and det["device"] == "cpu" and det["dtype"] == "float32"
    assert {"cudnn_deterministic", "cudnn_benchmark", "deterministic_algorithms"} <= set(det)


def test_train_without_threads_uses_one_thread_not_all_cores(tmp_path, data):
    import torch

    before = torch.get_num_threads()
    train_run(tiny_run_config(), tmp_path, data=data)
    assert int(store.check_run_file(tmp_path / store.RUN_FILE)["threads"]) == 1
    assert torch.get_num_threads() == before  # restored


# --------------------------------------------------------------------------- 5. no shell from config


INJECTIONS = [
    pytest.param({"results_dir": "$(touch INJECTED)"}, "results_dir", id="results_dir-subshell"),
    pytest.param({"results_dir": "r; touch INJECTED"}, "results_dir", id="results_dir-semicolon"),
    pytest.param({"resources": {"analysis": {"dask_scheduler": "tcp://h:1; touch INJECTED"}}},
                 "resources.analysis.dask_scheduler", id="dask_scheduler-semicolon"),
    pytest.param({"resources": {"analysis": {"dask_scheduler": "$(touch INJECTED)"}}},
                 "resources.analysis.dask_scheduler", id="dask_scheduler-subshell"),
    pytest.param({"analyses": {"paths": {"figures": {"layers": ["relu1; touch INJECTED"]}}}},
                 "analyses.paths.figures.layers", id="figure_layers-semicolon"),
    pytest.param({"analyses": {"paths": {"layers": ["$(touch INJECTED)"]}}},
                 "analyses.paths.layers", id="layers-subshell"),
    pytest.param({"analyses": {"paths": {"ratio_layer": "`touch INJECTED`"}}},
                 "analyses.paths.ratio_layer", id="ratio_layer-backquote"),
]  # fmt: skip


def _injected_config(change: dict) -> dict:
    exp = {
        "data": {"name": "digits", "n_test": 200},
        "model": {"name": "mlp", "width": 16, "depth": 1},
        "training": {"epochs": 1, "batch_size": 100},
        "recording": {"n_tracked_train": 16, "n_tracked_test": 8},
        "analyses": {"paths": {}},
    }
    cfg: dict[str, Any] = {"experiments": {"inj": exp}}
    for key, value in change.items():
        (exp if key == "analyses" else cfg)[key] = value
    return cfg


@pytest.mark.parametrize(("change", "key"), INJECTIONS)
def test_shell_syntax_in_config_values_is_rejected_before_any_job(change, key, tmp_path, cli_env):
    """Issue #15.5: config values that reach shell commands are validated against a pattern
    (and every path is quoted): Snakemake stops before any job, naming the key; nothing runs."""
    path = tmp_path / "inj.yaml"
    path.write_text(yaml.safe_dump(_injected_config(change)))
    res = subprocess.run([SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--configfile", str(path),
                          "--cores", "1"], cwd=tmp_path, env=cli_env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode != 0, res.stdout[-3000:]
    assert key in res.stderr + res.stdout, (res.stdout + res.stderr)[-3000:]
    assert not list(tmp_path.rglob("INJECTED")), "a config value was executed by the shell"
    assert not (tmp_path / "results").exists()
    with pytest.raises(ConfigError, match=key.split(".")[-1]):
        validate_config(_injected_config(change))
    # The patterns reject shell syntax, not ordinary paths and names.
    fine = validate_config({**_injected_config({}), "results_dir": "my results/é 1", "data_root": "/data/my sets"})
    assert fine["results_dir"] == "my results/é 1"


# --------------------------------------------------------------------------- 6. user config replaces the default


def test_user_configfile_replaces_the_default_experiments(tmp_path, cli_env):
    """Issue #15.6: a user file defining `quick` with a seed sweep built 4 runs (merged with the
    default's depth sweep, milestones inherited) while `gendyn validate` said 2; ids differed."""
    user = tmp_path / "user.yaml"
    user.write_text(yaml.safe_dump({
        "active_experiments": ["quick"],
        "experiments": {"quick": {
            "data": {"name": "digits", "n_test": 200},
            "model": {"name": "mlp", "width": 16},
            "training": {"epochs": 2, "batch_size": 100, "lr": 0.1},
            "recording": {"n_tracked_train": 16, "n_tracked_test": 8},
            "sweep": {"training.seed": [0, 1]},
        }},
    }))  # fmt: skip
    dry = subprocess.run([SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--configfile", str(user),
                          "-n", "-p", "--cores", "1"], cwd=tmp_path, env=cli_env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=300)  # fmt: skip
    assert dry.returncode == 0, dry.stdout[-3000:]
    trained = sorted(set(re.findall(r"wildcards: experiment=quick, run=(\S+)", dry.stdout)))
    validate = subprocess.run([GENDYN, "validate", str(user)], env=cli_env, capture_output=True, text=True, timeout=120)
    assert validate.returncode == 0, validate.stderr
    assert validate.stdout == "quick: 2 run(s): seed0, seed1\n"
    assert trained == ["seed0", "seed1"], trained
    run_cfg = re.search(r"gendyn run-config '(\{.*?\})' \S*seed0/config\.yaml", dry.stdout)
    assert run_cfg, dry.stdout[-3000:]
    assert json.loads(run_cfg.group(1))["training"]["lr_schedule"]["milestones"] == []  # nothing inherited


def test_a_config_file_without_experiments_says_it_replaces_the_default(tmp_path) -> None:
    with pytest.raises(ConfigError, match="whole configuration"):
        validate_config({"results_dir": "elsewhere"})


# --------------------------------------------------------------------------- 7. diverged runs flow through


def test_diverged_run_flows_through_paths_summary_and_figures(tmp_path, data, cli_env):
    """Issue #15.7: a diverged run (on_divergence: record, one record) made paths_compute fail
    ("1 records but lag=1") and with it the sweep. Now its analysis is a skipped-run file, the
    summary leaves it out (naming it), and its figures say it diverged."""
    good_cfg = tiny_run_config(training={"optimizer": "sgd", "lr": 0.1, "batch_size": 64, "epochs": 3,
                                         "device": "cpu", "lr_schedule": {"kind": "step", "milestones": [1, 2]}})  # fmt: skip
    bad_cfg = tiny_run_config(training={**good_cfg["training"], "lr": 1e6, "on_divergence": "record"}, run="bad")
    train_run(good_cfg, tmp_path / "runs" / "good", data=data)
    train_run(bad_cfg, tmp_path / "runs" / "bad", data=data)
    assert gendyn.diverged(tmp_path / "runs" / "bad") and not gendyn.diverged(tmp_path / "runs" / "good")
    nc = tmp_path / "analysis"

    def gendyn_cli(*args: str) -> subprocess.CompletedProcess:
        res = subprocess.run([GENDYN, *args], env=cli_env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        return res

    for run in ("good", "bad"):
        gendyn_cli("paths", "compute", str(tmp_path / "runs" / run), str(nc / f"{run}.nc"))
    assert gendyn.diverged(nc / "bad.nc") and gendyn.divergence(nc / "bad.nc")["step"] >= 1
    assert store.is_skipped(store.open_analysis(nc / "bad.nc").attrs)
    gendyn_cli("paths", "summary", str(nc / "good.nc"), str(nc / "bad.nc"), str(nc / "summary.nc"))
    summary = store.open_analysis(nc / "summary.nc")
    assert list(summary["run"].values) == ["tiny"] and json.loads(summary.attrs["diverged_runs"]) == ["bad"]
    figs = tmp_path / "figures"
    gendyn_cli("figures", "paths", "run", str(figs / "bad"), "--input", f"paths={nc / 'bad.nc'}", "--run", "bad")
    assert sorted(p.name for p in (figs / "bad").iterdir()) == ["diverged.pdf", "diverged.png"]
    gendyn_cli("figures", "views", "run", str(figs / "views_bad"), "--input", f"run={tmp_path / 'runs' / 'bad' / 'run.h5'}",
               "--input", f"paths={nc / 'bad.nc'}", "--run", "bad")  # fmt: skip
    assert (figs / "views_bad" / "dashboard.png").exists()
    gendyn_cli("figures", "paths", "experiment", str(figs / "exp"), "--input", f"summary={nc / 'summary.nc'}")
    assert (figs / "exp" / "fig7_early_mid_ratio.png").exists()
    from gendyn.registry import figure_info

    assert figure_info("paths", "diverged").label == "diverged run"  # the report files the note


def test_diverged_figure_title_note():
    import matplotlib.pyplot as plt

    from gendyn.figures.diverged import divergence_note, mark_diverged

    fig, _ = plt.subplots()
    fig.suptitle("exp / run")
    mark_diverged(fig, divergence_note({"": {"step": 7, "loss": "nan"}}))
    assert fig.get_suptitle() == "exp / run  (diverged at step 7)"
    plt.close(fig)


# --------------------------------------------------------------------------- 8. corruption, errors, validation, logs


def _overwrite_chunk(path: Path, dataset: str, n_bytes: int = 64) -> None:
    """Overwrite data bytes of ``dataset`` in place (the file still opens)."""
    with h5py.File(path, "r") as f:
        ds = f[dataset]
        if ds.chunks:
            offset = ds.id.get_chunk_info(0).byte_offset
        else:
            offset = ds.id.get_offset()
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(bytes([0xA5]) * n_bytes)


def test_info_verify_detects_overwritten_data_bytes(reference, tmp_path, cli_env):
    """Issue #15.8: overwritten data bytes went unnoticed (test_acc 1.8e127, "complete")."""
    out = _copy(reference, tmp_path / "run")
    ok = subprocess.run([GENDYN, "info", str(out), "--verify"], env=cli_env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "every checksum matches" in ok.stdout, ok.stderr
    _overwrite_chunk(out / store.RUN_FILE, "metrics/test_acc", 16)
    bad = subprocess.run([GENDYN, "info", str(out), "--verify"], env=cli_env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert str(out / store.RUN_FILE) in bad.stderr and "/metrics/test_acc" in bad.stderr, bad.stderr
    assert "gendyn train" in bad.stderr and "Traceback" not in bad.stderr
    with pytest.raises(store.StoreError, match="/metrics/test_acc"):
        gendyn.verify(out / store.RUN_FILE)


def test_corrupt_checkpoints_beside_a_good_run_is_rebuilt_not_nothing_to_do(reference, data, tmp_path):
    """Issue #15.8: a corrupt checkpoints.h5 beside a good run.h5 got "nothing to do"."""
    out = _copy(reference, tmp_path / "run")
    key = next(k for k in h5py.File(out / store.CHECKPOINT_FILE, "r")["state"])
    _overwrite_chunk(out / store.CHECKPOINT_FILE, f"state/{key}")
    with pytest.raises(store.StoreError, match=f"state/{key}"):
        gendyn.verify(out)
    train_run(_cfg(), out, data=data, threads=1)
    assert gendyn.verify(out) > 0
    assert _same(_contents(out), _contents(reference))


def test_read_errors_name_the_file_and_the_step_that_rewrites_it(reference, tmp_path):
    """Issue #15.8: 2 KiB overwritten mid-file gave a KeyError without a file name; the .nc
    error said "rerun 'gendyn train'"."""
    out = _copy(reference, tmp_path / "run")
    path = out / store.RUN_FILE
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(size // 2)
        fh.write(np.random.default_rng(0).bytes(2048))
    errors = []
    for read in (lambda: gendyn.masks(out).values, lambda: gendyn.open_run(out)["metrics"]["test_acc"].values,
                 lambda: store.open_group(path, "tracked"), lambda: gendyn.verify(path)):  # fmt: skip
        try:
            read()
        except store.StoreError as e:
            errors.append(str(e))
    assert errors, "no read noticed the damage"
    for msg in errors:
        assert str(path) in msg and "gendyn train" in msg, msg

    nc = tmp_path / "a.nc"
    import xarray as xr

    store.write_netcdf(xr.Dataset({"x": ("i", np.arange(3.0))}), nc, measure="lc", stage="gendyn lc compute")
    with h5py.File(nc, "r+") as f:
        f.attrs["status"] = "assembling"
    with pytest.raises(store.StoreError) as err:
        store.open_analysis(nc)
    assert "gendyn lc compute" in str(err.value) and "gendyn train" not in str(err.value)


BAD_DATA = [
    pytest.param({"training": {"batch_size": 5000, "drop_last": True}}, "training.batch_size", id="batch-size"),
    pytest.param({"recording": {"n_tracked_train": 4500}}, "recording.n_tracked_train", id="n-tracked"),
    pytest.param({"data": {"train_subset": 4500}}, "data.train_subset", id="train-subset"),
    pytest.param({"data": {"n_test": 5000}}, "data.n_test", id="n-test"),
    pytest.param({"recording": {"schedule": {"kind": "list", "steps": [10, 1000]}}}, "recording.schedule.steps",
                 id="list-steps"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "key"), BAD_DATA)
def test_data_dependent_values_fail_validation_not_the_job(change, key, tmp_path, capsys):
    """Issue #15.8: values that depend on the data passed `gendyn validate` and failed in the job."""
    from gendyn.cli import main

    exp = {
        "data": {"name": "mnist5k", "n_test": 1000},
        "model": {"name": "mlp"},
        "training": {"epochs": 2, "batch_size": 100},
        "recording": {"n_tracked_train": 16, "n_tracked_test": 8},
    }
    for section, values in change.items():
        exp[section] = {**exp[section], **values}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"experiments": {"x": exp}}))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert key in err, err


def test_validate_knows_split_sizes_exactly():
    """The sizes validate uses equal those load_data produces (the oracle)."""
    from gendyn.data import load_data
    from gendyn.datainfo import split_sizes

    for data in (
        {"name": "digits", "n_test": 300},
        {"name": "mnist5k", "n_test": 1000, "train_subset": 700, "test_subset": 50},
        {"name": "mnist5k", "n_test": 1000, "first_n": 300, "test_source": "train_split", "split_mode": "permutation"},
        {"name": "gaussian_noise", "base": "digits", "n_test": 200, "first_n": 100},
    ):
        d = load_data(data)
        got = split_sizes(validate_config({"experiments": {"x": {"data": data, "model": {"name": "mlp"},
                                                              "training": {"epochs": 1}}}})["experiments"]["x"]["data"])  # fmt: skip
        want = {"train": len(d.train), "test": len(d.test)} | ({"heldout": len(d.heldout)} if d.heldout is not None else {})
        assert got == want, data


def test_data_root_does_not_reach_runs_on_embedded_data():
    """Issue #15.8: changing data_root retrained runs on embedded data (it changed their config)."""
    cfg = validate_config({"experiments": {
        "emb": {"data": {"name": "mnist5k"}, "model": {"name": "mlp"}, "training": {"epochs": 1}},
        "disk": {"data": {"name": "cifar10"}, "model": {"name": "cnn"}, "training": {"epochs": 1},
                 "recording": {"n_tracked_train": 8, "n_tracked_test": 8}},
    }})  # fmt: skip
    a = expand_experiment("emb", cfg["experiments"]["emb"], data_root="/data/a")
    b = expand_experiment("emb", cfg["experiments"]["emb"], data_root="/data/b")
    assert a == b and a[0][2]["data"]["root"] is None
    (_, _, disk), = expand_experiment("disk", cfg["experiments"]["disk"], data_root="/data/a")
    assert disk["data"]["root"] == "/data/a"


def test_log_of_an_earlier_attempt_is_kept(tmp_path, cli_env):
    """Issue #15.8: the train log of a killed attempt was overwritten by the next attempt."""
    cfg_path = tmp_path / "cfg.yaml"
    write_run_config(tiny_run_config(training={**tiny_run_config()["training"], "epochs": 1}), cfg_path)
    log = tmp_path / "logs" / "train" / "tiny.log"
    log.parent.mkdir(parents=True)
    log.write_text("attempt 1: killed\n")
    res = subprocess.run([GENDYN, "--log", str(log), "train", str(cfg_path), str(tmp_path / "run")], env=cli_env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, log.read_text()[-2000:]
    assert (log.parent / "tiny.log.1").read_text() == "attempt 1: killed\n"
    assert "run complete" in log.read_text()
    res = subprocess.run([GENDYN, "--log", str(log), "train", str(cfg_path), str(tmp_path / "run")], env=cli_env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0
    assert "run complete" in (log.parent / "tiny.log.2").read_text() and "nothing to do" in log.read_text()
