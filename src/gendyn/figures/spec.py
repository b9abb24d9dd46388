"""The run views' entry for the workflow and the report: training curves, dashboard, comparison.

Not a measure: the figure set ``views`` of every experiment (:func:`gendyn.registry.figure_info`).
Light (no matplotlib): Snakemake reads it while parsing the workflow.
"""

from __future__ import annotations

from gendyn.registry import FigureInfo, Measure

__all__ = ["RUN_VIEWS"]

RUN_VIEWS = Measure(
    "views", "", "runs", figure_keys=(),
    figures=(
        FigureInfo(
            "curves",
            "training curves",
            "training curves",
            "Training curves of run ``{run}`` of experiment ``{experiment}``: loss (left, log scale, with the "
            "mean minibatch loss since the previous record point dashed) and accuracy (right, fraction) on the "
            "training set (red) and the test set (green), evaluated in eval mode at every record point. Dotted "
            "vertical lines mark learning-rate decays.",
        ),
        FigureInfo(
            "dashboard",
            "dashboard",
            "every measure of a run",
            "Every measure recorded or computed for run ``{run}`` of experiment ``{experiment}``, on one shared "
            "optimisation-step axis (log scale when the record schedule is log-spaced), learning-rate decays "
            "dotted: train/test loss and accuracy; per-layer gradient norms of the last update before each "
            "record point; and, where the experiment enables them, local complexity of train, test and random "
            "points (paper 001, mean over points, band ±¼ std), cross-path similarity within and between "
            "classes and self-similarity of the tracked training images (paper 000, one layer), and local "
            "elasticity within and between classes (paper 002).",
        ),
        FigureInfo(
            "compare_*",
            "comparison",
            "runs across a swept key",
            "Runs of experiment ``{experiment}`` compared across the values of one swept key (one colour per "
            "value; runs that differ only in other swept keys share a colour): accuracy and test loss over "
            "training and, where the experiment computes them, local complexity, path similarity and local "
            "elasticity.",
            scope="experiment",
        ),
    ),
)  # fmt: skip
