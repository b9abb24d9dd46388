"""``gendyn neurashed``: simulations of the neurashed model (paper 002) and their figures.

    gendyn neurashed simulate PHENOMENON OUT.nc [--settings JSON] [--seeds 0 1 ...]
        PHENOMENON: implicit_regularization (Fig. 3), information_bottleneck (Fig. 4),
        local_elasticity (Sec. 3); one dataset with a ``seed`` dim
    gendyn neurashed plot FIGURE PREFIX [IN.nc]
        FIGURE: fig1, fig2 (graph drawings, no input), fig3, fig4, elasticity

Settings are the keys of ``neurashed.studies.<study>.<phenomenon>`` in the workflow
configuration (schema ``$defs/neurashed``); defaults fill what is missing.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

__all__ = ["register", "PHENOMENA", "FIGURES", "resolve_settings", "simulate"]

logger = logging.getLogger(__name__)

PHENOMENA = ("implicit_regularization", "information_bottleneck", "local_elasticity")
FIGURES = ("fig1", "fig2", "fig3", "fig4", "elasticity")


def resolve_settings(phenomenon: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Settings of one phenomenon validated against the schema, defaults filled."""
    from gendyn.config import ConfigError, _check, _fill_defaults, schema

    if phenomenon not in PHENOMENA:
        raise ConfigError(f"phenomenon: {phenomenon!r} is not one of {', '.join(PHENOMENA)}")
    root = schema()
    study = root["$defs"]["neurashed"]["properties"]["studies"]["additionalProperties"]
    node = {"$defs": root["$defs"], **study["properties"][phenomenon]}
    value = dict(settings or {})
    _check(value, node, f"neurashed.studies.<study>.{phenomenon}", "")
    return _fill_defaults(node, value)


def simulate(phenomenon: str, settings: dict[str, Any], seeds: list[int]) -> Any:
    """Run a phenomenon for every seed; an ``xarray.Dataset`` with a ``seed`` dim."""
    import xarray as xr

    from gendyn import neurashed as ns

    fn = {"implicit_regularization": ns.implicit_regularization, "information_bottleneck": ns.information_bottleneck,
          "local_elasticity": ns.elasticity_experiment}[phenomenon]  # fmt: skip
    parts = []
    for seed in seeds:
        ds = fn(int(seed), **settings)
        logger.info("%s seed %d done", phenomenon, seed)
        parts.append(ds.expand_dims(seed=[int(seed)]))
    out = xr.concat(parts, dim="seed", data_vars="all", combine_attrs="override")
    out.attrs.pop("seed", None)
    out.attrs.update(seeds=[int(s) for s in seeds], settings=json.dumps(settings, sort_keys=True))
    return out


def cmd_simulate(args: argparse.Namespace) -> int:
    from gendyn import store

    s = resolve_settings(args.phenomenon, json.loads(args.settings) if args.settings else {})
    ds = simulate(args.phenomenon, s, list(args.seeds))
    for name in ("train_types",):
        if name in ds.attrs:
            ds.attrs[name] = json.dumps(ds.attrs[name])
    store.write_netcdf(ds, Path(args.out), measure="neurashed")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from gendyn import store
    from gendyn.figures import neurashed as figs
    from gendyn.figures import save_figure

    need = args.figure in ("fig3", "fig4", "elasticity")
    if need and not args.input:
        raise FileNotFoundError(f"gendyn neurashed plot {args.figure}: give the simulation .nc written by 'gendyn neurashed simulate'")
    ds = store.open_analysis(args.input).load() if need else None
    fig = {
        "fig1": lambda: figs.fig1_graph(),
        "fig2": lambda: figs.fig2_pathways(),
        "fig3": lambda: figs.fig3_implicit_regularization(ds),
        "fig4": lambda: figs.fig4_information_bottleneck(ds),
        "elasticity": lambda: figs.elasticity_bars(ds),
    }[args.figure]()
    save_figure(fig, Path(args.prefix), dpi=args.dpi)
    return 0


def register(subparsers: Any) -> None:
    """Add ``gendyn neurashed ...`` to the CLI."""
    p = subparsers.add_parser("neurashed", help="neurashed simulator (paper 002): Figs. 1-4 and its local elasticity")
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser("simulate", help="run one phenomenon for several seeds")
    s.add_argument("phenomenon", choices=PHENOMENA)
    s.add_argument("out", help="output .nc")
    s.add_argument("--settings", default=None, help="the phenomenon's settings as JSON (defaults fill the rest)")
    s.add_argument("--seeds", type=int, nargs="+", default=[0])
    s.set_defaults(func=cmd_simulate)
    pl = sub.add_parser("plot", help="figures (PDF + PNG)")
    pl.add_argument("figure", choices=FIGURES)
    pl.add_argument("prefix", help="output path without extension")
    pl.add_argument("input", nargs="?", default=None, help="simulation .nc (fig3, fig4, elasticity)")
    pl.add_argument("--dpi", type=int, default=150)
    pl.set_defaults(func=cmd_plot)
