"""Local complexity: time of ``gendyn.lc.local_complexity`` ÷ a bare forward of the same vertices.

Baseline (docs/design.md, "Performance targets"): one eval-mode forward, under ``torch.inference_mode``, of
the N·2P neighbourhood vertices, prebuilt outside the timed region and fed in the same chunks
that LC uses (``max_batch`` vertices). LC is timed end to end: building the vertices from
the points and the seeded directions, the hooked forward, the per-layer counting. Both run in
this process, alternating, ``--repeats`` times each; the best times are compared (robust to
other processes on a shared machine), the ratio of the medians is printed too.

Cases (``--cases``, default all):

* ``quick_mlp``: the ``lc_quick`` MLP 784-64-64-10 on 1000 real MNIST images (``mnist5k``
  training split), P = 10 (20 vertices per point). Target ratio <= 1.3.
* ``paper_mlp``: paper 001's MLP 784-200-200-200-10, 1000 images, P = 25 (50 vertices). Target
  ratio <= 1.3.
* ``mlp4x200``: four hidden layers of 200 ReLUs, 1000 images, P = 25.
* ``resnet18``: post-activation ResNet-18 with ``width_factor`` 0.25 (base width 16, CIFAR stem,
  BatchNorm) on 3x32x32 inputs, P = 20 (40 vertices), ``--resnet-points`` points.
* ``preact_resnet18``: paper 001's pre-activation ResNet-18, k = 16, BatchNorm, P = 20,
  ``--resnet-points`` points.
* ``convonly``: paper 001's CNN, depth 5, width 32, BatchNorm, 3x32x32, P = 25,
  ``--cnn-points`` points.

BatchNorm layers get non-trivial running statistics (as after training).

    python benchmarks/lc.py [--threads 1] [--repeats 5] [--cases quick_mlp,paper_mlp] [--resnet-points 64]
                            [--cnn-points 16] [--device cpu]
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


def _randomise_bn(model: torch.nn.Module, gen: torch.Generator) -> torch.nn.Module:
    for m in model.modules():  # non-trivial running statistics, as after training
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.1, 0.1, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
    return model


def _run_model(model_cfg: dict, input_shape: tuple[int, ...], n_classes: int = 10) -> torch.nn.Module:
    cfg = validate_run({"data": {"name": "mnist5k"}, "model": model_cfg, "training": {"steps": 1, "seed": 0}})
    return build_run_model(cfg, input_shape, n_classes)


CASES = ("quick_mlp", "paper_mlp", "mlp4x200", "resnet18", "preact_resnet18", "convonly")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    ap.add_argument("--resnet-points", type=int, default=64)
    ap.add_argument("--cnn-points", type=int, default=16)
    ap.add_argument("--max-batch", type=int, default=10_000)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        ap.error(f"--cases: unknown {unknown}; choose from {', '.join(CASES)}")
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ratios: dict[str, float] = {}

    data = load_data(validate_run({"data": {"name": "mnist5k", "n_test": 4000, "seed": 0}, "model": {"name": "mlp"},
                                   "training": {"steps": 1, "seed": 0}})["data"])  # fmt: skip
    x_mnist = data.train.get(np.arange(1000))[0].to(torch.float32)
    mlps = {
        "quick_mlp": ("MLP 784-64-64-10 (lc_quick), mnist5k", {"name": "mlp", "depth": 2, "width": 64}, 10),
        "paper_mlp": ("MLP 784-200-200-200-10 (paper), mnist5k", {"name": "mlp", "depth": 3, "width": 200}, 25),
        "mlp4x200": ("MLP 4x200, mnist5k", {"name": "mlp", "depth": 4, "width": 200}, 25),
    }
    for key, (name, model_cfg, p) in mlps.items():
        if key in cases:
            model = _run_model(model_cfg, data.input_shape, data.n_classes)
            ratios[key] = bench(name, model, x_mnist, p, 1.0, args.repeats, args.max_batch, device)

    gen = torch.Generator().manual_seed(0)
    convs = {
        "resnet18": ("ResNet-18 (width 16), 3x32x32", {"name": "resnet18", "width_factor": 0.25, "bn": True, "stem": "cifar"},
                     20, args.resnet_points, 0.005),
        "preact_resnet18": ("pre-activation ResNet-18 (k = 16), 3x32x32",
                            {"name": "preact_resnet18", "width_factor": 0.25, "bn": True}, 20, args.resnet_points, 0.005),
        "convonly": ("conv-only CNN depth 5 width 32, 3x32x32", {"name": "convonly", "depth": 5, "width": 32, "bn": True},
                     25, args.cnn_points, 0.005),
    }  # fmt: skip
    for key, (name, model_cfg, p, n_points, radius) in convs.items():
        if key in cases:
            model = _randomise_bn(_run_model(model_cfg, (3, 32, 32)), gen)
            x = torch.randn(n_points, 3, 32, 32, generator=gen)
            ratios[key] = bench(name, model, x, p, radius, args.repeats, args.max_batch, device)
    print("ratios: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()) + " (target <= 1.3)")


if __name__ == "__main__":
    main()
