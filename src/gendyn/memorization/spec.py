"""Registry entry of memorization by gradient splitting (paper 003); light, no torch."""

from __future__ import annotations

from gendyn.registry import Claim, FigureInfo, Measure, Stage

_SUMMARY_KEYS = ("threshold_metric", "threshold", "patience", "interpolate", "last_epochs")

MEASURE = Measure(
    "memorization", "003", "memorization", settings="memorization",
    figure_keys=("figures", "curve_splits", "group_by", "paper_figure", "compare_experiments"),
    stages=(Stage("summary", "analysis/memorization/summary.nc", keys=_SUMMARY_KEYS),),
    figures=(
        FigureInfo(
            "curves",
            "accuracy curves",
            "Accuracy curves of experiment ``{experiment}`` (paper 003, gradient splitting). Accuracy (fraction) "
            "after each epoch, evaluated in eval mode on the full splits: training set (solid), the objective's "
            "test split (dashed; with a train_split layout, the second block of training images) and the held-out "
            "real test set (dotted, where present). One colour per group of runs (the swept values other than the "
            "seed). {seeds}{compare} Grey dash-dot: chance 1/C; black dotted: the J⁰ threshold k = {k}. Under J′ "
            "the test accuracy is driven below chance while the training accuracy rises (paper Fig 1a); under J⁰ it "
            "is held near k; the paper's noise and mixture runs (Figs 2a-2c) fit noise in fewer epochs than "
            "CIFAR-10, and J^t holds the test accuracy at its target (Fig 2d).",
            scope="experiment",
            shows=("Fig 1a", "Fig 2a", "Fig 2b", "Fig 2c", "Fig 2d"),
        ),
        FigureInfo(
            "threshold",
            "epochs to threshold",
            "Epochs to threshold of experiment ``{experiment}`` (paper 003): the first epoch after which the "
            "{metric} is at least τ for {patience} consecutive epoch(s). Left, at τ = {tau} (the value in "
            "``analysis/memorization/summary.nc``): bars are the mean over the seeds that reached it, dots single "
            "seeds; a group none of whose seeds reached it within training is a hatched bar to the last epoch, "
            "labelled \"not reached\" (a lower bound). With one numeric swept key (dataset size) the epochs are "
            "drawn against it, one line per remaining group (paper Fig 2c, right). Right: the same for thresholds "
            "0.5 to 0.95, so that runs which never reach τ still compare (filled markers: every seed reached it; "
            "open: some did not, counted at their last epoch; triangles: none did). {seeds}{compare} The paper "
            "finds memorization (J′) needs many more epochs than generalizing training (J), Fig 1b.",
            scope="experiment",
            shows=("Fig 1b", "Fig 2c"),
        ),
        FigureInfo(
            "gradnorm",
            "gradient norm",
            "Frobenius norm of the gradient of the optimised objective with respect to the first weight layer "
            "(``conv1.weight`` for the ConvNet, the first linear layer of an MLP) for experiment ``{experiment}`` "
            "(paper 003, Sec. 4), log scale. Solid: after the last backward of each epoch (as the author's code "
            "printed it); thin dashed: mean over the epoch's steps. {seeds}{compare} The paper reports for "
            "CIFAR-10 that J peaks just below 1 near epoch 50 and falls to about 5e-6, while J′ peaks near 0.1 "
            "and ends near 5e-3.",
            scope="experiment",
            shows=("Sec. 4",),
        ),
        FigureInfo(
            "gap",
            "generalization gap",
            "Generalization gap (training accuracy minus test accuracy, fractions) after each epoch for "
            "experiment ``{experiment}`` (paper 003), one colour per group of runs. {seeds}{compare} The paper's "
            "supplement (Fig S1, ResNet-18, J⁰ with k = 0.11) plots this gap because ResNet-18's test accuracy "
            "first rises under J⁰: larger noise datasets are overfitted faster (S1a), larger CIFAR-10 subsets more "
            "slowly (S1b).",
            scope="experiment",
            shows=("Fig S1a", "Fig S1b"),
        ),
        FigureInfo(
            "basins",
            "basins schematic",
            "Schematic of paper 003 Fig 3 (no runs involved; shown with experiment ``{experiment}``): a "
            "one-parameter loss with two minima. Minimum b is twice as stable as a (flat, delta-stable bottom s_b = "
            "2 s_a) and both have slopes of width m, so the basins' sizes are 4 and 6: a/b = 2/3 in one dimension "
            "and (2/3)^n in n dimensions, 1/1.23e176 for n = 1000 — a random initialisation essentially never "
            "lands in the less stable basin.",
            scope="experiment",
            shows=("Fig 3",),
        ),
    ),
    claims=(
        Claim("j_prime_below_chance", ("Fig 1a",), "Under J' the test accuracy falls to or below chance while the train accuracy rises",
              "final test accuracy of the J' runs", ("summary",)),
        Claim("j_generalizes", ("Fig 1a",), "Under J the same model generalizes (test about 60 % at train 90 %)",
              "test accuracy when the J runs reach the train threshold"),
        Claim("heldout_drops", ("Fig 1a",), "Splitting also ruins the accuracy on unseen held-out data",
              "held-out accuracy J minus J'", ("summary",)),
        Claim("memorization_slower", ("Fig 1b",), "Memorizing (J') needs many more epochs than generalizing (J)",
              "epochs to threshold J' / J", ("summary",)),
        Claim("noise_fitted_faster", ("Fig 2a",), "Under J0 noise is memorized in fewer epochs than images",
              "epochs to threshold images / noise", ("summary",), "pooled"),
        Claim("j0_holds_test_near_k", ("Fig 2a",), "J0 holds the test accuracy at or below k",
              "test accuracy (last epochs) minus k", ("summary",)),
        Claim("mixture_noise_faster", ("Fig 2b",), "More noise in the mixture, fewer epochs to memorize",
              "Spearman rho of real fraction f vs epochs", ("summary",)),
        Claim("noise_larger_faster", ("Fig 2c", "Fig S1a"), "Larger noise datasets are memorized faster",
              "Spearman rho of size vs epochs (noise runs)", ("summary",), "pooled"),
        Claim("images_larger_slower", ("Fig 2c", "Fig S1b"), "Larger CIFAR-10 subsets are memorized more slowly",
              "Spearman rho of size vs epochs (image runs)", ("summary",), "pooled"),
        Claim("jt_tracks_target", ("Fig 2d",), "Under Jt the test accuracy tracks the target",
              "|test accuracy (last epochs) - target|", ("summary",)),
        Claim("jt_higher_target_faster", ("Fig 2d",), "Higher Jt targets need fewer epochs",
              "Spearman rho of target vs epochs", ("summary",)),
        Claim("gradnorm_peak_lower", ("Sec. 4",), "The first-layer gradient norm peaks lower under J' than under J",
              "peak gradient norm J' / J", ("summary",)),
        Claim("gradnorm_final_higher", ("Sec. 4",), "The first-layer gradient norm ends far higher under J' than under J",
              "final gradient norm J' / J", ("summary",)),
        Claim("basin_ratio", ("Fig 3",), "The less stable basin is (2/3)^1000 = 1/1.2e176 of the stable one",
              "log10 of the basin-size ratio for n = 1000"),
    ),
    estimate="gendyn.memorization.stage:estimate",
)  # fmt: skip
