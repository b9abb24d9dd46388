"""Benchmark of the cross-path Gram stage (paper 000), measured in one process.

1. Throughput: ``gendyn.paths.cross_path_similarity`` on bit-packed masks of N = 2048 images x
   D = 16,384 units (two records) against a bare float32 matmul of the same shape,
   (N, D) @ (D, N), in the same process and thread setting. Printed:

   * ``time ratio`` = t(bare matmul) / t(pairwise stage). The stage forms three Grams
     (s s^T, P_t P_t^T, P_prev P_prev^T), so 1/3 would be "three bare matmuls".
   * ``GFLOP/s ratio`` (docs/design.md target, >= 0.5) = (flops the stage performs / t(stage)) /
     (2 N^2 D / t(matmul)). Each Gram is a symmetric rank-k product (BLAS syrk) of N (N + 1) D
     flops, so the stage performs 3 N (N + 1) D flops; unpacking, the AND and the ratio are
     counted as overhead, not as flops.

2. Peak memory: the streaming analysis (``gendyn.paths.cross_path_dataset``: exact Grams,
   summaries over all pairs, full matrices for the first 128 images, neighbour ranks) for one
   record pair of N = 8192 images x D = 65,536 units under the default 4 GiB budget, run in a
   fresh subprocess. Printed: the tracemalloc peak of the stage (numpy/Python allocations) and
   the growth of the process's peak RSS (``ru_maxrss``) during the stage (everything, BLAS
   buffers included), next to the budget.

Usage::

    python benchmarks/paths_gram.py [--threads T] [--skip-memory] [--n N --d D] [--mem-n N --mem-d D]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _best(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def throughput(n: int, d: int, repeat: int, threads: int) -> dict:
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from gendyn import paths

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    p_prev = rng.random((n, d)) < 0.5
    p_t = p_prev ^ (rng.random((n, d)) < 0.1)
    packed_t = np.packbits(p_t, axis=1, bitorder="little")
    packed_prev = np.packbits(p_prev, axis=1, bitorder="little")
    a = rng.random((n, d), dtype=np.float32)
    b = rng.random((n, d), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    with threadpool_limits(limits=threads):
        t_np = _best(lambda: a @ b.T, repeat)
        t_torch = _best(lambda: ta @ tb.T, repeat)
        t_stage = _best(lambda: paths.cross_path_similarity(packed_t, packed_prev, n_units=d), repeat)
    t_mm = min(t_np, t_torch)
    mm_flops = 2.0 * n * n * d
    stage_flops = 3.0 * n * (n + 1) * d
    return {
        "n": n,
        "d": d,
        "threads": threads,
        "t_matmul_numpy_s": t_np,
        "t_matmul_torch_s": t_torch,
        "t_matmul_s": t_mm,
        "t_stage_s": t_stage,
        "gflops_matmul": mm_flops / t_mm / 1e9,
        "gflops_stage": stage_flops / t_stage / 1e9,
        "gflops_ratio": (stage_flops / t_stage) / (mm_flops / t_mm),
        "time_ratio": t_mm / t_stage,
    }


def memory_child(n: int, d: int, budget: int, threads: int) -> dict:
    """Runs in a fresh process: RSS and tracemalloc peak of one streaming record pair."""
    import resource
    import tracemalloc

    import numpy as np
    from threadpoolctl import threadpool_limits

    from gendyn import paths

    rng = np.random.default_rng(0)
    n_bytes = (d + 7) // 8
    packed = np.empty((2, n, n_bytes), dtype=np.uint8)
    for r in range(2):  # generated in slices so the generator's temporaries stay small
        for i in range(0, n, 512):
            m = rng.random((min(512, n - i), d), dtype=np.float32) < 0.5
            packed[r, i : i + len(m)] = np.packbits(m, axis=1, bitorder="little")
            del m
    labels = rng.integers(0, 10, size=n)
    plan = paths.plan_blocks(n, d, mem_budget_bytes=budget)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    t0 = time.perf_counter()
    with threadpool_limits(limits=threads):
        res = paths.cross_path_dataset({"layer": packed}, {"layer": d}, labels=labels, max_pairwise=128,
                                       mem_budget_bytes=budget)
    wall = time.perf_counter() - t0
    _, peak_traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "n": n,
        "d": d,
        "budget_bytes": budget,
        "input_bytes": int(packed.nbytes),
        "plan": {"block_images": plan.block_images, "chunk_units": plan.chunk_units, "est_bytes": plan.est_bytes},
        "tracemalloc_peak_bytes": int(peak_traced),
        "rss_peak_before_bytes": int(rss_before),
        "rss_peak_after_bytes": int(rss_after),
        "rss_growth_bytes": int(rss_after - rss_before),
        "wall_s": wall,
        "mean_S": float(res["cross_path_mean"][1][0, 0]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--d", type=int, default=16384)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--mem-n", type=int, default=8192)
    ap.add_argument("--mem-d", type=int, default=65536)
    ap.add_argument("--budget-mb", type=int, default=4096)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        print(json.dumps(memory_child(args.mem_n, args.mem_d, args.budget_mb << 20, args.threads)))
        return

    t = throughput(args.n, args.d, args.repeat, args.threads)
    print(f"pairwise stage, N={t['n']} D={t['d']}, {t['threads']} thread(s), best of {args.repeat}:")
    print(f"  bare float32 matmul (N,D)@(D,N): numpy {t['t_matmul_numpy_s']:.3f} s, torch {t['t_matmul_torch_s']:.3f} s"
          f" -> best {t['gflops_matmul']:.1f} GFLOP/s")
    print(f"  cross_path_similarity (packed input, 3 exact Grams + ratio): {t['t_stage_s']:.3f} s"
          f" -> {t['gflops_stage']:.1f} GFLOP/s performed")
    print(f"  GFLOP/s ratio stage/matmul = {t['gflops_ratio']:.2f}   (target >= 0.5)")
    print(f"  time ratio matmul/stage    = {t['time_ratio']:.2f}   (3 Grams per stage; 0.33 = three bare matmuls)")

    if args.skip_memory:
        return
    cmd = [sys.executable, __file__, "--child", "--mem-n", str(args.mem_n), "--mem-d", str(args.mem_d),
           "--budget-mb", str(args.budget_mb), "--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    mib = 2**20
    print(f"out-of-core stage, one record pair, N={m['n']} D={m['d']}, budget {m['budget_bytes'] / mib:.0f} MiB:")
    print(f"  plan: blocks of {m['plan']['block_images']} images, chunks of {m['plan']['chunk_units']} units,"
          f" estimate {m['plan']['est_bytes'] / mib:.0f} MiB; input (packed, 2 records) {m['input_bytes'] / mib:.0f} MiB")
    print(f"  tracemalloc peak of the stage: {m['tracemalloc_peak_bytes'] / mib:.0f} MiB")
    print(f"  peak RSS growth during the stage: {m['rss_growth_bytes'] / mib:.0f} MiB"
          f" (process peak {m['rss_peak_after_bytes'] / mib:.0f} MiB, of which {m['rss_peak_before_bytes'] / mib:.0f} MiB"
          " before: interpreter, libraries, input)")
    ok = max(m["tracemalloc_peak_bytes"], m["rss_growth_bytes"]) <= m["budget_bytes"]
    print(f"  under budget: {'yes' if ok else 'NO'}   (wall {m['wall_s']:.0f} s, mean S {m['mean_S']:.4f})")


if __name__ == "__main__":
    main()
