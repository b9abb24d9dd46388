"""All HDF5/netCDF reading and writing: the run store, checkpoints, atomic publishing.

Durability
----------
A run is written to ``run.partial.h5`` and ``checkpoints.partial.h5`` while it trains; each
record point is appended and flushed. The final names ``run.h5`` and ``checkpoints.h5`` only
appear when training ends: the attribute ``status = "complete"`` is written last, the file
is closed (flushing HDF5's metadata), then ``os.replace`` renames it. A crash at any point
therefore leaves either no final file or a complete one, never a truncated file under a
final name. Small files (configs, tables, resume state) are written to a sibling temporary
name, flushed and fsync'ed, then renamed; a crash before the rename leaves the old file.

After a kill, the partial files may hold records written after the last resume state; the
resume logic truncates them back to the counts saved in that state (see
:meth:`RunWriter.truncate`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
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
    "check_run_file",
    "read_checkpoint",
    "checkpoint_steps",
    "attr_value",
    "RUN_FILE",
    "CHECKPOINT_FILE",
    "RESUME_FILE",
    "CONFIG_FILE",
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


class StoreError(OSError):
    """A result file is missing, truncated, foreign or incomplete."""


# --------------------------------------------------------------------------- atomic files


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a sibling temporary path; on success fsync and rename it to ``final``.

    On an exception the temporary file is removed and ``final`` is untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; published files get normal permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(text)


def _publish(partial: Path, final: Path) -> None:
    with open(partial, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(partial, final)


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


class RunWriter:
    """Append-only writer of ``run.partial.h5`` following the HDF5 contract (docs/results.md).

    Parameters
    ----------
    path : Path
        The partial file (``run.partial.h5``). Created if absent, reopened for appending if
        ``resume`` is true.
    attrs : mapping
        Root attributes (``config``, ``seed``, ``device``, ...); ``gendyn_format`` and
        ``status = "running"`` are added.
    tracked : mapping of str to (N,) arrays
        ``index``, ``split``, ``label`` of the tracked images.
    layers : sequence of LayerInfo
        Recording sites in forward order.
    metric_names : sequence of str
        Variables of ``/metrics`` besides ``step``.
    activations : {None, "float16", "float32"}
        Also create ``/activations``.
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
        self.path = Path(path)
        self.layers = list(layers)
        self.metric_names = list(metric_names)
        self.masks = masks
        self.activations = activations
        if resume and self.path.exists():
            self.f = h5netcdf.File(self.path, "a")
            self._check_resumable()
        else:
            self.path.unlink(missing_ok=True)
            self.f = h5netcdf.File(self.path, "w")
            self._create(attrs, tracked)

    # -- layout
    def _create(self, attrs: Mapping[str, Any], tracked: Mapping[str, np.ndarray]) -> None:
        f = self.f
        f.attrs["gendyn_format"] = FORMAT
        for k, v in attrs.items():
            f.attrs[k] = v
        f.attrs["status"] = "running"
        f.attrs["layers"] = json.dumps([lay.name for lay in self.layers])

        n = len(tracked["index"])
        g = f.create_group("tracked")
        g.dimensions = {"image": n}
        v = g.create_variable("image", ("image",), dtype="i8")
        v[:] = np.arange(n)
        v = g.create_variable("index", ("image",), dtype="i8")
        v[:] = np.asarray(tracked["index"], dtype=np.int64)
        v.attrs["description"] = "index of the image in its split"
        v = g.create_variable("split", ("image",), dtype=h5py.string_dtype())
        v[:] = np.asarray(tracked["split"], dtype=object)
        v = g.create_variable("label", ("image",), dtype="i8")
        v[:] = np.asarray(tracked["label"], dtype=np.int64)

        g = f.create_group("metrics")
        g.dimensions = {"step": None}
        g.create_variable("step", ("step",), dtype="i8")
        for name in self.metric_names:
            g.create_variable(name, ("step",), dtype="f8", fillvalue=np.nan)

        groups = []
        if self.masks:
            groups.append(("masks", "byte", "u1"))
        if self.activations:
            groups.append(("activations", "unit", "f2" if self.activations == "float16" else "f4"))
        for gname, prefix, dtype in groups:
            g = f.create_group(gname)
            dims: dict[str, int | None] = {"record": None, "image": n}
            for lay in self.layers:
                dims[f"{prefix}_{lay.name}"] = lay.n_bytes if prefix == "byte" else lay.n_units
            g.dimensions = dims
            g.create_variable("record", ("record",), dtype="i8")
            g.create_variable("step", ("record",), dtype="i8")
            g.create_variable("epoch", ("record",), dtype="f8")
            for order, lay in enumerate(self.layers):
                width = lay.n_bytes if prefix == "byte" else lay.n_units
                itemsize = 1 if prefix == "byte" else np.dtype(dtype).itemsize
                chunk_w = min(width, (1 << 20) // itemsize)
                v = g.create_variable(
                    lay.name,
                    ("record", "image", f"{prefix}_{lay.name}"),
                    dtype=dtype,
                    chunks=(1, _chunk_images(n, chunk_w * itemsize), chunk_w),
                )
                v.attrs["coordinates"] = "step epoch"
                v.attrs["module"] = lay.module
                v.attrs["n_units"] = lay.n_units
                v.attrs["unit_shape"] = np.asarray(lay.unit_shape or (1,), dtype=np.int64)
                v.attrs["order"] = order
                if prefix == "byte":
                    v.attrs["description"] = (
                        "bit-packed ReLU mask (pre-activation > 0), numpy.packbits bitorder=little, "
                        "one bit per unit in C order of unit_shape"
                    )
                else:
                    v.attrs["description"] = "ReLU pre-activation (input of the ReLU module)"
        self.f.flush()

    def _check_resumable(self) -> None:
        if self.f.attrs.get("gendyn_format") != FORMAT:
            raise StoreError(f"{self.path}: not a gendyn run file (format {self.f.attrs.get('gendyn_format')!r})")

    # -- counts
    @property
    def n_records(self) -> int:
        for g in ("masks", "activations"):
            if g in self.f.groups:
                return self.f[g].dimensions["record"].size
        return self._n_records_plain

    _n_records_plain = 0

    @property
    def n_metrics(self) -> int:
        return self.f["metrics"].dimensions["step"].size

    # -- appends
    def append_record(
        self,
        step: int,
        epoch: float,
        masks: Mapping[str, np.ndarray] | None,
        activations: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Append one record point; arrays are (N, n_bytes) uint8 / (N, n_units) float."""
        r = self.n_records
        for gname, data in (("masks", masks), ("activations", activations)):
            if gname not in self.f.groups:
                continue
            if data is None:
                raise ValueError(f"{self.path}: record at step {step} lacks /{gname} data")
            g = self.f[gname]
            g.resize_dimension("record", r + 1)
            g["record"][r] = r
            g["step"][r] = step
            g["epoch"][r] = epoch
            for lay in self.layers:
                g[lay.name][r] = data[lay.name]
        if "masks" not in self.f.groups and "activations" not in self.f.groups:
            self._n_records_plain = r + 1
        self.f.flush()

    def append_metrics(self, step: int, row: Mapping[str, float]) -> None:
        """Append one row of ``/metrics`` at ``step``; absent names stay NaN."""
        g = self.f["metrics"]
        i = self.n_metrics
        g.resize_dimension("step", i + 1)
        g["step"][i] = step
        for k, v in row.items():
            if k not in g.variables:
                raise KeyError(f"{self.path}: /metrics has no variable {k!r}")
            g[k][i] = v
        self.f.flush()

    def truncate(self, n_records: int, n_metrics: int) -> None:
        """Drop records/metric rows written after the resume state being restored."""
        for gname in ("masks", "activations"):
            if gname in self.f.groups and self.f[gname].dimensions["record"].size > n_records:
                self.f[gname].resize_dimension("record", n_records)
        self._n_records_plain = n_records
        if self.n_metrics > n_metrics:
            self.f["metrics"].resize_dimension("step", n_metrics)
        self.f.flush()

    def set_attrs(self, **attrs: Any) -> None:
        for k, v in attrs.items():
            self.f.attrs[k] = v

    def finish(self, final: Path, **attrs: Any) -> None:
        """Write ``attrs`` then ``status = "complete"`` last, close and rename to ``final``."""
        self.set_attrs(**attrs)
        self.f.attrs["status"] = "complete"
        self.close()
        _publish(self.path, Path(final))

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None  # type: ignore[assignment]


# --------------------------------------------------------------------------- checkpoints.h5


class CheckpointWriter:
    """Append model state dicts at record points to ``checkpoints.partial.h5``.

    Layout: root attrs ``gendyn_format``, ``status``; datasets ``step`` (R,), ``epoch`` (R,);
    one dataset per state-dict entry under ``/state/{key}`` of shape (R, *shape).
    """

    def __init__(self, path: Path, *, resume: bool = False) -> None:
        self.path = Path(path)
        if resume and self.path.exists():
            self.f = h5py.File(self.path, "a")
            if self.f.attrs.get("gendyn_format") != CHECKPOINT_FORMAT:
                raise StoreError(f"{self.path}: not a gendyn checkpoint file")
        else:
            self.path.unlink(missing_ok=True)
            self.f = h5py.File(self.path, "w")
            self.f.attrs["gendyn_format"] = CHECKPOINT_FORMAT
            self.f.attrs["status"] = "running"
            self.f.create_dataset("step", shape=(0,), maxshape=(None,), dtype="i8", chunks=(1024,))
            self.f.create_dataset("epoch", shape=(0,), maxshape=(None,), dtype="f8", chunks=(1024,))
            self.f.create_group("state")

    @property
    def n(self) -> int:
        return int(self.f["step"].shape[0])

    def append(self, step: int, epoch: float, state: Mapping[str, np.ndarray]) -> None:
        n = self.n
        grp = self.f["state"]
        for k, arr in state.items():
            arr = np.asarray(arr)
            if k not in grp:
                if n:
                    raise StoreError(f"{self.path}: state entry {k!r} appears after {n} checkpoints")
                grp.create_dataset(
                    k, shape=(0, *arr.shape), maxshape=(None, *arr.shape), dtype=arr.dtype, chunks=(1, *arr.shape) if arr.size else None
                )
            ds = grp[k]
            ds.resize(n + 1, axis=0)
            ds[n] = arr
        for name, val in (("step", step), ("epoch", epoch)):
            self.f[name].resize(n + 1, axis=0)
            self.f[name][n] = val
        self.f.flush()

    def truncate(self, n: int) -> None:
        if self.n <= n:
            return
        for ds in list(self.f["state"].values()) + [self.f["step"], self.f["epoch"]]:
            ds.resize(n, axis=0)
        self.f.flush()

    def finish(self, final: Path) -> None:
        self.f.attrs["status"] = "complete"
        self.close()
        _publish(self.path, Path(final))

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None  # type: ignore[assignment]


# --------------------------------------------------------------------------- reading


def check_run_file(path: Path, *, fmt: str = FORMAT, require_complete: bool = True) -> dict[str, Any]:
    """Open an HDF5 result read-only, check its format tag and status; return root attrs.

    Raises
    ------
    StoreError
        Naming the file: missing, not HDF5 (truncated or foreign), not a gendyn file, or
        not complete.
    """
    path = Path(path)
    if not path.exists():
        partial = path.with_name(path.name.replace(".h5", ".partial.h5"))
        hint = f" (a partial {partial.name} exists: the run was interrupted — rerun 'gendyn train' to resume)" if partial.exists() else ""
        raise StoreError(f"{path}: no such file{hint}")
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: attr_value(v) for k, v in f.attrs.items()}
    except OSError as e:
        raise StoreError(
            f"{path}: cannot be read as HDF5 ({e}); the file is truncated or not a gendyn result — "
            "delete it and rerun the step that writes it"
        ) from None
    got = attrs.get("gendyn_format")
    if got != fmt:
        raise StoreError(f"{path}: not a gendyn file of format {fmt!r} (attribute gendyn_format={got!r})")
    if require_complete and attrs.get("status") != "complete":
        raise StoreError(
            f"{path}: status={attrs.get('status')!r}, not 'complete'; the run did not finish — rerun 'gendyn train' to resume"
        )
    return attrs


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
    with h5py.File(path, "r") as f:
        return f["step"][:]


def read_checkpoint(path: Path, step: int | None = None) -> tuple[int, dict[str, np.ndarray]]:
    """State dict arrays at ``step`` (the latest if None) from ``checkpoints.h5``."""
    check_run_file(path, fmt=CHECKPOINT_FORMAT)
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


def _walk(group: h5py.Group, prefix: str = "") -> Iterator[tuple[str, h5py.Dataset]]:
    for k, v in group.items():
        if isinstance(v, h5py.Dataset):
            yield prefix + k, v
        else:
            yield from _walk(v, prefix + k + "/")
