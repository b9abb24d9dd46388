"""The ``gendyn`` command line: one subcommand per workflow stage.

    gendyn train RUN_CONFIG OUT_DIR      train one run (resumes after a kill)
    gendyn info RUN_H5 [--verify]        summarise a run (--verify: reread every checksum)
    gendyn validate CONFIG [CONFIG ...]  validate workflow config files (merged in order) and list
                                         the runs exactly as `snakemake --configfile CONFIG ...` builds them
    gendyn expand CONFIG OUT_ROOT        write runs.csv and run configs without Snakemake
    gendyn plot curves RUN_H5 PREFIX     training-curves figure (PDF + PNG)
    gendyn figures SET SCOPE OUT_DIR     every figure of a measure for one run or experiment
    gendyn diff A B                      compare two results trees, dataset by dataset
    gendyn reproduce RESULTS OUT.csv     the reproduction index: every paper figure's claims, verdicts
    gendyn plan CONFIG [CONFIG ...]      jobs, storage, memory (and time) before anything runs
    gendyn smoke-data DIR                tiny stand-in datasets in the real formats (smoke runs)
    gendyn <measure> <stage> ...         analysis stages of each registered measure
                                         (paths, lc, elasticity, neurashed, memorization)

``run-config`` and ``runs-table`` are used by the Snakemake rules to write the files
derived from the workflow configuration. ``gendyn --log FILE <command>`` sends the command's
stderr (log and progress bar) to FILE, keeping the log of an earlier attempt as
``FILE.1``, ``FILE.2``, ... (the workflow's training jobs use it).

Errors (a bad config, a missing or corrupted file, a full disk, a lock held by another writer)
end the command with one line naming the file or key and exit status 2; ``-v`` shows the
traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]

logger = logging.getLogger("gendyn")


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _load_configs(paths: list[str]) -> dict[str, Any]:
    from gendyn.config import load_workflow_config

    return load_workflow_config(paths)


def _rotate_log(path: Path) -> None:
    """Keep an earlier attempt's log: FILE -> FILE.N (the first free N), then write FILE anew."""
    if not path.exists() or path.stat().st_size == 0:
        return
    n = 1
    while path.with_name(f"{path.name}.{n}").exists():
        n += 1
    path.rename(path.with_name(f"{path.name}.{n}"))


def _redirect_stderr(path: Path) -> None:
    """Send this process's stderr (Python and C level: tracebacks, HDF5, crashes) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _rotate_log(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stderr.flush()
    os.dup2(fd, 2)
    os.close(fd)


# --------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    from gendyn.config import read_run_config
    from gendyn.datainfo import uses_data_root
    from gendyn.train import train_run

    cfg = read_run_config(args.run_config)
    # --data-root only reaches runs that read files from disk: a root is part of their
    # configuration; runs on embedded data stay unchanged (no retraining when it moves).
    if args.data_root and not cfg["data"].get("root") and uses_data_root(cfg["data"]):
        cfg["data"]["root"] = args.data_root
    from gendyn.data import check_data_available

    check_data_available(cfg["data"])
    train_run(cfg, Path(args.out_dir), device=args.device, force=args.force, threads=args.threads)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import h5py
    import numpy as np

    from gendyn import store

    path = Path(args.run_h5)
    if path.is_dir():
        path = path / store.RUN_FILE
    attrs = store.check_run_file(path, require_complete=False)
    cfg = json.loads(attrs["config"])
    if args.verify:
        n = store.verify_file(path, fmt=store.FORMAT)
        ckpt = path.parent / store.CHECKPOINT_FILE
        n_ckpt = store.verify_file(ckpt, fmt=store.CHECKPOINT_FORMAT) if ckpt.exists() else 0
    print(f"{path}")
    print(f"  format {attrs['gendyn_format']}, gendyn {attrs.get('gendyn_version')}, torch {attrs.get('torch_version')}")
    print(f"  status {attrs.get('status')}" + (f", DIVERGED at step {attrs.get('diverged_step')}" if int(attrs.get("diverged", 0)) else ""))
    print(
        f"  experiment {attrs.get('experiment')!r}, run {attrs.get('run')!r}, seed {attrs.get('seed')}, "
        f"device {attrs.get('device')}, threads {attrs.get('threads', 'not recorded')}"
    )
    d, m, t = cfg["data"], cfg["model"], cfg["training"]
    length = f"{t['epochs']} epochs" if t.get("epochs") else f"{t['steps']} steps"
    print(f"  data {d['name']} ({attrs.get('n_train')} train / {attrs.get('n_test')} test), input {tuple(int(s) for s in attrs['input_shape'])}, {attrs.get('n_classes')} classes")
    model_desc = ", ".join(f"{k}={v}" for k, v in m.items() if k != "name")
    print(f"  model {m['name']} ({model_desc})")
    print(f"  training {t['optimizer']} lr={t['lr']} batch={t['batch_size']} {length} loss={t['loss']} ({attrs.get('total_steps')} steps)")
    with h5py.File(path, "r") as f:
        met = f["metrics"]
        n_steps = met["step"].shape[0]
        print(f"  metrics: {n_steps} rows, variables: {', '.join(k for k in met if k != 'step')[:300]}")
        if n_steps:
            last = {k: met[k][-1] for k in ("train_acc", "test_acc", "train_loss", "test_loss") if k in met}
            print(
                f"  final (step {int(met['step'][-1])}): "
                + ", ".join(f"{k}={float(v):.4f}" for k, v in last.items())
            )
        n_img = f["tracked"]["index"].shape[0]
        splits = [s.decode() if isinstance(s, bytes) else s for s in f["tracked"]["split"][:]]
        print(f"  tracked images: {n_img} ({splits.count('train')} train, {splits.count('test')} test)")
        for gname in ("masks", "activations"):
            if gname not in f:
                continue
            g = f[gname]
            layers = json.loads(attrs["layers"])
            n_rec = g["record"].shape[0]
            steps = g["step"][:]
            total_bytes = sum(g[name].id.get_storage_size() for name in layers if name in g)
            span = f"steps {int(steps[0])}..{int(steps[-1])}" if n_rec else "empty"
            print(f"  /{gname}: {n_rec} records ({span}), {len(layers)} layers, {total_bytes / 2**20:.2f} MiB")
            for name in layers:
                a = {k: store.attr_value(x) for k, x in g[name].attrs.items()}
                shape = tuple(int(s) for s in np.atleast_1d(a["unit_shape"]))
                print(f"    {name:<24s} module {a['module']:<22s} units {int(a['n_units']):>9d}  shape {shape}")
    ckpt = path.parent / store.CHECKPOINT_FILE
    if ckpt.exists():
        steps = store.checkpoint_steps(ckpt)
        print(f"  checkpoints: {len(steps)} ({ckpt.stat().st_size / 2**20:.2f} MiB)")
    print(f"  size {path.stat().st_size / 2**20:.2f} MiB")
    if args.verify:
        print(f"  verified: every checksum matches ({n} datasets in {path.name}, {n_ckpt} in {store.CHECKPOINT_FILE})")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from gendyn.config import active_experiments, expand_experiment

    cfg = _load_configs(args.configs)
    for name in active_experiments(cfg):
        runs = expand_experiment(name, cfg["experiments"][name], data_root=cfg.get("data_root"))
        print(f"{name}: {len(runs)} run(s): {', '.join(r for r, _, _ in runs)}")
    return 0


def cmd_expand(args: argparse.Namespace) -> int:
    from gendyn.config import active_experiments, expand_experiment, write_run_config, write_runs_table

    cfg = _load_configs(args.configs)
    root = Path(args.out_root)
    for name in active_experiments(cfg):
        runs = expand_experiment(name, cfg["experiments"][name], data_root=cfg.get("data_root"))
        write_runs_table(runs, root / name / "runs.csv")
        for rid, _, rcfg in runs:
            write_run_config(rcfg, root / name / "runs" / rid / "config.yaml")
        print(f"{root / name}: {len(runs)} run(s)")
    return 0


def cmd_run_config(args: argparse.Namespace) -> int:
    from gendyn.config import validate_run, write_run_config

    write_run_config(validate_run(json.loads(args.json)), Path(args.out))
    return 0


def cmd_runs_table(args: argparse.Namespace) -> int:
    from gendyn.config import write_runs_table

    rows = json.loads(args.json)
    write_runs_table([(r["run"], r["swept"], None) for r in rows], Path(args.out))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from gendyn.config import parse_overrides
    from gendyn.plan import format_plan, plan_files

    overrides = parse_overrides(args.config or [])
    bad = [k for k in overrides if "." in k]
    if bad:
        raise ValueError(f"--config {bad[0]}=...: give top-level keys only, as Snakemake's --config does")
    plan = plan_files(args.configs, config=overrides, snakefile=args.snakefile, probe=not args.documented,
                      calibrate=args.calibrate)  # fmt: skip
    if args.json:
        print(json.dumps(plan.as_dict(), indent=1, sort_keys=False, default=float))
    else:
        print(format_plan(plan))
    return 0


def cmd_smoke_data(args: argparse.Namespace) -> int:
    from gendyn.smoke import write_standins

    datasets = args.datasets or ["mnist", "cifar10", "cifar100", "imagenet"]
    folder = write_standins(Path(args.out_dir), datasets=datasets, seed=args.seed)
    print(f"{folder}: stand-in {', '.join(sorted(datasets))} (use: --config smoke=true smoke_data={folder})")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from gendyn import store
    from gendyn.figures import save_figure
    from gendyn.figures.curves import training_curves

    path = Path(args.run_h5)
    attrs = store.check_run_file(path)
    metrics = store.open_group(path, "metrics")
    title = f"{attrs.get('experiment', '')} / {attrs.get('run', '')}"
    log_x: Any = {"auto": "auto", "true": True, "false": False}[args.log_x]
    fig = training_curves(metrics, title=title, x_axis=args.x_axis, log_x=log_x, attrs=attrs)
    save_figure(fig, Path(args.prefix), dpi=args.dpi)
    return 0


# --------------------------------------------------------------------------- parser


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gendyn", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="count", default=1, help="debug log output and full tracebacks")
    p.add_argument(
        "--log", default=None, metavar="FILE",
        help="write stderr (log, progress) to FILE; an existing FILE from an earlier attempt is kept as FILE.1, FILE.2, ...",
    )  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("train", help="train one run with recording (resumes after a kill)")
    s.add_argument("run_config", help="resolved run config (runs/{run}/config.yaml)")
    s.add_argument("out_dir", help="run directory; receives run.h5 and checkpoints.h5")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="override training.device")
    s.add_argument(
        "--threads", type=int, default=None,
        help="torch CPU threads (part of the run's identity: CPU results depend on it); default: the count "
        "recorded by an interrupted attempt, else 1",
    )  # fmt: skip
    s.add_argument("--data-root", default=None, help="data.root of a run on on-disk data whose config has none")
    s.add_argument("--force", action="store_true", help="retrain even if a complete run.h5 exists")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("info", help="summarise a run.h5")
    s.add_argument("run_h5", help="run.h5 or run directory")
    s.add_argument(
        "--verify", action="store_true",
        help="reread every dataset of run.h5 and checkpoints.h5 and compare it with its stored checksum (exit 2 if one differs)",
    )  # fmt: skip
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("validate", help="validate workflow config files (merged in order) and list the runs")
    s.add_argument("configs", nargs="+")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("expand", help="write runs.csv and run configs of the active experiments")
    s.add_argument("configs", nargs="+")
    s.add_argument("--out-root", default="results")
    s.set_defaults(func=cmd_expand)

    s = sub.add_parser(
        "plan",
        help="jobs, storage, memory (and time) of a workflow config before anything runs",
        description="Plan a workflow config as `snakemake --configfile CONFIG ...` would run it: per experiment the "
        "runs, jobs per rule and GPU jobs (from Snakemake's own DAG), the bytes of run.h5, checkpoints.h5 and the "
        "analysis outputs (from shapes), and a peak-memory estimate per analysis stage against its budget.",
    )
    s.add_argument("configs", nargs="+", help="config files, merged in order: the whole configuration, as with snakemake --configfile")
    s.add_argument("--json", action="store_true", help='print {"experiments": {NAME: {"runs", "jobs", "bytes": {...}}}}')
    s.add_argument("--calibrate", action="store_true",
                   help="time a few training steps of every model on this machine (GPU if visible) and estimate the training time")
    s.add_argument("--config", nargs="*", metavar="KEY=VALUE", help="top-level config values, as snakemake --config (e.g. smoke=true)")
    s.add_argument("--snakefile", default=None, help="the workflow's Snakefile (default: this source checkout's)")
    s.add_argument("--documented", action="store_true",
                   help="use the documented dataset sizes even where the data is on this machine")
    s.set_defaults(func=cmd_plan)

    s = sub.add_parser(
        "smoke-data",
        help="write tiny stand-in datasets in the real formats (CIFAR-10/100, MNIST, ImageNet folders) for smoke runs",
        description="Write tiny stand-ins of the on-disk datasets into OUT_DIR, in the real file formats, for "
        "smoke runs (snakemake --config smoke=true smoke_data=OUT_DIR). Pretrained-weights stand-ins are written "
        "by the smoke run itself, for the models its experiments name.",
    )
    s.add_argument("out_dir", help="folder to write (becomes the smoke run's data.root)")
    s.add_argument("--datasets", nargs="+", choices=["mnist", "cifar10", "cifar100", "imagenet"], default=None,
                   help="datasets to write (default: all)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_smoke_data)

    s = sub.add_parser("run-config", help=argparse.SUPPRESS)
    s.add_argument("json")
    s.add_argument("out")
    s.set_defaults(func=cmd_run_config)

    s = sub.add_parser("runs-table", help=argparse.SUPPRESS)
    s.add_argument("json")
    s.add_argument("out")
    s.set_defaults(func=cmd_runs_table)

    s = sub.add_parser("plot", help="figures")
    psub = s.add_subparsers(dest="figure", required=True)
    c = psub.add_parser("curves", help="training curves of one run (PDF + PNG)")
    c.add_argument("run_h5")
    c.add_argument("prefix", help="output path without extension")
    c.add_argument("--dpi", type=int, default=150)
    c.add_argument("--x-axis", choices=["auto", "step", "epoch"], default="auto", help="auto: epochs for runs recorded once per epoch, else steps")
    c.add_argument("--log-x", type=str.lower, choices=["auto", "true", "false"], default="auto")
    c.set_defaults(func=cmd_plot)
    import importlib

    from gendyn import dask_cluster, diff, registry
    from gendyn.figures import jobs
    from gendyn.reproduction import cli as reproduction_cli

    jobs.register(sub)
    diff.register(sub)
    reproduction_cli.register(sub)
    dask_cluster.register(sub)
    # Every registered measure adds its subcommand (gendyn/<measure>/cli.py).
    for name in registry.NAMES:
        importlib.import_module(f"gendyn.{name}.cli").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.log:
        _redirect_stderr(Path(args.log))
    _setup_logging(args.verbose)
    from gendyn.config import ConfigError

    try:
        return int(args.func(args) or 0)
    except (ConfigError, OSError, KeyError, ValueError) as e:
        # OSError: StoreError (missing, corrupted, unwritable file), LockHeld (another writer), a
        # full disk or a read-only directory: one line naming the path, never a traceback.
        if args.verbose > 1:
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"gendyn {args.command}: error: {msg} (run with -v for the traceback)", file=sys.stderr)
        return 2
    except Exception as e:
        from gendyn.train import TrainingDiverged

        if isinstance(e, TrainingDiverged):
            print(f"gendyn {args.command}: error: {e}", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
