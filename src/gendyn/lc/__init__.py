"""Local complexity of a network's linear regions (paper 001), exact 2-D region maps, PGD robustness.

Public names (imported lazily, so ``import gendyn.lc`` stays light):

* maths (:mod:`gendyn.lc.complexity`, :mod:`gendyn.lc.regions`, :mod:`gendyn.lc.robust`) —
  :func:`local_complexity`, :func:`orthonormal_directions`, :func:`region_map`,
  :func:`region_count`, :func:`raster_regions`, :func:`anchor_plane`, :func:`local_plane`,
  :func:`pattern_hashes`, :func:`robust_accuracy`, :func:`pgd_attack`, :func:`model_logits`;
* stages (:mod:`gendyn.lc.stage`): run files → analysis datasets;
* figures (:mod:`gendyn.lc.figures`); CLI (:mod:`gendyn.lc.cli`); registry entry
  (:mod:`gendyn.lc.spec`).
"""

from __future__ import annotations

from gendyn._lazy import lazy_exports

_MODULES = {
    "complexity": ("SITE_TYPES", "LINEAR_TYPES", "Site", "find_sites", "orthonormal_directions", "local_complexity", "model_logits"),
    "regions": ("Plane", "anchor_plane", "local_plane", "RegionMap", "region_map", "raster_regions", "region_count", "pattern_hashes"),
    "robust": ("pgd_attack", "robust_accuracy"),
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _MODULES)
