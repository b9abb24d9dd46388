"""The project's figure conventions, in one place: backend, the log-x rule, shared colours.

Every figure module imports from here (which selects the headless ``Agg`` backend before
pyplot is imported) instead of deciding these per figure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - headless backend before pyplot is imported

__all__ = ["use_log_x", "x_offset", "TRAIN_COLOR", "TEST_COLOR", "RANDOM_COLOR", "WITHIN_COLOR", "BETWEEN_COLOR"]

#: Accuracy and loss on the training and the test set.
TRAIN_COLOR = "tab:red"
TEST_COLOR = "tab:green"
#: Random inputs (LC).
RANDOM_COLOR = "tab:blue"
#: Pairs of the same class / of different classes (path similarity, LE).
WITHIN_COLOR = "tab:purple"
BETWEEN_COLOR = "tab:orange"

LOG_SCHEDULES = ("log", "lc")


def schedule_kind(attrs: Mapping[str, Any]) -> str | None:
    """The record-schedule kind of a run (``run.h5`` root attribute ``record_schedule``)."""
    try:
        return json.loads(attrs.get("record_schedule", "{}")).get("kind")
    except (TypeError, ValueError, AttributeError):
        return None


def use_log_x(option: Any, attrs: Mapping[str, Any] | None = None) -> bool:
    """The one log-x rule of step axes.

    ``option`` True/False (or ``"true"``/``"false"``) decides; ``"auto"`` (or None) means a
    log axis exactly when the run records on a log-spaced schedule (kinds ``log`` and ``lc``,
    read from the run's ``record_schedule`` attribute in ``attrs``).
    """
    if option in (True, "true"):
        return True
    if option in (False, "false"):
        return False
    return schedule_kind(attrs or {}) in LOG_SCHEDULES


def x_offset(log_x: bool) -> float:
    """Added to steps on a log axis (step 0 is the initial model): 1, else 0."""
    return 1.0 if log_x else 0.0
