"""Neurashed: the graphical model of paper 002 (Sec. 2) and its three phenomena (Sec. 3).

Public names (imported lazily, so ``import gendyn.neurashed`` stays light):

* graphs (:mod:`gendyn.neurashed.graphs`) — :class:`Graph`, :func:`builtin_graph`, ``GRAPHS``;
* simulator (:mod:`gendyn.neurashed.simulator`) — :class:`Neurashed`, :class:`Rule`;
* mutual information (:mod:`gendyn.neurashed.information`) — :func:`mutual_information`;
* phenomena (:mod:`gendyn.neurashed.phenomena`) — :func:`implicit_regularization` (Fig. 3),
  :func:`information_bottleneck` (Fig. 4), :func:`elasticity_experiment` (Sec. 3);
* stage (:mod:`gendyn.neurashed.stage`): :func:`~gendyn.neurashed.stage.simulate`, one
  phenomenon for several seeds;
* figures (:mod:`gendyn.neurashed.figures`); CLI (:mod:`gendyn.neurashed.cli`); registry
  entry (:mod:`gendyn.neurashed.spec`).
"""

from __future__ import annotations

from gendyn._lazy import lazy_exports

_MODULES = {
    "graphs": ("Graph", "GRAPHS", "builtin_graph"),
    "simulator": ("Rule", "Neurashed"),
    "information": ("mutual_information",),
    "phenomena": ("implicit_regularization", "information_bottleneck", "elasticity_experiment"),
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _MODULES)
