"""All HDF5/netCDF reading and writing: the run store, checkpoints, atomic publishing.

Durability
----------
HDF5 files are not crash-safe while open for writing: a process killed between two
metadata writes can leave a file that no longer opens ("bad object header"). So while a run
trains, every record point, metrics row and checkpoint is staged as its own small file in
``run.partial/`` and ``checkpoints.partial/``, each written to a temporary name, fsync'ed and
renamed: after a crash every staged entry is either complete or absent. When training ends,
``run.h5`` and ``checkpoints.h5`` are assembled from the staged entries under temporary names,
the attribute ``status = "complete"`` is written last, the file is closed (flushing HDF5's
metadata), fsync'ed and renamed to its final name, then the staging directory is removed.
A crash at any point leaves either no final file or a complete one.

After a kill, staging may hold entries written after the last resume state; resuming
truncates them back to the counts saved in that state (:meth:`RunWriter.truncate`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
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
    "ANALYSIS_FORMAT",
    "write_netcdf",
    "open_analysis",
    "RUN_FILE",
    "CHECKPOINT_FILE",
    "RESUME_FILE",
    "CONFIG_FILE",
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

    def finish(self, final: Path, **attrs: Any) -> None:
        """Assemble ``final`` from the staged entries; ``status = "complete"`` is written last."""
        self.set_attrs(**attrs)
        with atomic_path(Path(final)) as tmp:
            with h5netcdf.File(tmp, "w") as f:
                self._write(f)
                f.attrs["status"] = "complete"
        self.stage.remove()

    def close(self) -> None:
        """Nothing is held open between appends (kept for symmetry with the readers)."""

    # -- assembly
    def _write(self, f: h5netcdf.File) -> None:
        f.attrs["gendyn_format"] = FORMAT
        for k, v in self.attrs.items():
            f.attrs[k] = v
        f.attrs["status"] = "assembling"
        f.attrs["layers"] = json.dumps([lay.name for lay in self.layers])
        n = len(self.tracked["index"])

        g = f.create_group("tracked")
        g.dimensions = {"image": n}
        g.create_variable("image", ("image",), data=np.arange(n, dtype=np.int64))
        v = g.create_variable("index", ("image",), data=self.tracked["index"].astype(np.int64))
        v.attrs["description"] = "index of the image in its split (data.train / data.test)"
        v = g.create_variable("split", ("image",), dtype=h5py.string_dtype())
        v[:] = self.tracked["split"].astype(object)
        g.create_variable("label", ("image",), data=self.tracked["label"].astype(np.int64))

        rows = [self.stage.read("metrics", k) for k in range(self.n_metrics)]
        g = f.create_group("metrics")
        g.dimensions = {"step": len(rows)}
        g.create_variable("step", ("step",), data=np.array([int(r["step"]) for r in rows], dtype=np.int64))
        for name in self.metric_names:
            col = np.array([float(r[name]) if name in r else np.nan for r in rows], dtype=np.float64)
            g.create_variable(name, ("step",), data=col)

        groups = []
        if self.masks:
            groups.append(("masks", "m_", "byte", np.uint8))
        if self.activations:
            groups.append(("activations", "a_", "unit", np.dtype(self.activations)))
        if not groups:
            return
        n_rec = self.n_records
        heads = [self.stage.read("record", k) for k in range(n_rec)]
        for gname, key_prefix, dim_prefix, dtype in groups:
            g = f.create_group(gname)
            dims: dict[str, int] = {"record": n_rec, "image": n}
            for lay in self.layers:
                dims[f"{dim_prefix}_{lay.name}"] = lay.n_bytes if dim_prefix == "byte" else lay.n_units
            g.dimensions = dims
            g.create_variable("record", ("record",), data=np.arange(n_rec, dtype=np.int64))
            g.create_variable("step", ("record",), data=np.array([int(h["step"]) for h in heads], dtype=np.int64))
            g.create_variable("epoch", ("record",), data=np.array([float(h["epoch"]) for h in heads], dtype=np.float64))
            itemsize = np.dtype(dtype).itemsize
            for order, lay in enumerate(self.layers):
                width = dims[f"{dim_prefix}_{lay.name}"]
                v = g.create_variable(
                    lay.name,
                    ("record", "image", f"{dim_prefix}_{lay.name}"),
                    dtype=dtype,
                    chunks=record_chunks(n, width, itemsize),
                )
                for k, h in enumerate(heads):
                    v[k] = h[key_prefix + lay.name]
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

    def finish(self, final: Path) -> None:
        with atomic_path(Path(final)) as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs["gendyn_format"] = CHECKPOINT_FORMAT
                f.attrs["status"] = "assembling"
                entries = [self.stage.read("state", k) for k in range(self.n)]
                f.create_dataset("step", data=np.array([int(e["__step"]) for e in entries], dtype=np.int64))
                f.create_dataset("epoch", data=np.array([float(e["__epoch"]) for e in entries], dtype=np.float64))
                grp = f.create_group("state")
                keys = [k for k in (entries[0] if entries else {}) if k.startswith("s/")]
                for key in keys:
                    first = entries[0][key]
                    ds = grp.create_dataset(
                        key[2:], shape=(self.n, *first.shape), dtype=first.dtype,
                        chunks=(1, *first.shape) if first.size else None,
                    )
                    for k, e in enumerate(entries):
                        ds[k] = e[key]
                f.attrs["status"] = "complete"
        self.stage.remove()

    def close(self) -> None:
        """Nothing is held open between appends."""


# --------------------------------------------------------------------------- analysis outputs

#: Format tag of analysis outputs (``analysis/{measure}/{run}.nc``).
ANALYSIS_FORMAT = "gendyn-analysis/1"


def write_netcdf(ds: Any, path: Path | str, *, measure: str, encoding: Mapping[str, Any] | None = None) -> Path:
    """Write an ``xarray.Dataset`` as netCDF4 (h5netcdf) atomically.

    Adds the attributes ``gendyn_format``, ``gendyn_version``, ``measure`` and finally
    ``status = "complete"``; attributes that are dicts are stored as JSON strings.
    """
    import gendyn

    path = Path(path)
    ds = ds.copy()
    ds.attrs = {k: (json.dumps(v) if isinstance(v, (dict, list, tuple)) and not _is_numeric_seq(v) else v) for k, v in ds.attrs.items()}
    ds.attrs.update(gendyn_format=ANALYSIS_FORMAT, gendyn_version=gendyn.__version__, measure=measure, status="complete")
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=dict(encoding or {}))
    return path


def _is_numeric_seq(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) and len(v) > 0


def open_analysis(path: Path | str) -> Any:
    """Open an analysis output written by :func:`write_netcdf` (checked, lazily)."""
    import xarray as xr

    check_run_file(Path(path), fmt=ANALYSIS_FORMAT)
    return xr.open_dataset(path, engine="h5netcdf")


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
        partial = path.with_name(path.name.replace(".h5", ".partial"))
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


# --------------------------------------------------------------------------- sizes before writing
#
# What the writers above allocate, from shapes alone (``gendyn plan``). Data bytes follow the
# writers' layouts exactly (chunked variables allocate whole chunks); the HDF5/netCDF metadata
# (object headers, chunk indices, dimension scales, attributes) is estimated per variable and
# per chunk, constants measured on files written by these writers.

# Metadata (HDF5 object headers and chunk indices, netCDF dimension scales and their reference
# lists, variable-length strings) in bytes, fitted on files these writers wrote (20 layouts,
# 1-109 recording sites, 0-1000 tracked images, 3-500 records; within 30 % of the metadata).
_RUN_META = {"file": 9_100, "metric": 590, "layer": 6_390, "group": 3_860, "chunk": 51, "image": 25}
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
    out["metadata"] = int(
        m["file"] + m["metric"] * n_metrics + m["layer"] * len(layers) * len(groups) + m["group"] * len(groups)
        + m["chunk"] * n_chunks + m["image"] * n_images + max(0, attrs_bytes - _RUN_META_ATTRS)
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
