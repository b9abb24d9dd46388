"""Model zoo: every network the experiments train, built from the ``model`` config section.

The single public entry point is :func:`build_model`, which receives the ``model`` section
of a run config, the shape of one input image and the number of classes, and returns a
freshly initialised :class:`torch.nn.Module`.

Validation
----------
The JSON schema (``$defs/model`` of ``gendyn/schemas/config.schema.yaml``) and the
cross-key rules of :mod:`gendyn.config` (e.g. ``bn: true`` is rejected for ``alexnet`` and
``convnet``) are the only validator of the section. :func:`build_model` passes whatever it
receives through :func:`gendyn.config.validate_section` (``"model"``), which is a no-op on
a section already validated by :func:`gendyn.config.validate_run` and fills the defaults of
a hand-written one (``build_model({"name": "mlp"}, ...)``); the builders below read the
validated dict and check nothing but the input shape. Defaults that depend on the input
are resolved in one place each: the alexnet/vgg19 ImageNet variants and ResNet-18's
``stem: auto`` from the input height (:data:`IMAGENET_MIN_HEIGHT`), in their zoo module.

Recording sites
---------------
Every ReLU in every model is its own :class:`torch.nn.ReLU` instance (never
in-place, never reused twice in one forward pass, never ``F.relu``), registered
under a stable, readable attribute name.  Forward pre-hooks on these modules are
the *recording sites* used elsewhere in the package; :func:`relu_sites` lists
them in ``model.named_modules()`` order, which for every model in this package is
also the order in which they fire during a forward pass.

Naming conventions
------------------
* ``mlp``: ``fc1, bn1, relu1, fc2, ..., out`` inside one ``nn.Sequential``
  (``flatten`` first); ReLU sites ``relu1 .. relu{depth}``.
* ``cnn``: ``conv1, bn1, relu1, pool1, ..., flatten, fc``.
* ``convonly`` (paper 001's CNN): ``conv1, bn1, relu1, ..., conv{depth}, bn{depth},
  relu{depth}, gap, flatten, fc`` (no pooling between blocks; global average pooling).
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
* ``preact_resnet18`` (paper 001's code): ``conv1, layer1 .. layer4, avgpool, linear``; each
  :class:`PreActBlock` has ``bn1, relu1, conv1, bn2, relu2, conv2, [shortcut]`` (pre-activation:
  ``relu1`` acts on the block input, no ReLU after the residual sum).
* With ``softmax_head: true`` an ``nn.Softmax(dim=1)`` named ``softmax`` is the
  last registered module and the last operation of ``forward``.

Modules: :mod:`~gendyn.models.sequential` (mlp, cnn, convonly, convnet),
:mod:`~gendyn.models.alexnet`, :mod:`~gendyn.models.vgg`, :mod:`~gendyn.models.resnet`
(resnet18, resnet110, preact_resnet18).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from gendyn.models._layers import IMAGENET_MIN_HEIGHT
from gendyn.models.alexnet import AlexNet, build_alexnet
from gendyn.models.resnet import (
    BasicBlock,
    PreActBlock,
    PreActResNet,
    ResNet,
    build_preact_resnet18,
    build_resnet18,
    build_resnet110,
)
from gendyn.models.sequential import build_cnn, build_convnet, build_convonly, build_mlp
from gendyn.models.vgg import VGG, build_vgg19

__all__ = [
    "build_run_model",
    "MODEL_NAMES",
    "MODEL_KEYS",
    "IMAGENET_MIN_HEIGHT",
    "BasicBlock",
    "ResNet",
    "PreActBlock",
    "PreActResNet",
    "VGG",
    "AlexNet",
    "build_model",
    "count_parameters",
    "relu_sites",
]

logger = logging.getLogger(__name__)

_Builder = Callable[[Mapping[str, Any], tuple[int, ...], int], nn.Module]

#: ``model.name`` -> builder taking the validated section, the input shape and the class count.
_BUILDERS: dict[str, _Builder] = {
    "mlp": build_mlp,
    "cnn": build_cnn,
    "convonly": build_convonly,
    "convnet": build_convnet,
    "alexnet": build_alexnet,
    "vgg19": build_vgg19,
    "resnet18": build_resnet18,
    "resnet110": build_resnet110,
    "preact_resnet18": build_preact_resnet18,
}

#: Names accepted by ``model.name`` (the schema's enum; a test keeps the two equal).
MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)

#: Keys of the ``model`` config section (the schema's properties; a test keeps them equal).
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

_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_io(input_shape: Sequence[int], n_classes: int) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if not shape or not all(_is_int(s) and s >= 1 for s in shape):
        raise ValueError(f"input_shape: {shape!r} is invalid; expected positive ints (C, H, W)")
    if not _is_int(n_classes) or n_classes < 1:
        raise ValueError(f"n_classes: {n_classes!r} is invalid; expected an integer >= 1")
    return shape


def _validated(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The ``model`` section validated by the config layer, defaults filled (a copy)."""
    from gendyn.config import validate_section

    return validate_section("model", dict(cfg) if isinstance(cfg, Mapping) else cfg, "model")


def build_model(cfg: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """Build a freshly initialised model from the ``model`` config section.

    Parameters
    ----------
    cfg : Mapping[str, Any]
        ``model`` section, validated (``validate_run(...)["model"]``) or written by hand;
        it is passed through :func:`gendyn.config.validate_section`. Keys and defaults
        (``$defs/model`` of the schema):

        * ``name`` (required): one of :data:`MODEL_NAMES`.
        * ``depth`` [2]: hidden layers (mlp) / conv layers (cnn, convonly).
        * ``width`` [100]: hidden width (mlp) / conv channels (cnn, convonly).
        * ``bn`` [False]: batch-norm before each ReLU (mlp, cnn, convonly, vgg19, resnet18,
          resnet110, preact_resnet18); ``True`` is rejected for alexnet and convnet, which
          have no BN option.
        * ``width_factor`` [1.0]: multiplies every channel / hidden-unit count
          (``max(1, round(base * width_factor))``), for all models, the mlp/cnn/convonly
          ``width`` included; preact_resnet18's k is ``64 * width_factor``.
        * ``stem`` ["auto"]: resnet18 stem; ``auto`` means ``imagenet`` when
          ``H >= 64`` else ``cifar``. preact_resnet18 has the cifar stem only.
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
    gendyn.config.ConfigError
        (a ``ValueError``) On an invalid ``model`` section; the message names the key, the
        bad value and the allowed values.
    ValueError
        On an input shape or class count the architecture cannot handle.

    Notes
    -----
    Initialisation draws from the global torch RNG, exactly as ``torch.nn`` layers do;
    the caller seeds it (or forks it), the library never does.
    """
    spec = _validated(cfg)
    shape = _validate_io(input_shape, n_classes)
    name = spec["name"]
    model = _BUILDERS[name](spec, shape, n_classes)
    model = model.to(dtype=_DTYPES[spec["dtype"]])
    if spec["init_scale"] != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(spec["init_scale"])
    sites = relu_sites(model)  # guard: every site a distinct instance
    logger.debug(  # the training job logs the model once; analyses rebuild it per checkpoint
        "built model %s (input %s, %d classes): %d parameters, %d ReLU sites",
        name, shape, n_classes, count_parameters(model), len(sites),
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
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _n_outputs(run: Mapping[str, Any], n_classes: int) -> int:
    """Output width: ``training.objective.n_outputs`` (paper 003 S1 kept 1000) or the number of classes."""
    n_out = (run["training"].get("objective") or {}).get("n_outputs")
    if n_out is None:
        return int(n_classes)
    if int(n_out) < n_classes:
        raise ValueError(
            f"training.objective.n_outputs: {n_out} is fewer than the {n_classes} classes of the data; "
            f"set it to at least {n_classes} or null"
        )
    return int(n_out)


def build_run_model(run: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """The model of a run, initialised from its seed without touching the global RNG.

    Parameters
    ----------
    run : mapping
        A resolved run configuration (``validate_run``): ``model`` builds the architecture,
        ``training.seed`` seeds the initialisation (purpose ``"init"``), ``model.dtype`` sets the
        dtype, ``training.objective.n_outputs`` (if any) the output width.
    input_shape, n_classes : as for :func:`build_model`
    """
    from gendyn.runtime import derive_seed

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(run["training"]["seed"], "init"))
        model = build_model(run["model"], tuple(input_shape), _n_outputs(run, n_classes))
    return model.to(torch.float64 if run["model"].get("dtype") == "float64" else torch.float32)
