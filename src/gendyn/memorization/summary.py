"""Experiment-level numbers of paper 003: epochs to a threshold, per-epoch curves, Fig. 3.

:func:`epochs_to_threshold` is the kernel of Figs. 1b and 2c; :func:`epoch_curves` and
:func:`stack_epochs` turn runs' ``/metrics`` into per-epoch curves; :func:`summarize` is the
table of ``analysis/memorization/summary.nc``; :func:`basin_ratio_log10` is the number of
Fig. 3. Pure functions on datasets: no files, no configuration (the stage,
:mod:`gendyn.memorization.stage`, reads the runs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["epochs_to_threshold", "epoch_curves", "stack_epochs", "summarize", "basin_ratio_log10"]


def epochs_to_threshold(
    curve: Any,
    tau: float,
    patience: int = 1,
    interpolate: bool = False,
) -> xr.DataArray:
    """Epochs until a per-epoch curve first reaches ``tau`` (paper 003 Figs. 1b, 2c).

    T = the first epoch e >= 1 with ``curve >= tau`` for ``patience`` consecutive epochs
    (e, e+1, ..., e+patience-1); with ``interpolate`` the linear crossing between the
    previous epoch and e.

    Parameters
    ----------
    curve : (E,) array-like or DataArray with dim ``epoch``
        Values after epochs 1..E (array), or indexed by an ``epoch`` coordinate (may include
        epoch 0, the initial model, which is never a crossing but is used for interpolation).
        NaN counts as below ``tau``.
    tau : float
    patience : int, default 1
    interpolate : bool, default False

    Returns
    -------
    0-d float64 DataArray named ``epochs_to_threshold``: T, or NaN if never reached (then
    attribute ``censored_at`` = the last epoch). Attributes ``tau``, ``patience``,
    ``interpolate``.

    Examples
    --------
    >>> e = np.arange(1, 201); c = 1 - np.exp(-e / 20)
    >>> float(epochs_to_threshold(c, 0.9))
    47.0
    """
    if patience < 1:
        raise ValueError(f"patience: {patience!r} must be >= 1")
    if isinstance(curve, xr.DataArray):
        if curve.ndim != 1 or "epoch" not in curve.coords:
            raise ValueError(f"curve: expected a 1-D DataArray with an 'epoch' coordinate, got dims {curve.dims}")
        values = np.asarray(curve.values, dtype=np.float64)
        epochs = np.asarray(curve["epoch"].values, dtype=np.float64)
    else:
        values = np.asarray(curve, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f"curve: expected a 1-D array of per-epoch values, got shape {values.shape}")
        epochs = np.arange(1, values.size + 1, dtype=np.float64)
    ok = np.nan_to_num(values, nan=-np.inf) >= tau
    attrs: dict[str, Any] = {"tau": float(tau), "patience": int(patience), "interpolate": int(bool(interpolate))}
    result = float("nan")
    for i in range(values.size - patience + 1):
        if epochs[i] < 1 or not ok[i : i + patience].all():
            continue
        result = float(epochs[i])
        if interpolate and i > 0 and np.isfinite(values[i - 1]) and values[i] > values[i - 1]:
            frac = (tau - values[i - 1]) / (values[i] - values[i - 1])
            result = float(epochs[i - 1] + frac * (epochs[i] - epochs[i - 1]))
        break
    if math.isnan(result):
        attrs["censored_at"] = float(epochs[-1]) if epochs.size else 0.0
    return xr.DataArray(result, name="epochs_to_threshold", attrs=attrs)


def epoch_curves(metrics: xr.Dataset) -> xr.Dataset:
    """The rows of a run's ``/metrics`` taken at whole epochs, indexed by ``epoch`` (int).

    Parameters
    ----------
    metrics : Dataset, dim ``step``
        ``/metrics`` of ``run.h5`` (variable ``epoch``).

    Returns
    -------
    Dataset with dim ``epoch`` (0 = initial model) and the same variables; ``step`` becomes a
    coordinate on ``epoch``.
    """
    ep = np.asarray(metrics["epoch"].values, dtype=np.float64)
    whole = np.isclose(ep, np.round(ep), rtol=0, atol=1e-9)
    sel = metrics.isel(step=np.flatnonzero(whole))
    epochs = np.round(sel["epoch"].values).astype(np.int64)
    out = sel.drop_vars("epoch").rename({"step": "epoch"}).assign_coords(epoch=epochs)
    out = out.assign_coords(step=("epoch", sel["step"].values))
    return out


def stack_epochs(runs: Mapping[str, xr.Dataset], *, swept: Mapping[str, Sequence[Any]] | None = None) -> xr.Dataset:
    """Per-epoch curves of several runs stacked along ``run`` (outer join on ``epoch``).

    Parameters
    ----------
    runs : mapping run id -> Dataset
        Each run's ``/metrics`` (dim ``step``).
    swept : mapping key -> values per run, optional
        Swept parameters attached as coordinates on ``run`` (e.g. ``training.seed``).

    Returns
    -------
    Dataset, dims (``run``, ``epoch``); NaN where a run has no such epoch.
    """
    ids = list(runs)
    if not ids:
        raise ValueError("stack_epochs: no runs given")
    parts = [epoch_curves(runs[r]).drop_vars("step") for r in ids]
    import pandas as pd

    ds = xr.concat(parts, dim=pd.Index(ids, name="run"), join="outer", coords="minimal", compat="override")
    for key, values in (swept or {}).items():
        ds = ds.assign_coords({key: ("run", list(values))})
    return ds


def summarize(
    runs: Mapping[str, xr.Dataset],
    *,
    metric: str = "train_acc",
    tau: float = 0.9,
    patience: int = 1,
    interpolate: bool = False,
    last_epochs: int = 10,
    swept: Mapping[str, Sequence[Any]] | None = None,
) -> xr.Dataset:
    """Experiment-level table: epochs to threshold and final values per run.

    Parameters
    ----------
    runs : mapping run id -> Dataset
        Each run's ``/metrics`` (dim ``step``).
    metric, tau, patience, interpolate
        Threshold definition (see :func:`epochs_to_threshold`); ``metric`` ``gap`` is train
        minus test accuracy.
    last_epochs : int
        Window of the ``*_last`` means.
    swept : mapping key -> values per run, optional
        Swept parameters (``runs.csv`` columns) attached as coordinates on ``run``.

    Returns
    -------
    Dataset, dim ``run``: ``epochs_to_threshold`` (NaN if censored), ``censored_at`` (last
    epoch where censored, else NaN), ``n_epochs``, ``final_{train,test,heldout}_acc``,
    ``final_gap``, ``max_gap``, ``test_acc_last`` (mean over the last ``last_epochs`` epochs),
    ``heldout_acc_last``, ``split_fraction`` (fraction of epochs with s != 0),
    ``gradnorm_first_weight_peak`` / ``_final``; attributes state the threshold definition.
    """
    ids = list(runs)
    if not ids:
        raise ValueError("summarize: no runs given")
    cols: dict[str, list[float]] = {
        k: []
        for k in (
            "epochs_to_threshold",
            "censored_at",
            "n_epochs",
            "final_train_acc",
            "final_test_acc",
            "final_heldout_acc",
            "final_gap",
            "max_gap",
            "test_acc_last",
            "heldout_acc_last",
            "split_fraction",
            "gradnorm_first_weight_peak",
            "gradnorm_first_weight_final",
        )
    }
    nan = float("nan")
    for rid in ids:
        ep = epoch_curves(runs[rid])
        ep = ep.sel(epoch=ep["epoch"] >= 0)
        if metric == "gap" and "gap" not in ep:
            ep["gap"] = ep["train_acc"] - ep["test_acc"]
        if metric not in ep:
            raise KeyError(f"run {rid!r}: /metrics has no variable {metric!r}; variables: {sorted(ep.data_vars)}")
        t = epochs_to_threshold(ep[metric], tau, patience=patience, interpolate=interpolate)
        cols["epochs_to_threshold"].append(float(t))
        cols["censored_at"].append(float(t.attrs.get("censored_at", nan)))
        last = ep.isel(epoch=-1)
        tail = ep.sel(epoch=ep["epoch"] > int(ep["epoch"].max()) - last_epochs)
        tail = tail.sel(epoch=tail["epoch"] >= 1)
        gap = ep["train_acc"] - ep["test_acc"]
        cols["n_epochs"].append(float(ep["epoch"].max()))
        cols["final_train_acc"].append(float(last["train_acc"]))
        cols["final_test_acc"].append(float(last["test_acc"]))
        cols["final_heldout_acc"].append(float(last["heldout_acc"]) if "heldout_acc" in ep else nan)
        cols["final_gap"].append(float(gap.isel(epoch=-1)))
        cols["max_gap"].append(float(gap.max()))
        cols["test_acc_last"].append(float(tail["test_acc"].mean()) if tail.sizes["epoch"] else nan)
        cols["heldout_acc_last"].append(
            float(tail["heldout_acc"].mean()) if "heldout_acc" in ep and tail.sizes["epoch"] else nan
        )
        if "split_coef" in ep:
            sc = ep["split_coef"].sel(epoch=ep["epoch"] >= 1).values
            cols["split_fraction"].append(float(np.mean(sc != 0)) if sc.size else nan)
        else:
            cols["split_fraction"].append(nan)
        if "gradnorm_first_weight" in ep:
            g = ep["gradnorm_first_weight"].values
            fin = g[np.isfinite(g)]
            cols["gradnorm_first_weight_peak"].append(float(fin.max()) if fin.size else nan)
            cols["gradnorm_first_weight_final"].append(float(fin[-1]) if fin.size else nan)
        else:
            cols["gradnorm_first_weight_peak"].append(nan)
            cols["gradnorm_first_weight_final"].append(nan)
    ds = xr.Dataset({k: ("run", np.asarray(v, dtype=np.float64)) for k, v in cols.items()}, coords={"run": ids})
    descriptions = {
        "epochs_to_threshold": f"first epoch e >= 1 with {metric} >= {tau} for {patience} consecutive epochs"
        + (" (linear crossing)" if interpolate else "")
        + "; NaN if never reached",
        "censored_at": "last epoch of a run that never reached the threshold (NaN otherwise)",
        "test_acc_last": f"mean test accuracy over the last {last_epochs} epochs",
        "heldout_acc_last": f"mean held-out accuracy over the last {last_epochs} epochs",
        "split_fraction": "fraction of epochs trained with split coefficient s != 0",
        "gradnorm_first_weight_peak": "maximum over epochs of the first-layer weight-gradient norm (last step of each epoch)",
    }
    for k, d in descriptions.items():
        ds[k].attrs["description"] = d
    for key, values in (swept or {}).items():
        ds = ds.assign_coords({key: ("run", list(values))})
    ds.attrs.update(
        threshold_metric=metric,
        tau=float(tau),
        patience=int(patience),
        interpolate=int(bool(interpolate)),
        last_epochs=int(last_epochs),
        paper="003 (Badger, Why deep learning generalizes), Figs. 1b and 2c",
    )
    return ds


# --------------------------------------------------------------------------- Fig. 3


def basin_ratio_log10(n_dims: int) -> float:
    """log10 of the basin-size ratio a/b = (2/3)^n of paper 003 Fig. 3 (n = 1000: -176.091)."""
    return float(n_dims) * math.log10(2.0 / 3.0)
