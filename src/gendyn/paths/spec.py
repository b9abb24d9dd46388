"""Registry entry of the path measures (paper 000); light, no torch."""

from __future__ import annotations

from gendyn.registry import FigureInfo, Measure, Stage

MEASURE = Measure(
    "paths", "000", "paths", settings="paths", run_analysis="paths",
    stages=(Stage("compute", "analysis/paths/{run}.nc"), Stage("summary", "analysis/paths/summary.nc", keys=("ratio_layer",))),
    figures=(
        FigureInfo(
            "fig1_cross_path",
            "Figs 1-3, 16",
            "cross-path similarity",
            "Cross-path similarity of run ``{run}`` (experiment ``{experiment}``), paper 000 Figs 1-3 and 16. For "
            "every pair of tracked training images i < j and every record t (x axis: epochs completed), S_ij is the "
            "cosine between the units both images activate at t and those they both activated at the previous "
            "record (``|q^t AND q^(t-1)| / sqrt(|q^t| |q^(t-1)|)`` with ``q^t = p_i^t AND p_j^t``). Left column: the "
            "distribution of S over pairs (median line, 25-75 % and 5-95 % bands, mean dashed; quantiles from a "
            "histogram with bin width 1/``hist_bins``). Right column, when the run recorded activations: the same "
            "for the activation variant A (products of post-ReLU activations instead of masks). Rows are layers, "
            "the deepest on top; dotted lines mark learning-rate decays. Values below 1 mean that image pairs meet "
            "on different units at different times. The paper plots AlexNet on CIFAR-10 (Fig 1, layers 4 and 1), "
            "ResNet-18 on CIFAR-10 (Fig 2, layers 6 and 2), ResNet-18 on ImageNet (Fig 3) and VGG-19 on CIFAR-10 "
            "(Fig 16): the same figure of the corresponding run.",
        ),
        FigureInfo(
            "fig4_overlap_distance",
            "Fig 4",
            "overlap vs input distance",
            "Path overlap against input distance for run ``{run}`` (experiment ``{experiment}``), paper 000 Fig 4. "
            "Each dot is a pair i < j of tracked training images (the first ``overlap_images``; at most "
            "``figures.max_points`` drawn): x is the Euclidean distance between the two inputs as the model sees "
            "them, y the path overlap p_i . p_j (units active for both) at the final record. The black line is the "
            "median overlap per distance bin with its interquartile range; Pearson r and Spearman rho over all "
            "pairs are in each panel title. One panel per layer (deepest on the left; the paper shows AlexNet "
            "CIFAR-10 layers 6 and 2). The paper's point: there is no clean linear relation between input distance "
            "and path overlap.",
        ),
        FigureInfo(
            "fig5_self_similarity",
            "Fig 5",
            "self-similarity",
            "Self-similarity of run ``{run}`` (experiment ``{experiment}``), paper 000 Fig 5. For every tracked "
            "training image i and record t, sigma_i is the cosine between its binary ReLU mask at t and at the "
            "previous record (1 = the image passed through exactly the same units). The distribution over images "
            "is drawn per epoch (median, 25-75 % and 5-95 % bands, mean dashed); rows are layers, deepest on top "
            "(the paper: AlexNet CIFAR-10, layers 4 and 1); dotted lines mark learning-rate decays. "
            "Self-similarity stays below 1 for much of training, most of all early: the same image follows "
            "different paths over time.",
        ),
        FigureInfo(
            "fig6_neighbour_ranks",
            "Fig 6",
            "nearest-neighbour ranks",
            "Nearest neighbours over training for run ``{run}`` (experiment ``{experiment}``), paper 000 Fig 6. "
            "For each baseline image j (default positions 5, 10, 15 among the tracked training images) the 128 "
            "other images with the lowest positions are ranked at every record by their path overlap with j (0 = "
            "nearest; ties go to the lower position), in the layer ``figures.rank_layer`` (the paper: AlexNet "
            "CIFAR-10, layer 2). Each candidate that enters the top ``top_k`` (ranks 0-5) at some record gets a "
            "coloured line, drawn only where it is in the top. Panel titles count the distinct candidates seen in "
            "the top and how often the nearest neighbour changed: unlike a k-nearest-neighbour model on fixed data, "
            "the network's nearest neighbours change.",
        ),
        FigureInfo(
            "figE_activation_ranks",
            "App. E",
            "ranks by activation similarity",
            "Nearest neighbours by activation similarity for run ``{run}`` (experiment ``{experiment}``), paper 000 "
            "Appendix E. As Fig 6, but candidates are ranked by the cosine of their (post-ReLU) activations with "
            "the baseline image's activations at the same record, cos(a_i, a_j). Rows are layers "
            "(``figures.layers``; the paper shows AlexNet CIFAR-10 layers 4 and 2), columns the baseline images; "
            "each candidate that enters ranks 0-5 at some record gets a line.",
        ),
        FigureInfo(
            "fig7_early_mid_ratio",
            "Fig 7",
            "early/mid ratio vs generalization",
            "Early/mid cross-path ratio against generalization, experiment ``{experiment}`` (plus the experiments "
            "listed in ``analyses.paths.figures.fig7_experiments``), paper 000 Fig 7. For each run, m_e is the mean "
            "over tracked training pairs i != j of the cross-path similarity S at the record after e epochs; the "
            "ratio R is the mean of m_e over the early stage (epochs 1 to the first LR decay) divided by its mean "
            "over the mid stage (after the first decay to the second), in layer ``ratio_layer`` (default 2). The y "
            "axis is the final test accuracy in % (or test error / train-test gap, ``figures.generalization``), "
            "evaluated on the full test set at the end of training. One point per run; the dashed line is a "
            "least-squares fit with its Pearson r. The paper reports a roughly linear relation over six "
            "model/dataset pairs (AlexNet and ResNet-110 on CIFAR-10/100, ResNet-18 on ImageNet, VGG-19 on "
            "CIFAR-10).",
            scope="experiment",
        ),
    ),
    estimate="gendyn.paths.stage:estimate",
)  # fmt: skip
