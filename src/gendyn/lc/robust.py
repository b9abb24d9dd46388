"""Adversarial robustness over training: l-infinity PGD (paper 001 code, delayed robustness)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gendyn.lc.complexity import model_logits
from gendyn.runtime import eval_mode, on_device

__all__ = ["pgd_attack", "robust_accuracy"]


def pgd_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int,
    lo: float,
    hi: float,
) -> torch.Tensor:
    """l-infinity PGD without random start: ``steps`` signed-gradient ascent steps on the
    cross-entropy of the logits, each followed by projection onto the eps-ball around x and
    clamping to [lo, hi] (paper 001 code; Madry et al. 2018).

    Parameters
    ----------
    model : nn.Module
        Used as is (call in eval mode); parameter gradients are not touched.
    x : (N, *input_shape) tensor, in the model's input units
    y : (N,) int64 labels
    eps, alpha : float
        Radius and step size, in input units.
    steps : int
    lo, hi : float
        Valid input range (min/max of the preprocessed data).

    Returns
    -------
    (N, *input_shape) adversarial inputs, detached.
    """
    if eps < 0 or alpha < 0 or steps < 0:
        raise ValueError(f"pgd: eps={eps}, alpha={alpha}, steps={steps} must be >= 0")
    x = x.detach()
    x_adv = x.clone()
    for _ in range(int(steps)):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(model_logits(model, x_adv), y, reduction="sum")
            (g,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach() + alpha * g.sign()
        x_adv = torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp_(lo, hi)
    return x_adv.detach()


def robust_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int = 500,
    device: str | torch.device | None = None,
    **attack: float,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Clean and PGD-robust accuracy of ``model`` on (x, y) (paper 001 code, robustness probe).

    ``attack`` holds :func:`pgd_attack`'s keywords (``eps``, ``alpha``, ``steps``, ``lo``, ``hi``);
    batches of ``batch_size`` points run on ``device`` (default: the model's).

    Returns
    -------
    robust_acc : float
        Fraction of points still classified correctly after :func:`pgd_attack`.
    correct_clean : (N,) bool
    correct_robust : (N,) bool
    """
    model, dev, dtype = on_device(model, device)
    clean, robust = [], []
    with eval_mode(model):
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(dev, dtype)
            yb = y[i : i + batch_size].to(dev)
            with torch.no_grad():
                clean.append((model_logits(model, xb).argmax(1) == yb).cpu().numpy())
            xa = pgd_attack(model, xb, yb, **attack)
            with torch.no_grad():
                robust.append((model_logits(model, xa).argmax(1) == yb).cpu().numpy())
    rc = np.concatenate(robust) if robust else np.zeros(0, dtype=bool)
    return float(rc.mean()) if len(rc) else float("nan"), np.concatenate(clean) if clean else rc, rc
