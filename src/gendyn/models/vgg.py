"""VGG-19 (16 conv layers, 18 ReLU sites), with or without batch-norm.

``features`` keeps torchvision's index layout, so ``state_dict()`` keys equal those of
``torchvision.models.vgg19`` / ``vgg19_bn``; inputs of at least
:data:`~gendyn.models.IMAGENET_MIN_HEIGHT` pixels get torchvision's ImageNet head.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from gendyn.models._layers import IMAGENET_MIN_HEIGHT, FeaturesClassifier, SeqBuilder, check_image_shape, classifier, scaled

__all__ = ["VGG", "build_vgg19"]

# VGG-19 ("E") channel plan; "M" is a 2x2 max-pool.
_VGG19_PLAN: tuple[int | str, ...] = (
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, 256, "M",
    512, 512, 512, 512, "M",
    512, 512, 512, 512, "M",
)  # fmt: skip


def _torchvision_vgg_init(module: nn.Module) -> None:
    """torchvision's VGG initialisation (kaiming-normal convs, N(0, 0.01) FCs)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)


class VGG(FeaturesClassifier):
    """VGG-19 (16 conv layers, plan 64,64,M,128,128,M,256x4,M,512x4,M,512x4,M).

    ``features`` has torchvision's index layout (``Conv, [BN], ReLU`` per conv,
    ``MaxPool2d(2, 2)`` per ``M``) with readable names for ReLUs and pools, so
    ``state_dict()`` keys equal those of ``torchvision.models.vgg19`` /
    ``vgg19_bn``.  Convolutions keep their bias also with BN (as torchvision).

    Parameters
    ----------
    in_channels : int
        Input channels.
    height, width : int
        Input spatial size (>= 32 each).
    n_classes : int
        Number of outputs.
    bn : bool, default False
        Batch-norm after each conv.
    width_factor : float, default 1.0
        Multiplies every conv channel count and the classifier hidden width.
    dropout : float, default 0.5
        Classifier dropout.
    imagenet : bool, default False
        ``True``: ``AdaptiveAvgPool2d((7, 7))`` and the 4096-4096-n_classes
        classifier of torchvision.  ``False`` (CIFAR): no average pool
        (``avgpool`` is ``nn.Identity``), classifier ``Linear(512*(H/32)*(W/32),
        512), ReLU, Dropout, Linear(512, 512), ReLU, Dropout, Linear(512,
        n_classes)`` (hidden widths times ``width_factor``).  Both variants
        therefore have 18 ReLU sites (16 conv + 2 FC).
    softmax_head : bool, default False
        Append ``nn.Softmax(dim=1)``.

    Notes
    -----
    Initialisation follows torchvision (kaiming-normal ``fan_out`` convs with
    zero bias, BN weight 1 / bias 0, FC weights ``N(0, 0.01)`` with zero bias).
    """

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        n_classes: int,
        *,
        bn: bool = False,
        width_factor: float = 1.0,
        dropout: float = 0.5,
        imagenet: bool = False,
        softmax_head: bool = False,
    ) -> None:
        super().__init__()
        f = SeqBuilder()
        prev = in_channels
        for item in _VGG19_PLAN:
            if item == "M":
                f.add(nn.MaxPool2d(kernel_size=2, stride=2), "pool")
                continue
            out = scaled(int(item), width_factor)
            f.add(nn.Conv2d(prev, out, kernel_size=3, padding=1))
            if bn:
                f.add(nn.BatchNorm2d(out))
            f.add(nn.ReLU(inplace=False), "relu")
            prev = out
        self.features = f.build()
        if imagenet:
            self.avgpool: nn.Module = nn.AdaptiveAvgPool2d((7, 7))
            flat = prev * 7 * 7
            hidden = scaled(4096, width_factor)
        else:
            self.avgpool = nn.Identity()
            flat = prev * (height // 32) * (width // 32)
            hidden = scaled(512, width_factor)
        self.classifier = classifier(
            flat, hidden, n_classes, dropout, dropout_first=False
        )
        self.softmax: nn.Module | None = nn.Softmax(dim=1) if softmax_head else None
        _torchvision_vgg_init(self)



def build_vgg19(cfg: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> VGG:
    """:class:`VGG` from the validated ``model`` section (``bn``, ``width_factor``, ``dropout``,
    ``softmax_head``); inputs >= 32x32, the ImageNet head when ``H >= IMAGENET_MIN_HEIGHT``."""
    check_image_shape("vgg19", input_shape, 32)
    c, h, w = input_shape
    return VGG(
        c, h, w, n_classes,
        bn=cfg["bn"], width_factor=cfg["width_factor"], dropout=cfg["dropout"],
        imagenet=h >= IMAGENET_MIN_HEIGHT, softmax_head=cfg["softmax_head"],
    )  # fmt: skip
