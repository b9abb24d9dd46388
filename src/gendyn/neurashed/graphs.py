"""Neurashed graphs (paper 002, Sec. 2): levelled graphs of feature nodes and their pathways.

A neurashed is a levelled graph of *feature* nodes. Level 1 nodes fire as the input says;
a node of a middle level fires when its rule holds on its parents one level below (``or``:
at least one parent fires, ``and``: all fire, an integer ``k``: at least k fire); the top
level holds one node per class and only the label's node fires. A sample **type** is its
set of firing level-1 nodes plus its label; its **pathway** is the set of all its firing
nodes.

The paper gives drawings, not graphs; the built-in graphs ``fig1``, ``fig3`` and ``fig4``
are the concrete readings of the project spec (``specs/elasticity-neurashed.md`` §2.3).
The dynamics on a graph are :class:`gendyn.neurashed.simulator.Neurashed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Graph", "FireRule", "GRAPHS", "builtin_graph"]

#: Firing rule of a middle node: ``"or"``, ``"and"`` or an int k (at least k parents fire).
FireRule = str | int


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
