"""One writer per output: an exclusive, non-blocking lock beside what is being written.

``gendyn train`` holds the lock of its run directory (``runs/{run}/.gendyn.lock``) from before
it looks at the directory until the last file is published; every analysis stage holds the
lock of its output file (``analysis/{measure}/.{run}.nc.lock``) while it computes and writes.
A second writer does not wait: it fails at once with :class:`LockHeld`, naming the holder
(host, pid, start time, command), so two ``gendyn train`` processes can never interleave
their records in one run (an orphaned job after ``kill -9`` of Snakemake and ``--unlock``, or
two workflows sharing a ``results_dir``).

How the lock works
------------------
The lock file is created if needed and locked with ``flock(LOCK_EX | LOCK_NB)``; its content
is a JSON line describing the holder, written after the lock is taken. The kernel drops the
lock when the holding process ends, however it ends (``kill -9``, a node crash for local
disks), so a lock file left behind is stale and the next writer takes it over. On release
the file is removed.

Network file systems: on NFS (v3 with ``lockd``, v4) Linux turns ``flock`` into a POSIX lock on
the server, which sees every client, so the lock holds across nodes; when a client node
dies, the server releases its locks after its lease (NFSv4, about 90 s). Lustre grants
``flock`` across nodes when mounted with ``-o flock`` (the usual setting on clusters); with
``-o localflock`` the lock holds only between processes of one node. Where the file system
refuses locks altogether (``ENOLCK``, ``ENOSYS``, ``EOPNOTSUPP``: Lustre with ``noflock``, some
FUSE mounts) the lock falls back to creating the file exclusively (``O_CREAT | O_EXCL``, atomic
on NFS and Lustre): the holder's record then decides staleness: a lock of this host whose
process is gone (or whose pid now belongs to a process started later) is taken over; a lock
of another host is reported with the advice to delete the file once that process is known to
be gone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["LockHeld", "LockError", "lock_path", "exclusive", "read_holder"]

logger = logging.getLogger(__name__)

#: File name of the lock of a directory (``gendyn train``'s run directory).
DIR_LOCK_NAME = ".gendyn.lock"

#: Locks this process holds: lock file -> nesting depth (a holder may re-enter its own lock).
_HELD: dict[str, int] = {}

_NO_LOCKS = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}


class LockHeld(OSError):
    """Another process holds the lock of an output (its message names the holder)."""


class LockError(OSError):
    """The lock file cannot be created or written (a read-only or full file system)."""


def lock_path(target: Path | str, *, directory: bool) -> Path:
    """The lock file of ``target``: ``DIR/.gendyn.lock`` for a directory, ``.{name}.lock`` beside a file."""
    target = Path(target)
    if directory:
        return target / DIR_LOCK_NAME
    return target.with_name(f".{target.name}.lock")


def _proc_start(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def _holder_record(what: str) -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pid_start": _proc_start(os.getpid()),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "what": what,
        "command": " ".join(sys.argv)[:500],
    }


def read_holder(path: Path | str) -> dict[str, Any] | None:
    """The holder record in a lock file (None if absent or unreadable)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    try:
        rec = json.loads(text.strip().splitlines()[0]) if text.strip() else None
    except (ValueError, IndexError):
        return None
    return rec if isinstance(rec, dict) else None


def _describe(rec: dict[str, Any] | None) -> str:
    if not rec:
        return "another process (no holder record yet)"
    return (
        f"pid {rec.get('pid')} on host {rec.get('host')}, started {rec.get('started')}"
        + (f" ({rec.get('what')})" if rec.get("what") else "")
        + (f": {rec.get('command')}" if rec.get("command") else "")
    )


def _alive_here(rec: dict[str, Any]) -> bool:
    """Whether the holder of ``rec`` (a record of this host) still runs."""
    pid = rec.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    start = rec.get("pid_start")
    now = _proc_start(pid)
    return start is None or now is None or start == now


def _write_record(fd: int, rec: dict[str, Any]) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(rec) + "\n").encode(), 0)
    os.fsync(fd)


@contextlib.contextmanager
def exclusive(target: Path | str, what: str, *, directory: bool = False) -> Iterator[Path]:
    """Hold the exclusive lock of ``target`` for the block; yield the lock file's path.

    Parameters
    ----------
    target : path
        A directory (``gendyn train``'s run directory) or a file about to be written.
    what : str
        What the holder does, for the message another writer gets (``"gendyn train"``).
    directory : bool
        ``target`` is a directory (lock file inside it) rather than a file (lock file beside it).

    Raises
    ------
    LockHeld
        At once, if another process holds the lock; the message names it and the lock file.
    """
    path = lock_path(target, directory=directory)
    key = str(path.absolute())
    if key in _HELD:  # this process holds it already (a stage command around write_netcdf)
        _HELD[key] += 1
        try:
            yield path
        finally:
            _HELD[key] -= 1
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _acquire(path, what)
    except LockHeld:
        raise
    except OSError as e:
        raise LockError(f"{path}: cannot take the lock ({e.strerror or e}); check that {path.parent} is writable") from None
    _HELD[key] = 1
    try:
        yield path
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            # Still holding the lock: whoever opens the path after this creates a new file.
            path.unlink()
        os.close(fd)


def _acquire(path: Path, what: str, attempts: int = 5) -> int:
    rec = _holder_record(what)
    for _ in range(attempts):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            created = True
        except FileExistsError:
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue  # released in between: try again
            created = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(path)
            os.close(fd)
            raise LockHeld(
                f"{path.parent}: another writer holds {path.name}: {_describe(holder)}. "
                "Wait for it to finish or stop it; two writers would interleave their results"
            ) from None
        except OSError as e:
            if e.errno not in _NO_LOCKS:
                os.close(fd)
                raise
            if created:
                _write_record(fd, rec)
                logger.debug("%s: file system without locks; holding the lock by exclusive creation", path)
                return fd
            holder = read_holder(path)
            os.close(fd)
            if holder and holder.get("host") == rec["host"] and not _alive_here(holder):
                logger.warning("%s: stale lock of %s (process gone); taking it over", path, _describe(holder))
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            other_host = bool(holder) and holder.get("host") != rec["host"]
            raise LockHeld(
                f"{path.parent}: another writer holds {path.name}: {_describe(holder)}"
                + (
                    f". This file system has no locks, so whether that process still runs cannot be checked "
                    f"from here; if it is gone, delete {path} and rerun"
                    if other_host or not holder
                    else ""
                )
            ) from None
        # Locked. If the file was unlinked (released) between open and flock, this lock guards
        # nothing: start over on the current file.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        _write_record(fd, rec)
        return fd
    raise LockHeld(f"{path}: could not take the lock after {attempts} attempts (busy)")
