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
