"""Local elasticity (paper 002): exact batched LE engines, pair summaries, LE clustering.

Public names (imported lazily, so ``import gendyn.elasticity`` stays light):

* engines (:mod:`gendyn.elasticity.engines`, built on :mod:`~gendyn.elasticity.common`,
  :mod:`~gendyn.elasticity.rank1`, :mod:`~gendyn.elasticity.relu_chain`,
  :mod:`~gendyn.elasticity.vmap`) — :func:`local_elasticity`, the naive oracle
  :func:`local_elasticity_loop`, :class:`ElasticityParts`, :func:`logits_module`,
  :func:`rank1_supported`, :data:`DEFAULT_DEN_EPS`;
* summaries (:mod:`gendyn.elasticity.summary`) — :func:`pair_summary`;
* clustering (:mod:`gendyn.elasticity.clustering`) — :func:`affinity`, :func:`cluster_le`,
  :func:`cluster_baselines`, :func:`hungarian_accuracy`, :func:`kernel_kmeans`,
  :class:`ClusterResult`;
* He & Su's protocol (:mod:`gendyn.elasticity.he_su`) — :func:`he_su_similarity` (ripple and
  kernel forms at fixed weights), :func:`he_su_train`, :func:`he_su_output`, :func:`he_su_loss`,
  :class:`HeSuSimilarity`;
* stages (:mod:`gendyn.elasticity.stage`): run files → analysis datasets;
* figures (:mod:`gendyn.elasticity.figures`); CLI (:mod:`gendyn.elasticity.cli`); registry
  entry (:mod:`gendyn.elasticity.spec`).
"""

from __future__ import annotations

from gendyn._lazy import lazy_exports

_MODULES = {
    "common": ("DEFAULT_DEN_EPS", "ElasticityParts", "logits_module", "_same_pairs"),
    "engines": ("local_elasticity", "local_elasticity_loop"),
    "rank1": ("rank1_supported", "_Rank1MLP", "_rank1_ops"),
    "summary": ("pair_summary",),
    "clustering": ("affinity", "cluster_le", "cluster_baselines", "hungarian_accuracy", "kernel_kmeans", "ClusterResult"),
    "he_su": ("he_su_similarity", "he_su_train", "he_su_output", "he_su_loss", "HeSuSimilarity"),
    "relu_chain": ("_ReluChain",),
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _MODULES)
