"""Lazy public names of a package: import the defining module on first attribute access.

Every measure package exports its names this way, so ``import gendyn.lc`` (done by every
``gendyn`` command, which registers each measure's CLI) does not import torch or matplotlib.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, modules: Mapping[str, Iterable[str]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, module-level ``__getattr__`` and ``__dir__`` for ``package``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    modules : mapping
        Defining module -> the public names it provides; the module is relative to the package
        (``"complexity"``) or absolute (``"gendyn.api"``).

    Examples
    --------
    >>> __all__, __getattr__, __dir__ = lazy_exports(__name__, {"complexity": ["local_complexity"]})  # doctest: +SKIP
    """
    names = {name: module for module, members in modules.items() for name in members}

    def __getattr__(name: str) -> Any:
        if name in names:
            module = names[name]
            full = module if module.startswith("gendyn.") else f"{package}.{module}"
            return getattr(importlib.import_module(full), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        import sys

        return sorted({*vars(sys.modules[package]), *names})

    return sorted(n for n in names if not n.startswith("_")), __getattr__, __dir__
