"""Where dask work runs inside an analysis job: local threads or a dask.distributed cluster."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import dask

__all__ = ["dask_context", "add_dask_arguments"]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def dask_context(scheduler: str | None = None, threads: int = 1) -> Iterator[None]:
    """Run the enclosed dask computations on ``scheduler`` or on ``threads`` local threads.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler (e.g. ``tcp://node17:8786``, as
        started by ``dask-jobqueue``'s ``SLURMCluster``). None: the threaded scheduler.
    threads : int
        Worker threads of the local scheduler (the job's ``threads``).
    """
    if scheduler:
        try:
            from distributed import Client
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                f"resources.analysis.dask_scheduler={scheduler!r} needs the 'distributed' package: pip install distributed"
            ) from e
        logger.info("dask: connecting to %s", scheduler)
        with Client(scheduler) as client, dask.config.set(scheduler=client.get):
            yield
    else:
        with dask.config.set(scheduler="threads", num_workers=max(1, int(threads))):
            yield


def add_dask_arguments(parser) -> None:  # noqa: ANN001 - argparse parser
    """Add ``--scheduler``, ``--threads`` and ``--mem-budget-mb`` to an analysis subcommand."""
    parser.add_argument("--scheduler", default=None, help="dask.distributed scheduler address (default: local threads)")
    parser.add_argument("--threads", type=int, default=1, help="local dask/torch threads")
    parser.add_argument(
        "--mem-budget-mb", type=int, default=4096, help="memory budget of one pairwise/batched stage, MiB (default 4096)"
    )
