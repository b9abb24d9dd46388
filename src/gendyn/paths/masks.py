"""ReLU masks recomputed with BatchNorm batch statistics (option ``record_bn: batch``, paper 000).

The masks recorded during training come from the eval-mode forward (BatchNorm running
statistics). With ``record_bn: batch`` the paths analysis recomputes them from the checkpoints,
every BatchNorm layer normalising by the statistics of the tracked set itself.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

__all__ = ["batch_stat_masks"]

logger = logging.getLogger(__name__)


def batch_stat_masks(model: Any, x: Any, *, batch_size: int | None = None) -> dict[str, np.ndarray]:
    """ReLU masks with BatchNorm using the batch statistics of ``x`` (option ``record_bn: batch``).

    Every BatchNorm layer normalises with the mean/variance of the tracked set (one batch
    of ``len(x)`` images unless ``batch_size``); dropout stays off. Running statistics,
    ``model.training`` and the modules' modes are restored afterwards.

    Parameters
    ----------
    model : torch.nn.Module
    x : (N, ...) tensor of tracked inputs
    batch_size : int, optional

    Returns
    -------
    dict layer name -> (N, ceil(D/8)) uint8 masks packed little-endian (pre-activation > 0).
    """
    import torch
    from torch import nn

    from gendyn.record import layer_name, packbits

    bn_types = (nn.modules.batchnorm._BatchNorm,)
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    modes = {name: mod.training for name, mod in model.named_modules()}
    found: dict[str, list[torch.Tensor]] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ReLU):
            hooks.append(
                mod.register_forward_hook(
                    lambda m_, i_, o_, n_=layer_name(name): found.setdefault(n_, []).append(packbits((o_ > 0).flatten(1)).cpu())
                )
            )
    try:
        model.eval()
        for mod in model.modules():
            if isinstance(mod, bn_types):
                mod.train()
        bs = len(x) if batch_size is None else int(batch_size)
        with torch.no_grad():
            for i in range(0, len(x), bs):
                model(x[i : i + bs])
    finally:
        for h in hooks:
            h.remove()
        model.load_state_dict(saved)
        for name, mod in model.named_modules():
            mod.training = modes[name]
    return {k: torch.cat(v).numpy() for k, v in found.items()}
