"""``gendyn memorization``: paper-003 experiment tables and figures.

    gendyn memorization summary EXP_DIR OUT.nc [--csv OUT.csv] [--metric train_acc] [--tau 0.9]
    gendyn memorization plot {curves,threshold,gradnorm,gap,basins} PREFIX [--experiment EXP_DIR]
        [--summary summary.nc] [--group-by KEY ...] [--splits train test heldout] [--dpi 150]

``EXP_DIR`` is ``results/{experiment}`` (``runs.csv`` and ``runs/{run}/run.h5``). The summary is
one row per run (dim ``run``): epochs to the threshold and final values, with the swept
parameters as coordinates; see ``docs/measures.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

__all__ = ["register"]

logger = logging.getLogger(__name__)

FIGURES = ("curves", "threshold", "gradnorm", "gap", "basins")


def register(subparsers: Any) -> None:
    """Add ``gendyn memorization ...`` to the CLI."""
    p = subparsers.add_parser("memorization", help="paper 003: epochs-to-threshold table and figures")
    sub = p.add_subparsers(dest="action", required=True)

    s = sub.add_parser("summary", help="experiment table: epochs to threshold and final values per run")
    s.add_argument("experiment", help="experiment folder results/{experiment} (runs.csv, runs/*/run.h5)")
    s.add_argument("out", help="summary netCDF (dim run)")
    s.add_argument("--csv", default=None, help="also write the table as CSV")
    s.add_argument("--metric", default="train_acc", choices=["train_acc", "test_acc", "heldout_acc", "gap"])
    s.add_argument("--tau", type=float, default=0.9, help="threshold (curve >= tau)")
    s.add_argument("--patience", type=int, default=1, help="consecutive epochs at or above tau")
    s.add_argument("--interpolate", action="store_true", help="linear crossing epoch")
    s.add_argument("--last-epochs", type=int, default=10, help="window of the *_last means")
    s.set_defaults(func=cmd_summary)

    s = sub.add_parser("plot", help="one paper-003 figure (PDF + PNG)")
    s.add_argument("figure", choices=FIGURES)
    s.add_argument("prefix", help="output path without extension")
    s.add_argument("--experiment", default=None, help="experiment folder (all figures but basins)")
    s.add_argument("--summary", default=None, help="summary.nc (threshold figure)")
    s.add_argument("--group-by", nargs="*", default=None, help="swept keys defining the groups (default: all but training.seed)")
    s.add_argument("--splits", nargs="*", default=["train", "test", "heldout"], choices=["train", "test", "heldout"])
    s.add_argument("--paper-figure", default="", help="paper figure label for the title")
    s.add_argument("--n-dims", type=int, default=1000, help="basins: dimension n of the ratio (2/3)^n")
    s.add_argument("--dpi", type=int, default=150)
    s.set_defaults(func=cmd_plot)


# --------------------------------------------------------------------------- reading


def _swept_columns(runs: Any) -> dict[str, list[Any]]:
    """runs.csv columns (except ``run``) as plain Python values per run."""
    out: dict[str, list[Any]] = {}
    for col in runs.columns:
        if col == "run":
            continue
        vals = []
        for v in runs[col].tolist():
            if isinstance(v, str):
                try:
                    v = json.loads(v)
                except ValueError:
                    pass
            vals.append(v.item() if hasattr(v, "item") else v)
        out[str(col)] = vals
    return out


def _load_experiment(exp_dir: Path) -> tuple[dict[str, Any], dict[str, list[Any]], dict[str, dict[str, Any]]]:
    """Metrics per run, swept values per key, and root attributes per run."""
    import gendyn

    exp = gendyn.open_experiment(exp_dir)
    metrics: dict[str, Any] = {}
    attrs: dict[str, dict[str, Any]] = {}
    for rid in exp:
        tree = exp[rid]
        metrics[rid] = tree["metrics"].to_dataset().load()
        attrs[rid] = dict(tree.attrs)
    return metrics, _swept_columns(exp.runs), attrs


# --------------------------------------------------------------------------- commands


def cmd_summary(args: argparse.Namespace) -> int:
    from gendyn import store
    from gendyn.memorization import summarize

    metrics, swept, attrs = _load_experiment(Path(args.experiment))
    ds = summarize(
        metrics,
        metric=args.metric,
        tau=args.tau,
        patience=args.patience,
        interpolate=args.interpolate,
        last_epochs=args.last_epochs,
        swept=swept,
    )
    objectives = []
    for rid in metrics:
        cfg = json.loads(attrs[rid].get("config", "{}"))
        objectives.append(str((cfg.get("training", {}).get("objective") or {}).get("name", "")))
    ds = ds.assign_coords(objective=("run", objectives))
    ds.attrs["experiment"] = Path(args.experiment).name
    store.write_netcdf(ds, Path(args.out), measure="memorization")
    if args.csv:
        table = ds.to_dataframe().reset_index()
        store.atomic_write_text(Path(args.csv), table.to_csv(index=False, float_format="%.6g"))
    for rid, t, c in zip(ds["run"].values, ds["epochs_to_threshold"].values, ds["censored_at"].values):
        logger.info("%s: epochs to %s >= %g: %s", rid, args.metric, args.tau, f"{t:g}" if t == t else f"not reached in {c:g}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from gendyn import store
    from gendyn.figures import memorization as figs
    from gendyn.figures import save_figure
    from gendyn.memorization import stack_epochs

    title = args.paper_figure
    if args.figure == "basins":
        fig = figs.basins_schematic(n_dims=args.n_dims, title=title)
        save_figure(fig, Path(args.prefix), dpi=args.dpi)
        return 0
    if args.experiment is None:
        raise FileNotFoundError(f"gendyn memorization plot {args.figure}: --experiment EXP_DIR is required")
    exp_dir = Path(args.experiment)
    title = f"{exp_dir.name}" + (f" ({args.paper_figure})" if args.paper_figure else "")
    if args.figure == "threshold":
        if args.summary is None:
            raise FileNotFoundError("gendyn memorization plot threshold: --summary summary.nc is required")
        summary = store.open_analysis(Path(args.summary)).load()
        fig = figs.threshold_plot(summary, group_by=args.group_by, title=title)
        save_figure(fig, Path(args.prefix), dpi=args.dpi)
        return 0
    metrics, swept, attrs = _load_experiment(exp_dir)
    ds = stack_epochs(metrics, swept=swept)
    if args.figure == "curves":
        n_classes = {int(a.get("n_classes", 0)) for a in attrs.values()}
        ks = set()
        for a in attrs.values():
            obj = json.loads(a.get("config", "{}")).get("training", {}).get("objective") or {}
            if obj.get("name") == "J0":
                ks.add(float(obj.get("k", 0.11)))
        fig = figs.accuracy_curves(
            ds,
            group_by=args.group_by,
            splits=args.splits,
            title=title,
            chance=1.0 / n_classes.pop() if len(n_classes) == 1 and 0 not in n_classes else None,
            k=ks.pop() if len(ks) == 1 else None,
        )
    elif args.figure == "gradnorm":
        fig = figs.gradnorm_curves(ds, group_by=args.group_by, title=title)
    else:
        fig = figs.gap_curves(ds, group_by=args.group_by, title=title)
    save_figure(fig, Path(args.prefix), dpi=args.dpi)
    return 0
