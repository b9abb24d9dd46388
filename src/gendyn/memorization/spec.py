"""Registry entry of memorization by gradient splitting (paper 003); light, no torch."""

from __future__ import annotations

from gendyn.registry import FigureInfo, Measure, Stage

_REPRO = "{reproduces}"

_SUMMARY_KEYS = ("threshold_metric", "threshold", "patience", "interpolate", "last_epochs")

MEASURE = Measure(
    "memorization", "003", "memorization", settings="memorization",
    figure_keys=("figures", "curve_splits", "group_by", "paper_figure"),
    stages=(Stage("summary", "analysis/memorization/summary.nc", keys=_SUMMARY_KEYS),),
    figures=(
        FigureInfo(
            "curves",
            "Figs 1a, 2a-2d",
            "accuracy curves",
            "Accuracy curves of experiment ``{experiment}`` (paper 003, gradient splitting" + _REPRO + "). Accuracy "
            "(fraction) after each epoch, evaluated in eval mode on the full splits: training set (solid), the "
            "objective's test split (dashed; with ``test_source: train_split`` the second half of the training "
            "images) and the held-out real test set (dotted, where present). One colour per group of runs (the "
            "swept parameters other than the seed); the line is the mean over seeds and the band their min-max. "
            "The grey dash-dot line is chance (1/C) and the red dotted line the J⁰ threshold k. Under J′ the test "
            "accuracy is driven below chance while the training accuracy rises (paper Fig. 1a); under J⁰ it is held "
            "near k; the paper's noise and mixture runs (Figs. 2a-2c) fit noise in fewer epochs than CIFAR-10.",
            scope="experiment",
        ),
        FigureInfo(
            "threshold",
            "Figs 1b, 2c",
            "epochs to threshold",
            "Epochs to threshold of experiment ``{experiment}`` (paper 003" + _REPRO + "): the first epoch after "
            "which the curve named in ``analysis/memorization/summary.nc`` (attribute ``threshold_metric``, by "
            "default the training accuracy) reaches the threshold ``tau`` (default 0.9), per group of runs. Bars "
            "are the mean over the seeds that reached it, dots single seeds; an open triangle marks a run that "
            "never reached it, drawn at its last epoch (a lower bound). With one numeric swept key (dataset size) "
            "the epochs are drawn against it, one line per remaining group (paper Fig. 2c right). The paper finds "
            "memorization (J′) needs many more epochs than generalizing training (J), Fig. 1b.",
            scope="experiment",
        ),
        FigureInfo(
            "gradnorm",
            "Sec. 4",
            "gradient norm",
            "Frobenius norm of the gradient of the optimised objective with respect to the first weight layer "
            "(``conv1.weight`` for the ConvNet; run attribute ``first_weight``) for experiment ``{experiment}`` "
            "(paper 003, Sec. 4" + _REPRO + "), log scale. Solid: after the last backward of each epoch (as the "
            "author's code printed it); thin dashed: mean over the epoch's steps. Mean over seeds, band min-max. "
            "The paper reports for CIFAR-10 that J peaks just below 1 near epoch 50 and falls to about 5e-6, while "
            "J′ peaks near 0.1 and ends near 5e-3.",
            scope="experiment",
        ),
        FigureInfo(
            "gap",
            "Fig S1",
            "generalization gap",
            "Generalization gap (training accuracy minus test accuracy, fractions) after each epoch for experiment "
            "``{experiment}`` (paper 003" + _REPRO + "), one colour per group of runs, mean over seeds with a "
            "min-max band. The paper's supplement (Fig. S1, ResNet-18, J⁰ with k = 0.11) plots this gap because "
            "ResNet-18's test accuracy first rises under J⁰: larger noise datasets are overfitted faster (S1a), "
            "larger CIFAR-10 subsets more slowly (S1b).",
            scope="experiment",
        ),
        FigureInfo(
            "basins",
            "Fig 3",
            "basins schematic",
            "Schematic of paper 003 Fig. 3 (no runs involved; shown with experiment ``{experiment}``): a "
            "one-parameter loss with two minima. Minimum b is twice as stable as a (flat, delta-stable bottom s_b = "
            "2 s_a) and both have slopes of width m, so the basins' sizes are 4 and 6: a/b = 2/3 in one dimension "
            "and (2/3)^n in n dimensions, 1/1.23e176 for n = 1000 — a random initialisation essentially never "
            "lands in the less stable basin.",
            scope="experiment",
        ),
    ),
    estimate="gendyn.memorization.stage:estimate",
)  # fmt: skip
