"""Neurashed: the graphical model of paper 002 (Sec. 2) and its three phenomena (Sec. 3).

A neurashed is a levelled graph of *feature* nodes. Level 1 nodes fire as the input says;
a node of a middle level fires when its rule holds on its parents one level below (``or``:
at least one parent fires, ``and``: all fire, an integer ``k``: at least k fire); the top
level holds one node per class and only the label's node fires. A sample **type** is its
set of firing level-1 nodes plus its label; its **pathway** is the set of all its firing
nodes.

Every non-top node F has an amplification factor ``lambda_F >= 0``, every edge (f, F) from
the second-last level to a class node a weight ``eta_fF``. Scores (paper Sec. 2)::

    level 1:        S_F = lambda_F [F fires]
    levels 2..L-1:  S_F = lambda_F * sum_{f -> F} S_f   if F fires, else 0
    logits:         Z_j = sum_{f -> F_j} eta_{f F_j} S_f,    p = softmax(Z)

A training step on a batch of types takes the union U of their pathways and applies
``lambda_F <- g+(lambda_F)`` to non-top nodes in U and ``g-`` to the others; an edge gets
``g+`` when both its ends are in U (the paper's literal union rule; ``edge_rule=
"per_sample"``: when both fire for one sample of the batch) and ``g-`` otherwise.

The paper gives drawings, not graphs; the built-in graphs ``fig1``, ``fig3`` and ``fig4``
are the concrete readings of the project spec (``specs/elasticity-neurashed.md`` §2.3).
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

__all__ = [
    "Graph",
    "Rule",
    "Neurashed",
    "builtin_graph",
    "GRAPHS",
    "mutual_information",
    "implicit_regularization",
    "information_bottleneck",
    "elasticity_experiment",
]

logger = logging.getLogger(__name__)

FireRule = str | int


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


@dataclass(frozen=True)
class Graph:
    """A neurashed graph.

    Attributes
    ----------
    name : str
    levels : tuple of tuple of str
        Node names per level, bottom (level 1) first; the last level are the class nodes.
    parents : mapping node -> tuple of nodes
        Parents (one level below) of every node of levels 2..L.
    rules : mapping node -> "or" | "and" | int
        Firing rule of every node of levels 2..L-1.
    types : mapping type name -> (frozenset of level-1 nodes, class node)
        The sample types.
    """

    name: str
    levels: tuple[tuple[str, ...], ...]
    parents: Mapping[str, tuple[str, ...]]
    rules: Mapping[str, FireRule]
    types: Mapping[str, tuple[frozenset[str], str]]
    description: str = ""

    def __post_init__(self) -> None:
        if len(self.levels) < 2:
            raise ValueError(f"graph {self.name!r}: needs at least 2 levels (inputs and classes)")
        seen: dict[str, int] = {}
        for li, lev in enumerate(self.levels):
            for node in lev:
                if node in seen:
                    raise ValueError(f"graph {self.name!r}: node {node!r} appears twice")
                seen[node] = li
        for li, lev in enumerate(self.levels[1:], start=1):
            for node in lev:
                ps = self.parents.get(node, ())
                if not ps:
                    raise ValueError(f"graph {self.name!r}: node {node!r} (level {li + 1}) has no parents")
                bad = [p for p in ps if seen.get(p) != li - 1]
                if bad:
                    raise ValueError(f"graph {self.name!r}: parents {bad} of {node!r} are not on level {li}")
                if li < len(self.levels) - 1:
                    rule = self.rules.get(node, "or")
                    if not (rule in ("or", "and") or (isinstance(rule, int) and not isinstance(rule, bool) and 1 <= rule <= len(ps))):
                        raise ValueError(f"graph {self.name!r}: rule {rule!r} of {node!r}; use 'or', 'and' or an int 1..{len(ps)}")
        for t, (inputs, label) in self.types.items():
            bad = [i for i in inputs if seen.get(i) != 0]
            if bad:
                raise ValueError(f"graph {self.name!r}: type {t!r} fires {bad}, which are not level-1 nodes")
            if label not in self.levels[-1]:
                raise ValueError(f"graph {self.name!r}: type {t!r} has label {label!r}, not a class node {self.levels[-1]}")

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(n for lev in self.levels for n in lev)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.levels[-1]

    def level_of(self, node: str) -> int:
        """1-based level of ``node``."""
        for li, lev in enumerate(self.levels):
            if node in lev:
                return li + 1
        raise KeyError(f"graph {self.name!r}: no node {node!r}")

    def pathway(self, type_name: str) -> frozenset[str]:
        """All firing nodes of a type, its class node included (paper Fig. 2)."""
        if type_name not in self.types:
            raise KeyError(f"graph {self.name!r}: no type {type_name!r}; types: {list(self.types)}")
        inputs, label = self.types[type_name]
        firing = set(inputs)
        for lev in self.levels[1:-1]:
            for node in lev:
                ps = self.parents[node]
                k = sum(p in firing for p in ps)
                rule = self.rules.get(node, "or")
                need = 1 if rule == "or" else len(ps) if rule == "and" else int(rule)
                if k >= need:
                    firing.add(node)
        firing.add(label)
        return frozenset(firing)


def _fig1() -> Graph:
    l1 = tuple(str(i) for i in range(8))
    parents = {
        "a": ("0", "1"), "b": ("2", "3"), "c": ("4", "5"), "d": ("6", "7"), "e": ("3", "4"),
        "p": ("a", "b"), "q": ("a", "e"), "r": ("c", "e"), "t": ("b", "c"), "s": ("d",),
        "C1": ("p", "q"), "C2": ("r", "t"), "C3": ("s",),
    }  # fmt: skip
    rules: dict[str, FireRule] = {"a": "and", "b": "or", "c": "and", "d": "and", "e": "or",
                                  "p": "and", "q": "and", "r": "and", "t": "and", "s": "or"}  # fmt: skip
    types = {
        "1a": (frozenset({"0", "1", "2", "3"}), "C1"),
        "1b": (frozenset({"0", "1", "2", "4"}), "C1"),
        "2": (frozenset({"2", "3", "4", "5"}), "C2"),
        "3": (frozenset({"5", "6", "7"}), "C3"),
    }
    return Graph("fig1", (l1, ("a", "b", "c", "d", "e"), ("p", "q", "r", "t", "s"), ("C1", "C2", "C3")), parents, rules, types,
                 "4 levels, 3 classes (paper Figs. 1-2)")  # fmt: skip


def _fig3() -> Graph:
    l1 = ("0", "1", "2", "3", "4", "5", "10", "11")
    parents = {"u": ("0", "1"), "h": ("2", "3"), "v": ("4", "5"), "w": ("10", "11"),
               "C1": ("u", "h", "v"), "C2": ("w",)}  # fmt: skip
    rules: dict[str, FireRule] = {"u": "or", "h": "or", "v": "or", "w": "or"}
    types = {
        "P1": (frozenset({"0", "1", "2", "3"}), "C1"),
        "P2": (frozenset({"2", "3", "4", "5"}), "C1"),
        "dummy": (frozenset({"10", "11"}), "C2"),
    }
    return Graph("fig3", (l1, ("u", "h", "v", "w"), ("C1", "C2")), parents, rules, types,
                 "one class with two pathways sharing nodes 2, 3 and h; a dummy class 2 (paper Fig. 3)")  # fmt: skip


def _fig4() -> Graph:
    l1 = tuple(str(i) for i in range(1, 15))
    c1 = tuple(str(i) for i in range(1, 8))
    c2 = tuple(str(i) for i in range(8, 15))
    parents = {"A": ("1", "2", "3"), "D": c1, "B": ("4", "5", "6"),
               "A'": ("8", "9", "10"), "D'": c2, "B'": ("11", "12", "13"),
               "C1": ("A", "D", "B"), "C2": ("A'", "D'", "B'")}  # fmt: skip
    rules: dict[str, FireRule] = {"A": "or", "D": 2, "B": "or", "A'": "or", "D'": 2, "B'": "or"}
    types: dict[str, tuple[frozenset[str], str]] = {}
    for k, t in enumerate(((1, 2, 7), (2, 3, 7), (4, 5, 7), (5, 6, 7))):
        types[f"1-{k + 1}"] = (frozenset(str(i) for i in t), "C1")
        types[f"2-{k + 1}"] = (frozenset(str(i + 7) for i in t), "C2")
    types = {k: types[k] for k in sorted(types)}
    return Graph("fig4", (l1, ("A", "D", "B", "A'", "D'", "B'"), ("C1", "C2")), parents, rules, types,
                 "binary problem, 8 types; D and D' are the dominant nodes (paper Fig. 4)")  # fmt: skip


GRAPHS = {"fig1": _fig1, "fig3": _fig3, "fig4": _fig4}


def builtin_graph(name: str) -> Graph:
    """One of the built-in graphs ``fig1``, ``fig3``, ``fig4`` (spec §2.3)."""
    try:
        return GRAPHS[name]()
    except KeyError:
        raise KeyError(f"graph: {name!r} is not a built-in graph; choose one of {sorted(GRAPHS)}") from None


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


def mutual_information(
    scores: np.ndarray, labels: np.ndarray, *, sigma: float = 0.02, s0: float = 0.03, n_draws: int = 400, seed: int = 0
) -> tuple[float, float]:
    """Monte-Carlo mutual information of a noisy level representation, in bits.

    The paper (Fig. 4) only says noise is added; the spec's definition (§2.4.2) is used:
    ``T = S / max(max|S|, s0) + N(0, sigma^2 I)`` with S the level's scores of every type
    (max over types and nodes), X uniform over the types, so T is a Gaussian mixture with
    means ``mu_x``::

        I(X; T) = log|X| + E[ log p(x | t) ],   p(x | t) = softmax_x'(-||t - mu_x'||^2 / 2 sigma^2)
        I(Y; T) = H(Y)   + E[ log p(y | t) ],   p(y | t) = sum_{x in y} p(x | t)

    Parameters
    ----------
    scores : (T, D) float array — scores of each type on the level's D nodes
    labels : (T,) int array — class of each type
    sigma, s0 : float
    n_draws : int — seeded draws of t per type
    seed : int

    Returns
    -------
    (I(X; T), I(Y; T)) in bits.
    """
    S = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    n_types = S.shape[0]
    mu = S / max(float(np.abs(S).max()) if S.size else 0.0, s0)
    rng = np.random.default_rng(seed)
    classes, y = np.unique(labels, return_inverse=True)
    py = np.bincount(y, minlength=classes.size) / n_types
    h_y = float(-(py * np.log(py)).sum())
    ix, iy = 0.0, 0.0
    for x in range(n_types):
        t = mu[x] + sigma * rng.standard_normal((n_draws, S.shape[1]))
        logits = -((t[:, None, :] - mu[None, :, :]) ** 2).sum(-1) / (2 * sigma**2)  # (draws, types)
        m = logits.max(1, keepdims=True)
        log_norm = m[:, 0] + np.log(np.exp(logits - m).sum(1))
        ix += float(np.mean(logits[:, x] - log_norm))
        same = labels == labels[x]
        log_y = m[:, 0] + np.log(np.exp(logits[:, same] - m).sum(1))
        iy += float(np.mean(log_y - log_norm))
    ix = math.log(n_types) + ix / n_types
    iy = h_y + iy / n_types
    return ix / math.log(2), iy / math.log(2)


# --------------------------------------------------------------------------- the three phenomena


def implicit_regularization(
    seed: int = 0,
    *,
    a: float = 1.02,
    b: float = 0.995,
    steps: int = 2000,
    record_every: int = 20,
    init: str = "uniform",
    init_value: float = 0.01,
) -> xr.Dataset:
    """Phenomenon 1 (paper Fig. 3): small- vs large-batch training of one class with two pathways.

    Graph ``fig3``, g+ = a x, g- = b x; ``batch`` "small": one of P1, P2 per step (epoch
    sampling); "large": P1 and P2 in every step. Returns the trajectories with the measures
    over the level-1 nodes 0-5 of class 1: ``shared_share`` = sum lambda(2, 3) / sum
    lambda(0..5) and ``participation`` = (sum lambda)^2 / sum lambda^2, dims (batch, record);
    ``lam`` (batch, record, node). Small batch: share -> 1 (peculiar / shared ~
    (b/a)^(t/2)); large batch: all grow alike, share stays at its initial value.
    """
    parts = []
    for name, batch in (("small", 1), ("large", 2)):
        sim = Neurashed("fig3", ("mul", a), ("mul", b), init, seed, init_value=init_value)  # type: ignore[arg-type]
        ds = sim.train(steps, batch=batch, record_every=record_every, sampling="epoch", types=["P1", "P2"])
        parts.append(ds.expand_dims(batch=[name]))
    out = xr.concat(parts, dim="batch", data_vars="all")
    l1 = [str(i) for i in range(6)]
    lam1 = out["lam"].sel(node=l1)
    out["shared_share"] = lam1.sel(node=["2", "3"]).sum("node") / lam1.sum("node")
    out["participation"] = lam1.sum("node") ** 2 / (lam1**2).sum("node")
    out["shared_share"].attrs["description"] = "sum lambda of the shared level-1 nodes 2, 3 / sum lambda of class-1 nodes 0-5"
    out["participation"].attrs["description"] = "(sum lambda)^2 / sum lambda^2 over level-1 nodes 0-5 (effective number of nodes)"
    out.attrs.update(phenomenon="implicit_regularization", a=a, b=b, seed=seed)
    return out


def information_bottleneck(
    seed: int = 0,
    *,
    base: float = 1.022,
    plus_exponent: float = 1.25,
    minus_exponent: float = -0.25,
    dominant_exponent: float = 0.75,
    steps: int = 4000,
    record_every: int = 100,
    sigma: float = 0.02,
    s0: float = 0.03,
    n_draws: int = 400,
    init_value: float = 0.01,
) -> xr.Dataset:
    """Phenomenon 2 (paper Fig. 4 and appendix): the information plane of levels 1 and 2.

    Graph ``fig4``, uniform init U(0, init_value), g- = base^minus_exponent x, g+ =
    base^plus_exponent x except nodes 7 and 14 (g+ = base^dominant_exponent x), batch 1,
    epoch sampling. The paper's exponent reads "1 1/4" = 5/4 (with 11/4 level 2 never
    compresses). At every record: I(X; T) and I(Y; T) in bits (:func:`mutual_information`,
    seeded per record) for levels 1 and 2. Dims (record, level).
    """
    plus = ("mul", base**plus_exponent)
    dom = ("mul", base**dominant_exponent)
    sim = Neurashed("fig4", plus, ("mul", base**minus_exponent), "uniform", seed, init_value=init_value,
                    g_plus_nodes={"7": dom, "14": dom})  # fmt: skip
    ds = sim.train(steps, batch=1, record_every=record_every, sampling="epoch")
    types = list(sim.type_names)
    ix = np.zeros((ds.sizes["record"], 2))
    iy = np.zeros_like(ix)
    for r in range(ds.sizes["record"]):
        S = sim.scores_of(ds["lam"].values[r], types)
        for k, level in enumerate((1, 2)):
            cols = [sim.index[n] for n in sim.level_nodes(level)]
            ix[r, k], iy[r, k] = mutual_information(S[:, cols], sim._labels, sigma=sigma, s0=s0, n_draws=n_draws, seed=seed * 100_003 + r)
    ds["mi_x"] = (("record", "level"), ix)
    ds["mi_y"] = (("record", "level"), iy)
    ds = ds.assign_coords(level=[1, 2])
    ds["mi_x"].attrs.update(units="bit", description="I(X; T) of the level (X: the 8 types, uniform)")
    ds["mi_y"].attrs.update(units="bit", description="I(Y; T) of the level (Y: the 2 classes)")
    ds.attrs.update(phenomenon="information_bottleneck", base=base, plus_exponent=plus_exponent, minus_exponent=minus_exponent,
                    dominant_exponent=dominant_exponent, sigma=sigma, s0=s0, n_draws=n_draws)  # fmt: skip
    return ds


def elasticity_experiment(
    seed: int = 0,
    *,
    a: float = 1.02,
    b: float = 0.998,
    steps: int = 500,
    update: str = "1a",
    probes: Sequence[str] = ("1b", "2", "3"),
    sampling: Literal["epoch", "iid"] = "iid",
) -> xr.Dataset:
    """Phenomenon 3 (paper Sec. 3, "Local elasticity", Fig. 2): LE of one step on type 1a.

    Graph ``fig1``, uniform init, g+ = a x, g- = b x, ``steps`` steps of batch 1 (``iid``
    sampling), then LE(update -> probe) for each probe (the update type itself too: 1).
    Expected ordering: LE(1a -> 1b) > LE(1a -> 2) > LE(1a -> 3) ~ 0.
    """
    sim = Neurashed("fig1", ("mul", a), ("mul", b), "uniform", seed)
    sim.train(steps, batch=1, record_every=steps, sampling=sampling)
    names = [update, *[p for p in probes if p != update]]
    le = sim.local_elasticity(update, names)
    return xr.Dataset(
        {"le": (("probe",), le), "accuracy": ((), sim.accuracy())},
        coords={"probe": names},
        attrs={"phenomenon": "local_elasticity", "update": update, "a": a, "b": b, "steps": steps, "sampling": sampling, "seed": seed},
    )
