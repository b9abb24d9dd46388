"""The Slurm profile through a real ``sbatch`` (tests marked ``slurm``).

Needs a running Slurm with the partitions ``debug`` (default) and ``gpu`` on one node, as
``tests/slurm/up.sh`` starts (as root; ``.ci/run`` calls it before ``make test``). Without one
these tests are skipped with the reason, unless ``GENDYN_REQUIRE_SLURM=1`` (set by ``.ci/run``),
which turns the skip into a failure.

The node has no GPU and no gres: a job asking Slurm for a GPU would never start. The workflow
therefore runs with ``resources.train.gpu: 0``; tests/test_cluster.py checks on dry runs that
training jobs ask for GPUs with the real settings.

The workflow is started exactly as a user would: ``make slurm-profile`` links the profile into a
temporary ``$XDG_CONFIG_HOME``, the site settings go into the file it created, and
``snakemake --profile slurm`` runs from the project root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from test_workflow import ROOT, SNAKEMAKE, Result, _env, job_stats, nothing_scheduled

pytestmark = pytest.mark.slurm

REQUIRED_PARTITIONS = {"debug", "gpu"}
TINY_SLURM = {
    "active_experiments": ["tiny"],
    "resources": {
        # No GPU on the test node (see the module docstring); small requests so that jobs fit.
        "train": {"gpu": 0, "threads": 1, "mem_mb": 1500, "runtime": 10},
        "figures": {"threads": 1, "mem_mb": 1000, "runtime": 5},
        "analysis": {"threads": 1, "mem_mb": 1000, "runtime": 5},
    },
    "experiments": {
        "tiny": {
            "data": {"name": "digits", "n_test": 200},
            "model": {"name": "mlp", "width": 16, "depth": 1},
            "training": {"epochs": 2, "batch_size": 100, "lr": 0.1},
            "recording": {"n_tracked_train": 16, "n_tracked_test": 8},
        }
    },
}
SITE = {"partition": "debug", "gpu_partition": "gpu"}


def slurm_problem() -> str | None:
    """Why the Slurm tests cannot run here, or None."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no Slurm here (sinfo/sbatch not on PATH); start one with tests/slurm/up.sh (as root)"
    try:
        proc = subprocess.run(["sinfo", "--noheader", "-o", "%R %t"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 30 s; (re)start Slurm with tests/slurm/up.sh"
    if proc.returncode != 0:
        return f"sinfo failed ({proc.stderr.strip() or proc.returncode}): no Slurm reachable; start one with tests/slurm/up.sh"
    states = [line.split() for line in proc.stdout.splitlines() if line.strip()]
    partitions = {p for p, _ in states}
    if not REQUIRED_PARTITIONS <= partitions:
        return f"the Slurm cluster lacks the partitions {sorted(REQUIRED_PARTITIONS - partitions)} of tests/slurm/up.sh"
    if not any(re.match(r"(idle|mix|alloc|comp)", state) for _, state in states):
        return f"no usable Slurm node (sinfo: {proc.stdout.strip()!r}); restart with tests/slurm/up.sh"
    return None


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster() -> None:
    problem = slurm_problem()
    if problem:
        if os.environ.get("GENDYN_REQUIRE_SLURM") == "1":
            pytest.fail(f"GENDYN_REQUIRE_SLURM=1 but {problem}")
        pytest.skip(problem)


@dataclass
class SlurmRun:
    workdir: Path
    configfile: Path
    env: dict[str, str]
    result: Result
    seconds: float

    @property
    def exp(self) -> Path:
        return self.workdir / "results" / "tiny"


def _user_env(tmp: Path) -> dict[str, str]:
    env = _env()
    env["XDG_CONFIG_HOME"] = str(tmp / "config")
    for key in ("SNAKEMAKE_PROFILE", "GENDYN_SLURM_SITE", "HDF5_USE_FILE_LOCKING"):
        env.pop(key, None)  # the profile must set HDF5_USE_FILE_LOCKING itself
    return env


def _snakemake(args: list[str], env: dict[str, str], timeout: float) -> Result:
    cmd = [str(SNAKEMAKE), *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 15)  # Snakemake cancels its Slurm jobs on SIGTERM
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"snakemake did not finish within {timeout} s:\n{out}")
    return Result(proc.returncode, out, cmd)


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory: pytest.TempPathFactory) -> SlurmRun:
    """`make slurm-profile`, site settings, then `snakemake --profile slurm` on the tiny config."""
    tmp = tmp_path_factory.mktemp("slurm")
    env = _user_env(tmp)
    make = subprocess.run(["make", "-s", "-C", str(ROOT), "slurm-profile"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert make.returncode == 0, make.stderr
    site = tmp / "config" / "gendyn" / "slurm-site.yaml"
    assert site.is_file(), make.stdout
    site.write_text(yaml.safe_dump(SITE))
    cfg = tmp / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY_SLURM, sort_keys=False))
    workdir = tmp / "work"
    start = time.monotonic()
    # Only the waits are shortened for the test; everything else is the user's command.
    res = _snakemake(["--profile", "slurm", "-d", str(workdir), "--configfile", str(cfg),
                      "--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "5"], env, timeout=400)
    seconds = time.monotonic() - start
    if res.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()}" for p in sorted(workdir.glob("**/*.log")) if p.is_file())
        pytest.fail(f"the tiny workflow failed under Slurm:\n{res.describe()}\n{logs}")
    print(f"tiny workflow through sbatch: {seconds:.1f} s")
    return SlurmRun(workdir, cfg, env, res, seconds)


def _submitted(output: str) -> dict[str, tuple[str, str]]:
    """Slurm job id -> (rule, wildcards folder), from Snakemake's submission lines."""
    pattern = r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/([^/\s]+)/\d+\.log\)"
    return {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(pattern, output)}


def _scontrol(job_id: str) -> dict[str, str]:
    proc = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"scontrol show job {job_id}: {proc.stderr} (finished jobs stay MinJobAge=600 s)"
    return dict(re.findall(r"(\w+(?:/\w+)?)=(\S*)", proc.stdout))


def _job_environment(job_id: str) -> dict[str, str]:
    """The environment Slurm gave the batch job, from slurmctld's state folder."""
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    state = re.search(r"^StateSaveLocation\s*=\s*(\S+)", config, re.MULTILINE).group(1)
    path = Path(state) / f"hash.{int(job_id) % 10}" / f"job.{job_id}" / "environment"
    raw = path.read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def test_tiny_workflow_outputs(slurm_run: SlurmRun) -> None:
    exp = slurm_run.exp
    assert (exp / "runs.csv").read_text() == "run\nbase\n"
    import xarray as xr

    tree = xr.open_datatree(exp / "runs" / "base" / "run.h5", engine="h5netcdf")
    try:
        assert tree.attrs["status"] == "complete" and tree["metrics"].sizes["step"] == 3
    finally:
        tree.close()
    assert (exp / "runs" / "base" / "checkpoints.h5").stat().st_size > 0
    assert (exp / "figures" / "views" / "runs" / "base" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "run complete" in (exp / "logs" / "train" / "base.log").read_text()


def test_jobs_ran_under_slurm(slurm_run: SlurmRun) -> None:
    """Every non-local job went through sbatch, ran to completion in Slurm with the configured
    resources and partition, and saw HDF5_USE_FILE_LOCKING=FALSE."""
    res = slurm_run.result
    submitted = _submitted(res.output)
    stats = job_stats(res.output)
    local = {"runs_table", "run_config", "reproduction", "all"}  # localrules and the target rule
    assert len(submitted) == sum(n for rule, n in stats.items() if rule not in local), res.describe()
    rules = sorted(rule for rule, _ in submitted.values())
    assert rules.count("train") == 1 and rules.count("views_figures") == 1, rules
    assert not local & set(rules)
    for job_id, (rule, wildcards) in submitted.items():
        info = _scontrol(job_id)
        assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", (job_id, info)
        assert Path(info["WorkDir"]).resolve() == slurm_run.workdir.resolve()
        assert info["Comment"].startswith(f"rule_{rule}_"), info
        res_cfg = TINY_SLURM["resources"]["train" if rule == "train" else "figures"]
        if rule in ("train", "views_figures"):
            assert info["Partition"] == (SITE["gpu_partition"] if rule == "train" else SITE["partition"]), info
            assert f"mem={res_cfg['mem_mb']}M" in info["TRES"], info
            assert info["TimeLimit"] == f"00:{res_cfg['runtime']:02d}:00", info
        assert wildcards == "tiny_base", (job_id, rule, wildcards)
        assert _job_environment(job_id).get("HDF5_USE_FILE_LOCKING") == "FALSE"


def test_training_jobs_ask_sbatch_for_the_configured_gpus(slurm_run: SlurmRun, tmp_path: Path) -> None:
    """With the real GPU settings, the training job's sbatch call carries them; this node has no
    gres, so Slurm refuses it (on a GPU cluster the same call starts the job)."""
    cfg = yaml.safe_load(slurm_run.configfile.read_text())
    cfg["resources"]["train"].update(gpu=1, gpu_model="a100", constraint="a100|h100", threads=2)
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = _snakemake(["--profile", "slurm", "-d", str(tmp_path / "work"), "--configfile", str(path),
                      "--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "1",
                      "results/tiny/runs/base/run.h5"], slurm_run.env, timeout=180)
    assert res.returncode != 0, res.describe()
    call = next((line for line in res.output.splitlines() if line.strip().startswith("sbatch --")), None)
    assert call is not None, res.describe()
    for flag in ("--gpus=a100:1", "-C 'a100|h100'", "--cpus-per-task=2", "--mem 1500", "-t 10", "-p gpu",
                 "--comment rule_train_"):
        assert flag in call, f"{flag!r} not in the sbatch call:\n{call}"
    assert "Invalid generic resource" in res.output, res.describe()


def test_noop_rerun_through_the_slurm_profile_schedules_nothing(slurm_run: SlurmRun) -> None:
    res = _snakemake(["--profile", "slurm", "-d", str(slurm_run.workdir), "--configfile", str(slurm_run.configfile),
                      "-n"], slurm_run.env, timeout=120)
    assert res.returncode == 0, res.describe()
    assert nothing_scheduled(res), res.describe()


def test_dask_cluster_of_slurm_jobs_runs_analysis_work(tmp_path: Path) -> None:
    """`gendyn dask-cluster` starts dask workers as Slurm jobs; dask_context sends work there."""
    config_out = tmp_path / "dask.yaml"
    env = _env()
    env.pop("GENDYN_SLURM_SITE", None)
    cluster = subprocess.Popen(
        [str(Path(sys.executable).parent / "gendyn"), "dask-cluster", "--jobs", "1", "--cores", "1",
         "--memory", "1GiB", "--walltime", "00:05:00", "--queue", "debug", "--interface", "lo",
         "--log-directory", str(tmp_path / "logs"), "--config-out", str(config_out), "--lifetime", "110"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not config_out.exists():
            assert cluster.poll() is None, cluster.communicate()[1]
            assert time.monotonic() < deadline, "no scheduler address after 60 s"
            time.sleep(0.5)
        from gendyn.config import validate_config

        fragment = yaml.safe_load(config_out.read_text())
        address = fragment["resources"]["analysis"]["dask_scheduler"]
        assert address.startswith("tcp://127.0.0.1:")
        validate_config({**fragment, "experiments": TINY_SLURM["experiments"]})  # a valid config fragment

        import dask.array as da
        from distributed import Client

        from gendyn.parallel import dask_context

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=90)
            with dask_context(address, threads=1, budget_bytes=64 * 2**20):
                total = int(da.arange(1_000_000, chunks="auto").sum().compute())
            job_ids = set(client.run(lambda: os.environ.get("SLURM_JOB_ID")).values())
        assert total == 999_999 * 1_000_000 // 2
        assert job_ids and None not in job_ids
        for job_id in job_ids:
            info = _scontrol(job_id)
            assert info["JobName"] == "dask-worker" and info["Partition"] == "debug", info
    finally:
        os.killpg(cluster.pid, 15)
        _, err = cluster.communicate(timeout=60)
    assert "closing the dask cluster" in err, err
    assert not config_out.exists(), "the address file must go when the cluster stops"
