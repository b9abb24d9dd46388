"""The per-step training strategy of a run with ``training.objective`` (paper 003).

:class:`SplitTraining` is what :mod:`gendyn.train` calls for such runs: paired train/test
batches, the per-epoch gate (test accuracy fixed at the start of each epoch), the
concatenated or separate forwards, the first-layer weight-gradient norm and the per-epoch
sums written to ``/metrics``. The losses themselves are :mod:`gendyn.memorization.objectives`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from gendyn.memorization.objectives import Objective, objective_from_config

__all__ = ["SplitTraining", "has_batchnorm", "first_weight"]

logger = logging.getLogger(__name__)


def has_batchnorm(model: nn.Module) -> bool:
    """True if any module is a BatchNorm (then train and test batches need separate forwards)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def first_weight(model: nn.Module) -> tuple[str, nn.Parameter]:
    """The first weight matrix/kernel (``ndim >= 2``) in registration order, e.g. ``conv1.weight``.

    Paper 003 Sec. 4 tracks the Frobenius norm of its gradient ("the first weight layer").
    """
    for name, p in model.named_parameters():
        if p.ndim >= 2 and p.requires_grad:
            return name, p
    raise ValueError("model has no trainable weight with ndim >= 2; cannot track the first-layer gradient norm")


@dataclass
class _Sums:
    n_steps: int = 0
    coef: float = 0.0
    l_train: float = 0.0
    l_test: float = 0.0
    n_test: int = 0
    gn: float = 0.0
    gn_last: float = float("nan")


@dataclass
class SplitTraining:
    """Per-step strategy of a run with ``training.objective`` (used by :mod:`gendyn.train`).

    Per epoch: :meth:`begin_epoch` fixes the gate accuracy m (test accuracy of the model at
    the start of the epoch, eval mode, whole test split) and the split coefficient s; per
    step: :meth:`loss` forwards the paired batches and returns the objective, and
    :meth:`after_backward` adds the step's terms and the first-weight gradient norm to the
    sums that :meth:`metrics_row` turns into ``/metrics`` columns at a record point.

    Forwards (spec: ``s == 0`` and no ``keep_test_forward`` -> train batch only; no BatchNorm
    -> one forward of the concatenated batch, split afterwards; BatchNorm -> two forwards so
    each batch is normalised by its own statistics).

    Attributes
    ----------
    objective : Objective
    keep_test_forward : bool
        Forward the test batch even when s == 0 (the author's code did).
    n_classes : int
    """

    objective: Objective
    keep_test_forward: bool
    n_classes: int
    batchnorm: bool = False
    weight_name: str = ""
    epoch: int = -1
    m: float = float("nan")
    s: int = 0
    cache: tuple[int, float] | None = None
    sums: _Sums = field(default_factory=_Sums)
    _weight: nn.Parameter | None = None

    #: Columns this strategy adds to ``/metrics``.
    METRICS: ClassVar[tuple[str, ...]] = (
        "gate_acc",
        "split_coef",
        "L_train_term",
        "L_test_term",
        "gap",
        "gradnorm_first_weight",
        "gradnorm_first_weight_mean",
    )

    @classmethod
    def from_config(cls, objective_cfg: Mapping[str, Any], model_cfg: Mapping[str, Any], n_classes: int) -> SplitTraining:
        """Build from ``training.objective`` and check it against ``model.softmax_head``.

        Raises
        ------
        ValueError
            If ``loss_mode`` and ``model.softmax_head`` disagree (the message says which to set).
        """
        obj = objective_from_config(objective_cfg)
        head = bool(model_cfg.get("softmax_head", False))
        if obj.loss_mode == "double_softmax" and not head:
            raise ValueError(
                "training.objective.loss_mode: 'double_softmax' needs a model with a softmax head; "
                "set model.softmax_head: true (or loss_mode: logits)"
            )
        if obj.loss_mode == "logits" and head:
            raise ValueError(
                "training.objective.loss_mode: 'logits' with model.softmax_head: true would apply softmax twice; "
                "set loss_mode: double_softmax (the paper's faithful mode) or model.softmax_head: false"
            )
        keep = objective_cfg.get("keep_test_forward")
        keep = obj.loss_mode == "double_softmax" if keep is None else bool(keep)
        return cls(objective=obj, keep_test_forward=keep, n_classes=int(n_classes))

    def bind(self, model: nn.Module) -> None:
        """Attach the model: BatchNorm detection and the tracked first weight."""
        self.batchnorm = has_batchnorm(model)
        self.weight_name, self._weight = first_weight(model)

    # -- gate
    def note_test_acc(self, step: int, acc: float) -> None:
        """Remember the whole-test-split accuracy evaluated at ``step`` (reused by the gate)."""
        self.cache = (int(step), float(acc))

    def begin_epoch(self, epoch: int, step: int, evaluate: Any) -> None:
        """Fix m and s for ``epoch`` (0-based) starting at ``step``.

        ``evaluate()`` returns the whole-test-split accuracy of the current model; it is
        called only when the accuracy at ``step`` is not cached and the epoch has no gate yet
        (a run resumed mid-epoch keeps the restored gate).
        """
        if epoch == self.epoch:
            return
        needs_gate = self.objective.name in ("J0", "Jt")
        if self.cache is not None and self.cache[0] == step:
            m = self.cache[1]
        elif needs_gate:
            m = float(evaluate())
            self.cache = (int(step), m)
        else:
            m = float("nan")
        self.epoch, self.m, self.s = int(epoch), m, self.objective.coef(m)
        logger.debug("epoch %d: gate accuracy %.4f -> split coefficient %d", epoch + 1, m, self.s)

    # -- step
    def loss(
        self,
        model: nn.Module,
        x_tr: torch.Tensor,
        y_tr: torch.Tensor,
        x_te: torch.Tensor,
        y_te: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Forward the paired batches; return the objective and its detached terms."""
        obj = self.objective
        if self.s == 0 and not self.keep_test_forward:
            return obj(model(x_tr), y_tr, None, None, self.m)
        if not self.batchnorm:
            out = model(torch.cat([x_tr, x_te]))
            b = x_tr.shape[0]
            return obj(out[:b], y_tr, out[b:], y_te, self.m)
        return obj(model(x_tr), y_tr, model(x_te), y_te, self.m)

    def after_backward(self, terms: Mapping[str, Any]) -> None:
        """Add one finished step (after ``loss.backward()``, before the optimiser step)."""
        s = self.sums
        s.n_steps += 1
        s.coef += float(terms["split_coef"])
        s.l_train += float(terms["L_train_term"])
        if terms["L_test_term"] is not None:
            s.l_test += float(terms["L_test_term"])
            s.n_test += 1
        grad = None if self._weight is None else self._weight.grad
        gn = float(torch.linalg.vector_norm(grad.detach().to(torch.float64))) if grad is not None else float("nan")
        s.gn += gn
        s.gn_last = gn

    def metrics_row(self, train_acc: float, test_acc: float, *, initial: bool) -> dict[str, float]:
        """``/metrics`` columns at a record point; resets the sums.

        ``gate_acc`` is m of the epoch of the last step (NaN at step 0); ``split_coef``,
        ``L_train_term``, ``L_test_term`` and ``gradnorm_first_weight_mean`` are means over the
        steps since the previous record point (one epoch with per-epoch recording);
        ``gradnorm_first_weight`` is the norm after the last backward before the record.
        """
        s = self.sums
        nan = float("nan")
        row = {
            "gate_acc": nan if initial else self.m,
            "split_coef": s.coef / s.n_steps if s.n_steps else nan,
            "L_train_term": s.l_train / s.n_steps if s.n_steps else nan,
            "L_test_term": s.l_test / s.n_test if s.n_test else nan,
            "gap": float(train_acc) - float(test_acc),
            "gradnorm_first_weight": s.gn_last if s.n_steps else nan,
            "gradnorm_first_weight_mean": s.gn / s.n_steps if s.n_steps else nan,
        }
        self.sums = _Sums()
        return row

    # -- resume
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit-identically (plain Python values)."""
        return {"epoch": self.epoch, "m": self.m, "s": self.s, "cache": self.cache, "sums": dict(self.sums.__dict__)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epoch, self.m, self.s = int(state["epoch"]), float(state["m"]), int(state["s"])
        self.cache = None if state["cache"] is None else (int(state["cache"][0]), float(state["cache"][1]))
        self.sums = _Sums(**state["sums"])
