"""Tests for :mod:`gendyn.models`."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from gendyn.config import ConfigError, schema, validate_run, validate_section
from gendyn.models import (
    IMAGENET_MIN_HEIGHT,
    MODEL_KEYS,
    MODEL_NAMES,
    VGG,
    AlexNet,
    BasicBlock,
    PreActBlock,
    PreActResNet,
    ResNet,
    build_model,
    count_parameters,
    relu_sites,
)

# (config, input_shape, n_classes, expected number of ReLU sites); small and fast.
CASES: list[tuple[dict[str, Any], tuple[int, int, int], int, int]] = [
    ({"name": "mlp", "depth": 3, "width": 16}, (1, 8, 8), 10, 3),
    ({"name": "mlp", "depth": 2, "width": 16, "bn": True}, (1, 28, 28), 10, 2),
    ({"name": "cnn", "depth": 2, "width": 8}, (1, 8, 8), 10, 2),
    ({"name": "cnn", "depth": 4, "width": 8, "bn": True}, (1, 8, 8), 10, 4),
    ({"name": "cnn", "depth": 2, "width": 8}, (1, 28, 28), 10, 2),
    ({"name": "cnn", "depth": 3, "width": 8}, (3, 32, 32), 10, 3),
    ({"name": "convnet", "width_factor": 0.25}, (1, 28, 28), 10, 4),
    ({"name": "convnet", "width_factor": 0.25}, (3, 32, 32), 10, 4),
    ({"name": "alexnet", "width_factor": 0.125}, (3, 32, 32), 10, 7),
    ({"name": "alexnet", "width_factor": 0.125}, (1, 28, 28), 10, 7),
    ({"name": "alexnet", "width_factor": 0.125}, (3, 64, 64), 10, 7),
    ({"name": "vgg19", "width_factor": 0.125}, (3, 32, 32), 10, 18),
    ({"name": "vgg19", "width_factor": 0.125, "bn": True}, (3, 32, 32), 10, 18),
    ({"name": "vgg19", "width_factor": 0.125}, (3, 64, 64), 10, 18),
    ({"name": "resnet18", "width_factor": 0.125}, (3, 32, 32), 10, 17),
    ({"name": "resnet18", "width_factor": 0.125, "bn": True}, (3, 64, 64), 10, 17),
    (
        {"name": "resnet18", "width_factor": 0.125, "stem": "imagenet"},
        (1, 28, 28),
        10,
        17,
    ),
    ({"name": "resnet110", "width_factor": 0.25}, (3, 32, 32), 10, 109),
    ({"name": "convonly", "depth": 3, "width": 8}, (3, 32, 32), 10, 3),
    ({"name": "convonly", "depth": 2, "width": 4, "bn": True}, (1, 8, 8), 10, 2),
    ({"name": "preact_resnet18", "width_factor": 0.125}, (3, 32, 32), 10, 16),
    ({"name": "preact_resnet18", "width_factor": 0.125, "bn": True}, (1, 28, 28), 10, 16),
]
IDS = [
    f"{c['name']}-{'x'.join(map(str, s))}-{i}" for i, (c, s, _, _) in enumerate(CASES)
]


def _build(
    cfg: dict[str, Any], shape: tuple[int, ...], k: int, seed: int = 0
) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(cfg, shape, k)


def test_model_names_cover_all_architectures() -> None:
    assert set(MODEL_NAMES) == {c["name"] for c, _, _, _ in CASES}


@pytest.mark.parametrize(("cfg", "shape", "k", "n_sites"), CASES, ids=IDS)
def test_output_shape_and_sites(
    cfg: dict[str, Any], shape: tuple[int, int, int], k: int, n_sites: int
) -> None:
    model = _build(cfg, shape, k)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, k)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()

    sites = relu_sites(model)
    assert len(sites) == n_sites
    assert len({id(m) for _, m in sites}) == n_sites
    assert all(isinstance(m, nn.ReLU) and not m.inplace for _, m in sites)
    # names agree with named_modules
    named = dict(model.named_modules())
    assert all(named[name] is m for name, m in sites)


@pytest.mark.parametrize(("cfg", "shape", "k", "n_sites"), CASES, ids=IDS)
def test_every_site_fires_once_in_order(
    cfg: dict[str, Any], shape: tuple[int, int, int], k: int, n_sites: int
) -> None:
    model = _build(cfg, shape, k)
    calls: list[str] = []
    handles = [
        m.register_forward_pre_hook(lambda _m, _inp, name=name: calls.append(name))
        for name, m in relu_sites(model)
    ]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.randn(1, *shape))
    finally:
        for h in handles:
            h.remove()
    assert len(calls) == n_sites
    assert calls == [name for name, _ in relu_sites(model)]


def test_site_names_are_readable() -> None:
    names = lambda cfg, shape: [
        n for n, _ in relu_sites(build_model(cfg, shape, 10))
    ]  # noqa: E731
    assert names({"name": "mlp", "depth": 3, "width": 4}, (1, 8, 8)) == [
        "relu1",
        "relu2",
        "relu3",
    ]
    assert names({"name": "convnet", "width_factor": 0.1}, (1, 8, 8)) == [
        "relu1", "relu2", "relu3", "relu4",
    ]  # fmt: skip
    vgg = names({"name": "vgg19", "width_factor": 0.0625}, (3, 32, 32))
    assert vgg[:2] == ["features.relu1", "features.relu2"]
    assert vgg[-3:] == ["features.relu16", "classifier.relu1", "classifier.relu2"]
    alex = names({"name": "alexnet", "width_factor": 0.0625}, (3, 32, 32))
    assert alex == [f"features.relu{i}" for i in range(1, 6)] + [
        "classifier.relu1", "classifier.relu2",
    ]  # fmt: skip
    r18 = names({"name": "resnet18", "width_factor": 0.0625}, (3, 8, 8))
    assert r18[:5] == [
        "relu",
        "layer1.0.relu1",
        "layer1.0.relu2",
        "layer1.1.relu1",
        "layer1.1.relu2",
    ]
    assert r18[-1] == "layer4.1.relu2"
    r110 = names({"name": "resnet110", "width_factor": 0.25}, (3, 8, 8))
    assert r110[-1] == "layer3.17.relu2"


def test_relu_sites_rejects_shared_instance() -> None:
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(2, 2), relu, nn.Linear(2, 2), relu)
    with pytest.raises(ValueError, match="registered twice"):
        relu_sites(model)


@pytest.mark.parametrize(
    ("shape", "wf", "expected"),
    [
        ((3, 32, 32), 1.0, 905_930),
        ((1, 28, 28), 1.0, 854_930),
        ((1, 28, 28), 0.25, 83_240),
    ],
)
def test_convnet_parameter_counts(
    shape: tuple[int, int, int], wf: float, expected: int
) -> None:
    model = build_model({"name": "convnet", "width_factor": wf}, shape, 10)
    assert count_parameters(model) == expected
    assert isinstance(model.conv1, nn.Conv2d)
    model(torch.randn(1, *shape)).sum().backward()
    assert model.conv1.weight.grad is not None


def test_count_parameters_trainable_only() -> None:
    model = build_model({"name": "mlp", "depth": 1, "width": 3}, (2,), 2)
    assert count_parameters(model) == (2 * 3 + 3) + (3 * 2 + 2)
    model.out.weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == (2 * 3 + 3) + 2


def test_cnn_pooling_stops_at_small_maps() -> None:
    model = build_model({"name": "cnn", "depth": 4, "width": 4}, (1, 8, 8), 3)
    pools = [type(model.get_submodule(f"pool{i}")) for i in range(1, 5)]
    assert pools == [nn.MaxPool2d, nn.MaxPool2d, nn.Identity, nn.Identity]
    assert model.fc.in_features == 4 * 2 * 2


@pytest.mark.parametrize(
    "cfg",
    [
        {"name": "mlp", "depth": 2, "width": 8, "bn": True},
        {"name": "resnet18", "width_factor": 0.0625, "bn": True},
        {"name": "vgg19", "width_factor": 0.0625},
        {"name": "convnet", "width_factor": 0.1},
    ],
    ids=lambda c: c["name"],
)
def test_init_scale_multiplies_every_parameter(cfg: dict[str, Any]) -> None:
    shape = (3, 32, 32)
    base = _build(cfg, shape, 10, seed=123)
    scaled = _build({**cfg, "init_scale": 8}, shape, 10, seed=123)
    p1 = dict(base.named_parameters())
    p8 = dict(scaled.named_parameters())
    assert p1.keys() == p8.keys()
    assert any(".bias" in k or k.endswith("bias") for k in p1)
    for k in p1:
        torch.testing.assert_close(p8[k], 8 * p1[k], rtol=0, atol=0)
    b1 = dict(base.named_buffers())
    b8 = dict(scaled.named_buffers())
    assert b1.keys() == b8.keys()
    for k in b1:
        assert torch.equal(b1[k], b8[k]), k


def test_float64() -> None:
    for cfg, shape in [
        ({"name": "mlp", "depth": 2, "width": 8, "bn": True}, (1, 8, 8)),
        ({"name": "resnet18", "width_factor": 0.0625, "bn": True}, (3, 16, 16)),
    ]:
        model = build_model({**cfg, "dtype": "float64"}, shape, 5)
        assert all(p.dtype == torch.float64 for p in model.parameters())
        out = model(torch.randn(2, *shape, dtype=torch.float64))
        assert out.dtype == torch.float64 and out.shape == (2, 5)


@pytest.mark.parametrize(
    ("cfg", "shape"),
    [
        ({"name": "mlp", "width": 8}, (1, 8, 8)),
        ({"name": "cnn", "width": 4}, (1, 8, 8)),
        ({"name": "convnet", "width_factor": 0.1}, (1, 8, 8)),
        ({"name": "alexnet", "width_factor": 0.0625}, (3, 32, 32)),
        ({"name": "vgg19", "width_factor": 0.0625}, (3, 32, 32)),
        ({"name": "resnet18", "width_factor": 0.0625}, (3, 8, 8)),
        ({"name": "resnet110", "width_factor": 0.25}, (3, 8, 8)),
        ({"name": "convonly", "width": 4}, (1, 8, 8)),
        ({"name": "preact_resnet18", "width_factor": 0.0625}, (3, 8, 8)),
    ],
    ids=lambda v: v["name"] if isinstance(v, dict) else "x".join(map(str, v)),
)
def test_softmax_head(cfg: dict[str, Any], shape: tuple[int, int, int]) -> None:
    model = build_model({**cfg, "softmax_head": True}, shape, 7)
    last_name, last = list(model.named_modules())[-1]
    assert isinstance(last, nn.Softmax) and last.dim == 1
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(3, *shape))
    assert out.shape == (3, 7)
    assert (out >= 0).all()
    torch.testing.assert_close(out.sum(dim=1), torch.ones(3))
    plain = build_model(cfg, shape, 7)
    assert not any(isinstance(m, nn.Softmax) for m in plain.modules())


def test_bn_flags() -> None:
    def n_bn(cfg: dict[str, Any], shape: tuple[int, ...] = (3, 32, 32)) -> int:
        return sum(
            isinstance(m, nn.modules.batchnorm._BatchNorm)
            for m in build_model(cfg, shape, 10).modules()
        )

    assert n_bn({"name": "mlp", "depth": 3, "width": 4}) == 0
    assert n_bn({"name": "mlp", "depth": 3, "width": 4, "bn": True}) == 3
    assert n_bn({"name": "cnn", "depth": 2, "width": 4, "bn": True}) == 2
    assert n_bn({"name": "vgg19", "width_factor": 0.0625, "bn": True}) == 16
    assert n_bn({"name": "resnet18", "width_factor": 0.0625}) == 0
    assert n_bn({"name": "resnet18", "width_factor": 0.0625, "bn": True}) == 1 + 16 + 3
    assert n_bn({"name": "convonly", "depth": 3, "width": 4}) == 0
    assert n_bn({"name": "convonly", "depth": 3, "width": 4, "bn": True}) == 3
    assert n_bn({"name": "preact_resnet18", "width_factor": 0.0625}) == 0
    assert n_bn({"name": "preact_resnet18", "width_factor": 0.0625, "bn": True}) == 16
    # resnet110 has BN only with bn: true (the schema default false, as in every run
    # config); without it the convs carry biases
    assert n_bn({"name": "resnet110", "width_factor": 0.25, "bn": True}, (3, 8, 8)) == 1 + 108 + 2
    no_bn = build_model({"name": "resnet110", "width_factor": 0.25}, (3, 8, 8), 10)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in no_bn.modules())
    assert all(m.bias is not None for m in no_bn.modules() if isinstance(m, nn.Conv2d))


def test_resnet_stems() -> None:
    cifar = build_model({"name": "resnet18", "width_factor": 0.125}, (3, 32, 32), 10)
    assert cifar.conv1.kernel_size == (3, 3) and cifar.conv1.stride == (1, 1)
    assert isinstance(cifar.maxpool, nn.Identity)
    assert cifar.conv1.out_channels == 8
    imnet = build_model({"name": "resnet18", "width_factor": 0.125}, (3, 64, 64), 10)
    assert imnet.conv1.kernel_size == (7, 7) and imnet.conv1.stride == (2, 2)
    assert isinstance(imnet.maxpool, nn.MaxPool2d)
    forced = build_model(
        {"name": "resnet18", "width_factor": 0.125, "stem": "cifar"}, (3, 64, 64), 10
    )
    assert forced.conv1.kernel_size == (3, 3)
    r110 = build_model({"name": "resnet110", "width_factor": 1.0}, (3, 32, 32), 10)
    assert [len(getattr(r110, f"layer{i}")) for i in (1, 2, 3)] == [18, 18, 18]
    assert r110.fc.in_features == 64
    convs = [
        m
        for m in r110.modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)
    ]
    assert len(convs) + 1 == 110  # 109 3x3 convs + fc (1x1 shortcuts excluded)


# Rules of the ``model`` section: all live in the config layer (schema + gendyn.config rules);
# build_model validates through it.
CONFIG_ERRORS = [
    ({"name": "resnet19"}, "model.name", "resnet19"),
    ({"name": "mlp", "wdith": 3}, "model", "wdith"),
    ({"name": "alexnet", "bn": True}, "model.bn", "alexnet"),
    ({"name": "convnet", "bn": True}, "model.bn", "convnet"),
    ({}, "model", "'name' is a required property"),
    ({"name": "mlp", "depth": 0}, "model.depth", "0"),
    ({"name": "mlp", "depth": 2.0}, "model.depth", "not an integer"),
    ({"name": "mlp", "width": 2.5}, "model.width", "2.5"),
    ({"name": "mlp", "bn": "yes"}, "model.bn", "'yes'"),
    ({"name": "resnet18", "stem": "tiny"}, "model.stem", "tiny"),
    ({"name": "mlp", "dtype": "float16"}, "model.dtype", "float16"),
    ({"name": "mlp", "init_scale": -1}, "model.init_scale", "-1"),
    ({"name": "mlp", "init_scale": float("nan")}, "model.init_scale", "finite"),
    ({"name": "vgg19", "dropout": 1.5}, "model.dropout", "1.5"),
    ({"name": "vgg19", "dropout": 1.0}, "model.dropout", "1.0"),
    ({"name": "vgg19", "dropout": -0.1}, "model.dropout", "-0.1"),
    ({"name": "resnet18", "width_factor": 0}, "model.width_factor", "0"),
    ({"name": "resnet18", "width_factor": float("inf")}, "model.width_factor", "finite"),
    ({"name": "mlp", "softmax_head": 1}, "model.softmax_head", "1"),
    ({"name": "preact_resnet18", "stem": "imagenet"}, "model.stem", "preact_resnet18"),
]


@pytest.mark.parametrize(("cfg", "key", "value"), CONFIG_ERRORS)
def test_config_errors_are_raised_by_the_config_layer(cfg: dict[str, Any], key: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_section("model", cfg, "model")
    assert key in str(err.value) and value in str(err.value)
    run = {"data": {"name": "digits"}, "model": cfg, "training": {"epochs": 1}}
    with pytest.raises(ConfigError) as err:
        validate_run(run)
    assert key in str(err.value) and value in str(err.value)
    with pytest.raises(ConfigError) as err:
        build_model(cfg, (3, 32, 32), 10)
    assert key in str(err.value) and value in str(err.value)


def test_error_messages_list_allowed_values() -> None:
    with pytest.raises(ConfigError) as err:
        build_model({"name": "resnet19"}, (3, 32, 32), 10)
    assert "model.name" in str(err.value) and "resnet110" in str(err.value)
    with pytest.raises(ConfigError) as err:
        build_model({"name": "mlp", "foo": 1}, (3, 32, 32), 10)
    assert "'foo'" in str(err.value) and "width_factor" in str(err.value)
    with pytest.raises(ConfigError) as err:
        build_model({"name": "convnet", "bn": True}, (3, 32, 32), 10)
    assert "set model.bn: false" in str(err.value)


def test_names_and_keys_match_the_schema() -> None:
    props = schema()["$defs"]["model"]["properties"]
    assert list(MODEL_NAMES) == props["name"]["enum"]
    assert list(MODEL_KEYS) == list(props)


def test_bad_input_shapes() -> None:
    with pytest.raises(ValueError, match="vgg19"):
        build_model({"name": "vgg19", "width_factor": 0.0625}, (3, 16, 16), 10)
    with pytest.raises(ValueError, match="input_shape"):
        build_model({"name": "cnn"}, (8, 8), 10)
    with pytest.raises(ValueError, match="n_classes"):
        build_model({"name": "mlp"}, (8,), 0)


def test_defaults_come_from_the_schema() -> None:
    spec = validate_section("model", {"name": "mlp"}, "model")
    assert (spec["depth"], spec["width"], spec["bn"], spec["width_factor"]) == (2, 100, False, 1.0)
    rest = (spec["stem"], spec["softmax_head"], spec["init_scale"], spec["dtype"], spec["dropout"])
    assert rest == ("auto", False, 1.0, "float32", 0.5)
    assert validate_section("model", spec, "model") == spec  # a validated section is a fixed point
    assert validate_section("model", {"name": "resnet110"}, "model")["bn"] is False


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_hand_written_and_validated_sections_build_the_same_model(name: str) -> None:
    """One source of defaults: a run config and a hand-written section give identical weights."""
    cfg = {"name": name, "width_factor": 0.125, "width": 8}
    section = validate_run({"data": {"name": "digits"}, "model": cfg, "training": {"epochs": 1}})["model"]
    a = _build(cfg, (3, 32, 32), 10, seed=3)
    b = _build(section, (3, 32, 32), 10, seed=3)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_public_names_stay_importable() -> None:
    assert IMAGENET_MIN_HEIGHT == 64
    model = build_model({"name": "resnet18", "width_factor": 0.0625}, (3, 32, 32), 10)
    assert isinstance(model, ResNet) and isinstance(model.layer1[0], BasicBlock)
    assert isinstance(build_model({"name": "vgg19", "width_factor": 0.0625}, (3, 32, 32), 10), VGG)
    assert isinstance(build_model({"name": "alexnet", "width_factor": 0.0625}, (3, 32, 32), 10), AlexNet)


def test_dropout_key_reaches_classifier() -> None:
    model = build_model(
        {"name": "vgg19", "width_factor": 0.0625, "dropout": 0.2}, (3, 32, 32), 10
    )
    drops = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    assert drops == [0.2, 0.2]


def test_seeding_is_left_to_the_caller() -> None:
    cfg = {"name": "cnn", "width": 4, "bn": True}
    a = _build(cfg, (1, 8, 8), 3, seed=7)
    b = _build(cfg, (1, 8, 8), 3, seed=7)
    c = build_model(cfg, (1, 8, 8), 3)  # no reseed: the library must not seed itself
    for (k, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), k
    assert not all(
        torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters())
    )


# ----------------------------------------------------------------------------
# paper 001's CNN (convonly) and pre-activation ResNet-18 (preact_resnet18)
# ----------------------------------------------------------------------------
def _convonly_params(c: int, w: int, depth: int, k: int, bn: bool) -> int:
    """By hand: conv1 c*9*w + w, each further conv w*9*w + w, BN 2w per layer, fc w*k + k."""
    convs = (c * 9 * w + w) + (depth - 1) * (w * 9 * w + w)
    return convs + (2 * w * depth if bn else 0) + (w * k + k)


def _preact18_params(c: int, k: int, n_classes: int, bn: bool) -> int:
    """By hand: stem c*9*k; per stage s (planes p = k 2^s, input q) two blocks of two 3x3 convs,
    a 1x1 shortcut q*p in the first block of stages 2-4, BN 2 * (in + out) channels per block; no
    conv biases; linear 8k*n + n."""
    total = c * 9 * k
    q = k
    for s in range(4):
        p = k * 2**s
        total += (q * 9 * p + p * 9 * p) + (p * 9 * p + p * 9 * p)  # block 1 and block 2
        if q != p:
            total += q * p
        if bn:
            total += 2 * (q + p) + 2 * (p + p)
        q = p
    return total + 8 * k * n_classes + n_classes


@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize(("shape", "depth", "width"), [((3, 32, 32), 5, 32), ((3, 32, 32), 3, 32), ((1, 28, 28), 7, 16)])
def test_convonly_is_convolutions_gap_and_one_linear(shape: tuple[int, int, int], depth: int, width: int, bn: bool) -> None:
    model = build_model({"name": "convonly", "depth": depth, "width": width, "bn": bn}, shape, 10)
    assert count_parameters(model) == _convonly_params(shape[0], width, depth, 10, bn)
    if (shape, depth, width) == ((3, 32, 32), 5, 32):  # paper 001 Fig. 7: depth 5, width 32
        assert count_parameters(model) == (38_538 if bn else 38_218)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == depth
    assert all(m.kernel_size == (3, 3) and m.stride == (1, 1) and m.padding == (1, 1) for m in convs)
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in model.modules())
    assert [type(m) for m in model.modules() if isinstance(m, nn.Linear)] == [nn.Linear]
    names = [n for n, _ in model.named_children()]
    want: list[str] = []
    for i in range(1, depth + 1):  # BN after each conv, before its ReLU
        want += [f"conv{i}"] + ([f"bn{i}"] if bn else []) + [f"relu{i}"]
    assert names == want + ["gap", "flatten", "fc"]
    # every ReLU sees the full-resolution map; the head is the global average of the last one
    seen: list[tuple[int, ...]] = []
    hooks = [m.register_forward_pre_hook(lambda _m, inp: seen.append(tuple(inp[0].shape))) for _, m in relu_sites(model)]
    x = torch.randn(2, *shape)
    model.eval()
    with torch.no_grad():
        out = model(x)
        for h in hooks:
            h.remove()
        feats = model[: len(want)](x)
    assert seen == [(2, width, shape[1], shape[2])] * depth
    torch.testing.assert_close(out, model.fc(feats.mean(dim=(2, 3))))


def test_cnn_is_unchanged_by_the_new_models() -> None:
    """Existing ``cnn`` runs must not change: same layout and the same weights for a seed."""
    model = _build({"name": "cnn", "depth": 2, "width": 8}, (3, 32, 32), 10, seed=5)
    assert [n for n, _ in model.named_children()] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc"]
    assert count_parameters(model) == (3 * 9 * 8 + 8) + (8 * 9 * 8 + 8) + (8 * 8 * 8 * 10 + 10)
    torch.manual_seed(5)
    ref = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 10))  # fmt: skip
    for a, b in zip(model.parameters(), ref.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("width_factor", [0.25, 1.0])
def test_preact_resnet18_parameter_counts(width_factor: float, bn: bool) -> None:
    k = round(64 * width_factor)
    with torch.device("meta"):
        model = build_model({"name": "preact_resnet18", "width_factor": width_factor, "bn": bn}, (3, 32, 32), 10)
    assert count_parameters(model) == _preact18_params(3, k, 10, bn)
    # k = 16 (paper 001's runs): 699,066 without BN, 700,762 with; k = 64 with BN: 11,171,146,
    # the usual PreActResNet18 of kuangliu/pytorch-cifar
    assert count_parameters(model) == {(16, False): 699_066, (16, True): 700_762,
                                       (64, False): 11_164_362, (64, True): 11_171_146}[k, bn]  # fmt: skip
    assert not any(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("bn", [False, True])
def test_preact_resnet18_is_pre_activation(bn: bool) -> None:
    torch.manual_seed(0)
    model = build_model({"name": "preact_resnet18", "width_factor": 0.125, "bn": bn}, (3, 32, 32), 10)
    assert isinstance(model, PreActResNet)
    k = 8
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1) and model.conv1.out_channels == k
    blocks = [b for i in range(1, 5) for b in getattr(model, f"layer{i}")]
    assert len(blocks) == 8 and all(isinstance(b, PreActBlock) for b in blocks)
    assert [b.conv2.out_channels for b in blocks] == [k, k, 2 * k, 2 * k, 4 * k, 4 * k, 8 * k, 8 * k]
    assert [b.shortcut is not None for b in blocks] == [False, False, True, False, True, False, True, False]
    assert [b.conv1.stride for b in blocks] == [(1, 1), (1, 1), (2, 2), (1, 1), (2, 2), (1, 1), (2, 2), (1, 1)]
    norm = nn.BatchNorm2d if bn else nn.Identity
    assert all(isinstance(b.bn1, norm) and isinstance(b.bn2, norm) for b in blocks)
    if bn:
        assert blocks[0].bn1.num_features == k and blocks[2].bn1.num_features == k and blocks[2].bn2.num_features == 2 * k
    sites = [n for n, _ in relu_sites(model)]
    assert sites == [f"layer{i}.{j}.relu{r}" for i in range(1, 5) for j in range(2) for r in (1, 2)]
    if bn:  # non-trivial statistics, so BN placement matters
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    # functional re-computation from the module's weights: each ReLU acts on BN(block input) and
    # on BN(conv1(.)); the residual sum is not rectified; stem conv has no BN/ReLU after it
    seen: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda _m, inp, n=n: seen.__setitem__(n, inp[0])) for n, m in relu_sites(model)]
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        for h in hooks:
            h.remove()
        h = torch.nn.functional.conv2d(x, model.conv1.weight, padding=1)
        for i, b in enumerate(blocks):
            name = f"layer{i // 2 + 1}.{i % 2}"
            z1 = b.bn1(h)
            torch.testing.assert_close(seen[f"{name}.relu1"], z1)
            a = torch.relu(z1)
            sc = h if b.shortcut is None else torch.nn.functional.conv2d(a, b.shortcut[0].weight, stride=b.conv1.stride)
            z2 = b.bn2(torch.nn.functional.conv2d(a, b.conv1.weight, stride=b.conv1.stride, padding=1))
            torch.testing.assert_close(seen[f"{name}.relu2"], z2)
            h = torch.nn.functional.conv2d(torch.relu(z2), b.conv2.weight, padding=1) + sc
        assert h.shape == (3, 8 * k, 4, 4) and (h < 0).any()  # no ReLU after the last sum
        torch.testing.assert_close(out, torch.nn.functional.linear(h.mean(dim=(2, 3)), model.linear.weight, model.linear.bias))


# ----------------------------------------------------------------------------
# torchvision state-dict compatibility
# ----------------------------------------------------------------------------
torchvision = pytest.importorskip("torchvision")


def test_vgg19_loads_torchvision_state_dict_and_matches() -> None:
    torch.manual_seed(0)
    ref = torchvision.models.vgg19(weights=None).eval()
    # build ours on the meta device (skips a second 140M-parameter init), then
    # take the reference tensors with assign=True; strict=True checks the keys
    with torch.device("meta"):
        ours = build_model({"name": "vgg19"}, (3, 224, 224), 1000).eval()
    assert list(ours.state_dict().keys()) == list(ref.state_dict().keys())
    ours.load_state_dict(ref.state_dict(), strict=True, assign=True)
    assert not any(p.is_meta for p in ours.parameters())
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))


def test_vgg19_bn_state_dict_keys_match_torchvision() -> None:
    with torch.device("meta"):
        ref = torchvision.models.vgg19_bn(weights=None)
        ours = build_model({"name": "vgg19", "bn": True}, (3, 224, 224), 1000)
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert list(our_sd.keys()) == list(ref_sd.keys())
    assert all(our_sd[k].shape == ref_sd[k].shape for k in ref_sd)
    ours.load_state_dict(ref_sd, strict=True)


def test_resnet18_loads_torchvision_state_dict_and_matches() -> None:
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None)
    # give BN non-trivial running statistics
    ref.train()
    with torch.no_grad():
        ref(torch.randn(2, 3, 64, 64))
    ref.eval()
    ours = build_model({"name": "resnet18", "bn": True}, (3, 224, 224), 1000).eval()
    assert set(ours.state_dict().keys()) == set(ref.state_dict().keys())
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))


def test_alexnet_imagenet_keys_match_torchvision() -> None:
    with torch.device("meta"):
        ref = torchvision.models.alexnet(weights=None)
        ours = build_model({"name": "alexnet"}, (3, 224, 224), 1000)
    assert list(ours.state_dict().keys()) == list(ref.state_dict().keys())
    ours.load_state_dict(ref.state_dict(), strict=True)
