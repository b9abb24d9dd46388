"""``gendyn dask-cluster``: a dask cluster of Slurm jobs for heavy analyses (dask-jobqueue).

    gendyn dask-cluster --jobs 8 --cores 8 --memory 64GiB --queue cpu --walltime 08:00:00 \\
        --config-out results/dask.yaml

starts a ``dask_jobqueue.SLURMCluster`` (its scheduler runs in this process, its workers in
``--jobs`` Slurm jobs), writes the scheduler address as a workflow config fragment
(``resources: {analysis: {dask_scheduler: tcp://...}}``) and keeps the cluster up until it is
stopped (Ctrl-C, SIGTERM, ``--lifetime`` or the end of its own Slurm job). Analysis jobs of a
workflow run given that fragment (``snakemake --configfile ... results/dask.yaml``) send their dask
work to the cluster (:func:`gendyn.parallel.dask_context`). Needs ``pip install 'gendyn[cluster]'``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path

__all__ = ["register", "start_cluster"]

logger = logging.getLogger(__name__)


def start_cluster(
    *,
    jobs: int,
    cores: int,
    memory: str,
    walltime: str,
    queue: str | None = None,
    account: str | None = None,
    interface: str | None = None,
    job_extra: list[str] | None = None,
    log_directory: Path | None = None,
):
    """A started ``SLURMCluster`` with ``jobs`` worker jobs requested (one worker process each)."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as e:
        raise RuntimeError("gendyn dask-cluster needs dask-jobqueue: pip install 'gendyn[cluster]'") from e
    cluster = SLURMCluster(
        cores=cores,
        processes=1,
        memory=memory,
        walltime=walltime,
        queue=queue,
        account=account,
        interface=interface,
        python=sys.executable,
        job_extra_directives=list(job_extra or []),
        log_directory=str(log_directory) if log_directory else None,
    )
    cluster.scale(jobs=jobs)
    return cluster


def _write_config(path: Path, address: str) -> None:
    import yaml

    from gendyn.store import atomic_write_text

    text = (
        "# Written by `gendyn dask-cluster`: analysis jobs send their dask work to this scheduler.\n"
        + yaml.safe_dump({"resources": {"analysis": {"dask_scheduler": address}}}, sort_keys=False)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)


def cmd_dask_cluster(args: argparse.Namespace) -> int:
    cluster = start_cluster(
        jobs=args.jobs,
        cores=args.cores,
        memory=args.memory,
        walltime=args.walltime,
        queue=args.queue,
        account=args.account,
        interface=args.interface,
        job_extra=args.job_extra,
        log_directory=args.log_directory,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        address = cluster.scheduler_address
        logger.info("dask scheduler %s; %d worker job(s) of %d cores, %s requested", address, args.jobs, args.cores,
                    args.memory)
        logger.info("worker job script:\n%s", cluster.job_script())
        if args.config_out:
            _write_config(args.config_out, address)
            logger.info("wrote %s: pass it to snakemake after your config file(s)", args.config_out)
        print(address, flush=True)
        deadline = time.monotonic() + args.lifetime if args.lifetime else None
        while not stop.wait(1.0):
            if deadline is not None and time.monotonic() > deadline:
                logger.info("--lifetime of %s s reached", args.lifetime)
                break
    finally:
        logger.info("closing the dask cluster (cancels its worker jobs)")
        cluster.close()
        if args.config_out and args.config_out.exists():
            args.config_out.unlink()
    return 0


def register(subparsers) -> None:  # noqa: ANN001 - argparse subparsers
    p = subparsers.add_parser(
        "dask-cluster",
        help="run a dask cluster of Slurm jobs (dask-jobqueue) for heavy analyses",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--jobs", type=int, default=1, help="worker jobs (one dask worker each; default 1)")
    p.add_argument("--cores", type=int, default=1, help="CPU cores (threads) per worker job (default 1)")
    p.add_argument("--memory", default="4GiB", help="memory per worker job, e.g. 64GiB (default 4GiB)")
    p.add_argument("--walltime", default="01:00:00", help="time limit per worker job, HH:MM:SS (default 01:00:00)")
    p.add_argument("--queue", default=None, help="Slurm partition of the worker jobs (default: the cluster's)")
    p.add_argument("--account", default=None, help="Slurm account of the worker jobs")
    p.add_argument("--interface", default=None, help="network interface the scheduler and workers listen on (e.g. ib0)")
    p.add_argument("--job-extra", action="append", default=[], metavar="FLAG",
                   help="extra #SBATCH flag for the worker jobs, e.g. --job-extra=--qos=long (repeatable)")
    p.add_argument("--log-directory", type=Path, default=None, help="folder of the worker jobs' Slurm logs")
    p.add_argument("--config-out", type=Path, default=None,
                   help="write `resources.analysis.dask_scheduler` here as a workflow config file (removed on exit)")
    p.add_argument("--lifetime", type=float, default=None, help="stop after this many seconds (default: until stopped)")
    p.set_defaults(func=cmd_dask_cluster)
