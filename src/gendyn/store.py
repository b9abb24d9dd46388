"""All HDF5/netCDF reading and writing: the run store, checkpoints, verified atomic publishing.

Durability
----------
HDF5 files are not crash-safe while open for writing: a process killed between two
metadata writes can leave a file that no longer opens ("bad object header"). So while a run
trains, every record point, metrics row and checkpoint is staged as its own small file in
``run.partial/`` and ``checkpoints.partial/``, each written to a temporary name, fsync'ed and
renamed: after a crash every staged entry is either complete or absent.

Publishing (:func:`publish_hdf5`, used for ``checkpoints.h5``, ``run.h5`` and every analysis
file) guards against a failing disk as well as a crash:

1. the file is written under a sibling temporary name (``.run.h5.XXXX.tmp``); a checksum of
   every dataset is computed from the data in memory as it is written;
2. HDF5 buffers writes and reports some failures (a full disk, a quota) only when a buffer is
   released, where Python prints "Exception ignored" and goes on: the file is flushed and
   closed explicitly, and every such swallowed error fails the write;
3. the file is reopened, every dataset read back and hashed: a dataset that differs from what
   was written (lost chunks, zeros) fails the write; only then are the checksums stored
   (root attribute ``checksums``) and ``status = "complete"`` written, last;
4. the file is reopened read-only once more and checked (format, status, every checksum),
   fsync'ed and renamed to its final name, and the directory is fsync'ed.

Any failure removes the temporary file and raises :class:`StoreError` naming the final path;
nothing is published. :func:`gendyn.train.train_run` removes the staged records and the
resume state only after both files are published, so a kill or a full disk during assembly
resumes the assembly, not the training. Temporary files of a killed writer are removed by the
next writer of the same output (:func:`remove_orphans`).

The stored checksums also catch corruption after publication: :func:`verify_file` (``gendyn
info --verify``) rereads every dataset. Readers (:func:`check_run_file`, :func:`open_group`)
name the file and the step that rewrites it in every error.

After a kill, staging may hold entries written after the last resume state; resuming
truncates them back to the counts saved in that state (:meth:`RunWriter.truncate`).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5netcdf
import h5py
import numpy as np

__all__ = [
    "FORMAT",
    "CHECKPOINT_FORMAT",
    "StoreError",
    "LayerInfo",
    "RunWriter",
    "CheckpointWriter",
    "atomic_write_text",
    "atomic_path",
    "publish_hdf5",
    "remove_orphans",
    "check_run_file",
    "verify_file",
    "file_checksums",
    "dataset_checksum",
    "open_group",
    "rewrite_hint",
    "read_checkpoint",
    "checkpoint_steps",
    "attr_value",
    "divergence",
    "skipped_dataset",
    "is_skipped",
    "SKIPPED_ATTR",
    "ANALYSIS_FORMAT",
    "write_netcdf",
    "open_analysis",
    "RUN_FILE",
    "CHECKPOINT_FILE",
    "RESUME_FILE",
    "CONFIG_FILE",
    "TMP_SUFFIX",
    "record_chunks",
    "chunked_nbytes",
    "run_file_nbytes",
    "checkpoint_file_nbytes",
    "netcdf_nbytes",
]

logger = logging.getLogger(__name__)

#: Format tag of ``run.h5`` (bumped on incompatible layout changes).
FORMAT = "gendyn-run/1"
#: Format tag of ``checkpoints.h5``.
CHECKPOINT_FORMAT = "gendyn-checkpoints/1"

RUN_FILE = "run.h5"
CHECKPOINT_FILE = "checkpoints.h5"
RESUME_FILE = "resume.pt"
CONFIG_FILE = "config.yaml"
#: Suffix of the temporary files of :func:`atomic_path` (``.{name}.XXXXXXXX.tmp``).
TMP_SUFFIX = ".tmp"


class StoreError(OSError):
    """A result file is missing, truncated, foreign, incomplete, corrupted or could not be written."""


# --------------------------------------------------------------------------- errors


def rewrite_hint(path: Path | str, attrs: Mapping[str, Any] | None = None) -> str:
    """The step that rewrites ``path``, as advice for an error message."""
    path = Path(path)
    attrs = attrs or {}
    fmt = attrs.get("gendyn_format")
    if fmt in (FORMAT, CHECKPOINT_FORMAT) or path.name in (RUN_FILE, CHECKPOINT_FILE):
        return (
            f"delete it and rerun 'gendyn train' for {path.parent} (Snakemake reruns the train rule "
            "for a missing file; a run killed during training resumes)"
        )
    stage = attrs.get("stage") or (f"gendyn {attrs['measure']} <stage>" if attrs.get("measure") else "")
    if fmt == ANALYSIS_FORMAT or path.suffix == ".nc":
        what = f"'{stage}'" if stage else "the analysis stage that writes it"
        return f"delete it and rerun {what} (Snakemake reruns it for a missing file)"
    return "delete it and rerun the step that writes it"


def _reason(e: BaseException) -> str:
    """One line describing an I/O error (HDF5 messages span several lines)."""
    if (
        isinstance(e, OSError)
        and isinstance(e.strerror, str)
        and isinstance(e.errno, int)
        and not str(e).startswith(("Unable", "Can't"))
    ):
        text = e.strerror
        if e.filename:
            text += f" ({e.filename})"
    else:
        text = str(e)
    line = " ".join(str(text).split())
    # HDF5: "Write through page buffer failed (file write failed: ..., errno = 28, error
    # message = 'No space left on device', ...)" -> "No space left on device (Write through ...)"
    m = re.search(r"error message = '([^']*)'", line)
    if m:
        line = f"{m.group(1)} ({line.split(' (', 1)[0]})"
    return line if len(line) <= 300 else line[:297] + "..."


def _write_error(final: Path, e: BaseException) -> StoreError:
    return StoreError(
        f"{final}: not written: {_reason(e)}. Nothing was published; free space or fix the permissions of "
        f"{final.parent} and rerun (the step resumes where it stopped)",
    )


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- atomic files


@contextlib.contextmanager
def atomic_path(final: Path, *, verify: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a sibling temporary path; on success verify, fsync and rename it to ``final``.

    Parameters
    ----------
    final : path
        The file to publish.
    verify : callable, optional
        Called with the temporary path after the block (the file is closed then); raises to
        refuse publication.

    Raises
    ------
    StoreError
        Naming ``final``, for any ``OSError`` (full disk, read-only directory, ...); the
        temporary file is removed and ``final`` is untouched.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=final.parent)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; published files get normal permissions
    except OSError as e:
        raise _write_error(final, e) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if verify is not None:
            verify(tmp_path)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, final)
        _fsync_dir(final.parent)
    except BaseException as e:
        tmp_path.unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, StoreError):
            raise _write_error(final, e) from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(text)


def remove_orphans(directory: Path | str, names: Sequence[str] | None = None) -> list[Path]:
    """Remove temporary files of :func:`atomic_path` left by a killed writer; return them.

    Call only while holding the lock of what is written there (:mod:`gendyn.locks`): a
    temporary file of a live writer looks the same. ``names``: only those of these final
    file names (default: every one in ``directory``).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for p in directory.iterdir():
        n = p.name
        if not (n.startswith(".") and n.endswith(TMP_SUFFIX)):
            continue
        if names is not None and not any(n.startswith(f".{name}.") for name in names):
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    if removed:
        logger.info("%s: removed %d temporary file(s) of an interrupted writer", directory, len(removed))
    return removed


# --------------------------------------------------------------------------- checksums


class _Digest:
    """SHA-256 of a dataset's values, fed in pieces along its first axis.

    Numbers: their bytes in C order, little-endian. Strings (variable length): each as its
    length (8 bytes, little-endian) and its UTF-8 bytes.
    """

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(self, values: Any) -> None:
        a = np.asarray(values)
        if a.dtype.kind in "OSU":
            for e in a.reshape(-1):
                b = e if isinstance(e, bytes) else str(e).encode("utf-8")
                self._h.update(len(b).to_bytes(8, "little"))
                self._h.update(b)
            return
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        self._h.update(a.tobytes(order="C"))

    def hexdigest(self) -> str:
        return "sha256:" + self._h.hexdigest()


def dataset_checksum(values: Any) -> str:
    """The checksum gendyn stores for a dataset with these values (``"sha256:<hex>"``)."""
    d = _Digest()
    d.update(values)
    return d.hexdigest()


def _h5_checksum(ds: h5py.Dataset, block_bytes: int = 64 << 20) -> str:
    d = _Digest()
    if ds.shape is None:  # an empty dataspace
        return d.hexdigest()
    if ds.ndim == 0 or ds.shape[0] == 0:
        d.update(ds[()])
        return d.hexdigest()
    row = max(1, int(np.prod(ds.shape[1:], dtype=np.int64)) * max(1, ds.dtype.itemsize))
    step = max(1, block_bytes // row)
    for i in range(0, ds.shape[0], step):
        d.update(ds[i : i + step])
    return d.hexdigest()


def _datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)


def file_checksums(path: Path | str) -> dict[str, str]:
    """The checksum of every dataset in an HDF5 file, as stored in its ``checksums`` attribute."""
    with h5py.File(path, "r") as f:
        return {name: _h5_checksum(f[name]) for name in _datasets(f)}


@contextlib.contextmanager
def _swallowed_errors() -> Iterator[list[str]]:
    """Collect the errors HDF5 objects raise in their finalisers within the block.

    h5py reports a write that failed in a buffer flush when the object is released: Python
    prints it ("Exception ignored in ... __dealloc__", through ``sys.unraisablehook``, after a
    traceback printed through ``sys.excepthook``) and goes on. Here both hooks collect instead,
    so the caller can fail the write with one clear error.
    """
    errors: list[str] = []
    old_unraisable, old_except = sys.unraisablehook, sys.excepthook

    def unraisable(u: Any) -> None:
        errors.append(_reason(u.exc_value) if u.exc_value is not None else str(u))

    def excepthook(exc_type: Any, exc: Any, tb: Any) -> None:
        errors.append(_reason(exc) if exc is not None else str(exc_type))

    sys.unraisablehook, sys.excepthook = unraisable, excepthook
    try:
        yield errors
        # Objects held in reference cycles are released now, still inside the block.
        gc.collect(0)
    finally:
        sys.unraisablehook, sys.excepthook = old_unraisable, old_except


def _contained(final: Path, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` (which writes an HDF5 file); turn its failures into one :class:`StoreError`.

    Errors HDF5 objects only print are collected (:func:`_swallowed_errors`). A failed write
    leaves h5py objects referenced from the exception's traceback; releasing them after a
    failed write can crash the HDF5 library. In the child process of :func:`_isolated` they are
    never released (the error is raised from inside the handler, the child exits at once);
    otherwise they are released here, inside the collecting block.
    """
    error: StoreError | None = None
    result = None
    with _swallowed_errors() as swallowed:
        try:
            result = fn()
        except StoreError as e:
            if _IN_CHILD:
                raise StoreError(str(e))  # noqa: B904 - keep e (and its HDF5 objects) alive
            error = StoreError(str(e))
        except (OSError, RuntimeError, ValueError, KeyError) as e:
            if _IN_CHILD:
                raise _write_error(final, e)  # noqa: B904
            error = _write_error(final, e)
    if error is not None:
        raise error
    if swallowed:
        raise StoreError(f"{final}: not written: {swallowed[0]}. Nothing was published; free space and rerun")
    return result


def _seal(tmp: Path, final: Path, expected: Mapping[str, str]) -> None:
    """Reread ``tmp``; compare with ``expected``; store ``checksums`` and ``status = complete``."""
    _contained(final, lambda: _seal_open(tmp, final, expected))


def _seal_open(tmp: Path, final: Path, expected: Mapping[str, str]) -> None:
    with h5py.File(tmp, "r+") as f:
        got = {name: _h5_checksum(f[name]) for name in _datasets(f)}
        bad = [k for k, v in expected.items() if got.get(k) != v]
        if bad:
            raise StoreError(
                f"{final}: {len(bad)} dataset(s) read back differ from what was written ({', '.join(bad[:5])}"
                f"{' ...' if len(bad) > 5 else ''}); the disk lost data. Nothing was published; rerun"
            )
        f.attrs["checksums"] = json.dumps(got, sort_keys=True)
        f.attrs["status"] = "complete"
        f.flush()


def publish_hdf5(final: Path | str, write: Callable[[Path], Mapping[str, str] | None], *, fmt: str) -> Path:
    """Write an HDF5 file with ``write(tmp)`` and publish it only once it reads back as written.

    Parameters
    ----------
    final : path
        The file to publish.
    write : callable
        Writes the file at the given temporary path and closes it; returns the checksums of the
        datasets it wrote, computed from the data in memory (:func:`dataset_checksum`), or
        None when it has none (the caller compared the values itself). It must not set
        ``status = "complete"``.
    fmt : str
        The ``gendyn_format`` the file carries.

    Returns
    -------
    Path of the published file.

    Raises
    ------
    StoreError
        Naming ``final``: a write failed (also one HDF5 only printed, or one that crashed the
        HDF5 library), the data read back differs, or the sealed file does not verify.
        Nothing is published then.

    Notes
    -----
    The HDF5 work (write, seal, verify) runs in a forked child process where the platform
    has ``fork``: after a failed write the HDF5 library can crash the process that releases its
    objects (seen as a segfault when a disk filled up). The parent only renames what the child
    verified, and reports a crash as a failed write.
    """
    final = Path(final)

    def build(tmp: Path) -> None:
        expected = _contained(final, lambda: write(tmp)) or {}
        _seal(tmp, final, expected)
        try:
            verify_file(tmp, fmt=fmt)
        except StoreError as e:
            raise StoreError(f"{final}: the written file does not verify ({e}); nothing was published; rerun") from None

    with atomic_path(final) as tmp:
        _isolated(final, lambda: build(tmp))
    return final


#: Run the HDF5 work of :func:`publish_hdf5` in a forked child (where ``fork`` exists).
ISOLATE_WRITES = hasattr(os, "fork")
_IN_CHILD = False


def _isolated(final: Path, fn: Callable[[], None]) -> None:
    """Run ``fn`` in a forked child; its exception (as a message) or a crash become a StoreError."""
    if not ISOLATE_WRITES:
        fn()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns, never releases what a failed write left
        global _IN_CHILD
        _IN_CHILD = True
        try:
            os.close(r)
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                view = memoryview((str(e) or type(e).__name__).encode())
                while view:
                    view = view[os.write(w, view) :]
                os._exit(3)
            os._exit(0)
        finally:
            os._exit(70)
    os.close(w)
    try:
        chunks = []
        while True:
            b = os.read(r, 1 << 16)
            if not b:
                break
            chunks.append(b)
        _, status = os.waitpid(pid, 0)
    except BaseException:
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        raise
    finally:
        os.close(r)
    msg = b"".join(chunks).decode(errors="replace")
    if os.WIFSIGNALED(status):
        raise StoreError(
            f"{final}: not written: the HDF5 library crashed (signal {os.WTERMSIG(status)}) while writing it, as it "
            "can when the disk fills up. Nothing was published; free space and rerun"
        )
    if os.WEXITSTATUS(status) != 0:
        raise StoreError(msg or f"{final}: not written (exit status {os.WEXITSTATUS(status)}); nothing was published")


# --------------------------------------------------------------------------- run.h5


@dataclass(frozen=True)
class LayerInfo:
    """A recording site: a ReLU module, its stored name and its unit shape."""

    name: str  # variable name in /masks, e.g. "layer1_0_relu1"
    module: str  # qualified module name, e.g. "layer1.0.relu1"
    unit_shape: tuple[int, ...]

    @property
    def n_units(self) -> int:
        return int(np.prod(self.unit_shape)) if self.unit_shape else 1

    @property
    def n_bytes(self) -> int:
        return (self.n_units + 7) // 8


def _chunk_images(n_images: int, row_bytes: int, target: int = 1 << 20) -> int:
    return max(1, min(n_images, target // max(1, row_bytes)))


def record_chunks(n_images: int, width: int, itemsize: int) -> tuple[int, int, int]:
    """HDF5 chunk shape of a ``/masks`` or ``/activations`` variable: one record, about 1 MiB."""
    chunk_w = max(1, min(width, (1 << 20) // itemsize))
    return (1, _chunk_images(n_images, chunk_w * itemsize), chunk_w)


class _Staging:
    """A directory of numbered, atomically written entries (``{kind}_{k:07d}.npz``).

    Every entry is complete or absent, whatever the moment of a crash, so the staged
    prefix of a run survives ``kill -9`` (and, with fsync, a power loss).
    """

    def __init__(self, path: Path, *, resume: bool) -> None:
        self.path = Path(path)
        if not resume and self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)

    def entry(self, kind: str, k: int) -> Path:
        return self.path / f"{kind}_{k:07d}.npz"

    def count(self, kind: str) -> int:
        k = 0
        while self.entry(kind, k).exists():
            k += 1
        return k

    def write(self, kind: str, k: int, arrays: Mapping[str, np.ndarray]) -> None:
        with atomic_path(self.entry(kind, k)) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    def read(self, kind: str, k: int) -> dict[str, np.ndarray]:
        with np.load(self.entry(kind, k), allow_pickle=False) as z:
            return {name: z[name] for name in z.files}

    def read_keys(self, kind: str, k: int, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Only ``keys`` of entry ``k`` (an ``.npz`` member is read on access)."""
        with np.load(self.entry(kind, k), allow_pickle=False) as z:
            return {name: z[name] for name in keys if name in z.files}

    def truncate(self, kind: str, n: int) -> None:
        k = n
        while self.entry(kind, k).exists():
            self.entry(kind, k).unlink()
            k += 1

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_text(self.path / name, json.dumps(obj))

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return {"__array__": v.tolist(), "dtype": str(v.dtype)}
    if isinstance(v, np.generic):
        return v.item()
    return v


def _from_jsonable(v: Any) -> Any:
    if isinstance(v, dict) and "__array__" in v:
        return np.asarray(v["__array__"], dtype=v["dtype"])
    return v


class RunWriter:
    """Stage a run's records while it trains; assemble ``run.h5`` when it ends.

    While training, each record point and each metrics row is written as its own atomic
    file in the staging directory ``run.partial/`` (see :class:`_Staging`), so a killed
    run keeps every record written before the kill. :meth:`finish` assembles ``run.h5``
    following the HDF5 contract (docs/results.md) under a temporary name, writes
    ``status = "complete"`` last, and renames it.

    Parameters
    ----------
    path : Path
        The staging directory.
    attrs : mapping
        Root attributes (``config``, ``seed``, ``device``, ...); ``gendyn_format`` and
        ``status`` are added.
    tracked : mapping of str to (N,) arrays
        ``index``, ``split``, ``label`` of the tracked images.
    layers : sequence of LayerInfo
        Recording sites in forward order.
    metric_names : sequence of str
        Variables of ``/metrics`` besides ``step``.
    masks : bool
        Record bit-packed masks.
    activations : {None, "float16", "float32"}
        Also record ReLU inputs.
    resume : bool
        Keep what is staged (a resumed run); otherwise start empty.
    """

    def __init__(
        self,
        path: Path,
        *,
        attrs: Mapping[str, Any],
        tracked: Mapping[str, np.ndarray],
        layers: Sequence[LayerInfo],
        metric_names: Sequence[str],
        masks: bool = True,
        activations: str | None = None,
        resume: bool = False,
    ) -> None:
        self.stage = _Staging(path, resume=resume)
        self.path = self.stage.path
        self.layers = list(layers)
        self.metric_names = list(metric_names)
        self.masks = masks
        self.activations = activations
        self.tracked = {k: np.asarray(v) for k, v in tracked.items()}
        if resume and (self.path / "attrs.json").exists():
            self.attrs = {k: _from_jsonable(v) for k, v in self.stage.read_json("attrs.json").items()}
        else:
            self.attrs = dict(attrs)
            self.stage.write_json("attrs.json", {k: _jsonable(v) for k, v in self.attrs.items()})
        self.n_records = self.stage.count("record")
        self.n_metrics = self.stage.count("metrics")
        self.last_metrics: dict[str, float] = {}

    def append_record(
        self,
        step: int,
        epoch: float,
        masks: Mapping[str, np.ndarray] | None,
        activations: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Stage one record point; arrays are (N, n_bytes) uint8 / (N, n_units) float."""
        arrays: dict[str, np.ndarray] = {"step": np.int64(step), "epoch": np.float64(epoch)}
        for prefix, data, wanted in (("m_", masks, self.masks), ("a_", activations, self.activations)):
            if not wanted:
                continue
            if data is None:
                raise ValueError(f"{self.path}: record at step {step} lacks {'masks' if prefix == 'm_' else 'activations'}")
            for lay in self.layers:
                arrays[prefix + lay.name] = data[lay.name]
        self.stage.write("record", self.n_records, arrays)
        self.n_records += 1

    def append_metrics(self, step: int, row: Mapping[str, float]) -> None:
        """Stage one row of ``/metrics`` at ``step``; absent names stay NaN."""
        unknown = set(row) - set(self.metric_names)
        if unknown:
            raise KeyError(f"{self.path}: /metrics has no variable(s) {sorted(unknown)}")
        self.stage.write("metrics", self.n_metrics, {"step": np.int64(step), **{k: np.float64(v) for k, v in row.items()}})
        self.n_metrics += 1
        self.last_metrics = dict(row)

    def truncate(self, n_records: int, n_metrics: int) -> None:
        """Drop records/metric rows staged after the resume state being restored."""
        self.stage.truncate("record", n_records)
        self.stage.truncate("metrics", n_metrics)
        self.n_records = min(self.n_records, n_records)
        self.n_metrics = min(self.n_metrics, n_metrics)

    def set_attrs(self, **attrs: Any) -> None:
        self.attrs.update(attrs)
        self.stage.write_json("attrs.json", {k: _jsonable(v) for k, v in self.attrs.items()})

    def finish(self, final: Path, **attrs: Any) -> Path:
        """Assemble ``final`` from the staged entries and publish it verified (:func:`publish_hdf5`).

        The staged entries stay: remove them with :meth:`remove` once every file of the run is
        published, so that an interrupted assembly can be repeated.
        """
        self.set_attrs(**attrs)
        return publish_hdf5(Path(final), self._write, fmt=FORMAT)

    def remove(self) -> None:
        """Delete the staging directory (after the run is published)."""
        self.stage.remove()

    def close(self) -> None:
        """Nothing is held open between appends (kept for symmetry with the readers)."""

    # -- assembly
    def _write(self, tmp: Path) -> dict[str, str]:
        """Write ``run.h5`` at ``tmp`` (status ``assembling``); return the checksums of its data."""
        sums: dict[str, str] = {}

        def put(h5ds: Any, path: str, values: Any) -> None:
            h5ds[...] = values
            sums[path] = dataset_checksum(values)

        with h5netcdf.File(tmp, "w") as f:
            f.attrs["gendyn_format"] = FORMAT
            for k, v in self.attrs.items():
                f.attrs[k] = v
            f.attrs["status"] = "assembling"
            f.attrs["layers"] = json.dumps([lay.name for lay in self.layers])
            n = len(self.tracked["index"])

            g = f.create_group("tracked")
            g.dimensions = {"image": n}
            for name, values in (
                ("image", np.arange(n, dtype=np.int64)),
                ("index", self.tracked["index"].astype(np.int64)),
                ("split", self.tracked["split"].astype(object)),
                ("label", self.tracked["label"].astype(np.int64)),
            ):
                dtype = h5py.string_dtype() if name == "split" else values.dtype
                v = g.create_variable(name, ("image",), dtype=dtype)
                if n:
                    put(v._h5ds, f"tracked/{name}", values)
                else:
                    sums[f"tracked/{name}"] = dataset_checksum(values)
                if name == "index":
                    v.attrs["description"] = "index of the image in its split (data.train / data.test)"

            rows = [self.stage.read("metrics", k) for k in range(self.n_metrics)]
            g = f.create_group("metrics")
            g.dimensions = {"step": len(rows)}
            cols = {"step": np.array([int(r["step"]) for r in rows], dtype=np.int64)}
            for name in self.metric_names:
                cols[name] = np.array([float(r[name]) if name in r else np.nan for r in rows], dtype=np.float64)
            for name, col in cols.items():
                g.create_variable(name, ("step",), data=col)
                sums[f"metrics/{name}"] = dataset_checksum(col)

            groups = []
            if self.masks:
                groups.append(("masks", "m_", "byte", np.dtype(np.uint8)))
            if self.activations:
                groups.append(("activations", "a_", "unit", np.dtype(self.activations)))
            if groups:
                self._write_records(f, groups, n, sums)
            f.flush()
        return sums

    def _write_records(self, f: h5netcdf.File, groups: list[tuple[str, str, str, np.dtype]], n: int, sums: dict[str, str]) -> None:
        n_rec = self.n_records
        heads = [self.stage.read_keys("record", k, ("step", "epoch")) for k in range(n_rec)]
        steps = np.array([int(h["step"]) for h in heads], dtype=np.int64)
        epochs = np.array([float(h["epoch"]) for h in heads], dtype=np.float64)
        targets: list[tuple[str, str, Any, _Digest, np.dtype]] = []  # (staged key, path, h5 dataset, digest, dtype)
        for gname, key_prefix, dim_prefix, dtype in groups:
            g = f.create_group(gname)
            dims: dict[str, int] = {"record": n_rec, "image": n}
            for lay in self.layers:
                dims[f"{dim_prefix}_{lay.name}"] = lay.n_bytes if dim_prefix == "byte" else lay.n_units
            g.dimensions = dims
            for name, col in (("record", np.arange(n_rec, dtype=np.int64)), ("step", steps), ("epoch", epochs)):
                g.create_variable(name, ("record",), data=col)
                sums[f"{gname}/{name}"] = dataset_checksum(col)
            itemsize = dtype.itemsize
            for order, lay in enumerate(self.layers):
                width = dims[f"{dim_prefix}_{lay.name}"]
                v = g.create_variable(
                    lay.name,
                    ("record", "image", f"{dim_prefix}_{lay.name}"),
                    dtype=dtype,
                    chunks=record_chunks(n, width, itemsize),
                )
                v.attrs["coordinates"] = "step epoch"
                v.attrs["module"] = lay.module
                v.attrs["n_units"] = lay.n_units
                v.attrs["unit_shape"] = np.asarray(lay.unit_shape or (1,), dtype=np.int64)
                v.attrs["order"] = order
                v.attrs["description"] = (
                    "bit-packed ReLU mask (pre-activation > 0), numpy.packbits bitorder=little, "
                    "one bit per unit in C order of unit_shape"
                    if dim_prefix == "byte"
                    else "ReLU pre-activation (input of the ReLU module)"
                )
                # One h5py handle per variable for the whole assembly: HDF5 reports a failed
                # chunk write when the handle's buffers are flushed (below), not on a temporary.
                targets.append((key_prefix + lay.name, f"{gname}/{lay.name}", v._h5ds, _Digest(), dtype))
        for k in range(n_rec):
            record = self.stage.read("record", k)
            for key, _, h5ds, digest, dtype in targets:
                values = np.asarray(record[key], dtype=dtype)
                h5ds[k] = values
                digest.update(values)
        for _, path, h5ds, digest, _ in targets:
            h5ds.id.flush()
            sums[path] = digest.hexdigest()


# --------------------------------------------------------------------------- checkpoints.h5


class CheckpointWriter:
    """Stage model state dicts at record points; assemble ``checkpoints.h5`` at the end.

    Layout of ``checkpoints.h5``: root attrs ``gendyn_format``, ``status``; datasets
    ``step`` (R,), ``epoch`` (R,); one dataset per state-dict entry under ``/state/{key}``
    of shape (R, *shape).
    """

    def __init__(self, path: Path, *, resume: bool = False) -> None:
        self.stage = _Staging(path, resume=resume)
        self.path = self.stage.path
        self.n = self.stage.count("state")

    def append(self, step: int, epoch: float, state: Mapping[str, np.ndarray]) -> None:
        arrays = {"__step": np.int64(step), "__epoch": np.float64(epoch)}
        arrays.update({f"s/{k}": np.asarray(v) for k, v in state.items()})
        self.stage.write("state", self.n, arrays)
        self.n += 1

    def truncate(self, n: int) -> None:
        self.stage.truncate("state", n)
        self.n = min(self.n, n)

    def finish(self, final: Path) -> Path:
        """Assemble ``checkpoints.h5`` and publish it verified; the staged entries stay (:meth:`remove`)."""
        return publish_hdf5(Path(final), self._write, fmt=CHECKPOINT_FORMAT)

    def remove(self) -> None:
        """Delete the staging directory (after the run is published)."""
        self.stage.remove()

    def _write(self, tmp: Path) -> dict[str, str]:
        sums: dict[str, str] = {}
        heads = [self.stage.read_keys("state", k, ("__step", "__epoch")) for k in range(self.n)]
        with h5py.File(tmp, "w") as f:
            f.attrs["gendyn_format"] = CHECKPOINT_FORMAT
            f.attrs["status"] = "assembling"
            for name, key, dtype in (("step", "__step", np.int64), ("epoch", "__epoch", np.float64)):
                col = np.array([h[key] for h in heads], dtype=dtype)
                f.create_dataset(name, data=col)
                sums[name] = dataset_checksum(col)
            grp = f.create_group("state")
            targets: list[tuple[str, h5py.Dataset, _Digest]] = []
            for k in range(self.n):
                entry = self.stage.read("state", k)
                if k == 0:
                    for key in (key for key in entry if key.startswith("s/")):
                        first = entry[key]
                        ds = grp.create_dataset(
                            key[2:], shape=(self.n, *first.shape), dtype=first.dtype,
                            chunks=(1, *first.shape) if first.size else None,
                        )  # fmt: skip
                        targets.append((key, ds, _Digest()))
                for key, ds, digest in targets:
                    values = np.asarray(entry[key], dtype=ds.dtype)
                    ds[k] = values
                    digest.update(values)
            for key, ds, digest in targets:
                ds.id.flush()
                sums[f"state/{key[2:]}"] = digest.hexdigest()
            f.flush()
        return sums

    def close(self) -> None:
        """Nothing is held open between appends."""


# --------------------------------------------------------------------------- analysis outputs

#: Format tag of analysis outputs (``analysis/{measure}/{run}.nc``).
ANALYSIS_FORMAT = "gendyn-analysis/1"


def write_netcdf(
    ds: Any, path: Path | str, *, measure: str, encoding: Mapping[str, Any] | None = None, stage: str | None = None
) -> Path:
    """Write an ``xarray.Dataset`` as netCDF4 (h5netcdf), verified and atomically.

    Adds the attributes ``gendyn_format``, ``gendyn_version``, ``measure`` (and ``stage``, the
    command that writes the file), then publishes through :func:`publish_hdf5`: the file is
    read back and compared with ``ds`` (after the storage encoding, e.g. float32), gets its
    ``checksums`` and finally ``status = "complete"``. Attributes that are dicts are stored as
    JSON strings. Holds the lock of ``path`` (:mod:`gendyn.locks`) while it writes, and removes
    temporary files an interrupted writer of ``path`` left.

    Raises
    ------
    gendyn.locks.LockHeld
        If another process writes ``path``.
    StoreError
        Naming ``path`` if it could not be written or does not read back as written.
    """
    import gendyn
    from gendyn.locks import exclusive

    path = Path(path)
    ds = ds.copy()
    ds.attrs = {k: (json.dumps(v) if isinstance(v, (dict, list, tuple)) and not _is_numeric_seq(v) else v) for k, v in ds.attrs.items()}
    ds.attrs.update(gendyn_format=ANALYSIS_FORMAT, gendyn_version=gendyn.__version__, measure=measure)
    if stage:
        ds.attrs["stage"] = stage
    ds.attrs["status"] = "assembling"
    ds = ds.load()
    encoding = {k: v for k, v in (encoding or {}).items() if k in ds.variables}

    def write(tmp: Path) -> None:
        import xarray as xr

        ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
        with xr.open_dataset(tmp, engine="h5netcdf") as back:
            bad = [name for name in ds.variables if not _same_values(ds[name], back, name, encoding)]
        if bad:
            raise StoreError(
                f"{path}: variable(s) {', '.join(map(str, bad[:5]))} read back differ from what was written; "
                "the disk lost data. Nothing was published; rerun"
            )
        return None

    with exclusive(path, f"writing {path.name}"):
        remove_orphans(path.parent, [path.name])
        publish_hdf5(path, write, fmt=ANALYSIS_FORMAT)
    return path


def _same_values(var: Any, back: Any, name: Any, encoding: Mapping[str, Any]) -> bool:
    """Whether variable ``name`` of the reopened dataset ``back`` holds ``var``'s values as encoded."""
    if name not in back.variables:
        return False
    got = np.asarray(back[name].values)
    want = np.asarray(var.values)
    if got.shape != want.shape:
        return False
    if want.dtype.kind in "OSU" or got.dtype.kind in "OSU":
        return bool(np.array_equal(want.astype(str), got.astype(str)))
    dtype = (encoding.get(name) or {}).get("dtype") or var.encoding.get("dtype")
    if dtype is not None and want.dtype.kind in "fc":
        want = want.astype(dtype)
    if want.dtype.kind in "fc" or got.dtype.kind in "fc":
        return bool(np.array_equal(want.astype(got.dtype) if got.dtype.kind in "fc" else want, got, equal_nan=True))
    return bool(np.array_equal(want, got))


def _is_numeric_seq(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) and len(v) > 0


def open_analysis(path: Path | str) -> Any:
    """Open an analysis output written by :func:`write_netcdf` (checked, lazily)."""
    path = Path(path)
    check_run_file(path, fmt=ANALYSIS_FORMAT)
    return open_group(path, None, load=False)


# --------------------------------------------------------------------------- reading


_KINDS = {FORMAT: "run file", CHECKPOINT_FORMAT: "checkpoint file", ANALYSIS_FORMAT: "analysis file"}


def check_run_file(path: Path, *, fmt: str = FORMAT, require_complete: bool = True) -> dict[str, Any]:
    """Open an HDF5 result read-only, check its format tag and status; return root attrs.

    Works for ``run.h5`` (``fmt=FORMAT``), ``checkpoints.h5`` (``CHECKPOINT_FORMAT``) and
    analysis files (``ANALYSIS_FORMAT``).

    Raises
    ------
    StoreError
        Naming the file and the step that rewrites it: missing, not HDF5 (truncated or
        foreign), not a gendyn file of that format, or not complete.
    """
    path = Path(path)
    if not path.exists():
        partial = path.with_name(path.name.replace(".h5", ".partial"))
        hint = (
            f" (a partial {partial.name} exists: the run was interrupted; rerun 'gendyn train' to resume)"
            if path.suffix == ".h5" and partial.exists()
            else ""
        )
        raise StoreError(f"{path}: no such file{hint}")
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: attr_value(v) for k, v in f.attrs.items()}
    except (OSError, KeyError, RuntimeError, ValueError) as e:
        raise StoreError(
            f"{path}: cannot be read as HDF5 ({_reason(e)}); the file is truncated, corrupted or not a gendyn "
            f"result; {rewrite_hint(path)}"
        ) from None
    got = attrs.get("gendyn_format")
    if got != fmt:
        raise StoreError(
            f"{path}: not a gendyn file of format {fmt!r} (expected a {_KINDS.get(fmt, 'result file')}; "
            f"attribute gendyn_format={got!r})"
        )
    if require_complete and attrs.get("status") != "complete":
        what = "the run did not finish; rerun 'gendyn train' to resume" if fmt != ANALYSIS_FORMAT else rewrite_hint(path, attrs)
        raise StoreError(f"{path}: status={attrs.get('status')!r}, not 'complete'; {what}")
    return attrs


def verify_file(path: Path | str, *, fmt: str | None = None, missing_ok: bool = False) -> int:
    """Reread every dataset of a gendyn HDF5 file and compare it with its stored checksum.

    Parameters
    ----------
    path : path
        ``run.h5``, ``checkpoints.h5`` or an analysis ``.nc`` file.
    fmt : str, optional
        The expected ``gendyn_format`` (default: whatever the file says, if it is gendyn's).
    missing_ok : bool
        Accept a file without checksums (written by gendyn before they were stored) after the
        structural checks; returns 0 then.

    Returns
    -------
    Number of datasets verified.

    Raises
    ------
    StoreError
        Naming the file, the datasets that differ and the step that rewrites it.
    """
    path = Path(path)
    if fmt is None:
        try:
            with h5py.File(path, "r") as f:
                fmt = attr_value(f.attrs.get("gendyn_format"))
        except (OSError, KeyError, RuntimeError, ValueError):
            fmt = FORMAT
        if fmt not in _KINDS:
            fmt = FORMAT
    attrs = check_run_file(path, fmt=fmt)
    stored_text = attrs.get("checksums")
    if stored_text is None:
        if missing_ok:
            return 0
        raise StoreError(f"{path}: holds no checksums (written before gendyn stored them); it cannot be verified")
    try:
        stored = json.loads(stored_text)
    except (TypeError, ValueError):
        raise StoreError(f"{path}: its checksums attribute is corrupted; {rewrite_hint(path, attrs)}") from None
    bad: list[str] = []
    try:
        with h5py.File(path, "r") as f:
            present = _datasets(f)
            for name in present:
                try:
                    ok = stored.get(name) == _h5_checksum(f[name])
                except (OSError, KeyError, RuntimeError, ValueError):
                    ok = False
                if not ok:
                    bad.append(f"/{name}")
    except (OSError, KeyError, RuntimeError, ValueError) as e:
        raise StoreError(f"{path}: cannot be read ({_reason(e)}); {rewrite_hint(path, attrs)}") from None
    missing = sorted(set(stored) - set(present))
    bad += [f"/{m} (missing)" for m in missing]
    if bad:
        raise StoreError(
            f"{path}: {len(bad)} dataset(s) do not match their stored checksums ({', '.join(bad[:6])}"
            f"{' ...' if len(bad) > 6 else ''}); the file was corrupted after it was written; {rewrite_hint(path, attrs)}"
        )
    return len(present)


def open_group(path: Path | str, group: str | None, *, lazy: bool = False, load: bool = True) -> Any:
    """One group of an HDF5 result (``None``: the root) as an ``xarray.Dataset``.

    Loaded into memory by default; ``lazy``: dask-backed; ``load=False``: opened, read on access.

    Raises
    ------
    StoreError
        Naming the file, the group and the step that rewrites it, if the group cannot be read.
    """
    import xarray as xr

    path = Path(path)
    where = f"{path}" + (f" group /{group}" if group else "")
    if group:
        with _reading(path):
            with h5py.File(path, "r") as f:
                if group not in f:
                    raise StoreError(f"{path}: has no group /{group}")
    try:
        ds = xr.open_dataset(path, group=group, engine="h5netcdf", chunks={} if lazy else None)
        return ds.load() if load and not lazy else ds
    except (OSError, KeyError, RuntimeError, ValueError, TypeError) as e:
        if isinstance(e, StoreError):
            raise
        raise StoreError(
            f"{where}: cannot be read ({type(e).__name__}: {_reason(e)}); the file is corrupted or incomplete "
            f"(check it with 'gendyn info --verify {path}'); {rewrite_hint(path)}"
        ) from None


def divergence(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"step", "loss"}`` of a run that diverged (``on_divergence: record``), from the root
    attributes of its ``run.h5`` or of an analysis file of it; None if it did not."""
    try:
        diverged = int(attrs.get("diverged", 0) or 0)
    except (TypeError, ValueError):
        diverged = 0
    if not diverged:
        return None
    step = attrs.get("diverged_step")
    return {"step": None if step is None else int(step), "loss": str(attrs.get("diverged_loss", ""))}


#: Attribute of an analysis file written in place of a result the stage could not compute.
SKIPPED_ATTR = "skipped"


def skipped_dataset(reason: str, attrs: Mapping[str, Any]) -> Any:
    """An analysis dataset without variables that records why a stage skipped a run.

    ``attrs`` (the run's identity and its divergence attributes) are copied; ``skipped``
    holds ``reason``. Figures and summaries recognise it with :func:`is_skipped`.
    """
    import xarray as xr

    ds = xr.Dataset()
    ds.attrs.update(dict(attrs))
    ds.attrs[SKIPPED_ATTR] = reason
    return ds


def is_skipped(ds_or_attrs: Any) -> bool:
    """Whether an analysis dataset (or its attributes) is a :func:`skipped_dataset`."""
    attrs = getattr(ds_or_attrs, "attrs", ds_or_attrs)
    return bool(attrs.get(SKIPPED_ATTR))


def attr_value(v: Any) -> Any:
    """Plain Python value of an HDF5 attribute (netCDF stores scalars as 1-element arrays)."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.ndim == 1 and v.size == 1 and v.dtype.kind in "iuf":
        return v[0].item()
    if isinstance(v, np.generic):
        return v.item()
    return v


def checkpoint_steps(path: Path) -> np.ndarray:
    """Steps of the checkpoints stored in ``checkpoints.h5``."""
    check_run_file(path, fmt=CHECKPOINT_FORMAT)
    with _reading(path):
        with h5py.File(path, "r") as f:
            return f["step"][:]


def read_checkpoint(path: Path, step: int | None = None) -> tuple[int, dict[str, np.ndarray]]:
    """State dict arrays at ``step`` (the latest if None) from ``checkpoints.h5``."""
    check_run_file(path, fmt=CHECKPOINT_FORMAT)
    with _reading(path):
        with h5py.File(path, "r") as f:
            steps = f["step"][:]
            if len(steps) == 0:
                raise StoreError(f"{path}: holds no checkpoints")
            if step is None:
                i = len(steps) - 1
            else:
                hits = np.flatnonzero(steps == step)
                if not len(hits):
                    raise StoreError(
                        f"{path}: no checkpoint at step {step}; available steps: {steps.tolist()[:20]}"
                        + (" ..." if len(steps) > 20 else "")
                    )
                i = int(hits[-1])
            state = {k: ds[i] for k, ds in _walk(f["state"])}
            return int(steps[i]), state


@contextlib.contextmanager
def _reading(path: Path | str) -> Iterator[None]:
    """Turn a low-level read error inside the block into a :class:`StoreError` naming ``path``."""
    try:
        yield
    except StoreError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError) as e:
        raise StoreError(
            f"{path}: cannot be read ({type(e).__name__}: {_reason(e)}); the file is corrupted "
            f"(check it with 'gendyn info --verify {path}'); {rewrite_hint(path)}"
        ) from None


def _walk(group: h5py.Group, prefix: str = "") -> Iterator[tuple[str, h5py.Dataset]]:
    for k, v in group.items():
        if isinstance(v, h5py.Dataset):
            yield prefix + k, v
        else:
            yield from _walk(v, prefix + k + "/")


# --------------------------------------------------------------------------- sizes before writing
#
# What the writers above allocate, from shapes alone (``gendyn plan``). Data bytes follow the
# writers' layouts exactly (chunked variables allocate whole chunks); the HDF5/netCDF metadata
# (object headers, chunk indices, dimension scales, attributes) is estimated per variable and
# per chunk, constants measured on files written by these writers.

# Metadata (HDF5 object headers and chunk indices, netCDF dimension scales and their reference
# lists, variable-length strings) in bytes, fitted on files these writers wrote (20 layouts,
# 1-109 recording sites, 0-1000 tracked images, 3-500 records; within 30 % of the metadata).
_RUN_META = {"file": 9_100, "metric": 590, "layer": 6_390, "group": 3_860, "chunk": 51, "image": 25,
             "checksums": 3_160, "checksum_char": 2.13}  # fmt: skip
#: Characters of one entry of the ``checksums`` attribute (``"metrics/train_acc": "sha256:..."``).
_CHECKSUM_CHARS = 95
_CKPT_META = {"file": 5_450, "dataset": 3_220}
_NC_META = {"file": 7_000, "variable": 810, "attrs": 1.6}
#: Root attributes of the files the fit was made on (the configuration JSON and the rest).
_RUN_META_ATTRS = 1_700


def chunked_nbytes(shape: Sequence[int], chunks: Sequence[int] | None, itemsize: int) -> tuple[int, int]:
    """(bytes allocated, chunks) of a dataset written in full: whole chunks, or contiguous."""
    shape = [int(s) for s in shape]
    if chunks is None or not shape:
        return int(np.prod(shape, dtype=np.int64)) * itemsize, 0
    n = 1
    for size, c in zip(shape, chunks):
        n *= -(-size // int(c)) if size else 0
    return n * int(np.prod(chunks, dtype=np.int64)) * itemsize, n


def run_file_nbytes(
    n_records: int,
    n_images: int,
    layers: Sequence[LayerInfo],
    *,
    n_metrics: int,
    masks: bool = True,
    activations: str | None = None,
    attrs_bytes: int = 4096,
) -> dict[str, int]:
    """Bytes of the ``run.h5`` that :class:`RunWriter` assembles (layout of docs/results.md).

    Parameters
    ----------
    n_records : record points (rows of ``/metrics`` and ``/masks``)
    n_images : tracked images
    layers : recording sites
    n_metrics : variables of ``/metrics`` besides ``step``
    masks, activations : what the run records
    attrs_bytes : root attributes (the run configuration as JSON, record steps, ...)

    Returns
    -------
    {"masks", "activations", "metrics", "tracked", "metadata", "total"} in bytes.
    """
    out = {"masks": 0, "activations": 0, "metrics": 0, "tracked": 0}
    n_chunks = 0
    groups = []
    if masks:
        groups.append(("masks", "byte", 1))
    if activations:
        groups.append(("activations", "unit", np.dtype(activations).itemsize))
    for gname, kind, itemsize in groups:
        for lay in layers:
            width = lay.n_bytes if kind == "byte" else lay.n_units
            nbytes, chunks = chunked_nbytes((n_records, n_images, width), record_chunks(n_images, width, itemsize), itemsize)
            out[gname] += nbytes
            n_chunks += chunks
    out["metrics"] = n_records * (n_metrics + 1) * 8
    out["tracked"] = n_images * (8 + 8 + 8 + 16)
    m = _RUN_META
    # The verified publication stores one checksum per dataset in the root attribute
    # ``checksums`` (JSON: name -> "sha256:<64 hex>", ~95 characters each), written after the data.
    n_datasets = (n_metrics + 1) + len(layers) * len(groups) + 4
    out["metadata"] = int(
        m["file"] + m["metric"] * n_metrics + m["layer"] * len(layers) * len(groups) + m["group"] * len(groups)
        + m["chunk"] * n_chunks + m["image"] * n_images + max(0, attrs_bytes - _RUN_META_ATTRS)
        + m["checksums"] + m["checksum_char"] * _CHECKSUM_CHARS * n_datasets
    )  # fmt: skip
    out["total"] = sum(out.values())
    return out


def checkpoint_file_nbytes(n_checkpoints: int, state: Mapping[str, tuple[Sequence[int], int]]) -> dict[str, int]:
    """Bytes of the ``checkpoints.h5`` that :class:`CheckpointWriter` assembles.

    ``state`` maps every state-dict key to (shape, itemsize). Returns ``{"state", "metadata",
    "total"}``.
    """
    data = 0
    for shape, itemsize in state.values():
        data += n_checkpoints * int(np.prod(shape, dtype=np.int64)) * int(itemsize)
    meta = _CKPT_META["file"] + _CKPT_META["dataset"] * (len(state) + 2)
    return {"state": data, "metadata": meta, "total": data + meta}


def netcdf_nbytes(variables: Mapping[str, tuple[Sequence[int], int]], *, attrs_bytes: int = 2048) -> int:
    """Bytes of an analysis file written by :func:`write_netcdf`: ``variables`` maps each variable
    (data and coordinates) to (shape, itemsize), stored contiguous as xarray writes them;
    ``attrs_bytes`` is the text of the file's and variables' attributes (settings, descriptions).
    Metadata fitted on 44 analysis files of every stage (within 20 %)."""
    data = sum(int(np.prod(shape, dtype=np.int64)) * int(itemsize) for shape, itemsize in variables.values())
    return int(_NC_META["file"] + _NC_META["attrs"] * attrs_bytes + _NC_META["variable"] * len(variables) + data)
