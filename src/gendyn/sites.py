"""Recording and counting sites: the layers of units a measure reads, in forward order.

One discovery for every measure: recording (``gendyn.record``, ReLU masks), local complexity
and exact region maps (``gendyn.lc``). A site is a module whose *input* (ReLU-like, max-pool)
or *output* (affine, ``kind="linear"``) holds one layer of units; sites are found with hooks
during one eval-mode forward, so their order is the order they fire and their unit shapes are
the real ones. Stored names (in ``run.h5`` and analysis files) are the module path with dots
replaced by underscores (:func:`site_name`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Site", "site_name", "find_sites"]


@dataclass(frozen=True)
class Site:
    """One layer of units.

    Attributes
    ----------
    name : str
        Stored name: the module path with dots replaced by underscores (:func:`site_name`).
    module : str
        Qualified module name (``model.get_submodule(module)``).
    kind : str
        What is read: ``"linear"`` = the module's output; anything else (``"relu"``,
        ``"maxpool"``) = its input.
    unit_shape : tuple of int
        Shape of one sample's units (conv: (C, H, W)).
    """

    name: str
    module: str
    kind: str
    unit_shape: tuple[int, ...]

    @property
    def n_units(self) -> int:
        return int(math.prod(self.unit_shape)) if self.unit_shape else 1

    @property
    def reads_output(self) -> bool:
        return self.kind == "linear"


def site_name(module_name: str) -> str:
    """Stored name of a site: ``features.3.relu`` → ``features_3_relu`` (the root: ``model``)."""
    return module_name.replace(".", "_") or "model"


def find_sites(
    model: nn.Module,
    example: torch.Tensor,
    kind_of: Callable[[nn.Module], str | None],
    *,
    what: str = "site",
) -> list[Site]:
    """The sites of ``model`` in the order they fire in one eval-mode forward of ``example[:1]``.

    Parameters
    ----------
    model : nn.Module
        Restored to its previous train/eval mode afterwards; weights untouched.
    example : (n, *input_shape) tensor
        At least one input on the model's device and dtype.
    kind_of : callable
        ``module -> kind`` for modules that are sites (``"linear"``: read the output; any other
        string: read the input), None for the others.
    what : str
        Name of the kind of site, for error messages (``"nn.ReLU module"``).

    Raises
    ------
    ValueError
        If no site fires, a site module runs twice in one forward (give each use its own
        module), or two sites get the same stored name.
    """
    seen: list[tuple[str, str, tuple[int, ...]]] = []
    handles = []

    def make(name: str, kind: str) -> Callable[..., None]:
        if kind == "linear":
            return lambda _m, _inp, out: seen.append((name, kind, tuple(out.shape[1:])))
        return lambda _m, inputs: seen.append((name, kind, tuple(inputs[0].shape[1:])))

    for name, mod in model.named_modules():
        kind = kind_of(mod)
        if kind is None:
            continue
        hook: Any = make(name, kind)
        handles.append(mod.register_forward_hook(hook) if kind == "linear" else mod.register_forward_pre_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example[:1])
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    if not seen:
        raise ValueError(f"{type(model).__name__}: no {what} fires in a forward pass; nothing to read")
    names = [n for n, _, _ in seen]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(
            f"{type(model).__name__}: {what}(s) {dup} run more than once per forward; give each use its own module"
        )
    sites = [Site(site_name(n), n, kind, shape) for n, kind, shape in seen]
    stored = [s.name for s in sites]
    if len(set(stored)) != len(stored):
        raise ValueError(f"{type(model).__name__}: site names collide after replacing dots: {stored}")
    return sites
