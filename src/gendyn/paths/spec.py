"""Registry entry of the path measures (paper 000); light, no torch."""

from __future__ import annotations

from gendyn.registry import Claim, FigureInfo, Measure, Stage

MEASURE = Measure(
    "paths", "000", "paths", settings="paths", run_analysis="paths",
    stages=(Stage("compute", "analysis/paths/{run}.nc"), Stage("summary", "analysis/paths/summary.nc", keys=("ratio_layer",))),
    figures=(
        FigureInfo(
            "fig1_cross_path",
            "cross-path similarity",
            "Cross-path similarity of run ``{run}`` (experiment ``{experiment}``) over training. For every pair of "
            "the {n_tracked} tracked training images i < j and every record t (x: epochs completed), S_ij is the "
            "{norm} similarity between the units both images activate at t and those they both activated {lag} "
            "record(s) earlier (``|q^t AND q^(t-1)| / sqrt(|q^t| |q^(t-1)|)``, ``q^t = p_i^t AND p_j^t``). Left "
            "column: the distribution of S over pairs, median (line), 25-75 % and 5-95 % of pairs (bands) and "
            "mean (dashed), read from histograms of bin width {resolution}. Right column, when the run recorded "
            "activations: the same for the activation variant A (post-ReLU activations instead of binary masks). "
            "Rows: layers {layers} (1-based in forward order), the deepest on top; dotted vertical lines: "
            "learning-rate decays. Values below 1 mean that image pairs meet on different units at different "
            "times. The paper draws this figure for AlexNet on CIFAR-10 (Fig 1, layers 4 and 1), ResNet-18 on "
            "CIFAR-10 (Fig 2, layers 6 and 2) and on ImageNet (Fig 3), and VGG-19 on CIFAR-10 (Fig 16).",
            shows=("Fig 1", "Fig 2", "Fig 3", "Fig 16"),
        ),
        FigureInfo(
            "fig4_overlap_distance",
            "overlap vs input distance",
            "Path overlap against input distance for run ``{run}`` (experiment ``{experiment}``) at the final "
            "record. Each dot is a pair i < j among the first {overlap_images} tracked training images (at most "
            "{max_points} drawn, a seeded subsample): x is the Euclidean distance between the two inputs as the "
            "model sees them, y the path overlap p_i . p_j (units active for both). Black: the median overlap per "
            "distance bin with its interquartile range; Pearson r and Spearman rho over all pairs in each panel "
            "title. One panel per layer ({layers}; the deepest on the left; the paper shows AlexNet CIFAR-10 "
            "layers 6 and 2). The paper's point: there is no clean linear relation between input distance and "
            "path overlap.",
            shows=("Fig 4",),
        ),
        FigureInfo(
            "fig5_self_similarity",
            "self-similarity",
            "Self-similarity of run ``{run}`` (experiment ``{experiment}``) over training. For every one of the "
            "{n_tracked} tracked training images i and every record t, sigma_i is the {norm} similarity between "
            "its binary ReLU mask at t and {lag} record(s) earlier (1 = the image passed through exactly the "
            "same units). The distribution over images per epoch: median (line), 25-75 % and 5-95 % of images "
            "(bands), mean (dashed). Rows: layers {layers}, deepest on top (the paper: AlexNet CIFAR-10, layers 4 "
            "and 1); dotted lines: learning-rate decays. Self-similarity stays below 1 for much of training, most "
            "of all early: the same image follows different paths over time.",
            shows=("Fig 5",),
        ),
        FigureInfo(
            "fig6_neighbour_ranks",
            "nearest-neighbour ranks",
            "Nearest neighbours over training for run ``{run}`` (experiment ``{experiment}``). For each baseline "
            "image j (positions {baselines} among the tracked training images) the {n_candidates} other images "
            "with the lowest positions are ranked at every record by their path overlap with j in layer "
            "{rank_layer} (0 = nearest; ties to the lower position; the paper: AlexNet CIFAR-10, layer 2). One "
            "panel per baseline: rows are the images that are among the {top_k} nearest at some epoch (ordered by "
            "when they first enter), columns the record epochs, colour the rank 0-{top_last}; a blank cell means "
            "not among the {top_k} nearest at that epoch. Panel titles count the distinct images in the top and "
            "how often the nearest one changed; dotted lines mark learning-rate decays (between the epochs they "
            "separate). Unlike a k-nearest-neighbour model on fixed data, the network's nearest neighbours change.",
            shows=("Fig 6",),
        ),
        FigureInfo(
            "figE_activation_ranks",
            "ranks by activation similarity",
            "Nearest neighbours by activation similarity for run ``{run}`` (experiment ``{experiment}``), as Fig 6 "
            "but the {n_candidates} candidates are ranked by the cosine of their post-ReLU activations with the "
            "baseline image's activations at the same record, cos(a_i, a_j). Rows of panels: layers {layers} (the "
            "paper shows AlexNet CIFAR-10 layers 4 and 2); columns: the baseline images {baselines}; within a "
            "panel, rows are the images among the {top_k} nearest at some epoch, columns the epochs, colour the "
            "rank 0-{top_last}, blank = not in the top.",
            shows=("App. E",),
        ),
        FigureInfo(
            "fig7_early_mid_ratio",
            "early/mid ratio vs generalization",
            "Early/mid cross-path ratio against generalization for the runs of experiment "
            "``{experiment}``{fig7_experiments}. For each run, m_e is the mean over tracked training pairs i != j of "
            "the cross-path similarity S at the record after e epochs; R is the mean of m_e over the early stage "
            "(epochs 1 to the first learning-rate decay) divided by its mean over the mid stage (after the first "
            "decay to the second), in layer {ratio_layer}. y: the {generalization}, on the full test set at the "
            "end of training. {seeds} One point per configuration (error bars: the min-max over its seeds, faint "
            "dots: single seeds); dashed: the least-squares line over the configurations, with its Pearson r. The "
            "paper reports a roughly linear relation over six model/dataset pairs (AlexNet and ResNet-110 on "
            "CIFAR-10/100, ResNet-18 on ImageNet, VGG-19 on CIFAR-10).",
            scope="experiment",
            shows=("Fig 7",),
        ),
    ),
    claims=(
        Claim("cross_path_below_one", ("Fig 1", "Fig 2", "Fig 3", "Fig 16"),
              "Cross-path similarity of image pairs stays below 1 for most of training",
              "fraction of records whose median S over pairs is below `perfect` (weakest layer)", ("compute",)),
        Claim("cross_path_rises", ("Fig 1", "Fig 2", "Fig 3", "Fig 16"),
              "Cross-path similarity becomes higher later in training",
              "mean S over pairs, last record minus first (weakest layer)", ("compute",)),
        Claim("activation_below_one", ("Fig 1",),
              "Activation similarity A of image pairs also stays below 1 for most of training",
              "fraction of records whose median A over pairs is below `perfect` (weakest layer)", ("compute",)),
        Claim("overlap_not_linear", ("Fig 4",),
              "No clean linear relation between input distance and path overlap",
              "largest |Pearson r| over layers, distance vs overlap at the last record", ("compute",)),
        Claim("self_similarity_below_one_early", ("Fig 5",),
              "Early in training an image passes through different units from epoch to epoch (self-similarity < 1)",
              "fraction of images with self-similarity below `perfect` at the first record (weakest layer)", ("compute",)),
        Claim("self_similarity_rises_to_one", ("Fig 5",),
              "Self-similarity approaches 1 late in training",
              "mean self-similarity at the last record (weakest layer)", ("compute",)),
        Claim("self_similarity_constant_lr", ("Fig 5",),
              "Control: self-similarity rises towards 1 at a constant learning rate, not only through the LR decay",
              "mean self-similarity at the end of the constant-LR stretch (weakest layer)", ("compute",)),
        Claim("neighbours_change", ("Fig 6",),
              "The nearest neighbours of an image by path overlap change during training",
              "fraction of baseline images whose nearest neighbour changes", ("compute",)),
        Claim("activation_neighbours_change", ("App. E",),
              "Ranked by activation similarity, the nearest neighbours change too",
              "fraction of baseline images whose nearest neighbour changes", ("compute",)),
        Claim("ratio_predicts_generalization", ("Fig 7",),
              "The early/mid cross-path ratio relates roughly linearly to generalization across models",
              "Pearson r between the early/mid ratio and the final test accuracy over runs", ("summary",), "pooled"),
    ),
    estimate="gendyn.paths.stage:estimate",
)  # fmt: skip
