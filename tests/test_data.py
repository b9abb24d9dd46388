"""Tests for gendyn.data (all offline; on-disk datasets are synthesised in tmp_path)."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gendyn.config import ConfigError, schema, validate_run, validate_section
from gendyn.data import (
    CHANNEL_STATS,
    DATASET_NAMES,
    NOISE_BASE_NAMES,
    SPLIT_MODES,
    TEST_SOURCES,
    Data,
    FolderSplit,
    Split,
    TensorSplit,
    check_data_available,
    gaussian_noise_images,
    load_data,
)

# --------------------------------------------------------------------------- helpers / fixtures


def _rng_states() -> tuple[torch.Tensor, Any]:
    return torch.get_rng_state().clone(), np.random.get_state()


def _assert_rng_unchanged(before: tuple[torch.Tensor, Any]) -> None:
    t, n = before
    assert torch.equal(torch.get_rng_state(), t), "global torch RNG state changed"
    n2 = np.random.get_state()
    assert n[0] == n2[0] and np.array_equal(n[1], n2[1]) and n[2:] == n2[2:], "global numpy RNG state changed"


def _write_cifar(root: Path, kind: str, n_train_batches: int = 5, per_batch: int = 20, n_test: int = 20) -> dict:
    """Write a tiny CIFAR archive in the real python-pickle layout; return the raw arrays."""
    rng = np.random.default_rng(123)
    if kind == "cifar10":
        folder = root / "cifar-10-batches-py"
        files = [f"data_batch_{i}" for i in range(1, n_train_batches + 1)]
        test_file, label_key, n_classes = "test_batch", b"labels", 10
    else:
        folder = root / "cifar-100-python"
        files = ["train"]
        per_batch *= n_train_batches
        test_file, label_key, n_classes = "test", b"fine_labels", 100
    folder.mkdir(parents=True)
    xs, ys = [], []
    for f in files:
        x = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, n_classes, size=per_batch).tolist()
        entry = {b"batch_label": f.encode(), b"data": x, label_key: y, b"filenames": [b"x.png"] * per_batch}
        if kind == "cifar100":
            entry[b"coarse_labels"] = [0] * per_batch
        with open(folder / f, "wb") as fh:
            pickle.dump(entry, fh)
        xs.append(x)
        ys.extend(y)
    xt = rng.integers(0, 256, size=(n_test, 3072), dtype=np.uint8)
    yt = rng.integers(0, n_classes, size=n_test).tolist()
    entry = {b"data": xt, label_key: yt}
    with open(folder / test_file, "wb") as fh:
        pickle.dump(entry, fh)
    if kind == "cifar10":
        meta = {b"label_names": [f"c10_{i}".encode() for i in range(10)], b"num_cases_per_batch": per_batch}
        meta_name = "batches.meta"
    else:
        meta = {b"fine_label_names": [f"c100_{i}".encode() for i in range(100)], b"coarse_label_names": [b"a"] * 20}
        meta_name = "meta"
    with open(folder / meta_name, "wb") as fh:
        pickle.dump(meta, fh)
    return {"x": np.concatenate(xs), "y": np.asarray(ys), "xt": xt, "yt": np.asarray(yt)}


@pytest.fixture(scope="module")
def cifar10_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("cifar10")
    return root, _write_cifar(root, "cifar10")


@pytest.fixture(scope="module")
def cifar100_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("cifar100")
    return root, _write_cifar(root, "cifar100")


WNIDS = ["n01440764", "n01443537", "n01484850"]


@pytest.fixture(scope="module")
def imagenet_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(7)
    for split, n in (("train", 4), ("val", 2)):
        for w in WNIDS:
            d = root / split / w
            d.mkdir(parents=True)
            for i in range(n):
                arr = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{w}_{i}.JPEG", format="JPEG")
    return root


@pytest.fixture(scope="module")
def mnist5k() -> Data:
    return load_data({"name": "mnist5k"})


# --------------------------------------------------------------------------- mnist5k / digits


def test_mnist5k_shapes_split_and_determinism(mnist5k: Data) -> None:
    d = mnist5k
    assert d.input_shape == (1, 28, 28) and d.n_classes == 10 and d.classes == [str(i) for i in range(10)]
    assert len(d.train) == 4000 and len(d.test) == 1000
    x, y = d.test.get(np.arange(len(d.test)))
    assert x.shape == (1000, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and float(x.max()) == 1.0
    assert torch.bincount(y, minlength=10).tolist() == [100] * 10  # stratified
    assert torch.bincount(d.train.labels, minlength=10).tolist() == [400] * 10
    assert d.train.indices.dtype == np.int64 and d.test.indices.dtype == np.int64
    assert np.intersect1d(d.train.indices, d.test.indices).size == 0
    assert np.union1d(d.train.indices, d.test.indices).size == 5000
    assert isinstance(d.train, TensorSplit)

    same = load_data({"name": "mnist5k", "seed": 0})
    assert np.array_equal(same.test.indices, d.test.indices)
    assert torch.equal(same.test.get([0, 5, 7])[0], d.test.get([0, 5, 7])[0])
    other = load_data({"name": "mnist5k", "seed": 1})
    assert not np.array_equal(other.test.indices, d.test.indices)
    assert torch.bincount(other.test.labels, minlength=10).tolist() == [100] * 10


def test_mnist5k_labels_match_source_images(mnist5k: Data) -> None:
    # the same source index in another split/seed gives the same image and label
    other = load_data({"name": "mnist5k", "seed": 3, "n_test": 500})
    common = np.intersect1d(mnist5k.train.indices, other.train.indices)[:50]
    pa = np.searchsorted(mnist5k.train.indices, common)
    pb = np.searchsorted(other.train.indices, common)
    xa, ya = mnist5k.train.get(pa)
    xb, yb = other.train.get(pb)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert len(other.test) == 500


def test_digits() -> None:
    d = load_data({"name": "digits", "n_test": 300})
    assert d.input_shape == (1, 8, 8) and len(d.train) == 1797 - 300 and len(d.test) == 300
    x, y = d.train.get(np.arange(len(d.train)))
    assert x.shape == (1497, 1, 8, 8) and float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert set(y.tolist()) == set(range(10))


def test_classes_and_subsets(mnist5k: Data) -> None:
    d = load_data({"name": "mnist5k", "classes": [7, 3], "train_subset": 500, "test_subset": 50})
    assert d.n_classes == 2 and d.classes == ["7", "3"]
    assert len(d.train) == 500 and len(d.test) == 50
    assert set(d.train.labels.tolist()) == {0, 1}
    # relabelled in the given order: label 0 <-> original 7; indices are a subset of the unfiltered split
    assert np.isin(d.train.indices, mnist5k.train.indices).all()
    assert np.isin(d.test.indices, mnist5k.test.indices).all()
    pos = np.searchsorted(mnist5k.train.indices, d.train.indices)
    orig = mnist5k.train.labels[torch.from_numpy(pos)]
    assert torch.equal(torch.where(d.train.labels == 0, 7, 3), orig)
    again = load_data({"name": "mnist5k", "classes": [7, 3], "train_subset": 500, "test_subset": 50})
    assert np.array_equal(again.train.indices, d.train.indices)
    with pytest.raises(ValueError, match="data.train_subset"):
        load_data({"name": "mnist5k", "classes": [7, 3], "train_subset": 5000})
    with pytest.raises(ValueError, match="data.classes"):
        load_data({"name": "digits", "classes": [3, 10]})


# --------------------------------------------------------------------------- label corruption


def test_label_noise_exact(mnist5k: Data) -> None:
    d = load_data({"name": "mnist5k", "label_noise": 0.2})
    n = len(d.train)
    changed = d.train.labels != mnist5k.train.labels
    assert int(changed.sum()) == round(0.2 * n)  # every chosen label moved to a *different* class
    assert np.array_equal(changed.numpy(), d.train.corrupted)
    assert torch.equal(d.train.clean_labels, mnist5k.train.labels)
    assert torch.equal(d.test.labels, mnist5k.test.labels)
    assert int(d.train.labels.min()) >= 0 and int(d.train.labels.max()) <= 9
    # the noisy labels are spread over the other classes
    assert len(set(d.train.labels[changed].tolist())) == 10
    again = load_data({"name": "mnist5k", "label_noise": 0.2})
    assert torch.equal(again.train.labels, d.train.labels)
    other = load_data({"name": "mnist5k", "label_noise": 0.2, "seed": 5})
    assert not np.array_equal(other.train.corrupted, d.train.corrupted) or not np.array_equal(
        other.train.indices, d.train.indices
    )


def test_random_labels(mnist5k: Data) -> None:
    d = load_data({"name": "mnist5k", "random_labels": True})
    agree = float((d.train.labels == mnist5k.train.labels).float().mean())
    assert 0.05 < agree < 0.16  # chance level
    assert torch.equal(d.test.labels, mnist5k.test.labels)
    assert torch.equal(d.train.get([0, 1, 2])[0], mnist5k.train.get([0, 1, 2])[0])
    assert d.train.corrupted.all() and not d.test.corrupted.any()


# --------------------------------------------------------------------------- CIFAR


def test_cifar10_loader(cifar10_root: tuple[Path, dict]) -> None:
    root, raw = cifar10_root
    before = _rng_states()
    d = load_data({"name": "cifar10", "root": str(root)})
    assert d.input_shape == (3, 32, 32) and d.n_classes == 10
    assert d.classes == [f"c10_{i}" for i in range(10)]
    assert len(d.train) == 100 and len(d.test) == 20
    assert np.array_equal(d.train.labels.numpy(), raw["y"]) and np.array_equal(d.test.labels.numpy(), raw["yt"])
    assert np.array_equal(d.train.indices, np.arange(100))
    x, y = d.train.get([0, 57])
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    mean, std = CHANNEL_STATS["cifar10"]
    img = raw["x"][57].reshape(3, 32, 32)
    for ch, (r, c) in ((0, (0, 0)), (1, (5, 17)), (2, (31, 9))):
        expected = (img[ch, r, c] / 255.0 - mean[ch]) / std[ch]
        assert abs(float(x[1, ch, r, c]) - expected) < 1e-5
    assert int(y[1]) == int(raw["y"][57])
    # normalize false gives raw/255
    d2 = load_data({"name": "cifar10", "normalize": False}, root=root)
    xt, _ = d2.test.get([3])
    assert torch.allclose(xt[0], torch.from_numpy(raw["xt"][3].reshape(3, 32, 32)).float() / 255.0)
    _assert_rng_unchanged(before)


def test_cifar100_loader(cifar100_root: tuple[Path, dict]) -> None:
    root, raw = cifar100_root
    d = load_data({"name": "cifar100", "classes": [int(raw["y"][0]), int(raw["y"][1])]}, root=root)
    assert d.n_classes == 2 and d.classes == [f"c100_{raw['y'][0]}", f"c100_{raw['y'][1]}"]
    full = load_data({"name": "cifar100"}, root=root)
    assert full.n_classes == 100 and len(full.train) == 100 and len(full.test) == 20
    assert np.array_equal(full.train.labels.numpy(), raw["y"])  # fine labels
    x, _ = full.test.get([4])
    mean, std = CHANNEL_STATS["cifar100"]
    expected = (raw["xt"][4].reshape(3, 32, 32)[2, 10, 11] / 255.0 - mean[2]) / std[2]
    assert abs(float(x[0, 2, 10, 11]) - expected) < 1e-5
    assert int(d.train.labels[0]) == 0 and d.train.indices[0] == 0


def test_cifar_augmentation(cifar10_root: tuple[Path, dict]) -> None:
    root, raw = cifar10_root
    d = load_data({"name": "cifar10", "root": str(root), "augment": True, "normalize": False})
    assert d.augment is True
    order = np.random.default_rng(0).permutation(len(d.train))
    before = _rng_states()
    e0 = list(d.train.batches(order, 32, augment=True, seed=1, epoch=0))
    e0b = list(d.train.batches(order, 32, augment=True, seed=1, epoch=0))
    e1 = list(d.train.batches(order, 32, augment=True, seed=1, epoch=1))
    _assert_rng_unchanged(before)
    assert [x.shape[0] for x, _ in e0] == [32, 32, 32, 4]
    for (xa, ya), (xb, yb) in zip(e0, e0b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not all(torch.equal(xa, xb) for (xa, _), (xb, _) in zip(e0, e1))
    plain = list(d.train.batches(order, 32, augment=False, seed=1, epoch=0))
    assert not all(torch.equal(xa, xb) for (xa, _), (xb, _) in zip(e0, plain))
    # each augmented image is a (possibly flipped) 32x32 window of the zero-padded original
    x0 = e0[0][0][0]
    orig = torch.nn.functional.pad(torch.from_numpy(raw["x"][order[0]].reshape(3, 32, 32)).float() / 255.0, (4,) * 4)
    found = False
    for img in (x0, x0.flip(-1)):
        for r in range(9):
            for c in range(9):
                found |= torch.equal(orig[:, r : r + 32, c : c + 32], img)
    assert found
    # eval view is never augmented
    assert torch.equal(d.train.get([order[0]])[0][0], orig[:, 4:36, 4:36])
    # resumed mid-epoch: identical augmented batches
    tail = list(d.train.batches(order, 32, augment=True, seed=1, epoch=0, start_batch=2))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(tail, e0[2:])) and len(tail) == 2


# --------------------------------------------------------------------------- batches


def test_batches_cover_order_and_resume(mnist5k: Data) -> None:
    split = mnist5k.test
    order = np.random.default_rng(3).permutation(len(split))
    before = _rng_states()
    full = list(split.batches(order, 128, augment=True, seed=0, epoch=0))
    _assert_rng_unchanged(before)
    assert len(full) == split.n_batches(len(order), 128) == 8
    ys = torch.cat([y for _, y in full])
    assert torch.equal(ys, split.labels[torch.from_numpy(order)])
    xs = torch.cat([x for x, _ in full])
    assert torch.equal(xs, split.get(order)[0])
    tail = list(split.batches(order, 128, augment=False, seed=0, epoch=0, start_batch=5))
    assert len(tail) == 3
    for (xa, ya), (xb, yb) in zip(tail, full[5:]):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    dropped = list(split.batches(order, 128, augment=False, seed=0, epoch=0, drop_last=True))
    assert len(dropped) == 7 and all(x.shape[0] == 128 for x, _ in dropped)
    assert list(split.batches(order, 128, augment=False, seed=0, epoch=0, start_batch=8)) == []
    with pytest.raises(ValueError, match="start_batch"):
        split.batches(order, 128, augment=False, seed=0, epoch=0, start_batch=9)
    with pytest.raises(ValueError, match="order"):
        split.batches(np.array([0, len(split)]), 2, augment=False, seed=0, epoch=0)


# --------------------------------------------------------------------------- ImageNet


def test_imagenet_folder(imagenet_root: Path) -> None:
    before = _rng_states()
    d = load_data({"name": "imagenet", "root": str(imagenet_root), "image_size": 32})
    assert isinstance(d.train, FolderSplit)
    assert d.input_shape == (3, 32, 32) and d.n_classes == 3 and d.classes == WNIDS
    assert len(d.train) == 12 and len(d.test) == 6
    assert d.train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    x, y = d.test.get([0, 5])
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32 and y.tolist() == [0, 2]
    assert torch.equal(x, d.test.get([0, 5])[0])
    assert float(x.min()) < 0  # ImageNet normalisation applied by default

    sub = load_data(
        {"name": "imagenet", "root": str(imagenet_root), "image_size": 32, "classes": [WNIDS[2], WNIDS[0]]}
    )
    assert sub.n_classes == 2 and sub.classes == [WNIDS[2], WNIDS[0]]
    assert len(sub.train) == 8 and len(sub.test) == 4
    assert sub.train.labels.tolist() == [1] * 4 + [0] * 4  # indices in source order: wnid0 first
    assert sub.train.indices.tolist() == [0, 1, 2, 3, 8, 9, 10, 11]

    order = np.random.default_rng(0).permutation(len(d.train))
    a = list(d.train.batches(order, 5, augment=True, seed=2, epoch=0))
    b = list(d.train.batches(order, 5, augment=True, seed=2, epoch=0))
    c = list(d.train.batches(order, 5, augment=True, seed=2, epoch=1))
    r = list(d.train.batches(order, 5, augment=True, seed=2, epoch=0, start_batch=1))
    assert [x.shape for x, _ in a] == [(5, 3, 32, 32), (5, 3, 32, 32), (2, 3, 32, 32)]
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b))
    assert not all(torch.equal(p[0], q[0]) for p, q in zip(a, c))
    assert len(r) == 2 and all(torch.equal(p[0], q[0]) for p, q in zip(r, a[1:]))
    assert torch.equal(torch.cat([y for _, y in a]), d.train.labels[torch.from_numpy(order)])
    plain = list(d.train.batches(order, 5, augment=False, seed=2, epoch=0))
    assert torch.equal(plain[0][0], d.train.get(order[:5])[0])
    workers = list(d.train.batches(order, 5, augment=True, seed=2, epoch=0, num_workers=1))
    assert all(torch.equal(p[0], q[0]) for p, q in zip(workers, a))  # same augmentation in a worker
    _assert_rng_unchanged(before)


def test_imagenet_missing_class(imagenet_root: Path) -> None:
    with pytest.raises(FileNotFoundError, match="n99999999"):
        check_data_available({"name": "imagenet", "classes": ["n99999999"]}, root=imagenet_root)


# --------------------------------------------------------------------------- MNIST (torchvision)


def _write_idx(path: Path, arr: np.ndarray) -> None:
    code = 0x08  # unsigned byte
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def test_mnist_torchvision(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, size=30).astype(np.uint8)
    _write_idx(raw / "train-images-idx3-ubyte", x)
    _write_idx(raw / "train-labels-idx1-ubyte", y)
    _write_idx(raw / "t10k-images-idx3-ubyte", x[:10])
    _write_idx(raw / "t10k-labels-idx1-ubyte", y[:10])
    check_data_available({"name": "mnist"}, root=tmp_path)
    d = load_data({"name": "mnist", "root": str(tmp_path)})
    assert d.input_shape == (1, 28, 28) and len(d.train) == 30 and len(d.test) == 10
    xg, yg = d.train.get([4])
    assert torch.equal(xg[0, 0], torch.from_numpy(x[4]).float() / 255.0) and int(yg[0]) == int(y[4])


# --------------------------------------------------------------------------- missing data


@pytest.mark.parametrize(
    ("name", "missing"),
    [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python"), ("mnist", "MNIST"), ("imagenet", "train")],
)
def test_missing_root(tmp_path: Path, name: str, missing: str) -> None:
    cfg = {"name": name, "root": str(tmp_path)}
    for fn in (check_data_available, load_data):
        with pytest.raises(FileNotFoundError) as ei:
            fn(cfg)
        msg = str(ei.value)
        assert str(tmp_path / missing) in msg and "data.root" in msg
        assert "download" in msg.lower() or "obtain" in msg.lower()
    # synthetic datasets check their base
    if name in ("cifar10", "mnist"):
        with pytest.raises(FileNotFoundError):
            check_data_available({"name": "gaussian_noise", "base": name}, root=tmp_path)


def test_root_required() -> None:
    with pytest.raises(ValueError, match="data.root"):
        check_data_available({"name": "cifar10"})
    check_data_available({"name": "mnist5k"})  # shipped: nothing to check
    check_data_available({"name": "mixture", "base": "digits"})


# --------------------------------------------------------------------------- noise / mixture


@pytest.fixture(scope="module")
def noise() -> Data:
    return load_data({"name": "gaussian_noise", "base": "mnist5k", "seed": 4})


def test_gaussian_noise_statistics(noise: Data, mnist5k: Data) -> None:
    x = noise.train.pixels
    assert x.dtype == torch.float32 and x.numel() >= 1_000_000
    assert noise.input_shape == (1, 28, 28) and len(noise.train) == 4000
    assert abs(float(x.mean()) - 0.5) < 0.002
    assert abs(float(x.std()) - 1 / 3) < 0.002
    outside = float(((x < 0) | (x > 1)).float().mean())
    assert abs(outside - 0.1336) < 0.002
    # labels are the base dataset's labels of the images replaced
    base = load_data({"name": "mnist5k", "seed": 4})
    assert torch.equal(noise.train.labels, base.train.labels)
    assert np.array_equal(noise.train.indices, base.train.indices)
    # get() returns the noise unnormalised (normalize auto = false)
    assert torch.equal(noise.train.get([0, 1])[0], x[:2])


def test_gaussian_noise_determinism(noise: Data) -> None:
    before = _rng_states()
    again = load_data({"name": "gaussian_noise", "base": "mnist5k", "seed": 4})
    _assert_rng_unchanged(before)
    assert torch.equal(again.train.pixels, noise.train.pixels)
    assert torch.equal(again.test.pixels, noise.test.pixels)
    assert not torch.equal(noise.train.pixels[:1000], noise.test.pixels)
    other = load_data({"name": "gaussian_noise", "base": "mnist5k", "seed": 5})
    assert not torch.equal(other.train.pixels[:10], noise.train.pixels[:10])


def test_mixture(noise: Data) -> None:
    real = load_data({"name": "mnist5k", "seed": 4})
    idx = np.arange(len(real.train))
    xr = real.train.get(idx)[0]
    m1 = load_data({"name": "mixture", "base": "mnist5k", "seed": 4, "mix_fraction": 1.0})
    assert torch.equal(m1.train.get(idx)[0], xr)  # bitwise
    assert torch.equal(m1.test.get(np.arange(len(m1.test)))[0], real.test.get(np.arange(len(real.test)))[0])
    m0 = load_data({"name": "mixture", "base": "mnist5k", "seed": 4, "mix_fraction": 0.0})
    assert torch.equal(m0.train.get(idx)[0], noise.train.get(idx)[0])
    assert torch.equal(m0.test.pixels, noise.test.pixels)
    m3 = load_data({"name": "mixture", "base": "mnist5k", "seed": 4, "mix_fraction": 0.3})
    expected = 0.3 * xr + 0.7 * noise.train.pixels
    assert torch.allclose(m3.train.get(idx)[0], expected, atol=1e-6, rtol=0)
    assert torch.equal(m3.train.labels, real.train.labels)


def test_noise_on_cifar_base(cifar10_root: tuple[Path, dict]) -> None:
    root, _ = cifar10_root
    d = load_data({"name": "gaussian_noise", "base": "cifar10", "augment": True}, root=root)
    assert d.input_shape == (3, 32, 32) and len(d.train) == 100
    # augmentation is ignored for noise; normalize auto is off
    order = np.arange(len(d.train))
    (xb, _), *_ = d.train.batches(order, 100, augment=True, seed=0, epoch=0)
    assert torch.equal(xb, d.train.pixels)


# --------------------------------------------------------------------------- config validation

# Rules of the ``data`` section: all live in the config layer (schema + gendyn.config rules).
# Each rejected section must be rejected by validate_section, by validate_run (whose message
# names the same key) and by load_data / check_data_available, which validate through it.
CONFIG_ERRORS = [
    ({"name": "svhn"}, "data.name", "svhn"),
    ({}, "data", "'name' is a required property"),
    ({"name": "mnist5k", "batch": 3}, "batch", "allowed keys"),
    ({"name": "mnist5k", "label_noise": 1.5}, "data.label_noise", "1.5"),
    ({"name": "mnist5k", "label_noise": -0.1}, "data.label_noise", "-0.1"),
    ({"name": "mnist5k", "label_noise": "0.2"}, "data.label_noise", "0.2"),
    ({"name": "mnist5k", "label_noise": float("nan")}, "data.label_noise", "finite"),
    ({"name": "mnist5k", "normalize": "yes"}, "data.normalize", "yes"),
    ({"name": "mnist5k", "seed": -1}, "data.seed", "-1"),
    ({"name": "mnist5k", "seed": 1.0}, "data.seed", "not an integer"),
    ({"name": "mnist5k", "n_test": 0}, "data.n_test", "0"),
    ({"name": "mnist5k", "root": 3}, "data.root", "3"),
    ({"name": "mnist5k", "train_subset": 0}, "data.train_subset", "0"),
    ({"name": "mnist5k", "first_n": 0}, "data.first_n", "0"),
    ({"name": "mnist5k", "image_size": 4}, "data.image_size", "4"),
    ({"name": "mnist5k", "classes": [1, 1]}, "data.classes", "duplicates"),
    ({"name": "mnist5k", "classes": []}, "data.classes", "[]"),
    ({"name": "mnist5k", "classes": "3"}, "data.classes", "'3'"),
    ({"name": "mnist5k", "classes": ["n01440764"]}, "data.classes", "integer labels"),
    ({"name": "mnist5k", "classes": [True]}, "data.classes", "True"),
    ({"name": "gaussian_noise", "classes": [1.0]}, "data.classes", "'mnist5k'"),
    ({"name": "imagenet", "root": "/x", "classes": [1]}, "data.classes", "wnids"),
    ({"name": "mixture", "base": "imagenet"}, "data.base", "imagenet"),
    ({"name": "mixture", "base": "svhn"}, "data.base", "svhn"),
    ({"name": "mixture", "mix_fraction": 2}, "data.mix_fraction", "2"),
    ({"name": "mnist5k", "random_labels": "no"}, "data.random_labels", "no"),
    ({"name": "mnist5k", "augment": 1}, "data.augment", "1"),
    ({"name": "mnist5k", "split_mode": "random"}, "data.split_mode", "random"),
    ({"name": "mnist5k", "test_source": "val"}, "data.test_source", "val"),
    ({"name": "mnist5k", "random_labels": True, "label_noise": 0.1}, "data.label_noise", "0.1"),
    ({"name": "mnist5k", "first_n": 10, "train_subset": 5}, "data.first_n", "train_subset"),
    ({"name": "mnist5k", "first_n": 10, "test_subset": 5}, "data.first_n", "test_subset"),
]


@pytest.mark.parametrize(("cfg", "key", "value"), CONFIG_ERRORS)
def test_config_errors_are_raised_by_the_config_layer(cfg: dict, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as ei:
        validate_section("data", cfg, "data")
    assert key in str(ei.value) and value in str(ei.value)
    run = {"data": cfg, "model": {"name": "mlp"}, "training": {"epochs": 1}}
    with pytest.raises(ConfigError) as ei:
        validate_run(run, source="run.yaml")
    assert key in str(ei.value) and value in str(ei.value) and str(ei.value).startswith("run.yaml: ")
    for fn in (load_data, check_data_available):
        with pytest.raises(ConfigError) as ei:
            fn(cfg)
        assert key in str(ei.value) and value in str(ei.value)


@pytest.mark.parametrize(
    ("cfg", "key", "value"),
    [
        ({"name": "mnist5k", "n_test": 5000}, "data.n_test", "5000"),
        ({"name": "digits", "n_test": 1797, "split_mode": "permutation"}, "data.n_test", "1797"),
        ({"name": "digits", "classes": [3, 10]}, "data.classes", "10"),
        ({"name": "digits", "classes": [-1]}, "data.classes", "-1"),
        ({"name": "digits", "first_n": 1000, "test_source": "train_split"}, "data.first_n", "2000"),
        ({"name": "mnist5k", "classes": [7, 3], "train_subset": 5000}, "data.train_subset", "5000"),
    ],
)
def test_limits_of_the_dataset_are_checked_when_it_is_read(cfg: dict, key: str, value: str) -> None:
    """Valid sections the data cannot satisfy: the config layer accepts them, load_data names the key."""
    validate_section("data", cfg, "data")
    with pytest.raises(ValueError) as ei:
        load_data(cfg)
    assert not isinstance(ei.value, ConfigError)
    assert key in str(ei.value) and value in str(ei.value)


def test_validated_sections_are_a_fixed_point_and_load_identically() -> None:
    raw = {"name": "digits", "n_test": 300, "classes": [9, 0, 4], "label_noise": 0.1}
    section = validate_run({"data": raw, "model": {"name": "mlp"}, "training": {"epochs": 1}})["data"]
    assert validate_section("data", section, "data") == section
    assert set(section) == set(schema()["$defs"]["data"]["properties"])
    a, b = load_data(raw), load_data(section)
    assert a.config == b.config
    for split in ("train", "test"):
        sa, sb = getattr(a, split), getattr(b, split)
        assert torch.equal(sa.pixels, sb.pixels) and torch.equal(sa.labels, sb.labels)
        assert np.array_equal(sa.indices, sb.indices) and np.array_equal(sa.corrupted, sb.corrupted)


def test_data_config_holds_the_resolved_section(tmp_path: Path) -> None:
    # normalize: auto is resolved per dataset, root to the directory used
    r = load_data({"name": "mixture"}).config
    assert set(r) == set(schema()["$defs"]["data"]["properties"])
    assert r["normalize"] is False and r["root"] is None and r["base"] == "mnist5k" and r["n_test"] == 1000
    assert load_data({"name": "digits", "normalize": True}).config["normalize"] is True
    _write_cifar(tmp_path, "cifar10", n_train_batches=5, per_batch=2, n_test=4)
    c = load_data({"name": "cifar10"}, root=tmp_path).config
    assert c["normalize"] is True and c["root"] == str(tmp_path)
    assert load_data({"name": "cifar10", "root": str(tmp_path)}, root="/elsewhere").config["root"] == str(tmp_path)


def test_names_match_the_schema() -> None:
    props = schema()["$defs"]["data"]["properties"]
    assert set(DATASET_NAMES) == {
        "mnist5k", "digits", "mnist", "cifar10", "cifar100", "imagenet", "gaussian_noise", "mixture"
    }  # fmt: skip
    assert list(DATASET_NAMES) == props["name"]["enum"]
    assert list(NOISE_BASE_NAMES) == props["base"]["enum"]
    assert list(SPLIT_MODES) == props["split_mode"]["enum"]
    assert list(TEST_SOURCES) == props["test_source"]["enum"]
    assert set(CHANNEL_STATS) == set(DATASET_NAMES) - {"gaussian_noise", "mixture"}


def test_public_names_stay_importable() -> None:
    assert issubclass(TensorSplit, Split) and issubclass(FolderSplit, Split)
    x = gaussian_noise_images((2, 1, 3, 3), seed=0, source="mnist5k", split="train")
    assert x.shape == (2, 1, 3, 3) and x.dtype == torch.float32
