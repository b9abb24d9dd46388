"""The reproduction index as a table: its columns, reading it, and the rows of given figures.

Light (the csv module only): figure jobs and the report read verdicts from here while
Snakemake parses or renders the workflow. The index is written by
:mod:`gendyn.reproduction.engine`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["COLUMNS", "read_index", "verdicts", "figure_sort_key"]

#: Columns of ``results/reproduction.csv``, in order. ``experiment`` and ``run`` name the
#: results a row was computed from (``;``-separated when several; ``experiment/run`` in a
#: pooled row over several experiments); ``files`` the files it read, relative to the results
#: folder; ``note`` the measured reason behind the verdict.
COLUMNS: tuple[str, ...] = (
    "paper",
    "figure",
    "claim",
    "statistic",
    "value",
    "threshold",
    "verdict",
    "experiment",
    "run",
    "files",
    "note",
)

_KINDS = (("Fig S", 1), ("Fig", 0), ("Sec.", 2), ("App.", 3), ("R", 4))


def figure_sort_key(figure: str) -> tuple[int, int, str]:
    """Sort key of a paper figure id: figures by number (``Fig 2`` < ``Fig 16``; ``Fig 1a`` after
    ``Fig 1``), then supplementary figures, sections, appendices, code results (``R1``)."""
    for prefix, rank in _KINDS:
        if figure.startswith(prefix):
            rest = figure[len(prefix) :].strip()
            m = re.match(r"(\d*)(.*)", rest)
            num = int(m.group(1)) if m and m.group(1) else 0
            return (rank, num, m.group(2) if m else rest)
    return (9, 0, figure)


def read_index(path: Path | str) -> list[dict[str, str]]:
    """Every row of an index CSV as a dict of its columns (strings); [] when the file is absent."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def verdicts(
    index_csv: Path | str, paper: str, figure_ids: Iterable[str], experiment: str | None = None
) -> list[dict[str, str]]:
    """The index rows of some figures of a paper, e.g. for a figure's caption.

    Parameters
    ----------
    index_csv : path
        ``results/reproduction.csv``; a missing file gives [] (the index is built after the
        analyses, so a figure drawn first finds none).
    paper : str
        ``"000"`` ... ``"003"``.
    figure_ids : iterable of str
        Paper figure ids as in :attr:`gendyn.registry.FigureInfo.shows` (``"Fig 2"``).
    experiment : str, optional
        Keep only rows computed from this experiment (pooled rows that include it too); None:
        every row of the figures, ``not run`` rows included.

    Returns
    -------
    list of dict
        Rows in index order, each with every column of :data:`COLUMNS`.

    Examples
    --------
    >>> for row in verdicts("results/reproduction.csv", "001", ["Fig 2"], "lc_quick"):  # doctest: +SKIP
    ...     print(row["claim"], row["verdict"], row["value"])
    """
    wanted = set(figure_ids)
    rows = []
    for row in read_index(index_csv):
        if row.get("paper") != paper or row.get("figure") not in wanted:
            continue
        if experiment is not None and experiment not in (row.get("experiment") or "").split(";"):
            continue
        rows.append(row)
    return rows
