"""Cluster and scale without a cluster: profiles, per-rule resources, conda envs, paper-scale dry
runs, incremental reruns and dask.

The Slurm profile is exercised here through Snakemake's own profile parser and through dry runs
(no Slurm needed); tests/test_slurm.py runs it through a real ``sbatch``. Snakemake runs use the
helpers of tests/test_workflow.py and write only under pytest's tmp folders.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_workflow import ROOT, Result, Snakemake, _env, job_stats, nothing_scheduled, snakemake, write_config

SLURM_PROFILE = ROOT / "profiles" / "slurm"
DEFAULT_PROFILE = ROOT / "profiles" / "default"
EXPERIMENT_FILES = sorted((ROOT / "config" / "experiments").glob("*.yaml"))
#: Rules with one job per run of every active experiment (workflow/rules/train.smk, figures.smk).
PER_RUN_FOUNDATION_RULES = ("run_config", "train", "views_figures")


# --------------------------------------------------------------------------- helpers


@dataclass
class DryJob:
    rule: str
    wildcards: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)
    threads: int = 1
    input: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    shell: str = ""

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.rule, tuple(sorted(self.wildcards.items()))


def dry_run_jobs(output: str) -> list[DryJob]:
    """Every job block of a dry run's output (Snakemake's printed job properties)."""
    jobs: list[DryJob] = []
    for line in output.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            jobs.append(DryJob(m.group(1)))
            continue
        if not jobs:
            continue
        job = jobs[-1]
        if m := re.match(r"^\s+wildcards: (.*)$", line):
            job.wildcards = dict(kv.split("=", 1) for kv in m.group(1).split(", "))
        elif m := re.match(r"^\s+resources: (.*)$", line):
            job.resources = dict(re.findall(r"(\w+)=([^,]*)(?:, |$)", m.group(1)))
        elif m := re.match(r"^\s+threads: (\d+)$", line):
            job.threads = int(m.group(1))
        elif m := re.match(r"^\s+input: (.*)$", line):
            job.input = m.group(1).split(", ")
        elif m := re.match(r"^\s+output: (.*)$", line):
            job.output = m.group(1).split(", ")
        elif line.startswith("Shell command: "):
            job.shell = line[len("Shell command: ") :]
    return jobs


def parse_profile(
    profile: Path, argv: list[str], env: dict[str, str | None] | None = None
) -> tuple[dict[str, Any], dict[str, str | None]]:
    """The profile as Snakemake reads it (its own parser, in a fresh process with ``argv`` as the
    Snakemake command line), and the HDF5/locking variable of that process afterwards."""
    code = (
        "import json, os, sys\n"
        "from snakemake.profiles import ProfileConfigFileParser\n"
        "path, sys.argv = sys.argv[1], json.loads(sys.argv[2])\n"
        "with open(path) as fh:\n"
        "    parsed = ProfileConfigFileParser().parse(fh)\n"
        "print(json.dumps({'parsed': parsed, 'env': {'HDF5_USE_FILE_LOCKING': os.environ.get('HDF5_USE_FILE_LOCKING')}}))\n"
    )
    penv = _env()
    for key in ("SNAKEMAKE_PROFILE", "GENDYN_SLURM_SITE", "HDF5_USE_FILE_LOCKING"):
        penv.pop(key, None)
    for key, value in (env or {}).items():
        if value is None:
            penv.pop(key, None)
        else:
            penv[key] = value
    proc = subprocess.run(
        [sys.executable, "-c", code, str(profile / "config.yaml"), json.dumps(["snakemake", *argv])],
        env=penv,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
    out = json.loads(proc.stdout)
    return out["parsed"], out["env"]


def isolated_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a Snakemake run that sees no site file or profile of the user's."""
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg-config"), "SNAKEMAKE_PROFILE": "", "GENDYN_SLURM_SITE": ""}
    return env


def run_snakemake(workdir: Path, *args: str, configfile: Path | None = None,
                  env: dict[str, str] | None = None) -> Snakemake:
    """Start Snakemake in the background with changed environment variables (empty value: unset)."""
    saved = {k: os.environ.get(k) for k in (env or {})}
    try:
        for k, v in (env or {}).items():
            if v:
                os.environ[k] = v
            else:
                os.environ.pop(k, None)
        return Snakemake(workdir, *args, configfile=configfile)  # copies os.environ when it starts
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def merged_config(*files: Path) -> dict[str, Any]:
    """The workflow config Snakemake builds, validated (defaults filled): the ``--configfile``
    files merged in order, which replace config/config.yaml (read only without any)."""
    from gendyn.config import load_workflow_config

    return load_workflow_config(files or [ROOT / "config" / "config.yaml"])


def expected_runs(cfg: dict[str, Any]) -> dict[str, list[str]]:
    """Active experiment -> its run ids, from the config alone."""
    from gendyn.config import active_experiments, expand_experiment

    def pretrained(exp: dict[str, Any]) -> bool:
        # An experiment that analyses given pretrained weights trains nothing (paper 002, Fig. 5).
        return bool((((exp.get("analyses") or {}).get("elasticity") or {}).get("pretrained") or {}).get("weights"))

    return {
        name: [rid for rid, _, _ in expand_experiment(name, cfg["experiments"][name], data_root=cfg.get("data_root"))]
        if not pretrained(cfg["experiments"][name])
        else []
        for name in active_experiments(cfg)
    }


def check_job_counts(cfg: dict[str, Any], jobs: list[DryJob]) -> dict[str, int]:
    """Assert that a dry run of ``cfg`` schedules the jobs the config implies; return the counts.

    Every rule with a ``run`` wildcard must have one job per run of each experiment it touches
    (the foundation rules for every active experiment), ``runs_table`` one job per experiment and
    ``all`` one; so the total is sum(runs x per-run rules) + per-experiment jobs + 1.
    """
    runs = expected_runs(cfg)
    n_runs = sum(len(r) for r in runs.values())
    by_rule: dict[str, list[DryJob]] = {}
    for job in jobs:
        by_rule.setdefault(job.rule, []).append(job)
    for rule in PER_RUN_FOUNDATION_RULES:
        got = sorted((j.wildcards["experiment"], j.wildcards["run"]) for j in by_rule.get(rule, []))
        assert got == sorted((e, r) for e, rids in runs.items() for r in rids), f"rule {rule}: jobs {got}"
    assert sorted(j.wildcards["experiment"] for j in by_rule.get("runs_table", [])) == sorted(runs)
    assert len(by_rule.get("all", [])) == 1
    per_run_jobs = 0
    for rule, rjobs in by_rule.items():
        if not any("run" in j.wildcards for j in rjobs):
            continue
        exps = {j.wildcards["experiment"] for j in rjobs}
        for exp in exps:
            got = sorted(j.wildcards["run"] for j in rjobs if j.wildcards["experiment"] == exp)
            if not runs[exp]:  # pretrained weights: per-"run" analysis jobs without training
                per_run_jobs += len(got)
                continue
            assert got == sorted(runs[exp]), f"rule {rule} of experiment {exp}: runs {got}, expected every run once"
            per_run_jobs += len(runs[exp])
    other = sum(1 for j in jobs if "run" not in j.wildcards)
    assert len(jobs) == per_run_jobs + other
    assert sum(job_stats_from(jobs).values()) == len(jobs)
    return {"runs": n_runs, "per_run_jobs": per_run_jobs, "other_jobs": other, "total": len(jobs)}


def job_stats_from(jobs: list[DryJob]) -> dict[str, int]:
    stats: dict[str, int] = {}
    for j in jobs:
        stats[j.rule] = stats.get(j.rule, 0) + 1
    return stats


def check_training_resources(cfg: dict[str, Any], jobs: list[DryJob]) -> None:
    """Training jobs ask for the configured GPUs (type, constraint), memory and runtime."""
    res = cfg["resources"]["train"]
    train = [j for j in jobs if j.rule == "train"]
    assert train, "no training job scheduled"
    for job in train:
        assert int(job.resources.get("gpu", 0)) == res["gpu"], job
        assert job.resources.get("gpu_model") == res["gpu_model"], job
        assert job.resources.get("constraint") == res["constraint"], job
        assert int(job.resources["mem_mb"]) == res["mem_mb"], job
        assert int(job.resources["runtime"]) == res["runtime"], job


# --------------------------------------------------------------------------- start the slow parts early


class RunQueue:
    """Snakemake runs started in order, at most ``parallel`` at a time (dozens of dry runs at once
    would only fight over two cores)."""

    def __init__(self, starters: dict[Any, Any], parallel: int = 2) -> None:
        self.pending = list(starters.items())
        self.running: dict[Any, Snakemake] = {}
        self.parallel = parallel

    def result(self, key: Any) -> Result:
        while key not in self.running:
            busy = [k for k, proc in self.running.items() if proc.proc.poll() is None]
            if len(busy) >= self.parallel:
                self.running[busy[0]].result()
                continue
            k, start = self.pending.pop(0)
            self.running[k] = start()
        return self.running[key].result()

    def stop(self) -> None:
        self.pending.clear()
        for proc in self.running.values():
            proc.stop()


@pytest.fixture(scope="module")
def experiment_dry_runs(tmp_path_factory: pytest.TempPathFactory) -> RunQueue:
    """Dry runs of every config/experiments/*.yaml with the Slurm profile."""

    def starter(path: Path):
        def start() -> Snakemake:
            workdir = tmp_path_factory.mktemp(f"dry_{path.stem}")
            # Files a user must supply (pretrained weights) exist in a real setup; a dry run
            # only checks that they are there, so place empty stand-ins at the configured paths.
            for exp in merged_config(path)["experiments"].values():
                weights = (((exp.get("analyses") or {}).get("elasticity") or {}).get("pretrained") or {}).get("weights")
                if weights and not Path(weights).is_absolute():
                    (workdir / weights).parent.mkdir(parents=True, exist_ok=True)
                    (workdir / weights).touch()
            return run_snakemake(workdir, "--profile", str(SLURM_PROFILE), "-n", configfile=path,
                                 env=isolated_env(workdir))

        return start

    queue = RunQueue({path: starter(path) for path in EXPERIMENT_FILES})
    yield queue
    queue.stop()


# --------------------------------------------------------------------------- profiles


@pytest.mark.parametrize(
    ("argv", "env", "local"),
    [
        pytest.param([], {}, True, id="plain"),
        pytest.param(["-n", "--cores", "4"], {}, True, id="cores-on-command-line"),
        pytest.param(["--profile", "slurm"], {}, False, id="profile"),
        pytest.param(["--profile=profiles/slurm", "-n"], {}, False, id="profile="),
        pytest.param(["--executor", "slurm"], {}, False, id="executor"),
        pytest.param(["-e", "slurm"], {}, False, id="e"),
        pytest.param([], {"SNAKEMAKE_PROFILE": "slurm"}, False, id="SNAKEMAKE_PROFILE"),
    ],
)
def test_default_profile_limits_cores_and_gpus_only_for_local_runs(argv, env, local) -> None:
    """Snakemake reads profiles/default also with --profile slurm, and its --cores/--resources
    would clamp every submitted job's threads and GPUs: they must apply to local runs only."""
    parsed, _ = parse_profile(DEFAULT_PROFILE, argv, env)
    if local:
        assert parsed["cores"] == "2"
        assert parsed["resources"] == ["gpu=1"]
    else:
        assert "cores" not in parsed and "resources" not in parsed, parsed
    assert parsed["rerun-incomplete"] == "True"


def test_slurm_profile_without_site_file(tmp_path: Path) -> None:
    parsed, env = parse_profile(SLURM_PROFILE, ["--profile", "slurm"], {"XDG_CONFIG_HOME": str(tmp_path)})
    assert parsed["executor"] == "slurm"
    assert parsed["slurm-status-command"] == "squeue"  # works without an accounting database
    assert parsed["slurm-no-account"] == "True"  # no account: submit without -A instead of guessing
    assert not any(r.startswith(("slurm_partition=", "slurm_account=")) for r in parsed["default-resources"])
    assert "set-resources" not in parsed and "slurm-qos" not in parsed
    assert {"mem_mb=4000", "runtime=60"} <= set(parsed["default-resources"])
    assert env["HDF5_USE_FILE_LOCKING"] == "FALSE"


def test_slurm_profile_reads_site_settings(tmp_path: Path) -> None:
    site = tmp_path / "config" / "gendyn" / "slurm-site.yaml"
    site.parent.mkdir(parents=True)
    site.write_text(
        "partition: cpu-short\ngpu_partition: gpu\naccount: 123456\nqos: normal\n"
        'slurm_extra: "--mail-type=FAIL"\nprofile: {jobs: 7, latency-wait: 120}\n'
    )
    parsed, env = parse_profile(SLURM_PROFILE, ["--profile", "slurm"], {"XDG_CONFIG_HOME": str(tmp_path / "config")})
    assert parsed["slurm-no-account"] == "False"
    assert parsed["slurm-qos"] == "normal"
    assert {"slurm_partition='cpu-short'", "slurm_account='123456'", "slurm_extra='--mail-type=FAIL'"} <= set(
        parsed["default-resources"]
    )
    assert parsed["set-resources"] == ["train:slurm_partition='gpu'"]
    assert parsed["jobs"] == "7" and parsed["latency-wait"] == "120"
    # $GENDYN_SLURM_SITE names another file; a user's own HDF5 setting wins.
    other = tmp_path / "other.yaml"
    other.write_text("partition: big\n")
    parsed, env = parse_profile(
        SLURM_PROFILE, [], {"GENDYN_SLURM_SITE": str(other), "HDF5_USE_FILE_LOCKING": "TRUE",
                            "XDG_CONFIG_HOME": str(tmp_path / "config")}
    )
    assert "slurm_partition='big'" in parsed["default-resources"] and "set-resources" not in parsed
    assert env["HDF5_USE_FILE_LOCKING"] == "TRUE"


def test_slurm_profile_rejects_unknown_site_setting(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("partition: cpu\npartiton_gpu: gpu\n")
    with pytest.raises(RuntimeError, match=r"site\.yaml: unknown site setting\(s\) \['partiton_gpu'\]; allowed"):
        parse_profile(SLURM_PROFILE, [], {"GENDYN_SLURM_SITE": str(site)})
    with pytest.raises(RuntimeError, match="GENDYN_SLURM_SITE=.*missing.yaml: no such file"):
        parse_profile(SLURM_PROFILE, [], {"GENDYN_SLURM_SITE": str(tmp_path / "missing.yaml")})


def test_site_example_is_valid_and_neutral(tmp_path: Path) -> None:
    """The example `make slurm-profile` installs changes nothing until edited."""
    example = SLURM_PROFILE / "site.example.yaml"
    without, _ = parse_profile(SLURM_PROFILE, [], {"XDG_CONFIG_HOME": str(tmp_path)})
    with_example, _ = parse_profile(SLURM_PROFILE, [], {"GENDYN_SLURM_SITE": str(example)})
    assert with_example == without


def _make_slurm_profile(config_home: Path) -> subprocess.CompletedProcess:
    env = _env()
    env["XDG_CONFIG_HOME"] = str(config_home)
    env.pop("GENDYN_SLURM_SITE", None)
    return subprocess.run(["make", "-s", "-C", str(ROOT), "slurm-profile"], env=env, capture_output=True, text=True,
                          timeout=60)


def test_make_slurm_profile_lets_users_type_profile_slurm(tmp_path: Path) -> None:
    """`make slurm-profile` links the profile where `snakemake --profile slurm` finds it, creates
    the site file once and keeps it; then the plain command works from the project root."""
    config_home = tmp_path / "config"
    proc = _make_slurm_profile(config_home)
    assert proc.returncode == 0, proc.stderr
    link = config_home / "snakemake" / "slurm"
    assert link.is_symlink() and link.resolve() == SLURM_PROFILE.resolve()
    site = config_home / "gendyn" / "slurm-site.yaml"
    assert site.read_text() == (SLURM_PROFILE / "site.example.yaml").read_text()
    site.write_text("gpu_partition: gpu-a100\n")
    proc = _make_slurm_profile(config_home)  # an update: the site settings survive
    assert proc.returncode == 0, proc.stderr
    assert site.read_text() == "gpu_partition: gpu-a100\n" and "kept" in proc.stdout

    env = _env()
    env.update(XDG_CONFIG_HOME=str(config_home))
    env.pop("SNAKEMAKE_PROFILE", None)
    env.pop("GENDYN_SLURM_SITE", None)
    res = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "snakemake"), "--profile", "slurm", "-n", "-d", str(tmp_path / "work")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "Using profiles slurm and workflow specific profile" in out
    train = [j for j in dry_run_jobs(out) if j.rule == "train"]
    assert train and all(j.resources.get("slurm_partition") == "gpu-a100" for j in train), out
    figures = [j for j in dry_run_jobs(out) if j.rule == "views_figures"]
    assert figures and all("slurm_partition" not in j.resources for j in figures), out

    # A real folder in the link's place is the user's own profile: leave it alone.
    link.unlink()
    link.mkdir()
    proc = _make_slurm_profile(config_home)
    assert proc.returncode != 0 and "is not a link" in proc.stderr


# --------------------------------------------------------------------------- per-rule resources


RESOURCE_CONFIG: dict[str, Any] = {
    "active_experiments": ["res"],
    "resources": {
        "train": {"gpu": 2, "gpu_model": "a100", "constraint": "a100|h100", "threads": 4, "mem_mb": 12000,
                  "runtime": 240},
        "figures": {"threads": 1, "mem_mb": 1500, "runtime": 7},
    },
    "experiments": {
        "res": {
            "data": {"name": "digits"},
            "model": {"name": "mlp"},
            "training": {"epochs": 1},
            "sweep": {"training.seed": [0, 1, 2]},
        }
    },
}


@pytest.fixture(scope="module")
def resource_dry_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Snakemake]]:
    workdir = tmp_path_factory.mktemp("resources")
    cfg = write_config(workdir / "res.yaml", RESOURCE_CONFIG)
    env = isolated_env(workdir)
    return cfg, {
        # --cores: a dry run without it clamps threads to 1 (a real Slurm run does not).
        "slurm": run_snakemake(workdir, "--profile", str(SLURM_PROFILE), "-n", "--cores", "64", configfile=cfg,
                               env=env),
        "local": run_snakemake(workdir, "-n", configfile=cfg, env=env),
    }


def _done(proc: Snakemake) -> Result:
    res = proc.result()
    assert res.returncode == 0, res.describe()
    return res


def test_slurm_jobs_get_threads_memory_runtime_and_gpus_from_config(resource_dry_runs) -> None:
    path, started = resource_dry_runs
    res = _done(started["slurm"])
    jobs = dry_run_jobs(res.output)
    check_training_resources(merged_config(path), jobs)
    train = [j for j in jobs if j.rule == "train"]
    assert len(train) == 3 and all(j.threads == 4 and "--threads 4" in j.shell for j in train), res.describe()
    figures = [j for j in jobs if j.rule == "views_figures"]
    assert len(figures) == 3
    assert all(j.resources["mem_mb"] == "1500" and j.resources["runtime"] == "7" for j in figures)
    assert all("gpu" not in j.resources for j in figures)


def test_local_runs_serialise_gpu_jobs(resource_dry_runs) -> None:
    """Locally profiles/default hands out one GPU at a time and two cores."""
    res = _done(resource_dry_runs[1]["local"])
    train = [j for j in dry_run_jobs(res.output) if j.rule == "train"]
    assert len(train) == 3
    assert all(j.resources["gpu"] == "1" and j.threads == 2 for j in train), res.describe()


# --------------------------------------------------------------------------- paper-scale experiments


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=[p.stem for p in EXPERIMENT_FILES])
def test_paper_scale_experiment_dry_run(path: Path, experiment_dry_runs) -> None:
    """Each config/experiments/*.yaml dry-runs with the Slurm profile: one job per run and rule as
    the config implies, and every training job requests the file's GPUs (type, constraint),
    memory and runtime."""
    res = experiment_dry_runs.result(path)
    assert res.returncode == 0, res.describe()
    cfg = merged_config(path)
    jobs = dry_run_jobs(res.output)
    assert job_stats(res.output) == job_stats_from(jobs), res.describe()
    counts = check_job_counts(cfg, jobs)
    if counts["runs"]:  # some studies train nothing (e.g. the neurashed simulator)
        check_training_resources(cfg, jobs)
    print(f"{path.relative_to(ROOT)}: {counts}, GPUs per training job: {cfg['resources']['train']['gpu']}")


@pytest.mark.parametrize("name", ["paths_fig7", "memorization_fig2", "lc_mlp_depth"])
def test_plan_counts_the_jobs_a_dry_run_schedules(name: str, experiment_dry_runs) -> None:
    """gendyn plan's jobs per rule, per experiment and on GPUs are those of `snakemake -n`."""
    from gendyn.plan import plan_files

    path = ROOT / "config" / "experiments" / f"{name}.yaml"
    res = experiment_dry_runs.result(path)
    assert res.returncode == 0, res.describe()
    jobs = dry_run_jobs(res.output)
    plan = plan_files([path]).as_dict()
    by_rule: dict[str, int] = dict(plan["other_jobs"])
    for exp, e in plan["experiments"].items():
        for rule, n in e["jobs_by_rule"].items():
            by_rule[rule] = by_rule.get(rule, 0) + n
        assert e["jobs"] == sum(1 for j in jobs if j.wildcards.get("experiment") == exp), exp
        assert e["gpu_jobs"] == sum(1 for j in jobs if j.wildcards.get("experiment") == exp
                                    and int(j.resources.get("gpu", 0) or 0) > 0), exp  # fmt: skip
    assert by_rule == job_stats(res.output)
    assert plan["totals"]["jobs"] == len(jobs)


def test_job_count_check_on_a_sweep(tmp_path: Path) -> None:
    """The check used on the paper-scale files, on a 2 x 3 sweep plus a one-run experiment."""
    cfg = {
        "active_experiments": ["grid", "single"],
        "experiments": {
            "grid": {"data": {"name": "digits"}, "model": {"name": "mlp"}, "training": {"epochs": 1},
                     "sweep": {"model.depth": [1, 2], "training.seed": [0, 1, 2]}},
            "single": {"data": {"name": "digits"}, "model": {"name": "mlp"}, "training": {"epochs": 1}},
        },
    }
    path = write_config(tmp_path / "grid.yaml", cfg)
    res = snakemake(tmp_path, "-n", configfile=path)
    assert res.returncode == 0, res.describe()
    jobs = dry_run_jobs(res.output)
    counts = check_job_counts(merged_config(path), jobs)
    per_run_rules = {j.rule for j in jobs if "run" in j.wildcards}
    assert per_run_rules >= set(PER_RUN_FOUNDATION_RULES)
    assert counts["runs"] == 7 and counts["per_run_jobs"] == 7 * len(per_run_rules)
    assert counts["other_jobs"] >= 3 and counts["total"] == counts["per_run_jobs"] + counts["other_jobs"]
    # A missing job fails the check.
    with pytest.raises(AssertionError):
        check_job_counts(merged_config(path), [j for j in jobs if not (j.rule == "train" and
                                                                        j.wildcards["run"] == "depth2_seed1")])


# --------------------------------------------------------------------------- conda environments


def _rules(text: str) -> dict[str, str]:
    """Rule name -> its block, from a .smk file."""
    parts = re.split(r"^(?:local)?rule (\w+):\s*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_every_rule_has_its_conda_env() -> None:
    """Training runs in the CUDA env, everything else in the CPU analysis env."""
    files = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    seen = 0
    for f in files:
        for name, block in _rules(f.read_text()).items():
            if "shell:" not in block and "run:" not in block and "script:" not in block:
                continue  # target rules such as `all`
            m = re.search(r'^\s+conda:\s*\n\s+"([^"]+)"', block, flags=re.MULTILINE)
            assert m, f"{f.name}: rule {name} has no conda env"
            env = (f.parent / m.group(1)).resolve()
            assert env.is_file(), f"{f.name}: rule {name}: {m.group(1)} does not exist"
            expected = "train.yaml" if name == "train" else "analysis.yaml"
            assert env == ROOT / "envs" / expected, f"{f.name}: rule {name} uses {env.name}, expected {expected}"
            seen += 1
    assert seen >= 4


def test_conda_envs_pin_torch_as_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {d.split("==")[0]: d.split("==")[1] for d in deps if d.split("==")[0] in ("torch", "torchvision")}
    assert set(pins) == {"torch", "torchvision"}
    for name, cpu in (("train", False), ("analysis", True)):
        env = yaml.safe_load((ROOT / "envs" / f"{name}.yaml").read_text())
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        for pkg, version in pins.items():
            assert f"{pkg}=={version}{'+cpu' if cpu else ''}" in pip, (name, pip)
        assert any(p.startswith("-e ..") for p in pip), "the env must install gendyn itself"
    analysis_pip = next(d["pip"] for d in yaml.safe_load((ROOT / "envs" / "analysis.yaml").read_text())[
        "dependencies"] if isinstance(d, dict))
    assert "-e ..[cluster]" in analysis_pip  # distributed + dask-jobqueue for dask_scheduler


# --------------------------------------------------------------------------- dask inside analysis jobs


def test_dask_context_runs_on_local_threads_within_the_budget() -> None:
    import dask
    import dask.array as da

    from gendyn.parallel import (
        CHUNKS_IN_FLIGHT_PER_THREAD,
        AnalysisJob,
        analysis_job,
        chunk_bytes,
        dask_context,
        default_mem_budget_mb,
        mem_budget_bytes,
    )

    with dask_context(None, threads=3, budget_bytes=96 * 2**20):
        assert dask.config.get("scheduler") == "threads" and dask.config.get("num_workers") == 3
        x = da.ones((20_000, 20_000), chunks="auto")
        assert x.blocks[0, 0].nbytes * 3 * CHUNKS_IN_FLIGHT_PER_THREAD <= 96 * 2**20
        assert float(x[:100, :100].sum().compute()) == 10_000.0
    assert chunk_bytes(96 * 2**20, 3) == 8 * 2**20
    assert chunk_bytes(2**20, 8) == 2**20  # floor of 1 MiB
    with pytest.raises(ValueError, match="mem_budget_mb: 0"):
        mem_budget_bytes(0)
    # One budget, one default: the schema's resources.analysis.mem_budget_mb.
    assert mem_budget_bytes() == default_mem_budget_mb() * 2**20 == AnalysisJob.create().mem_budget_bytes
    import torch

    with analysis_job(AnalysisJob.create(threads=1, mem_budget_mb=64)) as job:
        assert torch.get_num_threads() == 1 and job.mem_budget_bytes == 64 * 2**20
        assert dask.config.get("array.chunk-size") == "16MiB"


def test_dask_context_sends_work_to_a_scheduler_address() -> None:
    import dask
    from distributed import LocalCluster, get_worker

    from gendyn.parallel import dask_context

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with dask_context(cluster.scheduler_address, threads=1, budget_bytes=64 * 2**20):
            worker = dask.delayed(lambda: get_worker().address)().compute()
        assert worker in {w.address for w in cluster.workers.values()}
    with pytest.raises(ValueError):  # outside the context, no worker runs the task
        dask.delayed(lambda: get_worker().address)().compute(scheduler="threads")


# --------------------------------------------------------------------------- incremental reruns


def _available_analyses() -> list[str]:
    """Analyses of the schema whose rules file the Snakefile includes."""
    from gendyn.config import schema

    names = schema()["$defs"]["experiment"]["properties"]["analyses"]["properties"]
    included = re.findall(r'^include: "workflow/rules/(\w+)\.smk"', (ROOT / "Snakefile").read_text(), re.MULTILINE)
    return [n for n in names if n in included]


#: An analysis parameter (not a figure option) per measure, and a changed value.
ANALYSIS_CHANGE: dict[str, tuple[str, Any]] = {
    "memorization": ("threshold", 0.5),
    "paths": ("lag", 2),
    "lc": ("radii", [0.2]),
    "elasticity": ("lr", 0.0123),
}
#: Settings that keep each analysis quick on the tiny runs (the rest are the schema's defaults).
ANALYSIS_SETUP: dict[str, dict[str, Any]] = {
    "lc": {"radii": [0.1], "n_directions": 4, "n_train": 16, "n_test": 16, "n_random": 16,
           "regions": {"enabled": False}},
    "elasticity": {"records": "final", "cluster": None},
}


def analysis_settings(name: str, changed: bool = False) -> dict[str, Any]:
    settings = dict(ANALYSIS_SETUP.get(name, {}))
    if changed:
        param, value = ANALYSIS_CHANGE[name]
        settings[param] = value
    return settings

def test_every_analysis_has_a_rerun_check() -> None:
    """ANALYSIS_CHANGE names a real analysis parameter of every analysis the workflow has."""
    from gendyn.config import schema

    defs = schema()["$defs"]
    for name in _available_analyses():
        assert name in ANALYSIS_CHANGE, f"add an analysis parameter of {name!r} to ANALYSIS_CHANGE"
        param = ANALYSIS_CHANGE[name][0]
        assert param in defs[f"analysis_{name}"].get("properties", {}), (
            f"$defs/analysis_{name} has no key {param!r}: update ANALYSIS_CHANGE in {Path(__file__).name}"
        )


RERUN_BASE = {"data": {"name": "digits", "n_test": 200}, "model": {"name": "mlp", "width": 16, "depth": 1},
              "training": {"epochs": 2, "batch_size": 100, "lr": 0.1},
              "recording": {"n_tracked_train": 16, "n_tracked_test": 8}}


def rerun_config(analyses: dict[str, Any] | None = None) -> dict[str, Any]:
    """Two one-run experiments, `a` (with ``analyses``) and `b`."""
    import copy

    a = copy.deepcopy(RERUN_BASE)
    if analyses is not None:
        a["analyses"] = analyses
    return {"active_experiments": ["a", "b"], "experiments": {"a": a, "b": copy.deepcopy(RERUN_BASE)}}


RERUN_CHANGES = {
    "noop": lambda c: None,
    "b_lr": lambda c: c["experiments"]["b"]["training"].update(lr=0.2),
    "a_dpi": lambda c: c["experiments"]["a"].update(figures={"dpi": 80}),
}


@pytest.fixture(scope="module")
def rerun_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of two one-run experiments (training, curves and default analyses)."""
    workdir = tmp_path_factory.mktemp("rerun")
    base = write_config(workdir / "base.yaml", rerun_config())
    res = Snakemake(workdir, "--cores", "2", configfile=base, timeout=400).result()
    if res.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()}" for p in sorted(workdir.glob("results/*/logs/**/*.log")))
        pytest.fail(f"the rerun workflow failed:\n{res.describe()}\n{logs}")
    return workdir


@pytest.fixture(scope="module")
def rerun_dry_runs(rerun_base: Path) -> dict[str, Snakemake]:
    """Dry runs of changed configs against the finished base run, side by side."""
    started = {}
    for name, change in RERUN_CHANGES.items():
        cfg = rerun_config()
        change(cfg)
        started[name] = Snakemake(rerun_base, "--cores", "2", "-n",
                                  configfile=write_config(rerun_base / f"{name}.yaml", cfg))
    yield started
    for proc in started.values():
        proc.stop()


@pytest.fixture(scope="module")
def analysis_reruns(rerun_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result, dict]:
    """A copy of the base run where `a` also computes every analysis of the workflow (a failing
    analysis fails only its own test), then per analysis: a dry run with the same settings and one
    with a changed parameter, each enabling only that analysis."""
    workdir = tmp_path_factory.mktemp("rerun_analyses")
    shutil.copytree(rerun_base, workdir, dirs_exist_ok=True, symlinks=True)  # keeps mtimes and metadata
    names = _available_analyses()
    cfg = write_config(workdir / "analyses.yaml", rerun_config({n: analysis_settings(n) for n in names}))
    run = Snakemake(workdir, "--cores", "2", "--keep-going", configfile=cfg, timeout=600).result()
    started: dict[str, Snakemake] = {"same": Snakemake(workdir, "--cores", "2", "-n", configfile=cfg)}
    for n in names:
        if n in ANALYSIS_CHANGE:
            changed = rerun_config({m: analysis_settings(m, changed=m == n) for m in names})
            started[n] = Snakemake(workdir, "--cores", "2", "-n",
                                   configfile=write_config(workdir / f"changed_{n}.yaml", changed))
    yield workdir, run, started
    for proc in started.values():
        proc.stop()


def test_noop_rerun_schedules_nothing(rerun_dry_runs) -> None:
    res = _done(rerun_dry_runs["noop"])
    assert nothing_scheduled(res), res.describe()


def test_changing_one_runs_training_reruns_that_run_and_its_dependents_only(rerun_dry_runs) -> None:
    res = _done(rerun_dry_runs["b_lr"])
    jobs = dry_run_jobs(res.output)
    stats = job_stats(res.output)
    assert stats["run_config"] == stats["train"] == stats["views_figures"] == stats["all"] == 1, res.describe()
    assert all(j.wildcards.get("experiment") == "b" for j in jobs if j.rule != "all"), res.describe()
    assert "runs_table" not in stats, res.describe()  # the swept values did not change


def test_changing_a_figure_option_reruns_only_that_experiments_figures(rerun_dry_runs) -> None:
    res = _done(rerun_dry_runs["a_dpi"])
    jobs = [j for j in dry_run_jobs(res.output) if j.rule != "all"]
    assert "views_figures" in {j.rule for j in jobs}, res.describe()
    for j in jobs:
        assert j.wildcards.get("experiment") == "a" and all("/figures/" in o for o in j.output), res.describe()


@pytest.mark.parametrize("name", sorted(ANALYSIS_CHANGE))
def test_changing_an_analysis_parameter_reruns_that_analysis_and_its_figures(
    name: str, request: pytest.FixtureRequest
) -> None:
    if name not in _available_analyses():
        pytest.skip(f"the workflow has no rules for analysis {name!r} yet (workflow/rules/{name}.smk not included)")
    workdir, run, started = request.getfixturevalue("analysis_reruns")
    same = _done(started["same"])
    pending = {j.key for j in dry_run_jobs(same.output)}  # jobs that failed in the tiny run

    def of_measure(job: DryJob) -> bool:
        """A rule of this analysis: named `<name>_...` or writing under analysis|figures/<name>/."""
        return job.rule.startswith(f"{name}_") or any(
            f"/analysis/{name}/" in o or f"/figures/{name}/" in o for o in job.output
        )

    if any(of_measure(j) for j in dry_run_jobs(same.output)):
        logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted(workdir.glob("results/a/logs/**/*"))
                         if p.is_file() and name in str(p.relative_to(workdir)))
        pytest.fail(f"analysis {name} did not complete in the tiny run, so its rerun cannot be checked:\n"
                    f"{same.describe()}\n{logs}")
    res = _done(started[name])
    param = ANALYSIS_CHANGE[name][0]
    jobs = [j for j in dry_run_jobs(res.output) if j.rule != "all" and j.key not in pending]
    assert any(f"/analysis/{name}/" in o for j in jobs for o in j.output), (
        f"changing analyses.{name}.{param} did not rerun the analysis:\n{res.describe()}"
    )
    for j in jobs:
        assert j.wildcards.get("experiment") == "a", res.describe()
        # the measure's own jobs, or figures drawn from its results (e.g. a per-run dashboard)
        downstream_figure = all("/figures/" in o for o in j.output) and any(f"/analysis/{name}/" in i for i in j.input)
        assert of_measure(j) or downstream_figure, (
            f"rule {j.rule} reran after a change of analyses.{name}.{param}:\n{res.describe()}"
        )
