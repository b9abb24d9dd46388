"""Where dask work runs inside an analysis job, and the job's one memory budget.

Every analysis stage runs inside :func:`analysis_job`, which sets the job's torch threads and
enters :func:`dask_context`: without a scheduler address the dask work runs on the job's own
threads; with one (e.g. a ``dask-jobqueue`` ``SLURMCluster`` spanning many nodes) it runs on
that cluster's workers. Either way dask's automatic chunking is held to the job's memory
budget, and pairwise or batched stages size their blocks from the same budget.

The budget has one name and one default: ``resources.analysis.mem_budget_mb`` in the config
schema (MiB), ``mem_budget_bytes`` inside the library (:class:`AnalysisJob`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["AnalysisJob", "analysis_job", "dask_context", "chunk_bytes", "mem_budget_bytes", "default_mem_budget_mb"]

logger = logging.getLogger(__name__)

#: Chunks one worker thread may hold at once (inputs and output of a blockwise step, one spare).
CHUNKS_IN_FLIGHT_PER_THREAD = 4
_MIB = 2**20


def default_mem_budget_mb() -> int:
    """The schema default of ``resources.analysis.mem_budget_mb`` (MiB)."""
    from gendyn.config import schema

    props = schema()["$defs"]["resources"]["properties"]["analysis"]["properties"]
    return int(props["mem_budget_mb"]["default"])


def mem_budget_bytes(mem_budget_mb: int | None = None) -> int:
    """``resources.analysis.mem_budget_mb`` (None: the schema default) in bytes, checked."""
    if mem_budget_mb is None:
        mem_budget_mb = default_mem_budget_mb()
    if isinstance(mem_budget_mb, bool) or int(mem_budget_mb) != mem_budget_mb or mem_budget_mb < 1:
        raise ValueError(
            f"resources.analysis.mem_budget_mb: {mem_budget_mb!r} is not a positive whole number of MiB"
        )
    return int(mem_budget_mb) * _MIB


def chunk_bytes(budget_bytes: int, threads: int = 1) -> int:
    """Target size of one dask chunk so that ``threads`` threads stay within ``budget_bytes``.

    Each thread holds up to :data:`CHUNKS_IN_FLIGHT_PER_THREAD` chunks at once, so a chunk gets
    ``budget / (threads * CHUNKS_IN_FLIGHT_PER_THREAD)`` bytes, at least 1 MiB.
    """
    per_chunk = int(budget_bytes) // (max(1, int(threads)) * CHUNKS_IN_FLIGHT_PER_THREAD)
    return max(_MIB, per_chunk)


@contextlib.contextmanager
def dask_context(
    scheduler: str | None = None, threads: int = 1, budget_bytes: int | None = None
) -> Iterator[None]:
    """Run the enclosed dask computations on ``scheduler`` or on ``threads`` local threads.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler (e.g. ``tcp://node17:8786``, as
        started by ``dask-jobqueue``'s ``SLURMCluster``). None: the threaded scheduler.
    threads : int
        Worker threads of the local scheduler (the job's ``threads``).
    budget_bytes : int, optional
        Memory budget of the job's chunked stages. Sets dask's ``array.chunk-size`` (what
        ``chunks="auto"`` aims for) to :func:`chunk_bytes`; None leaves dask's default.

    Notes
    -----
    With a scheduler, the budget sizes chunks for one worker thread of that cluster; the workers'
    own memory limits (``SLURMCluster(memory=...)``) bound the rest.
    """
    import dask

    settings: dict[str, object] = {}
    if budget_bytes is not None:
        workers = 1 if scheduler else threads
        settings["array.chunk-size"] = f"{chunk_bytes(budget_bytes, workers) // _MIB}MiB"
    if scheduler:
        try:
            from distributed import Client
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                f"resources.analysis.dask_scheduler={scheduler!r} needs the 'distributed' package: "
                "pip install 'gendyn[cluster]' (or pip install distributed)"
            ) from e
        logger.info("dask: connecting to %s (%s)", scheduler, settings or "default chunk size")
        try:
            client = Client(scheduler, timeout="60s", set_as_default=False)
        except OSError as e:
            raise RuntimeError(
                f"dask scheduler {scheduler!r} (resources.analysis.dask_scheduler) did not answer within 60 s: {e}; "
                "is the cluster running? Unset the address to compute on the job's own threads"
            ) from e
        with client, dask.config.set({**settings, "scheduler": client.get}):
            yield
    else:
        n = max(1, int(threads))
        logger.debug("dask: %d local thread(s) (%s)", n, settings or "default chunk size")
        with dask.config.set({**settings, "scheduler": "threads", "num_workers": n}):
            yield


@dataclass(frozen=True)
class AnalysisJob:
    """What an analysis stage may use: torch/dask threads, dask scheduler, memory budget.

    Attributes
    ----------
    threads : int
        CPU threads of the job (``resources.analysis.threads``).
    mem_budget_bytes : int
        Memory budget of one chunked stage (``resources.analysis.mem_budget_mb``).
    scheduler : str or None
        ``dask.distributed`` scheduler address (``resources.analysis.dask_scheduler``).
    """

    threads: int = 1
    mem_budget_bytes: int = 2048 * _MIB
    scheduler: str | None = None

    @classmethod
    def create(cls, threads: int | None = 1, mem_budget_mb: int | None = None, scheduler: str | None = None) -> AnalysisJob:
        """A job from the config's units (MiB); None takes the schema default budget."""
        return cls(threads=max(1, int(threads or 1)), mem_budget_bytes=mem_budget_bytes(mem_budget_mb), scheduler=scheduler or None)


@contextlib.contextmanager
def analysis_job(job: AnalysisJob | None = None) -> Iterator[AnalysisJob]:
    """Hold torch and BLAS to the job's threads and run the block inside its :func:`dask_context`."""
    from threadpoolctl import threadpool_limits

    from gendyn.runtime import set_threads

    job = job or AnalysisJob.create()
    set_threads(job.threads)
    with dask_context(job.scheduler, job.threads, job.mem_budget_bytes), threadpool_limits(limits=job.threads):
        yield job


