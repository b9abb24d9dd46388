"""Registry entry of local elasticity (paper 002); light, no torch."""

from __future__ import annotations

from gendyn.registry import Claim, FigureInfo, Measure, Stage

MEASURE = Measure(
    "elasticity", "002", "local elasticity", settings="elasticity", run_analysis="elasticity", resource_keys=("gpu",),
    stages=tuple(Stage(name, f"analysis/elasticity/{out}.nc") for name, out in (
        ("run", "{run}"), ("histograms", "histograms/{run}"), ("he-su", "he_su"),
    )),
    figures=(
        FigureInfo(
            "classes",
            "LE between classes",
            "Class-pair local elasticity of run ``{run}`` of experiment ``{experiment}`` (project extension), at the "
            "first (left) and the last (right) record point. One plain SGD step (batch 1, step size η = {lr}, "
            "{form} LE) on a tracked training image x of class i moves the logits of a tracked training image x' "
            "of class j by LE(x, x'); the raw matrix is the {matrix_stat} of LE over such pairs ({n_per_class} "
            "images per class, the same image excluded). Raw LE is dominated by probe classes whose logits move "
            "under any update and by update classes whose step moves every logit, so each entry is shown relative "
            "to what its row and column predict alone (A_ij x mean(A) / (row mean x column mean)): 1 = no "
            "preference (white), > 1 red. A red diagonal (outlined) is local elasticity by class; the panel "
            "titles give the mean of the diagonal and of the off-diagonal entries. The paper's Fig 5 shows the "
            "same effect as histograms on three ImageNet classes.",
        ),
        FigureInfo(
            "histograms",
            "LE histograms",
            "Paper 002 Fig 5 (VGG-19 on brown bear / leopard / tiger) for ``{experiment}`` / ``{run}`` (run "
            "``pretrained``: weights read from a user file; otherwise the run's final checkpoint), on the classes "
            "{hist_classes} with {hist_n} images each. Each panel is one update class: one plain SGD step "
            "(cross-entropy on the true label, step size η = {hist_lr}) on an image x of that class, and the "
            "histogram of LE(x, x') over the probe images x' of each class (colours), in bins of width "
            "{bin_width} on [0, 1] as in the paper; pairs with LE > 1 are the hatched overflow bin right of the "
            "break, their count written above it. Local elasticity shows as probe classes similar to the update "
            "class lying to the right (paper: leopard and tiger updates move both felines more than bears).",
            shows=("Fig 5",),
        ),
        FigureInfo(
            "training",
            "LE over training",
            "Local elasticity over training (project extension, after He & Su 2020) for every run of experiment "
            "``{experiment}``. At every record point with saved weights, one plain SGD step (batch 1, no momentum, "
            "eval mode, step size η = {lr}, {form} LE) is taken on each tracked training image x alone and LE(x, "
            "x') = ||z(x', w+) - z(x', w)|| / ||z(x, w+) - z(x, w)|| is measured on the logits of every other "
            "tracked training image x' ({n_per_class} per class). Left: mean LE over same-class (orange) and "
            "different-class (sky blue) pairs; right: their ratio R = within / between for means (solid) and "
            "medians (dotted). R > 1 means an update moves same-class predictions more than others, the local "
            "elasticity of trained nonlinear networks. The paper itself measures LE only on a pretrained VGG-19 "
            "(Fig 5).",
            scope="experiment",
        ),
        FigureInfo(
            "clustering",
            "LE clustering",
            "LE clustering of the tracked training images of every run of experiment ``{experiment}`` over "
            "training (project extension after He & Su 2020; the paper reports no clustering). The affinity W = "
            "(LE + LE^T) / 2 (diagonal 1, NaN as 0) is clustered into as many clusters as classes ({cluster_method} "
            "clustering); left: accuracy after Hungarian matching of clusters to classes, right: adjusted Rand "
            "index. Horizontal lines: K-means on the pixels (grey dashed) and on their {pca_dims}-d PCA (black "
            "dotted), which do not change with training; their values are in the legend (equal values overlap). "
            "The labels are used only for scoring, but the network was trained with them: a supervised "
            "diagnostic, not He & Su's unsupervised protocol. The numbers are in ``clustering.csv`` beside the "
            "figure.",
            scope="experiment",
        ),
    ),
    claims=(
        Claim("own_class_highest", ("Fig 5",),
              "An SGD step on one class moves that class's logits most (its LE histogram lies furthest right)",
              "fraction of update classes whose own class has the highest median LE", ("histograms",)),
        Claim("within_exceeds_between", ("Fig 5",), "LE is larger within a class than between classes",
              "median LE within classes / between classes", ("histograms",)),
    ),
    estimate="gendyn.elasticity.stage:estimate",
)  # fmt: skip
