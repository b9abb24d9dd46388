"""Figures: one function per figure returning a ``matplotlib.figure.Figure``.

Functions take datasets (never paths) and change no global matplotlib state;
:func:`save_figure` writes PDF and PNG atomically. The figures of a measure live in its
package (``gendyn.lc.figures``, ...); here are the views shared by every run:
:func:`training_curves` (:mod:`gendyn.figures.curves`), the run dashboard
(:mod:`gendyn.figures.dashboard`), the sweep comparison (:mod:`gendyn.figures.compare`), the
project's conventions (:mod:`gendyn.figures.style`) and the workflow's figure job
(:mod:`gendyn.figures.jobs`). Names are imported lazily.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["training_curves", "save_figure", "lr_change_steps"]

_LAZY = {"training_curves": "gendyn.figures.curves", "lr_change_steps": "gendyn.figures.curves"}


def save_figure(fig: Figure, prefix: Path | str, *, dpi: int = 150) -> tuple[Path, Path]:
    """Save ``fig`` as ``{prefix}.pdf`` and ``{prefix}.png`` (atomically) and close it."""
    import gendyn.figures.style  # noqa: F401 - headless backend first
    import matplotlib.pyplot as plt

    from gendyn.store import atomic_path

    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("pdf", "png"):
        final = prefix.with_name(prefix.name + "." + ext)
        with atomic_path(final) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi)
        out.append(final)
    plt.close(fig)
    return out[0], out[1]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gendyn.figures' has no attribute {name!r}")
