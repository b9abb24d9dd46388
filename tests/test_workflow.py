"""Tests of the Snakemake workflow (Snakefile, workflow/rules/*.smk), run as subprocesses.

One real run of a tiny experiment (sklearn digits, two MLPs, two epochs; ~40 s on two CPU cores)
happens once per module (fixture ``tiny_run``); several tests inspect it and dry-run changed
configurations against it. Everything is written under pytest's tmp folders (``-d``), never
into the checkout.
"""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
SNAKEMAKE = VENV_BIN / "snakemake"
SNAKEFMT = VENV_BIN / "snakefmt"
SNAKEFILE = ROOT / "Snakefile"
DEFAULT_CONFIG = ROOT / "config" / "config.yaml"

#: The tiny experiment of the module fixture. ``tiny_config()`` returns a copy to change.
TINY: dict[str, Any] = {
    "active_experiments": ["tiny"],
    "experiments": {
        "tiny": {
            "data": {"name": "digits", "n_test": 200},
            "model": {"name": "mlp", "width": 16, "depth": 1},
            "training": {"epochs": 2, "batch_size": 100, "lr": 0.1},
            "recording": {"n_tracked_train": 16, "n_tracked_test": 8},
            "sweep": {"model.depth": [1, 2]},
        }
    },
}
TINY_RUNS = ["depth1", "depth2"]


def tiny_config() -> dict[str, Any]:
    return copy.deepcopy(TINY)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MPLBACKEND", "Agg")
    return env


@dataclass
class Result:
    returncode: int
    output: str  # stdout and stderr interleaved
    cmd: list[str]

    def describe(self) -> str:
        return f"$ {' '.join(self.cmd)}\n(exit {self.returncode})\n{self.output}"


class Snakemake:
    """The project's Snakefile run in the background with ``workdir`` as working directory.

    Most of a job's time is process start-up (importing torch), so the tests start independent
    Snakemake processes side by side and collect them with :meth:`result`.
    """

    def __init__(self, workdir: Path, *args: str, configfile: Path | None = None, timeout: float = 300) -> None:
        self.cmd = [str(SNAKEMAKE), "-s", str(SNAKEFILE), "-d", str(workdir)]
        if configfile is not None:
            self.cmd += ["--configfile", str(configfile)]
        self.cmd += list(args)
        self.deadline = time.monotonic() + timeout
        self._out = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=workdir,
            env=_env(),
            stdout=self._out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: stop() ends its jobs too
        )
        self._result: Result | None = None

    def result(self) -> Result:
        if self._result is None:
            try:
                rc = self.proc.wait(timeout=max(1.0, self.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stop()
                raise
            self._out.seek(0)
            self._result = Result(rc, self._out.read(), self.cmd)
            self._out.close()
        return self._result

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def snakemake(workdir: Path, *args: str, configfile: Path | None = None, timeout: float = 300) -> Result:
    """Run Snakemake and wait for it."""
    return Snakemake(workdir, *args, configfile=configfile, timeout=timeout).result()


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def job_stats(output: str) -> dict[str, int]:
    """Parse the first "Job stats" table of Snakemake's output: rule -> count (``total`` left out).

    Returns ``{}`` when no job is scheduled (Snakemake then prints no table).
    """
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    except StopIteration:
        return {}
    stats: dict[str, int] = {}
    for line in lines[start + 1 :]:
        parts = line.split()
        if not parts or parts[0] in ("job",) or set(parts[0]) == {"-"}:
            continue
        if parts[0] == "total":
            assert int(parts[1]) == sum(stats.values()), output
            return stats
        assert len(parts) == 2 and parts[1].isdigit(), f"unexpected Job stats line {line!r}"
        stats[parts[0]] = int(parts[1])
    raise AssertionError(f"Job stats table without a total line:\n{output}")


def scheduled_jobs(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job block in Snakemake's (dry-run) output."""
    jobs: list[tuple[str, dict[str, str]]] = []
    for line in output.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            jobs.append((m.group(1), {}))
            continue
        m = re.match(r"^\s+wildcards: (.*)$", line)
        if m and jobs:
            jobs[-1][1].update(dict(kv.split("=", 1) for kv in m.group(1).split(", ")))
    return jobs


def nothing_scheduled(result: Result) -> bool:
    return "Nothing to be done" in result.output or sum(job_stats(result.output).values()) == 0


# --------------------------------------------------------------------------- the tiny run


@dataclass
class TinyRun:
    workdir: Path
    configfile: Path
    result: Result

    @property
    def exp(self) -> Path:
        return self.workdir / "results" / "tiny"


@pytest.fixture(scope="module")
def tiny_run_started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Snakemake]]:
    """Start the real run of the tiny experiment in the background (once per module).

    Tests that do not need its outputs request this fixture too, so that they run while it trains.
    """
    workdir = tmp_path_factory.mktemp("tiny_run")
    cfg = write_config(workdir / "tiny.yaml", tiny_config())
    proc = Snakemake(workdir, "--cores", "2", configfile=cfg, timeout=400)
    yield workdir, cfg, proc
    proc.stop()


@pytest.fixture(scope="module")
def tiny_run(tiny_run_started: tuple[Path, Path, Snakemake]) -> TinyRun:
    """The finished real run of the tiny experiment."""
    workdir, cfg, proc = tiny_run_started
    res = proc.result()
    if res.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()}" for p in sorted(workdir.glob("results/tiny/logs/**/*.log")))
        pytest.fail(f"the tiny workflow failed:\n{res.describe()}\n{logs}")
    return TinyRun(workdir, cfg, res)


# --------------------------------------------------------------------------- dry runs (no outputs needed)


@pytest.mark.usefixtures("tiny_run_started")
def test_dry_run_default_config(tmp_path: Path) -> None:
    res = snakemake(tmp_path, "-n")
    assert res.returncode == 0, res.describe()
    stats = job_stats(res.output)
    from gendyn.config import active_experiments, expand_experiment, load_yaml, validate_config

    cfg = validate_config(load_yaml(DEFAULT_CONFIG))
    names = active_experiments(cfg)
    n_runs = sum(len(expand_experiment(n, cfg["experiments"][n])) for n in names)

    def with_run_figures(name: str) -> int:
        """Runs with per-run figures: all, or those of the first seed (figures.run_figures: first_seed)."""
        exp = cfg["experiments"][name]
        runs = expand_experiment(name, exp)
        seeds = exp.get("sweep", {}).get("training.seed")
        if exp["figures"]["run_figures"] != "first_seed" or not seeds:
            return len(runs)
        return sum(1 for _, swept, _ in runs if swept.get("training.seed") == seeds[0])

    n_figured = sum(with_run_figures(n) for n in names)
    assert n_figured < n_runs  # the default config pools seeds in experiment figures
    assert stats.get("all") == 1, res.describe()
    # Every run of every default experiment trains once and gets its curves (the first seed's, where
    # an experiment says so); analyses may add jobs.
    for rule, count in {"run_config": n_runs, "runs_table": len(names), "train": n_runs, "views_figures": n_figured}.items():
        assert stats.get(rule) == count, (rule, res.describe())
    assert not (tmp_path / "results").exists(), "a dry run must not write outputs"


@pytest.mark.usefixtures("tiny_run_started")
def test_dry_run_tiny_config(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "tiny.yaml", tiny_config())
    res = snakemake(tmp_path, "--cores", "2", "-n", configfile=cfg)
    assert res.returncode == 0, res.describe()
    assert job_stats(res.output) == {
        "runs_table": 1,
        "run_config": 2,
        "train": 2,
        "views_figures": 2,
        "views_figures_experiment": 1,
        "reproduction": 1,
        "all": 1,
    }
    # Only the tiny experiment is built: a --configfile replaces config/config.yaml.
    jobs = scheduled_jobs(res.output)
    assert {w.get("experiment") for rule, w in jobs if rule not in ("all", "reproduction")} == {"tiny"}
    assert sorted(w["run"] for rule, w in jobs if rule == "train") == TINY_RUNS


@pytest.mark.usefixtures("tiny_run_started")
def test_invalid_config_fails_before_any_job(tmp_path: Path) -> None:
    cfg = tiny_config()
    cfg["experiments"]["tiny"]["model"] = {"name": "resnet19"}
    path = write_config(tmp_path / "bad.yaml", cfg)
    res = snakemake(tmp_path, "--cores", "2", "-n", configfile=path)
    assert res.returncode != 0, res.describe()
    assert "model.name" in res.output, res.describe()
    assert "'resnet19'" in res.output, res.describe()
    assert "'mlp'" in res.output, res.describe()  # the allowed values
    assert "Job stats" not in res.output and "rule " not in res.output, res.describe()
    assert not (tmp_path / "results").exists()


@pytest.mark.usefixtures("tiny_run_started")
def test_snakemake_lint(tmp_path: Path) -> None:
    res = snakemake(tmp_path, "--lint")
    if res.returncode != 0:
        print(res.describe())  # shown by pytest on failure, and with -s
        assert "Lints for" in res.output, f"--lint failed for another reason than lints:\n{res.describe()}"
        rule_lints = re.findall(r"^Lints for rule .*$", res.output, flags=re.MULTILINE)
        assert not rule_lints, f"lints about rules:\n{res.describe()}"
    assert not (tmp_path / "results").exists()


def test_snakefmt_check() -> None:
    proc = subprocess.run(
        [str(SNAKEFMT), "--check", "--diff", "Snakefile", "workflow/"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"snakefmt --check failed:\n{proc.stdout}\n{proc.stderr}"


# --------------------------------------------------------------------------- outputs of the tiny run


def test_tiny_run_outputs(tiny_run: TinyRun) -> None:
    from gendyn.config import read_run_config

    exp = tiny_run.exp
    assert (exp / "runs.csv").read_text() == "run,model.depth\ndepth1,1\ndepth2,2\n"
    assert (exp / "logs" / "runs_table.log").exists()
    for depth, run in enumerate(TINY_RUNS, start=1):
        run_dir = exp / "runs" / run
        for name in ("config.yaml", "run.h5", "checkpoints.h5"):
            assert (run_dir / name).stat().st_size > 0, run_dir / name
        cfg = read_run_config(run_dir / "config.yaml")
        assert (cfg["experiment"], cfg["run"], cfg["model"]["depth"]) == ("tiny", run, depth)
        assert cfg["model"]["width"] == 16 and cfg["training"]["lr"] == 0.1
        figs = exp / "figures" / "views" / "runs" / run
        names = sorted(p.name for p in figs.iterdir() if not p.name.startswith("."))
        assert names == ["curves.pdf", "curves.png", "dashboard.pdf", "dashboard.png"]
        assert (figs / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (figs / "curves.pdf").read_bytes()[:5] == b"%PDF-"
        for log in (f"train/{run}.log", f"run_config/{run}.log", f"figures/views/runs/{run}.log"):
            assert (exp / "logs" / log).exists(), log
        assert "run complete" in (exp / "logs" / "train" / f"{run}.log").read_text()
    assert not list(exp.rglob("*.partial*")), "temporary files left behind"
    # Only the active experiment was built (beside it: the reproduction index and its log).
    names = sorted(p.name for p in (tiny_run.workdir / "results").iterdir())
    assert names == ["logs", "reproduction.csv", "reproduction.html", "reproduction_summary.html", "tiny"], names


def test_tiny_run_builds_the_reproduction_index(tiny_run: TinyRun) -> None:
    """The index lists every paper figure of every registered measure; the tiny experiment
    declares none, so every row is `not run` and names no results."""
    from gendyn import registry
    from gendyn.reproduction.table import COLUMNS, read_index

    path = tiny_run.workdir / "results" / "reproduction.csv"
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    rows = read_index(path)
    figures = {(r["paper"], r["figure"]) for r in rows}
    assert figures == {(p, f) for p, figs in registry.paper_figures().items() for f in figs}
    assert {r["verdict"] for r in rows} == {"not run"}
    assert all(r["experiment"] == r["run"] == r["files"] == "" for r in rows)
    assert (tiny_run.workdir / "results" / "logs" / "reproduction.log").exists()


def test_tiny_run_files_are_complete_datatrees(tiny_run: TinyRun) -> None:
    import xarray as xr

    for run in TINY_RUNS:
        path = tiny_run.exp / "runs" / run / "run.h5"
        tree = xr.open_datatree(path, engine="h5netcdf")
        try:
            assert tree.attrs["status"] == "complete", dict(tree.attrs)
            assert tree.attrs["run"] == run and tree.attrs["experiment"] == "tiny"
            assert {"metrics", "tracked"} <= set(tree.children)
            assert tree["metrics"].sizes["step"] == 3  # init + 2 epochs
        finally:
            tree.close()


def test_open_experiment_lists_both_runs(tiny_run: TinyRun) -> None:
    import gendyn

    exp = gendyn.open_experiment(tiny_run.exp)
    assert list(exp) == TINY_RUNS
    assert exp.completed() == TINY_RUNS
    assert list(exp.runs.columns) == ["run", "model.depth"]
    metrics = exp.metrics()
    assert metrics.sizes["run"] == 2
    assert list(metrics["run"].values) == TINY_RUNS
    assert list(metrics["model.depth"].values) == [1, 2]
    assert "test_acc" in metrics


# --------------------------------------------------------------------------- after the tiny run


FOLLOWUPS: dict[str, Any] = {
    # name: (extra Snakemake arguments, change to the tiny config or None)
    "rerun": (["--cores", "2", "--dry-run"], None),
    "report": (["--report", "report.html"], None),
    "figures_dpi": (["--cores", "2", "--dry-run"], lambda x: x.update(figures={"dpi": 80})),
    "training_lr": (["--cores", "2", "--dry-run"], lambda x: x["training"].update(lr=0.2)),
    "sweep_depth3": (["--cores", "2", "--dry-run"], lambda x: x["sweep"].update({"model.depth": [1, 2, 3]})),
}


@pytest.fixture(scope="module")
def followups(tiny_run: TinyRun) -> Iterator[dict[str, Snakemake]]:
    """Snakemake calls on the finished tiny run, started side by side (none changes its outputs:
    dry runs, and a report written beside results/). A changed config is written beside the
    original, e.g. ``figures_dpi.yaml``."""
    started: dict[str, Snakemake] = {}
    for name, (args, change) in FOLLOWUPS.items():
        cfg = tiny_config()
        if change is None:
            path = tiny_run.configfile
        else:
            change(cfg["experiments"]["tiny"])
            path = write_config(tiny_run.workdir / f"{name}.yaml", cfg)
        started[name] = Snakemake(tiny_run.workdir, *args, configfile=path)
    yield started
    for proc in started.values():
        proc.stop()


def _followup(followups: dict[str, Snakemake], name: str) -> Result:
    res = followups[name].result()
    assert res.returncode == 0, res.describe()
    return res


def test_second_run_schedules_nothing(followups: dict[str, Snakemake]) -> None:
    res = _followup(followups, "rerun")
    assert nothing_scheduled(res), res.describe()


def test_report(tiny_run: TinyRun, followups: dict[str, Snakemake]) -> None:
    _followup(followups, "report")
    report = tiny_run.workdir / "report.html"
    html = report.read_text(errors="replace")
    assert len(html) > 1000
    assert "<html" in html.lower()
    assert "curves.png" in html and "dashboard.png" in html and "compare_model.depth.png" in html
    for run in TINY_RUNS:
        assert run in html, f"run {run} not in the report"
    assert "training curves" in html.lower()
    # The reproduction index: the first page's table (workflow description) and its category.
    assert "gendyn-reproduction" in html and "Reproduction index" in html


def test_report_packages_are_installed_by_make_run() -> None:
    """`make run` installs the project without the dev extra and ends with `snakemake --report`,
    which imports packages snakemake itself leaves optional (a fresh clone once failed on
    pygments, which only pytest had pulled in). Every package the installed snakemake's report
    code asks for by name must be a runtime dependency: ours or a hard one of snakemake's."""
    import importlib.metadata as md
    import tomllib

    import snakemake.report

    needed: set[str] = set()
    for f in Path(snakemake.report.__file__).parent.rglob("*.py"):
        needed |= set(re.findall(r"Python package (\w+) must be installed to create reports", f.read_text()))
    assert needed, "snakemake's report code no longer names its optional packages; update this test"
    name = lambda req: re.split(r"[<>=!~\[;( ]", req.strip(), maxsplit=1)[0].lower()  # noqa: E731
    ours = {name(d) for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    theirs = {name(r) for r in md.requires("snakemake") or [] if "extra ==" not in r}
    assert not {p for p in needed if p.lower() not in ours | theirs}, (needed, sorted(ours))


def test_changing_a_figure_option_reruns_only_figures(followups: dict[str, Snakemake]) -> None:
    res = _followup(followups, "figures_dpi")
    assert job_stats(res.output) == {"views_figures": 2, "views_figures_experiment": 1, "all": 1}, res.describe()
    assert '"dpi": 80' in res.output, res.describe()


def test_changing_training_reruns_both_runs(followups: dict[str, Snakemake]) -> None:
    res = _followup(followups, "training_lr")
    # runs.csv holds only the swept values, which did not change.
    assert job_stats(res.output) == {
        "run_config": 2,
        "train": 2,
        "views_figures": 2,
        "views_figures_experiment": 1,
        "all": 1,
    }, res.describe()
    assert sorted(w["run"] for rule, w in scheduled_jobs(res.output) if rule == "train") == TINY_RUNS


def test_adding_a_sweep_value_trains_only_the_new_run(followups: dict[str, Snakemake]) -> None:
    res = _followup(followups, "sweep_depth3")
    assert job_stats(res.output) == {
        "runs_table": 1,
        "run_config": 1,
        "train": 1,
        "views_figures": 1,
        "views_figures_experiment": 1,
        "all": 1,
    }, res.describe()
    per_run = [(rule, w.get("run")) for rule, w in scheduled_jobs(res.output) if "run" in w]
    assert sorted(per_run) == [("run_config", "depth3"), ("train", "depth3"), ("views_figures", "depth3")]


# --------------------------------------------------------------------------- figure options vs figures


def _figure_enum(option: str) -> list[Any]:
    from gendyn.config import schema

    return list(schema()["$defs"]["figures"]["properties"][option]["enum"])


def test_every_allowed_figure_option_draws_the_training_curves(tmp_path: Path) -> None:
    """The views figure job passes experiments.<name>.figures.{x_axis,log_x} to the training
    curves as they come out of the YAML (``log_x: true`` is a bool); every value the schema
    allows must draw."""
    import numpy as np
    import xarray as xr

    from gendyn.figures.curves import training_curves
    from gendyn.figures.style import use_log_x

    steps = np.arange(0, 50, 10)
    metrics = xr.Dataset(
        {k: ("step", np.linspace(0.1, 1.0, len(steps))) for k in ("train_loss", "test_loss", "train_acc", "test_acc", "lr")},
        coords={"step": steps, "epoch": ("step", steps / 10.0)},
    )
    for log_x in _figure_enum("log_x"):
        assert use_log_x(log_x, {"record_schedule": '{"kind": "epoch"}'}) is (log_x in (True, "true"))
        for x_axis in _figure_enum("x_axis"):
            fig = training_curves(metrics, x_axis=x_axis, log_x=log_x, attrs={"steps_per_epoch": 10})
            assert fig.axes[0].get_xscale() == ("log" if log_x in (True, "true") else "linear")
    assert use_log_x("auto", {"record_schedule": '{"kind": "lc"}'}) and not use_log_x("auto", {})


# --------------------------------------------------------------------------- reliability (issue #15)


def test_results_dir_with_a_space_and_a_diverged_run_flow_through_paths_and_the_report(tmp_path: Path) -> None:
    """A real workflow whose results_dir holds a space and whose sweep has a run that diverges
    at its first steps (``on_divergence: record``, one record point): every job succeeds (the
    paths analysis of the diverged run is a skipped-run file, the summary leaves it out, its
    figure job draws ``diverged.png``), the report builds, and nothing lands outside results_dir."""
    import json

    cfg = {
        "results_dir": "my results",
        "experiments": {
            "div": {
                "data": {"name": "digits", "n_test": 200},
                "model": {"name": "mlp", "width": 16, "depth": 2},
                "training": {"epochs": 3, "batch_size": 64, "lr": 0.1, "momentum": 0.9, "on_divergence": "record",
                             "lr_schedule": {"kind": "step", "milestones": [1, 2]}},
                "recording": {"n_tracked_train": 16, "n_tracked_test": 8},
                "analyses": {"paths": {}},
                "sweep": {"training.lr": [0.1, 1000000.0]},
            }
        },
    }  # fmt: skip
    path = write_config(tmp_path / "div.yaml", cfg)
    res = snakemake(tmp_path, "--cores", "2", configfile=path, timeout=600)
    exp = tmp_path / "my results" / "div"
    if res.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()}" for p in sorted(exp.glob("logs/**/*.log")))
        pytest.fail(f"the workflow failed:\n{res.describe()}\n{logs}")
    import gendyn
    from gendyn import store

    assert gendyn.diverged(exp / "runs" / "lr1e+06") and not gendyn.diverged(exp / "runs" / "lr0.1")
    drawn = exp / "figures" / "paths" / "runs" / "lr1e+06"
    assert sorted(p.name for p in drawn.iterdir() if not p.name.startswith(".")) == ["diverged.pdf", "diverged.png"]
    summary = store.open_analysis(exp / "analysis" / "paths" / "summary.nc")
    assert json.loads(summary.attrs["diverged_runs"]) == ["lr1e+06"] and list(summary["run"].values) == ["lr0.1"]
    assert (exp / "figures" / "paths" / "experiment" / "fig7_early_mid_ratio.png").exists()
    assert (exp / "figures" / "views" / "runs" / "lr1e+06" / "dashboard.png").exists()
    assert "run complete" in (exp / "logs" / "train" / "lr1e+06.log").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".snakemake", "div.yaml", "my results"]
    assert not list((tmp_path / "my results").rglob(".*.tmp")) and not list((tmp_path / "my results").rglob(".*.lock"))

    report = snakemake(tmp_path, "--report", "report.html", configfile=path)
    assert report.returncode == 0, report.describe()
    assert "diverged.png" in (tmp_path / "report.html").read_text(errors="replace")
