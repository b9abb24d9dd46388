"""Image functions (paper 000): ReLU path similarity between images and over training.

Public names (imported lazily, so ``import gendyn.paths`` stays light):

* definitions (:mod:`gendyn.paths.similarity`) — :func:`cross_path_similarity`,
  :func:`cross_path_counts`, :func:`self_similarity`, :func:`activation_similarity`,
  :func:`activation_cosine`, :func:`path_overlap`;
* statistics (:mod:`gendyn.paths.stats`) — :func:`input_distances`,
  :func:`overlap_distance_stats`, :func:`neighbour_ranks`, :func:`rank_changes`,
  :func:`early_mid_ratio`, :class:`StageRatio`, :func:`histogram_quantiles`;
* the out-of-core Gram engine (:mod:`gendyn.paths.gram`) — :class:`BlockPlan`, :func:`plan_blocks`;
* whole-run streaming (:mod:`gendyn.paths.streaming`) — :func:`cross_path_dataset`,
  :class:`CrossPathOptions`, :class:`CrossPathResult`;
* ``record_bn: batch`` masks (:mod:`gendyn.paths.masks`) — :func:`batch_stat_masks`;
* stages (:mod:`gendyn.paths.stage`): run files → analysis datasets; figures
  (:mod:`gendyn.paths.figures`); CLI (:mod:`gendyn.paths.cli`); registry entry
  (:mod:`gendyn.paths.spec`).
"""

from __future__ import annotations

from gendyn._lazy import lazy_exports

_MODULES = {
    "similarity": ("Norm", "cross_path_similarity", "cross_path_counts", "self_similarity", "activation_similarity", "activation_cosine", "path_overlap"),
    "stats": ("input_distances", "overlap_distance_stats", "neighbour_ranks", "rank_changes", "early_mid_ratio", "StageRatio", "histogram_quantiles"),
    "gram": ("BlockPlan", "plan_blocks"),
    "streaming": ("cross_path_dataset", "CrossPathOptions", "CrossPathResult"),
    "masks": ("batch_stat_masks",),
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _MODULES)
