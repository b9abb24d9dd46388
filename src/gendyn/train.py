"""Training with recording: one run, resumable, deterministic on CPU.

:func:`train_run` trains the run described by a resolved run config and writes
``run.h5`` (metrics, tracked images, masks, activations) and ``checkpoints.h5`` (weights at
record points) into the run directory, following the contract in ``docs/results.md``.

Resumption: at every record point and at least every ``recording.resume_every_s`` seconds
the full training state (weights, optimiser, RNG, step, counts of rows written) is saved
atomically to ``resume.pt``. Rerunning after a kill truncates the staged records (``run.partial/``) back to
those counts and continues; data order and augmentation are pure functions of
(seed, epoch, batch), so the resumed run is bit-identical to an uninterrupted one on CPU.
When training ends the state is saved once more, marked finished, before ``checkpoints.h5``
and ``run.h5`` are assembled; staged records and ``resume.pt`` are deleted only after both
files are published and verified, so an interruption during assembly (a kill, a full disk)
resumes the assembly, not the training.

Identity beyond the config: on CPU the result also depends on the number of torch threads
(the order of floating-point sums in matrix products), so the thread count, device, dtype and
the deterministic flags are recorded in ``run.h5`` (``threads``, ``determinism``) and in
``resume.pt``. An interrupted run resumes only under the same ones: asked for another thread
count it refuses, naming the recorded one; without ``threads`` it continues with the recorded
one. A fresh run without ``threads`` uses 1, never "all cores".

One writer per run directory: :func:`train_run` holds the lock of the directory
(:mod:`gendyn.locks`) from its first look at the directory until its files are published.

Runs with ``training.objective`` (paper 003) train on paired train/test batches through
:class:`gendyn.memorization.SplitTraining`; its gate (the test accuracy fixed at the start of
each epoch) and per-epoch sums are part of the resume state.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

import gendyn
from gendyn import store
from gendyn.config import ConfigError, config_hash, write_run_config
from gendyn.locks import exclusive
from gendyn.data import Data, load_data
from gendyn.memorization import SplitTraining
from gendyn.models import build_run_model, count_parameters, relu_sites
from gendyn.record import Recorder, layer_name, record_steps, relu_layers, saves_checkpoint
from gendyn.runtime import derive_seed, resolve_device

__all__ = ["train_run", "TrainingDiverged", "ResumeMismatch", "tracked_indices", "lr_at", "DEFAULT_THREADS", "training_length", "metric_names"]

logger = logging.getLogger(__name__)

#: Torch threads of a run started without an explicit count (the schema default of
#: ``resources.train.threads``, which the workflow passes).
DEFAULT_THREADS = 1


class TrainingDiverged(RuntimeError):
    """The training loss became non-finite."""


class ResumeMismatch(ConfigError):
    """An interrupted run would resume under settings that change its results (thread count, device)."""


def determinism(device: torch.device, dtype: torch.dtype, threads: int) -> dict[str, Any]:
    """What, besides the config, decides a run's numbers: recorded in ``run.h5`` and ``resume.pt``."""
    return {
        "threads": int(threads),
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
    }


def tracked_indices(cfg: Mapping[str, Any], n_train: int, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, sorted indices of the tracked train and test images."""
    rec = cfg["recording"]
    seed = cfg["training"]["seed"]
    out = []
    for split, n_total, n_want in (("train", n_train, rec["n_tracked_train"]), ("test", n_test, rec["n_tracked_test"])):
        if n_want > n_total:
            raise ValueError(
                f"recording.n_tracked_{split}: {n_want} exceeds the {n_total} images of the {split} split; lower it"
            )
        rng = np.random.default_rng(derive_seed(seed, f"tracked-{split}"))
        out.append(np.sort(rng.choice(n_total, size=n_want, replace=False)).astype(np.int64))
    return out[0], out[1]


def lr_at(training: Mapping[str, Any], step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Learning rate used by update ``step + 1`` (a pure function of the step)."""
    base = float(training["lr"])
    sch = training.get("lr_schedule", {}) or {}
    kind = sch.get("kind", "constant")
    if kind == "constant":
        return base
    if kind == "step":
        unit = steps_per_epoch if sch.get("unit", "epoch") == "epoch" else 1
        n = sum(1 for m in sch.get("milestones", []) if step >= m * unit)
        return base * float(sch.get("gamma", 0.1)) ** n
    if kind == "cosine":
        lo = float(sch.get("min_lr", 0.0))
        return lo + 0.5 * (base - lo) * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
    raise ValueError(f"training.lr_schedule.kind: {kind!r} is not one of constant, step, cosine")


def training_length(training: Mapping[str, Any], n_train: int, n_test: int) -> tuple[int, int]:
    """(steps per epoch, total steps) of a run on ``n_train`` training (``n_test`` test) images.

    Runs with ``training.objective`` (paper 003) pair every train batch with a test batch, so an
    epoch ends with the shorter split.
    """
    bs = int(training["batch_size"])

    def batches(n: int, size: int) -> int:
        return n // size if training["drop_last"] else math.ceil(n / size)

    obj = training.get("objective")
    spe = batches(n_train, bs)
    if obj is not None:
        spe = min(spe, batches(n_test, int(obj.get("test_batch_size") or bs)))
    if spe < 1:
        raise ValueError(f"training.batch_size: {bs} exceeds the {n_train} training images with drop_last; lower it")
    total = int(training["steps"]) if training.get("steps") is not None else int(training["epochs"]) * spe
    return spe, total


def metric_names(cfg: Mapping[str, Any], model: nn.Module, *, heldout: bool) -> list[str]:
    """Variables of ``/metrics`` (besides ``step``) of a run of ``cfg`` training ``model``."""
    names = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "batch_loss"]
    if cfg["recording"]["grad_norms"]:
        names += ["grad_norm", *(f"gradnorm_{layer_name(n) if n else 'model'}" for n, _ in _param_modules(model))]
    if heldout:
        names += ["heldout_loss", "heldout_acc"]
    if cfg["training"].get("objective") is not None:
        names += list(SplitTraining.METRICS)
    return names


def _optimizer(params: Any, tr: Mapping[str, Any]) -> torch.optim.Optimizer:
    name = tr["optimizer"]
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=tr["lr"], momentum=tr["momentum"], nesterov=tr["nesterov"], weight_decay=tr["weight_decay"]
        )
    if name == "adam":
        return torch.optim.Adam(params, lr=tr["lr"], betas=tuple(tr["betas"]), weight_decay=tr["weight_decay"])
    if name == "adamw":
        return torch.optim.AdamW(params, lr=tr["lr"], betas=tuple(tr["betas"]), weight_decay=tr["weight_decay"])
    raise ValueError(f"training.optimizer: {name!r} is not one of sgd, adam, adamw")


def loss_fn(name: str, out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy on the model output, or MSE against one-hot targets."""
    if name == "cross_entropy":
        return F.cross_entropy(out, y, reduction=reduction)
    if name == "mse":
        target = F.one_hot(y, out.shape[1]).to(out.dtype)
        per = ((out - target) ** 2).mean(dim=1)
        return per.mean() if reduction == "mean" else per.sum() if reduction == "sum" else per
    raise ValueError(f"training.loss: {name!r} is not one of cross_entropy, mse")


def _param_modules(model: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    out = []
    for name, mod in model.named_modules():
        ps = [p for p in mod.parameters(recurse=False) if p.requires_grad]
        if ps:
            out.append((name, ps))
    return out


@dataclass
class _Counts:
    records: int = 0
    metrics: int = 0
    checkpoints: int = 0
    recorded_through: int = -1


class _Trainer:
    def __init__(
        self,
        cfg: Mapping[str, Any],
        out_dir: Path,
        *,
        device: torch.device,
        data: Data | None = None,
        threads: int | None = None,
    ) -> None:
        self.cfg = cfg
        self.out = out_dir
        self.device = device
        self.requested_threads = threads
        self.threads = int(threads) if threads is not None else DEFAULT_THREADS
        self.tr = cfg["training"]
        self.rec = cfg["recording"]
        self.seed = int(self.tr["seed"])
        self.dtype = torch.float64 if cfg["model"].get("dtype") == "float64" else torch.float32
        self.data = data if data is not None else load_data(cfg["data"])
        n_train = len(self.data.train)
        bs = int(self.tr["batch_size"])
        # Paper 003 objectives: paired train/test batches (gendyn.memorization.SplitTraining).
        obj_cfg = self.tr.get("objective")
        self.split: SplitTraining | None = None
        if obj_cfg is not None:
            if self.tr["loss"] != "cross_entropy":
                raise ValueError(
                    f"training.loss: {self.tr['loss']!r} cannot be combined with training.objective "
                    "(its losses are cross-entropies); set training.loss: cross_entropy"
                )
            self.split = SplitTraining.from_config(obj_cfg, cfg["model"], self.data.n_classes)
            self.test_bs = int(obj_cfg.get("test_batch_size") or bs)
        self.spe, self.total = training_length(self.tr, n_train, len(self.data.test))
        self.rec_steps = record_steps(self.rec["schedule"], self.total, self.spe)
        self.rec_set = set(int(s) for s in self.rec_steps)
        self.model = build_run_model(cfg, self.data.input_shape, self.data.n_classes).to(device)
        logger.info(
            "model %s (input %s, %d classes): %d parameters, %d ReLU sites",
            cfg["model"]["name"], tuple(self.data.input_shape), self.data.n_classes,
            count_parameters(self.model), len(relu_sites(self.model)),
        )  # fmt: skip
        self.opt = _optimizer(self.model.parameters(), self.tr)
        if self.split is not None:
            self.split.bind(self.model)
        self.param_modules = _param_modules(self.model)
        example = self.data.train.get(np.array([0]))[0].to(device=device, dtype=self.dtype)
        self.layers = relu_layers(self.model, example)
        tr_idx, te_idx = tracked_indices(cfg, n_train, len(self.data.test))
        self.tracked = {
            "index": np.concatenate([tr_idx, te_idx]),
            "split": np.array(["train"] * len(tr_idx) + ["test"] * len(te_idx), dtype=object),
            "label": np.concatenate(
                [self.data.train.labels[tr_idx].numpy(), self.data.test.labels[te_idx].numpy()]
            ).astype(np.int64),
        }
        xs = []
        if len(tr_idx):
            xs.append(self.data.train.get(tr_idx)[0])
        if len(te_idx):
            xs.append(self.data.test.get(te_idx)[0])
        self.x_tracked = torch.cat(xs).to(dtype=self.dtype) if xs else None
        if self.x_tracked is not None and self.x_tracked.numel() * self.x_tracked.element_size() < (1 << 30):
            self.x_tracked = self.x_tracked.to(device)
        sub = self.rec.get("metrics_subset")
        self.metric_idx = {}
        for split in ("train", "test"):
            n = len(getattr(self.data, split))
            if sub is None or sub >= n:
                self.metric_idx[split] = np.arange(n)
            else:
                rng = np.random.default_rng(derive_seed(self.seed, f"metrics-{split}"))
                self.metric_idx[split] = np.sort(rng.choice(n, size=sub, replace=False))
        if self.data.heldout is not None:
            n = len(self.data.heldout)
            if sub is None or sub >= n:
                self.metric_idx["heldout"] = np.arange(n)
            else:
                rng = np.random.default_rng(derive_seed(self.seed, "metrics-heldout"))
                self.metric_idx["heldout"] = np.sort(rng.choice(n, size=sub, replace=False))
        self.gn_names = [f"gradnorm_{layer_name(n) if n else 'model'}" for n, _ in self.param_modules]
        self.metric_names = metric_names(cfg, self.model, heldout=self.data.heldout is not None)
        self.counts = _Counts()
        self.batch_loss_sum = 0.0
        self.batch_loss_n = 0
        self.last_grad_norms: dict[str, float] = {}
        self.last_finite: tuple[int, float] | None = None
        self._resume_rng: tuple[torch.Tensor, Any] | None = None

    # ------------------------------------------------------------------ files
    @property
    def paths(self) -> dict[str, Path]:
        return {
            "run": self.out / store.RUN_FILE,
            "run_partial": self.out / "run.partial",
            "ckpt": self.out / store.CHECKPOINT_FILE,
            "ckpt_partial": self.out / "checkpoints.partial",
            "resume": self.out / store.RESUME_FILE,
        }

    def _root_attrs(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.data.heldout is not None:
            extra["n_heldout"] = len(self.data.heldout)
        if self.split is not None:
            extra.update(
                objective=self.split.objective.name,
                test_batch_size=self.test_bs,
                first_weight=self.split.weight_name,
                keep_test_forward=int(self.split.keep_test_forward),
            )
        return extra | {
            "gendyn_version": gendyn.__version__,
            "config": json.dumps(self.cfg, sort_keys=True),
            "config_hash": config_hash(self.cfg),
            "experiment": str(self.cfg.get("experiment", "")),
            "run": str(self.cfg.get("run", "")),
            "seed": self.seed,
            "torch_version": str(torch.__version__),
            "python_version": platform.python_version(),
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "threads": int(self.threads),
            "determinism": json.dumps(self._determinism(), sort_keys=True),
            "input_shape": np.asarray(self.data.input_shape, dtype=np.int64),
            "n_classes": int(self.data.n_classes),
            "n_train": len(self.data.train),
            "n_test": len(self.data.test),
            "steps_per_epoch": self.spe,
            "total_steps": self.total,
            "record_steps": self.rec_steps,
            "record_schedule": json.dumps(self.rec["schedule"], sort_keys=True),
            "diverged": 0,
        }

    def _open_writers(self, resume: bool) -> None:
        p = self.paths
        self.writer = store.RunWriter(
            p["run_partial"],
            attrs=self._root_attrs(),
            tracked=self.tracked,
            layers=self.layers,
            metric_names=self.metric_names,
            masks=self.rec["masks"],
            activations=self.rec["activations_dtype"] if self.rec["activations"] else None,
            resume=resume,
        )
        self.ckpt = store.CheckpointWriter(p["ckpt_partial"], resume=resume)

    # ------------------------------------------------------------------ resume
    def _determinism(self) -> dict[str, Any]:
        return determinism(self.device, self.dtype, self.threads)

    def _check_determinism(self, recorded: Mapping[str, Any] | None, *, finished: bool = False) -> None:
        """Resume only under the thread count and device the run started with.

        A run whose training had finished only assembles its files: nothing numeric is left, so
        it continues whatever the thread count (its ``run.h5`` records the training's).
        """
        p = self.paths["resume"]
        if recorded is not None and finished:
            self.threads = int(recorded["threads"])
            return
        if recorded is None:
            logger.warning("%s: records no thread count (written by an older gendyn); resuming with %d", p, self.threads)
            return
        want = int(recorded["threads"])
        if want != self.threads:
            if self.requested_threads is not None:
                raise ResumeMismatch(
                    f"{p}: this run started with {want} torch thread(s); resuming it with {self.threads} would "
                    f"change its results on CPU (and mix two thread counts in one run). Rerun with --threads {want} "
                    f"(Snakemake: resources.train.threads: {want}), or delete {p} to start over with {self.threads}"
                )
            logger.info("%s: resuming with the recorded %d torch thread(s)", p, want)
            self.threads = want
        if str(recorded.get("device")) != str(self.device):
            raise ResumeMismatch(
                f"{p}: this run started on {recorded.get('device')}; resuming it on {self.device} would change its "
                f"results. Rerun with --device {str(recorded.get('device')).split(':')[0]}, or delete {p} to start over"
            )

    def _save_resume(self, step: int, *, finished: bool = False) -> None:
        state = {
            "config_hash": config_hash(self.cfg),
            "determinism": self._determinism(),
            "finished": finished,
            "step": step,
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "counts": self.counts.__dict__.copy(),
            "batch_loss": (self.batch_loss_sum, self.batch_loss_n),
            "last_grad_norms": dict(self.last_grad_norms),
            "last_finite": self.last_finite,
            "ckpt_records": self.ckpt.n,
            "objective": self.split.state_dict() if self.split is not None else None,
        }
        with store.atomic_path(self.paths["resume"]) as tmp:
            torch.save(state, tmp)
        self._last_save = time.monotonic()
        logger.debug("resume state saved at step %d", step)

    def _try_resume(self) -> int:
        """Restore the resume state if one matches this config; return the start step."""
        p = self.paths
        if not p["resume"].exists():
            return -1
        try:
            state = torch.load(p["resume"], map_location="cpu", weights_only=False)
        except Exception as e:  # a torn file cannot happen (atomic), but a foreign one can
            logger.warning("%s: unreadable resume state (%s); starting from scratch", p["resume"], e)
            return -1
        if state.get("config_hash") != config_hash(self.cfg):
            logger.warning("%s: resume state belongs to another configuration; starting from scratch", p["resume"])
            return -1
        self._check_determinism(state.get("determinism"), finished=bool(state.get("finished", False)))
        if not p["run_partial"].exists() or not p["ckpt_partial"].exists():
            logger.warning("%s: partial result files are missing; starting from scratch", self.out)
            return -1
        c = _Counts(**state["counts"])
        self._open_writers(resume=True)
        if self.writer.n_records < c.records or self.writer.n_metrics < c.metrics or self.ckpt.n < state["ckpt_records"]:
            logger.warning("%s: staged records are fewer than the resume state expects; starting from scratch", self.out)
            return -1
        self.writer.truncate(c.records, c.metrics)
        self.ckpt.truncate(state["ckpt_records"])
        self.counts = c
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self._resume_rng = (state["rng_cpu"], state["rng_cuda"])
        self.batch_loss_sum, self.batch_loss_n = state["batch_loss"]
        self.last_grad_norms = state["last_grad_norms"]
        self.last_finite = state["last_finite"]
        if self.split is not None and state.get("objective") is not None:
            self.split.load_state_dict(state["objective"])
        self.finished = bool(state.get("finished", False))
        if self.finished:
            logger.info("resuming %s: training had finished (step %d); assembling its files", self.out, state["step"])
        else:
            logger.info("resuming %s at step %d of %d", self.out, state["step"], self.total)
        return int(state["step"])

    # ------------------------------------------------------------------ record point
    @torch.no_grad()
    def _evaluate(self, split: str, idx: np.ndarray | None = None) -> tuple[float, float]:
        idx = self.metric_idx[split] if idx is None else idx
        ds = getattr(self.data, split)
        bs = int(self.rec["eval_batch_size"])
        loss_sum, correct = 0.0, 0
        for i in range(0, len(idx), bs):
            x, y = ds.get(idx[i : i + bs])
            x = x.to(self.device, self.dtype, non_blocking=True)
            y = y.to(self.device)
            out = self.model(x)
            loss_sum += float(loss_fn(self.tr["loss"], out, y, reduction="sum"))
            correct += int((out.argmax(1) == y).sum())
        n = max(len(idx), 1)
        return loss_sum / n, correct / n

    def _record(self, step: int) -> None:
        model = self.model
        was_training = model.training
        model.eval()
        try:
            epoch = step / self.spe
            if self.x_tracked is not None and (self.rec["masks"] or self.rec["activations"]):
                with Recorder(
                    model,
                    self.layers,
                    masks=self.rec["masks"],
                    activations=self.rec["activations_dtype"] if self.rec["activations"] else None,
                ) as recorder, torch.no_grad():
                    bs = int(self.rec["eval_batch_size"])
                    for i in range(0, len(self.x_tracked), bs):
                        model(self.x_tracked[i : i + bs].to(self.device, non_blocking=True))
                masks, acts = recorder.result()
                self.writer.append_record(step, epoch, masks, acts)
            else:
                self.writer.append_record(step, epoch, None, None)
            tl, ta = self._evaluate("train")
            vl, va = self._evaluate("test")
            row = {
                "epoch": epoch,
                "lr": lr_at(self.tr, step, self.total, self.spe),
                "train_loss": tl,
                "train_acc": ta,
                "test_loss": vl,
                "test_acc": va,
                "batch_loss": self.batch_loss_sum / self.batch_loss_n if self.batch_loss_n else float("nan"),
            }
            if self.rec["grad_norms"]:
                row.update(self.last_grad_norms or {k: float("nan") for k in ["grad_norm", *self.gn_names]})
            if self.data.heldout is not None:
                row["heldout_loss"], row["heldout_acc"] = self._evaluate("heldout")
            if self.split is not None:
                if len(self.metric_idx["test"]) == len(self.data.test):
                    self.split.note_test_acc(step, va)  # the next epoch's gate reuses it
                row.update(self.split.metrics_row(ta, va, initial=step == 0))
            self.writer.append_metrics(step, row)
            self.batch_loss_sum, self.batch_loss_n = 0.0, 0
            k = self.counts.records
            if saves_checkpoint(self.rec, k, step, self.total):
                self.ckpt.append(step, epoch, {n: t.detach().cpu().numpy() for n, t in model.state_dict().items()})
            self.counts.records += 1
            self.counts.metrics += 1
            self.counts.recorded_through = step
            logger.debug("record %d at step %d: train_acc %.4f test_acc %.4f", k, step, ta, va)
        finally:
            model.train(was_training)

    # ------------------------------------------------------------------ step
    def _grad_norms(self) -> dict[str, float]:
        grads = [[p.grad for p in ps if p.grad is not None] for _, ps in self.param_modules]
        flat = [g for gs in grads for g in gs]
        if not flat:
            return {}
        norms = torch._foreach_norm(flat)
        sq = torch.stack([n.to(torch.float64) ** 2 for n in norms]).cpu().numpy()
        out, i = {}, 0
        for name, gs in zip(self.gn_names, grads):
            out[name] = float(np.sqrt(sq[i : i + len(gs)].sum()))
            i += len(gs)
        out["grad_norm"] = float(np.sqrt(sq.sum()))
        return out

    def _train_step(
        self,
        step: int,
        x: torch.Tensor,
        y: torch.Tensor,
        x_te: torch.Tensor | None = None,
        y_te: torch.Tensor | None = None,
    ) -> float:
        lr = lr_at(self.tr, step, self.total, self.spe)
        for g in self.opt.param_groups:
            g["lr"] = lr
        x = x.to(self.device, self.dtype, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        self.opt.zero_grad(set_to_none=True)
        terms = None
        if self.split is None:
            out = self.model(x)
            loss = loss_fn(self.tr["loss"], out, y)
        else:
            assert x_te is not None and y_te is not None
            x_te = x_te.to(self.device, self.dtype, non_blocking=True)
            y_te = y_te.to(self.device, non_blocking=True)
            loss, terms = self.split.loss(self.model, x, y, x_te, y_te)
        value = float(loss.detach())
        if not math.isfinite(value):
            return value
        loss.backward()
        if self.rec["grad_norms"] and (step + 1) in self.rec_set:
            self.last_grad_norms = self._grad_norms()
        if terms is not None:
            self.split.after_backward(terms)  # type: ignore[union-attr]
        self.opt.step()
        self.batch_loss_sum += value
        self.batch_loss_n += 1
        self.last_finite = (step + 1, value)
        return value

    def _diverged(self, step: int, value: float) -> bool:
        """Handle a non-finite loss at update ``step``; return True to end the run cleanly."""
        last = (
            f"last finite loss {self.last_finite[1]:.6g} at step {self.last_finite[0]}"
            if self.last_finite
            else "no finite loss before"
        )
        msg = (
            f"{self.out}: training loss became {value} at step {step} (epoch {step / self.spe:.2f}, "
            f"lr {lr_at(self.tr, step - 1, self.total, self.spe):g}); {last}"
        )
        if self.tr["on_divergence"] == "record":
            logger.warning("%s; ending the run (on_divergence: record)", msg)
            self.writer.set_attrs(diverged=1, diverged_step=step, diverged_loss=str(value))
            return True
        raise TrainingDiverged(
            msg + ". Lower training.lr, or set training.on_divergence: record to keep the run up to that point."
        )

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        from gendyn.runtime import set_threads

        self.out.mkdir(parents=True, exist_ok=True)
        self.finished = False
        step = self._try_resume()
        if step < 0:
            step = 0
            self._open_writers(resume=False)
        set_threads(self.threads)
        logger.info("torch threads: %d (%s)", self.threads, "given" if self.requested_threads is not None else "default")
        if not self.finished:
            self._train(step)
        p = self.paths
        self.ckpt.finish(p["ckpt"])
        self.writer.finish(p["run"])
        # Only now, with both files published and verified, the staged state may go.
        p["resume"].unlink(missing_ok=True)
        self.ckpt.remove()
        self.writer.remove()
        logger.info("run complete: %s", p["run"])

    def _train(self, step: int) -> None:
        self._last_save = time.monotonic()
        is_tty = sys.stderr.isatty()
        bar = tqdm(
            total=self.total,
            initial=step,
            desc=f"train {self.cfg.get('experiment', '')}/{self.cfg.get('run', '')}",
            unit="step",
            mininterval=0.5 if is_tty else 30.0,
            ascii=not is_tty,
            dynamic_ncols=is_tty,
        )
        try:
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                if self._resume_rng is None:
                    torch.manual_seed(derive_seed(self.seed, "dropout"))
                else:
                    torch.set_rng_state(self._resume_rng[0].cpu())
                    if self._resume_rng[1] is not None:
                        torch.cuda.set_rng_state_all(self._resume_rng[1])
                step = self._loop(step, bar)
        finally:
            bar.close()
        # Marked finished: an interruption from here on resumes the assembly only.
        self._save_resume(step, finished=True)

    def _loop(self, step: int, bar: tqdm) -> int:
        self.model.train()
        if step in self.rec_set and step > self.counts.recorded_through:
            self._record(step)
            self._save_resume(step)
        every_s = float(self.rec["resume_every_s"])
        while step < self.total:
            epoch, start_batch = divmod(step, self.spe)
            batches: Any
            if self.split is not None:
                batches = self._paired_batches(epoch, start_batch)
            else:
                order = np.random.default_rng(derive_seed(self.seed, "order", epoch)).permutation(len(self.data.train))
                batches = self.data.train.batches(
                    order,
                    int(self.tr["batch_size"]),
                    augment=bool(self.cfg["data"].get("augment", False)),
                    seed=derive_seed(self.seed, "augment"),
                    epoch=epoch,
                    start_batch=start_batch,
                    num_workers=int(self.tr.get("num_workers", 0)),
                    drop_last=bool(self.tr["drop_last"]),
                )
            for batch in batches:
                value = self._train_step(step, *batch)
                step += 1
                bar.update(1)
                if not math.isfinite(value):
                    if self._diverged(step, value):
                        return step
                if step in self.rec_set:
                    self._record(step)
                    self._save_resume(step)
                    bar.set_postfix(train_acc=f"{self._last_metric('train_acc'):.3f}", test_acc=f"{self._last_metric('test_acc'):.3f}")
                elif time.monotonic() - self._last_save > every_s:
                    self._save_resume(step)
                if step >= self.total or step % self.spe == 0:
                    break
        return step

    def _gate_accuracy(self) -> float:
        """Accuracy on the whole test split in eval mode (the gate m of paper 003)."""
        was_training = self.model.training
        self.model.eval()
        try:
            return self._evaluate("test", np.arange(len(self.data.test)))[1]
        finally:
            self.model.train(was_training)

    def _paired_batches(self, epoch: int, start_batch: int) -> Any:
        """Paper 003: (x_train, y_train, x_test, y_test) per step, paired by batch index.

        The gate (test accuracy at the start of the epoch) is fixed first. Without
        ``objective.shuffle`` both splits are read in order every epoch (the author's code);
        with it, each split follows its own seeded per-epoch permutation. Steps per epoch =
        the shorter split's batch count.
        """
        assert self.split is not None
        self.split.begin_epoch(epoch, epoch * self.spe, self._gate_accuracy)
        n_tr, n_te = len(self.data.train), len(self.data.test)
        if self.tr["objective"]["shuffle"]:
            order_tr = np.random.default_rng(derive_seed(self.seed, "order", epoch)).permutation(n_tr)
            order_te = np.random.default_rng(derive_seed(self.seed, "test-order", epoch)).permutation(n_te)
        else:
            order_tr, order_te = np.arange(n_tr), np.arange(n_te)
        common = {
            "epoch": epoch,
            "start_batch": start_batch,
            "num_workers": int(self.tr.get("num_workers", 0)),
            "drop_last": bool(self.tr["drop_last"]),
        }
        train = self.data.train.batches(
            order_tr,
            int(self.tr["batch_size"]),
            augment=bool(self.cfg["data"].get("augment", False)),
            seed=derive_seed(self.seed, "augment"),
            **common,
        )
        test = self.data.test.batches(order_te, self.test_bs, augment=False, seed=derive_seed(self.seed, "augment"), **common)
        for (x, y), (x_te, y_te) in zip(train, test):
            yield x, y, x_te, y_te

    def _last_metric(self, name: str) -> float:
        return float(self.writer.last_metrics.get(name, float("nan")))


def train_run(
    cfg: Mapping[str, Any],
    out_dir: Path | str,
    *,
    device: str | None = None,
    data: Data | None = None,
    force: bool = False,
    threads: int | None = None,
) -> Path:
    """Train one run with recording; return the path of the published ``run.h5``.

    Parameters
    ----------
    cfg : mapping
        A validated run configuration (:func:`gendyn.config.validate_run`).
    out_dir : path
        The run directory; receives ``config.yaml``, ``run.h5``, ``checkpoints.h5``.
    device : str, optional
        Overrides ``training.device``.
    data : Data, optional
        Preloaded data (tests); loaded from ``cfg["data"]`` otherwise.
    force : bool
        Retrain even if a complete ``run.h5`` of the same configuration exists.
    threads : int, optional
        Torch CPU threads while training (restored afterwards). None: the count an interrupted
        attempt recorded, else :data:`DEFAULT_THREADS`. Recorded in ``run.h5`` (``threads``).

    Raises
    ------
    TrainingDiverged
        On a non-finite loss with ``on_divergence: stop``.
    ResumeMismatch
        If an interrupted attempt used another thread count than ``threads`` (or another device).
    gendyn.locks.LockHeld
        At once, if another process trains into ``out_dir``.
    gendyn.store.StoreError
        If a file cannot be written (full disk, read-only directory), naming it.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise store.StoreError(f"{out}: cannot create the run directory ({e.strerror or e})") from None
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads: {threads} is invalid; give 1 or more torch threads")
    with exclusive(out, "gendyn train", directory=True):
        return _train_locked(cfg, out, device=device, data=data, force=force, threads=threads)


def _complete(out: Path, cfg: Mapping[str, Any]) -> bool:
    """Whether ``out`` holds a published, verified run of this configuration (both files)."""
    final, ckpt = out / store.RUN_FILE, out / store.CHECKPOINT_FILE
    if not final.exists():
        return False
    try:
        attrs = store.check_run_file(final)
        if attrs.get("config_hash") != config_hash(cfg):
            logger.info("%s belongs to another configuration; training this one", final)
            return False
        store.verify_file(final, fmt=store.FORMAT, missing_ok=True)
        store.verify_file(ckpt, fmt=store.CHECKPOINT_FORMAT, missing_ok=True)
    except store.StoreError as e:
        logger.warning("%s; it is rebuilt", e)
        return False
    return True


def _train_locked(
    cfg: Mapping[str, Any], out: Path, *, device: str | None, data: Data | None, force: bool, threads: int | None
) -> Path:
    final = out / store.RUN_FILE
    # Temporary files of a writer that was killed (we hold the lock: none is live).
    for d in (out, out / "run.partial", out / "checkpoints.partial"):
        store.remove_orphans(d)
    if not force and _complete(out, cfg):
        # A kill after publishing may have left the staged state behind.
        (out / store.RESUME_FILE).unlink(missing_ok=True)
        for d in ("run.partial", "checkpoints.partial"):
            shutil.rmtree(out / d, ignore_errors=True)
        logger.info("%s is complete for this configuration; nothing to do (use --force to retrain)", final)
        return final
    # A final file from an older configuration, or a damaged one, must not survive next to new
    # partial files; the staged records (if any) rebuild both.
    for name in (store.RUN_FILE, store.CHECKPOINT_FILE):
        (out / name).unlink(missing_ok=True)
    cfg_path = out / store.CONFIG_FILE
    if not cfg_path.exists():
        write_run_config(cfg, cfg_path)
    dev = resolve_device(device or cfg["training"]["device"], key="training.device")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    trainer = _Trainer(cfg, out, device=dev, data=data, threads=threads)
    logger.info(
        "training %s/%s on %s: %d steps (%d per epoch), %d record points, %d recording sites",
        cfg.get("experiment", ""),
        cfg.get("run", ""),
        dev,
        trainer.total,
        trainer.spe,
        len(trainer.rec_steps),
        len(trainer.layers),
    )
    saved_threads = torch.get_num_threads()
    try:
        trainer.run()
    finally:
        for w in (getattr(trainer, "writer", None), getattr(trainer, "ckpt", None)):
            if w is not None:
                w.close()
        if torch.get_num_threads() != saved_threads:
            torch.set_num_threads(saved_threads)
    return final
