"""Where dask work runs inside an analysis job: local threads or a dask.distributed cluster.

An analysis stage adds ``--scheduler``, ``--threads`` and ``--mem-budget-mb`` to its subcommand
with :func:`add_dask_arguments` (the rules pass them from ``resources.analysis``, see
``dask_args()`` in ``workflow/rules/common.smk``) and runs its dask work inside
:func:`dask_context`. Without a scheduler address the work runs on the job's own threads; with one
(e.g. a ``dask-jobqueue`` ``SLURMCluster`` spanning many nodes) it runs on that cluster's workers.
Either way dask's automatic chunking is held to the job's memory budget, and pairwise or batched
stages size their blocks from the same budget (:func:`mem_budget_bytes`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


__all__ = ["dask_context", "add_dask_arguments", "mem_budget_bytes", "chunk_bytes"]

logger = logging.getLogger(__name__)

#: Chunks one worker thread may hold at once (inputs and output of a blockwise step, one spare).
CHUNKS_IN_FLIGHT_PER_THREAD = 4
_MIB = 2**20


def mem_budget_bytes(mem_budget_mb: int) -> int:
    """The ``--mem-budget-mb`` option in bytes, checked (a positive number of MiB)."""
    if isinstance(mem_budget_mb, bool) or int(mem_budget_mb) != mem_budget_mb or mem_budget_mb < 1:
        raise ValueError(
            f"mem_budget_mb={mem_budget_mb!r}: the memory budget must be a positive whole number of MiB "
            "(resources.analysis.mem_budget_mb)"
        )
    return int(mem_budget_mb) * _MIB


def chunk_bytes(mem_budget_mb: int, threads: int = 1) -> int:
    """Target size of one dask chunk so that ``threads`` threads stay within the budget.

    Each thread holds up to :data:`CHUNKS_IN_FLIGHT_PER_THREAD` chunks at once, so a chunk gets
    ``budget / (threads * CHUNKS_IN_FLIGHT_PER_THREAD)`` bytes, at least 1 MiB.
    """
    per_chunk = mem_budget_bytes(mem_budget_mb) // (max(1, int(threads)) * CHUNKS_IN_FLIGHT_PER_THREAD)
    return max(_MIB, per_chunk)


@contextlib.contextmanager
def dask_context(
    scheduler: str | None = None, threads: int = 1, mem_budget_mb: int | None = None
) -> Iterator[None]:
    """Run the enclosed dask computations on ``scheduler`` or on ``threads`` local threads.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler (e.g. ``tcp://node17:8786``, as
        started by ``dask-jobqueue``'s ``SLURMCluster``). None: the threaded scheduler.
    threads : int
        Worker threads of the local scheduler (the job's ``threads``).
    mem_budget_mb : int, optional
        Memory budget of the job's chunked stages in MiB. Sets dask's ``array.chunk-size`` (what
        ``chunks="auto"`` aims for) to :func:`chunk_bytes`; None leaves dask's default.

    Notes
    -----
    With a scheduler, the budget sizes chunks for one worker thread of that cluster; the workers'
    own memory limits (``SLURMCluster(memory=...)``) bound the rest.
    """
    settings: dict[str, object] = {}
    if mem_budget_mb is not None:
        workers = 1 if scheduler else threads
        settings["array.chunk-size"] = f"{chunk_bytes(mem_budget_mb, workers) // _MIB}MiB"
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
        import dask

        with client, dask.config.set({**settings, "scheduler": client.get}):
            yield
    else:
        n = max(1, int(threads))
        logger.info("dask: %d local thread(s) (%s)", n, settings or "default chunk size")
        import dask

        with dask.config.set({**settings, "scheduler": "threads", "num_workers": n}):
            yield


def add_dask_arguments(parser) -> None:  # noqa: ANN001 - argparse parser
    """Add ``--scheduler``, ``--threads`` and ``--mem-budget-mb`` to an analysis subcommand."""
    parser.add_argument("--scheduler", default=None, help="dask.distributed scheduler address (default: local threads)")
    parser.add_argument("--threads", type=int, default=1, help="local dask/torch threads")
    parser.add_argument(
        "--mem-budget-mb", type=int, default=4096, help="memory budget of one pairwise/batched stage, MiB (default 4096)"
    )
