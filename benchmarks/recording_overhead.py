"""Recording overhead: one training epoch that records ReLU masks of 1024 tracked images ÷ a plain epoch.

Baseline (docs/design.md, "Performance targets"): a plain epoch of the same run with recording off.
Both runs are real ``gendyn.train.train_run`` calls in this process on a synthetic
50,000-image CIFAR-shaped training set (written in the real CIFAR-10 pickle format and read
by the real loader), small CNN, one epoch, one record point at its end. They differ only in
``recording.masks`` and the number of tracked images (0 vs 1024 = 512 train + 512 test);
metrics are evaluated identically (on a 1000-image subset) in both. Each variant runs
``--repeats`` times, alternating; the median wall time of each is used. Because the
difference (~1-2 %) is below this machine's run-to-run noise, the isolated cost of one
record point (masks of the 1024 tracked images, with and without masks, same process) is
also timed and printed as a fraction of the plain epoch.

Also prints the storage ratio: bytes of /masks ÷ (records · images · units / 8).

    python benchmarks/recording_overhead.py [--width 32] [--repeats 2] [--threads 2]

Target: ratio ≤ 1.05.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from gendyn.config import validate_run
from gendyn.data import load_data
from gendyn.train import _Trainer, train_run


def write_synthetic_cifar10(root: Path, n_train: int = 50_000, n_test: int = 2_000, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True, exist_ok=True)
    per = n_train // 5
    for b in range(5):
        batch = {b"data": rng.integers(0, 256, (per, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, per).tolist()}
        (d / f"data_batch_{b + 1}").write_bytes(pickle.dumps(batch))
    test = {b"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, n_test).tolist()}
    (d / "test_batch").write_bytes(pickle.dumps(test))
    meta = {b"label_names": [f"c{i}".encode() for i in range(10)]}
    (d / "batches.meta").write_bytes(pickle.dumps(meta))


def run_config(root: Path, *, record: bool, width: int) -> dict:
    return validate_run(
        {
            "experiment": "bench",
            "run": "record" if record else "plain",
            "data": {"name": "cifar10", "root": str(root), "augment": False},
            "model": {"name": "cnn", "depth": 2, "width": width},
            "training": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "batch_size": 128, "epochs": 1, "device": "cpu"},
            "recording": {
                "schedule": {"kind": "epoch", "every": 1, "include_init": False},
                "masks": record,
                "n_tracked_train": 512 if record else 0,
                "n_tracked_test": 512 if record else 0,
                "metrics_subset": 1000,
                "grad_norms": True,
                "checkpoints": True,
            },
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_synthetic_cifar10(tmp / "data")
        cfgs = {k: run_config(tmp / "data", record=k == "record", width=args.width) for k in ("plain", "record")}
        data = load_data(cfgs["plain"]["data"])
        times: dict[str, list[float]] = {"plain": [], "record": []}
        for rep in range(args.repeats):
            for kind in ("plain", "record"):
                out = tmp / f"{kind}{rep}"
                t0 = time.perf_counter()
                train_run(cfgs[kind], out, data=data)
                times[kind].append(time.perf_counter() - t0)
        record_cost = {}
        for kind in ("plain", "record"):
            trainer = _Trainer(cfgs[kind], tmp / f"iso-{kind}", device=torch.device("cpu"), data=data)
            trainer.out.mkdir(parents=True, exist_ok=True)
            trainer._open_writers(resume=False)
            costs = []
            for k in range(5):
                t0 = time.perf_counter()
                trainer._record(k + 1)
                costs.append(time.perf_counter() - t0)
            record_cost[kind] = float(np.median(costs))
        with h5py.File(tmp / "record0" / "run.h5") as f:
            layers = [k for k, v in f["masks"].items() if v.ndim == 3]
            stored = sum(f["masks"][k].id.get_storage_size() for k in layers)
            bits = sum(
                f["masks"][k].shape[0] * f["masks"][k].shape[1] * int(np.atleast_1d(f["masks"][k].attrs["n_units"])[0])
                for k in layers
            )
    plain, record = float(np.median(times["plain"])), float(np.median(times["record"]))
    extra = record_cost["record"] - record_cost["plain"]
    print(f"synthetic CIFAR-10: 50000 train images, small CNN (depth 2, width {args.width}), batch 128, {args.threads} threads")
    print(f"plain epoch           : {plain:8.2f} s   (runs: {', '.join(f'{t:.2f}' for t in times['plain'])})")
    print(f"epoch recording masks : {record:8.2f} s   (runs: {', '.join(f'{t:.2f}' for t in times['record'])})")
    print(f"recording overhead ratio, whole epochs (target <= 1.05): {record / plain:.3f}")
    print(
        f"one record point: {record_cost['record']:.3f} s with masks vs {record_cost['plain']:.3f} s without "
        f"(metrics only) -> mask recording adds {extra:.3f} s = ratio {(plain + extra) / plain:.4f} of a plain epoch"
    )
    print(f"storage ratio /masks bytes / (records*images*units/8) (target <= 1.05): {stored / (bits / 8):.4f}")


if __name__ == "__main__":
    main()
