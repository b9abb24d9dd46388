"""AlexNet with one distinct ReLU per site (5 conv + 2 FC = 7 sites).

Two variants chosen by the input height: the CIFAR port for inputs below
:data:`~gendyn.models.IMAGENET_MIN_HEIGHT` pixels and exactly torchvision's ``alexnet``
layout (state dicts load with ``strict=True``) above. No batch-norm option.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from gendyn.models._layers import IMAGENET_MIN_HEIGHT, FeaturesClassifier, SeqBuilder, check_image_shape, classifier, scaled

__all__ = ["AlexNet", "build_alexnet"]


class AlexNet(FeaturesClassifier):
    """AlexNet with one distinct ReLU per site (5 conv + 2 FC = 7 sites).

    Parameters
    ----------
    in_channels : int
        Input channels.
    height, width : int
        Input spatial size.
    n_classes : int
        Number of outputs.
    width_factor : float, default 1.0
        Multiplies every conv channel count and the FC hidden width (4096).
    dropout : float, default 0.5
        Dropout before each of the first two FC layers.
    imagenet : bool, default False
        ``True``: exactly torchvision's ``alexnet`` layout (11x11/4 stem,
        3x3/2 max-pools, ``AdaptiveAvgPool2d((6, 6))``), so a torchvision state
        dict loads with ``strict=True`` when ``width_factor == 1``.
        ``False`` (CIFAR port, inputs >= 8x8): conv 64 k5 -> pool -> conv 192 k5
        -> pool -> conv 384 k3 -> conv 256 k3 -> conv 256 k3 -> pool (all pools
        2x2/2, all convs padded to keep size), flatten, then the same classifier
        (dropout, FC 4096, ReLU, dropout, FC 4096, ReLU, FC n_classes); there is
        no average pool (``avgpool`` is ``nn.Identity``).
    softmax_head : bool, default False
        Append ``nn.Softmax(dim=1)``.
    """

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        n_classes: int,
        *,
        width_factor: float = 1.0,
        dropout: float = 0.5,
        imagenet: bool = False,
        softmax_head: bool = False,
    ) -> None:
        super().__init__()
        ch = [scaled(b, width_factor) for b in (64, 192, 384, 256, 256)]
        hidden = scaled(4096, width_factor)
        f = SeqBuilder()
        if imagenet:
            f.add(nn.Conv2d(in_channels, ch[0], kernel_size=11, stride=4, padding=2))
            f.add(nn.ReLU(inplace=False), "relu")
            f.add(nn.MaxPool2d(kernel_size=3, stride=2), "pool")
            f.add(nn.Conv2d(ch[0], ch[1], kernel_size=5, padding=2))
            f.add(nn.ReLU(inplace=False), "relu")
            f.add(nn.MaxPool2d(kernel_size=3, stride=2), "pool")
        else:
            f.add(nn.Conv2d(in_channels, ch[0], kernel_size=5, padding=2))
            f.add(nn.ReLU(inplace=False), "relu")
            f.add(nn.MaxPool2d(kernel_size=2, stride=2), "pool")
            f.add(nn.Conv2d(ch[0], ch[1], kernel_size=5, padding=2))
            f.add(nn.ReLU(inplace=False), "relu")
            f.add(nn.MaxPool2d(kernel_size=2, stride=2), "pool")
        f.add(nn.Conv2d(ch[1], ch[2], kernel_size=3, padding=1))
        f.add(nn.ReLU(inplace=False), "relu")
        f.add(nn.Conv2d(ch[2], ch[3], kernel_size=3, padding=1))
        f.add(nn.ReLU(inplace=False), "relu")
        f.add(nn.Conv2d(ch[3], ch[4], kernel_size=3, padding=1))
        f.add(nn.ReLU(inplace=False), "relu")
        if imagenet:
            f.add(nn.MaxPool2d(kernel_size=3, stride=2), "pool")
        else:
            f.add(nn.MaxPool2d(kernel_size=2, stride=2), "pool")
        self.features = f.build()
        if imagenet:
            self.avgpool: nn.Module = nn.AdaptiveAvgPool2d((6, 6))
            flat = ch[4] * 6 * 6
        else:
            self.avgpool = nn.Identity()
            flat = ch[4] * (height // 8) * (width // 8)
        self.classifier = classifier(
            flat, hidden, n_classes, dropout, dropout_first=True
        )
        self.softmax: nn.Module | None = nn.Softmax(dim=1) if softmax_head else None



def build_alexnet(cfg: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> AlexNet:
    """:class:`AlexNet` from the validated ``model`` section (``width_factor``, ``dropout``,
    ``softmax_head``); the ImageNet variant when ``H >= IMAGENET_MIN_HEIGHT`` (then H, W >= 63)."""
    imagenet = len(input_shape) == 3 and input_shape[1] >= IMAGENET_MIN_HEIGHT
    check_image_shape("alexnet", input_shape, 63 if imagenet else 8)
    c, h, w = input_shape
    return AlexNet(
        c, h, w, n_classes,
        width_factor=cfg["width_factor"], dropout=cfg["dropout"], imagenet=imagenet,
        softmax_head=cfg["softmax_head"],
    )  # fmt: skip
