"""The noise inputs of paper 003: fixed scaled Gaussian noise and noise/real mixtures.

The draws are those of the datasets ``data.name: gaussian_noise`` / ``mixture``
(:func:`gendyn.data.gaussian_noise_images` is the one generator); these functions give them
for arbitrary shapes and images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["gaussian_noise", "mixture"]


def gaussian_noise(shape: Sequence[int], seed: int, *, source: str = "cifar10", split: str = "train") -> torch.Tensor:
    """Fixed scaled Gaussian noise images, ``x = 0.5 + eps / 3``, eps ~ N(0, 1) iid, not clipped.

    The same draw as ``data.name: gaussian_noise`` with ``data.seed = seed``,
    ``data.base = source`` for that split (a CPU generator seeded by (seed, source, split),
    float32; move it to a device afterwards).

    Parameters
    ----------
    shape : sequence of int
        e.g. ``(N, 3, 32, 32)``.
    seed : int
    source, split : str
        The dataset the noise replaces and the split name.

    Returns
    -------
    (shape) float32 tensor: mean 0.5, std 1/3, 13.36 % of values outside [0, 1].
    Paper 003 Sec. 2, Fig. 2 ("fixed scaled Gaussian noise").
    """
    from gendyn.data import gaussian_noise_images

    return gaussian_noise_images(shape, seed=seed, source=source, split=split)


def mixture(x: torch.Tensor, f: float, seed: int, *, source: str = "cifar10", split: str = "train") -> torch.Tensor:
    """Noise/real mixture ``f * x + (1 - f) * noise`` (paper 003 Fig. 2b).

    Parameters
    ----------
    x : (N, C, H, W) float32 tensor
        Real images in [0, 1] (CPU).
    f : float
        Fraction of real signal in [0, 1]; ``f = 1`` returns ``x`` (a copy, bitwise equal),
        ``f = 0`` the noise.
    seed, source, split
        Select the noise draw (see :func:`gaussian_noise`); the same as ``data.name: mixture``.

    Returns
    -------
    (N, C, H, W) float32 tensor
    """
    if not 0.0 <= float(f) <= 1.0:
        raise ValueError(f"mixture f: {f!r} is outside [0, 1]; give the fraction of real signal")
    noise = gaussian_noise(tuple(x.shape), seed, source=source, split=split)
    if f == 0.0:
        return noise
    real = x.to(torch.float32).clone()
    if f == 1.0:
        return real
    return real.mul_(float(f)).add_(noise.mul_(1.0 - float(f)))
