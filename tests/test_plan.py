"""``gendyn plan``: sizes from shapes against files really written, memory against the stages
themselves, the command line and the plan printed when a workflow starts.

The job counts are checked against Snakemake dry runs in tests/test_cluster.py (they share its
dry runs of the paper configs); the sizes of every paper config's runs in
tests/test_paper_smoke.py (on the smoke runs' real files).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

from gendyn import store
from gendyn.config import stage_settings, validate_run
from gendyn.plan import _checkpoint_file, _run_file, plan_config, run_shape, should_print
from gendyn.train import train_run

from conftest import BIN, tiny_run_config

ROOT = Path(__file__).resolve().parents[1]


def _storage(path: Path, group: str | None = None) -> int:
    with h5py.File(path) as f:
        g = f[group] if group else f
        total = 0

        def visit(_name: str, obj: object) -> None:
            nonlocal total
            if isinstance(obj, h5py.Dataset):
                total += obj.id.get_storage_size()

        g.visititems(visit)
        return total


RUNS = {
    # a CNN with BatchNorm, masks and float16 activations at every 10 steps
    "cnn_acts": dict(
        model={"name": "cnn", "width": 6, "depth": 2, "bn": True},
        recording={"n_tracked_train": 24, "n_tracked_test": 8, "schedule": {"kind": "steps", "every": 10},
                   "activations": True, "activations_dtype": "float16", "checkpoint_every": 3},
    ),  # fmt: skip
    # a float64 MLP without tracked images (paper 001 style): metadata only in run.h5
    "mlp_lc": dict(
        model={"name": "mlp", "width": 32, "depth": 3, "dtype": "float64"},
        training={"optimizer": "adam", "lr": 1e-3, "batch_size": 100, "steps": 40, "seed": 1, "device": "cpu"},
        recording={"n_tracked_train": 0, "n_tracked_test": 0, "masks": False, "grad_norms": False,
                   "schedule": {"kind": "lc", "freq": 10}},
    ),  # fmt: skip
    # paper 003: paired batches, held-out split, objective metrics
    "objective": dict(
        data={"name": "digits", "n_test": 300, "seed": 0, "split_mode": "permutation", "first_n": 400,
              "test_source": "train_split"},
        model={"name": "mlp", "width": 16, "depth": 1, "softmax_head": True},
        training={"optimizer": "adam", "lr": 1e-3, "batch_size": 50, "epochs": 3, "seed": 0, "device": "cpu",
                  "objective": {"name": "J0", "k": 0.11, "loss_mode": "double_softmax"}},
        recording={"n_tracked_train": 16, "n_tracked_test": 16},
    ),  # fmt: skip
}


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    out = {}
    for name, over in RUNS.items():
        cfg = tiny_run_config(**over)
        d = tmp_path_factory.mktemp(name)
        train_run(cfg, d)
        out[name] = (d, cfg)
    return out


@pytest.mark.parametrize("name", sorted(RUNS))
def test_file_sizes_from_shapes_match_the_files_training_writes(name: str, trained_runs) -> None:
    """Data bytes exactly (whole chunks of the writers' layouts); file sizes within 25 %."""
    run_dir, cfg = trained_runs[name]
    shape = run_shape(cfg)
    attrs = store.check_run_file(run_dir / "run.h5")
    assert shape.steps_per_epoch == int(attrs["steps_per_epoch"]) and shape.total_steps == int(attrs["total_steps"])
    assert shape.record_steps.tolist() == np.asarray(attrs["record_steps"]).tolist()
    assert shape.checkpoint_steps.tolist() == store.checkpoint_steps(run_dir / "checkpoints.h5").tolist()
    assert [lay.name for lay in shape.layers] == json.loads(attrs["layers"])
    with h5py.File(run_dir / "run.h5") as f:
        assert shape.n_metrics == len([k for k in f["metrics"] if k != "step"])
        for lay in shape.layers:
            if "masks" in f:
                assert f["masks"][lay.name].attrs["n_units"] == lay.n_units
    want = _run_file(shape)
    got_masks = _storage(run_dir / "run.h5", "masks") if cfg["recording"]["masks"] else 0
    got_acts = _storage(run_dir / "run.h5", "activations") if cfg["recording"]["activations"] else 0
    masks_group_coords = 3 * 8 * shape.n_records if cfg["recording"]["masks"] else 0
    acts_group_coords = 3 * 8 * shape.n_records if cfg["recording"]["activations"] else 0
    assert want["masks"] == got_masks - masks_group_coords
    assert want["activations"] == got_acts - acts_group_coords
    size = (run_dir / "run.h5").stat().st_size
    assert abs(want["total"] / size - 1) <= 0.25, (want, size)
    ck = _checkpoint_file(shape)
    assert ck["state"] == _storage(run_dir / "checkpoints.h5", "state")
    csize = (run_dir / "checkpoints.h5").stat().st_size
    assert abs(ck["total"] / csize - 1) <= 0.25, (ck, csize)


def test_the_size_estimate_fails_when_the_layout_changes(trained_runs) -> None:
    """The mask bytes follow the writer's chunks: a different chunk shape gives a different count."""
    run_dir, cfg = trained_runs["cnn_acts"]
    shape = run_shape(cfg)
    lay = max(shape.layers, key=lambda la: la.n_units)
    exact, _ = store.chunked_nbytes((shape.n_records, shape.n_tracked, lay.n_units), store.record_chunks(shape.n_tracked, lay.n_units, 2), 2)
    with h5py.File(run_dir / "run.h5") as f:
        v = f["activations"][lay.name]
        assert v.chunks == store.record_chunks(shape.n_tracked, lay.n_units, 2)
        assert v.id.get_storage_size() == exact
    odd, _ = store.chunked_nbytes((shape.n_records, shape.n_tracked, lay.n_units), (1, 5, 7), 2)
    assert odd != exact


# --------------------------------------------------------------------------- analyses


def _file_variables(path: Path) -> dict[str, tuple[int, ...]]:
    ds = xr.open_dataset(path, engine="h5netcdf")
    out = {k: tuple(int(s) for s in v.shape) for k, v in ds.variables.items()}
    ds.close()
    return out


def test_paths_estimate_lists_the_variables_compute_writes(trained_runs, tmp_path: Path) -> None:
    from gendyn.paths.stage import _compute_variables, compute, estimate

    run_dir, cfg = trained_runs["cnn_acts"]
    settings = stage_settings("paths", {"max_pairwise": 12, "n_candidates": 10, "baselines": [1, 3], "overlap_images": 20})
    out = tmp_path / "paths.nc"
    store.write_netcdf(compute(run_dir, settings), out, measure="paths")
    shape = run_shape(cfg)
    n_img = shape.n_tracked_train
    want = _compute_variables(settings, shape.n_records, n_img, len(shape.layers), len(shape.layers), acts=True, n_ov=1)
    got = _file_variables(out)
    assert set(want) == set(got)
    for k, (dims, _) in want.items():
        assert tuple(dims) == got[k], k
    est = {st.stage: st for st in estimate(settings, [shape], experiment={}, budget_bytes=2**31)}
    assert abs(est["compute"].bytes / out.stat().st_size - 1) <= 0.25


def test_paths_estimate_names_the_out_of_memory_stage_the_analysis_refuses(trained_runs) -> None:
    """The plan's verdict is the stage's own: outputs above half the budget."""
    from gendyn.paths.stage import compute, estimate

    run_dir, cfg = trained_runs["cnn_acts"]
    settings = stage_settings("paths", {"max_pairwise": 24, "hist_bins": 100000})
    budget = 48 * 2**20
    (est,) = [st for st in estimate(settings, [run_shape(cfg)], experiment={}, budget_bytes=budget) if st.stage == "compute"]
    assert "half" in est.fails
    from gendyn.parallel import AnalysisJob

    with pytest.raises(MemoryError, match="budget"):
        compute(run_dir, settings, job=AnalysisJob(mem_budget_bytes=budget))
    ok = [st for st in estimate(settings, [run_shape(cfg)], experiment={}, budget_bytes=2**32) if st.stage == "compute"]
    assert not ok[0].fails


def test_lc_and_elasticity_estimates_list_the_variables_their_stages_write(trained_runs, tmp_path: Path) -> None:
    from gendyn.elasticity import stage as le
    from gendyn.lc import stage as lc

    run_dir, cfg = trained_runs["cnn_acts"]
    shape = run_shape(cfg)
    s = stage_settings("lc", {"radii": [0.1, 1.0], "n_directions": 2, "n_train": 5, "n_test": 4, "n_random": 3,
                              "n_records": 3, "regions": {"enabled": False}, "robust": {"enabled": True, "n_points": 4,
                                                                                        "steps": 1, "n_records": 2}})  # fmt: skip
    for stage, fn in (("compute", lc.compute), ("robust", lc.robust)):
        path = tmp_path / f"lc_{stage}.nc"
        store.write_netcdf(fn(run_dir, s), path, measure="lc")
        (est,) = [e for e in lc.estimate(s, [shape], experiment={}, budget_bytes=2**31) if e.stage == stage]
        assert abs(est.bytes / path.stat().st_size - 1) <= 0.25, (stage, est.bytes, path.stat().st_size)
    s = stage_settings("elasticity", {"n_per_class": 2, "records": "all", "histograms": {"n_per_class": 2}})
    for stage, call in (("run", lambda: le.compute(run_dir, s)), ("histograms", lambda: le.histograms(s, run=run_dir))):
        path = tmp_path / f"le_{stage}.nc"
        store.write_netcdf(call(), path, measure="elasticity")
        (est,) = [e for e in le.estimate(s, [shape], experiment={}, budget_bytes=2**31) if e.stage == stage]
        assert abs(est.bytes / path.stat().st_size - 1) <= 0.25, (stage, est.bytes, path.stat().st_size)


# --------------------------------------------------------------------------- plan of a config


def _config(**over) -> dict:
    from gendyn.config import validate_config

    cfg = {"active_experiments": ["a"], "experiments": {"a": {
        "data": {"name": "digits", "n_test": 300}, "model": {"name": "mlp", "width": 16, "depth": 2},
        "training": {"epochs": 2, "batch_size": 100}, "recording": {"n_tracked_train": 64, "n_tracked_test": 16},
        "analyses": {"paths": {"max_pairwise": 64}}, "sweep": {"training.seed": [0, 1, 2]}}}}  # fmt: skip
    cfg.update(over)
    return validate_config(cfg)


def test_plan_totals_are_sums_over_the_runs_of_an_experiment() -> None:
    plan = plan_config(_config())
    e = plan.as_dict()["experiments"]["a"]
    assert e["runs"] == 3
    one = run_shape(validate_run({"experiment": "a", "run": "seed0", **{k: _config()["experiments"]["a"][k] for k in
                                                                       ("data", "model", "training", "recording")}}))  # fmt: skip
    assert e["bytes"]["run_h5"] == 3 * _run_file(one)["total"]
    assert e["bytes"]["checkpoints_h5"] == 3 * _checkpoint_file(one)["total"]
    assert e["bytes"]["analysis"] > 0 and e["data"]["n_train"] == 1797 - 300 and e["model"]["relu_sites"] == [2, 2]


def test_should_print_follows_print_plan_and_gpu_requests() -> None:
    assert not should_print(_config())
    assert should_print(_config(print_plan=True))
    assert should_print(_config(resources={"train": {"gpu": 1}}))
    assert not should_print(_config(resources={"train": {"gpu": 1}}, print_plan=False))
    assert should_print(_config(print_plan="true"))  # as `--config print_plan=true` passes it


def test_calibration_times_real_steps_on_this_machine() -> None:
    plan = plan_config(_config(), calibrate=True)
    t = plan.experiments["a"].time
    assert t["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert 0 < t["calibrated_per_image_step_s"] < 1 and t["seconds_total"] > 0


def test_gendyn_plan_json_of_the_default_config(cli_env) -> None:
    """The command prints one object per active experiment with runs, jobs and bytes."""
    proc = subprocess.run([str(BIN / "gendyn"), "plan", "--json", str(ROOT / "config" / "config.yaml")],
                          capture_output=True, text=True, env=cli_env, timeout=300, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    from gendyn.config import active_experiments, load_yaml, validate_config

    cfg = validate_config(load_yaml(ROOT / "config" / "config.yaml"))
    assert set(plan["experiments"]) == set(active_experiments(cfg))
    for name, e in plan["experiments"].items():
        assert e["runs"] >= 1 and e["jobs"] >= 2 * e["runs"], name  # train + run_config; figures may be first-seed only
        assert set(e["bytes"]) >= {"run_h5", "checkpoints_h5", "analysis"}
        assert e["bytes"]["checkpoints_h5"] > 0 and e["gpu_jobs"] == 0
    assert plan["experiments"]["quick"]["jobs_by_rule"]["train"] == 2
    human = subprocess.run([str(BIN / "gendyn"), "plan", str(ROOT / "config" / "config.yaml")],
                           capture_output=True, text=True, env=cli_env, timeout=300, cwd=ROOT)  # fmt: skip
    assert human.returncode == 0 and "experiment quick: 2 run(s)" in human.stdout, human.stderr


def test_documented_sizes_agree_with_the_loader_on_stand_in_files(tmp_path: Path) -> None:
    """Without the files the plan applies load_data's selection to counts; on files it loads them."""
    from gendyn.config import validate_section
    from gendyn.data.sizes import data_sizes, documented_sizes
    from gendyn.smoke import IMAGENET_WNIDS, standin_table, write_standins

    write_standins(tmp_path)
    table = standin_table()
    sections = [
        {"name": "cifar10"}, {"name": "cifar10", "classes": [3, 5]}, {"name": "cifar10", "first_n": 6, "test_source": "train_split"},
        {"name": "cifar10", "train_subset": 7, "test_subset": 3}, {"name": "cifar100"}, {"name": "mnist", "classes": [5, 8]},
        {"name": "gaussian_noise", "base": "cifar10", "first_n": 4}, {"name": "mixture", "base": "mnist", "mix_fraction": 0.5},
        {"name": "imagenet", "image_size": 96}, {"name": "imagenet", "classes": list(IMAGENET_WNIDS[1:])},
        {"name": "digits", "n_test": 300, "first_n": 100, "test_source": "train_split", "split_mode": "permutation"},
    ]  # fmt: skip
    for sec in sections:
        sec = validate_section("data", {**sec, "root": str(tmp_path)}, "data")
        files = data_sizes(sec)
        doc = documented_sizes(sec, table)
        assert files.origin == "files" and doc.origin == "documented"
        assert (files.n_train, files.n_test, files.n_heldout, files.input_shape, files.n_classes) == (
            doc.n_train, doc.n_test, doc.n_heldout, doc.input_shape, doc.n_classes), sec  # fmt: skip
    absent = data_sizes({"name": "imagenet", "root": str(tmp_path / "nowhere"), "classes": ["a", "b"]})
    assert absent.origin == "documented" and absent.n_classes == 2 and absent.input_shape == (3, 224, 224)


# --------------------------------------------------------------------------- printed when a run starts


def test_a_run_that_asks_for_it_prints_the_plan_first(tmp_path: Path) -> None:
    from test_workflow import snakemake, write_config

    cfg = {"print_plan": True, "active_experiments": ["t"], "experiments": {"t": {
        "data": {"name": "digits", "n_test": 200}, "model": {"name": "mlp", "width": 8, "depth": 1},
        "training": {"epochs": 1, "batch_size": 100}, "recording": {"n_tracked_train": 8, "n_tracked_test": 4}}}}  # fmt: skip
    path = write_config(tmp_path / "c.yaml", cfg)
    res = snakemake(tmp_path, "--cores", "1", "results/t/runs/base/run.h5", configfile=path)
    assert res.returncode == 0, res.describe()
    head = res.output[res.output.index("gendyn plan"):]
    assert "experiment t: 1 run(s)" in head and "train 1" in head
    # the plan comes before the first job starts
    assert res.output.index("gendyn plan") < res.output.index("rule train")
    assert (tmp_path / "results" / "t" / "runs" / "base" / "run.h5").exists()
