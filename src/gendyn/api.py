"""Public reading API: open runs and experiments, masks, models and tracked inputs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import nn

from gendyn import store
from gendyn.config import validate_run
from gendyn.record import unpackbits

__all__ = [
    "open_run",
    "open_experiment",
    "Experiment",
    "masks",
    "load_model",
    "tracked_inputs",
    "run_config",
    "diverged",
    "divergence",
    "verify",
]

logger = logging.getLogger(__name__)


def _run_file(run: Path | str) -> Path:
    p = Path(run)
    return p / store.RUN_FILE if p.is_dir() else p


def _run_dir(run: Path | str) -> Path:
    p = Path(run)
    return p if p.is_dir() else p.parent


def open_run(run_dir: Path | str) -> xr.DataTree:
    """Open a run's ``run.h5`` as an :class:`xarray.DataTree` (lazily).

    Parameters
    ----------
    run_dir : path
        A run directory (``results/{experiment}/runs/{run}``) or its ``run.h5``.

    Raises
    ------
    gendyn.store.StoreError
        If the file is missing, truncated, foreign or incomplete (the message names it).
    """
    path = _run_file(run_dir)
    store.check_run_file(path)
    try:
        return xr.open_datatree(path, engine="h5netcdf")
    except (OSError, KeyError, RuntimeError, ValueError) as e:
        raise store.StoreError(
            f"{path}: cannot be read ({type(e).__name__}: {' '.join(str(e).split())[:300]}); the file is corrupted "
            f"(check it with 'gendyn info --verify {path}'); {store.rewrite_hint(path)}"
        ) from None


def _attrs_of(path: Path | str) -> dict[str, Any]:
    """Root attributes of a run (directory or ``run.h5``) or of an analysis file (``.nc``)."""
    p = Path(path)
    if p.suffix == ".nc":
        return store.check_run_file(p, fmt=store.ANALYSIS_FORMAT)
    return store.check_run_file(_run_file(p))


def divergence(path: Path | str) -> dict[str, Any] | None:
    """How a run diverged: ``{"step": int, "loss": str}``, or None if it trained to the end.

    A run with ``training.on_divergence: record`` whose loss became non-finite ends cleanly at
    its last finite record point and is marked in ``run.h5`` (``diverged``, ``diverged_step``,
    ``diverged_loss``); every analysis file of it carries the same attributes.

    Parameters
    ----------
    path : path
        A run directory, its ``run.h5``, or an analysis file (``analysis/{measure}/{run}.nc``).
    """
    return store.divergence(_attrs_of(path))


def diverged(path: Path | str) -> bool:
    """Whether the run (directory, ``run.h5`` or one of its analysis files) diverged; see :func:`divergence`."""
    return divergence(path) is not None


def verify(path: Path | str) -> int:
    """Reread every dataset of a result file and compare it with its stored checksum.

    Parameters
    ----------
    path : path
        A run directory (``run.h5`` and ``checkpoints.h5`` are checked), ``run.h5``,
        ``checkpoints.h5`` or an analysis file.

    Returns
    -------
    Number of datasets verified.

    Raises
    ------
    gendyn.store.StoreError
        Naming the file, the datasets that differ and the step that rewrites the file.
    """
    p = Path(path)
    if p.is_dir():
        return store.verify_file(p / store.RUN_FILE, fmt=store.FORMAT) + store.verify_file(
            p / store.CHECKPOINT_FILE, fmt=store.CHECKPOINT_FORMAT
        )
    return store.verify_file(p)


def run_config(run_dir: Path | str) -> dict[str, Any]:
    """The resolved run configuration stored in ``run.h5`` (attribute ``config``)."""
    attrs = store.check_run_file(_run_file(run_dir))
    return validate_run(json.loads(attrs["config"]), source=str(_run_file(run_dir)))


def masks(run_dir: Path | str, layer: str | None = None) -> xr.DataArray:
    """Unpacked boolean ReLU masks as a lazily loaded, dask-backed DataArray.

    Parameters
    ----------
    run_dir : path
        Run directory or ``run.h5``.
    layer : str, optional
        One recording site (variable name in ``/masks``, e.g. ``"relu1"``, or its module
        name, e.g. ``"layers.0.relu"``). None concatenates every layer along ``unit`` in
        forward order, with a ``layer`` coordinate per unit.

    Returns
    -------
    DataArray of bool, dims ("record", "image", "unit"), coords ``step`` and ``epoch`` on
    ``record``, ``layer`` and ``unit_index`` (index within the layer) on ``unit``. Mask bit
    = 1 iff the ReLU's input was > 0 in the eval-mode forward at that record point.
    """
    path = _run_file(run_dir)
    attrs = store.check_run_file(path)
    order = json.loads(attrs["layers"])
    ds = store.open_group(path, "masks", lazy=True)
    if not ds.data_vars:
        raise store.StoreError(f"{path}: /masks is empty (recording.masks was false for this run)")
    if layer is not None:
        by_module = {ds[v].attrs.get("module"): v for v in ds.data_vars}
        name = layer if layer in ds.data_vars else by_module.get(layer)
        if name is None:
            raise KeyError(f"{path}: no layer {layer!r} in /masks; layers: {order}")
        names = [name]
    else:
        names = order
    parts = []
    for name in names:
        var = ds[name]
        n_units = int(var.attrs["n_units"])
        byte_dim = var.dims[-1]
        var = var.chunk({byte_dim: -1})
        unpacked = xr.apply_ufunc(
            unpackbits,
            var,
            kwargs={"n_units": n_units},
            input_core_dims=[[byte_dim]],
            output_core_dims=[["unit"]],
            dask="parallelized",
            output_dtypes=[bool],
            dask_gufunc_kwargs={"output_sizes": {"unit": n_units}},
        )
        unpacked = unpacked.assign_coords(
            layer=("unit", np.full(n_units, name, dtype=object)), unit_index=("unit", np.arange(n_units))
        )
        unpacked.attrs = {k: v for k, v in var.attrs.items() if k in ("module", "n_units", "unit_shape")}
        parts.append(unpacked)
    out = parts[0] if len(parts) == 1 else xr.concat(parts, dim="unit", coords="minimal", compat="override")
    tracked = store.open_group(path, "tracked")
    out = out.assign_coords(
        step=("record", ds["step"].values),
        epoch=("record", ds["epoch"].values),
        split=("image", tracked["split"].values.astype(str)),
        index=("image", tracked["index"].values),
        label=("image", tracked["label"].values),
    )
    out.name = names[0] if len(names) == 1 else "masks"
    if len(parts) > 1:
        out.attrs = {"layers": names}
    return out.transpose("record", "image", "unit")


def load_model(run_dir: Path | str, step: int | None = None, *, device: str | torch.device = "cpu") -> nn.Module:
    """The run's model in eval mode with the weights of record point ``step``.

    Parameters
    ----------
    run_dir : path
        Run directory (holding ``run.h5`` and ``checkpoints.h5``).
    step : int, optional
        Optimisation step of a checkpoint; None loads the latest.
    device : str or torch.device

    Raises
    ------
    gendyn.store.StoreError
        If there is no checkpoint at ``step`` (the message lists the available steps).
    """
    from gendyn.models import build_run_model

    rd = _run_dir(run_dir)
    attrs = store.check_run_file(rd / store.RUN_FILE)
    cfg = validate_run(json.loads(attrs["config"]))
    _, state = store.read_checkpoint(rd / store.CHECKPOINT_FILE, step)
    model = build_run_model(cfg, tuple(int(s) for s in attrs["input_shape"]), int(attrs["n_classes"]))
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    return model.to(device).eval()


def tracked_inputs(run_dir: Path | str, *, data_root: Path | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The tracked images exactly as the model sees them, in ``/tracked`` order.

    Reloads the run's data source from its configuration (no augmentation). A run that tracks
    no images (``recording.n_tracked_train`` and ``n_tracked_test`` both 0) gives empty tensors
    of shape (0, *input_shape) and (0,), without loading the data.

    Returns
    -------
    x : (N, C, H, W) tensor in the model's dtype
    y : (N,) int64 tensor of labels (after any label noise)
    """
    from gendyn.data import load_data

    rd = _run_dir(run_dir)
    path = rd / store.RUN_FILE
    cfg = run_config(rd)
    dtype = torch.float64 if cfg["model"].get("dtype") == "float64" else torch.float32
    tracked = store.open_group(path, "tracked")
    if tracked.sizes.get("image", 0) == 0:
        attrs = store.check_run_file(path)
        shape = tuple(int(s) for s in attrs["input_shape"])
        return torch.zeros((0, *shape), dtype=dtype), torch.zeros(0, dtype=torch.int64)
    data = load_data(cfg["data"], root=Path(data_root) if data_root else None)
    split = tracked["split"].values.astype(str)
    index = tracked["index"].values
    xs = []
    for name in ("train", "test"):
        sel = split == name
        if sel.any():
            x, y = getattr(data, name).get(index[sel])
            xs.append((np.flatnonzero(sel), x, y))
    n = len(index)
    x0 = xs[0][1]
    x = torch.empty((n, *x0.shape[1:]), dtype=x0.dtype)
    y = torch.empty(n, dtype=torch.int64)
    for pos, xb, yb in xs:
        x[pos] = xb
        y[pos] = yb
    if not np.array_equal(y.numpy(), tracked["label"].values):
        raise store.StoreError(
            f"{path}: labels of the reloaded tracked images differ from /tracked/label; the data source changed "
            "since training (different files under data.root?)"
        )
    return x.to(dtype), y


class Experiment(Mapping[str, xr.DataTree]):
    """An experiment's runs table and lazily opened runs (a mapping run id -> DataTree).

    Attributes
    ----------
    path : Path
    runs : pandas.DataFrame
        ``runs.csv``: one row per run, ``run`` and every swept parameter.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        table = self.path / "runs.csv"
        if not table.exists():
            raise FileNotFoundError(f"{table}: no runs table; is {self.path} an experiment folder (results/<experiment>)?")
        self.runs = pd.read_csv(table)
        self._trees: dict[str, xr.DataTree] = {}

    def run_dir(self, run: str) -> Path:
        return self.path / "runs" / run

    def __getitem__(self, run: str) -> xr.DataTree:
        if run not in set(self.runs["run"]):
            raise KeyError(f"{self.path}: no run {run!r}; runs: {list(self.runs['run'])}")
        if run not in self._trees:
            self._trees[run] = open_run(self.run_dir(run))
        return self._trees[run]

    def __iter__(self) -> Iterator[str]:
        return iter(self.runs["run"])

    def __len__(self) -> int:
        return len(self.runs)

    def completed(self) -> list[str]:
        """Run ids whose ``run.h5`` exists."""
        return [r for r in self if (self.run_dir(r) / store.RUN_FILE).exists()]

    def metrics(self) -> xr.Dataset:
        """``/metrics`` of every completed run concatenated along a new ``run`` dim (outer join on step)."""
        runs = self.completed()
        if not runs:
            raise FileNotFoundError(f"{self.path}: no completed runs yet")
        parts = [self[r]["metrics"].to_dataset() for r in runs]
        out = xr.concat(parts, dim=pd.Index(runs, name="run"), join="outer", coords="minimal", compat="override")
        swept = self.runs.set_index("run").loc[runs]
        for col in swept.columns:
            out = out.assign_coords({col: ("run", swept[col].to_numpy())})
        return out

    def __repr__(self) -> str:
        return f"Experiment({str(self.path)!r}, {len(self)} runs, {len(self.completed())} complete)"


def open_experiment(exp_dir: Path | str) -> Experiment:
    """Open ``results/{experiment}``: its runs table and lazily opened runs.

    Examples
    --------
    >>> exp = gendyn.open_experiment("results/quick")          # doctest: +SKIP
    >>> exp.runs                                                # runs.csv as a DataFrame
    >>> exp["depth2"]["metrics"]["test_acc"]                    # one run's curve
    >>> exp.metrics()["test_acc"].sel(step=..., method="nearest")
    """
    return Experiment(Path(exp_dir))
