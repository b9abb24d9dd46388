"""Exact LE of a plain ReLU MLP (Linear, ReLU, Linear, ..., Linear), one update at a time.

The rank-1 algebra of :mod:`gendyn.elasticity.rank1`, laid out for the fewest operations per
update on the layout of gendyn's ``mlp`` without BatchNorm (see :class:`_ReluChain`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from gendyn.elasticity.rank1 import _Rank1MLP


class _ReluChain:
    """Exact LE of a plain ReLU MLP (Linear, ReLU, Linear, ..., Linear), one update at a time.

    The algebra of :meth:`_Rank1MLP.forward_delta_one`, laid out for few operations per update:

    * the first layer's change is ``-lr delta_n s_n^T`` (``s_n[m] = u_n . x_m (+1)``), non-zero
      only on the features where ``delta_n != 0``; its ReLU change is ``max(d, -a) + min(a, 0)``
      (no ``relu(a + d) - relu(a)`` cancellation);
    * a hidden Linear layer's change ``W d - lr delta_n (u_n . h' + 1)`` is one product of
      ``[W^T[rows]; delta_n]`` and ``[d; coef]``: the rank-1 update rides along;
    * the last hidden layer keeps ``max(d, -a)`` only when a full product produced it: the
      constant ``min(a, 0)`` part reaches the output through ``W_L min(a, 0)`` and
      ``u_n . min(a, 0)``, computed once; the output layer and ``u_n . h'`` are one
      ``(K + 1) x d`` product;
    * every work array is allocated once and reused (on a CPU a fresh array of a few hundred
      kilobytes per update costs more than the arithmetic around it).
    """

    def __init__(self, mlp: _Rank1MLP, bases: list[Tensor], u_in: list[Tensor], deltas: list[Tensor | None], prods: list[Tensor | None]) -> None:
        lin = [i for i, op in enumerate(mlp.ops) if op["kind"] == "linear"]
        acts = [i for i, op in enumerate(mlp.ops) if op["kind"] == "act"]
        rows = lambda t: None if t is None else list(t.unbind(0))  # noqa: E731 - per-update views, indexed in Python
        self.layers: list[dict[str, Any]] = []
        for i in lin:
            op = mlp.ops[i]
            s = prods[i]  # u_n . h_m for a trainable weight, (N, M)
            if op["train_b"]:
                s = 1.0 + (s if s is not None else bases[i].new_zeros(u_in[i].shape[0], bases[i].shape[0]))
            self.layers.append({
                "W": op["W"], "Wt": op["W"].T.contiguous(), "u": rows(u_in[i]), "delta": rows(deltas[i]), "s": rows(s),
                "train_W": op["train_W"], "move": bool(op["train_W"] or op["train_b"]),
            })  # fmt: skip
        a_t = [bases[i].T.contiguous() for i in acts]  # pre-activations of the probes, (d, M)
        self.nega = [-a for a in a_t]
        self.mina = [a.clamp_max(0) for a in a_t]
        self.neglow0 = torch.cat([self.nega[0], self.mina[0]], dim=1)  # one gather serves both
        last = self.layers[-1]
        self.n_out, d_last = last["W"].shape
        # fold min(a, 0) of the last hidden layer into the output when a full product made it
        fold = len(self.layers) >= 3
        self.out_off = last["W"] @ self.mina[-1] if fold else None  # (K, M)
        self.u_off = rows(u_in[lin[-1]] @ self.mina[-1]) if fold and last["train_W"] else None  # (N, M)
        M, dt, dev = a_t[0].shape[1], a_t[0].dtype, a_t[0].device
        width = max(a.shape[0] for a in a_t)
        new = lambda *shape: torch.empty(*shape, dtype=dt, device=dev)  # noqa: E731
        self._x = new(a_t[0].shape[0] + 1, M)
        self._nl = new(a_t[0].shape[0], 2 * M)
        self._y = [new(width + 1, M), new(width + 1, M)]
        # [W^T; delta_n] per hidden Linear after the first (W^T rows gathered or copied once)
        self._wa = [new(L["W"].shape[1] + 1, L["W"].shape[0]) for L in self.layers[1:-1]]
        for li in range(2, len(self.layers) - 1):
            self._wa[li - 1][:-1] = self.layers[li]["Wt"]
        self._out = new(self.n_out + 1, d_last)
        self._out[: self.n_out] = last["W"]

    @staticmethod
    def supported(mlp: _Rank1MLP) -> bool:
        """A leading Flatten, then strictly Linear, ReLU, Linear, ..., Linear; the first Linear moves."""
        ops = mlp.ops[1:] if mlp.ops and mlp.ops[0]["kind"] == "flatten" else mlp.ops
        if len(ops) < 3 or len(ops) % 2 == 0:
            return False
        for j, op in enumerate(ops):
            if op["kind"] != ("linear" if j % 2 == 0 else "act") or (op["kind"] == "act" and not op["relu"]):
                return False
        return bool(ops[0]["train_W"] or ops[0]["train_b"])

    def delta_one(self, n: int, lr: float) -> Tensor:
        """Change of the probes' logits (K, M) after one SGD step of size ``lr`` on update ``n``."""
        L = len(self.layers)
        first = self.layers[0]
        M = self.nega[0].shape[1]
        dn = first["delta"][n]
        rows = dn.nonzero().squeeze(1)
        k = rows.numel()
        X = self._x[: k + 1]  # exact change on `rows`, and a spare row for the next coef
        Xk = X[:k]
        nl = torch.index_select(self.neglow0, 0, rows, out=self._nl[:k])
        torch.outer(dn.index_select(0, rows), first["s"][n] * -lr, out=Xk)
        torch.maximum(Xk, nl[:, :M], out=Xk)
        Xk.add_(nl[:, M:])
        sel: Tensor | None = rows  # features of the previous activation that X holds (None: all)
        for li in range(1, L):
            layer = self.layers[li]
            u = layer["u"][n] if sel is None else layer["u"][n].index_select(0, sel)
            if li == L - 1:
                if sel is None:
                    wo = self._out
                    wo[-1] = u
                else:  # one hidden layer: the output reads the changed rows only
                    wo = torch.cat([layer["W"].index_select(1, sel), u[None]])
                if not layer["train_W"]:
                    wo = wo[:-1]
                prod = torch.mm(wo, Xk)  # (K [+1], M)
                dz = prod[: self.n_out]
                if self.out_off is not None:
                    dz = dz + self.out_off
                if layer["move"]:
                    coef = layer["s"][n] + prod[-1] if layer["train_W"] else layer["s"][n]
                    if self.u_off is not None:
                        coef = coef + self.u_off[n]
                    dz = dz.addr(layer["delta"][n], coef, alpha=-lr)
                return dz
            wa = self._wa[li - 1][: Xk.shape[0] + 1]
            if sel is not None:
                torch.index_select(layer["Wt"], 0, sel, out=wa[:-1])
            if layer["move"]:
                kk = Xk.shape[0]
                if layer["train_W"]:
                    torch.mv(Xk.T, u, out=X[kk])
                    X[kk].add_(layer["s"][n]).mul_(-lr)
                else:
                    torch.mul(layer["s"][n], -lr, out=X[kk])
                wa[-1] = layer["delta"][n]
                A, B = wa, X
            else:
                A, B = wa[:-1], Xk
            d_out = A.shape[1]
            Y = self._y[li % 2][: d_out + 1]
            Yk = Y[:d_out]
            torch.mm(A.T, B, out=Yk)
            torch.maximum(Yk, self.nega[li], out=Yk)
            if li + 1 < L - 1:  # another hidden layer follows: make the change exact
                Yk.add_(self.mina[li])
            X, Xk, sel = Y, Yk, None
        raise AssertionError("unreachable")
