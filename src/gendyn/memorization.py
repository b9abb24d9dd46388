"""Memorization via gradient splitting (paper 003, Badger: "Why deep learning generalizes").

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
the start of every epoch and held for its steps (paper Fig. 2 caption).

Pieces:

* :func:`objective` -- the loss functions (pure, on model outputs);
* :class:`SplitTraining` -- the per-step strategy that :mod:`gendyn.train` calls for runs with
  ``training.objective``: paired batches, the per-epoch gate, the concatenated / separate
  forwards, the first-layer weight-gradient norm and the per-epoch sums written to
  ``/metrics``;
* :func:`gaussian_noise`, :func:`mixture` -- the paper's noise inputs (the same draws as
  ``data.name: gaussian_noise`` / ``mixture``);
* :func:`epochs_to_threshold`, :func:`epoch_curves`, :func:`summarize` -- the experiment-level
  "epochs to threshold" table;
* :func:`basin_ratio_log10` -- the number of Fig. 3.

Nothing here opens files or reads configuration files; :mod:`gendyn.commands.memorization`
wires ``run.h5`` to these functions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn

__all__ = [
    "OBJECTIVE_NAMES",
    "LOSS_MODES",
    "GATES",
    "Objective",
    "objective",
    "objective_from_config",
    "faithful_loss_floor",
    "SplitTraining",
    "has_batchnorm",
    "first_weight",
    "gaussian_noise",
    "mixture",
    "epochs_to_threshold",
    "epoch_curves",
    "stack_epochs",
    "summarize",
    "basin_ratio_log10",
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


# --------------------------------------------------------------------------- objectives


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


# --------------------------------------------------------------------------- training strategy


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


# --------------------------------------------------------------------------- data


def gaussian_noise(shape: Sequence[int], seed: int, *, source: str = "cifar10", split: str = "train") -> torch.Tensor:
    """Fixed scaled Gaussian noise images, ``x = 0.5 + eps / 3``, eps ~ N(0, 1) iid, not clipped.

    The same draw as ``data.name: gaussian_noise`` with ``data.seed = seed``,
    ``data.base = source`` for that split (a CPU generator seeded by (seed, source, split),
    float32; move it to a device afterwards).

    Parameters
    ----------
    shape : sequence of int
        e.g. ``(N, 3, 32, 32)``.
    seed : int
    source, split : str
        The dataset the noise replaces and the split name.

    Returns
    -------
    (shape) float32 tensor: mean 0.5, std 1/3, 13.36 % of values outside [0, 1].
    Paper 003 Sec. 2, Fig. 2 ("fixed scaled Gaussian noise").
    """
    from gendyn.data import gaussian_noise_images

    return gaussian_noise_images(shape, seed=seed, source=source, split=split)


def mixture(x: torch.Tensor, f: float, seed: int, *, source: str = "cifar10", split: str = "train") -> torch.Tensor:
    """Noise/real mixture ``f * x + (1 - f) * noise`` (paper 003 Fig. 2b).

    Parameters
    ----------
    x : (N, C, H, W) float32 tensor
        Real images in [0, 1] (CPU).
    f : float
        Fraction of real signal in [0, 1]; ``f = 1`` returns ``x`` (a copy, bitwise equal),
        ``f = 0`` the noise.
    seed, source, split
        Select the noise draw (see :func:`gaussian_noise`); the same as ``data.name: mixture``.

    Returns
    -------
    (N, C, H, W) float32 tensor
    """
    if not 0.0 <= float(f) <= 1.0:
        raise ValueError(f"mixture f: {f!r} is outside [0, 1]; give the fraction of real signal")
    noise = gaussian_noise(tuple(x.shape), seed, source=source, split=split)
    if f == 0.0:
        return noise
    real = x.to(torch.float32).clone()
    if f == 1.0:
        return real
    return real.mul_(float(f)).add_(noise.mul_(1.0 - float(f)))


# --------------------------------------------------------------------------- epochs to threshold


def epochs_to_threshold(
    curve: Any,
    tau: float,
    patience: int = 1,
    interpolate: bool = False,
) -> xr.DataArray:
    """Epochs until a per-epoch curve first reaches ``tau`` (paper 003 Figs. 1b, 2c).

    T = the first epoch e >= 1 with ``curve >= tau`` for ``patience`` consecutive epochs
    (e, e+1, ..., e+patience-1); with ``interpolate`` the linear crossing between the
    previous epoch and e.

    Parameters
    ----------
    curve : (E,) array-like or DataArray with dim ``epoch``
        Values after epochs 1..E (array), or indexed by an ``epoch`` coordinate (may include
        epoch 0, the initial model, which is never a crossing but is used for interpolation).
        NaN counts as below ``tau``.
    tau : float
    patience : int, default 1
    interpolate : bool, default False

    Returns
    -------
    0-d float64 DataArray named ``epochs_to_threshold``: T, or NaN if never reached (then
    attribute ``censored_at`` = the last epoch). Attributes ``tau``, ``patience``,
    ``interpolate``.

    Examples
    --------
    >>> e = np.arange(1, 201); c = 1 - np.exp(-e / 20)
    >>> float(epochs_to_threshold(c, 0.9))
    47.0
    """
    if patience < 1:
        raise ValueError(f"patience: {patience!r} must be >= 1")
    if isinstance(curve, xr.DataArray):
        if curve.ndim != 1 or "epoch" not in curve.coords:
            raise ValueError(f"curve: expected a 1-D DataArray with an 'epoch' coordinate, got dims {curve.dims}")
        values = np.asarray(curve.values, dtype=np.float64)
        epochs = np.asarray(curve["epoch"].values, dtype=np.float64)
    else:
        values = np.asarray(curve, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f"curve: expected a 1-D array of per-epoch values, got shape {values.shape}")
        epochs = np.arange(1, values.size + 1, dtype=np.float64)
    ok = np.nan_to_num(values, nan=-np.inf) >= tau
    attrs: dict[str, Any] = {"tau": float(tau), "patience": int(patience), "interpolate": int(bool(interpolate))}
    result = float("nan")
    for i in range(values.size - patience + 1):
        if epochs[i] < 1 or not ok[i : i + patience].all():
            continue
        result = float(epochs[i])
        if interpolate and i > 0 and np.isfinite(values[i - 1]) and values[i] > values[i - 1]:
            frac = (tau - values[i - 1]) / (values[i] - values[i - 1])
            result = float(epochs[i - 1] + frac * (epochs[i] - epochs[i - 1]))
        break
    if math.isnan(result):
        attrs["censored_at"] = float(epochs[-1]) if epochs.size else 0.0
    return xr.DataArray(result, name="epochs_to_threshold", attrs=attrs)


def epoch_curves(metrics: xr.Dataset) -> xr.Dataset:
    """The rows of a run's ``/metrics`` taken at whole epochs, indexed by ``epoch`` (int).

    Parameters
    ----------
    metrics : Dataset, dim ``step``
        ``/metrics`` of ``run.h5`` (variable ``epoch``).

    Returns
    -------
    Dataset with dim ``epoch`` (0 = initial model) and the same variables; ``step`` becomes a
    coordinate on ``epoch``.
    """
    ep = np.asarray(metrics["epoch"].values, dtype=np.float64)
    whole = np.isclose(ep, np.round(ep), rtol=0, atol=1e-9)
    sel = metrics.isel(step=np.flatnonzero(whole))
    epochs = np.round(sel["epoch"].values).astype(np.int64)
    out = sel.drop_vars("epoch").rename({"step": "epoch"}).assign_coords(epoch=epochs)
    out = out.assign_coords(step=("epoch", sel["step"].values))
    return out


def stack_epochs(runs: Mapping[str, xr.Dataset], *, swept: Mapping[str, Sequence[Any]] | None = None) -> xr.Dataset:
    """Per-epoch curves of several runs stacked along ``run`` (outer join on ``epoch``).

    Parameters
    ----------
    runs : mapping run id -> Dataset
        Each run's ``/metrics`` (dim ``step``).
    swept : mapping key -> values per run, optional
        Swept parameters attached as coordinates on ``run`` (e.g. ``training.seed``).

    Returns
    -------
    Dataset, dims (``run``, ``epoch``); NaN where a run has no such epoch.
    """
    ids = list(runs)
    if not ids:
        raise ValueError("stack_epochs: no runs given")
    parts = [epoch_curves(runs[r]).drop_vars("step") for r in ids]
    import pandas as pd

    ds = xr.concat(parts, dim=pd.Index(ids, name="run"), join="outer", coords="minimal", compat="override")
    for key, values in (swept or {}).items():
        ds = ds.assign_coords({key: ("run", list(values))})
    return ds


def summarize(
    runs: Mapping[str, xr.Dataset],
    *,
    metric: str = "train_acc",
    tau: float = 0.9,
    patience: int = 1,
    interpolate: bool = False,
    last_epochs: int = 10,
    swept: Mapping[str, Sequence[Any]] | None = None,
) -> xr.Dataset:
    """Experiment-level table: epochs to threshold and final values per run.

    Parameters
    ----------
    runs : mapping run id -> Dataset
        Each run's ``/metrics`` (dim ``step``).
    metric, tau, patience, interpolate
        Threshold definition (see :func:`epochs_to_threshold`); ``metric`` ``gap`` is train
        minus test accuracy.
    last_epochs : int
        Window of the ``*_last`` means.
    swept : mapping key -> values per run, optional
        Swept parameters (``runs.csv`` columns) attached as coordinates on ``run``.

    Returns
    -------
    Dataset, dim ``run``: ``epochs_to_threshold`` (NaN if censored), ``censored_at`` (last
    epoch where censored, else NaN), ``n_epochs``, ``final_{train,test,heldout}_acc``,
    ``final_gap``, ``max_gap``, ``test_acc_last`` (mean over the last ``last_epochs`` epochs),
    ``heldout_acc_last``, ``split_fraction`` (fraction of epochs with s != 0),
    ``gradnorm_first_weight_peak`` / ``_final``; attributes state the threshold definition.
    """
    ids = list(runs)
    if not ids:
        raise ValueError("summarize: no runs given")
    cols: dict[str, list[float]] = {
        k: []
        for k in (
            "epochs_to_threshold",
            "censored_at",
            "n_epochs",
            "final_train_acc",
            "final_test_acc",
            "final_heldout_acc",
            "final_gap",
            "max_gap",
            "test_acc_last",
            "heldout_acc_last",
            "split_fraction",
            "gradnorm_first_weight_peak",
            "gradnorm_first_weight_final",
        )
    }
    nan = float("nan")
    for rid in ids:
        ep = epoch_curves(runs[rid])
        ep = ep.sel(epoch=ep["epoch"] >= 0)
        if metric == "gap" and "gap" not in ep:
            ep["gap"] = ep["train_acc"] - ep["test_acc"]
        if metric not in ep:
            raise KeyError(f"run {rid!r}: /metrics has no variable {metric!r}; variables: {sorted(ep.data_vars)}")
        t = epochs_to_threshold(ep[metric], tau, patience=patience, interpolate=interpolate)
        cols["epochs_to_threshold"].append(float(t))
        cols["censored_at"].append(float(t.attrs.get("censored_at", nan)))
        last = ep.isel(epoch=-1)
        tail = ep.sel(epoch=ep["epoch"] > int(ep["epoch"].max()) - last_epochs)
        tail = tail.sel(epoch=tail["epoch"] >= 1)
        gap = ep["train_acc"] - ep["test_acc"]
        cols["n_epochs"].append(float(ep["epoch"].max()))
        cols["final_train_acc"].append(float(last["train_acc"]))
        cols["final_test_acc"].append(float(last["test_acc"]))
        cols["final_heldout_acc"].append(float(last["heldout_acc"]) if "heldout_acc" in ep else nan)
        cols["final_gap"].append(float(gap.isel(epoch=-1)))
        cols["max_gap"].append(float(gap.max()))
        cols["test_acc_last"].append(float(tail["test_acc"].mean()) if tail.sizes["epoch"] else nan)
        cols["heldout_acc_last"].append(
            float(tail["heldout_acc"].mean()) if "heldout_acc" in ep and tail.sizes["epoch"] else nan
        )
        if "split_coef" in ep:
            sc = ep["split_coef"].sel(epoch=ep["epoch"] >= 1).values
            cols["split_fraction"].append(float(np.mean(sc != 0)) if sc.size else nan)
        else:
            cols["split_fraction"].append(nan)
        if "gradnorm_first_weight" in ep:
            g = ep["gradnorm_first_weight"].values
            fin = g[np.isfinite(g)]
            cols["gradnorm_first_weight_peak"].append(float(fin.max()) if fin.size else nan)
            cols["gradnorm_first_weight_final"].append(float(fin[-1]) if fin.size else nan)
        else:
            cols["gradnorm_first_weight_peak"].append(nan)
            cols["gradnorm_first_weight_final"].append(nan)
    ds = xr.Dataset({k: ("run", np.asarray(v, dtype=np.float64)) for k, v in cols.items()}, coords={"run": ids})
    descriptions = {
        "epochs_to_threshold": f"first epoch e >= 1 with {metric} >= {tau} for {patience} consecutive epochs"
        + (" (linear crossing)" if interpolate else "")
        + "; NaN if never reached",
        "censored_at": "last epoch of a run that never reached the threshold (NaN otherwise)",
        "test_acc_last": f"mean test accuracy over the last {last_epochs} epochs",
        "heldout_acc_last": f"mean held-out accuracy over the last {last_epochs} epochs",
        "split_fraction": "fraction of epochs trained with split coefficient s != 0",
        "gradnorm_first_weight_peak": "maximum over epochs of the first-layer weight-gradient norm (last step of each epoch)",
    }
    for k, d in descriptions.items():
        ds[k].attrs["description"] = d
    for key, values in (swept or {}).items():
        ds = ds.assign_coords({key: ("run", list(values))})
    ds.attrs.update(
        threshold_metric=metric,
        tau=float(tau),
        patience=int(patience),
        interpolate=int(bool(interpolate)),
        last_epochs=int(last_epochs),
        paper="003 (Badger, Why deep learning generalizes), Figs. 1b and 2c",
    )
    return ds


# --------------------------------------------------------------------------- Fig. 3


def basin_ratio_log10(n_dims: int) -> float:
    """log10 of the basin-size ratio a/b = (2/3)^n of paper 003 Fig. 3 (n = 1000: -176.091)."""
    return float(n_dims) * math.log10(2.0 / 3.0)
