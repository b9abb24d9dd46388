"""What the configuration layer knows about a dataset without loading it.

Two questions are answered here, for :mod:`gendyn.config` (``gendyn validate`` and every
Snakemake invocation, so nothing here imports torch):

* does a ``data`` section read files under ``data.root``? (:func:`uses_data_root`) Only then
  does the top-level ``data_root`` fill ``data.root``; a run on embedded data (``mnist5k``,
  ``digits`` and noise built on them) keeps no root, so moving ``data_root`` retrains nothing.
* how many images do its splits hold? (:func:`split_sizes`) From the published sizes of each
  source and the selection keys (``n_test``, ``train_subset``/``test_subset``, ``first_n``,
  ``test_source: train_split``), in the order :func:`gendyn.data.load_data` applies them. The
  checks of :func:`gendyn.config.check_data_sizes` (batch size, tracked images, record steps)
  use them, so a value the data cannot satisfy fails validation, not the training job.

The sizes are exact for the shipped datasets and for the standard MNIST / CIFAR files; with
``data.classes`` on a dataset whose per-class counts are not fixed here, or for ImageNet (any
``ImageFolder`` tree), they are unknown (None) and the checks are left to the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ROOT_DATASETS", "SOURCE_SIZES", "uses_data_root", "split_sizes"]

#: Datasets read from files under ``data.root``.
ROOT_DATASETS: tuple[str, ...] = ("mnist", "cifar10", "cifar100", "imagenet")

#: Images per source: (train, test) split sizes, or the total of a dataset that gendyn splits
#: itself (``n_test``). ImageNet folders vary: unknown.
SOURCE_SIZES: dict[str, Any] = {
    "mnist5k": 5000,
    "digits": 1797,
    "mnist": (60000, 10000),
    "cifar10": (50000, 10000),
    "cifar100": (50000, 10000),
}

#: Images per class (train, test) of the on-disk sources with fixed files.
_CLASS_COUNTS: dict[str, tuple[list[int], list[int]]] = {
    "mnist": (
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    ),
    "cifar10": ([5000] * 10, [1000] * 10),
    "cifar100": ([500] * 100, [100] * 100),
}

_SYNTHETIC = ("gaussian_noise", "mixture")


def _source(data: Mapping[str, Any]) -> str:
    name = str(data["name"])
    return str(data.get("base") or "mnist5k") if name in _SYNTHETIC else name


def uses_data_root(data: Mapping[str, Any]) -> bool:
    """Whether the ``data`` section reads files under ``data.root`` (its source is on disk)."""
    return _source(data) in ROOT_DATASETS


def split_sizes(data: Mapping[str, Any]) -> dict[str, int] | None:
    """Images per split (``train``, ``test``, and ``heldout`` with ``test_source: train_split``).

    Parameters
    ----------
    data : mapping
        A validated, defaulted ``data`` section.

    Returns
    -------
    dict or None
        None when the sizes cannot be known without reading the data (ImageNet; ``classes``
        on ``mnist5k``/``digits``).

    Raises
    ------
    ValueError
        Naming the ``data`` key, for a selection the source cannot satisfy (the messages of
        :func:`gendyn.data.load_data` for the same cases).
    """
    source = _source(data)
    size = SOURCE_SIZES.get(source)
    if size is None:
        return None
    classes = data.get("classes")
    if isinstance(size, int):
        if classes is not None:
            return None
        n_test = int(data.get("n_test", 1000))
        if n_test >= size:
            raise ValueError(f"data.n_test: {n_test} is invalid for dataset {source!r} with {size} samples; expected 1..{size - 1}")
        n_train = size - n_test
    elif classes is not None:
        per_train, per_test = _CLASS_COUNTS[source]
        if not all(isinstance(c, int) and 0 <= c < len(per_train) for c in classes):
            return None  # the job names the bad class
        n_train = sum(per_train[c] for c in classes)
        n_test = sum(per_test[c] for c in classes)
    else:
        n_train, n_test = size
    for key, n in (("train_subset", n_train), ("test_subset", n_test)):
        want = data.get(key)
        if want is not None and want > n:
            raise ValueError(
                f"data.{key}: {want} is larger than the {n} samples available "
                f"(after data.classes selection); expected 1..{n} or null"
            )
    if data.get("train_subset") is not None:
        n_train = int(data["train_subset"])
    if data.get("test_subset") is not None:
        n_test = int(data["test_subset"])
    train_split = data.get("test_source") == "train_split"
    first_n = data.get("first_n")
    if first_n is not None:
        need = 2 * first_n if train_split else first_n
        if need > n_train:
            raise ValueError(
                f"data.first_n: {first_n} needs {need} training samples"
                f"{' (test_source: train_split uses 2n)' if train_split else ''} but only "
                f"{n_train} are available (after data.classes selection); lower it"
            )
        n_train, n_test = need, min(first_n, n_test)
    if train_split:
        half = n_train // 2
        if half < 1:
            raise ValueError(f"data.test_source: 'train_split' needs at least 2 training samples, got {n_train}")
        return {"train": half, "test": half, "heldout": n_test}
    return {"train": n_train, "test": n_test}
