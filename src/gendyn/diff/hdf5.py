"""HDF5 and netCDF-4 files compared object by object: groups, datasets (block by block), attributes."""

from __future__ import annotations

import fnmatch
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gendyn.diff.common import (
    DEFAULT_IGNORED_ATTRS,
    FILE,
    Difference,
    _error_text,
    _short,
    _window,
)


#: Bytes read per side per block when comparing dataset values.
BLOCK_BYTES = 64 * 2**20


class _Ctx:
    """Settings and open files of one file comparison."""

    def __init__(self, rel: str, fa: h5py.File, fb: h5py.File, ignore: Sequence[str], rtol: float, atol: float):
        self.rel = rel
        self.fa = fa
        self.fb = fb
        self.ignore_exact = frozenset(p for p in ignore if not any(c in p for c in "*?["))
        self.ignore_globs = tuple(p for p in ignore if any(c in p for c in "*?["))
        self.rtol = float(rtol)
        self.atol = float(atol)
        self.diffs: list[Difference] = []
        self.seen_a: set[Any] = set()

    def add(self, where: str, kind: str, detail: str) -> None:
        self.diffs.append(Difference(self.rel, where, kind, detail))

    def ignored(self, attr: str) -> bool:
        return attr in self.ignore_exact or any(fnmatch.fnmatchcase(attr, p) for p in self.ignore_globs)


def diff_files(
    a: Path,
    b: Path,
    *,
    ignore_attrs: Iterable[str] = DEFAULT_IGNORED_ATTRS,
    rtol: float = 0.0,
    atol: float = 0.0,
    name: str | None = None,
) -> list[Difference]:
    """Compare two HDF5 (or netCDF-4) files object by object.

    Every group, dataset, committed datatype and link is matched by its path. Both
    must be present (else ``only_in_a`` / ``only_in_b``, reported once for a missing
    group, not again for each member), be the same kind of object (``type``), and
    datasets must agree in dtype (byte order, string encoding and length included),
    shape and values. Every attribute of the root group, of groups and of datasets is
    compared by name and value. Storage layout (chunking, compression, fill value) is
    not compared: it does not change what a reader gets.

    Values compare NaN-aware: NaN equals NaN (and NaT equals NaT) at the same position.
    With ``rtol = atol = 0`` floats must be bitwise equal otherwise (so ``-0.0`` differs
    from ``0.0``); strings, bytes, compound records, variable-length sequences and object
    arrays compare by equality, field by field or element by element. Datasets are read
    in blocks of about 64 MiB (whole chunks along the first axes), never whole, and every
    differing value is counted.

    Attributes holding HDF5 object references (the netCDF dimension-scale bookkeeping
    ``DIMENSION_LIST`` and ``REFERENCE_LIST``) compare by the paths of the objects
    referred to, i.e. by which dimension scales are attached, not by reference values.
    Other netCDF bookkeeping (``CLASS``, ``NAME``, ``_Netcdf4Dimid``,
    ``_Netcdf4Coordinates``) are plain values and compare as such. Numeric array
    attributes compare like dataset values; string attributes (JSON text included)
    compare as strings.

    Parameters
    ----------
    a, b : Path
        The two files.
    ignore_attrs : iterable of str, optional
        Attribute names (``fnmatch`` patterns) skipped everywhere; default
        :data:`DEFAULT_IGNORED_ATTRS`.
    rtol, atol : float, optional
        Floating-point tolerances, ``|a - b| <= atol + rtol * |b|``; default exact.
    name : str, optional
        :attr:`Difference.path` of the results (default: the name of ``a``).

    Returns
    -------
    list of Difference
        Empty when the files agree. A file that cannot be opened (truncated, not HDF5,
        missing) gives one ``unreadable`` difference with the error; an object that cannot
        be read gives one at its path. No exception escapes for unreadable input.
    """
    rel = name if name is not None else Path(a).name
    ignore = tuple(ignore_attrs)
    diffs: list[Difference] = []
    fa = _open_h5(Path(a), "a", rel, diffs)
    fb = _open_h5(Path(b), "b", rel, diffs)
    try:
        if fa is None or fb is None:
            return diffs
        ctx = _Ctx(rel, fa, fb, ignore, rtol, atol)
        try:
            _cmp_group(fa, fb, "/", ctx)
        except Exception as exc:  # noqa: BLE001 - a damaged file is a result, not a crash
            ctx.add(FILE, "unreadable", _error_text(exc))
        return ctx.diffs
    finally:
        for f in (fa, fb):
            if f is not None:
                try:
                    f.close()
                except Exception:  # noqa: BLE001, S110 - closing a damaged file
                    pass


def _open_h5(path: Path, side: str, rel: str, diffs: list[Difference]) -> h5py.File | None:
    try:
        try:
            return h5py.File(path, "r", locking=False)
        except TypeError:  # pragma: no cover - h5py built without the locking option
            return h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001
        diffs.append(Difference(rel, FILE, "unreadable", f"{side}: {_error_text(exc)}"))
        return None


def _child(path: str, name: str) -> str:
    return f"/{name}" if path == "/" else f"{path}/{name}"


def _link_text(link: Any) -> str:
    if isinstance(link, h5py.SoftLink):
        return f"soft link -> {link.path}"
    if isinstance(link, h5py.ExternalLink):
        return f"external link -> {link.filename}:{link.path}"
    return "hard link"


def _object_summary(obj: Any) -> str:
    if isinstance(obj, h5py.Dataset):
        return f"dataset {_dtype_text(obj.dtype)} {_shape_text(obj.shape)}"
    if isinstance(obj, h5py.Group):
        return f"group ({len(obj)} members)"
    if isinstance(obj, h5py.Datatype):
        return f"datatype {_dtype_text(obj.dtype)}"
    return type(obj).__name__


def _shape_text(shape: tuple[int, ...] | None) -> str:
    return "(empty dataspace)" if shape is None else str(tuple(shape))


def _cmp_group(ga: h5py.Group, gb: h5py.Group, path: str, ctx: _Ctx) -> None:
    key = ga.id.__hash__()
    if key in ctx.seen_a:  # reached again by another hard link (or a cycle): compared already
        return
    ctx.seen_a.add(key)
    _cmp_attrs(ga, gb, path, ctx)
    for name in sorted(set(ga.keys()) | set(gb.keys())):
        where = _child(path, name)
        try:
            la = ga.get(name, getlink=True)
            lb = gb.get(name, getlink=True)
            if la is None or lb is None:
                side, g, link = ("only_in_a", ga, la) if lb is None else ("only_in_b", gb, lb)
                if isinstance(link, h5py.HardLink):
                    ctx.add(where, side, _object_summary(g[name]))
                else:
                    ctx.add(where, side, _link_text(link))
                continue
            if type(la) is not type(lb):
                ctx.add(where, "type", f"a={_link_text(la)} b={_link_text(lb)}")
                continue
            if not isinstance(la, h5py.HardLink):
                if _link_text(la) != _link_text(lb):
                    ctx.add(where, "type", f"a={_link_text(la)} b={_link_text(lb)}")
                continue
            oa, ob = ga[name], gb[name]
        except Exception as exc:  # noqa: BLE001
            ctx.add(where, "unreadable", _error_text(exc))
            continue
        kind_a, kind_b = _object_kind(oa), _object_kind(ob)
        if kind_a != kind_b:
            ctx.add(where, "type", f"a={_object_summary(oa)} b={_object_summary(ob)}")
            continue
        try:
            if kind_a == "group":
                _cmp_group(oa, ob, where, ctx)
            elif kind_a == "dataset":
                _cmp_dataset(oa, ob, where, ctx)
            else:
                _cmp_attrs(oa, ob, where, ctx)
                if _dtype_text(oa.dtype) != _dtype_text(ob.dtype):
                    ctx.add(where, "dtype", f"a={_dtype_text(oa.dtype)} b={_dtype_text(ob.dtype)}")
        except Exception as exc:  # noqa: BLE001
            ctx.add(where, "unreadable", _error_text(exc))


def _object_kind(obj: Any) -> str:
    if isinstance(obj, h5py.Group):
        return "group"
    if isinstance(obj, h5py.Dataset):
        return "dataset"
    return "datatype"


def _cmp_dataset(da: h5py.Dataset, db: h5py.Dataset, path: str, ctx: _Ctx) -> None:
    _cmp_attrs(da, db, path, ctx)
    ta, tb = _dtype_text(da.dtype), _dtype_text(db.dtype)
    if ta != tb:
        ctx.add(path, "dtype", f"a={ta} b={tb}")
        return
    if da.shape != db.shape:
        ctx.add(path, "shape", f"a={_shape_text(da.shape)} b={_shape_text(db.shape)}")
        return
    detail = _cmp_values(da, db, ctx)
    if detail:
        ctx.add(path, "values", detail)


# --------------------------------------------------------------------------- dtypes


def _dtype_text(dt: np.dtype) -> str:
    """A dtype's description, including what numpy's dtype equality leaves out."""
    s = h5py.check_string_dtype(dt)
    if s is not None:
        return f"string({s.encoding}, {'variable' if s.length is None else s.length})"
    r = h5py.check_ref_dtype(dt)
    if r is not None:
        return "region reference" if r is h5py.RegionReference else "object reference"
    v = h5py.check_vlen_dtype(dt)
    if v is not None:
        return f"vlen({_dtype_text(np.dtype(v))})"
    e = h5py.check_enum_dtype(dt)
    if e is not None:
        return f"enum({_scalar_text(dt)}, {dict(sorted(e.items(), key=lambda kv: kv[1]))})"
    if dt.names:
        fields = ", ".join(f"{n}: {_dtype_text(dt.fields[n][0])}" for n in dt.names)
        return f"{{{fields}}}"
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return f"{_dtype_text(base)}{tuple(shape)}"
    return _scalar_text(dt)


def _scalar_text(dt: np.dtype) -> str:
    return dt.name if dt.isnative or dt.byteorder in "=|" or dt.itemsize == 1 else dt.str


# --------------------------------------------------------------------------- values


def _blocks(shape: tuple[int, ...], itemsize: int, chunks: tuple[int, ...] | None) -> Iterator[tuple[slice, ...]]:
    """Slices covering ``shape`` in blocks of at most about :data:`BLOCK_BYTES`.

    Trailing axes are taken whole while they fit; the first axis that does not fit is
    cut (in whole HDF5 chunks where possible); axes before it go one index at a time.
    """
    ndim = len(shape)
    block = list(shape)
    inner = max(1, itemsize)
    for axis in range(ndim - 1, -1, -1):
        if inner * shape[axis] <= BLOCK_BYTES:
            inner *= shape[axis]
            continue
        n = max(1, BLOCK_BYTES // inner)
        if chunks is not None and n >= chunks[axis]:
            n -= n % chunks[axis]
        block[axis] = n
        for before in range(axis):
            block[before] = 1
        break
    ranges = [range(0, shape[i], max(1, block[i])) for i in range(ndim)]
    for starts in itertools.product(*ranges):
        yield tuple(slice(s, min(s + block[i], shape[i])) for i, s in enumerate(starts))


class _Tally:
    """Running count of differing values and where the largest / first ones are."""

    def __init__(self, files: tuple[h5py.File | None, h5py.File | None] = (None, None)) -> None:
        self.files = files
        self.count = 0
        self.nan_mismatch = 0
        self.first: tuple[tuple[int, ...], str, str] | None = None
        self.max_abs = -1.0
        self.max_at: tuple[tuple[int, ...], str, str] | None = None

    def update(self, a: np.ndarray, b: np.ndarray, mask: np.ndarray, offset: tuple[int, ...]) -> None:
        k = int(np.count_nonzero(mask))
        if k == 0:
            return
        self.count += k
        idx = np.flatnonzero(mask)
        if self.first is None:
            local = np.unravel_index(int(idx[0]), mask.shape)
            self.first = (_global(offset, local), *self._texts(a[local], b[local]))
        kind = a.dtype.kind
        if kind in "fciu" and not a.dtype.names:
            xa, xb = a.reshape(-1)[idx], b.reshape(-1)[idx]
            if kind in "iu":
                xa, xb = xa.astype(np.float64), xb.astype(np.float64)
            elif kind == "f" and xa.dtype.itemsize < 8:
                xa, xb = xa.astype(np.float64), xb.astype(np.float64)
            with np.errstate(invalid="ignore", over="ignore"):
                d = np.abs(xa - xb)
            nan_a, nan_b = np.isnan(xa), np.isnan(xb)
            self.nan_mismatch += int(np.count_nonzero(nan_a ^ nan_b))
            d = np.where(np.isnan(d), -1.0, d)
            j = int(np.argmax(d))
            if d[j] > self.max_abs:
                self.max_abs = float(d[j])
                local = np.unravel_index(int(idx[j]), mask.shape)
                self.max_at = (_global(offset, local), *self._texts(a[local], b[local]))

    def _texts(self, va: Any, vb: Any) -> tuple[str, str]:
        fa, fb = self.files
        if isinstance(va, h5py.Reference) or isinstance(vb, h5py.Reference):
            return _ref_name(va, fa), _ref_name(vb, fb)
        return _value_text(va), _value_text(vb)

    def detail(self, total: int) -> str | None:
        if self.count == 0:
            return None
        text = f"{self.count} of {total} values differ"
        if self.max_at is not None:
            index, va, vb = self.max_at
            text += f", max |a-b| = {_num(self.max_abs)} at index {index} (a={va} b={vb})"
            if self.max_abs == 0.0:
                text += " (signed zeros)"
        elif self.first is not None:
            index, va, vb = self.first
            text += f", first at index {index}: a={va} b={vb}"
        if self.nan_mismatch:
            text += f", {self.nan_mismatch} NaN vs number"
        return text


def _global(offset: tuple[int, ...], local: tuple[Any, ...]) -> tuple[int, ...]:
    return tuple(int(o) + int(i) for o, i in zip(offset, local, strict=True))


def _num(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


def _cmp_values(da: h5py.Dataset, db: h5py.Dataset, ctx: _Ctx) -> str | None:
    shape = da.shape
    if shape is None or da.size == 0:
        return None
    tally = _Tally((ctx.fa, ctx.fb))
    if shape == ():
        a, b = np.asarray(da[...]), np.asarray(db[...])
        tally.update(a, b, _differ_mask(a, b, ctx), ())
        return tally.detail(1)
    for sel in _blocks(shape, da.dtype.itemsize, da.chunks):
        a, b = da[sel], db[sel]
        tally.update(a, b, _differ_mask(a, b, ctx), tuple(s.start for s in sel))
    return tally.detail(int(da.size))


def _differ_mask(a: np.ndarray, b: np.ndarray, ctx: _Ctx | None) -> np.ndarray:
    """Boolean array, ``a.shape``: True where the values differ."""
    dt = a.dtype
    rtol, atol = (ctx.rtol, ctx.atol) if ctx is not None else (0.0, 0.0)
    if dt.names:
        mask = np.zeros(a.shape, dtype=bool)
        for name in dt.names:
            m = _differ_mask(a[name], b[name], ctx)
            if m.ndim > a.ndim:  # a subarray field
                m = m.reshape(a.shape + (-1,)).any(axis=-1)
            mask |= m
        return mask
    kind = dt.kind
    if kind in "fc":
        if rtol == 0.0 and atol == 0.0:
            return ~_float_equal(a, b)
        with np.errstate(invalid="ignore", over="ignore"):
            return ~np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    if kind in "iu" and (rtol or atol):
        with np.errstate(invalid="ignore", over="ignore"):
            return ~np.isclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol, atol=atol)
    if kind in "iub":
        return np.asarray(a != b)
    if kind in "mM":  # NaT is the smallest int64: equal bits, equal values
        return a.view(np.int64) != b.view(np.int64)
    if kind in "SU":
        return np.asarray(a != b)
    if kind == "V":
        n = max(1, dt.itemsize)
        return (a.view(np.uint8).reshape(a.shape + (n,)) != b.view(np.uint8).reshape(b.shape + (n,))).any(axis=-1)
    # object: variable-length strings, sequences, references
    base = h5py.check_vlen_dtype(dt)
    if base in (str, bytes):
        return np.asarray(a != b, dtype=bool)
    files = (ctx.fa, ctx.fb) if ctx is not None else (None, None)
    out = np.zeros(a.shape, dtype=bool)
    for i in np.ndindex(a.shape):
        out[i] = not _obj_equal(a[i], b[i], files, ctx)
    return out


def _float_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise-equal floats (or complex), NaN equal to NaN whatever its payload."""
    if a.dtype.kind == "c":
        return _float_equal(a.real, b.real) & _float_equal(a.imag, b.imag)
    both_nan = np.isnan(a) & np.isnan(b)
    if a.dtype.itemsize in (2, 4, 8):
        ui = np.dtype(f"u{a.dtype.itemsize}")
        eq = np.ascontiguousarray(a).view(ui) == np.ascontiguousarray(b).view(ui)
    else:  # long double: padding bytes are undefined; compare values
        eq = (a == b) & (np.signbit(a) == np.signbit(b))
    return np.asarray(eq | both_nan)


def _obj_equal(x: Any, y: Any, files: tuple[Any, Any], ctx: _Ctx | None) -> bool:
    if isinstance(x, h5py.Reference) or isinstance(y, h5py.Reference):
        return _ref_name(x, files[0]) == _ref_name(y, files[1])
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        xa, ya = np.asarray(x), np.asarray(y)
        if xa.shape != ya.shape or _dtype_text(xa.dtype) != _dtype_text(ya.dtype):
            return False
        return not bool(_differ_mask(xa, ya, ctx).any())
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    if type(x) is not type(y):
        return False
    try:
        return bool(x == y)
    except Exception:  # noqa: BLE001 - incomparable values
        return repr(x) == repr(y)


def _ref_name(ref: Any, f: h5py.File | None) -> str:
    if not isinstance(ref, h5py.Reference):
        return repr(ref)
    if not ref:
        return "<null reference>"
    if f is None:
        return "<reference>"
    try:
        target = f[ref].name
    except Exception:  # noqa: BLE001
        return "<unresolvable reference>"
    return "<reference to an unlinked object>" if target is None else f"<reference to {target}>"


# --------------------------------------------------------------------------- attributes


class _NaN:
    """Stands for NaN in canonical attribute values: equal to itself."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _NaN)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "nan"


def _canon(v: Any, f: h5py.File) -> Any:
    """Plain Python value: references become the paths they refer to, NaN a sentinel."""
    if isinstance(v, h5py.Reference):
        return _ref_name(v, f)
    if isinstance(v, np.ndarray):
        if v.dtype.names:
            return [_canon(r, f) for r in v.reshape(-1)] if v.ndim else _canon(v[()], f)
        return [_canon(x, f) for x in v] if v.ndim else _canon(v[()], f)
    if isinstance(v, np.void) and v.dtype.names:
        return tuple(_canon(v[n], f) for n in v.dtype.names)
    if isinstance(v, (list, tuple)):
        return [_canon(x, f) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return _NaN()
    return v


def _has_objects(v: Any) -> bool:
    dt = getattr(v, "dtype", None)
    return dt is not None and (dt.kind == "O" or dt.names is not None)


def _read_attr(obj: Any, name: str) -> tuple[bool, Any]:
    try:
        return True, obj.attrs[name]
    except Exception as exc:  # noqa: BLE001 - e.g. an attribute type h5py cannot read
        return False, f"<unreadable: {_error_text(exc)}>"


def _cmp_attrs(oa: Any, ob: Any, path: str, ctx: _Ctx) -> None:
    names_a = [n for n in oa.attrs.keys() if not ctx.ignored(n)]
    names_b = [n for n in ob.attrs.keys() if not ctx.ignored(n)]
    set_a, set_b = set(names_a), set(names_b)
    for name in sorted(set_a | set_b):
        where = f"{path}@{name}"
        if name not in set_b:
            ok, v = _read_attr(oa, name)
            ctx.add(where, "attribute", f"only in a: {_attr_text(v, ctx.fa) if ok else v}")
            continue
        if name not in set_a:
            ok, v = _read_attr(ob, name)
            ctx.add(where, "attribute", f"only in b: {_attr_text(v, ctx.fb) if ok else v}")
            continue
        ok_a, va = _read_attr(oa, name)
        ok_b, vb = _read_attr(ob, name)
        if not (ok_a and ok_b):
            if (ok_a, va) != (ok_b, vb):
                ctx.add(where, "attribute", f"a={_attr_text(va, ctx.fa)} b={_attr_text(vb, ctx.fb)}")
            continue
        detail = _attr_difference(name, va, vb, ctx)
        if detail:
            ctx.add(where, "attribute", detail)


def _attr_difference(name: str, va: Any, vb: Any, ctx: _Ctx) -> str | None:
    """None when equal, else the one-line detail."""
    if isinstance(va, h5py.Empty) or isinstance(vb, h5py.Empty):
        if isinstance(va, h5py.Empty) and isinstance(vb, h5py.Empty) and va.dtype == vb.dtype:
            return None
        return _pair_text(va, vb, ctx)
    if isinstance(va, (str, bytes)) or isinstance(vb, (str, bytes)):  # np.str_ / np.bytes_ included
        if type(va) is not type(vb):  # e.g. variable-length vs fixed-length string
            return _pair_text(va, vb, ctx)
        if va == vb:
            return None
        sa, sb = _window(va, vb)
        return f"a={sa} b={sb}"
    xa, xb = np.asarray(va), np.asarray(vb)
    if (
        isinstance(va, np.ndarray) != isinstance(vb, np.ndarray)
        or _dtype_text(xa.dtype) != _dtype_text(xb.dtype)
        or xa.shape != xb.shape
    ):
        return _pair_text(va, vb, ctx)
    if _has_objects(xa):
        ca, cb = _canon(xa, ctx.fa), _canon(xb, ctx.fb)
        if name == "REFERENCE_LIST" and isinstance(ca, list) and isinstance(cb, list):
            ca, cb = sorted(ca, key=repr), sorted(cb, key=repr)  # attach order is not content
        if ca == cb:
            return None
        return _list_difference(ca, cb) if isinstance(ca, list) and isinstance(cb, list) else _pair_text(ca, cb, ctx)
    mask = _differ_mask(xa, xb, ctx)
    if not mask.any():
        return None
    if xa.size <= 1:
        return _pair_text(va, vb, ctx)
    tally = _Tally()
    tally.update(xa, xb, mask, (0,) * xa.ndim)
    return tally.detail(int(xa.size))


def _list_difference(ca: list[Any], cb: list[Any]) -> str:
    """Detail for two unequal lists: the entries on one side only, else the first that differs."""
    rest_b = list(cb)
    only_a = []
    for x in ca:
        if x in rest_b:
            rest_b.remove(x)
        else:
            only_a.append(x)
    sizes = f"a has {len(ca)} entries, b has {len(cb)}" if len(ca) != len(cb) else f"{len(ca)} entries"
    if only_a or rest_b:
        parts = [f"only in a: {_short(repr(only_a))}"] if only_a else []
        parts += [f"only in b: {_short(repr(rest_b))}"] if rest_b else []
        return f"{sizes}; " + "; ".join(parts)
    i = next(i for i, (x, y) in enumerate(zip(ca, cb)) if x != y)
    return f"{sizes}, same entries in another order; first at [{i}]: a={_short(repr(ca[i]))} b={_short(repr(cb[i]))}"


def _pair_text(va: Any, vb: Any, ctx: _Ctx) -> str:
    """``a=... b=...``, with the types when the values print alike."""
    ta, tb = _attr_text(va, ctx.fa), _attr_text(vb, ctx.fb)
    if ta == tb:
        ta += f" ({_type_text(va)})"
        tb += f" ({_type_text(vb)})"
    return f"a={ta} b={tb}"


def _type_text(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"array of {_dtype_text(v.dtype)}"
    if isinstance(v, (np.generic, h5py.Empty)):
        return _dtype_text(v.dtype)
    return type(v).__name__


def _attr_text(v: Any, f: h5py.File | None) -> str:
    if isinstance(v, h5py.Empty):
        return f"<empty {_dtype_text(v.dtype)}>"
    if isinstance(v, str) and v.startswith("<unreadable: "):
        return v
    if _has_objects(v) and f is not None:
        return _short(repr(_canon(v, f)))
    return _value_text(v)


def _value_text(v: Any) -> str:
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v[()]
    if isinstance(v, np.generic) and not isinstance(v, np.void):
        v = v.item()
    if isinstance(v, np.ndarray):
        with np.printoptions(threshold=8, edgeitems=3, linewidth=10**6):
            return _short(repr(v).replace("\n", " "))
    return _short(repr(v))


