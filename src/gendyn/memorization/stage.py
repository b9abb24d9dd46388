"""Memorization stage: an experiment's runs → ``analysis/memorization/summary.nc`` (paper 003).

The objectives train inside ``gendyn train`` (``training.objective``); this stage only reads
each run's ``/metrics`` and turns the experiment into one table, dim ``run``: epochs to the
threshold and final values per run, with the swept parameters (``runs.csv``) and the
objective name as coordinates. The layout is documented in ``docs/measures.md``.

    summary   epochs-to-threshold table of every run of an experiment (Figs. 1b, 2c)

:func:`experiment_runs` and :func:`runs_from_files` read the runs (metrics, swept values,
root attributes) for this stage and for the figure job (:func:`gendyn.memorization.figures.draw`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xarray as xr

from gendyn.memorization.summary import summarize
from gendyn.parallel import AnalysisJob
from gendyn.stage import RunSource

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Runs", "experiment_runs", "runs_from_files", "summary", "estimate", "summary_table", "summary_csv", "RUNS_TABLE"]

logger = logging.getLogger(__name__)

#: The experiment's runs table (``results/{experiment}/runs.csv``).
RUNS_TABLE = "runs.csv"


@dataclass(frozen=True)
class Runs:
    """The runs of one experiment as the memorization stage and figures read them.

    Attributes
    ----------
    metrics : mapping run id -> Dataset
        Each run's ``/metrics`` (dim ``step``), loaded, in run order.
    swept : mapping key -> list
        ``runs.csv`` columns other than ``run`` (plain Python values, JSON decoded), one value
        per run in the same order; empty without a runs table.
    attrs : mapping run id -> dict
        Each run's ``run.h5`` root attributes (``config``, ``n_classes``, ...).
    """

    metrics: dict[str, xr.Dataset]
    swept: dict[str, list[Any]]
    attrs: dict[str, dict[str, Any]]

    def objective_names(self) -> list[str]:
        """``training.objective.name`` of every run (``""`` for ordinary training)."""
        names = []
        for rid in self.metrics:
            cfg = json.loads(self.attrs[rid].get("config", "{}"))
            names.append(str((cfg.get("training", {}).get("objective") or {}).get("name", "")))
        return names

    def n_classes(self) -> set[int]:
        """The class counts of the runs (0 where a run does not say)."""
        return {int(a.get("n_classes", 0)) for a in self.attrs.values()}

    def j0_thresholds(self) -> set[float]:
        """The J0 thresholds ``k`` of the runs trained with J0."""
        ks = set()
        for a in self.attrs.values():
            obj = json.loads(a.get("config", "{}")).get("training", {}).get("objective") or {}
            if obj.get("name") == "J0":
                ks.add(float(obj.get("k", 0.11)))
        return ks


def _read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.exists():
        raise FileNotFoundError(f"{path}: no runs table; is {path.parent} an experiment folder (results/<experiment>)?")
    return pd.read_csv(path)


def _swept_columns(table: pd.DataFrame) -> dict[str, list[Any]]:
    """runs.csv columns (except ``run``) as plain Python values per run (JSON strings decoded)."""
    out: dict[str, list[Any]] = {}
    for col in table.columns:
        if col == "run":
            continue
        vals = []
        for v in table[col].tolist():
            if isinstance(v, str):
                try:
                    v = json.loads(v)
                except ValueError:
                    pass
            vals.append(v.item() if hasattr(v, "item") else v)
        out[str(col)] = vals
    return out


def _collect(sources: Mapping[str, RunSource], table: pd.DataFrame | None) -> Runs:
    metrics = {rid: src.metrics for rid, src in sources.items()}
    attrs = {rid: dict(src.attrs) for rid, src in sources.items()}
    return Runs(metrics=metrics, swept={} if table is None else _swept_columns(table), attrs=attrs)


def experiment_runs(experiment_dir: Path | str) -> Runs:
    """Every run of ``results/{experiment}`` in ``runs.csv`` order.

    Raises
    ------
    FileNotFoundError
        Without ``runs.csv``.
    gendyn.store.StoreError
        If a run's ``run.h5`` is missing or incomplete (the message names it).
    """
    exp = Path(experiment_dir)
    table = _read_table(exp / RUNS_TABLE)
    sources = {str(rid): RunSource(exp / "runs" / str(rid)) for rid in table["run"]}
    return _collect(sources, table)


def runs_from_files(run_files: Sequence[Path | str], runs_table: Path | str | None = None) -> Runs:
    """The runs of explicit ``run.h5`` files (or run directories), e.g. a figure job's inputs.

    With ``runs_table`` the runs take its order and its swept columns; every file must be one
    of its rows (matched by the run id, attribute ``run`` or the directory name).

    Raises
    ------
    ValueError
        If no run is given, or a run is not a row of ``runs_table``.
    """
    if not run_files:
        raise ValueError("memorization: no run files given (--input run=results/<experiment>/runs/<run>/run.h5)")
    by_id = {src.name: src for src in (RunSource(p) for p in run_files)}
    if runs_table is None:
        return _collect(by_id, None)
    table = _read_table(Path(runs_table))
    rows = [str(r) for r in table["run"]]
    missing = [rid for rid in by_id if rid not in rows]
    if missing:
        raise ValueError(f"{runs_table}: runs {missing} are not rows of the runs table; rows: {rows}")
    table = table[[r in by_id for r in rows]].reset_index(drop=True)
    return _collect({str(rid): by_id[str(rid)] for rid in table["run"]}, table)


def summary(experiment_dir: Path | str, settings: Mapping[str, Any], *, job: AnalysisJob | None = None) -> xr.Dataset:
    """Epochs to threshold and final values of every run of an experiment (paper 003 Figs. 1b, 2c).

    Parameters
    ----------
    experiment_dir : path
        ``results/{experiment}`` (``runs.csv`` and ``runs/{run}/run.h5``).
    settings : mapping
        Resolved ``analyses.memorization`` (:func:`gendyn.config.stage_settings`); reads
        ``threshold_metric``, ``threshold``, ``patience``, ``interpolate``, ``last_epochs``.
    job : AnalysisJob, optional
        Unused (the table is small); accepted like every stage.

    Returns
    -------
    Dataset, dim ``run``: the variables of :func:`gendyn.memorization.summary.summarize`, the
    swept parameters and ``objective`` (``training.objective.name``) as coordinates on
    ``run``, attribute ``experiment`` (the folder name).
    """
    exp = Path(experiment_dir)
    runs = experiment_runs(exp)
    metric, tau = settings["threshold_metric"], settings["threshold"]
    ds = summarize(
        runs.metrics,
        metric=metric,
        tau=tau,
        patience=settings["patience"],
        interpolate=settings["interpolate"],
        last_epochs=settings["last_epochs"],
        swept=runs.swept,
    )
    ds = ds.assign_coords(objective=("run", runs.objective_names()))
    ds.attrs["experiment"] = exp.name
    for rid, t, c in zip(ds["run"].values, ds["epochs_to_threshold"].values, ds["censored_at"].values):
        logger.info("%s: epochs to %s >= %g: %s", rid, metric, tau, f"{t:g}" if t == t else f"not reached in {c:g}")
    return ds


def summary_table(ds: xr.Dataset) -> pd.DataFrame:
    """The summary as a flat table: one row per run, its variables and coordinates as columns."""
    return ds.to_dataframe().reset_index()


def summary_csv(ds: xr.Dataset) -> str:
    """``summary.csv``: :func:`summary_table` as CSV text, floats with 6 significant digits."""
    return summary_table(ds).to_csv(index=False, float_format="%.6g")


# --------------------------------------------------------------------------- estimate (gendyn plan)

#: Columns of the summary (dim ``run``), as :func:`gendyn.memorization.summary.summarize` writes them.
_SUMMARY_COLUMNS = (
    "epochs_to_threshold", "censored_at", "n_epochs", "final_train_acc", "final_test_acc", "final_heldout_acc",
    "final_gap", "max_gap", "test_acc_last", "heldout_acc_last", "split_fraction", "gradnorm_first_weight_peak",
    "gradnorm_first_weight_final",
)  # fmt: skip


def estimate(settings: Mapping[str, Any], runs: Sequence[Any], *, experiment: Mapping[str, Any], budget_bytes: int) -> list[Any]:
    """Size and peak memory of ``memorization summary`` (``gendyn plan``): one row per run, plus the CSV.

    The stage holds every run's ``/metrics`` at once (records x metrics x 8 bytes each).
    """
    from gendyn.plan import PROCESS_BYTES, StageEstimate
    from gendyn.store import netcdf_nbytes

    n = len(runs)
    swept = len(experiment.get("sweep") or {})
    v = {k: ((n,), 8) for k in (*_SUMMARY_COLUMNS, "run", "objective")}
    v.update({f"swept{i}": ((n,), 8) for i in range(swept)})
    csv = n * (len(_SUMMARY_COLUMNS) + swept + 2) * 12 + 400
    held = sum(r.n_records * (r.n_metrics + 1) * 8 for r in runs)
    return [StageEstimate("memorization", "summary", 1, netcdf_nbytes(v, attrs_bytes=1200) + csv, PROCESS_BYTES + 4 * held, None)]
