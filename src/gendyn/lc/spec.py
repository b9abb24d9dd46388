"""Registry entry of the local-complexity measure (paper 001); light, no torch."""

from __future__ import annotations

from gendyn.registry import FigureInfo, Measure, Stage

_LC = (
    "LC of a point is the number of ReLU units whose boundary cuts its neighbourhood: the "
    "cross-polytope spanned by ±r along P seeded orthonormal directions, the same for every point "
    "and checkpoint; a unit counts when its pre-activation is > 0 at one of the 2P vertices and ≤ 0 "
    "at another (summed over layers)."
)

MEASURE = Measure(
    "lc", "001", "local complexity", settings="lc", run_analysis="lc",
    stages=(
        Stage("compute", "analysis/lc/{run}.nc"),
        Stage("regions", "analysis/regions/{run}.nc", keys=("regions", "radii", "n_directions", "seed", "points_seed"),
              exclusive=("regions",)),
        Stage("robust", "analysis/robust/{run}.nc", keys=("robust", "device"), exclusive=("robust",)),
    ),
    figures=(
        FigureInfo(
            "dynamics",
            "Figs 2, 9",
            "LC dynamics",
            "Local complexity (LC) over training of run ``{run}`` of experiment ``{experiment}`` (paper 001, "
            "Fig. 2; for a grokking run, α-scaled initialisation, Fig. 9). " + _LC + " Lines: mean over the "
            "fixed training points (purple), test points (orange) and uniform random inputs (blue), shaded "
            "± 0.25 standard deviation (``figures.band``); dashed, right axis: train (red) and test (green) "
            "accuracy. The radius is ``figures.radius`` (default the largest configured one); x = optimisation "
            "step + 1, log scale. The paper reports a first descent, an ascent around training points while the "
            "training accuracy saturates, and a second descent late in training.",
        ),
        FigureInfo(
            "layers",
            "Figs 13-14",
            "LC per layer",
            "Layer-wise local complexity LC_l of run ``{run}`` of experiment ``{experiment}`` (paper 001, "
            "Figs. 13-14): one panel per ReLU layer in forward order, the mean over training (purple), test "
            "(orange) and random (blue) points of the number of that layer's units whose pre-activation changes "
            "sign among the 2P neighbourhood vertices, at radius ``figures.radius``. The paper finds sharper "
            "ascent peaks and train ≠ test in shallow layers, train ≈ test in deep layers.",
        ),
        FigureInfo(
            "regions",
            "Fig 1",
            "exact region maps",
            "Exact linear regions of run ``{run}`` of experiment ``{experiment}`` on the 2-D plane through "
            "three training images of different classes (white dots, labelled by class), at log-spaced "
            "checkpoints (paper 001, Fig. 1, computed SplineCAM-like without graph-tool). The triangle they "
            "span, enlarged by 20 %, is split exactly, layer by layer, along every ReLU's zero line and every "
            "max-pool argmax change; thin black lines are region boundaries, faces are coloured by the "
            "predicted class, red lines are the decision boundary. The panel titles give the region count. "
            "The paper reports regions dense everywhere at initialisation, concentrating around training "
            "points during the ascent and migrating to the decision boundary in the final descent.",
        ),
        FigureInfo(
            "regions_vs_lc",
            "Fig 12",
            "exact regions vs LC",
            "Exact region count versus LC over training for run ``{run}`` of experiment ``{experiment}`` "
            "(paper 001, Fig. 12). For a few seeded training points, black: the exact number of linear regions "
            "in the local square x + u·r v_1 + v·r v_2, (u, v) ∈ [-1, 1]², spanned by the first two LC "
            "directions; purple, right axis: LC at the same points and radius (P-dimensional cross-polytope). "
            "Means over the points with ± 0.25 standard deviation; x = step + 1, log scale. Both measures should "
            "follow the same descent-ascent-descent trend.",
        ),
        FigureInfo(
            "robust",
            "R1",
            "robustness",
            "Adversarial robustness over training for run ``{run}`` of experiment ``{experiment}`` (paper 001 "
            "code, R1). Black, right axis: accuracy on a seeded subset of test images under an l∞ PGD attack "
            "(cross-entropy on the logits, no random start, projection onto the ε-ball and clamping to the data "
            "range after each step; ε, step size and iterations from ``analyses.lc.robust``); dashed green: "
            "clean accuracy of the same images. Left axis: mean LC of training, test and random points as in "
            "the dynamics figure. The authors report that robustness emerges late, with the second LC descent.",
        ),
        FigureInfo(
            "sweep",
            "Figs 3-8, 10, 11",
            "LC across the sweep",
            "Local complexity dynamics of every run of experiment ``{experiment}`` (one column per run, "
            "labelled by its swept values from ``runs.csv``; one row per radius of ``figures.sweep_radii``, "
            "default every configured radius). Each panel: mean LC of training (purple), test (orange) and "
            "random (blue) points ± 0.25 standard deviation, train (red) and test (green) accuracy dashed on "
            "the right axis, x = step + 1 on a log scale. Depending on the sweep this reproduces paper 001's "
            "depth (Fig. 3, fine and coarse radius), CNN depth ± BatchNorm (Fig. 4), ResNet-18 ± BatchNorm "
            "(Fig. 5), width (Fig. 6), weight decay (Fig. 7), grokking depth (Fig. 8) and training-set size with "
            "true (Fig. 10) or random labels (Fig. 11).",
            scope="experiment",
        ),
    ),
    estimate="gendyn.lc.stage:estimate",
)  # fmt: skip
