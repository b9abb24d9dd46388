"""The reproduction index: one row per claim of every paper figure, verdicts from the results.

Claims live with their measure (``gendyn.<measure>.claims``, registered in each measure's
``spec.py`` as :class:`gendyn.registry.Claim`); this package holds what they share:

* :mod:`gendyn.reproduction.core` — :class:`Evidence` / :class:`RunResult` (what a claim
  reads), :class:`Outcome` (what it returns), the verdicts and the grading helpers
  (:func:`per_run`, :func:`trend`);
* :mod:`gendyn.reproduction.declare` — which experiments, runs and neurashed studies declare
  each figure (``reproduces`` in the config), light;
* :mod:`gendyn.reproduction.engine` — :func:`build_index` and :func:`write_index`;
* :mod:`gendyn.reproduction.table` — the columns and :func:`verdicts` (rows of given figures,
  e.g. for a caption), light;
* :mod:`gendyn.reproduction.cli` — ``gendyn reproduce RESULTS_DIR OUT.csv``.

``docs/reproduction.md`` lists every claim, its statistic and thresholds.
"""

from __future__ import annotations

from gendyn._lazy import lazy_exports

_MODULES = {
    "core": ("Evidence", "RunResult", "Outcome", "VERDICTS", "per_run", "trend", "spearman"),
    "declare": ("declarations", "active_studies"),
    "engine": ("build_index", "write_index", "render_html"),
    "table": ("COLUMNS", "read_index", "verdicts"),
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _MODULES)
