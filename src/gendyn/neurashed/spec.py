"""Registry entry of the neurashed simulator (paper 002); light, no torch.

Neurashed studies are not training experiments: their settings live under the top-level
``neurashed`` key and their outputs under ``results/neurashed/<study>/``; the figure set's
``experiment`` is the study.
"""

from __future__ import annotations

from gendyn.registry import Claim, FigureInfo, Measure, Stage

_HEAD = "Neurashed simulator, study ``{experiment}`` (paper 002; the graphs are the project's concrete readings of the paper's drawings). "

#: Simulated phenomena, each one stage output ``{phenomenon}.nc``.
PHENOMENA = ("implicit_regularization", "information_bottleneck", "local_elasticity")

MEASURE = Measure(
    "neurashed", "002", "neurashed simulator", figure_keys=(),
    stages=tuple(Stage(p, f"{p}.nc") for p in PHENOMENA),
    figures=(
        FigureInfo(
            "fig1_graph",
            "neurashed graph",
            _HEAD + "The graph ``fig1``, a neurashed imitating a four-layer network for three classes; levels are "
            "rows (level 1 = input features at the bottom, class nodes on top), lines join a node to the "
            "lower-level features it depends on.",
            scope="experiment",
            shows=("Fig 1",),
        ),
        FigureInfo(
            "fig2_pathways",
            "feature pathways",
            _HEAD + "The feature pathway (firing nodes, vermillion) of each sample type of ``fig1``. Types 1a and 1b "
            "(class 1) share almost their whole pathway; type 2 shares low-level features with class 1; type 3 is "
            "disjoint from class 1.",
            scope="experiment",
            shows=("Fig 2",),
        ),
        FigureInfo(
            "fig3_implicit_regularization",
            "implicit regularization",
            _HEAD + "Implicit regularisation: one class with two pathways P1, P2 sharing level-1 nodes 2, 3 and node "
            "h; g+(λ) = {ir_a} λ for firing nodes, g-(λ) = {ir_b} λ for the others, {ir_steps} steps. Small batch: "
            "one pathway per step; large batch: both fire in every step. Bottom left: the learned models of the "
            "first seed (node area proportional to the amplification factor, per level). Right: the share of the "
            "shared nodes 2, 3 in the level-1 amplification and the participation ratio of level 1 over steps; "
            "mean over {seeds}, band min-max. Small batches concentrate the model on the shared features (share -> "
            "1); large batches grow every firing node alike (share constant).",
            scope="experiment",
            shows=("Fig 3",),
        ),
        FigureInfo(
            "fig4_information_bottleneck",
            "information bottleneck",
            _HEAD + "Left: a class-1 pathway of the binary graph ``fig4`` (D, D' fire when two or more of their "
            "inputs fire). Middle and right: the information plane of levels 1 and 2, I(X; T) against I(Y; T) in "
            "bits, where T are the level's scores normalised by max(max|S|, {ib_s0}) plus Gaussian noise of std "
            "{ib_sigma} ({ib_draws} Monte-Carlo draws per type); g+ = {ib_base}^{ib_plus} λ (dominant nodes "
            "{ib_base}^{ib_dom} λ), g- = {ib_base}^{ib_minus} λ, batch 1, {ib_steps} steps, {seeds}. Each seed is "
            "one trajectory from its start (open circle) to its end (square), arrows in the direction of training, "
            "steps of the first seed written beside it. Level 2 first gains information about the input (fitting), "
            "then loses it down to the label's 1 bit (compression) as the dominant nodes outgrow the others.",
            scope="experiment",
            shows=("Fig 4",),
        ),
        FigureInfo(
            "elasticity",
            "local elasticity",
            _HEAD + "The local-elasticity argument of Sec. 3 (no figure in the paper): after training ``fig1`` for "
            "{le_steps} steps (g+ = {le_a} λ, g- = {le_b} λ, batch 1), one step on type 1a changes the logits of "
            "type 1b most, of type 2 less, and of type 3 (disjoint pathway) hardly at all. Dots: {seeds}; bars: "
            "their median.",
            scope="experiment",
            shows=("Sec. 3",),
        ),
    ),
    claims=(
        Claim("graph_structure", ("Fig 1",), "A neurashed imitating a four-layer network for three classes",
              "levels and classes of graph fig1"),
        Claim("pathways", ("Fig 2",), "Types 1a and 1b share almost their whole pathway; type 3 is disjoint from class 1",
              "Jaccard index of the pathways of 1a and 1b"),
        Claim("small_batch_concentrates", ("Fig 3",), "Small batches concentrate the model on the shared features",
              "final share of the shared nodes, batch 1 (median over seeds)", ("implicit_regularization",)),
        Claim("large_batch_uniform", ("Fig 3",), "Large batches grow every firing node alike",
              "largest change of the shared-node share, large batch", ("implicit_regularization",)),
        Claim("information_bottleneck", ("Fig 4",), "Level 2 first fits, then compresses to the label's 1 bit",
              "max I(X;T2) - final I(X;T2) in bits (median over seeds)", ("information_bottleneck",)),
        Claim("local_elasticity_ordering", ("Sec. 3",), "A step on 1a moves 1b most, 2 less, 3 hardly at all",
              "fraction of seeds with LE(1b) > LE(2) > LE(3) ~ 0", ("local_elasticity",)),
    ),
)  # fmt: skip
