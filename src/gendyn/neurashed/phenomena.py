"""The three phenomena of paper 002 (Sec. 3) on the neurashed simulator.

* :func:`implicit_regularization` — Fig. 3, small vs large batches on graph ``fig3``;
* :func:`information_bottleneck` — Fig. 4, the information plane of levels 1 and 2 of ``fig4``;
* :func:`elasticity_experiment` — Sec. 3, local elasticity of one step on ``fig1``.

Each takes a seed and the phenomenon's settings (``neurashed.studies.<study>.<phenomenon>``)
and returns an ``xarray.Dataset``; :func:`gendyn.neurashed.stage.simulate` runs one for
several seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import xarray as xr

from gendyn.neurashed.information import mutual_information
from gendyn.neurashed.simulator import Neurashed

__all__ = ["implicit_regularization", "information_bottleneck", "elasticity_experiment"]


def implicit_regularization(
    seed: int = 0,
    *,
    a: float = 1.02,
    b: float = 0.995,
    steps: int = 2000,
    record_every: int = 20,
    init: str = "uniform",
    init_value: float = 0.01,
) -> xr.Dataset:
    """Phenomenon 1 (paper Fig. 3): small- vs large-batch training of one class with two pathways.

    Graph ``fig3``, g+ = a x, g- = b x; ``batch`` "small": one of P1, P2 per step (epoch
    sampling); "large": P1 and P2 in every step. Returns the trajectories with the measures
    over the level-1 nodes 0-5 of class 1: ``shared_share`` = sum lambda(2, 3) / sum
    lambda(0..5) and ``participation`` = (sum lambda)^2 / sum lambda^2, dims (batch, record);
    ``lam`` (batch, record, node). Small batch: share -> 1 (peculiar / shared ~
    (b/a)^(t/2)); large batch: all grow alike, share stays at its initial value.
    """
    parts = []
    for name, batch in (("small", 1), ("large", 2)):
        sim = Neurashed("fig3", ("mul", a), ("mul", b), init, seed, init_value=init_value)  # type: ignore[arg-type]
        ds = sim.train(steps, batch=batch, record_every=record_every, sampling="epoch", types=["P1", "P2"])
        parts.append(ds.expand_dims(batch=[name]))
    out = xr.concat(parts, dim="batch", data_vars="all")
    l1 = [str(i) for i in range(6)]
    lam1 = out["lam"].sel(node=l1)
    out["shared_share"] = lam1.sel(node=["2", "3"]).sum("node") / lam1.sum("node")
    out["participation"] = lam1.sum("node") ** 2 / (lam1**2).sum("node")
    out["shared_share"].attrs["description"] = "sum lambda of the shared level-1 nodes 2, 3 / sum lambda of class-1 nodes 0-5"
    out["participation"].attrs["description"] = "(sum lambda)^2 / sum lambda^2 over level-1 nodes 0-5 (effective number of nodes)"
    out.attrs.update(phenomenon="implicit_regularization", a=a, b=b, seed=seed)
    return out


def information_bottleneck(
    seed: int = 0,
    *,
    base: float = 1.022,
    plus_exponent: float = 1.25,
    minus_exponent: float = -0.25,
    dominant_exponent: float = 0.75,
    steps: int = 4000,
    record_every: int = 100,
    sigma: float = 0.02,
    s0: float = 0.03,
    n_draws: int = 400,
    init_value: float = 0.01,
) -> xr.Dataset:
    """Phenomenon 2 (paper Fig. 4 and appendix): the information plane of levels 1 and 2.

    Graph ``fig4``, uniform init U(0, init_value), g- = base^minus_exponent x, g+ =
    base^plus_exponent x except nodes 7 and 14 (g+ = base^dominant_exponent x), batch 1,
    epoch sampling. The paper's exponent reads "1 1/4" = 5/4 (with 11/4 level 2 never
    compresses). At every record: I(X; T) and I(Y; T) in bits (:func:`mutual_information`,
    seeded per record) for levels 1 and 2. Dims (record, level).
    """
    plus = ("mul", base**plus_exponent)
    dom = ("mul", base**dominant_exponent)
    sim = Neurashed("fig4", plus, ("mul", base**minus_exponent), "uniform", seed, init_value=init_value,
                    g_plus_nodes={"7": dom, "14": dom})  # fmt: skip
    ds = sim.train(steps, batch=1, record_every=record_every, sampling="epoch")
    types = list(sim.type_names)
    ix = np.zeros((ds.sizes["record"], 2))
    iy = np.zeros_like(ix)
    for r in range(ds.sizes["record"]):
        S = sim.scores_of(ds["lam"].values[r], types)
        for k, level in enumerate((1, 2)):
            cols = [sim.index[n] for n in sim.level_nodes(level)]
            ix[r, k], iy[r, k] = mutual_information(S[:, cols], sim._labels, sigma=sigma, s0=s0, n_draws=n_draws, seed=seed * 100_003 + r)
    ds["mi_x"] = (("record", "level"), ix)
    ds["mi_y"] = (("record", "level"), iy)
    ds = ds.assign_coords(level=[1, 2])
    ds["mi_x"].attrs.update(units="bit", description="I(X; T) of the level (X: the 8 types, uniform)")
    ds["mi_y"].attrs.update(units="bit", description="I(Y; T) of the level (Y: the 2 classes)")
    ds.attrs.update(phenomenon="information_bottleneck", base=base, plus_exponent=plus_exponent, minus_exponent=minus_exponent,
                    dominant_exponent=dominant_exponent, sigma=sigma, s0=s0, n_draws=n_draws)  # fmt: skip
    return ds


def elasticity_experiment(
    seed: int = 0,
    *,
    a: float = 1.02,
    b: float = 0.998,
    steps: int = 500,
    update: str = "1a",
    probes: Sequence[str] = ("1b", "2", "3"),
    sampling: Literal["epoch", "iid"] = "iid",
) -> xr.Dataset:
    """Phenomenon 3 (paper Sec. 3, "Local elasticity", Fig. 2): LE of one step on type 1a.

    Graph ``fig1``, uniform init, g+ = a x, g- = b x, ``steps`` steps of batch 1 (``iid``
    sampling), then LE(update -> probe) for each probe (the update type itself too: 1).
    Expected ordering: LE(1a -> 1b) > LE(1a -> 2) > LE(1a -> 3) ~ 0.
    """
    sim = Neurashed("fig1", ("mul", a), ("mul", b), "uniform", seed)
    sim.train(steps, batch=1, record_every=steps, sampling=sampling)
    names = [update, *[p for p in probes if p != update]]
    le = sim.local_elasticity(update, names)
    return xr.Dataset(
        {"le": (("probe",), le), "accuracy": ((), sim.accuracy())},
        coords={"probe": names},
        attrs={"phenomenon": "local_elasticity", "update": update, "a": a, "b": b, "steps": steps, "sampling": sampling, "seed": seed},
    )
