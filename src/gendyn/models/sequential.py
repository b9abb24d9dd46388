"""Plain ``nn.Sequential`` models: ``mlp``, ``cnn``, paper 001's ``convonly`` and the paper-003 ``convnet``.

Each builder takes the validated ``model`` section (see :mod:`gendyn.models`), the shape of
one input and the number of classes; module names are the recording-site names
(``relu1 .. relu{depth}``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from torch import nn

from gendyn.models._layers import check_image_shape, scaled

__all__ = ["build_mlp", "build_cnn", "build_convonly", "build_convnet"]


def build_mlp(cfg: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
    """``flatten, fc1, [bn1], relu1, ..., out, [softmax]``.

    Uses ``depth``, ``width`` (times ``width_factor``), ``bn`` and ``softmax_head``; any
    ``input_shape`` is flattened.
    """
    d_in = math.prod(input_shape)
    width = scaled(cfg["width"], cfg["width_factor"])
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    mods["flatten"] = nn.Flatten(start_dim=1)
    prev = d_in
    for i in range(1, cfg["depth"] + 1):
        mods[f"fc{i}"] = nn.Linear(prev, width)
        if cfg["bn"]:
            mods[f"bn{i}"] = nn.BatchNorm1d(width)
        mods[f"relu{i}"] = nn.ReLU(inplace=False)
        prev = width
    mods["out"] = nn.Linear(prev, n_classes)
    if cfg["softmax_head"]:
        mods["softmax"] = nn.Softmax(dim=1)
    return nn.Sequential(mods)


def build_cnn(cfg: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
    """``[conv{i} 3x3, [bn{i}], relu{i}, pool{i}] x depth, flatten, fc, [softmax]``.

    ``pool{i}`` is a 2x2 max-pool while the feature map is at least 4x4, else an
    ``nn.Identity`` (so deep stacks work on 8x8 digits).
    """
    check_image_shape("cnn", input_shape, 1)
    c, h, w = input_shape
    width = scaled(cfg["width"], cfg["width_factor"])
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    prev = c
    for i in range(1, cfg["depth"] + 1):
        mods[f"conv{i}"] = nn.Conv2d(prev, width, kernel_size=3, padding=1)
        if cfg["bn"]:
            mods[f"bn{i}"] = nn.BatchNorm2d(width)
        mods[f"relu{i}"] = nn.ReLU(inplace=False)
        if min(h, w) >= 4:
            mods[f"pool{i}"] = nn.MaxPool2d(2)
            h, w = h // 2, w // 2
        else:
            mods[f"pool{i}"] = nn.Identity()
        prev = width
    mods["flatten"] = nn.Flatten(start_dim=1)
    mods["fc"] = nn.Linear(prev * h * w, n_classes)
    if cfg["softmax_head"]:
        mods["softmax"] = nn.Softmax(dim=1)
    return nn.Sequential(mods)


def build_convonly(cfg: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
    """Paper 001's CNN: ``[conv{i} 3x3, [bn{i}], relu{i}] x depth, gap, flatten, fc, [softmax]``.

    Convolutions only (3x3, stride 1, padding 1, ``width`` channels times ``width_factor``, with
    bias), BatchNorm after each convolution and before its ReLU with ``bn: true``, then global
    average pooling (``gap``, an ``nn.AdaptiveAvgPool2d(1)``) and one Linear layer (``fc``,
    ``width -> n_classes``) without a ReLU. Paper 001, Sec. 4 ("only convolutional layers except
    for one fully connected layer before output"); the feature map keeps the input's size
    throughout. Unlike ``cnn`` there is no pooling between blocks.
    """
    check_image_shape("convonly", input_shape, 1)
    c = input_shape[0]
    width = scaled(cfg["width"], cfg["width_factor"])
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    prev = c
    for i in range(1, cfg["depth"] + 1):
        mods[f"conv{i}"] = nn.Conv2d(prev, width, kernel_size=3, stride=1, padding=1)
        if cfg["bn"]:
            mods[f"bn{i}"] = nn.BatchNorm2d(width)
        mods[f"relu{i}"] = nn.ReLU(inplace=False)
        prev = width
    mods["gap"] = nn.AdaptiveAvgPool2d(1)
    mods["flatten"] = nn.Flatten(start_dim=1)
    mods["fc"] = nn.Linear(prev, n_classes)
    if cfg["softmax_head"]:
        mods["softmax"] = nn.Softmax(dim=1)
    return nn.Sequential(mods)


def build_convnet(cfg: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
    """Paper 003 ConvNet: conv 60/80/160/320 (kernels 5, 5, 3, 3), two 2x2 max-pools, one Linear.

    No batch-norm option (``bn: true`` is rejected by the config layer); inputs >= 4x4.
    """
    check_image_shape("convnet", input_shape, 4)
    c, h, w = input_shape
    c1, c2, c3, c4 = (scaled(b, cfg["width_factor"]) for b in (60, 80, 160, 320))
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    mods["conv1"] = nn.Conv2d(c, c1, kernel_size=5, padding=2)
    mods["relu1"] = nn.ReLU(inplace=False)
    mods["conv2"] = nn.Conv2d(c1, c2, kernel_size=5, padding=2)
    mods["relu2"] = nn.ReLU(inplace=False)
    mods["pool1"] = nn.MaxPool2d(2)
    mods["conv3"] = nn.Conv2d(c2, c3, kernel_size=3, padding=1)
    mods["relu3"] = nn.ReLU(inplace=False)
    mods["pool2"] = nn.MaxPool2d(2)
    mods["conv4"] = nn.Conv2d(c3, c4, kernel_size=3, padding=1)
    mods["relu4"] = nn.ReLU(inplace=False)
    mods["flatten"] = nn.Flatten(start_dim=1)
    mods["fc"] = nn.Linear(c4 * (h // 4) * (w // 4), n_classes)
    if cfg["softmax_head"]:
        mods["softmax"] = nn.Softmax(dim=1)
    return nn.Sequential(mods)
