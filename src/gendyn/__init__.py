"""gendyn: train networks while recording how each input travels through them.

The public reading API (``open_run``, ``open_experiment``, ``masks``, ``load_model``,
``tracked_inputs``) is importable from the top level; measure modules are submodules
(``gendyn.paths``, ``gendyn.lc``, ...). See README.md and docs/.

Top-level names are imported lazily, so light modules such as ``gendyn.config`` (used by
every Snakemake invocation) load without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = ("open_run", "open_experiment", "Experiment", "masks", "load_model", "tracked_inputs", "run_config")

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("gendyn.api"), name)
    raise AttributeError(f"module 'gendyn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
