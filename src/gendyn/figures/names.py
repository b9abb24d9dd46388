"""Readable names for config keys and values in legends, titles, labels and captions.

Light (no matplotlib): the report's captions (:mod:`gendyn.report`) use it while Snakemake
parses the workflow. :mod:`gendyn.figures.style` re-exports every name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["KEY_NAMES", "SEED_BAND", "SEED_KEYS", "readable_key", "readable_value", "assignment_label"]

#: How seeds are pooled in every figure that pools them (named in legends and captions).
SEED_BAND = "min-max"
#: Swept keys whose runs are pooled (mean and band), never compared.
SEED_KEYS = ("training.seed",)


def _is_number(v: Any) -> bool:
    import numbers

    return isinstance(v, numbers.Real) and not isinstance(v, bool)


#: Readable names of config keys that appear in sweeps (legends, titles); others are derived.
KEY_NAMES = {
    "model.depth": "depth",
    "model.width": "width",
    "model.init_scale": "init. scale α",
    "model.name": "model",
    "model.batchnorm": "BatchNorm",
    "model.dtype": "precision",
    "data.train_subset": "training images",
    "data.first_n": "dataset size",
    "data.name": "data",
    "data.label_noise": "label noise",
    "data.random_labels": "random labels",
    "data.mix_fraction": "real fraction f",
    "data.classes": "classes",
    "data.seed": "data seed",
    "training.seed": "seed",
    "training.lr": "learning rate",
    "training.weight_decay": "weight decay",
    "training.batch_size": "batch size",
    "training.epochs": "epochs",
    "training.steps": "steps",
    "training.optimizer": "optimiser",
    "training.objective.name": "objective",
    "training.objective.k": "threshold k",
    "training.objective.target": "target",
    "training.objective.loss_mode": "loss",
}

_VALUE_NAMES = {
    "training.objective.name": {"J": "J", "J_prime": "J′", "J0": "J⁰", "Jt": "Jᵗ"},
    "training.objective.loss_mode": {"double_softmax": "double softmax", "logits": "cross-entropy on logits"},
    "data.name": {
        "mnist5k": "MNIST (5k images)",
        "mnist": "MNIST",
        "digits": "digits",
        "cifar10": "CIFAR-10",
        "cifar100": "CIFAR-100",
        "imagenet": "ImageNet",
        "gaussian_noise": "Gaussian noise",
        "mixture": "image-noise mixture",
    },
}


def readable_key(key: str) -> str:
    """A readable name for a (dotted) config key: ``model.init_scale`` -> ``init. scale α``."""
    if key in KEY_NAMES:
        return KEY_NAMES[key]
    return str(key).split(".")[-1].replace("_", " ")


def readable_value(key: str, value: Any) -> str:
    """A readable value of ``key``: objective names as the paper writes them, numbers with :g."""
    names = _VALUE_NAMES.get(key, {})
    if str(value) in names:
        return names[str(value)]
    if _is_number(value):
        return f"{value:g}"
    if isinstance(value, str):
        return value.replace("_", " ")
    return str(value)


def assignment_label(assignment: Mapping[str, Any], *, keys: Iterable[str] | None = None) -> str:
    """``{"model.depth": 2, "training.objective.name": "J_prime"}`` -> ``depth 2, objective J′``.

    Objective and data names stand alone (``J′``, ``Gaussian noise``); other keys are
    ``name value``.
    """
    parts = []
    for k in keys if keys is not None else assignment:
        v = assignment[k]
        if k in ("training.objective.name", "data.name"):
            parts.append(readable_value(k, v))
        else:
            parts.append(f"{readable_key(k)} {readable_value(k, v)}")
    return ", ".join(parts)


