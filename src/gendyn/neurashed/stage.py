"""Neurashed stage: one phenomenon for several seeds → ``results/neurashed/<study>/<phenomenon>.nc``.

Neurashed studies are simulations, not training runs: the stage takes the phenomenon's
settings (``neurashed.studies.<study>.<phenomenon>``, resolved with
``gendyn.config.stage_settings("neurashed.<phenomenon>", ...)``) and the seeds, and returns
one dataset with a ``seed`` dim; writing it is the caller's job
(:func:`gendyn.store.write_netcdf`). The layout is documented in ``docs/measures.md``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import xarray as xr

from gendyn.neurashed.phenomena import elasticity_experiment, implicit_regularization, information_bottleneck
from gendyn.neurashed.spec import PHENOMENA

__all__ = ["PHENOMENA", "simulate"]

logger = logging.getLogger(__name__)

_RUNNERS: dict[str, Callable[..., xr.Dataset]] = {
    "implicit_regularization": implicit_regularization,
    "information_bottleneck": information_bottleneck,
    "local_elasticity": elasticity_experiment,
}


def simulate(phenomenon: str, settings: Mapping[str, Any], seeds: Sequence[int]) -> xr.Dataset:
    """Run ``phenomenon`` once per seed and stack the results along ``seed``.

    Parameters
    ----------
    phenomenon : {"implicit_regularization", "information_bottleneck", "local_elasticity"}
        Paper 002 Fig. 3, Fig. 4, Sec. 3.
    settings : mapping
        The phenomenon's resolved settings (keyword arguments of
        :mod:`gendyn.neurashed.phenomena`).
    seeds : sequence of int
        Simulator seeds.

    Returns
    -------
    Dataset with a leading ``seed`` dim; the attributes of the first seed's result without
    ``seed``, plus ``seeds`` (list of int) and ``settings`` (JSON, sorted keys).

    Raises
    ------
    ValueError
        For an unknown phenomenon or no seeds.
    """
    if phenomenon not in _RUNNERS:
        raise ValueError(f"phenomenon: {phenomenon!r} is not one of {', '.join(PHENOMENA)}")
    if not seeds:
        raise ValueError(f"neurashed {phenomenon}: no seeds given; pass --seeds 0 1 2 (neurashed.studies.<study>.seeds)")
    fn = _RUNNERS[phenomenon]
    parts = []
    for seed in seeds:
        ds = fn(int(seed), **settings)
        logger.info("%s seed %d done", phenomenon, seed)
        parts.append(ds.expand_dims(seed=[int(seed)]))
    out = xr.concat(parts, dim="seed", data_vars="all", combine_attrs="override")
    out.attrs.pop("seed", None)
    out.attrs.update(seeds=[int(s) for s in seeds], settings=json.dumps(dict(settings), sort_keys=True))
    return out
