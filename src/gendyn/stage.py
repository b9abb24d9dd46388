"""Shared plumbing of analysis stages: a run as a stage sees it, and record selection.

A *stage* turns run files (``run.h5``, ``checkpoints.h5``) into one analysis dataset. Every
measure's stage functions (``gendyn.<measure>.stage``) open their run through
:class:`RunSource` and choose checkpoints with :func:`select_records`, so reading a run,
reloading its data and models, and choosing records are written once.
"""

from __future__ import annotations

import json
import logging
import math
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    import xarray as xr
    from torch import nn

    from gendyn.data import Data

__all__ = ["RunSource", "select_records", "run_label", "NotEnoughRecords"]

logger = logging.getLogger(__name__)


class NotEnoughRecords(ValueError):
    """A run has too few record points for a stage (e.g. a run that diverged early).

    The stage command (:func:`gendyn.cliutil.run_stage`) writes a skipped-run file in place of
    the result when the run diverged, so the sweep goes on; for a run that trained to the end
    it is an error of the settings.
    """


def select_records(steps: Any, n_records: int | None) -> np.ndarray:
    """At most ``n_records`` checkpoint steps, log-spaced in step + 1 (first and last always kept).

    Parameters
    ----------
    steps : (K,) int array of available checkpoint steps
    n_records : int or None (None: all)

    Returns
    -------
    (R,) int64 array, a sorted subset of ``steps``.
    """
    steps = np.unique(np.asarray(steps, dtype=np.int64))
    if n_records is None or len(steps) <= n_records:
        return steps
    targets = np.logspace(math.log10(steps[0] + 1), math.log10(steps[-1] + 1), int(n_records)) - 1
    pos = np.searchsorted(steps, targets).clip(0, len(steps) - 1)
    left = (pos - 1).clip(0)
    nearest = np.where(np.abs(steps[left] - targets) <= np.abs(steps[pos] - targets), left, pos)
    return np.unique(np.concatenate([[steps[0], steps[-1]], steps[nearest]]))


class RunSource:
    """One trained run as an analysis stage reads it (lazily, each part once).

    Parameters
    ----------
    run : path
        The run directory (``results/{experiment}/runs/{run}``) or its ``run.h5``.
    data_root : path, optional
        Root of on-disk datasets when the run's config has none.

    Raises
    ------
    gendyn.store.StoreError
        If ``run.h5`` is missing, foreign or incomplete (the message names it).
    """

    def __init__(self, run: Path | str, *, data_root: Path | str | None = None) -> None:
        from gendyn import store

        p = Path(run)
        self.run_file = p if p.suffix == ".h5" else p / store.RUN_FILE
        self.run_dir = self.run_file.parent
        self.checkpoint_file = self.run_dir / store.CHECKPOINT_FILE
        self.data_root = data_root
        self.attrs: dict[str, Any] = store.check_run_file(self.run_file)

    def __repr__(self) -> str:
        return f"RunSource({str(self.run_dir)!r})"

    @property
    def divergence(self) -> dict[str, Any] | None:
        """``{"step", "loss"}`` if the run diverged (``on_divergence: record``), else None."""
        from gendyn import store

        return store.divergence(self.attrs)

    def divergence_attrs(self) -> dict[str, Any]:
        """The ``diverged``, ``diverged_step``, ``diverged_loss`` attributes of a diverged run ({} otherwise)."""
        d = self.divergence
        if d is None:
            return {}
        return {"diverged": 1, "diverged_step": -1 if d["step"] is None else int(d["step"]), "diverged_loss": d["loss"]}

    @cached_property
    def config(self) -> dict[str, Any]:
        """The resolved run configuration stored in ``run.h5``, validated."""
        from gendyn.config import validate_run

        return validate_run(json.loads(self.attrs["config"]), source=str(self.run_file))

    @property
    def seed(self) -> int:
        """``training.seed`` of the run."""
        return int(self.config["training"]["seed"])

    @property
    def experiment(self) -> str:
        return str(self.attrs.get("experiment", ""))

    @property
    def name(self) -> str:
        """The run id (attribute ``run``, else the directory name)."""
        return str(self.attrs.get("run") or self.run_dir.name)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.attrs["input_shape"])

    @property
    def layers(self) -> list[str]:
        """Recorded ReLU layers, forward order (attribute ``layers``)."""
        return list(json.loads(self.attrs.get("layers", "[]")))

    def derive_seed(self, value: int | None, purpose: str) -> int:
        """``value`` if given, else a seed for ``purpose`` derived from the run's seed."""
        from gendyn.runtime import derive_seed

        return int(value) if value is not None else derive_seed(self.seed, purpose)

    @cached_property
    def checkpoint_steps(self) -> np.ndarray:
        """Steps of the stored checkpoints (sorted)."""
        from gendyn import store

        return store.checkpoint_steps(self.checkpoint_file)

    def select_records(self, n_records: int | None) -> np.ndarray:
        """At most ``n_records`` log-spaced checkpoint steps (:func:`select_records`)."""
        return select_records(self.checkpoint_steps, n_records)

    def model(self, step: int | None = None, *, device: str | torch.device = "cpu") -> nn.Module:
        """The run's model in eval mode with the weights of checkpoint ``step`` (latest if None)."""
        from gendyn.api import load_model

        return load_model(self.run_dir, None if step is None else int(step), device=device)

    @cached_property
    def data(self) -> Data:
        """The run's dataset, reloaded from its config (no augmentation in ``get``)."""
        from gendyn.data import load_data

        return load_data(self.config["data"], root=Path(self.data_root) if self.data_root else None)

    def group(self, name: str, *, lazy: bool = False) -> xr.Dataset:
        """A group of ``run.h5`` (``metrics``, ``tracked``, ``masks``, ...) as a Dataset.

        ``lazy``: dask-backed (``chunks={}``) instead of loaded.
        """
        from gendyn import store

        return store.open_group(self.run_file, name, lazy=lazy)

    @cached_property
    def metrics(self) -> xr.Dataset:
        """``/metrics`` (dim ``step``), loaded."""
        return self.group("metrics")

    @cached_property
    def tracked(self) -> xr.Dataset:
        """``/tracked`` (dim ``image``), loaded."""
        return self.group("tracked")

    def metrics_at(self, steps: Any, names: tuple[str, ...] = ("train_acc", "test_acc", "train_loss", "test_loss")) -> dict[str, np.ndarray]:
        """Float64 values of the named metrics at ``steps`` (those the run has)."""
        m = self.metrics
        return {k: m[k].sel(step=np.asarray(steps)).values.astype(np.float64) for k in names if k in m}

    def identity(self) -> dict[str, str]:
        """``experiment`` and ``run`` attributes every analysis dataset carries."""
        return {"experiment": self.experiment, "run": self.name}


def run_label(ds: xr.Dataset, fallback: str = "") -> str:
    """``experiment / run`` of an analysis dataset, for figure titles."""
    exp, run = str(ds.attrs.get("experiment", "")), str(ds.attrs.get("run", fallback))
    return f"{exp} / {run}" if exp else run
