"""Tests for :mod:`gendyn.config`: schema validation, defaults, sweep expansion, run ids.

Pure Python and fast, except two ``gendyn validate`` subprocess calls (each imports torch).
"""

from __future__ import annotations

import copy
import csv
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gendyn.config import (
    ConfigError,
    active_experiments,
    config_hash,
    expand_experiment,
    load_yaml,
    read_run_config,
    run_id,
    validate_config,
    validate_run,
    validate_section,
    write_run_config,
    write_runs_table,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "config" / "config.yaml"
VENV_BIN = ROOT / ".venv" / "bin"
GENDYN = VENV_BIN / "gendyn"


def _subprocess_env() -> dict[str, str]:
    """The venv's executables first on PATH (``gendyn`` resolves to this checkout)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _minimal() -> dict[str, Any]:
    """The smallest valid workflow configuration: one experiment ``x``, no sweep."""
    return {
        "experiments": {
            "x": {
                "data": {"name": "digits"},
                "model": {"name": "mlp"},
                "training": {"epochs": 1},
            }
        }
    }


def _exp(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg["experiments"]["x"]


def _expand(sweep: dict[str, list[Any]] | None = None, **kw: Any) -> list[tuple[str, dict, dict]]:
    cfg = _minimal()
    if sweep is not None:
        _exp(cfg)["sweep"] = sweep
    full = validate_config(cfg)
    return expand_experiment("x", full["experiments"]["x"], **kw)


# --------------------------------------------------------------------------- default config


def test_default_config_validates_and_fills_defaults() -> None:
    raw = load_yaml(DEFAULT_CONFIG)
    before = copy.deepcopy(raw)
    cfg = validate_config(raw, source=str(DEFAULT_CONFIG))
    assert raw == before, "validate_config must not modify its input"

    quick = cfg["experiments"]["quick"]
    assert quick["recording"]["schedule"]["kind"] == "epoch"
    assert quick["training"]["device"] == "auto"
    # Defaults of sections the file does not mention at all.
    assert quick["figures"] == {"dpi": 150, "x_axis": "auto", "log_x": "auto", "dashboard": True, "run_figures": "all"}
    assert quick["recording"]["masks"] is True
    assert quick["recording"]["schedule"]["include_init"] is True
    assert quick["training"]["lr_schedule"]["unit"] == "epoch"
    assert quick["model"]["bn"] is False
    assert {k: cfg["resources"]["analysis"][k] for k in ("threads", "mem_mb", "runtime")} == {
        "threads": 1,
        "mem_mb": 4000,
        "runtime": 60,
    }
    assert cfg["active_experiments"] is None
    # Values given in the file are kept.
    assert quick["training"]["lr_schedule"]["milestones"] == [4, 6]
    assert cfg["resources"]["train"]["mem_mb"] == 2000
    assert active_experiments(cfg)[0] == "quick"


def test_default_config_expands_to_two_valid_runs() -> None:
    cfg = validate_config(load_yaml(DEFAULT_CONFIG))
    runs = expand_experiment("quick", cfg["experiments"]["quick"], data_root=cfg["data_root"])
    assert [r for r, _, _ in runs] == ["depth1", "depth2"]
    for rid, swept, rcfg in runs:
        assert rcfg["experiment"] == "quick" and rcfg["run"] == rid
        assert rcfg["model"]["depth"] == swept["model.depth"]
        assert rcfg["data"]["root"] is None  # embedded data (mnist5k): data_root does not reach it
        assert validate_run(rcfg) == rcfg  # a resolved run is a fixed point of validation


def test_validate_config_fills_nested_defaults_of_minimal_config() -> None:
    cfg = validate_config(_minimal())
    assert cfg["results_dir"] == "results"
    assert cfg["data_root"] == "data"
    train_res = cfg["resources"]["train"]
    assert {k: train_res[k] for k in ("gpu", "threads", "mem_mb", "runtime")} == {
        "gpu": 0,
        "threads": 1,
        "mem_mb": 4000,
        "runtime": 60,
    }
    x = _exp(cfg)
    assert x["sweep"] == {} and x["description"] == ""
    assert x["training"]["optimizer"] == "sgd" and x["training"]["steps"] is None
    assert x["recording"]["schedule"] == {
        "kind": "epoch",
        "every": 1,
        "n": 50,
        "steps": [],
        "freq": None,
        "include_init": True,
        "include_final": True,
    }


def test_active_experiments_order_and_selection() -> None:
    cfg = _minimal()
    cfg["experiments"]["b"] = copy.deepcopy(_exp(cfg))
    cfg["experiments"]["a"] = copy.deepcopy(_exp(cfg))
    assert active_experiments(validate_config(cfg)) == ["x", "b", "a"]  # file order
    cfg["active_experiments"] = ["a"]
    assert active_experiments(validate_config(cfg)) == ["a"]


# --------------------------------------------------------------------------- bad configs


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Mutator setting a dotted key relative to the config root."""

    def mutate(cfg: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value

    return mutate


def _pop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(cfg: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        del node[last]

    return mutate


X = "experiments.x"

BAD_CONFIGS = [
    pytest.param(
        _set(f"{X}.model.name", "resnet19"),
        ["experiments.x.model.name", "'resnet19'", "'mlp'", "'resnet18'"],
        id="unknown-model-name",
    ),
    pytest.param(
        _set(f"{X}.training.foo", 1),
        ["experiments.x.training", "'foo'", "allowed keys", "batch_size", "epochs", "lr_schedule"],
        id="unknown-training-key",
    ),
    pytest.param(
        _set(f"{X}.training.batch_size", "64"),
        ["experiments.x.training.batch_size", "'64'", "integer"],
        id="wrong-type",
    ),
    pytest.param(
        _set(f"{X}.data.label_noise", 1.5),
        ["experiments.x.data.label_noise", "1.5", "maximum 1"],
        id="out-of-range",
    ),
    pytest.param(
        _set(f"{X}.training.steps", 5),
        ["experiments.x.training", "epochs=1", "steps=5"],
        id="both-epochs-and-steps",
    ),
    pytest.param(
        _pop(f"{X}.training.epochs"),
        ["experiments.x.training", "epochs", "steps"],
        id="neither-epochs-nor-steps",
    ),
    pytest.param(
        _set(f"{X}.sweep", {"model.depht": [1, 2]}),
        ["experiments.x.sweep.model.depht", "'depht'", "depth", "width"],
        id="sweep-key-unknown",
    ),
    pytest.param(
        _set(f"{X}.sweep", {"model.depth": [0]}),
        ["experiments.x.model.depth", "0", "minimum 1", "sweep.model.depth"],
        id="sweep-value-invalid",
    ),
    pytest.param(
        _set(f"{X}.sweep", {"model.name": ["mlp", "resnet19"]}),
        ["experiments.x.model.name", "'resnet19'", "'mlp'", "sweep.model.name"],
        id="sweep-value-not-in-enum",
    ),
    pytest.param(
        _set("active_experiments", ["x", "y"]),
        ["active_experiments", "'y'", "'x'"],
        id="active-experiment-unknown",
    ),
    pytest.param(
        _set(f"{X}.recording", {"schedule": {"kind": "list"}}),
        ["experiments.x.recording.schedule.steps", "list"],
        id="schedule-list-without-steps",
    ),
    pytest.param(
        _set(f"{X}.model", {"name": "alexnet", "bn": True}),
        ["experiments.x.model.bn", "alexnet"],
        id="alexnet-with-bn",
    ),
    pytest.param(
        _set(f"{X}.model", {"name": "convnet", "bn": True}),
        ["experiments.x.model.bn", "convnet", "set experiments.x.model.bn: false"],
        id="convnet-with-bn",
    ),
    pytest.param(
        _set(f"{X}.model.dropout", 1.0),
        ["experiments.x.model.dropout", "1.0", "exclusiveMaximum 1"],
        id="dropout-one",
    ),
    pytest.param(
        _set(f"{X}.model.depth", 2.0),
        ["experiments.x.model.depth", "2.0", "not an integer"],
        id="integer-written-as-float",
    ),
    pytest.param(
        _set(f"{X}.data", {"name": "digits", "first_n": 10, "train_subset": 5}),
        ["experiments.x.data.first_n", "10", "train_subset", "ambiguous"],
        id="first-n-with-subset",
    ),
    pytest.param(
        _set(f"{X}.data", {"name": "digits", "random_labels": True, "label_noise": 0.2}),
        ["experiments.x.data.label_noise", "0.2", "random_labels"],
        id="random-labels-with-label-noise",
    ),
    pytest.param(
        _set(f"{X}.data", {"name": "imagenet", "classes": [3, 5]}),
        ["experiments.x.data.classes", "[3, 5]", "wnids"],
        id="imagenet-integer-classes",
    ),
    pytest.param(
        _set(f"{X}.data", {"name": "digits", "classes": [3, 5, 3]}),
        ["experiments.x.data.classes", "[3, 5, 3]", "duplicates"],
        id="duplicate-classes",
    ),
    pytest.param(
        _set(f"{X}.data", {"name": "mixture", "base": "imagenet"}),
        ["experiments.x.data.base", "'imagenet'", "'cifar100'"],
        id="noise-base-not-in-memory",
    ),
    pytest.param(
        _set(f"{X}.data.mix_fraction", float("nan")),
        ["experiments.x.data.mix_fraction", "nan", "finite"],
        id="nan",
    ),
    pytest.param(
        _set("result_dir", "out"),
        ["'result_dir'", "results_dir", "experiments"],
        id="unknown-top-level-key",
    ),
    pytest.param(
        _set(f"{X}.sweep", {"figures.dpi": [80]}),
        ["experiments.x.sweep", "figures.dpi"],
        id="sweep-outside-run-sections",
    ),
    pytest.param(
        _set(f"{X}.sweep", {"model.depth": 3}),
        ["experiments.x.sweep.model.depth", "3", "array"],
        id="sweep-value-not-a-list",
    ),
    pytest.param(
        _set(f"{X}.sweep", {"model.depth": []}),
        ["experiments.x.sweep.model.depth", "[]"],
        id="sweep-empty-list",
    ),
    pytest.param(
        _set(f"{X}.figures", {"x_axis": "time"}),
        ["experiments.x.figures.x_axis", "'time'", "'step'", "'epoch'"],
        id="figure-option",
    ),
    pytest.param(
        _set("experiments.bad name", {"data": {"name": "digits"}, "model": {"name": "mlp"}, "training": {"epochs": 1}}),
        ["experiments", "'bad name'"],
        id="experiment-name-pattern",
    ),
    pytest.param(
        _pop(f"{X}.model"),
        ["experiments.x", "'model'"],
        id="missing-section",
    ),
    pytest.param(
        _set(f"{X}.training.lr_schedule", {"kind": "step", "milestones": [0]}),
        ["experiments.x.training.lr_schedule.milestones.0", "0", "minimum 1"],
        id="list-item-path",
    ),
    pytest.param(
        _set(f"{X}.training.epochs", True),
        ["experiments.x.training.epochs", "True", "integer"],
        id="bool-is-not-an-integer",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), BAD_CONFIGS)
def test_bad_config_raises_config_error_naming_key_value_and_allowed(
    mutate: Callable[[dict[str, Any]], None], expected: list[str]
) -> None:
    cfg = _minimal()
    mutate(cfg)
    with pytest.raises(ConfigError) as info:
        validate_config(cfg, source="test.yaml")
    msg = str(info.value)
    for part in expected:
        assert part in msg, f"{part!r} missing from the error message:\n{msg}"
    assert msg.startswith("test.yaml: "), msg


@pytest.mark.parametrize(
    ("sweep", "expected"),
    [
        pytest.param({"model.name": ["alexnet"]}, ["model.bn", "alexnet", "namealexnet"], id="alexnet-bn"),
        pytest.param({"training.steps": [5]}, ["epochs=1", "steps=5", "steps5"], id="epochs-and-steps"),
        pytest.param({"recording.schedule.kind": ["list"]}, ["recording.schedule.steps", "kindlist"], id="list"),
        pytest.param({"model.name": ["convnet"]}, ["model.bn", "convnet", "nameconvnet"], id="convnet-bn"),
    ],
)
def test_sweep_combination_violating_semantics_fails_at_expansion(sweep: dict, expected: list[str]) -> None:
    """A sweep value valid on its own can make a run invalid; expansion (run before any job) says which run."""
    cfg = _minimal()
    _exp(cfg)["model"]["bn"] = True  # fine for mlp, not for alexnet
    _exp(cfg)["sweep"] = sweep
    full = validate_config(cfg)
    with pytest.raises(ConfigError) as info:
        expand_experiment("x", full["experiments"]["x"])
    msg = str(info.value)
    for part in expected:
        assert part in msg, f"{part!r} missing from:\n{msg}"


@pytest.mark.parametrize(
    "training",
    [{"epochs": None}, {"epochs": None, "steps": None}],
    ids=["epochs-null", "both-null"],
)
def test_null_training_length_is_rejected(training: dict[str, Any]) -> None:
    cfg = _minimal()
    _exp(cfg)["training"] = training
    with pytest.raises(ConfigError, match="epochs"):
        full = validate_config(cfg)
        expand_experiment("x", full["experiments"]["x"])


def test_validate_run_rejects_bn_for_models_without_batch_norm() -> None:
    """models.py and the schema used to disagree on convnet + bn: the config layer now decides."""
    run = {"data": {"name": "digits"}, "model": {"name": "convnet", "bn": True}, "training": {"epochs": 1}}
    with pytest.raises(ConfigError) as info:
        validate_run(run, source="run.yaml")
    msg = str(info.value)
    assert msg.startswith("run.yaml: ") and "model.bn" in msg and "convnet" in msg and "set model.bn: false" in msg
    with pytest.raises(ConfigError, match="model.bn: true is not available for alexnet"):
        validate_run({**run, "model": {"name": "alexnet", "bn": True}})
    for name in ("mlp", "cnn", "convonly", "vgg19", "resnet18", "resnet110", "preact_resnet18"):
        assert validate_run({**run, "model": {"name": name, "bn": True}})["model"]["bn"] is True
    assert validate_run({**run, "model": {"name": "convnet"}})["model"]["bn"] is False


def test_validate_section_applies_the_cross_key_rules_of_data_and_model() -> None:
    with pytest.raises(ConfigError, match=r"^cfg.yaml: my.data.first_n: 3 together with my.data.train_subset"):
        validate_section("data", {"name": "digits", "first_n": 3, "train_subset": 5}, "my.data", source="cfg.yaml")
    with pytest.raises(ConfigError, match="model.bn: true is not available for convnet"):
        validate_section("model", {"name": "convnet", "bn": True}, "model")
    section = validate_section("data", {"name": "digits"}, "data")
    assert section["normalize"] == "auto" and section["classes"] is None
    assert validate_section("data", section, "data") == section


def test_validate_run_rejects_workflow_only_keys_and_semantics() -> None:
    run = {"data": {"name": "digits"}, "model": {"name": "mlp"}, "training": {"epochs": 1}}
    out = validate_run(run)
    assert out["recording"]["n_tracked_train"] == 128 and "run" not in out
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'sweep'"):
        validate_run({**run, "sweep": {"model.depth": [1]}})
    with pytest.raises(ConfigError, match="both epochs=1 and steps=2"):
        validate_run({**run, "training": {"epochs": 1, "steps": 2}})
    with pytest.raises(ConfigError, match="run.yaml: invalid configuration"):
        validate_run({**run, "model": {"name": "resnet19"}}, source="run.yaml")


def test_load_yaml_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.yaml: file not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiments: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_yaml(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping at the top level, got list"):
        load_yaml(listy)


# --------------------------------------------------------------------------- sweep expansion


def test_grid_size_order_and_readable_ids() -> None:
    runs = _expand({"model.depth": [1, 2, 3], "training.seed": [0, 1]})
    assert len(runs) == 3 * 2
    assert [r for r, _, _ in runs] == [
        "depth1_seed0",
        "depth1_seed1",
        "depth2_seed0",
        "depth2_seed1",
        "depth3_seed0",
        "depth3_seed1",
    ]
    for rid, swept, cfg in runs:
        assert cfg["run"] == rid and cfg["experiment"] == "x"
        assert swept == {"model.depth": cfg["model"]["depth"], "training.seed": cfg["training"]["seed"]}
        assert cfg["model"]["name"] == "mlp" and cfg["training"]["epochs"] == 1  # base values kept
        assert cfg["recording"]["schedule"]["kind"] == "epoch"  # defaults filled
        assert "sweep" not in cfg and "figures" not in cfg and "description" not in cfg


def test_expansion_is_deterministic_and_does_not_mutate_the_experiment() -> None:
    cfg = validate_config(_minimal())
    exp = cfg["experiments"]["x"]
    exp["sweep"] = {"model.depth": [1, 2], "training.lr": [0.01, 0.1]}
    before = copy.deepcopy(exp)
    a = expand_experiment("x", exp)
    b = expand_experiment("x", exp)
    assert a == b
    assert exp == before
    a[0][2]["model"]["depth"] = 99  # results are independent copies
    assert expand_experiment("x", exp)[0][2]["model"]["depth"] == 1


def test_ambiguous_last_keys_are_disambiguated() -> None:
    runs = _expand({"data.seed": [0, 1], "training.seed": [0, 2]})
    ids = [r for r, _, _ in runs]
    assert ids == [
        "data-seed0_training-seed0",
        "data-seed0_training-seed2",
        "data-seed1_training-seed0",
        "data-seed1_training-seed2",
    ]
    last = runs[-1][2]
    assert last["data"]["seed"] == 1 and last["training"]["seed"] == 2


def test_only_the_ambiguous_keys_get_longer_labels() -> None:
    ids = [r for r, _, _ in _expand({"model.depth": [2], "data.seed": [0], "training.seed": [1]})]
    assert ids == ["depth2_data-seed0_training-seed1"]


@pytest.mark.parametrize(
    ("sweep", "ids"),
    [
        pytest.param({"training.lr": [0.01, 0.1, 1e-5, 1.0]}, ["lr0.01", "lr0.1", "lr1e-05", "lr1"], id="float"),
        pytest.param({"data.label_noise": [0.0, 0.25]}, ["label_noise0", "label_noise0.25"], id="float-zero"),
        pytest.param({"data.random_labels": [False, True]}, ["random_labelsfalse", "random_labelstrue"], id="bool"),
        pytest.param({"data.classes": [[0, 1], None]}, ["classes0+1", "classesnone"], id="list-and-none"),
        pytest.param({"data.name": ["digits", "mnist5k"]}, ["namedigits", "namemnist5k"], id="string"),
        pytest.param(
            {"training.lr_schedule.kind": ["constant", "cosine"]},
            ["kindconstant", "kindcosine"],
            id="nested-key",
        ),
    ],
)
def test_value_formatting_in_run_ids(sweep: dict[str, list[Any]], ids: list[str]) -> None:
    runs = _expand(sweep)
    assert [r for r, _, _ in runs] == ids
    assert len(set(ids)) == len(ids)
    for _, swept, cfg in runs:
        ((key, value),) = swept.items()
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == value


def test_run_ids_are_distinct_and_match_the_wildcard_constraint() -> None:
    import re

    runs = _expand({"training.lr": [0.001, 0.01, 0.1], "data.seed": [0, 1], "training.seed": [0, 1]})
    ids = [r for r, _, _ in runs]
    assert len(ids) == len(set(ids)) == 12
    # workflow/rules/common.smk: wildcard_constraints run="[A-Za-z0-9][A-Za-z0-9_.+-]*"
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", r) for r in ids), ids


def test_values_equal_after_formatting_are_an_error() -> None:
    with pytest.raises(ConfigError, match=r"same run id 'lr0.1'"):
        _expand({"training.lr": [0.1, 0.10000001]})


def test_no_sweep_gives_base() -> None:
    runs = _expand()
    assert [(r, s) for r, s, _ in runs] == [("base", {})]
    assert runs[0][2]["run"] == "base"
    assert run_id({}) == "base"
    assert run_id({"model.depth": 1}, keys=[]) == "base"


def _expand_on_disk(sweep: dict[str, list[Any]] | None = None, **kw: Any) -> list[tuple[str, dict, dict]]:
    cfg = _minimal()
    _exp(cfg)["data"] = {"name": "mnist"}
    if sweep is not None:
        _exp(cfg)["sweep"] = sweep
    return expand_experiment("x", validate_config(cfg)["experiments"]["x"], **kw)


def test_data_root_fills_data_root_where_absent() -> None:
    (_, _, cfg), = _expand_on_disk(data_root="/data/sets")
    assert cfg["data"]["root"] == "/data/sets"
    (_, _, cfg), = _expand_on_disk(data_root=None)
    assert cfg["data"]["root"] is None

    explicit = _minimal()
    _exp(explicit)["data"] = {"name": "mnist", "root": "/mine"}
    full = validate_config(explicit)
    (_, _, cfg), = expand_experiment("x", full["experiments"]["x"], data_root="/data/sets")
    assert cfg["data"]["root"] == "/mine"

    # A swept root wins too.
    runs = _expand_on_disk({"data.root": ["/a", "/b"]}, data_root="/data/sets")
    assert [c["data"]["root"] for _, _, c in runs] == ["/a", "/b"]


def test_run_id_is_stable_across_calls() -> None:
    assignment = {"model.depth": 2, "training.lr": 0.05, "training.seed": 3}
    first = run_id(assignment)
    assert first == "depth2_lr0.05_seed3"
    assert all(run_id(dict(assignment)) == first for _ in range(3))
    # keys fix the order, independent of the mapping's order
    keys = list(assignment)
    reordered = dict(reversed(list(assignment.items())))
    assert run_id(reordered, keys) == first
    assert run_id(reordered) == "seed3_lr0.05_depth2"


def test_write_runs_table_one_row_per_run_with_swept_columns(tmp_path: Path) -> None:
    runs = _expand({"model.depth": [1, 2], "training.lr": [0.01, 0.1], "data.classes": [[0, 1]]})
    path = tmp_path / "sub" / "runs.csv"
    path.parent.mkdir()
    write_runs_table(runs, path)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["run", "model.depth", "training.lr", "data.classes"]
    assert [r["run"] for r in rows] == [rid for rid, _, _ in runs]
    assert len(rows) == 4
    assert rows[0] == {
        "run": "depth1_lr0.01_classes0+1",
        "model.depth": "1",
        "training.lr": "0.01",
        "data.classes": "[0, 1]",
    }
    assert not list(tmp_path.glob("sub/*.partial*")), "atomic write left a temporary file"


def test_write_runs_table_without_sweep(tmp_path: Path) -> None:
    path = tmp_path / "runs.csv"
    write_runs_table(_expand(), path)
    assert path.read_text() == "run\nbase\n"


def test_run_config_round_trip(tmp_path: Path) -> None:
    (_, _, cfg), = _expand(data_root="data")
    path = tmp_path / "runs" / "base" / "config.yaml"
    path.parent.mkdir(parents=True)
    write_run_config(cfg, path)
    assert read_run_config(path) == cfg
    assert list(yaml.safe_load(path.read_text()))[:2] == ["experiment", "run"]  # order kept


def test_config_hash_covers_training_sections_only() -> None:
    runs = _expand({"model.depth": [1, 2]})
    (_, _, a), (_, _, b) = runs
    assert config_hash(a) == config_hash(copy.deepcopy(a))
    assert len(config_hash(a)) == 16
    assert config_hash(a) != config_hash(b)
    assert config_hash({**a, "run": "other", "experiment": "other"}) == config_hash(a)


# --------------------------------------------------------------------------- command line


def test_cli_validate_default_config_lists_runs() -> None:
    proc = subprocess.run(
        [str(GENDYN), "validate", str(DEFAULT_CONFIG)],
        capture_output=True,
        text=True,
        env=_subprocess_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "quick: 2 run(s): depth1, depth2" in proc.stdout.splitlines()


def test_cli_validate_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    cfg = _minimal()
    _exp(cfg)["model"]["name"] = "resnet19"
    bad.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [str(GENDYN), "validate", str(bad)],
        capture_output=True,
        text=True,
        env=_subprocess_env(),
        timeout=120,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "experiments.x.model.name" in proc.stderr
    assert "'resnet19'" in proc.stderr
    assert str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_cli_validate_merges_files_like_snakemake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In process (no torch import per call): later files extend/replace earlier ones."""
    from gendyn.cli import main

    extra = tmp_path / "extra.yaml"
    extra.write_text(
        yaml.safe_dump(
            {
                "active_experiments": ["tiny"],
                "experiments": {
                    "tiny": {**_exp(_minimal()), "sweep": {"training.seed": [0, 1]}},
                    "quick": {"training": {"lr": 0.5}},  # merged into the default's quick
                },
            }
        )
    )
    assert main(["validate", str(DEFAULT_CONFIG), str(extra)]) == 0
    out = capsys.readouterr().out
    assert out == "tiny: 2 run(s): seed0, seed1\n"

    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({"experiments": {"quick": {"training": {"steps": 10}}}}))
    assert main(["validate", str(DEFAULT_CONFIG), str(broken)]) == 2
    err = capsys.readouterr().err
    assert "experiments.quick.training: both epochs=8 and steps=10" in err


def test_cli_expand_writes_runs_table_and_configs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gendyn.cli import main

    assert main(["expand", str(DEFAULT_CONFIG), "--out-root", str(tmp_path / "results")]) == 0
    exp = tmp_path / "results" / "quick"
    assert (exp / "runs.csv").read_text() == "run,model.depth\ndepth1,1\ndepth2,2\n"
    for rid, depth in (("depth1", 1), ("depth2", 2)):
        cfg = read_run_config(exp / "runs" / rid / "config.yaml")
        assert cfg["run"] == rid and cfg["model"]["depth"] == depth and cfg["data"]["root"] is None
