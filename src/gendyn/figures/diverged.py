"""How figures show a run that diverged (``training.on_divergence: record``).

A diverged run ends cleanly at its last finite record point; its analyses cover the records
before the divergence, or, where a stage needs more records than the run has, are skipped-run
files (:func:`gendyn.store.skipped_dataset`). Every figure job (:mod:`gendyn.figures.jobs`)
marks the figures of a diverged run, and of an experiment with diverged runs, in their title
(:func:`mark_diverged`); a run figure job whose analyses were all skipped draws
:func:`diverged_figure` instead, so the report shows the run as diverged rather than missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gendyn.figures.style  # noqa: F401 - headless backend first
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["diverged_figure", "mark_diverged", "divergence_note"]

#: Name of the figure a run figure job draws when every analysis of the run was skipped.
DIVERGED_FIGURE = "diverged"


def divergence_note(diverged: Mapping[str, Mapping[str, Any]]) -> str:
    """``"diverged at step 3"`` for one run, ``"diverged: a (step 3), b (step 9)"`` for several."""
    if not diverged:
        return ""
    if len(diverged) == 1 and "" in diverged:
        return f"diverged at step {diverged['']['step']}"
    return "diverged: " + ", ".join(f"{run} (step {d['step']})" for run, d in sorted(diverged.items()))


def mark_diverged(fig: Figure, note: str) -> Figure:
    """Append ``note`` (in red) to the figure's title, unless the title already says it."""
    if not note:
        return fig
    current = fig.get_suptitle()
    if "diverged" in current:
        return fig
    size = fig._suptitle.get_fontsize() if fig._suptitle is not None else 10
    fig.suptitle(f"{current}  ({note})" if current else note, fontsize=size, color="tab:red")
    return fig


def diverged_figure(title: str, divergence: Mapping[str, Any], reasons: Sequence[str]) -> Figure:
    """A note in place of an analysis's figures: the run diverged and the stage skipped it.

    Parameters
    ----------
    title : str
        ``experiment / run``.
    divergence : mapping
        ``step`` and ``loss`` of the divergence (:func:`gendyn.store.divergence`).
    reasons : sequence of str
        Why each stage skipped the run (the ``skipped`` attribute of its file).
    """
    fig, ax = plt.subplots(figsize=(6.4, 2.6), constrained_layout=True)
    ax.axis("off")
    loss = f" (loss {divergence.get('loss')})" if divergence.get("loss") else ""
    lines = [f"The run diverged at step {divergence.get('step')}{loss} and ended there", "(training.on_divergence: record)."]
    lines += ["", *[_wrap(r) for r in dict.fromkeys(reasons)]]
    ax.text(0.5, 0.5, "\n".join(lines), ha="center", va="center", fontsize=9, transform=ax.transAxes)
    fig.suptitle(f"{title}  (diverged at step {divergence.get('step')})", fontsize=10, color="tab:red")
    return fig


def _wrap(text: str, width: int = 90) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
