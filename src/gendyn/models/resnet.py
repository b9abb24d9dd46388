"""Basic-block ResNets with torchvision's attribute names: ResNet-18 and the CIFAR ResNet-110.

Every :class:`BasicBlock` has two ReLU sites (``relu1``, and ``relu2`` after the residual
sum); the stem adds ``relu``. ResNet-18's ``stem: auto`` resolves here, from the input
height (``imagenet`` for inputs of at least :data:`~gendyn.models.IMAGENET_MIN_HEIGHT`
pixels, else ``cifar``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gendyn.models._layers import IMAGENET_MIN_HEIGHT, check_image_shape, scaled

__all__ = ["BasicBlock", "ResNet", "build_resnet18", "build_resnet110"]


def _norm2d(channels: int, bn: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if bn else nn.Identity()


class BasicBlock(nn.Module):
    """ResNet basic block with two distinct ReLU sites.

    ``conv1 -> bn1 -> relu1 -> conv2 -> bn2 -> (+ shortcut) -> relu2``.  The
    shortcut is the identity, or ``downsample = Sequential(Conv1x1(stride),
    BN)`` (option B) when the stride or channel count changes.  With
    ``bn=False`` every BN is an ``nn.Identity`` and the convolutions get a bias.

    Parameters
    ----------
    in_planes : int
        Input channels.
    planes : int
        Output channels.
    stride : int, default 1
        Stride of ``conv1`` and of the shortcut.
    bn : bool, default True
        Use batch normalisation.
    """

    expansion: int = 1

    def __init__(
        self, in_planes: int, planes: int, stride: int = 1, bn: bool = True
    ) -> None:
        super().__init__()
        bias = not bn
        self.conv1 = nn.Conv2d(
            in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=bias
        )
        self.bn1 = _norm2d(planes, bn)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(
            planes, planes, kernel_size=3, stride=1, padding=1, bias=bias
        )
        self.bn2 = _norm2d(planes, bn)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=bias),
                _norm2d(planes, bn),
            )
        self.relu2 = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block to ``(N, in_planes, H, W)``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + identity)


class ResNet(nn.Module):
    """Basic-block ResNet with torchvision's attribute names.

    Parameters
    ----------
    in_channels : int
        Input channels.
    n_classes : int
        Number of outputs.
    stage_widths : Sequence[int]
        Channels of each stage (``layer1``, ``layer2``, ...).
    blocks_per_stage : Sequence[int]
        Number of :class:`BasicBlock` per stage; stages after the first start
        with stride 2.
    stem : {"cifar", "imagenet"}
        ``"cifar"``: ``conv1`` is 3x3 stride 1 and ``maxpool`` an
        ``nn.Identity``; ``"imagenet"``: 7x7 stride 2 (padding 3) followed by
        ``MaxPool2d(3, 2, 1)``.  The stem outputs ``stage_widths[0]`` channels.
    bn : bool, default True
        Batch normalisation (``False``: BN layers are ``nn.Identity`` and
        every conv has a bias).
    softmax_head : bool, default False
        Append ``nn.Softmax(dim=1)``.

    Notes
    -----
    Initialisation follows torchvision: kaiming-normal (``fan_out``) conv
    weights, BN weight 1 / bias 0, default PyTorch init for ``fc`` and for conv
    biases (present only with ``bn=False``).
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        stage_widths: Sequence[int],
        blocks_per_stage: Sequence[int],
        *,
        stem: str,
        bn: bool = True,
        softmax_head: bool = False,
    ) -> None:
        super().__init__()
        if len(stage_widths) != len(blocks_per_stage) or not stage_widths:
            raise ValueError(
                "stage_widths and blocks_per_stage must be non-empty and equally long"
            )
        if stem not in ("cifar", "imagenet"):
            raise ValueError(
                f"model.stem: {stem!r} is not a resolved stem; choose cifar or imagenet"
            )
        bias = not bn
        base = stage_widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(
                in_channels, base, kernel_size=7, stride=2, padding=3, bias=bias
            )
        else:
            self.conv1 = nn.Conv2d(
                in_channels, base, kernel_size=3, stride=1, padding=1, bias=bias
            )
        self.bn1 = _norm2d(base, bn)
        self.relu = nn.ReLU(inplace=False)
        self.maxpool: nn.Module = (
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            if stem == "imagenet"
            else nn.Identity()
        )
        self.n_stages = len(stage_widths)
        prev = base
        for i, (planes, n_blocks) in enumerate(
            zip(stage_widths, blocks_per_stage), start=1
        ):
            blocks: list[nn.Module] = []
            for j in range(n_blocks):
                stride = 2 if (i > 1 and j == 0) else 1
                blocks.append(BasicBlock(prev, planes, stride=stride, bn=bn))
                prev = planes
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(prev, n_classes)
        self.softmax: nn.Module | None = nn.Softmax(dim=1) if softmax_head else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        """Map a batch ``(N, C, H, W)`` to logits (or probabilities) ``(N, K)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, self.n_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        x = torch.flatten(self.avgpool(x), 1)
        x = self.fc(x)
        if self.softmax is not None:
            x = self.softmax(x)
        return x



def build_resnet18(cfg: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> ResNet:
    """ResNet-18 (BasicBlock [2, 2, 2, 2], widths 64, 128, 256, 512 times ``width_factor``).

    ``stem: auto`` becomes ``imagenet`` when ``H >= IMAGENET_MIN_HEIGHT``, else ``cifar``.
    """
    check_image_shape("resnet18", input_shape, 1)
    stem = cfg["stem"]
    if stem == "auto":
        stem = "imagenet" if input_shape[1] >= IMAGENET_MIN_HEIGHT else "cifar"
    base = scaled(64, cfg["width_factor"])
    return ResNet(
        input_shape[0], n_classes, [base, 2 * base, 4 * base, 8 * base], [2, 2, 2, 2],
        stem=stem, bn=cfg["bn"], softmax_head=cfg["softmax_head"],
    )  # fmt: skip


def build_resnet110(cfg: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> ResNet:
    """CIFAR ResNet-110 (3 x 18 BasicBlocks, widths 16, 32, 64 times ``width_factor``, cifar stem).

    Batch-norm only with ``bn: true`` (the schema default is false, as for every model).
    """
    check_image_shape("resnet110", input_shape, 1)
    widths = [scaled(b, cfg["width_factor"]) for b in (16, 32, 64)]
    return ResNet(
        input_shape[0], n_classes, widths, [18, 18, 18],
        stem="cifar", bn=cfg["bn"], softmax_head=cfg["softmax_head"],
    )  # fmt: skip
