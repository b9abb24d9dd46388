"""Gradient-splitting objectives of paper 003 (Badger, "Why deep learning generalizes").

Every objective of the paper is ``loss = L_train + s * L_test`` with a split coefficient
``s in {-1, 0, +1}``, so its gradient is ``grad L_train + s * grad L_test`` ("gradient
splitting"):

========  ============  =========================================================
paper     ``name``      split coefficient ``s`` from the gate accuracy ``m``
========  ============  =========================================================
J  (3)    ``"J"``       0
J' (1)    ``"J_prime"`` -1
J0 (4)    ``"J0"``      -1 if m > k else 0 (``gate="ge"``: -1 if m >= k)
Jt (5)    ``"Jt"``      -1 if m > u; +1 if m < l; 0 if l <= m <= u
========  ============  =========================================================

``m`` is the accuracy on the whole test split (eval mode, no gradient), evaluated once at
the start of every epoch and held for its steps (paper Fig. 2 caption); the per-step
strategy that evaluates it is :class:`gendyn.memorization.training.SplitTraining`.
Pure functions on model outputs: no files, no configuration files.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

__all__ = [
    "OBJECTIVE_NAMES",
    "LOSS_MODES",
    "GATES",
    "Objective",
    "objective",
    "objective_from_config",
    "faithful_loss_floor",
]

logger = logging.getLogger(__name__)

ObjectiveName = Literal["J", "J_prime", "J0", "Jt"]
LossMode = Literal["logits", "double_softmax"]
Gate = Literal["gt", "ge"]

#: Objective names (paper eqs. 3, 1, 4, 5).
OBJECTIVE_NAMES: tuple[str, ...] = ("J", "J_prime", "J0", "Jt")
#: ``logits`` = corrected cross-entropy on logits; ``double_softmax`` = the author's code.
LOSS_MODES: tuple[str, ...] = ("logits", "double_softmax")
#: Gate comparisons: ``gt`` = paper (m > k), ``ge`` = author's code (m >= k).
GATES: tuple[str, ...] = ("gt", "ge")


@dataclass(frozen=True)
class Objective:
    """One gradient-splitting objective (build it with :func:`objective`).

    Attributes
    ----------
    name : {"J", "J_prime", "J0", "Jt"}
    k : float
        J0 threshold on the test accuracy.
    l, u : float or None
        Jt lower and upper bound (``l <= u``).
    loss_mode : {"logits", "double_softmax"}
    test_ce_cap : float or None
        Explicit cap of the per-sample test loss (see :meth:`test_cap`).
    gate : {"gt", "ge"}
    """

    name: str
    k: float = 0.11
    l: float | None = None  # noqa: E741 - the paper's symbol
    u: float | None = None
    loss_mode: str = "logits"
    test_ce_cap: float | None = None
    gate: str = "gt"

    def coef(self, m: float) -> int:
        """Split coefficient ``s`` for gate accuracy ``m`` (fraction 0-1).

        Paper eqs. (1), (3)-(5): J -> 0, J' -> -1, J0 -> -1 if m > k (``gate="ge"``:
        m >= k) else 0, Jt -> -1 if m > u, +1 if m < l, else 0.
        """
        m = float(m)
        if self.name == "J":
            return 0
        if self.name == "J_prime":
            return -1
        if math.isnan(m):
            raise ValueError(f"objective {self.name}: gate accuracy m is NaN; evaluate the test split first")
        if self.name == "J0":
            return -1 if (m > self.k if self.gate == "gt" else m >= self.k) else 0
        assert self.l is not None and self.u is not None
        if m > self.u or (self.gate == "ge" and m >= self.u):
            return -1
        if m < self.l:
            return 1
        return 0

    def per_sample(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample loss ``l(out, y)``, shape (B,).

        ``F.cross_entropy(out, y)``: on logits z (``loss_mode="logits"``), or on the softmax
        probabilities p of a model with a softmax head (``"double_softmax"``:
        ``-p_y + log sum_j exp(p_j)``, softmax applied twice as in the author's code; range
        ``[log(e + C - 1) - 1, log(e + C - 1)]``, floor 1.4611502 for C = 10).

        Parameters
        ----------
        out : (B, C) float tensor
        y : (B,) int64 tensor
        """
        return F.cross_entropy(out, y, reduction="none")

    def test_cap(self, n_classes: int) -> float | None:
        """Cap of the per-sample test loss: ``test_ce_cap``, else 2 ln C in logits mode, else None."""
        if self.test_ce_cap is not None:
            return float(self.test_ce_cap)
        return 2.0 * math.log(n_classes) if self.loss_mode == "logits" else None

    def test_per_sample(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample loss of the test term, ``min(l, cap)`` (no gradient above the cap), shape (B,)."""
        loss = self.per_sample(out, y)
        cap = self.test_cap(int(out.shape[1]))
        return loss if cap is None else torch.clamp(loss, max=cap)

    def __call__(
        self,
        out_tr: torch.Tensor,
        y_tr: torch.Tensor,
        out_te: torch.Tensor | None,
        y_te: torch.Tensor | None,
        m: float,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """The objective on one train batch and one test batch.

        Parameters
        ----------
        out_tr, out_te : (B_tr, C), (B_te, C) float tensors
            Model outputs (logits, or probabilities with ``double_softmax``). ``out_te`` may be
            None when ``coef(m) == 0``.
        y_tr, y_te : (B_tr,), (B_te,) int64 tensors
        m : float
            Gate accuracy (the test accuracy at the start of the epoch).

        Returns
        -------
        loss : 0-d tensor
            ``L_train + s * L_test`` with L the batch means (the test term capped per sample,
            see :meth:`test_per_sample`); exactly ``L_train`` when ``s == 0``.
        terms : dict
            ``split_coef`` (int s), ``L_train_term`` and ``L_test_term`` (detached 0-d tensors;
            ``L_test_term`` is None without a test batch).
        """
        s = self.coef(m)
        l_tr = self.per_sample(out_tr, y_tr).mean()
        l_te = None
        if out_te is not None:
            if y_te is None:
                raise ValueError("objective: out_te given without y_te")
            l_te = self.test_per_sample(out_te, y_te).mean()
        elif s != 0:
            raise ValueError(f"objective {self.name}: split coefficient {s} needs a test batch (out_te is None)")
        loss = l_tr if s == 0 else l_tr + s * l_te  # type: ignore[operator]
        terms = {
            "split_coef": s,
            "L_train_term": l_tr.detach(),
            "L_test_term": None if l_te is None else l_te.detach(),
        }
        return loss, terms


def objective(
    name: ObjectiveName,
    *,
    k: float = 0.11,
    l: float | None = None,  # noqa: E741 - the paper's symbol
    u: float | None = None,
    loss_mode: LossMode = "logits",
    test_ce_cap: float | None = None,
    gate: Gate = "gt",
) -> Objective:
    """A gradient-splitting objective of paper 003 as a loss function.

    Parameters
    ----------
    name : {"J", "J_prime", "J0", "Jt"}
        Paper eq. (3), (1), (4), (5).
    k : float, default 0.11
        J0: split while the test accuracy m > k.
    l, u : float, optional
        Jt: split while m > u, add the test loss while m < l; required for Jt, ``l <= u``
        (the paper uses l = u = target).
    loss_mode : {"logits", "double_softmax"}, default "logits"
        ``logits`` (corrected): cross-entropy on logits, test term capped per sample at
        ``test_ce_cap`` (default 2 ln C) so that J' stays bounded. ``double_softmax``
        (faithful): cross-entropy applied to softmax outputs (model with a softmax head).
    test_ce_cap : float, optional
        Per-sample cap of the test term.
    gate : {"gt", "ge"}, default "gt"
        ``gt``: m > k (paper); ``ge``: m >= k (the author's code).

    Returns
    -------
    Objective
        Callable ``(out_tr, y_tr, out_te, y_te, m) -> (loss, terms)`` with ``.coef(m)`` and
        ``.per_sample(out, y)``.

    Raises
    ------
    ValueError
        Unknown name, loss mode or gate; Jt without bounds or with l > u; k, l, u outside
        [0, 1]; a non-positive cap.

    Examples
    --------
    >>> obj = objective("J0", k=0.11)
    >>> obj.coef(0.5), obj.coef(0.11), objective("J0", gate="ge").coef(0.11)
    (-1, 0, -1)
    """
    if name not in OBJECTIVE_NAMES:
        raise ValueError(f"objective name: {name!r} is not one of {', '.join(OBJECTIVE_NAMES)}")
    if loss_mode not in LOSS_MODES:
        raise ValueError(f"objective loss_mode: {loss_mode!r} is not one of {', '.join(LOSS_MODES)}")
    if gate not in GATES:
        raise ValueError(f"objective gate: {gate!r} is not one of {', '.join(GATES)}")
    for key, v in (("k", k), ("l", l), ("u", u)):
        if v is not None and not (0.0 <= float(v) <= 1.0):
            raise ValueError(f"objective {key}: {v!r} is outside [0, 1]; give an accuracy fraction")
    if name == "Jt":
        if l is None or u is None:
            raise ValueError(f"objective Jt: needs both bounds l and u (got l={l!r}, u={u!r}); set target for l = u")
        if float(l) > float(u):
            raise ValueError(f"objective Jt: l={l!r} > u={u!r}; the lower bound must not exceed the upper bound")
    if test_ce_cap is not None and not float(test_ce_cap) > 0:
        raise ValueError(f"objective test_ce_cap: {test_ce_cap!r} must be > 0 (or None for the default)")
    return Objective(
        name=name,
        k=float(k),
        l=None if l is None else float(l),
        u=None if u is None else float(u),
        loss_mode=loss_mode,
        test_ce_cap=None if test_ce_cap is None else float(test_ce_cap),
        gate=gate,
    )


def objective_from_config(cfg: Mapping[str, Any]) -> Objective:
    """:func:`objective` from a ``training.objective`` section (``target`` fills l and u)."""
    l, u, target = cfg.get("l"), cfg.get("u"), cfg.get("target")
    if target is not None:
        l = target if l is None else l
        u = target if u is None else u
    try:
        return objective(
            cfg.get("name", "J"),
            k=cfg.get("k", 0.11),
            l=l,
            u=u,
            loss_mode=cfg.get("loss_mode", "logits"),
            test_ce_cap=cfg.get("test_ce_cap"),
            gate=cfg.get("gate", "gt"),
        )
    except ValueError as e:
        raise ValueError(f"training.{e}") from None


def faithful_loss_floor(n_classes: int) -> float:
    """Smallest double-softmax loss, ``-log(e / (e + C - 1))`` (p = one-hot y); 1.4611502 for C = 10."""
    return -math.log(math.e / (math.e + n_classes - 1))
