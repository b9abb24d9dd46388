"""Splits: one train, test or held-out split of a dataset, for evaluation and training.

:class:`Split` holds what every split shares -- labels, clean labels, the corruption mask,
source indices, index and argument checking, and the batching schedule (batch ``b`` holds
``order[b * batch_size:(b + 1) * batch_size]``, resumable at ``start_batch``). Two
implementations differ only in how they turn positions into inputs:

* :class:`TensorSplit` -- pixels in memory; augmentation is a batched function of a
  generator seeded by ``(seed, "augment", epoch, b)``.
* :class:`FolderSplit` -- image files decoded lazily through a DataLoader; random transforms
  are seeded per sample by ``(seed, "augment", epoch, position)`` inside ``fork_rng``.

Neither touches the global NumPy / torch RNG state as seen by the caller.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gendyn.data._seeding import torch_gen, torch_seed

__all__ = ["Split", "TensorSplit", "FolderSplit"]

#: Batched augmentation ``f(x, generator) -> x`` on pixel-space floats.
Augmenter = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _as_index_tensor(idx: Sequence[int] | np.ndarray | torch.Tensor, n: int) -> torch.Tensor:
    if isinstance(idx, torch.Tensor):
        t = idx.detach().to("cpu")
    else:
        arr = np.asarray(idx)
        if arr.dtype == object:
            raise TypeError(f"indices must be integers, got an array of dtype {arr.dtype}")
        t = torch.from_numpy(np.array(arr, copy=True))
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise TypeError(f"indices must be integers, got dtype {t.dtype}")
    t = t.reshape(-1).to(torch.int64)
    if t.numel() and (int(t.min()) < -n or int(t.max()) >= n):
        raise IndexError(f"index out of range for a split of {n} samples (got min {int(t.min())}, max {int(t.max())})")
    return torch.where(t < 0, t + n, t)


def _check_order(order: np.ndarray | Sequence[int] | torch.Tensor, n: int) -> np.ndarray:
    arr = order.detach().cpu().numpy() if isinstance(order, torch.Tensor) else np.asarray(order)
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"order: expected a 1-D integer array of sample positions, got shape {arr.shape} {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise ValueError(f"order: positions must lie in [0, {n}), got min {arr.min()}, max {arr.max()}")
    return arr


def _n_batches(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else -(-n // batch_size)


@dataclass(frozen=True)
class BatchPlan:
    """One epoch's checked batching request, handed from :meth:`Split.batches` to ``_batches``.

    Attributes
    ----------
    order : 1-D int64 array
        Positions in the split (a private copy), batch ``b`` = ``order[b * batch_size:(b + 1) * batch_size]``.
    batch_size, n_batches, start_batch : int
        Batch size, batches in the epoch, first batch to yield.
    augment : bool
    seed, epoch : int
        Determine the augmentation randomness.
    num_workers : int
        DataLoader workers (folder splits).
    drop_last : bool
    """

    order: np.ndarray
    batch_size: int
    n_batches: int
    start_batch: int
    augment: bool
    seed: int
    epoch: int
    num_workers: int
    drop_last: bool


def _check_batch_args(batch_size: int, seed: int, epoch: int, start_batch: int, num_workers: int) -> None:
    for key, val, minimum in (
        ("batch_size", batch_size, 1),
        ("seed", seed, 0),
        ("epoch", epoch, 0),
        ("start_batch", start_batch, 0),
        ("num_workers", num_workers, 0),
    ):
        if not _is_int(val) or val < minimum:
            raise ValueError(f"{key}: {val!r} is invalid; expected an integer >= {minimum}")



class Split(abc.ABC):
    """One split (train, test or heldout) of a dataset.

    Attributes
    ----------
    name
        ``"train"``, ``"test"`` or ``"heldout"``.
    labels
        ``(N,)`` int64 final labels (after label noise / random labels).
    clean_labels
        ``(N,)`` int64 labels before any label corruption (after class relabelling).
    corrupted
        ``(N,)`` bool, True where ``labels != clean_labels`` was *intended*
        (label-noise samples; every sample under ``random_labels``).
    indices
        ``(N,)`` int64 index of each sample in the original source split
        (for ``mnist5k``/``digits``: in the whole shipped dataset).

    Notes
    -----
    Subclasses implement :meth:`_inputs` (evaluation view of checked positions) and
    :meth:`_batches` (training batches over a checked order); :meth:`get` and
    :meth:`batches` do the checking once, here.
    """

    def __init__(
        self,
        name: str,
        labels: torch.Tensor,
        clean_labels: torch.Tensor,
        corrupted: np.ndarray,
        indices: np.ndarray,
    ) -> None:
        self.name = name
        self.labels = labels
        self.clean_labels = clean_labels
        self.corrupted = corrupted
        self.indices = indices

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def n_batches(self, n: int, batch_size: int, *, drop_last: bool = False) -> int:
        """Number of batches :meth:`batches` yields for an order of length ``n``."""
        return _n_batches(n, batch_size, drop_last)

    def get(self, idx: Sequence[int] | np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Evaluation view of the samples at positions ``idx``.

        Parameters
        ----------
        idx
            Positions ``-len(self) <= i < len(self)`` (negative counts from the end).

        Returns
        -------
        x, y
            ``x`` float32 ``(n, C, H, W)`` exactly as the model sees it
            (normalised, never augmented); ``y`` int64 ``(n,)`` final labels.

        Raises
        ------
        TypeError
            Non-integer indices.
        IndexError
            An index out of range.
        """
        t = _as_index_tensor(idx, len(self))
        return self._inputs(t), self.labels[t].clone()

    def batches(
        self,
        order: np.ndarray,
        batch_size: int,
        *,
        augment: bool,
        seed: int,
        epoch: int,
        start_batch: int = 0,
        num_workers: int = 0,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Training batches over ``order``.

        Batch ``b`` holds positions ``order[b * batch_size:(b + 1) * batch_size]``;
        iteration starts at batch ``start_batch`` so that a resumed run
        continues mid-epoch.  Augmentation randomness is a pure function of
        ``(seed, epoch, b)`` (tensor splits) or ``(seed, epoch, sample)``
        (folder splits), never of the global RNG.

        Parameters
        ----------
        order
            1-D int array of positions in ``[0, len(self))`` (usually a permutation).
        batch_size
            Samples per batch (the last one may be smaller unless ``drop_last``).
        augment
            Apply the dataset's training augmentation (no-op for datasets without one).
        seed, epoch
            Determine the augmentation randomness.
        start_batch
            First batch to yield.
        num_workers
            DataLoader workers (folder splits only; ignored by tensor splits).
        drop_last
            Drop a final incomplete batch.

        Yields
        ------
        x, y
            float32 ``(b, C, H, W)`` inputs and int64 ``(b,)`` labels.

        Raises
        ------
        ValueError
            Invalid ``order`` or arguments (raised on call, not on first ``next``).
        """
        _check_batch_args(batch_size, seed, epoch, start_batch, num_workers)
        arr = _check_order(order, len(self)).copy()  # the caller may reuse its array
        n_b = _n_batches(arr.size, batch_size, drop_last)
        if start_batch > n_b:
            raise ValueError(f"start_batch: {start_batch} is past the end of the epoch ({n_b} batches)")
        return self._batches(
            BatchPlan(arr, batch_size, n_b, start_batch, augment, seed, epoch, num_workers, drop_last)
        )

    @abc.abstractmethod
    def _inputs(self, idx: torch.Tensor) -> torch.Tensor:
        """Evaluation inputs ``(n, C, H, W)`` float32 at checked int64 positions ``idx``."""

    @abc.abstractmethod
    def _batches(self, plan: BatchPlan) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches ``plan.start_batch .. plan.n_batches - 1`` of the checked ``plan.order``."""


class TensorSplit(Split):
    """A split held in memory as a tensor of pixels.

    Parameters
    ----------
    name
        ``"train"``, ``"test"`` or ``"heldout"``.
    pixels
        ``(N, C, H, W)`` uint8 (scaled by 1/255 on access) or float32 (used as is) pixel data.
    labels, clean_labels, corrupted, indices
        See :class:`Split`.
    mean, std
        Per-channel normalisation constants, or None for no normalisation.
    augmenter
        Batched augmentation ``f(x, generator) -> x`` on pixel-space floats, or None.
    """

    def __init__(
        self,
        name: str,
        pixels: torch.Tensor,
        labels: torch.Tensor,
        clean_labels: torch.Tensor,
        corrupted: np.ndarray,
        indices: np.ndarray,
        mean: Sequence[float] | None,
        std: Sequence[float] | None,
        augmenter: Augmenter | None = None,
    ) -> None:
        if pixels.dtype not in (torch.uint8, torch.float32) or pixels.ndim != 4:
            raise TypeError(f"pixels must be a 4-D uint8 or float32 tensor, got {pixels.dtype} {tuple(pixels.shape)}")
        super().__init__(name, labels, clean_labels, corrupted, indices)
        self.pixels = pixels
        self._mean = None if mean is None else torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self._std = None if std is None else torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self._augmenter = augmenter

    def pixel_values(self, idx: torch.Tensor) -> torch.Tensor:
        """Un-normalised float32 pixels (values in [0, 1] for real images) at positions ``idx``."""
        x = self.pixels[idx]
        if x.dtype == torch.uint8:
            return x.to(torch.float32).div_(255.0)
        return x.clone()

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self._mean is None or self._std is None:
            return x
        return (x - self._mean) / self._std

    def _inputs(self, idx: torch.Tensor) -> torch.Tensor:
        return self._normalize(self.pixel_values(idx))

    def _batches(self, plan: BatchPlan) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        aug = self._augmenter if plan.augment else None
        positions = torch.from_numpy(plan.order)
        bs = plan.batch_size
        for b in range(plan.start_batch, plan.n_batches):
            idx = positions[b * bs : (b + 1) * bs]
            x = self.pixel_values(idx)
            if aug is not None:
                x = aug(x, torch_gen(plan.seed, "augment", plan.epoch, b))
            yield self._normalize(x), self.labels[idx].clone()


class _FolderView(torch.utils.data.Dataset):
    """Dataset over ``samples[positions[i]]`` with per-sample seeded transforms."""

    def __init__(
        self,
        paths: Sequence[str],
        labels: torch.Tensor,
        positions: np.ndarray,
        transform: Callable[[Any], torch.Tensor],
        seed: int | None,
        epoch: int,
    ) -> None:
        self.paths = paths
        self.labels = labels
        self.positions = positions
        self.transform = transform
        self.seed = seed
        self.epoch = epoch

    def __len__(self) -> int:
        return int(self.positions.size)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.datasets.folder import default_loader

        pos = int(self.positions[i])
        img = default_loader(self.paths[pos])
        if self.seed is None:
            x = self.transform(img)
        else:
            # Random transforms use the global CPU generator: seed it per sample inside
            # fork_rng so the caller's RNG state is restored afterwards (CUDA untouched).
            with torch.random.fork_rng(devices=[]):
                torch.random.default_generator.manual_seed(torch_seed(self.seed, "augment", self.epoch, pos))
                x = self.transform(img)
        return x, self.labels[pos]


class FolderSplit(Split):
    """A split of image files decoded lazily (ImageNet).

    Parameters
    ----------
    name
        ``"train"``, ``"test"`` or ``"heldout"``.
    paths
        Image file of each sample.
    labels, clean_labels, corrupted, indices
        See :class:`Split`.
    eval_transform
        PIL image -> float32 tensor (resize, centre crop, to-tensor, normalise).
    train_transform
        Random training transform (random resized crop, flip, to-tensor, normalise).
    """

    def __init__(
        self,
        name: str,
        paths: list[str],
        labels: torch.Tensor,
        clean_labels: torch.Tensor,
        corrupted: np.ndarray,
        indices: np.ndarray,
        eval_transform: Callable[[Any], torch.Tensor],
        train_transform: Callable[[Any], torch.Tensor],
    ) -> None:
        super().__init__(name, labels, clean_labels, corrupted, indices)
        self.paths = paths
        self.eval_transform = eval_transform
        self.train_transform = train_transform

    def _inputs(self, idx: torch.Tensor) -> torch.Tensor:
        view = _FolderView(self.paths, self.labels, idx.numpy(), self.eval_transform, None, 0)
        if len(view) == 0:
            raise ValueError("get: empty index; the input shape of a folder split is only known from its images")
        return torch.stack([view[i][0] for i in range(len(view))])

    def _batches(self, plan: BatchPlan) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        stop = plan.n_batches * plan.batch_size if plan.drop_last else None
        view = _FolderView(
            self.paths,
            self.labels,
            plan.order[plan.start_batch * plan.batch_size : stop],
            self.train_transform if plan.augment else self.eval_transform,
            plan.seed if plan.augment else None,
            plan.epoch,
        )
        loader = torch.utils.data.DataLoader(
            view,
            batch_size=plan.batch_size,
            shuffle=False,
            drop_last=plan.drop_last,
            num_workers=plan.num_workers,
            # An explicit generator keeps the DataLoader's base seed draw off the global RNG.
            generator=torch_gen(plan.seed, "loader", plan.epoch, plan.start_batch),
        )
        return iter(loader)
