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
            "Training curves of run ``{run}`` of experiment ``{experiment}``; x = {x_axis}. Left: loss on the "
            "training set (blue), the test set (vermillion) and, for paper-003 runs, the held-out real test set "
            "(reddish purple), evaluated in eval mode on the full sets at every record point; grey dashed: the "
            "mean over the minibatches since the previous record of the objective being optimised (the training "
            "loss, or under gradient splitting e.g. J′ = L_train - L_test, which can be negative). The loss axis is "
            "logarithmic only when every value drawn is positive and they span a decade. Right: accuracy "
            "(fraction) on the same sets. Dotted vertical lines: learning-rate decays; markers sit on the record "
            "points when there are at most 30.",
        ),
        FigureInfo(
            "dashboard",
            "every measure of a run",
            "Every measure recorded or computed for run ``{run}`` of experiment ``{experiment}``, on one shared "
            "axis (x = {x_axis}), learning-rate decays dotted: loss and accuracy on the training (blue), test "
            "(vermillion) and held-out (reddish purple) sets; per-layer gradient norms of the last update before "
            "each record point (all parameters in black); and, where the experiment enables them: local "
            "complexity of training, test and random points (paper 001; mean over points at the radius named on "
            "the axis, band ± the configured multiple of the standard deviation), the mean cross-path similarity "
            "of same-class (orange) and different-class (sky blue) pairs and the mean self-similarity of the "
            "tracked training images (paper 000, layer 2), and the mean local elasticity of same-class and "
            "different-class pairs (paper 002). Log scales only for positive values spanning a decade.",
        ),
        FigureInfo(
            "compare_*",
            "runs compared",
            "Runs of experiment ``{experiment}`` compared by {key_name}: one colour per value of {key_name}, the "
            "other swept keys as line styles (legend). {seeds} Rows: training and test accuracy, test loss (log "
            "scale only for positive values spanning a decade) and, where the experiment computes them, the mean "
            "local complexity of training and test points (paper 001), the mean cross-path similarity of "
            "same-class pairs and the mean self-similarity in layer 2 (paper 000), and the mean local elasticity "
            "of same-class and different-class pairs (paper 002); x = {x_axis}.",
            scope="experiment",
        ),
    ),
)  # fmt: skip
