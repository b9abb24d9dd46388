"""Normalisation constants, training augmentation and the ImageNet transforms.

* :data:`CHANNEL_STATS` -- per-channel (mean, std) of every real dataset; ``normalize:
  auto`` resolves through :data:`NORMALIZE_AUTO` (in :mod:`gendyn.data.settings`).
* :func:`cifar_augment` -- batched random crop + flip for in-memory CIFAR splits, driven by
  an explicit generator (a pure function of ``(seed, epoch, batch)``).
* :func:`imagenet_transforms` -- torchvision eval / training transforms of folder splits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["CHANNEL_STATS", "NORMALIZE_AUTO", "cifar_augment", "imagenet_transforms"]

#: Per-channel (mean, std) of pixels in [0, 1] used when normalisation is on.
#: MNIST / CIFAR / ImageNet values are the usual published constants; the
#: ``digits`` values are the statistics of all 1797 images scaled by 1/16.
CHANNEL_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist5k": ((0.1307,), (0.3081,)),
    "mnist": ((0.1307,), (0.3081,)),
    "digits": ((0.3053,), (0.3760,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

#: ``normalize: auto`` per ``data.name``: on for CIFAR and ImageNet only.
NORMALIZE_AUTO: dict[str, bool] = {
    "mnist5k": False,
    "digits": False,
    "mnist": False,
    "cifar10": True,
    "cifar100": True,
    "imagenet": True,
    "gaussian_noise": False,
    "mixture": False,
}


def cifar_augment(x: torch.Tensor, gen: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop (zero padding ``padding``) + horizontal flip, vectorised over the batch.

    Parameters
    ----------
    x
        ``(n, C, H, W)`` float32 pixels (un-normalised).
    gen
        CPU generator; the draw depends on nothing else.
    padding
        Zero padding on each side before the ``H x W`` crop.

    Returns
    -------
    torch.Tensor
        ``(n, C, H, W)`` float32, contiguous.
    """
    n, c, h, w = x.shape
    if n == 0:
        return x
    offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    rows = offsets[:, 0:1] + torch.arange(h)  # (n, h)
    cols = offsets[:, 1:2] + torch.arange(w)  # (n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    out = padded[
        torch.arange(n)[:, None, None, None],
        torch.arange(c)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    return out.contiguous()


def imagenet_transforms(
    image_size: int, mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[Callable[[Any], torch.Tensor], Callable[[Any], torch.Tensor]]:
    """``(eval, train)`` transforms PIL image -> float32 ``(3, image_size, image_size)``.

    Eval: resize the short side to ``round(image_size * 256 / 224)``, centre crop; train:
    random resized crop + horizontal flip (drawn from the global CPU generator, which
    :class:`~gendyn.data.splits.FolderSplit` seeds per sample inside ``fork_rng``). Both
    end with to-tensor and, when ``mean``/``std`` are given, per-channel normalisation.
    """
    from torchvision import transforms as T

    tail: list[Any] = [T.ToTensor()]
    if mean is not None and std is not None:
        tail.append(T.Normalize(mean, std))
    resize = int(round(image_size * 256 / 224))
    eval_tf = T.Compose([T.Resize(resize), T.CenterCrop(image_size), *tail])
    train_tf = T.Compose([T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), *tail])
    return eval_tf, train_tf
