"""The registry of measures: what each measure computes, draws and shows in shared views.

A measure is a package ``gendyn.<name>`` (maths, stage, figures, CLI) plus one light
``gendyn.<name>.spec`` module that declares a :class:`Measure`. Adding its name to
:data:`NAMES` registers it: the ``gendyn`` CLI adds its subcommand, the workflow builds its
figure jobs and finds its per-run analysis for the dashboard and the sweep comparison, and
the report files its figures under its paper. Nothing here imports torch or matplotlib
(Snakemake reads it while parsing the workflow).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

__all__ = ["Stage", "FigureInfo", "Measure", "NAMES", "measures", "get", "figure_set", "figure_info"]

Scope = Literal["run", "experiment"]

#: Registered measures, in paper order (000 → 003); neurashed is paper 002's simulator.
NAMES: tuple[str, ...] = ("paths", "lc", "elasticity", "neurashed", "memorization")


@dataclass(frozen=True)
class Stage:
    """One analysis stage of a measure: ``gendyn <measure> <name>`` → one netCDF file.

    Attributes
    ----------
    name : str
        CLI action and rule suffix (``compute``, ``regions``, ...).
    output : str
        Output path below ``results/{experiment}/``, with ``{run}`` for per-run stages.
    keys : tuple of str or None
        Settings keys whose values change this output (the rerun trigger); None = every key
        of the measure's settings except the figure keys and the ``exclusive`` keys of the
        measure's other stages.
    exclusive : tuple of str
        Keys only this stage reads (left out of the other stages' ``keys=None`` slices).
    """

    name: str
    output: str
    keys: tuple[str, ...] | None = None
    exclusive: tuple[str, ...] = ()


@dataclass(frozen=True)
class FigureInfo:
    """One figure a measure draws: the file stem, how the paper numbers it, its caption.

    ``caption`` is reStructuredText for the report; ``{...}`` fields are filled from the
    figure job's settings by :meth:`Measure.caption`.
    """

    name: str
    label: str
    title: str
    caption: str
    scope: Scope = "run"


@dataclass(frozen=True)
class Measure:
    """A registered measure.

    Attributes
    ----------
    name : str
        Package name, CLI subcommand and ``analyses`` key (``lc``).
    paper : str
        Paper number, ``"000"`` ... ``"003"``.
    title : str
        Short title (``local complexity``).
    settings : str or None
        Section for :func:`gendyn.config.stage_settings` (None: no experiment settings).
    figure_keys : tuple of str
        Settings keys that only change figures (rerun only figure jobs).
    resource_keys : tuple of str
        Settings keys that choose where a stage runs, not what it computes (no rerun).
    stages : tuple of Stage
        Analysis stages, each one netCDF output.
    run_analysis : str or None
        Per-run analysis folder (``analysis/<run_analysis>/{run}.nc``) that the run dashboard
        and the sweep comparison read, or None.
    figures : tuple of FigureInfo
        Every figure the measure can draw.
    estimate : str or None
        ``"module:function"`` of the size and memory estimator of the measure's stages, beside
        the code that writes them (``gendyn plan``): ``fn(settings, runs, *, experiment,
        budget_bytes) -> list of gendyn.plan.StageEstimate`` with ``runs`` the experiment's
        :class:`gendyn.plan.RunShape`; None: the plan lists no outputs for it.
    """

    name: str
    paper: str
    title: str
    settings: str | None = None
    figure_keys: tuple[str, ...] = ("figures",)
    resource_keys: tuple[str, ...] = ()
    stages: tuple[Stage, ...] = ()
    run_analysis: str | None = None
    figures: tuple[FigureInfo, ...] = field(default_factory=tuple)
    estimate: str | None = None

    @property
    def category(self) -> str:
        """Report category: ``Paper 001 - local complexity``."""
        return f"Paper {self.paper} - {self.title}"

    @property
    def scopes(self) -> tuple[Scope, ...]:
        """Scopes that have figures, run first."""
        return tuple(s for s in ("run", "experiment") if any(f.scope == s for f in self.figures))  # type: ignore[misc]

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"measure {self.name!r} has no stage {name!r}; stages: {[s.name for s in self.stages]}")

    def stage_slice(self, settings: Mapping[str, Any], stage: str) -> dict[str, Any]:
        """The settings keys that change ``stage``'s output (its rerun trigger)."""
        st = self.stage(stage)
        if st.keys is not None:
            return {k: settings[k] for k in st.keys if k in settings}
        drop = set(self.figure_keys) | set(self.resource_keys)
        for other in self.stages:
            if other.name != stage:
                drop |= set(other.exclusive)
        return {k: v for k, v in settings.items() if k not in drop}

    def caption(self, name: str, values: Mapping[str, Any]) -> str:
        """Figure ``name``'s caption with ``{...}`` fields filled from ``values`` (others left as they are)."""

        class _Keep(dict):  # type: ignore[type-arg]
            def __missing__(self, key: str) -> str:
                return "{" + key + "}"

        return self.figure(name).caption.format_map(_Keep(values))

    def figure_slice(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The settings keys that change this measure's figures."""
        return {k: settings[k] for k in self.figure_keys if k in settings}

    def figure(self, name: str) -> FigureInfo:
        """The figure ``name`` (a figure named ``prefix_*`` matches every ``prefix_...``)."""
        for f in self.figures:
            if f.name == name or (f.name.endswith("*") and name.startswith(f.name[:-1])):
                return f
        raise KeyError(f"measure {self.name!r} draws no figure {name!r}; figures: {[f.name for f in self.figures]}")


@lru_cache(maxsize=None)
def _load(name: str) -> Measure:
    spec = importlib.import_module(f"gendyn.{name}.spec")
    m = spec.MEASURE
    if m.name != name:  # pragma: no cover - a packaging mistake
        raise RuntimeError(f"gendyn.{name}.spec declares measure {m.name!r}")
    return m


def measures() -> list[Measure]:
    """Every registered measure, in paper order."""
    return [_load(n) for n in NAMES]


def get(name: str) -> Measure:
    """The registered measure ``name``."""
    if name not in NAMES:
        raise KeyError(f"no measure {name!r}; registered: {', '.join(NAMES)}")
    return _load(name)


def figure_set(name: str) -> Measure:
    """The entry of a figure set: a registered measure or the run views (``views``)."""
    if name == "views":
        from gendyn.figures.spec import RUN_VIEWS

        return RUN_VIEWS
    return get(name)


def figure_info(set_name: str, name: str) -> FigureInfo:
    """The :class:`FigureInfo` of figure ``name`` of a figure set (:func:`figure_set`)."""
    return figure_set(set_name).figure(name)
