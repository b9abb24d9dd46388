"""Recording: when to record (schedules), and what (ReLU masks on named ``nn.ReLU`` sites).

Deciding *when* to record is a pure function of the step (:func:`record_steps`); *what* is
collected is done by :class:`Recorder`, a context manager that registers forward pre-hooks
on every ``nn.ReLU`` module, bit-packs ``input > 0`` on the model's device, and removes its
hooks on exit. It only collects: storing is :mod:`gendyn.store`'s job.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from gendyn.sites import find_sites, site_name
from gendyn.store import LayerInfo

__all__ = [
    "record_steps",
    "saves_checkpoint",
    "packbits",
    "unpackbits",
    "Recorder",
    "relu_layers",
    "layer_name",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- schedules


def _lc_schedule(total: int, freq: int | None) -> list[int]:
    """Paper 001's schedule: dense early, then every ``freq`` steps."""
    freq = freq or max(1, math.ceil(total / 150))
    out = []
    for s in range(total + 1):
        if (
            s < 30
            or (s < 150 and s % 10 == 0)
            or (s < 1000 and s % 100 == 0)
            or (s < 10000 and s % 1000 == 0)
            or s % freq == 0
        ):
            out.append(s)
    return out


def record_steps(schedule: Mapping[str, Any], total_steps: int, steps_per_epoch: int) -> np.ndarray:
    """Sorted unique optimisation steps at which to record.

    A record at step ``s`` is taken after ``s`` updates (``s = 0``: the initial model).

    Parameters
    ----------
    schedule : mapping
        ``recording.schedule`` of a run config: ``kind`` in {epoch, steps, log, list, lc} with
        ``every``, ``n``, ``steps``, ``freq``, ``include_init``, ``include_final``.
    total_steps, steps_per_epoch : int

    Returns
    -------
    (R,) int64 array of steps in ``[0, total_steps]``.
    """
    kind = schedule.get("kind", "epoch")
    every = int(schedule.get("every", 1))
    if kind == "epoch":
        steps = list(range(0, total_steps + 1, every * steps_per_epoch))
    elif kind == "steps":
        steps = list(range(0, total_steps + 1, every))
    elif kind == "log":
        n = int(schedule.get("n", 50))
        steps = sorted(set(np.unique(np.round(np.logspace(0, math.log10(max(total_steps, 1)), n))).astype(int).tolist()))
    elif kind == "list":
        bad = [s for s in schedule.get("steps", []) if s > total_steps]
        if bad:
            raise ValueError(f"recording.schedule.steps: {bad} exceed the run's {total_steps} steps")
        steps = list(schedule.get("steps", []))
    elif kind == "lc":
        steps = _lc_schedule(total_steps, schedule.get("freq"))
    else:
        raise ValueError(f"recording.schedule.kind: {kind!r} is not one of epoch, steps, log, list, lc")
    s = set(int(x) for x in steps)
    if schedule.get("include_init", True):
        s.add(0)
    else:
        s.discard(0)
    if schedule.get("include_final", True):
        s.add(total_steps)
    return np.array(sorted(s), dtype=np.int64)


def saves_checkpoint(recording: Mapping[str, Any], k: int, step: int, total_steps: int) -> bool:
    """Whether record point ``k`` (0-based, at ``step``) saves the weights into ``checkpoints.h5``.

    Every ``recording.checkpoint_every``-th record point when ``recording.checkpoints`` is on, and
    always the final one.
    """
    return (bool(recording.get("checkpoints", True)) and k % int(recording.get("checkpoint_every", 1)) == 0) or (
        int(step) == int(total_steps)
    )


# --------------------------------------------------------------------------- bit packing


_BIT_WEIGHTS: dict[torch.device, torch.Tensor] = {}


def packbits(mask: torch.Tensor) -> torch.Tensor:
    """Pack a boolean (N, D) tensor along D into (N, ceil(D/8)) uint8, little bit order.

    Equals ``numpy.packbits(mask, axis=1, bitorder="little")`` and runs on the tensor's
    device; padding bits are zero.
    """
    n, d = mask.shape
    pad = (-d) % 8
    m = mask.to(torch.uint8)
    if pad:
        m = torch.nn.functional.pad(m, (0, pad))
    w = _BIT_WEIGHTS.get(m.device)
    if w is None:
        w = _BIT_WEIGHTS[m.device] = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8, device=m.device)
    # Sum of distinct powers of two < 256 cannot overflow uint8.
    return (m.view(n, -1, 8) * w).sum(dim=2, dtype=torch.uint8)


def unpackbits(packed: np.ndarray, n_units: int) -> np.ndarray:
    """Inverse of :func:`packbits` on numpy arrays: (..., B) uint8 -> (..., n_units) bool."""
    return np.unpackbits(packed, axis=-1, count=n_units, bitorder="little").astype(bool)


# --------------------------------------------------------------------------- sites


#: Stored name of a recording site (module path with dots as underscores).
layer_name = site_name


def relu_layers(model: nn.Module, example: torch.Tensor) -> list[LayerInfo]:
    """Recording sites of ``model`` in forward order, with their unit shapes.

    Runs one eval-mode forward of ``example`` (a batch of at least one input) with hooks
    (:func:`gendyn.sites.find_sites`); every ``nn.ReLU`` module is a site.

    Raises
    ------
    ValueError
        If the model has no ``nn.ReLU`` module or one module fires twice per forward.
    """
    if not any(isinstance(m, nn.ReLU) for m in model.modules()):
        raise ValueError(f"{type(model).__name__} has no nn.ReLU modules: nothing to record")
    sites = find_sites(model, example, lambda m: "relu" if isinstance(m, nn.ReLU) else None, what="nn.ReLU module")
    return [LayerInfo(s.name, s.module, s.unit_shape) for s in sites]


class Recorder:
    """Collect bit-packed ReLU masks (and optionally pre-activations) of forwards.

    Use as a context manager around eval forwards; hooks are removed on exit::

        with Recorder(model, layers) as rec:
            for xb in batches:
                model(xb)
        packed = rec.result()   # {layer: (N, n_bytes) uint8 numpy}

    Parameters
    ----------
    model : nn.Module
    layers : sequence of LayerInfo
        From :func:`relu_layers`.
    masks : bool
        Collect ``input > 0`` bit-packed on the device.
    activations : {None, "float16", "float32"}
        Also collect the ReLU inputs in this dtype.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[LayerInfo],
        *,
        masks: bool = True,
        activations: str | None = None,
    ) -> None:
        self.model = model
        self.layers = list(layers)
        self.masks = masks
        self.act_dtype = {None: None, "float16": torch.float16, "float32": torch.float32}[activations]
        self._packed: dict[str, list[torch.Tensor]] = {}
        self._acts: dict[str, list[torch.Tensor]] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> Recorder:
        modules = dict(self.model.named_modules())
        for lay in self.layers:
            self._packed[lay.name] = []
            self._acts[lay.name] = []
            self._handles.append(modules[lay.module].register_forward_pre_hook(self._hook(lay.name)))
        return self

    def _hook(self, name: str):
        def hook(_mod: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            z = inputs[0].detach()
            flat = z.reshape(z.shape[0], -1)
            if self.masks:
                self._packed[name].append(packbits(flat > 0))
            if self.act_dtype is not None:
                self._acts[name].append(flat.to(self.act_dtype))

        return hook

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _gather(self, store: dict[str, list[torch.Tensor]]) -> dict[str, np.ndarray]:
        # The one place where recorded tensors leave the device.
        out = {k: torch.cat(v).cpu().numpy() for k, v in store.items() if v}
        for v in store.values():
            v.clear()
        return out

    def result(self) -> tuple[dict[str, np.ndarray] | None, dict[str, np.ndarray] | None]:
        """(packed masks, activations) collected since the last call, as numpy arrays."""
        packed = self._gather(self._packed) if self.masks else None
        acts = self._gather(self._acts) if self.act_dtype is not None else None
        return packed, acts


def iter_batches(x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for i in range(0, len(x), batch_size):
        yield x[i : i + batch_size]
