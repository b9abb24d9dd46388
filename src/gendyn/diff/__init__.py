"""``gendyn diff A B``: compare two results trees (or two files), dataset by dataset.

    gendyn diff results_old results_new            every difference, grouped by file
    gendyn diff --rtol 1e-6 A B                    tolerate small floating-point changes
    gendyn diff --ignore-attr device A B           ignore one more attribute name
    gendyn diff --json A/run.h5 B/run.h5           two files; machine-readable output

HDF5 files (``run.h5``, ``checkpoints.h5``) and netCDF-4 files (the analyses' ``*.nc``)
are compared object by object: every group and dataset by its path, its dtype, shape,
values (NaN-aware, exact by default, read block by block so multi-GB datasets never sit
in memory whole) and every attribute. Attributes that only name versions, times or hosts
(:data:`DEFAULT_IGNORED_ATTRS`) are skipped, so two reruns of the same workflow compare
equal. Text files (``runs.csv``, ``config.yaml``) are compared line by line. Figures and
logs are not compared, only checked for presence.

The exit status is 0 when the trees agree, 1 when any difference was found, 2 on a usage
error.
"""

from __future__ import annotations

from gendyn.diff.cli import main, register
from gendyn.diff.common import (
    DEFAULT_IGNORED_ATTRS,
    DEFAULT_INCLUDE,
    HDF5_SUFFIXES,
    KINDS,
    Difference,
    format_difference,
)
from gendyn.diff.hdf5 import BLOCK_BYTES, diff_files
from gendyn.diff.trees import diff_text, diff_trees

__all__ = [
    "BLOCK_BYTES",
    "DEFAULT_IGNORED_ATTRS",
    "DEFAULT_INCLUDE",
    "HDF5_SUFFIXES",
    "KINDS",
    "Difference",
    "diff_trees",
    "diff_files",
    "diff_text",
    "format_difference",
    "main",
    "register",
]
