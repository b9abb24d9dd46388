"""gendyn: train networks while recording how each input travels through them.

The public reading API (``open_run``, ``open_experiment``, ``masks``, ``load_model``,
``tracked_inputs``) is importable from the top level; measure modules are submodules
(``gendyn.paths``, ``gendyn.lc``, ...). See README.md and docs/.
"""

from __future__ import annotations

__version__ = "0.1.0"

from gendyn.api import Experiment, load_model, masks, open_experiment, open_run, run_config, tracked_inputs

__all__ = [
    "__version__",
    "open_run",
    "open_experiment",
    "Experiment",
    "masks",
    "load_model",
    "tracked_inputs",
    "run_config",
]
