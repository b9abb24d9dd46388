"""Local elasticity: the naive loop (copy, step, forward) ÷ the batched exact computation.

Baseline (docs/design.md, "Performance targets"): ``gendyn.elasticity.local_elasticity_loop`` — for each of
N update samples deep-copy the model, take one plain SGD step on that sample, forward the M
probes and the sample — against ``gendyn.elasticity.local_elasticity(form="exact")``, both
in this process, on the same MLP 784-256-256-10 (ReLU, float64, gendyn's ``mlp``, seeded
init) and N = M = 256 real mnist5k training images (pixels / 255), lr = 0.01,
cross-entropy. Each method runs ``--repeats`` times; the median wall time is used. The
batched engine chosen by ``engine="auto"`` (the exact rank-1 engine for MLPs) is the one
measured; the generic ``vmap`` engine is timed too, for information.

Prints both times, the ratio (target ≥ 10) and the maximum relative error of LE, its
numerator and denominator against the loop (target ≤ 1e-6).

    python benchmarks/elasticity.py [--n 256] [--threads 1] [--repeats 3] [--train-steps 0]

One thread by default: on a shared 2-core machine two threads contend and both timings
become noise.

Why the ratio stays below 10 on a CPU: the exact LE needs the probes' logits under N
different parameter sets. The rank-1 engine removes the first layer's share exactly
(784·256 of the 269k multiply-adds per pair), but the hidden 256x256 product must still be
evaluated for every (update, probe) pair over the features the update changed (the units
active at the update sample: ~52 % at initialisation, ~82 % after 500 steps). For N = M = 256
that product alone is 256 float64 matrix products of 256 x ~135 by ~135 x 256, 4.5 GFLOP,
~0.11-0.13 s at this machine's ~40 GFLOP/s per core, against 1.2-1.6 s for the whole loop:
even with every other step free the ratio would sit near 10-13. Restricting the product to
the units active at the probe as well needs a per-(update, probe) screen for units that flip,
whose elementwise passes over the N x M x width volume cost as much as they save (measured on
prototypes: 0.5 s). The generic vmap engine does the same multiply-adds as the loop (ratio ~1
on a CPU); its gain is on a GPU, where the loop is launch-bound.

``--train-steps k`` first trains the MLP for k SGD steps (batch 64, lr 0.05) so that the
benchmark sees a trained network's ReLU activity (denser: a larger product per update).

The benchmark also times that product on its own (``floor``: one float64 matmul per update
of the measured sizes, nothing else) and prints ``loop / floor``, the ratio an exact engine
of this kind could reach if all its other work were free.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from gendyn.data import load_data
from gendyn.elasticity import local_elasticity, local_elasticity_loop
from gendyn.models import build_model


def _timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    fin = torch.isfinite(a) & torch.isfinite(b)
    return float(((a - b).abs()[fin] / b.abs()[fin].clamp_min(1e-300)).max())


def _product_floor(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Time of the hidden products alone: per update n, W2[:, active_n] (256 x k_n) times a
    (k_n x M) matrix, where active_n are the first hidden layer's active units at x_n."""
    lin = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        active = (x.flatten(1) @ lin[0].weight.T + lin[0].bias) > 0
    w2 = lin[1].weight.detach()
    mats = [(w2[:, a.nonzero().squeeze(1)].contiguous(), torch.randn(int(a.sum()), x.shape[0], dtype=w2.dtype)) for a in active]
    out = torch.empty(w2.shape[0], x.shape[0], dtype=w2.dtype)

    def run() -> None:
        for w, v in mats:
            torch.mm(w, v, out=out)

    return _timed(run, repeats)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="N = M (default 256)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--train-steps", type=int, default=0)
    ap.add_argument("--skip-vmap", action="store_true", help="do not time the generic vmap engine")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    data = load_data({"name": "mnist5k", "n_test": 1000, "seed": 0})
    x, y = data.train.get(np.arange(args.n))
    x = x.double()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model({"name": "mlp", "depth": 2, "width": 256, "dtype": "float64"}, (1, 28, 28), 10)
    if args.train_steps:
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        gen = torch.Generator().manual_seed(1)
        xt, yt = data.train.get(np.arange(len(data.train)))
        for _ in range(args.train_steps):
            idx = torch.randint(0, len(xt), (64,), generator=gen)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx].double()), yt[idx]).backward()
            opt.step()
    model.eval()

    local_elasticity(model, x[:8], y[:8], x[:8], lr=args.lr)  # warm-up
    local_elasticity_loop(model, x[:4], y[:4], x[:4], lr=args.lr)
    t_loop, ref = _timed(lambda: local_elasticity_loop(model, x, y, x, lr=args.lr), args.repeats)
    t_fast, got = _timed(lambda: local_elasticity(model, x, y, x, lr=args.lr, return_parts=True), args.repeats)
    print(f"LE exact, MLP 784-256-256-10 float64, N = M = {args.n}, lr = {args.lr}, {args.threads} threads, "
          f"{'trained ' + str(args.train_steps) + ' steps' if args.train_steps else 'initial weights'}")
    print(f"  naive loop (copy, step, forward): {t_loop:8.3f} s")
    print(f"  batched exact (engine auto):      {t_fast:8.3f} s")
    if not args.skip_vmap:
        t_vmap, got_v = _timed(lambda: local_elasticity(model, x, y, x, lr=args.lr, engine="vmap", return_parts=True), 1)
        print(f"  batched exact (engine vmap):      {t_vmap:8.3f} s   (ratio {t_loop / t_vmap:.2f}, "
              f"max rel. error {_max_rel(got_v.le, ref.le):.2e})")
    t_floor = _product_floor(model, x, args.repeats)
    print(f"  product floor (hidden product only): {t_floor:5.3f} s   (loop / floor {t_loop / t_floor:.2f})")
    print(f"ratio loop / batched: {t_loop / t_fast:.2f}   (target >= 10)")
    err = max(_max_rel(got.le, ref.le), _max_rel(got.num, ref.num), _max_rel(got.den, ref.den))
    print(f"max relative error (le, num, den): {err:.2e}   (target <= 1e-6)")


if __name__ == "__main__":
    main()
