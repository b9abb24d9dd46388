"""Where and how a job computes: device, seeds, threads, eval mode and progress bars.

Every stage (training and analyses) takes these from here, so a rule about them is written
once: ``auto`` devices, the seed of one purpose of a run, the torch thread count of a job, a
model put in eval mode for a measurement and restored after, and progress bars that stay out
of non-interactive logs (Slurm, Snakemake).

Nothing here reads configuration files or touches the global random state.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import zlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily: the CLI and Snakemake import this module
    import torch
    from torch import nn

__all__ = ["derive_seed", "resolve_device", "cuda_numerics", "set_threads", "eval_mode", "progress", "model_device_dtype", "on_device"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def derive_seed(seed: int, purpose: str, *extra: int) -> int:
    """An independent 63-bit seed for one purpose (``"init"``, ``"lc-points"``, ...) of a run.

    Parameters
    ----------
    seed : int
        The run's seed (``training.seed``).
    purpose : str
        What the seed is for; different purposes give independent streams.
    *extra : int
        Further integers mixed in (e.g. an epoch or a point index).

    Returns
    -------
    int in [0, 2**63).
    """
    ss = np.random.SeedSequence([int(seed), zlib.crc32(purpose.encode()), *map(int, extra)])
    lo, hi = (int(v) for v in ss.generate_state(2, dtype=np.uint32))
    return (lo | (hi << 32)) & ((1 << 63) - 1)


def resolve_device(name: str | None, *, key: str = "device") -> torch.device:
    """``"auto"`` (or None) → CUDA when available, else CPU; ``"cuda"`` without CUDA is an error.

    Parameters
    ----------
    name : {"auto", "cpu", "cuda", "cuda:N"} or None
    key : str
        The config key the value came from, for the error message (``training.device``,
        ``analyses.lc.device``, ...).

    Raises
    ------
    ValueError
        ``cuda`` requested on a machine without CUDA (names ``key`` and the fix).
    """
    import torch

    if name in (None, "auto"):
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(name)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{key}: {name!r} requested but CUDA is not available on this machine; use 'auto' or 'cpu'")
    if dev.type == "cuda":
        cuda_numerics()
    return dev


def cuda_numerics() -> dict[str, Any]:
    """Full-precision, deterministic CUDA kernels for this process; returns the settings applied.

    Every job that computes on a GPU goes through :func:`resolve_device`, which calls this:

    * float32 matrix products and cuDNN convolutions in IEEE float32, not TF32. PyTorch's default
      lets cuDNN convolutions use TF32 on Ampere and newer GPUs (A100, H100): a 10-bit mantissa
      that flips ReLU masks near zero and swamps the differences exact local elasticity takes
      (``w+ - w`` changes of the logits) -- results would differ from the CPU's far beyond rounding;
    * ``cudnn.deterministic = True`` and ``cudnn.benchmark = False``: the same convolution
      algorithms in every run, so a rerun (or a resumed run) repeats its numbers.

    Notes
    -----
    Atomic-add kernels (some backward passes of pooling and indexing) stay nondeterministic;
    ``torch.use_deterministic_algorithms`` is not set because it makes such models fail.
    """
    import torch

    backends = torch.backends
    if hasattr(backends.cudnn, "conv") and hasattr(backends.cudnn.conv, "fp32_precision"):
        backends.cuda.matmul.fp32_precision = "ieee"
        backends.cudnn.conv.fp32_precision = "ieee"
        if hasattr(backends.cudnn, "rnn"):
            backends.cudnn.rnn.fp32_precision = "ieee"
    else:  # pragma: no cover - torch < 2.9
        backends.cuda.matmul.allow_tf32 = False
        backends.cudnn.allow_tf32 = False
    backends.cudnn.deterministic = True
    backends.cudnn.benchmark = False
    return {
        "matmul_tf32": _tf32(backends.cuda.matmul),
        "cudnn_conv_tf32": _tf32(getattr(backends.cudnn, "conv", backends.cudnn)),
        "cudnn_deterministic": bool(backends.cudnn.deterministic),
        "cudnn_benchmark": bool(backends.cudnn.benchmark),
    }


def _tf32(backend: Any) -> bool:
    if hasattr(backend, "fp32_precision"):
        return backend.fp32_precision == "tf32"
    return bool(getattr(backend, "allow_tf32", False))  # pragma: no cover - torch < 2.9


def set_threads(threads: int | None) -> None:
    """Set torch's intra-op CPU threads of this process (None or < 1: leave torch's default)."""
    if threads is None or int(threads) < 1:
        return
    import torch

    if torch.get_num_threads() != int(threads):
        torch.set_num_threads(int(threads))


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and restore every submodule's own mode afterwards
    (mixed flags, e.g. a Dropout left in eval mode inside a model in train mode, come back as they were)."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


def progress(iterable: Iterable[T], desc: str, *, total: int | None = None, unit: str = "record") -> Iterable[T]:
    """A ``tqdm`` bar over ``iterable`` on stderr, disabled when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=not sys.stderr.isatty())


def describe_threads() -> dict[str, Any]:
    """Thread settings of this process (for logs and result attributes)."""
    import torch

    return {"torch_threads": int(torch.get_num_threads()), "torch_interop_threads": int(torch.get_num_interop_threads())}


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of ``model`` (its first floating parameter or buffer)."""
    import torch

    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def on_device(model: nn.Module, device: str | torch.device | None) -> tuple[nn.Module, torch.device, torch.dtype]:
    """``model`` on ``device`` (a copy when it lives elsewhere; None: where it is), its device and dtype."""
    import copy

    import torch

    mdev, dtype = model_device_dtype(model)
    if device is None:
        return model, mdev, dtype
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' requested but CUDA is not available; pass device='cpu'")
    if dev.type == "cuda":
        cuda_numerics()
    if dev.type == mdev.type and (dev.index is None or dev.index == mdev.index):
        return model, mdev, dtype
    logger.debug("copying the model from %s to %s", mdev, dev)
    return copy.deepcopy(model).to(dev), dev, dtype
