"""The validated ``data`` section as a frozen dataclass, its dependent defaults resolved.

:func:`resolve_settings` is the one place where a ``data`` key's value depends on another
key or on the caller: ``normalize: auto`` (per ``data.name``, :data:`NORMALIZE_AUTO`), the
dataset directory (``data.root``, else the ``root`` argument) and the real dataset behind
a synthetic one (:attr:`DataSettings.source`). It checks nothing: its input has been
validated by :func:`gendyn.config.validate_section` (see :mod:`gendyn.data`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gendyn.data.sources import SYNTHETIC_NAMES
from gendyn.data.transforms import NORMALIZE_AUTO

__all__ = ["DataSettings", "resolve_settings"]


@dataclass(frozen=True)
class DataSettings:
    """A validated ``data`` section (keys as in the schema, ``$defs/data``), resolved.

    ``normalize`` is a bool (``auto`` resolved per dataset), ``root`` the directory actually
    used (or None), ``classes`` a tuple of labels (int) or wnids (str) or None.
    """

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
        return self.base if self.name in SYNTHETIC_NAMES else self.name

    def as_dict(self) -> dict[str, Any]:
        """The resolved section as plain values (what :attr:`gendyn.data.Data.config` holds)."""
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


def resolve_settings(cfg: Mapping[str, Any], root: Path | str | None) -> DataSettings:
    """Resolve a validated, defaulted ``data`` section.

    Parameters
    ----------
    cfg
        Output of ``validate_section("data", ...)`` (or the ``data`` of ``validate_run``).
    root
        Directory used when ``data.root`` is null.

    Returns
    -------
    DataSettings
        With ``normalize`` a bool and ``root`` a ``Path`` (``~`` expanded) or None.
    """
    root_v = cfg["root"]
    resolved_root: Path | None = None
    if root_v is not None:
        resolved_root = Path(root_v).expanduser()
    elif root is not None:
        resolved_root = Path(root).expanduser()
    norm = cfg["normalize"]
    normalize = NORMALIZE_AUTO[cfg["name"]] if norm == "auto" else bool(norm)
    classes = cfg["classes"]
    return DataSettings(
        name=cfg["name"],
        root=resolved_root,
        seed=int(cfg["seed"]),
        n_test=int(cfg["n_test"]),
        train_subset=cfg["train_subset"],
        test_subset=cfg["test_subset"],
        classes=None if classes is None else tuple(classes),
        label_noise=float(cfg["label_noise"]),
        random_labels=bool(cfg["random_labels"]),
        normalize=normalize,
        augment=bool(cfg["augment"]),
        image_size=int(cfg["image_size"]),
        base=cfg["base"],
        mix_fraction=float(cfg["mix_fraction"]),
        first_n=cfg["first_n"],
        split_mode=cfg["split_mode"],
        test_source=cfg["test_source"],
    )
