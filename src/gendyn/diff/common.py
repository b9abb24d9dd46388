"""What a difference is: the :class:`Difference` record, the defaults and the text helpers."""

from __future__ import annotations

from dataclasses import asdict, dataclass


#: Attribute names skipped by default: each names a software version, a time, a duration
#: or a host, which legitimately differ between two reruns of the same configuration.
#: ``_NCProperties`` is written by h5netcdf/netCDF-C into every netCDF-4 file and holds the
#: h5netcdf, HDF5 and h5py versions (``version=2,h5netcdf=1.8.3,hdf5=2.0.0,h5py=3.16.0``).
DEFAULT_IGNORED_ATTRS: tuple[str, ...] = (
    "gendyn_version",
    "torch_version",
    "python_version",
    "numpy_version",
    "h5py_version",
    "_NCProperties",
    "created",
    "created_at",
    "start_time",
    "end_time",
    "wall_time_s",
    "runtime_s",
    "elapsed_s",
    "hostname",
    "host",
)

#: Files whose contents :func:`diff_trees` compares by default (others: presence only).
DEFAULT_INCLUDE: tuple[str, ...] = ("*.h5", "*.nc", "*.csv", "*.yaml")

#: File name endings read as HDF5 (netCDF-4 is HDF5); any other included file is text.
HDF5_SUFFIXES: tuple[str, ...] = (".h5", ".hdf5", ".hdf", ".he5", ".nc", ".nc4", ".cdf")

#: Every value of :attr:`Difference.kind`.
KINDS: tuple[str, ...] = (
    "only_in_a",  # a file, group, dataset or link only in A
    "only_in_b",
    "unreadable",  # a file (or an object in it) that could not be read: the error
    "type",  # same path, different kind of object (group / dataset / link) or link target
    "dtype",
    "shape",
    "values",
    "attribute",  # attribute only on one side or with a different value
    "text",  # first differing line of a text file
)

FILE = "<file>"


_MAX_REPR = 60


@dataclass(frozen=True)
class Difference:
    """One difference between tree (or file) A and tree (or file) B.

    Attributes
    ----------
    path : str
        The file, relative to the tree root (POSIX separators).
    where : str
        Where in the file: an HDF5 object path (``/masks/relu1``), an attribute
        (``/metrics@units``, ``/@config`` on the root group), ``line N`` of a text file,
        or ``<file>`` for the file itself.
    kind : str
        One of :data:`KINDS`.
    detail : str
        One line, e.g. ``3 of 2048 values differ, max |a-b| = 1.2e-07 at index (0, 5)``
        or ``a='x' b='y'``.
    """

    path: str
    where: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return format_difference(self)

    def to_dict(self) -> dict[str, str]:
        """The four fields as a JSON-ready mapping."""
        return asdict(self)


def format_difference(d: Difference) -> str:
    """One output line: ``path: where: kind: detail``."""
    return f"{d.path}: {d.where}: {d.kind}: {d.detail}"


# --------------------------------------------------------------------------- trees


def _short(text: str, limit: int = _MAX_REPR) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _window(a: str | bytes, b: str | bytes, before: int = 20, after: int = 40) -> tuple[str, str]:
    """Short reprs of two strings around their first difference."""
    n = min(len(a), len(b))
    p = next((i for i in range(n) if a[i] != b[i]), n)
    start = max(0, p - before)

    def cut(s: str | bytes) -> str:
        piece = s[start : p + after]
        text = repr(piece)
        if start > 0:
            text = "..." + text
        if p + after < len(s):
            text += "..."
        return text

    return cut(a), cut(b)


def _error_text(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


# --------------------------------------------------------------------------- command line


