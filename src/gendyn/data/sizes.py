"""How many images a ``data`` section selects, and their shape, without reading the images.

:func:`data_sizes` answers from the files when the dataset is on this machine (it loads the
section with :func:`gendyn.data.load_data`, the one definition of the selection) and otherwise
from the documented sizes of each source (:data:`DOCUMENTED`), applying the selection steps of
``load_data`` to the counts: ``classes``, ``train_subset``/``test_subset``, ``first_n`` and
``test_source: train_split``. A test keeps the two answers equal on stand-in data.

Used by ``gendyn plan`` (storage and time before anything runs) and by smoke runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DOCUMENTED", "Documented", "DataSizes", "data_sizes", "documented_sizes", "input_shape"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Documented:
    """Published size of a source: train/test images (test None: split by ``n_test``), classes, shape."""

    n_train: int
    n_test: int | None
    n_classes: int
    shape: tuple[int, int, int] | None  # None: (3, image_size, image_size)


#: Sizes of the real sources (ImageNet: ILSVRC-2012 train / val).
DOCUMENTED: dict[str, Documented] = {
    "mnist5k": Documented(5000, None, 10, (1, 28, 28)),
    "digits": Documented(1797, None, 10, (1, 8, 8)),
    "mnist": Documented(60000, 10000, 10, (1, 28, 28)),
    "cifar10": Documented(50000, 10000, 10, (3, 32, 32)),
    "cifar100": Documented(50000, 10000, 100, (3, 32, 32)),
    "imagenet": Documented(1281167, 50000, 1000, None),
}


@dataclass(frozen=True)
class DataSizes:
    """Images of each split as a run sees them (after every selection), the input shape and classes.

    ``origin`` is ``"files"`` (counted by loading the data) or ``"documented"``.
    """

    n_train: int
    n_test: int
    n_heldout: int
    input_shape: tuple[int, int, int]
    n_classes: int
    origin: str


def _source(section: Mapping[str, Any]) -> str:
    name = section["name"]
    return section.get("base", "mnist5k") if name in ("gaussian_noise", "mixture") else name


def input_shape(section: Mapping[str, Any]) -> tuple[int, int, int]:
    """(C, H, W) of the inputs of a ``data`` section (ImageNet: ``image_size``)."""
    doc = DOCUMENTED[_source(section)]
    return _shape(doc, section)


def _shape(doc: Documented, section: Mapping[str, Any]) -> tuple[int, int, int]:
    if doc.shape is None:
        size = int(section.get("image_size", 224))
        return (3, size, size)
    return doc.shape


def documented_sizes(section: Mapping[str, Any], table: Mapping[str, Documented] | None = None) -> DataSizes:
    """The sizes a defaulted ``data`` section selects from sources of the sizes in ``table``.

    The selection steps of :func:`gendyn.data.load_data` applied to counts (classes assumed
    balanced): ``classes``, ``train_subset``/``test_subset``, ``first_n``, ``train_split``.
    ``table`` defaults to :data:`DOCUMENTED` (the real sources); sources it lacks come from there.
    """
    src = _source(section)
    doc = {**DOCUMENTED, **(table or {})}[src]
    if doc.n_test is None:
        n_test = int(section.get("n_test", 1000))
        tr, te = doc.n_train - n_test, n_test
    else:
        tr, te = doc.n_train, doc.n_test
    classes = section.get("classes")
    n_classes = doc.n_classes
    if classes:
        frac = len(classes) / doc.n_classes
        tr, te, n_classes = int(round(tr * frac)), int(round(te * frac)), len(classes)
    if section.get("train_subset") is not None:
        tr = min(tr, int(section["train_subset"]))
    if section.get("test_subset") is not None:
        te = min(te, int(section["test_subset"]))
    split = section.get("test_source", "test") == "train_split"
    first_n = section.get("first_n")
    if first_n is not None:
        tr = min(tr, 2 * int(first_n) if split else int(first_n))
        te = min(te, int(first_n))
    heldout = 0
    if split:
        heldout, tr, te = te, tr // 2, tr // 2
    return DataSizes(tr, te, heldout, _shape(doc, section), n_classes, "documented")


def data_sizes(section: Mapping[str, Any], *, root: Path | str | None = None, probe: bool = True) -> DataSizes:
    """Split sizes, input shape and class count of a ``data`` section.

    Parameters
    ----------
    section : mapping
        A ``data`` section (validated or hand-written).
    root : path, optional
        ``data.root`` when the section has none.
    probe : bool
        Count from the files when the dataset is on this machine (exact); False, or files
        absent: the documented sizes (:data:`DOCUMENTED`; class subsets of ImageNet assume the
        average class size).
    """
    from gendyn.config import validate_section

    sec = validate_section("data", dict(section), "data")
    if sec.get("root") is None and root is not None:
        sec["root"] = str(root)
    if probe and _available(sec):
        from gendyn.data import load_data

        if sec["name"] in ("gaussian_noise", "mixture"):
            # Noise replaces pixels, not images: the base dataset has the same splits.
            sec = {**sec, "name": sec["base"]}
        d = load_data(sec)
        return DataSizes(
            len(d.train), len(d.test), 0 if d.heldout is None else len(d.heldout),
            tuple(int(s) for s in d.input_shape), int(d.n_classes), "files",  # type: ignore[arg-type]
        )  # fmt: skip
    return documented_sizes(sec)


def _available(section: Mapping[str, Any]) -> bool:
    from gendyn.data import check_data_available

    src = _source(section)
    if src in ("mnist5k", "digits"):
        return True
    if src == "imagenet" and section.get("root") and not section.get("classes"):
        # A full ImageNet tree holds 1.3 M files; scanning it is not worth an estimate.
        train = Path(section["root"]) / "train"
        if train.is_dir() and sum(1 for _ in train.iterdir()) > 50:
            return False
    try:
        check_data_available(section)
    except (OSError, ValueError):
        return False
    return True
