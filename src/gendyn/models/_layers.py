"""Building blocks shared by the model zoo (internal): width scaling, torchvision-style
sequentials, the two-hidden-layer classifier of AlexNet/VGG and input-shape checks."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

__all__ = ["IMAGENET_MIN_HEIGHT", "scaled", "SeqBuilder", "classifier", "check_image_shape"]

#: Inputs with height >= this use the ImageNet variants (alexnet, vgg19) and,
#: with ``stem: auto``, the ImageNet ResNet-18 stem.
IMAGENET_MIN_HEIGHT: int = 64


def scaled(base: int, width_factor: float) -> int:
    """Return ``max(1, round(base * width_factor))`` (Python rounding)."""
    return max(1, int(round(base * width_factor)))


# --------------------------------------------------------------------------
# Sequential helper: numeric names for stateful layers, readable for the rest
# --------------------------------------------------------------------------
class SeqBuilder:
    """Collect modules for an ``nn.Sequential`` with torchvision-compatible keys.

    Modules carrying parameters or buffers are named by their position (as in
    torchvision); parameterless ones (``relu``, ``pool``, ``dropout``) are named
    ``f"{kind}{k}"`` with a per-kind counter starting at 1.
    """

    def __init__(self) -> None:
        self._modules: OrderedDict[str, nn.Module] = OrderedDict()
        self._counts: dict[str, int] = {}

    def add(self, module: nn.Module, kind: str | None = None) -> None:
        """Append ``module``: named by position if ``kind`` is None, else ``f"{kind}{k}"``."""
        if kind is None:
            name = str(len(self._modules))
        else:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            name = f"{kind}{self._counts[kind]}"
        self._modules[name] = module

    def build(self) -> nn.Sequential:
        """The ``nn.Sequential`` of every module added, in order."""
        return nn.Sequential(self._modules)


def classifier(
    in_features: int, hidden: int, n_classes: int, dropout: float, dropout_first: bool
) -> nn.Sequential:
    """Two hidden FC layers with ReLU and dropout, in torchvision's layouts.

    ``dropout_first=True`` gives AlexNet's ``Dropout, Linear, ReLU, Dropout,
    Linear, ReLU, Linear``; ``False`` gives VGG's ``Linear, ReLU, Dropout,
    Linear, ReLU, Dropout, Linear``.
    """
    seq = SeqBuilder()
    if dropout_first:
        seq.add(nn.Dropout(p=dropout), "dropout")
        seq.add(nn.Linear(in_features, hidden))
        seq.add(nn.ReLU(inplace=False), "relu")
        seq.add(nn.Dropout(p=dropout), "dropout")
        seq.add(nn.Linear(hidden, hidden))
        seq.add(nn.ReLU(inplace=False), "relu")
        seq.add(nn.Linear(hidden, n_classes))
    else:
        seq.add(nn.Linear(in_features, hidden))
        seq.add(nn.ReLU(inplace=False), "relu")
        seq.add(nn.Dropout(p=dropout), "dropout")
        seq.add(nn.Linear(hidden, hidden))
        seq.add(nn.ReLU(inplace=False), "relu")
        seq.add(nn.Dropout(p=dropout), "dropout")
        seq.add(nn.Linear(hidden, n_classes))
    return seq.build()


def check_image_shape(name: str, input_shape: tuple[int, ...], min_hw: int) -> None:
    """Raise ValueError naming ``name`` unless ``input_shape`` is ``(C, H, W)`` with H, W >= ``min_hw``."""
    if len(input_shape) != 3:
        raise ValueError(
            f"model.name: {name!r} needs input_shape (C, H, W); "
            f"got {tuple(input_shape)!r}"
        )
    _, h, w = input_shape
    if h < min_hw or w < min_hw:
        raise ValueError(
            f"model.name: {name!r} needs inputs of at least {min_hw}x{min_hw} pixels; "
            f"got input_shape {tuple(input_shape)!r}"
        )


class FeaturesClassifier(nn.Module):
    """Convolutional ``features``, ``avgpool``, flatten, ``classifier`` and an optional ``softmax``
    head: the forward pass shared by :class:`~gendyn.models.alexnet.AlexNet` and
    :class:`~gendyn.models.vgg.VGG` (subclasses build the four modules)."""

    features: nn.Module
    avgpool: nn.Module
    classifier: nn.Module
    softmax: nn.Module | None

    def forward(self, x: Tensor) -> Tensor:
        """Map a batch ``(N, C, H, W)`` to logits (or probabilities) ``(N, K)``."""
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        if self.softmax is not None:
            x = self.softmax(x)
        return x
