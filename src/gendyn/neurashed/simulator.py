"""The neurashed simulator (paper 002, Sec. 2): amplification factors, scores, training steps.

Every non-top node F of a :class:`~gendyn.neurashed.graphs.Graph` has an amplification
factor ``lambda_F >= 0``, every edge (f, F) from the second-last level to a class node a
weight ``eta_fF``. Scores (paper Sec. 2)::

    level 1:        S_F = lambda_F [F fires]
    levels 2..L-1:  S_F = lambda_F * sum_{f -> F} S_f   if F fires, else 0
    logits:         Z_j = sum_{f -> F_j} eta_{f F_j} S_f,    p = softmax(Z)

A training step on a batch of types takes the union U of their pathways and applies
``lambda_F <- g+(lambda_F)`` to non-top nodes in U and ``g-`` to the others; an edge gets
``g+`` when both its ends are in U (the paper's literal union rule; ``edge_rule=
"per_sample"``: when both fire for one sample of the batch) and ``g-`` otherwise.

This module is the project's reference implementation; all arithmetic is float64 and a
simulator is deterministic under its seed.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import xarray as xr

from gendyn.neurashed.graphs import Graph, builtin_graph
from gendyn.neurashed.information import mutual_information

__all__ = ["Rule", "Neurashed"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    """An update rule for amplification factors: ``mul`` (x -> a x) or ``add`` (x -> x + c)."""

    kind: Literal["mul", "add"]
    value: float

    def __post_init__(self) -> None:
        if self.kind not in ("mul", "add"):
            raise ValueError(f"rule kind: {self.kind!r} is not allowed; choose 'mul' or 'add'")
        if not math.isfinite(self.value):
            raise ValueError(f"rule value: {self.value!r} is not finite")

    @classmethod
    def parse(cls, spec: Rule | tuple[str, float] | float | str | Mapping[str, Any]) -> Rule:
        """``Rule``, ``("mul", 1.02)``, ``1.02`` (mul), ``"mul:1.02"``, or ``{"kind":..., "value":...}``."""
        if isinstance(spec, Rule):
            return spec
        if isinstance(spec, Mapping):
            return cls(str(spec["kind"]), float(spec["value"]))  # type: ignore[arg-type]
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            return cls("mul", float(spec))
        if isinstance(spec, str):
            kind, _, val = spec.partition(":")
            return cls(kind, float(val))  # type: ignore[arg-type]
        kind, val = spec
        return cls(kind, float(val))  # type: ignore[arg-type]

    def apply(self, x: np.ndarray) -> np.ndarray:
        return x * self.value if self.kind == "mul" else x + self.value


class Neurashed:
    """The neurashed simulator (paper 002, Sec. 2).

    Parameters
    ----------
    graph : Graph or str
        A :class:`Graph` or the name of a built-in one.
    g_plus, g_minus : Rule or ("mul", a) / ("add", c) / float (mul)
        Rules for firing (g+) and non-firing (g-) nodes and edges. g+ must grow
        (``mul`` a > 1 or ``add`` c > 0); g- must not (``mul`` 0 < b <= 1).
    init : {"uniform", "const", "zeros"}
        Initial lambda and eta: U(0, init_value) i.i.d. (seeded), all ``init_value``, or 0.
        ``zeros`` with a ``mul`` g+ is an error (nothing would ever grow).
    seed : int
        Seeds the initial values and the type sampling of :meth:`train` (separate streams).
    init_value : float
    g_plus_nodes, g_minus_nodes : mapping node -> rule, optional
        Per-node overrides (e.g. the dominant nodes of Fig. 4).
    edge_rule : {"union", "per_sample"}
        When an edge gets g+: both ends in the batch's union of pathways (paper), or both
        firing for one sample of the batch.

    Attributes
    ----------
    lam : (n_nodes,) float64 — amplification factors (NaN on class nodes)
    eta : (n_edges,) float64 — weights of the edges into class nodes, order of :attr:`edges`
    steps_done : int
    """

    def __init__(
        self,
        graph: Graph | str,
        g_plus: Any = ("mul", 1.02),
        g_minus: Any = ("mul", 0.998),
        init: Literal["uniform", "const", "zeros"] = "uniform",
        seed: int = 0,
        *,
        init_value: float = 0.01,
        g_plus_nodes: Mapping[str, Any] | None = None,
        g_minus_nodes: Mapping[str, Any] | None = None,
        edge_rule: Literal["union", "per_sample"] = "union",
    ) -> None:
        self.graph = builtin_graph(graph) if isinstance(graph, str) else graph
        g = self.graph
        self.g_plus, self.g_minus = Rule.parse(g_plus), Rule.parse(g_minus)
        plus_nodes = {k: Rule.parse(v) for k, v in (g_plus_nodes or {}).items()}
        minus_nodes = {k: Rule.parse(v) for k, v in (g_minus_nodes or {}).items()}
        for name, rules in (("g_plus_nodes", plus_nodes), ("g_minus_nodes", minus_nodes)):
            bad = [k for k in rules if k not in g.nodes or k in g.classes]
            if bad:
                raise KeyError(f"{name}: {bad} are not non-top nodes of graph {g.name!r}")
        for r in [self.g_plus, *plus_nodes.values()]:
            if (r.kind == "mul" and r.value <= 1) or (r.kind == "add" and r.value <= 0):
                raise ValueError(f"g_plus: {r} does not grow; g+(x) > x needs mul a > 1 or add c > 0")
        for r in [self.g_minus, *minus_nodes.values()]:
            if r.kind != "mul" or not 0 < r.value <= 1:
                raise ValueError(f"g_minus: {r} is not allowed; use mul b with 0 < b <= 1")
        if init not in ("uniform", "const", "zeros"):
            raise ValueError(f"init: {init!r} is not allowed; choose 'uniform', 'const' or 'zeros'")
        if init == "zeros" and (self.g_plus.kind == "mul" or any(r.kind == "mul" for r in plus_nodes.values())):
            raise ValueError("init: 'zeros' with a multiplicative g+ never grows (0 * a = 0); use init 'uniform'/'const' or g+ 'add'")
        if edge_rule not in ("union", "per_sample"):
            raise ValueError(f"edge_rule: {edge_rule!r} is not allowed; choose 'union' or 'per_sample'")
        self.edge_rule = edge_rule
        self.init, self.seed, self.init_value = init, int(seed), float(init_value)
        self.nodes = g.nodes
        self.index = {n: i for i, n in enumerate(self.nodes)}
        self.edges = tuple((f, c) for c in g.classes for f in g.parents[c])
        self.type_names = tuple(g.types)
        n = len(self.nodes)
        self._top = np.array([node in g.classes for node in self.nodes])
        self._level = np.array([g.level_of(node) for node in self.nodes])
        # rule arrays (apply as x * mul + add)
        self._plus = self._rule_arrays(self.g_plus, plus_nodes)
        self._minus = self._rule_arrays(self.g_minus, minus_nodes)
        self._edge_plus = (np.full(len(self.edges), self.g_plus.value if self.g_plus.kind == "mul" else 1.0),
                           np.full(len(self.edges), self.g_plus.value if self.g_plus.kind == "add" else 0.0))  # fmt: skip
        self._edge_minus = (np.full(len(self.edges), self.g_minus.value), np.zeros(len(self.edges)))
        # firing matrix per type (pathways, class nodes included)
        self._fires = np.zeros((len(self.type_names), n), dtype=bool)
        for t, name in enumerate(self.type_names):
            for node in g.pathway(name):
                self._fires[t, self.index[node]] = True
        self._labels = np.array([g.classes.index(g.types[t][1]) for t in self.type_names])
        # adjacency between consecutive levels (child x parent), and class edges
        self._adj: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for lev in range(2, len(g.levels)):
            ch = np.array([self.index[x] for x in g.levels[lev - 1]])
            pa = np.array([self.index[x] for x in g.levels[lev - 2]])
            A = np.zeros((ch.size, pa.size))
            for a, node in enumerate(g.levels[lev - 1]):
                for p in g.parents[node]:
                    A[a, list(g.levels[lev - 2]).index(p)] = 1.0
            self._adj[lev] = (ch, pa, A)
        self._edge_f = np.array([self.index[f] for f, _ in self.edges])
        self._edge_c = np.array([g.classes.index(c) for _, c in self.edges])
        self._edge_c_node = np.array([self.index[c] for _, c in self.edges])
        ss = np.random.SeedSequence(self.seed)
        init_ss, sample_ss = ss.spawn(2)
        self._sample_rng = np.random.default_rng(sample_ss)
        rng = np.random.default_rng(init_ss)
        if init == "uniform":
            self.lam = rng.uniform(0.0, self.init_value, size=n)
            self.eta = rng.uniform(0.0, self.init_value, size=len(self.edges))
        else:
            v = self.init_value if init == "const" else 0.0
            self.lam = np.full(n, v)
            self.eta = np.full(len(self.edges), v)
        self.lam[self._top] = np.nan
        self.steps_done = 0
        self._perm: list[int] = []
        self._warned = False

    def _rule_arrays(self, default: Rule, per_node: Mapping[str, Rule]) -> tuple[np.ndarray, np.ndarray]:
        mul = np.ones(len(self.nodes))
        add = np.zeros(len(self.nodes))
        for i, node in enumerate(self.nodes):
            r = per_node.get(node, default)
            if r.kind == "mul":
                mul[i] = r.value
            else:
                add[i] = r.value
        return mul, add

    def copy(self) -> Neurashed:
        """An independent copy (state and RNG)."""
        return copy.deepcopy(self)

    # ------------------------------------------------------------------ forward
    def _type_idx(self, types: Sequence[str] | str) -> np.ndarray:
        if isinstance(types, str):
            types = [types]
        try:
            return np.array([self.type_names.index(t) for t in types], dtype=np.int64)
        except ValueError:
            bad = [t for t in types if t not in self.type_names]
            raise KeyError(f"graph {self.graph.name!r}: no type(s) {bad}; types: {list(self.type_names)}") from None

    def scores_of(self, lam: np.ndarray, types: Sequence[str] | str) -> np.ndarray:
        """Scores S (T, n_nodes) of ``types`` under amplification factors ``lam`` (class nodes 0)."""
        idx = self._type_idx(types)
        fires = self._fires[idx]
        S = np.zeros((idx.size, len(self.nodes)))
        l1 = self._level == 1
        S[:, l1] = np.where(fires[:, l1], lam[l1], 0.0)
        for lev in range(2, len(self.graph.levels)):
            ch, pa, A = self._adj[lev]
            S[:, ch] = np.where(fires[:, ch], lam[ch] * (S[:, pa] @ A.T), 0.0)
        return S

    def scores(self, types: Sequence[str] | str) -> np.ndarray:
        """Scores S_F (T, n_nodes) of the nodes for each type (paper Sec. 2); 0 for non-firing nodes."""
        return self.scores_of(self.lam, types)

    def logits_of(self, lam: np.ndarray, eta: np.ndarray, types: Sequence[str] | str) -> np.ndarray:
        S = self.scores_of(lam, types)
        Z = np.zeros((S.shape[0], len(self.graph.classes)))
        np.add.at(Z.T, self._edge_c, (eta[:, None] * S[:, self._edge_f].T))
        return Z

    def logits(self, types: Sequence[str] | str) -> np.ndarray:
        """Logits Z (T, K): ``Z_j = sum_{f -> F_j} eta_{f F_j} S_f`` (paper eq. 1)."""
        return self.logits_of(self.lam, self.eta, types)

    def probabilities(self, types: Sequence[str] | str) -> np.ndarray:
        """softmax(Z) (T, K), computed stably."""
        Z = self.logits(types)
        Z = Z - Z.max(1, keepdims=True)
        e = np.exp(Z)
        return e / e.sum(1, keepdims=True)

    def accuracy(self, types: Sequence[str] | None = None) -> float:
        """Fraction of ``types`` (default all) whose largest logit is their label's (ties count as wrong)."""
        names = list(types) if types is not None else list(self.type_names)
        Z = self.logits(names)
        lab = self._labels[self._type_idx(names)]
        top = Z[np.arange(len(names)), lab]
        others = np.where(np.eye(Z.shape[1], dtype=bool)[lab], -np.inf, Z)
        return float(np.mean(top > others.max(1)))

    # ------------------------------------------------------------------ training
    def step(self, types: Sequence[str] | str) -> None:
        """One training step on a batch of types (paper Sec. 2: g+ on the union of pathways, g- elsewhere)."""
        idx = self._type_idx(types)
        fires = self._fires[idx]
        union = fires.any(0)
        mul = np.where(union, self._plus[0], self._minus[0])
        add = np.where(union, self._plus[1], self._minus[1])
        self.lam = self.lam * mul + add
        if self.edge_rule == "union":
            grow = union[self._edge_f] & union[self._edge_c_node]
        else:
            grow = (fires[:, self._edge_f] & fires[:, self._edge_c_node]).any(0)
        self.eta = np.where(grow, self.eta * self._edge_plus[0] + self._edge_plus[1], self.eta * self._edge_minus[0] + self._edge_minus[1])
        self.steps_done += 1
        if not self._warned and not (np.isfinite(self.lam[~self._top]).all() and np.isfinite(self.eta).all()):
            self._warned = True
            logger.warning("neurashed %s: amplification factors overflowed to inf at step %d; shorten the run or soften g+",
                           self.graph.name, self.steps_done)  # fmt: skip

    def sample_batch(self, batch: int, sampling: Literal["epoch", "iid"] = "epoch", types: Sequence[str] | None = None) -> list[str]:
        """The next batch of type names (seeded): ``epoch`` = consecutive slices of random
        permutations of ``types``; ``iid`` = uniform draws with replacement."""
        pool = list(types) if types is not None else list(self.type_names)
        if sampling == "iid":
            return [pool[i] for i in self._sample_rng.integers(0, len(pool), size=batch)]
        if sampling != "epoch":
            raise ValueError(f"sampling: {sampling!r} is not allowed; choose 'epoch' or 'iid'")
        out: list[str] = []
        while len(out) < batch:
            if not self._perm:
                self._perm = list(self._sample_rng.permutation(len(pool)))
            out.append(pool[self._perm.pop(0)])
        return out

    def train(
        self,
        steps: int,
        batch: int = 1,
        record_every: int = 1,
        *,
        sampling: Literal["epoch", "iid"] = "epoch",
        types: Sequence[str] | None = None,
    ) -> xr.Dataset:
        """Train for ``steps`` steps; record the state every ``record_every`` steps (and at 0 and the end).

        Parameters
        ----------
        steps : int
        batch : int
            Types per step; ``batch >= len(types)`` with ``sampling="epoch"`` is full batch
            (every type every step).
        record_every : int
        sampling : {"epoch", "iid"}
        types : sequence of str, optional
            Training types (default all types of the graph).

        Returns
        -------
        xarray.Dataset with dims ``record``, ``node``, ``edge``, ``type``, ``class``:
        ``lam`` (record, node), ``eta`` (record, edge), ``logits`` (record, type, class),
        ``accuracy`` (record; over the training types), coord ``step`` on ``record``.
        """
        pool = list(types) if types is not None else list(self.type_names)
        self._type_idx(pool)
        full = batch >= len(pool) and sampling == "epoch"
        rec_steps = sorted(set(list(range(0, steps + 1, max(1, record_every))) + [steps]))
        lam, eta, logits, acc = [], [], [], []

        def snap() -> None:
            lam.append(self.lam.copy())
            eta.append(self.eta.copy())
            logits.append(self.logits(list(self.type_names)))
            acc.append(self.accuracy(pool))

        snap()
        for s in range(1, steps + 1):
            self.step(pool if full else self.sample_batch(batch, sampling, pool))
            if s in rec_steps:
                snap()
        return xr.Dataset(
            {
                "lam": (("record", "node"), np.array(lam)),
                "eta": (("record", "edge"), np.array(eta)),
                "logits": (("record", "type", "class"), np.array(logits)),
                "accuracy": (("record",), np.array(acc)),
            },
            coords={
                "record": np.arange(len(rec_steps)),
                "step": ("record", np.array(rec_steps, dtype=np.int64)),
                "node": list(self.nodes),
                "level": ("node", self._level),
                "edge": [f"{f}->{c}" for f, c in self.edges],
                "type": list(self.type_names),
                "label": ("type", [self.graph.types[t][1] for t in self.type_names]),
                "class": list(self.graph.classes),
            },
            attrs={"graph": self.graph.name, "seed": self.seed, "batch": batch, "sampling": sampling,
                   "g_plus": f"{self.g_plus.kind}:{self.g_plus.value!r}", "g_minus": f"{self.g_minus.kind}:{self.g_minus.value!r}",
                   "edge_rule": self.edge_rule, "init": self.init, "init_value": self.init_value,
                   "train_types": list(pool)},  # fmt: skip
        )

    # ------------------------------------------------------------------ measures
    def local_elasticity(self, update: str, probes: Sequence[str] | str) -> np.ndarray:
        """LE of one step on type ``update`` at ``probes`` (paper Sec. 3, LE on the logits Z).

        ``||Z(x', after) - Z(x', before)|| / ||Z(x, after) - Z(x, before)||`` with the step
        taken on a copy (this simulator is unchanged). Returns (len(probes),) float64.
        """
        names = [probes] if isinstance(probes, str) else list(probes)
        other = self.copy()
        before_p, before_u = self.logits(names), self.logits([update])
        other.step([update])
        d_p = np.linalg.norm(other.logits(names) - before_p, axis=1)
        d_u = float(np.linalg.norm(other.logits([update]) - before_u))
        if d_u == 0.0:
            return np.full(len(names), np.nan)
        return d_p / d_u

    def level_nodes(self, level: int) -> list[str]:
        """Node names of a 1-based level."""
        return list(self.graph.levels[level - 1])

    def mutual_information(self, level: int, sigma: float = 0.02, s0: float = 0.03, n_draws: int = 400, seed: int = 0) -> tuple[float, float]:
        """I(X; T) and I(Y; T) in bits of a level's noisy, normalised scores (see :func:`mutual_information`)."""
        cols = [self.index[n] for n in self.level_nodes(level)]
        S = self.scores(list(self.type_names))[:, cols]
        return mutual_information(S, self._labels, sigma=sigma, s0=s0, n_draws=n_draws, seed=seed)
