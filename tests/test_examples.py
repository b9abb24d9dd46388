"""The examples run against real results and produce their outputs."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, tiny_run_config

from gendyn.config import write_runs_table
from gendyn.train import train_run


def test_analyze_quick_example_runs_on_an_experiment(tmp_path, cli_env):
    exp = tmp_path / "quick"
    runs = []
    for depth in (1, 2):
        cfg = tiny_run_config(model={"name": "mlp", "width": 12, "depth": depth})
        train_run(cfg, exp / "runs" / f"depth{depth}")
        runs.append((f"depth{depth}", {"model.depth": depth}, cfg))
    write_runs_table(runs, exp / "runs.csv")
    out = tmp_path / "fig.png"
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "analyze_quick.py"), str(exp), str(out)],
        env=cli_env, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 1000
    assert "depth2:" in res.stdout and "mask bits differ" in res.stdout
