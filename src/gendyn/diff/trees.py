"""Two results trees compared file by file (HDF5 through :mod:`gendyn.diff.hdf5`, text line by line)."""

from __future__ import annotations

import fnmatch
import itertools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


from gendyn.diff.common import (
    DEFAULT_IGNORED_ATTRS,
    DEFAULT_INCLUDE,
    FILE,
    HDF5_SUFFIXES,
    Difference,
    _error_text,
    _MAX_REPR,
    _window,
)
from gendyn.diff.hdf5 import diff_files


def diff_trees(
    a: Path, b: Path, *, include: Iterable[str] = DEFAULT_INCLUDE, results_only: bool = False, **options: Any
) -> list[Difference]:
    """Compare two results trees file by file.

    Every regular file under either root is matched by its path relative to the root
    (hidden files, such as Snakemake's ``.snakemake_timestamp`` markers, are skipped).
    A file on one side only is a difference of kind ``only_in_a`` / ``only_in_b``
    (whatever its kind, figures and logs included, unless ``results_only``). The contents of a file present on
    both sides are compared only when its name (or relative path) matches one of the
    ``include`` patterns: HDF5/netCDF files (see :data:`HDF5_SUFFIXES`) with
    :func:`diff_files`, any other included file as text with :func:`diff_text`.
    Figures (``*.png``, ``*.pdf``), logs and the Snakemake report are not compared by
    default: they hold timestamps, paths and renderer-specific bytes.

    Parameters
    ----------
    a, b : Path
        The two roots, e.g. ``results`` of two checkouts. Symbolic links to directories
        are not followed.
    include : iterable of str, optional
        ``fnmatch`` patterns of the files whose contents are compared.
    results_only : bool
        Consider only the files matching ``include``, also for presence: figures, logs and
        reports may then differ (e.g. after a change of the figure layout).

    Returns
    -------
    list of Difference
        Sorted by file, then in the order found inside each file; empty when the trees
        agree.

    Raises
    ------
    NotADirectoryError
        If ``a`` or ``b`` is not a directory (unreadable files inside are differences).
    """
    options = {"ignore_attrs": DEFAULT_IGNORED_ATTRS, "rtol": 0.0, "atol": 0.0, **options}
    diffs, _ = _diff_trees(Path(a), Path(b), include=include, results_only=results_only, **options)
    return diffs


def _diff_trees(
    a: Path,
    b: Path,
    *,
    ignore_attrs: Iterable[str],
    rtol: float,
    atol: float,
    include: Iterable[str],
    results_only: bool = False,
) -> tuple[list[Difference], int]:
    """:func:`diff_trees`, and the number of files whose contents were compared."""
    for root in (a, b):
        if not root.is_dir():
            raise NotADirectoryError(f"not a directory: {root}")
    patterns = tuple(include)
    files_a, files_b = _list_files(a), _list_files(b)
    if results_only:
        files_a = {f for f in files_a if _matches(f, patterns)}
        files_b = {f for f in files_b if _matches(f, patterns)}
    diffs: list[Difference] = []
    n_compared = 0
    for rel in sorted(files_a | files_b):
        if rel not in files_b:
            diffs.append(Difference(rel, FILE, "only_in_a", _file_summary(a / rel)))
        elif rel not in files_a:
            diffs.append(Difference(rel, FILE, "only_in_b", _file_summary(b / rel)))
        elif _matches(rel, patterns):
            n_compared += 1
            diffs.extend(_diff_pair(a / rel, b / rel, rel, ignore_attrs=ignore_attrs, rtol=rtol, atol=atol))
    return diffs, n_compared


def _list_files(root: Path) -> set[str]:
    out: set[str] = set()
    for dirpath, _dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        for name in filenames:
            if name.startswith("."):
                continue
            full = Path(dirpath, name)
            if full.is_file():  # regular files and links to them; no sockets, fifos, dangling links
                out.add((rel_dir / name).as_posix())
    return out


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(rel, p) for p in patterns)


def _file_summary(path: Path) -> str:
    try:
        return f"file ({path.stat().st_size} bytes)"
    except OSError as exc:  # pragma: no cover - raced away
        return f"file ({_error_text(exc)})"


def _is_hdf5_name(path: Path) -> bool:
    return path.suffix.lower() in HDF5_SUFFIXES


def _diff_pair(
    a: Path, b: Path, rel: str, *, ignore_attrs: Iterable[str], rtol: float, atol: float
) -> list[Difference]:
    if _is_hdf5_name(a):
        return diff_files(a, b, ignore_attrs=ignore_attrs, rtol=rtol, atol=atol, name=rel)
    return diff_text(a, b, name=rel)


# --------------------------------------------------------------------------- text files


def diff_text(a: Path, b: Path, *, name: str | None = None) -> list[Difference]:
    """Compare two text files line by line (bytes, line endings included).

    Parameters
    ----------
    a, b : Path
        The two files; read as a stream, so size is no concern.
    name : str, optional
        :attr:`Difference.path` of the result (default: the name of ``a``).

    Returns
    -------
    list of Difference
        Empty, or one ``text`` difference naming the first differing line, how many
        lines differ (by position) and the line counts; or ``unreadable`` differences.
    """
    rel = name if name is not None else Path(a).name
    try:
        fa = open(a, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        return [Difference(rel, FILE, "unreadable", f"a: {_error_text(exc)}")]
    try:
        try:
            fb = open(b, "rb")  # noqa: SIM115
        except OSError as exc:
            return [Difference(rel, FILE, "unreadable", f"b: {_error_text(exc)}")]
        with fb:
            first: tuple[int, bytes | None, bytes | None] | None = None
            n_diff = n_a = n_b = 0
            try:
                for lineno, (la, lb) in enumerate(itertools.zip_longest(fa, fb), start=1):
                    n_a += la is not None
                    n_b += lb is not None
                    if la != lb:
                        n_diff += 1
                        if first is None:
                            first = (lineno, la, lb)
            except OSError as exc:
                return [Difference(rel, FILE, "unreadable", _error_text(exc))]
    finally:
        fa.close()
    if first is None:
        return []
    lineno, la, lb = first
    if la is not None and lb is not None:
        sa, sb = _window(_decode(la), _decode(lb))
    else:
        sa = "<end of file>" if la is None else repr(_decode(la))[:_MAX_REPR]
        sb = "<end of file>" if lb is None else repr(_decode(lb))[:_MAX_REPR]
    counts = f"{n_diff} of {max(n_a, n_b)} lines differ" if n_a == n_b else f"a has {n_a} lines, b has {n_b}"
    return [Difference(rel, f"line {lineno}", "text", f"a={sa} b={sb} ({counts})")]


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="backslashreplace")


# --------------------------------------------------------------------------- HDF5 / netCDF files


