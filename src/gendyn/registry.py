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

__all__ = [
    "Stage",
    "FigureInfo",
    "Claim",
    "Measure",
    "NAMES",
    "DIVERGED",
    "measures",
    "get",
    "figure_set",
    "figure_info",
    "paper_figures",
    "claims_for",
]

Scope = Literal["run", "experiment"]
ClaimScope = Literal["experiment", "pooled"]

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
    """One figure a measure draws: the file stem, its title, its caption, the paper figures it shows.

    ``caption`` is reStructuredText for the report; ``{...}`` fields are filled with the values
    the figure job used (:func:`gendyn.report.caption_values`). ``shows`` lists the paper's
    figures (ids as the paper numbers them: ``"Fig 2"``, ``"Fig 1a"``, ``"App. E"``,
    ``"Sec. 4"``; ``"R1"`` is paper 001's robustness result from the authors' code) that this
    figure type can reproduce; empty for project extensions and run views. An experiment names
    the ones it reproduces in its ``reproduces`` (:mod:`gendyn.report`).
    """

    name: str
    title: str
    caption: str
    scope: Scope = "run"
    shows: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The report label: the paper ids joined by ", " (``Fig 2, Fig 9``), else the title."""
        return ", ".join(self.shows) if self.shows else self.title


@dataclass(frozen=True)
class Claim:
    """One checkable statement of a paper figure, verdict computed from the analysis files.

    The function ``gendyn.<measure>.claims.<name>`` (imported only when the reproduction index
    is built) takes the evidence of the experiments that declare the figure
    (``experiments.<name>.reproduces``) and the measure's thresholds
    (``reproduction.thresholds.<measure>``) and returns the statistic, its value and a verdict;
    ``docs/reproduction.md`` lists every claim.

    Attributes
    ----------
    name : str
        Function name in ``gendyn.<measure>.claims``.
    figures : tuple of str
        Paper figures it checks, numbered as in :attr:`FigureInfo.shows` (one index row each).
    text : str
        The claim in one line, as the paper makes it.
    statistic : str
        What the ``value`` column holds.
    needs : tuple of str
        Stages of the measure whose outputs it reads (``run.h5`` is always read); a declaring
        experiment without them gets a ``not run`` row naming the missing file.
    scope : {"experiment", "pooled"}
        ``experiment``: one row per declaring experiment; ``pooled``: one row over the runs of
        every declaring experiment together (comparisons across experiments, e.g. noise vs
        images, or the early/mid ratio over many models).
    """

    name: str
    figures: tuple[str, ...]
    text: str
    statistic: str
    needs: tuple[str, ...] = ()
    scope: ClaimScope = "experiment"


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
    claims : tuple of Claim
        What the reproduction index checks for each paper figure (at least one claim per
        figure in :attr:`paper_figures`).
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
    claims: tuple[Claim, ...] = ()
    estimate: str | None = None

    @property
    def category(self) -> str:
        """Report category: ``Paper 001 - local complexity``."""
        return f"Paper {self.paper} - {self.title}"

    @property
    def paper_figures(self) -> tuple[str, ...]:
        """Every figure of the paper this measure's figures reproduce (union of ``shows``)."""
        return tuple(dict.fromkeys(f for fig in self.figures for f in fig.shows))

    def claims_for(self, figure: str) -> tuple[Claim, ...]:
        """The claims that check paper figure ``figure`` (e.g. ``"Fig 2"``), in declaration order."""
        return tuple(c for c in self.claims if figure in c.figures)

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
        """The figure ``name`` (a figure named ``prefix_*`` matches every ``prefix_...``).

        Every figure set also knows :data:`DIVERGED`, the note a run figure job draws in place of
        its figures when the run diverged too early for its analyses.
        """
        for f in self.figures:
            if f.name == name or (f.name.endswith("*") and name.startswith(f.name[:-1])):
                return f
        if name == DIVERGED.name:
            return DIVERGED
        raise KeyError(f"measure {self.name!r} draws no figure {name!r}; figures: {[f.name for f in self.figures]}")


#: The figure of a run whose analyses were all skipped because it diverged too early
#: (:mod:`gendyn.figures.diverged`); known to every figure set.
DIVERGED = FigureInfo(
    "diverged",
    "diverged run",
    "run diverged",
    "Run ``{run}`` of experiment ``{experiment}`` diverged (non-finite training loss) and ended at its last "
    "finite record point (training.on_divergence: record); it has too few record points for this analysis, "
    "so the stage skipped it. Its training curves show the records it has.",
)


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


def paper_figures() -> dict[str, tuple[str, ...]]:
    """Every paper figure the registered measures reproduce: ``{"001": ("Fig 2", ...), ...}``.

    In paper order; a paper with two measures (002: elasticity and neurashed) lists both's.
    """
    out: dict[str, tuple[str, ...]] = {}
    for m in measures():
        out[m.paper] = tuple(dict.fromkeys((*out.get(m.paper, ()), *m.paper_figures)))
    return out


def claims_for(paper: str, figure: str) -> list[tuple[Measure, Claim]]:
    """(measure, claim) of every claim that checks ``figure`` of ``paper`` (``"001"``, ``"Fig 2"``)."""
    return [(m, c) for m in measures() if m.paper == paper for c in m.claims_for(figure)]
