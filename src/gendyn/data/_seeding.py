"""Seeded generators of the data package, derived from ``(data.seed, purpose...)``.

Every random choice (split, subsets, label noise, noise images, augmentation, loader
order) gets its own generator from the seed and a purpose name, so choices never
interact and the global NumPy / torch RNGs are never touched.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["np_rng", "torch_seed", "torch_gen"]


def _entropy(seed: int, purpose: Sequence[str | int]) -> list[int]:
    out = [int(seed)]
    for p in purpose:
        out.append(zlib.crc32(p.encode("utf-8")) if isinstance(p, str) else int(p))
    return out


def np_rng(seed: int, *purpose: str | int) -> np.random.Generator:
    """Independent NumPy generator for ``(seed, *purpose)``."""
    return np.random.default_rng(_entropy(seed, purpose))


def torch_seed(seed: int, *purpose: str | int) -> int:
    """63-bit seed for a torch generator derived from ``(seed, *purpose)``."""
    state = np.random.SeedSequence(_entropy(seed, purpose)).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def torch_gen(seed: int, *purpose: str | int) -> torch.Generator:
    """Independent CPU torch generator for ``(seed, *purpose)``."""
    return torch.Generator(device="cpu").manual_seed(torch_seed(seed, *purpose))
