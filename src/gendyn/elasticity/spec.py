"""Registry entry of local elasticity (paper 002); light, no torch."""

from __future__ import annotations

from gendyn.registry import FigureInfo, Measure, Stage

MEASURE = Measure(
    "elasticity", "002", "local elasticity", settings="elasticity", run_analysis="elasticity", resource_keys=("gpu",),
    stages=tuple(Stage(name, f"analysis/elasticity/{out}.nc") for name, out in (
        ("run", "{run}"), ("histograms", "histograms/{run}"), ("he-su", "he_su"),
    )),
    figures=(
        FigureInfo(
            "classes",
            "class pairs",
            "LE between classes",
            "Class-pair local elasticity of run ``{run}`` of experiment ``{experiment}`` (project extension): entry "
            "(i, j) is the median (or mean, see the colour-bar label) of ``LE(x, x')`` over pairs of tracked "
            "training images with update image ``x`` of class i and probe ``x'`` of class j (the same image "
            "excluded), at the first (left) and the last (right) record point. LE is heavy-tailed, so medians are "
            "the default. A bright diagonal is local elasticity by class; the paper's Fig. 5 shows the same effect "
            "as histograms on three ImageNet classes.",
        ),
        FigureInfo(
            "histograms",
            "Fig 5",
            "LE histograms",
            "Reproduces paper 002, Fig. 5 (VGG-19 on brown bear / leopard / tiger) for ``{experiment}`` / ``{run}`` "
            "(\"pretrained\": weights read from the file given in ``analyses.elasticity.pretrained.weights``; "
            "otherwise the run's final checkpoint). Each panel is one update class: one plain SGD step on an image "
            "``x`` of that class (cross-entropy on its true label), and the histogram of ``LE(x, x')`` over probe "
            "images ``x'`` of each class (colours), on [0, 1]; pairs with LE > 1 are counted in the legend. Local "
            "elasticity shows as probe classes similar to the update class lying to the right (paper: leopard and "
            "tiger updates move both felines more than bears).",
        ),
        FigureInfo(
            "training",
            "LE over training",
            "LE over training",
            "Local elasticity over training (paper 002 extension, after He & Su 2020) for every run of experiment "
            "``{experiment}``. At every record point with saved weights, one plain SGD step (batch 1, no momentum, "
            "eval mode) is taken on each tracked training image ``x`` alone and ``LE(x, x') = ||z(x', w+) - z(x', "
            "w)|| / ||z(x, w+) - z(x, w)||`` is measured on the logits of every other tracked training image ``x'`` "
            "(``analysis/elasticity/<run>.nc``; the step size and form are in the title). Left: mean LE over "
            "same-class pairs (solid) and different-class pairs (dashed); right: their ratio R = within / between "
            "for means (solid) and medians (dotted). R > 1 means an update moves same-class predictions more than "
            "others, the local elasticity of trained nonlinear networks. The paper itself measures LE only on a "
            "pretrained VGG-19 (Fig. 5).",
            scope="experiment",
        ),
        FigureInfo(
            "clustering",
            "LE clustering",
            "LE clustering",
            "LE clustering of the tracked training images of every run of experiment ``{experiment}`` over training "
            "(project extension after He & Su 2020; the paper reports no clustering). The affinity ``W = (LE + "
            "LE^T) / 2`` (diagonal 1, NaN as 0) is clustered into as many clusters as classes (method in the "
            "legend); left: accuracy after Hungarian matching of clusters to classes, right: adjusted Rand index. "
            "Dashed / dotted lines: K-means on the pixels and on their 50-d PCA. This uses the labels only for "
            "scoring, but the network was trained with them: a supervised diagnostic, not He & Su's unsupervised "
            "protocol. The numbers are in ``clustering.csv`` beside the figure.",
            scope="experiment",
        ),
    ),
    estimate="gendyn.elasticity.stage:estimate",
)  # fmt: skip
