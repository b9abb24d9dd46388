"""Memorization via gradient splitting (paper 003, Badger: "Why deep learning generalizes").

Public names (imported lazily, so ``import gendyn.memorization`` stays light):

* objectives (:mod:`gendyn.memorization.objectives`) — :func:`objective`,
  :func:`objective_from_config`, :class:`Objective`, :func:`faithful_loss_floor`,
  ``OBJECTIVE_NAMES``, ``LOSS_MODES``, ``GATES``;
* training strategy (:mod:`gendyn.memorization.training`) — :class:`SplitTraining` (used by
  :mod:`gendyn.train` for runs with ``training.objective``), :func:`has_batchnorm`,
  :func:`first_weight`;
* noise inputs (:mod:`gendyn.memorization.noise`) — :func:`gaussian_noise`, :func:`mixture`;
* experiment numbers (:mod:`gendyn.memorization.summary`) — :func:`epochs_to_threshold`,
  :func:`epoch_curves`, :func:`stack_epochs`, :func:`summarize`, :func:`basin_ratio_log10`;
* stage (:mod:`gendyn.memorization.stage`): an experiment's runs → ``summary.nc``;
* figures (:mod:`gendyn.memorization.figures`); CLI (:mod:`gendyn.memorization.cli`);
  registry entry (:mod:`gendyn.memorization.spec`).
"""

from __future__ import annotations

from gendyn._lazy import lazy_exports

_MODULES = {
    "objectives": ("OBJECTIVE_NAMES", "LOSS_MODES", "GATES", "Objective", "objective", "objective_from_config", "faithful_loss_floor"),
    "training": ("SplitTraining", "has_batchnorm", "first_weight"),
    "noise": ("gaussian_noise", "mixture"),
    "summary": ("epochs_to_threshold", "epoch_curves", "stack_epochs", "summarize", "basin_ratio_log10"),
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _MODULES)
