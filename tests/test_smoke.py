"""gendyn.smoke: the smoke config changes sizes only, and the stand-in files are the real formats.

The smoke runs themselves (every paper config end to end) are in tests/test_paper_smoke.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from gendyn.config import active_experiments, expand_experiment, load_workflow_config, validate_config
from gendyn.smoke import EPOCHS, N_TRACKED, STEPS, smoke_config, write_standins, write_weights

from conftest import BIN

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "config" / "experiments").glob("*.yaml"))


def _merged(path: Path) -> dict:
    """The configuration ``snakemake --configfile PATH`` builds (the file is the whole configuration)."""
    return load_workflow_config([path])


#: Keys a smoke run may change, per section (sizes, schedules, paths, resources); all others stay.
SIZE_KEYS = {
    "data": {"root", "train_subset", "test_subset", "first_n"},
    "training": {"epochs", "steps", "lr_schedule", "num_workers"},
    "recording": {"schedule", "n_tracked_train", "n_tracked_test", "checkpoint_every", "metrics_subset"},
}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_smoke_config_changes_sizes_only(path: Path, tmp_path: Path) -> None:
    cfg = _merged(path)
    smoke = smoke_config(cfg, data_root=tmp_path)
    assert smoke["results_dir"] == str(Path(cfg["results_dir"]) / "smoke") and smoke["data_root"] == str(tmp_path)
    assert active_experiments(smoke) == active_experiments(cfg)
    assert smoke["resources"]["train"]["gpu"] == 0
    for name in active_experiments(cfg):
        exp, sexp = cfg["experiments"][name], smoke["experiments"][name]
        assert sexp["model"] == exp["model"], "models keep every key (widths, depths, dtype)"
        assert set(sexp["analyses"]) == set(exp["analyses"]), "every analysis stays on"
        for sec, keys in SIZE_KEYS.items():
            for k in set(exp[sec]) | set(sexp[sec]):
                if k not in keys:
                    assert sexp[sec].get(k) == exp[sec].get(k), f"{name}: {sec}.{k} changed"
        for key, values in exp["sweep"].items():
            kept = sexp["sweep"][key]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                assert kept == values, f"{name}: categorical sweep {key} thinned"
            else:
                assert 1 <= len(kept) <= 2
        tr = sexp["training"]
        assert (tr["epochs"] or 0) <= EPOCHS and (tr["steps"] or 0) <= STEPS
        assert sexp["recording"]["n_tracked_train"] <= N_TRACKED
        if exp["training"]["epochs"] and exp["training"]["lr_schedule"].get("milestones"):
            # LR decays still happen inside the shorter run (paper 000's early/mid stages need one)
            assert 1 <= len(tr["lr_schedule"]["milestones"]) and max(tr["lr_schedule"]["milestones"]) < tr["epochs"]
        runs = expand_experiment(name, sexp, data_root=smoke["data_root"])
        assert 1 <= len(runs) <= len(expand_experiment(name, exp, data_root=cfg["data_root"]))
    assert validate_config(smoke) == smoke and smoke_config(smoke, data_root=tmp_path)["experiments"] == smoke["experiments"]


def test_stand_ins_load_with_the_real_loaders_at_the_real_shapes(tmp_path: Path) -> None:
    from gendyn.data import load_data
    from gendyn.smoke import IMAGENET_WNIDS

    write_standins(tmp_path)
    for section, shape, n_classes in (
        ({"name": "cifar10"}, (3, 32, 32), 10),
        ({"name": "cifar100"}, (3, 32, 32), 100),
        ({"name": "mnist"}, (1, 28, 28), 10),
        ({"name": "imagenet", "image_size": 224}, (3, 224, 224), len(IMAGENET_WNIDS)),
        ({"name": "imagenet", "image_size": 160, "classes": list(IMAGENET_WNIDS[1:])}, (3, 160, 160), 3),
    ):
        d = load_data({**section, "root": str(tmp_path)})
        assert d.input_shape == shape and d.n_classes == n_classes, section
        x, y = d.train.get(np.arange(len(d.train)))
        assert tuple(x.shape[1:]) == shape and len(d.train) >= 6 and len(d.test) >= 3
        if n_classes <= 10:
            assert set(y.tolist()) == set(range(n_classes)), "every class has training images"
    # idempotent: a second call keeps the files
    mtime = (tmp_path / "cifar-10-batches-py" / "data_batch_1").stat().st_mtime_ns
    write_standins(tmp_path)
    assert (tmp_path / "cifar-10-batches-py" / "data_batch_1").stat().st_mtime_ns == mtime


def test_vgg19_stand_in_weights_have_torchvision_layout(tmp_path: Path) -> None:
    """gendyn's VGG-19 state dict has torchvision's keys and shapes (checked on the meta device),
    and a written stand-in loads strictly as the configured pretrained weights."""
    import torchvision

    from gendyn.elasticity.stage import pretrained_model
    from gendyn.models import build_model

    with torch.device("meta"):
        ours = build_model({"name": "vgg19"}, (3, 224, 224), 1000).state_dict()
        theirs = torchvision.models.vgg19(weights=None).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    small = {"name": "vgg19", "width_factor": 0.0625}
    path = write_weights(tmp_path / "w.pth", small, (3, 64, 64), 10)
    state = torch.load(path, weights_only=True)
    model = pretrained_model(small, (3, 64, 64), 10, path)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_smoke_data_command_writes_every_dataset(tmp_path: Path, cli_env) -> None:
    proc = subprocess.run([str(BIN / "gendyn"), "smoke-data", str(tmp_path), "--datasets", "mnist", "imagenet"],
                          capture_output=True, text=True, env=cli_env, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == sorted(
        __import__("gendyn.smoke", fromlist=["IMAGENET_WNIDS"]).IMAGENET_WNIDS
    )
    assert not (tmp_path / "cifar-10-batches-py").exists()


def test_command_line_booleans_reach_the_config() -> None:
    """`--config smoke=true` arrives as the string 'true' from Snakemake."""
    cfg = validate_config({"smoke": "true", "print_plan": "False", "experiments": {"a": {
        "data": {"name": "digits"}, "model": {"name": "mlp"}, "training": {"epochs": 1}}}})  # fmt: skip
    assert cfg["smoke"] is True and cfg["print_plan"] is False
