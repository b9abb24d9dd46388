"""Registry entry of the local-complexity measure (paper 001); light, no torch."""

from __future__ import annotations

from gendyn.registry import Claim, FigureInfo, Measure, Stage

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
            "LC dynamics",
            "Local complexity (LC) over training of run ``{run}`` of experiment ``{experiment}``. " + _LC + " Here "
            "P = {P} and r = {radius} (radii computed: {radii}). Solid lines: mean over {n_train} fixed training "
            "points (blue), {n_test} test points (vermillion) and {n_random} uniform random inputs (green), shaded "
            "± {band} standard deviation over points; dashed, right axis: training (blue) and test (vermillion) "
            "accuracy. x = {x_axis}. The paper (Fig 2; with an α-scaled initialisation, grokking, Fig 9) reports "
            "a first descent, an ascent around the training points while the training accuracy saturates, and a "
            "second descent late in training.",
            shows=("Fig 2", "Fig 9"),
        ),
        FigureInfo(
            "layers",
            "LC per layer",
            "Layer-wise local complexity LC_l of run ``{run}`` of experiment ``{experiment}``: one panel per ReLU "
            "layer in forward order, the mean over the {n_train} training (blue), {n_test} test (vermillion) and "
            "{n_random} random (green) points of the number of that layer's units whose pre-activation changes "
            "sign among the 2P = 2 x {P} neighbourhood vertices, at r = {radius}; x = {x_axis}. The paper (Figs "
            "13-14) finds sharper ascent peaks and train ≠ test in shallow layers, train ≈ test in deep layers.",
            shows=("Fig 13", "Fig 14"),
        ),
        FigureInfo(
            "regions",
            "exact region maps",
            "Exact linear regions of run ``{run}`` of experiment ``{experiment}`` on the 2-D plane through three "
            "training images of different classes (white dots, labelled by class), at {region_records} "
            "log-spaced checkpoints (computed SplineCAM-like, without graph-tool). The triangle they span, "
            "enlarged by 20 %, is split exactly, layer by layer, along every ReLU's zero line and every max-pool "
            "argmax change; thin black lines are region boundaries, faces are coloured by the predicted class "
            "(legend), red lines are the decision boundary; panel titles give the step and the region count. "
            "The paper reports regions dense everywhere at initialisation, concentrating around training points "
            "during the ascent and migrating to the decision boundary in the final descent.",
            shows=("Fig 1",),
        ),
        FigureInfo(
            "regions_vs_lc",
            "exact regions vs LC",
            "Exact region count versus LC over training for run ``{run}`` of experiment ``{experiment}``. For "
            "{local_points} seeded training points x, black (left axis): the exact number of linear regions in the "
            "local square x + u r v_1 + v r v_2, (u, v) in [-1, 1]², spanned by the first two LC directions at r "
            "= {local_radius}; blue (right axis): LC at the same points and radius (P = {P}-dimensional "
            "cross-polytope). Means over the points, shaded ± 0.25 standard deviation; x = {x_axis}. Both "
            "measures should follow the same descent-ascent-descent trend (paper Fig 12).",
            shows=("Fig 12",),
        ),
        FigureInfo(
            "robust",
            "robustness",
            "Adversarial robustness over training for run ``{run}`` of experiment ``{experiment}`` (R1: the "
            "authors' code). Black, right axis: accuracy on {pgd_points} seeded test images under an l∞ PGD "
            "attack with ε = {eps}, step {alpha} and {pgd_steps} iterations (cross-entropy on the logits, no "
            "random start, projection onto the ε-ball and clamping to the data range after each step); dashed "
            "vermillion: clean accuracy of the same images. Left axis: mean LC of training, test and random points "
            "at r = {radius} as in the dynamics figure (± 0.25 standard deviation). x = {x_axis}. The authors "
            "report that robustness emerges late, with the second LC descent.",
            shows=("R1",),
        ),
        FigureInfo(
            "sweep",
            "LC across the sweep",
            "Local complexity dynamics of every run of experiment ``{experiment}``: one column per configuration, "
            "titled by its swept values, one row per radius ({sweep_radii}). Each panel: mean LC of training "
            "(blue), test (vermillion) and random (green) points ± {band} standard deviation over points, "
            "training and test accuracy dashed on the right axis; x = {x_axis}. {seeds} (LC: the points of all "
            "seeds pooled.) Depending on the sweep this is paper 001's depth (Fig 3, fine and coarse radius), CNN "
            "depth ± BatchNorm (Fig 4), ResNet-18 ± BatchNorm (Fig 5), width (Fig 6), weight decay (Fig 7), "
            "grokking depth (Fig 8) or training-set size with true (Fig 10) or random labels (Fig 11).",
            scope="experiment",
            shows=("Fig 3", "Fig 4", "Fig 5", "Fig 6", "Fig 7", "Fig 8", "Fig 10", "Fig 11"),
        ),
    ),
    claims=(
        Claim("first_descent", ("Fig 2",), "LC around training points first decreases after initialisation",
              "1 - min LC up to the ascent peak / LC at step 0", ("compute",)),
        Claim("ascent", ("Fig 2",), "LC then rises again (the ascent)",
              "largest rise of the LC curve, peak / trough", ("compute",)),
        Claim("second_descent", ("Fig 2",), "LC falls again after the ascent until the end of training (second descent)",
              "1 - LC at the last record / LC at the ascent peak", ("compute",)),
        Claim("grokking_delayed_generalization", ("Fig 9",),
              "Grokking: train accuracy saturates early, test accuracy jumps much later",
              "(step of the test-accuracy jump + 1) / (step train acc saturates + 1)", ("compute",)),
        Claim("grokking_second_ascent", ("Fig 9",), "Grokking: LC rises again just before the test accuracy jumps",
              "largest relative LC rise in the decade of steps before the jump", ("compute",)),
        Claim("no_first_descent", ("Fig 8",), "Grokking initialisation: the first descent is almost absent",
              "first-descent depth of the LC curve", ("compute",)),
        Claim("grok_depth_raises_peak", ("Fig 8",), "Grokking: deeper networks reach a higher ascent peak",
              "Spearman rho of depth vs peak LC", ("compute",)),
        Claim("region_migration", ("Fig 1",),
              "In the final descent linear regions migrate from the training points to the decision boundary",
              "rise of the share of regions nearer the decision boundary than any anchor, LC peak to end", ("compute", "regions")),
        Claim("regions_track_lc", ("Fig 12",), "Exact local region counts and LC follow the same trend",
              "Spearman rho of mean exact local region count vs mean LC over records", ("regions",)),
        Claim("shallow_layers_sharper", ("Fig 13", "Fig 14"), "Shallow layers have a sharper ascent peak than deep layers",
              "ascent (peak / trough) of the first ReLU layer / of the last", ("compute",)),
        Claim("shallow_layers_train_test_gap", ("Fig 13", "Fig 14"),
              "Train and test LC differ in shallow layers and agree in deep layers",
              "mean relative train-test LC gap, first ReLU layer minus last", ("compute",)),
        Claim("delayed_robustness", ("R1",), "Adversarial robustness emerges late, after the clean accuracy saturates",
              "PGD robust accuracy at the end minus at clean-accuracy saturation", ("robust",)),
        Claim("depth_flattens_ascent", ("Fig 3",), "Deeper MLPs have a lower, flatter ascent",
              "Spearman rho of depth vs ascent", ("compute",)),
        Claim("bn_removes_second_descent", ("Fig 4", "Fig 5"), "Batch normalisation largely removes the second descent",
              "mean second-descent depth without BN minus with BN", ("compute",)),
        Claim("bn_raises_lc", ("Fig 4", "Fig 5"), "Batch normalisation raises LC throughout training",
              "mean LC with BN / without BN", ("compute",)),
        Claim("cnn_depth_raises_peak", ("Fig 4",), "For CNNs without BN, depth raises the ascent peak",
              "Spearman rho of depth vs peak LC", ("compute",)),
        Claim("width_first_descent", ("Fig 6",), "Narrow networks show no first descent; it deepens with width",
              "Spearman rho of width vs first-descent depth", ("compute",)),
        Claim("weight_decay_lowers_peak", ("Fig 7",), "Stronger weight decay lowers the ascent peak",
              "Spearman rho of weight decay vs peak LC", ("compute",)),
        Claim("data_shrinks_ascent", ("Fig 10",), "With true labels more training data shrinks the ascent",
              "Spearman rho of training-set size vs ascent", ("compute",)),
        Claim("random_labels_data_raises_peak", ("Fig 11",), "With random labels more training data raises the LC peak",
              "Spearman rho of training-set size vs peak LC", ("compute",)),
    ),
    estimate="gendyn.lc.stage:estimate",
)  # fmt: skip
