"""Smoke runs of every paper config: each config/experiments/*.yaml runs its whole DAG -- training,
every analysis, every figure -- with the real models and input shapes on tiny stand-in data in
the real file formats (``snakemake --config smoke=true``, gendyn.smoke).

The configs share one working directory, so an experiment that two configs define identically
(e.g. ``paths_alexnet_cifar10`` in paths_alexnet_cifar10.yaml and paths_fig7.yaml) trains and is
analysed once; the second config runs only what differs (e.g. its Fig. 7 figure). Each test also
checks that the smoke DAG has exactly the rules of the real config's DAG, that every output of
every job exists, and that ``gendyn plan`` predicts the run.h5 and checkpoints.h5 files written
within 25 %. The time of each run is printed at the end of the session (tests/conftest.py).
"""

from __future__ import annotations

import os
import resource
import shutil
import time
from pathlib import Path

import pytest
from test_workflow import ROOT, Snakemake

pytestmark = pytest.mark.paper_smoke

CONFIGS = sorted((ROOT / "config" / "experiments").glob("*.yaml"))
#: config stem -> {"wall_s", "cpu_s", "jobs"}; printed by tests/conftest.py at the end of the session.
TIMES: dict[str, dict[str, float]] = {}


@pytest.fixture(scope="session")
def smoke_env(tmp_path_factory: pytest.TempPathFactory):
    """One working directory for every config's smoke run, and the stand-in datasets."""
    from gendyn.smoke import write_standins

    root = tmp_path_factory.mktemp("paper_smoke")
    data = write_standins(root / "data")
    work = root / "work"
    work.mkdir()
    yield work, data
    if not os.environ.get("GENDYN_KEEP_SMOKE"):
        # Checkpoints of AlexNet/VGG stand-ins and the VGG-19 weights are hundreds of MiB.
        shutil.rmtree(root, ignore_errors=True)


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _failed_logs(work: Path, output: str) -> str:
    import re

    logs = sorted(set(re.findall(r"log: (\S+\.log)", output)))
    parts = []
    for log in logs:
        p = work / log
        if p.is_file() and "rror" in (text := p.read_text(errors="replace")):
            parts.append(f"--- {log}\n{text[-3000:]}")
    return "\n".join(parts[-6:])


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_paper_config_runs_end_to_end_on_stand_in_data(path: Path, smoke_env) -> None:
    from gendyn.plan import plan_config, workflow_jobs

    work, data = smoke_env
    overrides = {"smoke": True, "smoke_data": str(data)}
    wall, cpu = time.monotonic(), _cpu_seconds()
    # greedy: the ILP scheduler solves a CBC problem for every batch of ready jobs (hundreds here)
    res = Snakemake(work, "--cores", "2", "--scheduler", "greedy", "--config", "smoke=true", f"smoke_data={data}",
                    configfile=path,
                    timeout=1800).result()  # fmt: skip
    TIMES[path.stem] = {"wall_s": time.monotonic() - wall, "cpu_s": _cpu_seconds() - cpu}
    assert res.returncode == 0, f"{res.describe()[-6000:]}\n{_failed_logs(work, res.output)}"

    # The smoke DAG is the real config's DAG at a smaller size: the same rules, nothing missing.
    smoke_jobs, cfg = workflow_jobs([path], config=overrides)
    real_jobs, _ = workflow_jobs([path])
    assert {j.rule for j in smoke_jobs} == {j.rule for j in real_jobs}
    TIMES[path.stem]["jobs"] = len(smoke_jobs)
    missing = [o for j in smoke_jobs for o in j.outputs if not (work / o).exists()]
    assert not missing, missing[:10]
    for j in smoke_jobs:
        if j.rule.endswith(("_figures", "_figures_experiment")):
            folder = work / j.outputs[0]
            assert list(folder.glob("*.png")), f"{j.rule}: no figure in {folder}"

    # gendyn plan's sizes against the files the run wrote.
    plan = plan_config(cfg, jobs=smoke_jobs)
    results = work / cfg["results_dir"]
    by_output = {o: j for j in smoke_jobs for o in j.outputs}
    for name, ep in plan.experiments.items():
        if ep.trains:
            for kind, file in (("run_h5", "run.h5"), ("checkpoints_h5", "checkpoints.h5")):
                predicted = (ep.run_h5 if kind == "run_h5" else ep.checkpoints_h5)["total"]
                actual = sum((results / name / "runs" / r.run / file).stat().st_size for r in ep.runs)
                assert abs(predicted / actual - 1) <= 0.25, f"{name} {file}: predicted {predicted}, written {actual}"
        for st in ep.stages:
            if st.stage == "regions":  # its size is the number of linear regions it counts
                continue
            rule = f"{st.measure}_{st.stage}"
            files = [work / o for o, j in by_output.items() if j.rule == rule and j.experiment == name]
            actual = sum(f.stat().st_size for f in files)
            assert abs(st.bytes / actual - 1) <= 0.25, f"{name} {rule}: predicted {st.bytes}, written {actual}"
