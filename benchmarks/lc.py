"""Local complexity: time of ``gendyn.lc.local_complexity`` ÷ a bare forward of the same vertices.

Baseline (docs/design.md, "Performance targets"): one eval-mode forward, under ``torch.inference_mode``, of
the N·2P neighbourhood vertices, prebuilt outside the timed region and fed in the same chunks
that LC uses (``max_batch`` vertices). LC is timed end to end: building the vertices from
the points and the seeded directions, the hooked forward, the per-layer counting. Both run in
this process, alternating, ``--repeats`` times each; the best times are compared (robust to
other processes on a shared machine), the ratio of the medians is printed too.

Two cases:

* MLP 4×200 (four hidden layers of 200 ReLUs) on 1000 real MNIST images (``mnist5k``
  training split), P = 25 (50 vertices per point): 50,000 vertices. Target ratio ≤ 1.3.
* ResNet-18 with ``width_factor`` 0.25 (base width 16, CIFAR stem, BatchNorm) on 3×32×32
  inputs, P = 20 (40 vertices, the authors' ResNet setting), ``--resnet-points`` points.

    python benchmarks/lc.py [--threads 2] [--repeats 3] [--resnet-points 64] [--device cpu]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import numpy as np
import torch

from gendyn.config import validate_run
from gendyn.data import load_data
from gendyn.lc import local_complexity, orthonormal_directions
from gendyn.models import build_run_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(
    name: str,
    model: torch.nn.Module,
    x: torch.Tensor,
    n_directions: int,
    radius: float,
    repeats: int,
    max_batch: int,
    device: torch.device,
) -> float:
    model = model.to(device).eval()
    x = x.to(device)
    v = orthonormal_directions(x.shape[1:], n_directions, seed=0)
    n_vert = 2 * n_directions
    chunk = max(1, max_batch // n_vert)
    vd = v.to(device=device, dtype=x.dtype) * radius
    # the bare forward's input: the same vertices, built once, outside the timed region
    chunks = [
        torch.cat([x[i : i + chunk, None] + vd[None], x[i : i + chunk, None] - vd[None]], 1).reshape(-1, *x.shape[1:])
        for i in range(0, len(x), chunk)
    ]

    def bare() -> None:
        with torch.inference_mode():
            for c in chunks:
                model(c)

    def lc() -> None:
        local_complexity(model, x, radius, directions=v, max_batch=max_batch)

    bare()
    lc()  # warm-up (allocator, kernels)
    t_bare, t_lc = [], []
    for _ in range(repeats):
        for fn, store in ((bare, t_bare), (lc, t_lc)):
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            store.append(time.perf_counter() - t0)
    mb, ml = min(t_bare), min(t_lc)
    ratio = ml / mb
    med = statistics.median(t_lc) / statistics.median(t_bare)
    print(
        f"{name}: {len(x)} points x {n_vert} vertices = {len(x) * n_vert} forwards; "
        f"bare forward {mb:.3f} s, LC {ml:.3f} s (best of {repeats}); ratio LC / bare = {ratio:.3f} "
        f"(ratio of medians {med:.3f})"
    )
    return ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--resnet-points", type=int, default=64)
    ap.add_argument("--max-batch", type=int, default=10_000)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    cfg = validate_run(
        {
            "data": {"name": "mnist5k", "n_test": 4000, "seed": 0},
            "model": {"name": "mlp", "depth": 4, "width": 200},
            "training": {"steps": 1, "seed": 0},
        }
    )
    data = load_data(cfg["data"])
    x = data.train.get(np.arange(1000))[0].to(torch.float32)
    mlp = build_run_model(cfg, data.input_shape, data.n_classes)
    r_mlp = bench("MLP 4x200, mnist5k", mlp, x, 25, 1.0, args.repeats, args.max_batch, device)

    cfg_r = validate_run(
        {
            "data": {"name": "mnist5k"},
            "model": {"name": "resnet18", "width_factor": 0.25, "bn": True, "stem": "cifar"},
            "training": {"steps": 1, "seed": 0},
        }
    )
    resnet = build_run_model(cfg_r, (3, 32, 32), 10)
    gen = torch.Generator().manual_seed(0)
    for m in resnet.modules():  # non-trivial running statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
    xr = torch.randn(args.resnet_points, 3, 32, 32, generator=gen)
    r_res = bench("ResNet-18 (width 16), 3x32x32", resnet, xr, 20, 0.005, args.repeats, args.max_batch, device)
    print(f"ratios: MLP {r_mlp:.3f} (target <= 1.3), ResNet-18 {r_res:.3f}")


if __name__ == "__main__":
    main()
