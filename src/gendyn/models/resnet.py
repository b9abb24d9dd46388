"""ResNets: basic-block ResNet-18 and CIFAR ResNet-110 with torchvision's attribute names, and
the pre-activation ResNet-18 of width k of paper 001's code.

Every :class:`BasicBlock` has two ReLU sites (``relu1``, and ``relu2`` after the residual
sum); the stem adds ``relu``. ResNet-18's ``stem: auto`` resolves here, from the input
height (``imagenet`` for inputs of at least :data:`~gendyn.models.IMAGENET_MIN_HEIGHT`
pixels, else ``cifar``). Every :class:`PreActBlock` has two ReLU sites (``relu1`` on the
block input, ``relu2`` inside the residual branch); :class:`PreActResNet` has no other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gendyn.models._layers import IMAGENET_MIN_HEIGHT, check_image_shape, scaled

__all__ = ["BasicBlock", "ResNet", "PreActBlock", "PreActResNet", "build_resnet18", "build_resnet110", "build_preact_resnet18"]


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


# --------------------------------------------------------------------------- pre-activation


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al. 2016, "Identity mappings"), two distinct ReLU sites.

    ``out = relu1(bn1(x))``; ``shortcut = x`` or ``shortcut = Conv1x1(stride)(out)`` when the
    stride or the channel count changes; ``conv2(relu2(bn2(conv1(out)))) + shortcut``. No ReLU
    after the sum. Convolutions have no bias, with or without BN (the layout of paper 001's code,
    after kuangliu/pytorch-cifar's ``PreActBlock``); with ``bn=False`` each BN is an
    ``nn.Identity``.

    Parameters
    ----------
    in_planes, planes : int
        Input and output channels.
    stride : int, default 1
        Stride of ``conv1`` and of the shortcut.
    bn : bool, default True
        Use batch normalisation.
    """

    expansion: int = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, bn: bool = True) -> None:
        super().__init__()
        self.bn1 = _norm2d(in_planes, bn)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = _norm2d(planes, bn)
        self.relu2 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block to ``(N, in_planes, H, W)``."""
        out = self.relu1(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.relu2(self.bn2(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    """Pre-activation ResNet of width k (paper 001's ``make_resnet18k``), CIFAR stem.

    ``conv1`` (3x3, stride 1, k channels, no bias, no BN or ReLU after it), ``layer1`` ..
    ``layer4`` of :class:`PreActBlock` with k, 2k, 4k, 8k channels (stages after the first start
    with stride 2), global average pooling ``avgpool`` and ``linear`` (8k -> n_classes).

    Parameters
    ----------
    in_channels : int
    n_classes : int
    width : int
        k, the channels of the stem and of ``layer1``.
    blocks_per_stage : Sequence[int]
        Blocks in each of the four stages ([2, 2, 2, 2] for ResNet-18).
    bn : bool, default True
    softmax_head : bool, default False

    Notes
    -----
    Default PyTorch initialisation (no re-initialisation), as in the authors' code. Their forward
    ends with ``F.avg_pool2d(out, 4)``, which is global average pooling exactly when the last
    feature map is 4x4 (32x32 and 28x28 inputs); gendyn uses ``nn.AdaptiveAvgPool2d(1)``, which
    equals it there and also works on other input sizes.
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        width: int,
        blocks_per_stage: Sequence[int] = (2, 2, 2, 2),
        *,
        bn: bool = True,
        softmax_head: bool = False,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.n_stages = len(blocks_per_stage)
        prev = width
        for i, n_blocks in enumerate(blocks_per_stage, start=1):
            planes = width * 2 ** (i - 1)
            blocks: list[nn.Module] = []
            for j in range(n_blocks):
                blocks.append(PreActBlock(prev, planes, stride=2 if (i > 1 and j == 0) else 1, bn=bn))
                prev = planes
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.linear = nn.Linear(prev, n_classes)
        self.softmax: nn.Module | None = nn.Softmax(dim=1) if softmax_head else None

    def forward(self, x: Tensor) -> Tensor:
        """Map a batch ``(N, C, H, W)`` to logits (or probabilities) ``(N, K)``."""
        x = self.conv1(x)
        for i in range(1, self.n_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        x = self.linear(torch.flatten(self.avgpool(x), 1))
        if self.softmax is not None:
            x = self.softmax(x)
        return x


def build_preact_resnet18(cfg: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> PreActResNet:
    """Pre-activation ResNet-18 of width k = ``max(1, round(64 * width_factor))`` (k = 16: 0.25).

    PreActBlock [2, 2, 2, 2], widths k, 2k, 4k, 8k, CIFAR stem only (``stem: imagenet`` is
    rejected by the config layer), ``bn`` BatchNorm before every ReLU. Paper 001's ResNet
    (``make_resnet18k(k=16, bn=...)`` of the authors' code).
    """
    check_image_shape("preact_resnet18", input_shape, 1)
    return PreActResNet(
        input_shape[0], n_classes, scaled(64, cfg["width_factor"]), (2, 2, 2, 2),
        bn=cfg["bn"], softmax_head=cfg["softmax_head"],
    )  # fmt: skip
