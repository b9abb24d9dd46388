from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for subprocesses: the venv's `gendyn` first on PATH, one thread."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def tiny_run_config(**over) -> dict:
    """A validated run config on sklearn digits that trains in about a second."""
    from gendyn.config import validate_run

    cfg = {
        "experiment": "test",
        "run": "tiny",
        "data": {"name": "digits", "n_test": 200, "seed": 0},
        "model": {"name": "mlp", "width": 24, "depth": 2},
        "training": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "batch_size": 64, "epochs": 3, "seed": 0,
                     "device": "cpu"},
        "recording": {"n_tracked_train": 20, "n_tracked_test": 10, "schedule": {"kind": "epoch"}},
    }
    for key, value in over.items():
        section, _, name = key.partition("__")
        if name:
            cfg[section][name] = value
        else:
            cfg[section] = value
    return validate_run(cfg)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    """Time of each paper config's smoke run (tests/test_paper_smoke.py) and the total."""
    mod = sys.modules.get("test_paper_smoke")
    times = getattr(mod, "TIMES", None)
    if not times:
        return
    tr = terminalreporter
    tr.section("paper smoke runs")
    tr.write_line(f"{'config':<28} {'wall s':>8} {'cpu s':>8} {'jobs':>6}")
    for name, t in times.items():
        tr.write_line(f"{name:<28} {t['wall_s']:>8.1f} {t['cpu_s']:>8.1f} {int(t.get('jobs', 0)):>6}")
    wall = sum(t["wall_s"] for t in times.values())
    cpu = sum(t["cpu_s"] for t in times.values())
    tr.write_line(f"{'total':<28} {wall:>8.1f} {cpu:>8.1f} {int(sum(t.get('jobs', 0) for t in times.values())):>6}")
