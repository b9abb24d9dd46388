"""What every claim works with: the evidence it reads, the outcome it returns, shared grading.

A *claim* (``gendyn.<measure>.claims.<name>``, registered as :class:`gendyn.registry.Claim`)
is a pure function ``claim(evidence, thresholds) -> Outcome``: the analysis datasets and run
metrics of the experiments that declare the claim's paper figure in, a statistic, its value
and a verdict out. Nothing here opens files (:mod:`gendyn.reproduction.engine` does), so the
tests build :class:`Evidence` from synthetic datasets shaped like the real outputs.

Verdicts (``docs/reproduction.md``):

``reproduced``
    the effect is there with the strength the thresholds ask for;
``partial``
    the effect's direction holds but below that strength, or only in some runs (each claim's
    docstring says which);
``not reproduced``
    the effect is absent or reversed, or every run the claim reads diverged;
``not run``
    no active experiment declares the figure, a declaring experiment lacks a file the claim
    reads, or its runs cannot show the effect (e.g. a trend over a sweep with one value).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "REPRODUCED",
    "PARTIAL",
    "NOT_REPRODUCED",
    "NOT_RUN",
    "VERDICTS",
    "Verdict",
    "Outcome",
    "RunResult",
    "Evidence",
    "at_least",
    "at_most",
    "per_run",
    "trend",
    "spearman",
    "fmt",
    "not_run",
    "summary_rows",
]

Verdict = Literal["reproduced", "partial", "not reproduced", "not run"]
REPRODUCED: Verdict = "reproduced"
PARTIAL: Verdict = "partial"
NOT_REPRODUCED: Verdict = "not reproduced"
NOT_RUN: Verdict = "not run"
#: Every verdict, best first.
VERDICTS: tuple[Verdict, ...] = (REPRODUCED, PARTIAL, NOT_REPRODUCED, NOT_RUN)


@dataclass(frozen=True)
class Outcome:
    """What a claim found.

    Attributes
    ----------
    value : float or str
        The statistic's value (NaN when it could not be computed; a short text where a number
        would mislead, e.g. ``"4 levels, 3 classes"``).
    verdict : Verdict
    threshold : str
        The thresholds the verdict applied, readable (``"≥ 0.4 (partial ≥ 0.1)"``).
    note : str
        The measured reason behind the verdict (per-run values, which runs diverged, why a
        claim could not be checked).
    runs : tuple of (experiment, run) or None
        The runs the value comes from; None = every run of the evidence, ``()`` = none (a value
        computed from experiment-level files or no files at all).
    """

    value: float | str
    verdict: Verdict
    threshold: str = ""
    note: str = ""
    runs: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class RunResult:
    """One training run as a claim sees it.

    Attributes
    ----------
    experiment, run : str
    config : mapping
        The resolved run configuration (``data``, ``model``, ``training``, ``recording``);
        empty for analyses of given weights (``analyses.elasticity.pretrained``).
    attrs : mapping
        Root attributes of ``run.h5`` (``n_classes``, ``n_train``, ``diverged``, ...).
    metrics : xarray.Dataset or None
        ``/metrics`` of ``run.h5`` (dim ``step``).
    analyses : mapping str -> xarray.Dataset
        Per-run stage outputs by stage name (``"compute"``, ``"regions"``, ``"robust"``,
        ``"histograms"``, ...), only those the claim's measure produced for this run.
    files : tuple of str
        Files these came from (for the index's ``files`` column).
    """

    experiment: str
    run: str
    config: Mapping[str, Any] = field(default_factory=dict)
    attrs: Mapping[str, Any] = field(default_factory=dict)
    metrics: Any = None
    analyses: Mapping[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.experiment, self.run)

    @property
    def diverged(self) -> bool:
        """True when training stopped on a non-finite loss (``run.h5`` attribute ``diverged``)."""
        try:
            return int(self.attrs.get("diverged", 0) or 0) != 0
        except (TypeError, ValueError):
            return bool(self.attrs.get("diverged"))

    @property
    def diverged_note(self) -> str:
        step = self.attrs.get("diverged_step")
        at = f" at step {step}" if step is not None else ""
        return f"{self.run} diverged{at}"

    def get(self, dotted: str, default: Any = None) -> Any:
        """A value of the run configuration by dotted key (``"model.depth"``)."""
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node


@dataclass(frozen=True)
class Evidence:
    """Everything a claim reads for one index row.

    Attributes
    ----------
    experiments : tuple of str
        The declaring experiments (one, or several for a pooled claim); neurashed studies for
        the simulator's claims.
    runs : tuple of RunResult
        The declared runs of those experiments (the ``where`` filter of ``reproduces`` applied).
    outputs : mapping experiment -> mapping stage -> xarray.Dataset
        Experiment-level stage outputs (``summary`` of paths and memorization, the neurashed
        phenomena), by experiment and stage name.
    """

    experiments: tuple[str, ...] = ()
    runs: tuple[RunResult, ...] = ()
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def output(self, stage: str) -> list[tuple[str, Any]]:
        """(experiment, dataset) of every experiment-level output of ``stage``."""
        return [(e, o[stage]) for e, o in self.outputs.items() if stage in o]

    def healthy(self, runs: Iterable[RunResult] | None = None) -> list[RunResult]:
        """The runs that did not diverge."""
        return [r for r in (self.runs if runs is None else runs) if not r.diverged]


# --------------------------------------------------------------------------- grading


def fmt(x: Any, digits: int = 3) -> str:
    """A number for the index: ``g`` format, ``nan`` for missing values."""
    if isinstance(x, str):
        return x
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return "nan"
    return f"{x:.{digits}g}"


def at_least(value: float, full: float, partial: float | None = None) -> Verdict:
    """``reproduced`` if value ≥ full, ``partial`` if ≥ partial, else ``not reproduced`` (NaN: not reproduced)."""
    if value is None or not np.isfinite(value):
        return NOT_REPRODUCED
    if value >= full:
        return REPRODUCED
    if partial is not None and value >= partial:
        return PARTIAL
    return NOT_REPRODUCED


def at_most(value: float, full: float, partial: float | None = None) -> Verdict:
    """``reproduced`` if value ≤ full, ``partial`` if ≤ partial, else ``not reproduced`` (NaN: not reproduced)."""
    if value is None or not np.isfinite(value):
        return NOT_REPRODUCED
    if value <= full:
        return REPRODUCED
    if partial is not None and value <= partial:
        return PARTIAL
    return NOT_REPRODUCED


def not_run(note: str, threshold: str = "") -> Outcome:
    """An outcome for evidence that cannot show the effect (no runs, one sweep value, ...)."""
    return Outcome(float("nan"), NOT_RUN, threshold, note, runs=())


def per_run(
    ev: Evidence,
    fn: Callable[[RunResult], Outcome],
    t: Mapping[str, Any],
    runs: Sequence[RunResult] | None = None,
    *,
    what: str = "runs",
) -> Outcome:
    """A per-run claim over several runs (seeds): evaluate each run, then aggregate.

    Parameters
    ----------
    ev : Evidence
    fn : RunResult -> Outcome
        The claim on one run; called only for runs that did not diverge.
    t : mapping
        Thresholds; reads ``min_run_fraction``.
    runs : sequence of RunResult, optional
        The runs to evaluate (default: every run of the evidence).
    what : str
        How to name the runs in a ``not run`` note (``"runs with model.init_scale > 1"``).

    Returns
    -------
    Outcome
        value: the median of the runs' finite values; verdict: ``reproduced`` when at least a
        fraction ``min_run_fraction`` of the runs reproduce it, ``partial`` when at least one
        run reproduces it or is partial, ``not reproduced`` otherwise. A diverged run counts as
        not reproduced and is named in the note; with one run its own outcome is returned.
    """
    runs = list(ev.runs if runs is None else runs)
    if not runs:
        return not_run(f"no {what} among the declared runs")
    results: list[tuple[RunResult, Outcome]] = []
    for r in runs:
        if r.diverged:
            results.append((r, Outcome(float("nan"), NOT_REPRODUCED, "", r.diverged_note + "; not evaluated", (r.key,))))
        else:
            out = fn(r)
            results.append((r, Outcome(out.value, out.verdict, out.threshold, out.note, (r.key,) if out.runs is None else out.runs)))
    keys = tuple(k for _, o in results for k in (o.runs or ()))
    threshold = next((o.threshold for _, o in results if o.threshold), "")
    if len(results) == 1:
        return results[0][1]
    verdicts = [o.verdict for _, o in results]
    if all(v == NOT_RUN for v in verdicts):
        return Outcome(float("nan"), NOT_RUN, threshold, "; ".join(f"{r.run}: {o.note}" for r, o in results), keys)
    values = [float(o.value) for _, o in results if isinstance(o.value, (int, float, np.floating)) and np.isfinite(o.value)]
    value = float(np.median(values)) if values else float("nan")
    n_ok = verdicts.count(REPRODUCED)
    need = float(t.get("min_run_fraction", 1.0))
    if n_ok >= math.ceil(need * len(results) - 1e-9):
        verdict: Verdict = REPRODUCED
    elif n_ok or PARTIAL in verdicts:
        verdict = PARTIAL
    else:
        verdict = NOT_REPRODUCED
    per = "; ".join(f"{r.run}: {fmt(o.value)} ({o.verdict}{', ' + o.note if o.note else ''})" for r, o in results)
    note = f"median of {len(results)} runs; {n_ok}/{len(results)} reproduced (reproduced needs {fmt(100 * need)} %); {per}"
    return Outcome(value, verdict, f"{threshold}; per run, median over runs" if threshold else "", note, keys)


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    ranks[order] = np.arange(len(x), dtype=float)
    for v in np.unique(x):  # average ranks of ties
        tie = x == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation of two equal-length sequences (ties averaged); NaN if undefined."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 2:
        return float("nan")
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def trend(
    runs: Sequence[RunResult],
    key: Callable[[RunResult], Any],
    stat: Callable[[RunResult], float],
    sign: int,
    t: Mapping[str, Any],
    *,
    key_name: str,
    stat_name: str,
) -> Outcome:
    """A claim about how a statistic changes across a sweep (depth, width, dataset size, ...).

    The runs are grouped by ``key(run)`` (seeds of one value pooled by their mean ``stat``) and
    the Spearman correlation ρ between the values and the group means is graded against the
    expected ``sign`` (+1: increases with the key, -1: decreases).

    Verdict: ``reproduced`` when there are at least ``trend_min_values`` values and
    sign·ρ ≥ ``trend_min_rho``; ``partial`` when sign·ρ > 0 but fewer values or a weaker
    correlation; ``not reproduced`` when sign·ρ ≤ 0; ``not run`` with fewer than two values.
    Diverged runs and runs whose statistic is NaN are left out and named in the note.
    """
    groups: dict[Any, list[float]] = {}
    left_out: list[str] = []
    used: list[tuple[str, str]] = []
    for r in runs:
        if r.diverged:
            left_out.append(r.diverged_note)
            continue
        v = stat(r)
        if v is None or not np.isfinite(v):
            left_out.append(f"{r.run}: {stat_name} undefined")
            continue
        groups.setdefault(key(r), []).append(float(v))
        used.append(r.key)
    min_values, min_rho = int(t.get("trend_min_values", 3)), float(t.get("trend_min_rho", 0.8))
    direction = "increases" if sign > 0 else "decreases"
    threshold = f"{'ρ' if sign > 0 else '−ρ'} ≥ {fmt(min_rho)} over ≥ {min_values} values of {key_name} (partial: right sign)"
    extra = f"; left out: {', '.join(left_out)}" if left_out else ""
    if len(groups) < 2:
        return Outcome(float("nan"), NOT_RUN, threshold, f"needs ≥ 2 values of {key_name}, got {len(groups)}{extra}", tuple(used))
    xs = sorted(groups)
    means = [float(np.mean(groups[k])) for k in xs]
    rho = spearman(xs, means)
    table = ", ".join(f"{k}: {fmt(m)}" for k, m in zip(xs, means))
    note = f"{stat_name} by {key_name} (mean over seeds): {table}; expected: {direction} with {key_name}{extra}"
    if not np.isfinite(rho):
        return Outcome(rho, NOT_REPRODUCED, threshold, note + "; no variation", tuple(used))
    s = sign * rho
    if s >= min_rho and len(xs) >= min_values:
        verdict: Verdict = REPRODUCED
    elif s > 0:
        verdict = PARTIAL
        if len(xs) < min_values:
            note += f"; only {len(xs)} values (< {min_values})"
    else:
        verdict = NOT_REPRODUCED
    return Outcome(rho, verdict, threshold, note, tuple(used))


def summary_rows(ev: Evidence, stage: str = "summary") -> list[tuple[RunResult | None, dict[str, Any]]]:
    """The rows (dim ``run``) of every experiment-level ``stage`` output, each with its run.

    Returns (run or None when the run is not among the declared ones, {variable: value}) for
    every row whose run is declared (rows of undeclared runs are dropped).
    """
    by_key = {r.key: r for r in ev.runs}
    rows = []
    for exp, ds in ev.output(stage):
        if "run" not in ds.dims:
            continue
        for i, rid in enumerate(ds["run"].values):
            key = (exp, str(rid))
            if key not in by_key:
                continue
            row = {name: ds[name].values[i].item() for name, v in ds.data_vars.items() if v.dims == ("run",)}
            rows.append((by_key[key], row))
    return rows
