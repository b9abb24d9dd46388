"""gendyn: train networks while recording how each input travels through them.

The public reading API (``open_run``, ``open_experiment``, ``masks``, ``load_model``,
``tracked_inputs``) is importable from the top level; measure modules are submodules
(``gendyn.paths``, ``gendyn.lc``, ...). See README.md and docs/.

Top-level names are imported lazily, so light modules such as ``gendyn.config`` (used by
every Snakemake invocation) load without importing torch.
"""

from __future__ import annotations

from gendyn._lazy import lazy_exports

__version__ = "0.1.0"

_API = (
    "open_run",
    "open_experiment",
    "Experiment",
    "masks",
    "load_model",
    "tracked_inputs",
    "run_config",
    "diverged",
    "divergence",
    "verify",
)

_all, __getattr__, __dir__ = lazy_exports(__name__, {"gendyn.api": _API})
__all__ = ["__version__", *_all]
