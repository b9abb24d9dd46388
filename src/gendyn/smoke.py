"""Smoke runs: every experiment of a config at toy size, through the real rules, models and figures.

A *smoke run* executes a workflow configuration end to end -- training, every analysis, every
figure -- before anyone spends GPU hours on it. Only sizes shrink; the code path stays the real
one:

* the same Snakemake rules and ``gendyn`` commands (``smoke: true`` only rewrites the config,
  in ``workflow/rules/common.smk``, before any rule reads it);
* the same models with the real input shapes (32 x 32 for CIFAR, ``data.image_size`` for
  ImageNet) and the real widths and depths; only the output layer follows the stand-in data's
  class count where the config does not fix it;
* the same data *formats*: tiny stand-in files in the real layouts (CIFAR-10/100 python-pickle
  batches, MNIST idx files, an ImageFolder tree for ImageNet, pretrained weights as a state dict
  in the torchvision layout with random values), written by :func:`write_standins`;
* the same analyses and figure functions, with smaller point counts.

What shrinks (:func:`smoke_config`, a pure function of the validated config):

* training: ``epochs`` -> at most :data:`EPOCHS`, ``steps`` -> at most :data:`STEPS`; LR
  milestones, record schedules (``every``, ``n``, ``freq``, ``steps``) and the analyses'
  stage epochs are scaled to the shorter run; ``num_workers`` -> at most 2;
* data: ``data.root`` -> the stand-in folder; ``train_subset``/``test_subset``/``first_n``
  -> small sizes (:data:`SIZE_LADDER`, in the order of the original values);
* recording: tracked images -> at most :data:`N_TRACKED` (train) / :data:`N_TRACKED_TEST` (test)
  and at most the stand-in split (:func:`standin_table`),
  ``checkpoint_every`` > 1 -> 2, ``metrics_subset`` -> at most 8;
* sweeps: seeds (``training.seed``, ``data.seed``) keep their first value; other numeric sweeps
  (depths, widths, sizes, rates) keep their first and last value; categorical sweeps (data
  sources, objectives, booleans) keep every value, so every model and objective of the grid runs;
* analyses: point, image, direction, record and iteration counts (``n_train``, ``n_per_class``,
  ``n_directions``, ``n_records``, ``robust.steps``, ``n_candidates``, ...); baselines are
  clipped to the tracked images;
* neurashed studies: the first seed, a few dozen simulation steps;
* resources: one thread per job and no GPU request (smoke runs are for laptops and CI);
  ``figures.dpi`` -> at most 50; ``results_dir`` -> ``<results_dir>/smoke``.

Run one from the shell::

    snakemake --cores 2 --configfile config/experiments/paths_fig7.yaml --config smoke=true

(stand-ins are written to ``<results_dir>/smoke/data`` on first use, or ``gendyn smoke-data DIR``
and ``--config smoke=true smoke_data=DIR``).
"""

from __future__ import annotations

import copy
import logging
import math
import pickle
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "EPOCHS",
    "STEPS",
    "N_TRACKED",
    "N_TRACKED_TEST",
    "SIZE_LADDER",
    "STANDIN_SIZES",
    "IMAGENET_WNIDS",
    "standin_table",
    "smoke_config",
    "smoke_workflow_config",
    "standin_weights_path",
    "write_standins",
    "write_cifar",
    "write_mnist",
    "write_imagefolder",
    "write_weights",
]

logger = logging.getLogger(__name__)

#: Training length of a smoke run: epochs (epoch-based runs) and steps (step-based runs). Two
#: epochs leave room for an LR decay (paper 000's early and mid stages) before the end.
EPOCHS = 2
STEPS = 6
#: Tracked images (train, test) of a smoke run, at most (fewer where the stand-in split is smaller).
N_TRACKED = 8
N_TRACKED_TEST = 4
#: Sizes given to ``train_subset`` / ``first_n`` values (``test_subset``: halved), in the order of
#: the original values; every stand-in training split holds at least 2 x 8 images.
SIZE_LADDER = (4, 6, 8)
#: Stand-in files: (train images per class, test images per class) of the balanced sources.
STANDIN_SIZES: dict[str, tuple[int, int]] = {"cifar10": (2, 1), "mnist": (2, 1), "imagenet": (2, 1)}
#: CIFAR-100 stand-in: images in total (labels cycle through the 100 classes).
CIFAR100_SIZES = (20, 10)
#: ImageNet stand-in class folders: the three of paper 002's Fig. 5 and one more.
IMAGENET_WNIDS = ("n01440764", "n02128385", "n02129604", "n02132136")


def standin_table() -> dict[str, Any]:
    """The stand-in sources' sizes as :func:`gendyn.data.sizes.documented_sizes` reads them."""
    from gendyn.data.sizes import DOCUMENTED, Documented

    c10, mn, im = STANDIN_SIZES["cifar10"], STANDIN_SIZES["mnist"], STANDIN_SIZES["imagenet"]
    k = len(IMAGENET_WNIDS)
    return {
        "cifar10": Documented(10 * c10[0], 10 * c10[1], 10, DOCUMENTED["cifar10"].shape),
        "cifar100": Documented(*CIFAR100_SIZES, 100, DOCUMENTED["cifar100"].shape),
        "mnist": Documented(10 * mn[0], 10 * mn[1], 10, DOCUMENTED["mnist"].shape),
        "imagenet": Documented(k * im[0], k * im[1], k, None),
    }


_SEED_KEYS = ("training.seed", "data.seed")
_SIZE_KEYS = ("data.train_subset", "data.first_n", "data.test_subset")
_ON_DISK = ("mnist", "cifar10", "cifar100", "imagenet")


# --------------------------------------------------------------------------- the config


def _source(data: Mapping[str, Any]) -> str:
    name = data["name"]
    return data.get("base", "mnist5k") if name in ("gaussian_noise", "mixture") else name


def _scale_points(points: Sequence[int], old: int, new: int) -> list[int]:
    """Points in (0, old) mapped to distinct points in [1, new - 1], order kept (extra ones dropped)."""
    out: list[int] = []
    for p in sorted(int(p) for p in points):
        q = max(1, min(new - 1, int(math.floor(p * new / max(old, 1)))))
        if out and q <= out[-1]:
            q = out[-1] + 1
        if q <= new - 1:
            out.append(q)
    return out


def _ladder(value: int | None, values: Sequence[int | None] | None = None, *, key: str) -> int | None:
    """A small size for ``value``: its rank among ``values`` on :data:`SIZE_LADDER` (halved for test subsets)."""
    if value is None:
        return None
    ladder = [max(2, s // 2) for s in SIZE_LADDER] if key.endswith("test_subset") else list(SIZE_LADDER)
    ranked = sorted({int(v) for v in (values or [value]) if v is not None})
    return min(int(value), ladder[min(ranked.index(int(value)), len(ladder) - 1)])


def _thin(key: str, values: list[Any]) -> list[Any]:
    """The sweep values a smoke run keeps (see the module docstring)."""
    if key in _SEED_KEYS:
        return values[:1]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not numeric or len(values) <= 2:
        return list(values)
    return [values[0], values[-1]]


def _length(training: Mapping[str, Any]) -> tuple[str, int, int]:
    """("epochs" or "steps", original length, smoke length)."""
    if training.get("epochs") is not None:
        return "epochs", int(training["epochs"]), min(int(training["epochs"]), EPOCHS)
    return "steps", int(training["steps"]), min(int(training["steps"]), STEPS)


def _shrink_training(tr: dict[str, Any]) -> tuple[str, int, int]:
    unit, old, new = _length(tr)
    tr[unit] = new
    sched = tr.get("lr_schedule") or {}
    if sched.get("kind") == "step" and sched.get("milestones"):
        same_unit = (sched.get("unit", "epoch") == "epoch") == (unit == "epochs")
        if same_unit:
            sched["milestones"] = _scale_points(sched["milestones"], old, new)
    tr["num_workers"] = min(int(tr.get("num_workers", 0)), 2)
    return unit, old, new


def _shrink_recording(rec: dict[str, Any], unit: str, old: int, new: int, n_train: int, n_test: int) -> None:
    s = rec["schedule"]
    kind = s["kind"]
    if kind in ("epoch", "steps"):
        if (kind == "epoch") == (unit == "epochs"):
            s["every"] = max(1, min(int(s["every"]), int(s["every"]) * new // max(old, 1)))
        else:
            s["every"] = 1
    elif kind == "log":
        s["n"] = min(int(s["n"]), 6)
    elif kind == "list":
        # Steps of the original run have no counterpart in a few smoke steps: keep the initial
        # point and the first update (the final record comes from include_final).
        s["steps"] = sorted({min(int(x), 1) for x in s["steps"]})
    elif kind == "lc" and s.get("freq") is not None:
        s["freq"] = max(1, min(int(s["freq"]), new))
    rec["n_tracked_train"] = min(int(rec["n_tracked_train"]), N_TRACKED, n_train)
    rec["n_tracked_test"] = min(int(rec["n_tracked_test"]), N_TRACKED_TEST, n_test)
    if int(rec["checkpoint_every"]) > 1:
        rec["checkpoint_every"] = 2
    if rec.get("metrics_subset") is not None:
        rec["metrics_subset"] = min(int(rec["metrics_subset"]), 8)


def _cap(section: dict[str, Any], key: str, cap: int) -> None:
    if section.get(key) is not None:
        section[key] = min(int(section[key]), cap)


def _shrink_paths(p: dict[str, Any], epoch_scale: float, n_images: int) -> None:
    # Ranks need n_candidates + 1 analysed images, the baselines among them.
    p["n_candidates"] = max(1, min(int(p["n_candidates"]), n_images - 1))
    _cap(p, "max_pairwise", N_TRACKED)
    _cap(p, "overlap_images", N_TRACKED)
    off = int(p["baseline_base"])
    p["baselines"] = sorted({min(int(b), p["n_candidates"] + off) for b in p["baselines"]})
    if p.get("overlap_epochs") is not None:
        p["overlap_epochs"] = sorted({float(round(e * epoch_scale)) for e in p["overlap_epochs"]})
    if p.get("stages") is not None:
        p["stages"] = {k: [float(round(e * epoch_scale)) for e in v] for k, v in p["stages"].items()}


def _shrink_lc(lc: dict[str, Any]) -> None:
    for key in ("n_train", "n_test", "n_random"):
        _cap(lc, key, 4)
    lc["n_directions"] = min(int(lc["n_directions"]), 2)
    lc["n_records"] = 3 if lc.get("n_records") is None else min(int(lc["n_records"]), 3)
    rg = lc["regions"]
    _cap(rg, "n_records", 2)
    _cap(rg, "local_points", 2)
    rg["local_n_records"] = 2
    rb = lc["robust"]
    _cap(rb, "n_points", 4)
    _cap(rb, "steps", 2)
    rb["n_records"] = 2


def _shrink_elasticity(le: dict[str, Any]) -> None:
    _cap(le, "n_per_class", 2)
    le["gpu"] = 0
    if le.get("histograms") is not None:
        le["histograms"]["n_per_class"] = 1
    he_su = (le.get("cluster") or {}).get("he_su")
    if he_su is not None:
        _cap(he_su, "n_per_class", 2)
        _cap(he_su, "n_auxiliary", 4)


def _shrink_neurashed(ns: dict[str, Any]) -> None:
    for study in ns.get("studies", {}).values():
        study["seeds"] = list(study["seeds"][:1])
        study["dpi"] = min(int(study["dpi"]), 50)
        for phen in ("implicit_regularization", "information_bottleneck", "local_elasticity"):
            ph = study.get(phen)
            if not isinstance(ph, dict):
                continue
            if "steps" in ph:
                ph["steps"] = min(int(ph["steps"]), 40)
            if "record_every" in ph:
                ph["record_every"] = max(1, min(int(ph["record_every"]), int(ph.get("steps", 40)) // 4))
            _cap(ph, "n_draws", 20)


def standin_weights_path(data_root: Path | str, experiment: str, weights: str) -> Path:
    """Where the stand-in of an experiment's pretrained weights file lives."""
    return Path(data_root) / "weights" / experiment / Path(weights).name


def _split_sizes(exp: Mapping[str, Any]) -> tuple[int, int]:
    """The smallest stand-in train and test split over the data variants of an experiment's sweep."""
    import itertools

    from gendyn.config import validate_section
    from gendyn.data.sizes import documented_sizes

    table = standin_table()
    keys = [k for k in exp["sweep"] if k.startswith("data.")]
    n_train = n_test = 1 << 62
    for combo in itertools.product(*(exp["sweep"][k] for k in keys)):
        data = dict(exp["data"])
        for k, v in zip(keys, combo):
            data[k.split(".", 1)[1]] = v
        sizes = documented_sizes(validate_section("data", data, "data"), table)
        n_train, n_test = min(n_train, sizes.n_train), min(n_test, sizes.n_test)
    return n_train, n_test


def _shrink_experiment(name: str, exp: dict[str, Any], data_root: str) -> dict[str, Any]:
    e = copy.deepcopy(exp)
    data = e["data"]
    if _source(data) in _ON_DISK or data["name"] in _ON_DISK:
        data["root"] = data_root
    for key in ("train_subset", "test_subset", "first_n"):
        data[key] = _ladder(data.get(key), key=key)
    sweep = {}
    for key, values in (e.get("sweep") or {}).items():
        values = _thin(key, list(values))
        if key in _SIZE_KEYS:
            values = [_ladder(v, values, key=key) for v in values]
        sweep[key] = values
    e["sweep"] = sweep
    n_train, n_test = _split_sizes(e)
    unit, old, new = _shrink_training(e["training"])
    _shrink_recording(e["recording"], unit, old, new, n_train, n_test)
    e["figures"]["dpi"] = min(int(e["figures"]["dpi"]), 50)
    an = e.get("analyses") or {}
    epoch_scale = new / max(old, 1) if unit == "epochs" else 1.0
    if an.get("paths") is not None:
        split = an["paths"]["split"]
        _shrink_paths(an["paths"], epoch_scale, int(e["recording"][f"n_tracked_{split}"]))
    if an.get("lc") is not None:
        _shrink_lc(an["lc"])
    if an.get("elasticity") is not None:
        le = an["elasticity"]
        _shrink_elasticity(le)
        if le.get("pretrained") is not None:
            le["pretrained"]["weights"] = str(standin_weights_path(data_root, name, le["pretrained"]["weights"]))
    if an.get("memorization") is not None:
        _cap(an["memorization"], "last_epochs", new if unit == "epochs" else 10)
    return e


def smoke_config(config: Mapping[str, Any], *, data_root: Path | str | None = None) -> dict[str, Any]:
    """The smoke version of a validated workflow config: sizes shrunk, code path unchanged.

    Parameters
    ----------
    config : mapping
        A workflow config validated by :func:`gendyn.config.validate_config` (defaults filled).
    data_root : path, optional
        Folder of the stand-in files (:func:`write_standins`); default ``smoke_data`` of the
        config, else ``<results_dir>/smoke/data`` (the original ``results_dir``).

    Returns
    -------
    dict
        The config to run, validated again, with ``smoke: false`` (applying it twice changes
        nothing more) and ``results_dir`` = ``<results_dir>/smoke``. Every change is listed in
        the module docstring.
    """
    from gendyn.config import validate_config

    cfg = copy.deepcopy(dict(config))
    base_results = str(cfg.get("results_dir", "results"))
    if data_root is None:
        data_root = cfg.get("smoke_data") or str(Path(base_results) / "smoke" / "data")
    data_root = str(data_root)
    cfg["results_dir"] = str(Path(base_results) / "smoke")
    cfg["smoke"] = False
    cfg["smoke_data"] = data_root
    cfg["data_root"] = data_root
    res = cfg.setdefault("resources", {})
    for kind in ("train", "analysis", "figures"):
        res.setdefault(kind, {})["threads"] = 1
    res["train"].update(gpu=0, gpu_model=None, constraint=None)
    res["analysis"]["dask_scheduler"] = None
    active = cfg.get("active_experiments")
    names = list(cfg["experiments"]) if active is None else list(active)
    for name in names:
        cfg["experiments"][name] = _shrink_experiment(name, cfg["experiments"][name], data_root)
    if cfg.get("neurashed"):
        _shrink_neurashed(cfg["neurashed"])
    return validate_config(cfg, source="smoke config")


# --------------------------------------------------------------------------- stand-in files


@dataclass(frozen=True)
class WeightsSpec:
    """A pretrained-weights stand-in: the experiment's model, its input shape and output count."""

    experiment: str
    model: Mapping[str, Any]
    input_shape: tuple[int, int, int]
    n_outputs: int
    path: Path


def _needed_datasets(config: Mapping[str, Any]) -> set[str]:
    """On-disk datasets the active experiments of a config read."""
    from gendyn.config import active_experiments

    out: set[str] = set()
    for name in active_experiments(config):
        data = config["experiments"][name]["data"]
        out |= {s for s in (data["name"], _source(data)) if s in _ON_DISK}
    return out


def _needed_weights(config: Mapping[str, Any]) -> list[WeightsSpec]:
    """Pretrained-weights files the active experiments of a smoke config read (their data must exist)."""
    from gendyn.config import active_experiments
    from gendyn.data.sizes import data_sizes

    out: list[WeightsSpec] = []
    for name in active_experiments(config):
        exp = config["experiments"][name]
        pre = ((exp.get("analyses") or {}).get("elasticity") or {}).get("pretrained")
        if pre is None:
            continue
        sizes = data_sizes(exp["data"], root=config.get("data_root"))
        n_out = int(pre.get("n_outputs") or sizes.n_classes)
        out.append(WeightsSpec(name, dict(exp["model"]), sizes.input_shape, n_out, Path(pre["weights"])))
    return out


def smoke_workflow_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """What ``smoke: true`` does in the workflow: :func:`smoke_config`, then write missing stand-ins.

    The stand-in files the active experiments read (datasets and pretrained weights) are written
    to ``smoke_data`` (default ``<results_dir>/smoke/data``) when absent; existing ones are kept.
    """
    cfg = smoke_config(config)
    write_standins(cfg["smoke_data"], datasets=_needed_datasets(cfg))
    weights = _needed_weights(cfg)
    if weights:
        write_standins(cfg["smoke_data"], datasets=(), weights=weights)
    return cfg


def _done(folder: Path, name: str) -> Path:
    return folder / ".standins" / name


def write_standins(
    folder: Path | str,
    *,
    datasets: Iterable[str] = _ON_DISK,
    weights: Iterable[WeightsSpec] = (),
    seed: int = 0,
) -> Path:
    """Write tiny stand-ins of on-disk datasets and pretrained weights into ``folder``.

    Parameters
    ----------
    folder : path
        Becomes a ``data.root``: ``cifar-10-batches-py/``, ``cifar-100-python/``, ``MNIST/raw/``,
        ``train/<wnid>/``, ``val/<wnid>/`` and ``weights/<experiment>/<file>``.
    datasets : iterable of {"mnist", "cifar10", "cifar100", "imagenet"}
    weights : iterable of WeightsSpec
        Random weights of each spec's model, saved as a state dict (torchvision's layout for
        ``vgg19``, ``alexnet`` and ``resnet18`` with ImageNet inputs).
    seed : int
        Seeds every pixel, label and weight.

    Returns
    -------
    The folder. Each part is written once (a marker under ``.standins/`` records it), atomically,
    so parallel callers and reruns are safe.
    """
    from gendyn.store import atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    writers = {"cifar10": write_cifar, "cifar100": write_cifar, "mnist": write_mnist, "imagenet": write_imagefolder}
    for name in sorted(set(datasets)):
        if name not in writers:
            raise ValueError(f"stand-in data: no writer for dataset {name!r}; known: {', '.join(sorted(writers))}")
        marker = _done(folder, name)
        if marker.exists():
            continue
        if name in ("cifar10", "cifar100"):
            write_cifar(folder, name, seed=seed)
        else:
            writers[name](folder, seed=seed)  # type: ignore[operator]
        atomic_write_text(marker, "complete\n")
        logger.info("stand-in %s written to %s", name, folder)
    for spec in weights:
        if spec.path.is_file():
            continue
        write_weights(spec.path, spec.model, spec.input_shape, spec.n_outputs, seed=seed)
        logger.info("stand-in weights of %s (%s) written to %s", spec.experiment, spec.model.get("name"), spec.path)
    return folder


def _balanced_labels(n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels cycling through the classes, shuffled (every class equally often when n % C == 0)."""
    return rng.permutation(np.arange(n) % n_classes).astype(np.int64)


def write_cifar(
    root: Path | str,
    kind: str,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    n_batches: int = 5,
    seed: int = 0,
    labels: str = "balanced",
) -> dict[str, np.ndarray]:
    """A tiny CIFAR archive in the real python-pickle layout under ``root``.

    CIFAR-10: ``cifar-10-batches-py/data_batch_1..n_batches``, ``test_batch``, ``batches.meta``;
    CIFAR-100: ``cifar-100-python/train``, ``test``, ``meta`` (fine and coarse labels).

    Parameters
    ----------
    kind : {"cifar10", "cifar100"}
    n_train, n_test : int, optional
        Images (default :data:`STANDIN_SIZES` per class for CIFAR-10, :data:`CIFAR100_SIZES`).
    n_batches : int
        CIFAR-10 training batch files (the real archive has 5).
    labels : {"balanced", "random"}
        Cycling through the classes (every class present) or uniform random.

    Returns
    -------
    {"x", "y", "xt", "yt"}: the raw uint8 (N, 3072) rows and labels written, train and test.
    """
    rng = np.random.default_rng(seed)
    if kind == "cifar10":
        folder = Path(root) / "cifar-10-batches-py"
        n_classes, label_key = 10, b"labels"
        per_train, per_test = STANDIN_SIZES["cifar10"]
        n_train = n_train if n_train is not None else per_train * n_classes
        n_test = n_test if n_test is not None else per_test * n_classes
        files = [f"data_batch_{i}" for i in range(1, n_batches + 1)]
        test_file, meta_name = "test_batch", "batches.meta"
        meta = {b"label_names": [f"class{i}".encode() for i in range(10)], b"num_cases_per_batch": max(1, n_train // n_batches)}
    elif kind == "cifar100":
        folder = Path(root) / "cifar-100-python"
        n_classes, label_key = 100, b"fine_labels"
        n_train = n_train if n_train is not None else CIFAR100_SIZES[0]
        n_test = n_test if n_test is not None else CIFAR100_SIZES[1]
        files = ["train"]
        test_file, meta_name = "test", "meta"
        meta = {b"fine_label_names": [f"class{i}".encode() for i in range(100)],
                b"coarse_label_names": [f"super{i}".encode() for i in range(20)]}  # fmt: skip
    else:
        raise ValueError(f"write_cifar: kind {kind!r} is not 'cifar10' or 'cifar100'")
    folder.mkdir(parents=True, exist_ok=True)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        y = _balanced_labels(n, n_classes, rng) if labels == "balanced" else rng.integers(0, n_classes, size=n).astype(np.int64)
        return x, y

    x, y = draw(n_train)
    xt, yt = draw(n_test)
    parts = np.array_split(np.arange(n_train), len(files))
    for fname, idx in zip(files, parts):
        entry = {b"batch_label": fname.encode(), b"data": x[idx], label_key: y[idx].tolist(),
                 b"filenames": [f"img{i}.png".encode() for i in idx]}  # fmt: skip
        if kind == "cifar100":
            entry[b"coarse_labels"] = (y[idx] // 5).tolist()
        _pickle(folder / fname, entry)
    test_entry = {b"batch_label": b"testing batch", b"data": xt, label_key: yt.tolist()}
    if kind == "cifar100":
        test_entry[b"coarse_labels"] = (yt // 5).tolist()
    _pickle(folder / test_file, test_entry)
    _pickle(folder / meta_name, meta)
    return {"x": x, "y": y, "xt": xt, "yt": yt}


def _pickle(path: Path, obj: Any) -> None:
    from gendyn.store import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(obj, fh)


def _write_idx(path: Path, arr: np.ndarray) -> None:
    """An idx file (MNIST's format): magic (0, 0, 0x08 = uint8, ndim), big-endian dims, the bytes."""
    from gendyn.store import atomic_path

    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + arr.astype(np.uint8).tobytes())


def write_mnist(root: Path | str, *, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Tiny MNIST in torchvision's raw layout: ``MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``.

    Returns ``{"x", "y", "xt", "yt"}`` (uint8 images (N, 28, 28) and labels) as written.
    """
    rng = np.random.default_rng(seed)
    per_train, per_test = STANDIN_SIZES["mnist"]
    n_train = n_train if n_train is not None else 10 * per_train
    n_test = n_test if n_test is not None else 10 * per_test
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n, kx, ky in (("train", n_train, "x", "y"), ("t10k", n_test, "xt", "yt")):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = _balanced_labels(n, 10, rng).astype(np.uint8)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", x)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
        out[kx], out[ky] = x, y.astype(np.int64)
    return out


def write_imagefolder(
    root: Path | str,
    *,
    wnids: Sequence[str] = IMAGENET_WNIDS,
    n_train: int | None = None,
    n_val: int | None = None,
    size: tuple[int, int] = (40, 48),
    seed: int = 0,
    fmt: str = "JPEG",
) -> Path:
    """A tiny ImageNet in the ImageFolder layout: ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG``.

    Parameters
    ----------
    n_train, n_val : int, optional
        Images per class (default :data:`STANDIN_SIZES` ``["imagenet"]``).
    size : (height, width)
        Of the stored images (the loader resizes and crops them to ``data.image_size``).
    fmt : {"JPEG", "PNG"}
    """
    from PIL import Image

    from gendyn.store import atomic_path

    rng = np.random.default_rng(seed)
    per_train, per_val = STANDIN_SIZES["imagenet"]
    counts = {"train": n_train if n_train is not None else per_train, "val": n_val if n_val is not None else per_val}
    ext = ".JPEG" if fmt.upper() in ("JPEG", "JPG") else ".png"
    for split, n in counts.items():
        for k, wnid in enumerate(wnids):
            d = Path(root) / split / wnid
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                arr = (rng.integers(0, 256, size=(*size, 3)) // 2 + 40 * k).clip(0, 255).astype(np.uint8)
                with atomic_path(d / f"{wnid}_{i}{ext}") as tmp:
                    Image.fromarray(arr).save(tmp, format="JPEG" if ext == ".JPEG" else "PNG")
    return Path(root)


def write_weights(
    path: Path | str,
    model: Mapping[str, Any],
    input_shape: tuple[int, ...],
    n_outputs: int,
    *,
    seed: int = 0,
) -> Path:
    """Random weights of ``model`` (a ``model`` config section) saved as a plain state dict.

    gendyn's ``vgg19``, ``alexnet`` (ImageNet inputs) and ``resnet18`` use torchvision's parameter
    names and shapes, so the file has the layout of torchvision's released weights (e.g.
    ``vgg19-dcbb9e9d.pth``, 1000 outputs) and loads with ``strict=True`` where those do.
    """
    import torch

    from gendyn.models import build_model
    from gendyn.store import atomic_path

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_model(dict(model), tuple(input_shape), int(n_outputs))
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path
