"""Model zoo: every network the experiments train, built from a config mapping.

The single public entry point is :func:`build_model`, which receives the
``model`` section of a run config, the shape of one input image and the number
of classes, and returns a freshly initialised :class:`torch.nn.Module`.

Recording sites
---------------
Every ReLU in every model is its own :class:`torch.nn.ReLU` instance (never
in-place, never reused twice in one forward pass, never ``F.relu``), registered
under a stable, readable attribute name.  Forward pre-hooks on these modules are
the *recording sites* used elsewhere in the package; :func:`relu_sites` lists
them in ``model.named_modules()`` order, which for every model in this module is
also the order in which they fire during a forward pass.

Naming conventions
------------------
* ``mlp``: ``fc1, bn1, relu1, fc2, ..., out`` inside one ``nn.Sequential``
  (``flatten`` first); ReLU sites ``relu1 .. relu{depth}``.
* ``cnn``: ``conv1, bn1, relu1, pool1, ..., flatten, fc``.
* ``convnet``: ``conv1, relu1, conv2, relu2, pool1, conv3, relu3, pool2, conv4,
  relu4, flatten, fc``.
* ``alexnet`` / ``vgg19``: ``features``, ``avgpool``, ``classifier`` as in
  torchvision.  Inside the two ``nn.Sequential`` containers, modules that hold
  parameters or buffers (conv, linear, batch-norm) are named by their position
  (``features.0``, ``classifier.6``, exactly torchvision's indices) while the
  parameterless ones get readable names (``features.relu1``, ``features.pool1``,
  ``classifier.dropout1``, ``classifier.relu2``).  Positional indexing
  (``model.features[1]``) still works and ``state_dict()`` keys are identical to
  torchvision's, so torchvision checkpoints load with ``strict=True``.
* ``resnet18`` / ``resnet110``: ``conv1, bn1, relu, maxpool, layer1 .. layerN,
  avgpool, fc`` as in torchvision; each :class:`BasicBlock` has ``conv1, bn1,
  relu1, conv2, bn2, [downsample], relu2`` (``relu2`` after the residual sum).
* With ``softmax_head: true`` an ``nn.Softmax(dim=1)`` named ``softmax`` is the
  last registered module and the last operation of ``forward``.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "MODEL_NAMES",
    "MODEL_KEYS",
    "IMAGENET_MIN_HEIGHT",
    "BasicBlock",
    "ResNet",
    "VGG",
    "AlexNet",
    "ModelSpec",
    "build_model",
    "count_parameters",
    "parse_model_config",
    "relu_sites",
]

logger = logging.getLogger(__name__)

#: Names accepted by ``model.name``.
MODEL_NAMES: tuple[str, ...] = (
    "mlp",
    "cnn",
    "convnet",
    "alexnet",
    "vgg19",
    "resnet18",
    "resnet110",
)

#: Keys accepted in the ``model`` config section.
MODEL_KEYS: tuple[str, ...] = (
    "name",
    "depth",
    "width",
    "bn",
    "width_factor",
    "stem",
    "softmax_head",
    "init_scale",
    "dtype",
    "dropout",
)

_STEMS: tuple[str, ...] = ("auto", "cifar", "imagenet")
_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}

#: Inputs with height >= this use the ImageNet variants (alexnet, vgg19) and,
#: with ``stem: auto``, the ImageNet ResNet-18 stem.
IMAGENET_MIN_HEIGHT: int = 64

# VGG-19 ("E") channel plan; "M" is a 2x2 max-pool.
_VGG19_PLAN: tuple[int | str, ...] = (
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, 256, "M",
    512, 512, 512, 512, "M",
    512, 512, 512, 512, "M",
)  # fmt: skip


# --------------------------------------------------------------------------
# Config parsing
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """Validated, fully resolved ``model`` config section.

    Attributes
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    depth : int
        Number of hidden layers (``mlp``) or conv layers (``cnn``).
    width : int
        Hidden width (``mlp``) or conv channels (``cnn``), before ``width_factor``.
    bn : bool
        Whether batch normalisation is used.  Resolved per model: the config
        default is ``False`` except for ``resnet110`` where it is ``True``.
    width_factor : float
        Multiplier on every channel / hidden-unit count.
    stem : str
        ``"auto"``, ``"cifar"`` or ``"imagenet"`` (ResNet-18 only).
    softmax_head : bool
        Append ``nn.Softmax(dim=1)`` as the final module.
    init_scale : float
        Factor applied to every parameter after initialisation.
    dtype : torch.dtype
        Parameter dtype.
    dropout : float
        Dropout probability of the alexnet / vgg19 classifiers.
    """

    name: str
    depth: int = 2
    width: int = 100
    bn: bool = False
    width_factor: float = 1.0
    stem: str = "auto"
    softmax_head: bool = False
    init_scale: float = 1.0
    dtype: torch.dtype = torch.float32
    dropout: float = 0.5


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_model_config(cfg: Mapping[str, Any]) -> ModelSpec:
    """Validate the ``model`` config section and fill in defaults.

    Parameters
    ----------
    cfg : Mapping[str, Any]
        The ``model`` section of a run config.  Keys (all but ``name``
        optional): ``name``, ``depth`` (2), ``width`` (100), ``bn`` (False;
        True for ``resnet110``), ``width_factor`` (1.0), ``stem`` ("auto"),
        ``softmax_head`` (False), ``init_scale`` (1.0), ``dtype`` ("float32"),
        ``dropout`` (0.5).

    Returns
    -------
    ModelSpec
        The resolved specification.

    Raises
    ------
    ValueError
        On a missing ``name``, an unknown key, or a value of the wrong type or
        outside its allowed range; the message names the key, the bad value and
        what is allowed.
    """
    if not isinstance(cfg, Mapping):
        raise ValueError(f"model: expected a mapping, got {type(cfg).__name__}")
    unknown = [k for k in cfg if k not in MODEL_KEYS]
    if unknown:
        raise ValueError(
            f"model.{unknown[0]}: {unknown[0]!r} is not a known model key; "
            f"allowed keys: {', '.join(MODEL_KEYS)}"
        )
    if "name" not in cfg:
        raise ValueError(
            f"model.name: missing; choose one of: {', '.join(MODEL_NAMES)}"
        )
    name = cfg["name"]
    if not isinstance(name, str) or name not in MODEL_NAMES:
        raise ValueError(
            f"model.name: {name!r} is not a known model; "
            f"choose one of: {', '.join(MODEL_NAMES)}"
        )

    depth = cfg.get("depth", 2)
    if not _is_int(depth) or depth < 1:
        raise ValueError(f"model.depth: {depth!r} is invalid; expected an integer >= 1")
    width = cfg.get("width", 100)
    if not _is_int(width) or width < 1:
        raise ValueError(f"model.width: {width!r} is invalid; expected an integer >= 1")

    bn_default = name == "resnet110"
    bn = cfg.get("bn", bn_default)
    if not isinstance(bn, bool):
        raise ValueError(f"model.bn: {bn!r} is invalid; expected true or false")
    if name in ("alexnet", "convnet") and bn:
        raise ValueError(
            f"model.bn: True is not supported for model {name!r} (it has no "
            "batch-norm option); allowed values: false"
        )

    wf = cfg.get("width_factor", 1.0)
    if not _is_real(wf) or not math.isfinite(wf) or wf <= 0:
        raise ValueError(
            f"model.width_factor: {wf!r} is invalid; expected a finite number > 0"
        )
    stem = cfg.get("stem", "auto")
    if stem not in _STEMS:
        raise ValueError(
            f"model.stem: {stem!r} is not a known stem; "
            f"choose one of: {', '.join(_STEMS)}"
        )
    softmax_head = cfg.get("softmax_head", False)
    if not isinstance(softmax_head, bool):
        raise ValueError(
            f"model.softmax_head: {softmax_head!r} is invalid; expected true or false"
        )
    init_scale = cfg.get("init_scale", 1.0)
    if not _is_real(init_scale) or not math.isfinite(init_scale) or init_scale <= 0:
        raise ValueError(
            f"model.init_scale: {init_scale!r} is invalid; expected a finite number > 0"
        )
    dtype_raw = cfg.get("dtype", "float32")
    if isinstance(dtype_raw, torch.dtype) and dtype_raw in _DTYPES.values():
        dtype = dtype_raw
    elif isinstance(dtype_raw, str) and dtype_raw in _DTYPES:
        dtype = _DTYPES[dtype_raw]
    else:
        raise ValueError(
            f"model.dtype: {dtype_raw!r} is not a supported dtype; "
            f"choose one of: {', '.join(_DTYPES)}"
        )
    dropout = cfg.get("dropout", 0.5)
    if not _is_real(dropout) or not 0.0 <= dropout < 1.0:
        raise ValueError(
            f"model.dropout: {dropout!r} is invalid; expected a number in [0, 1)"
        )
    if "dropout" in cfg and name not in ("alexnet", "vgg19"):
        logger.debug("model.dropout is unused by model %r", name)

    return ModelSpec(
        name=name,
        depth=int(depth),
        width=int(width),
        bn=bn,
        width_factor=float(wf),
        stem=stem,
        softmax_head=softmax_head,
        init_scale=float(init_scale),
        dtype=dtype,
        dropout=float(dropout),
    )


def _scaled(base: int, width_factor: float) -> int:
    """Return ``max(1, round(base * width_factor))`` (Python rounding)."""
    return max(1, int(round(base * width_factor)))


# --------------------------------------------------------------------------
# Sequential helper: numeric names for stateful layers, readable for the rest
# --------------------------------------------------------------------------
class _SeqBuilder:
    """Collect modules for an ``nn.Sequential`` with torchvision-compatible keys.

    Modules carrying parameters or buffers are named by their position (as in
    torchvision); parameterless ones (``relu``, ``pool``, ``dropout``) are named
    ``f"{kind}{k}"`` with a per-kind counter starting at 1.
    """

    def __init__(self) -> None:
        self._modules: OrderedDict[str, nn.Module] = OrderedDict()
        self._counts: dict[str, int] = {}

    def add(self, module: nn.Module, kind: str | None = None) -> None:
        if kind is None:
            name = str(len(self._modules))
        else:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            name = f"{kind}{self._counts[kind]}"
        self._modules[name] = module

    def build(self) -> nn.Sequential:
        return nn.Sequential(self._modules)


def _classifier(
    in_features: int, hidden: int, n_classes: int, dropout: float, dropout_first: bool
) -> nn.Sequential:
    """Two hidden FC layers with ReLU and dropout, in torchvision's layouts.

    ``dropout_first=True`` gives AlexNet's ``Dropout, Linear, ReLU, Dropout,
    Linear, ReLU, Linear``; ``False`` gives VGG's ``Linear, ReLU, Dropout,
    Linear, ReLU, Dropout, Linear``.
    """
    seq = _SeqBuilder()
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


def _check_image_shape(name: str, input_shape: tuple[int, ...], min_hw: int) -> None:
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


# --------------------------------------------------------------------------
# Plain sequential models
# --------------------------------------------------------------------------
def _build_mlp(
    spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int
) -> nn.Module:
    d_in = math.prod(input_shape)
    width = _scaled(spec.width, spec.width_factor)
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    mods["flatten"] = nn.Flatten(start_dim=1)
    prev = d_in
    for i in range(1, spec.depth + 1):
        mods[f"fc{i}"] = nn.Linear(prev, width)
        if spec.bn:
            mods[f"bn{i}"] = nn.BatchNorm1d(width)
        mods[f"relu{i}"] = nn.ReLU(inplace=False)
        prev = width
    mods["out"] = nn.Linear(prev, n_classes)
    if spec.softmax_head:
        mods["softmax"] = nn.Softmax(dim=1)
    return nn.Sequential(mods)


def _build_cnn(
    spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int
) -> nn.Module:
    _check_image_shape("cnn", input_shape, 1)
    c, h, w = input_shape
    width = _scaled(spec.width, spec.width_factor)
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    prev = c
    for i in range(1, spec.depth + 1):
        mods[f"conv{i}"] = nn.Conv2d(prev, width, kernel_size=3, padding=1)
        if spec.bn:
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
    if spec.softmax_head:
        mods["softmax"] = nn.Softmax(dim=1)
    return nn.Sequential(mods)


def _build_convnet(
    spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int
) -> nn.Module:
    _check_image_shape("convnet", input_shape, 4)
    c, h, w = input_shape
    c1, c2, c3, c4 = (_scaled(b, spec.width_factor) for b in (60, 80, 160, 320))
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
    if spec.softmax_head:
        mods["softmax"] = nn.Softmax(dim=1)
    return nn.Sequential(mods)


# --------------------------------------------------------------------------
# AlexNet
# --------------------------------------------------------------------------
class AlexNet(nn.Module):
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
        ch = [_scaled(b, width_factor) for b in (64, 192, 384, 256, 256)]
        hidden = _scaled(4096, width_factor)
        f = _SeqBuilder()
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
        self.classifier = _classifier(
            flat, hidden, n_classes, dropout, dropout_first=True
        )
        self.softmax: nn.Module | None = nn.Softmax(dim=1) if softmax_head else None

    def forward(self, x: Tensor) -> Tensor:
        """Map a batch ``(N, C, H, W)`` to logits (or probabilities) ``(N, K)``."""
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        if self.softmax is not None:
            x = self.softmax(x)
        return x


# --------------------------------------------------------------------------
# VGG-19
# --------------------------------------------------------------------------
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


class VGG(nn.Module):
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
        f = _SeqBuilder()
        prev = in_channels
        for item in _VGG19_PLAN:
            if item == "M":
                f.add(nn.MaxPool2d(kernel_size=2, stride=2), "pool")
                continue
            out = _scaled(int(item), width_factor)
            f.add(nn.Conv2d(prev, out, kernel_size=3, padding=1))
            if bn:
                f.add(nn.BatchNorm2d(out))
            f.add(nn.ReLU(inplace=False), "relu")
            prev = out
        self.features = f.build()
        if imagenet:
            self.avgpool: nn.Module = nn.AdaptiveAvgPool2d((7, 7))
            flat = prev * 7 * 7
            hidden = _scaled(4096, width_factor)
        else:
            self.avgpool = nn.Identity()
            flat = prev * (height // 32) * (width // 32)
            hidden = _scaled(512, width_factor)
        self.classifier = _classifier(
            flat, hidden, n_classes, dropout, dropout_first=False
        )
        self.softmax: nn.Module | None = nn.Softmax(dim=1) if softmax_head else None
        _torchvision_vgg_init(self)

    def forward(self, x: Tensor) -> Tensor:
        """Map a batch ``(N, C, H, W)`` to logits (or probabilities) ``(N, K)``."""
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        if self.softmax is not None:
            x = self.softmax(x)
        return x


# --------------------------------------------------------------------------
# ResNets
# --------------------------------------------------------------------------
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


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def _validate_io(input_shape: Sequence[int], n_classes: int) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if not shape or not all(_is_int(s) and s >= 1 for s in shape):
        raise ValueError(
            f"input_shape: {shape!r} is invalid; expected positive ints (C, H, W)"
        )
    if not _is_int(n_classes) or n_classes < 1:
        raise ValueError(
            f"n_classes: {n_classes!r} is invalid; expected an integer >= 1"
        )
    return shape


def build_model(
    cfg: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int
) -> nn.Module:
    """Build a freshly initialised model from the ``model`` config section.

    Parameters
    ----------
    cfg : Mapping[str, Any]
        ``model`` section.  Keys (defaults in brackets):

        * ``name`` (required): one of :data:`MODEL_NAMES`.
        * ``depth`` [2]: hidden layers (mlp) / conv layers (cnn).
        * ``width`` [100]: hidden width (mlp) / conv channels (cnn).
        * ``bn`` [False; True for resnet110]: batch-norm before each ReLU
          (mlp, cnn, vgg19, resnet18, resnet110); ``True`` is rejected for alexnet
          and convnet, which have no BN option.
        * ``width_factor`` [1.0]: multiplies every channel / hidden-unit count
          (``max(1, round(base * width_factor))``), for all models, the mlp/cnn
          ``width`` included.
        * ``stem`` ["auto"]: resnet18 stem; ``auto`` means ``imagenet`` when
          ``H >= 64`` else ``cifar``.
        * ``softmax_head`` [False]: append ``nn.Softmax(dim=1)``.
        * ``init_scale`` [1.0]: multiply every parameter (weights and biases, not
          buffers) by this factor after initialisation.
        * ``dtype`` ["float32"]: ``"float32"`` or ``"float64"``.
        * ``dropout`` [0.5]: classifier dropout of alexnet and vgg19 (unused
          elsewhere).
    input_shape : tuple[int, ...]
        Shape ``(C, H, W)`` of one input (the mlp accepts any shape).
        alexnet and vgg19 use their ImageNet variants when ``H >= 64``.
    n_classes : int
        Number of outputs.

    Returns
    -------
    torch.nn.Module
        The model, in training mode, on the CPU, with dtype ``cfg["dtype"]``.

    Raises
    ------
    ValueError
        On invalid config values (see :func:`parse_model_config`) or an input
        shape the architecture cannot handle.
    """
    spec = parse_model_config(cfg)
    shape = _validate_io(input_shape, n_classes)
    name = spec.name
    wf = spec.width_factor
    model: nn.Module
    if name == "mlp":
        model = _build_mlp(spec, shape, n_classes)
    elif name == "cnn":
        model = _build_cnn(spec, shape, n_classes)
    elif name == "convnet":
        model = _build_convnet(spec, shape, n_classes)
    elif name == "alexnet":
        imagenet = len(shape) == 3 and shape[1] >= IMAGENET_MIN_HEIGHT
        _check_image_shape(name, shape, 63 if imagenet else 8)
        model = AlexNet(
            shape[0], shape[1], shape[2], n_classes,
            width_factor=wf, dropout=spec.dropout, imagenet=imagenet,
            softmax_head=spec.softmax_head,
        )  # fmt: skip
    elif name == "vgg19":
        _check_image_shape(name, shape, 32)
        model = VGG(
            shape[0], shape[1], shape[2], n_classes,
            bn=spec.bn, width_factor=wf, dropout=spec.dropout,
            imagenet=shape[1] >= IMAGENET_MIN_HEIGHT, softmax_head=spec.softmax_head,
        )  # fmt: skip
    elif name == "resnet18":
        _check_image_shape(name, shape, 1)
        stem = spec.stem
        if stem == "auto":
            stem = "imagenet" if shape[1] >= IMAGENET_MIN_HEIGHT else "cifar"
        base = _scaled(64, wf)
        model = ResNet(
            shape[0], n_classes, [base, 2 * base, 4 * base, 8 * base], [2, 2, 2, 2],
            stem=stem, bn=spec.bn, softmax_head=spec.softmax_head,
        )  # fmt: skip
    elif name == "resnet110":
        _check_image_shape(name, shape, 1)
        widths = [_scaled(b, wf) for b in (16, 32, 64)]
        model = ResNet(
            shape[0], n_classes, widths, [18, 18, 18],
            stem="cifar", bn=spec.bn, softmax_head=spec.softmax_head,
        )  # fmt: skip
    else:  # pragma: no cover - parse_model_config guarantees a known name
        raise ValueError(f"model.name: {name!r} is not a known model")

    model = model.to(dtype=spec.dtype)
    if spec.init_scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(spec.init_scale)
    relu_sites(model)  # guard: every site a distinct instance
    logger.debug(  # the training job logs the model once; analyses rebuild it per checkpoint
        "built model %s (input %s, %d classes): %d parameters, %d ReLU sites",
        name, shape, n_classes, count_parameters(model), len(relu_sites(model)),
    )  # fmt: skip
    return model


def relu_sites(model: nn.Module) -> list[tuple[str, nn.ReLU]]:
    """List every ``nn.ReLU`` of ``model`` with its qualified name.

    Parameters
    ----------
    model : torch.nn.Module
        Any module.

    Returns
    -------
    list[tuple[str, torch.nn.ReLU]]
        ``(qualified_name, module)`` pairs in ``model.named_modules()`` order.

    Raises
    ------
    ValueError
        If the same ``nn.ReLU`` instance is registered under two names (it
        would be two recording sites sharing one hook).
    """
    sites: list[tuple[str, nn.ReLU]] = []
    seen: dict[int, str] = {}
    for qname, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, nn.ReLU):
            if id(module) in seen:
                raise ValueError(
                    "ReLU instance registered twice, as "
                    f"{seen[id(module)]!r} and {qname!r}; "
                    "every recording site must be a distinct nn.ReLU module"
                )
            seen[id(module)] = qname
            sites.append((qname, module))
    return sites


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        Any module.
    trainable_only : bool, default False
        Count only parameters with ``requires_grad``.

    Returns
    -------
    int
        Sum of ``p.numel()`` over (unique) parameters; buffers are not counted.
    """
    return sum(
        p.numel() for p in model.parameters() if p.requires_grad or not trainable_only
    )
