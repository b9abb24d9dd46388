"""The project's figure conventions, in one place: every figure module imports them from here.

Importing this module selects the headless ``Agg`` backend before pyplot is imported. Nothing
here changes matplotlib's global state (``rcParams``); figures pass these values explicitly.

Colours
-------
Colour encodes *which data* a curve is about, the same way in every figure:

===============  =========================================  ==========================
name             meaning                                    colour (Okabe & Ito 2008)
===============  =========================================  ==========================
``train``        training images / points, train split      blue ``#0072B2``
``test``         test images / points, test split           vermillion ``#D55E00``
``heldout``      held-out real test set (paper 003)         reddish purple ``#CC79A7``
``random``       uniform random inputs (paper 001)          bluish green ``#009E73``
``within``       pairs of the same class (paths, LE)        orange ``#E69F00``
``between``      pairs of different classes (paths, LE)     sky blue ``#56B4E9``
===============  =========================================  ==========================

The measure itself is named by the panel or axis; the statistic by the line style (mean solid,
accuracy on a twin axis dashed, ...). Where colour encodes *runs* instead (comparisons across a
sweep, paper 003 groups), :func:`group_colors` gives a second qualitative palette (Paul Tol's
"muted", also colour-blind safe and readable on white) or, for three or more ordered numbers, a
sequential one that stops before yellow; a second swept key is a line style
(:data:`LINESTYLES`), and runs that differ only in their seed are one curve: the mean over
seeds with a min-max band (:func:`seed_band`).

Axes
----
- :func:`use_log_x` is the one log-x rule of step axes (log exactly when the record schedule
  is log-spaced, unless the option says otherwise).
- :func:`log_ok`: a log y axis only for positive data spanning at least a decade.
- :func:`marker_kw`: markers on every record when records are sparse.
- :func:`legend_outside` / :func:`figure_legend`: legends never cover data.
- :func:`readable_key` / :func:`readable_value`: legend names instead of config keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - headless backend before pyplot is imported

import numpy as np  # noqa: E402

__all__ = [
    "use_log_x",
    "x_offset",
    "schedule_kind",
    "SPLIT_COLORS",
    "TRAIN_COLOR",
    "TEST_COLOR",
    "HELDOUT_COLOR",
    "RANDOM_COLOR",
    "WITHIN_COLOR",
    "BETWEEN_COLOR",
    "NEUTRAL_COLOR",
    "DECAY_STYLE",
    "GROUP_PALETTE",
    "LINESTYLES",
    "SEED_BAND",
    "group_colors",
    "group_styles",
    "marker_kw",
    "log_ok",
    "set_log_y",
    "legend_outside",
    "figure_legend",
    "readable_key",
    "readable_value",
    "assignment_label",
    "seed_band",
    "seed_note",
    "decay_handle",
    "use_epoch_x",
    "XAxis",
    "x_axis_for",
]

# --------------------------------------------------------------------------- colours

#: Okabe & Ito (2008), "Color universal design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",  # never used for lines: unreadable on white
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}

#: One colour per data split / point set, the same in every figure.
SPLIT_COLORS = {
    "train": OKABE_ITO["blue"],
    "test": OKABE_ITO["vermillion"],
    "heldout": OKABE_ITO["reddish purple"],
    "random": OKABE_ITO["bluish green"],
}
TRAIN_COLOR = SPLIT_COLORS["train"]
TEST_COLOR = SPLIT_COLORS["test"]
HELDOUT_COLOR = SPLIT_COLORS["heldout"]
RANDOM_COLOR = SPLIT_COLORS["random"]
#: Pairs of the same class / of different classes (path similarity, LE).
WITHIN_COLOR = OKABE_ITO["orange"]
BETWEEN_COLOR = OKABE_ITO["sky blue"]
#: Reference lines and single-series figures that encode no split.
NEUTRAL_COLOR = "0.25"
#: Learning-rate decays: dotted vertical lines.
DECAY_STYLE = {"color": "0.45", "ls": ":", "lw": 1.0}

#: Runs or groups of runs (Paul Tol's "muted" scheme, strongest first; pale sand left out).
GROUP_PALETTE = (
    "#332288",  # indigo
    "#CC6677",  # rose
    "#117733",  # green
    "#88CCEE",  # cyan
    "#882255",  # wine
    "#44AA99",  # teal
    "#999933",  # olive
    "#AA4499",  # purple
)
#: A second swept key: one line style per value.
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def group_colors(values: Sequence[Any]) -> dict[Any, Any]:
    """A colour per distinct value, in order of first appearance.

    Three or more distinct numbers get a sequential scale (viridis, stopped before its pale
    yellow end) ordered by value; anything else a qualitative palette (:data:`GROUP_PALETTE`,
    cycled past eight values).
    """
    import matplotlib.pyplot as plt

    distinct = list(dict.fromkeys(values))
    if len(distinct) >= 3 and all(_is_number(v) for v in distinct):
        cmap = plt.get_cmap("viridis")
        order = sorted(distinct)
        return {v: cmap(0.78 * order.index(v) / (len(order) - 1)) for v in distinct}
    return {v: GROUP_PALETTE[i % len(GROUP_PALETTE)] for i, v in enumerate(distinct)}


def group_styles(values: Sequence[Any]) -> dict[Any, Any]:
    """A line style per distinct value (a second swept key), in order of first appearance."""
    distinct = list(dict.fromkeys(values))
    return {v: LINESTYLES[i % len(LINESTYLES)] for i, v in enumerate(distinct)}


# --------------------------------------------------------------------------- axes

#: Records up to this many per curve get a marker on every record.
SPARSE_RECORDS = 30


def marker_kw(n_points: int, *, marker: str = "o", size: float = 3.0) -> dict[str, Any]:
    """Marker keywords for a line of ``n_points`` records: a marker on each when sparse, none otherwise."""
    if n_points <= SPARSE_RECORDS:
        return {"marker": marker, "ms": size}
    return {"marker": None}


def log_ok(*arrays: Any, decades: float = 1.0) -> bool:
    """True when every finite value is > 0 and they span at least ``decades`` decades.

    The rule for a log y axis: positive data that a linear axis would squash.
    """
    vals = np.concatenate([np.ravel(np.asarray(a, dtype=float)) for a in arrays]) if arrays else np.array([])
    vals = vals[np.isfinite(vals)]
    if vals.size < 2 or np.any(vals <= 0):
        return False
    return bool(np.log10(vals.max() / vals.min()) >= decades)


def set_log_y(ax: Any, *arrays: Any, decades: float = 1.0) -> bool:
    """Log-scale the y axis of ``ax`` when :func:`log_ok`; returns whether it did."""
    if log_ok(*arrays, decades=decades):
        ax.set_yscale("log")
        return True
    return False


def legend_outside(ax: Any, handles: list[Any] | None = None, labels: list[str] | None = None, *,
                   side: str = "right", fontsize: float = 7.5, **kw: Any) -> Any:
    """A legend beside ``ax`` (right) or below it, never over the data; None when empty."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    if side == "right":
        place = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}
    else:
        place = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.18), "borderaxespad": 0.0,
                 "ncol": min(len(handles), 4)}
    place.update(kw)
    return ax.legend(handles, labels, fontsize=fontsize, frameon=False, **place)


def figure_legend(fig: Any, handles: list[Any], labels: list[str], *, side: str = "right",
                  fontsize: float = 8.0, **kw: Any) -> Any:
    """A figure-level legend outside every axes (constrained layout makes room); None when empty."""
    if not handles:
        return None
    loc = {"right": "outside right upper", "bottom": "outside lower center", "top": "outside upper center"}[side]
    if side != "right":
        kw.setdefault("ncol", _fit_ncol(fig.get_figwidth(), labels, fontsize))
    return fig.legend(handles, labels, loc=loc, fontsize=fontsize, frameon=False, **kw)


def _fit_ncol(width_in: float, labels: Sequence[str], fontsize: float) -> int:
    """Columns of a legend below the axes that fit in ``width_in`` inches (estimated text widths)."""
    char_in = 0.55 * fontsize / 72.0
    widths = [len(max(str(lab).split("\n"), key=len)) * char_in + 0.55 for lab in labels]
    for ncol in range(min(len(labels), 5), 0, -1):
        rows = [widths[i::ncol] for i in range(ncol)]  # matplotlib fills columns first
        if sum(max(col) for col in rows if col) <= 0.95 * width_in:
            return ncol
    return 1


def decay_handle() -> Any:
    """Legend handle of the learning-rate decay lines."""
    from matplotlib.lines import Line2D

    return Line2D([], [], **DECAY_STYLE)


# --------------------------------------------------------------------------- names

from gendyn.figures.names import KEY_NAMES, SEED_BAND, assignment_label, readable_key, readable_value  # noqa: E402,F401


# --------------------------------------------------------------------------- seeds


def seed_band(ax: Any, x: np.ndarray, y: np.ndarray, *, color: Any, ls: Any = "-", lw: float = 1.4,
              label: str | None = None, alpha: float = 0.18, markers: bool | None = None) -> bool:
    """Mean over the first axis of ``y`` (seeds) as a line, their min-max as a band.

    ``y`` is (n_seeds, n_x) or (n_x,); NaN entries are ignored (a seed without that record).
    Returns False when nothing finite was drawn.
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    x = np.asarray(x, dtype=float)
    with np.errstate(all="ignore"):
        finite = np.isfinite(y).any(axis=0) & np.isfinite(x)
        if not finite.any():
            return False
        yy = y[:, finite]
        mean = np.nanmean(yy, axis=0)
        lo, hi = np.nanmin(yy, axis=0), np.nanmax(yy, axis=0)
    kw = marker_kw(int(finite.sum()), size=2.5) if markers is None or markers else {"marker": None}
    ax.plot(x[finite], mean, color=color, ls=ls, lw=lw, label=label, **kw)
    if y.shape[0] > 1:
        ax.fill_between(x[finite], lo, hi, color=color, alpha=alpha, lw=0)
    return True


def seed_note(n_seeds: int) -> str:
    """Legend/caption text of the seed pooling, e.g. ``mean of 3 seeds, band min-max`` ('' for one)."""
    return f"mean of {n_seeds} seeds, band {SEED_BAND}" if n_seeds > 1 else ""


# --------------------------------------------------------------------------- step axes

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


def use_epoch_x(option: Any, attrs: Mapping[str, Any] | None = None) -> bool:
    """The x-quantity rule: ``"epoch"``/``"step"`` decide; ``"auto"`` means epochs exactly when
    the run records once per epoch (schedule kind ``epoch``), else optimisation steps."""
    if option == "epoch":
        return True
    if option == "step":
        return False
    return schedule_kind(attrs or {}) == "epoch"


def x_offset(log_x: bool) -> float:
    """Added to steps on a log axis (step 0 is the initial model): 1, else 0."""
    return 1.0 if log_x else 0.0


@dataclass(frozen=True)
class XAxis:
    """The horizontal axis of a figure over training: epochs or optimisation steps, log or linear.

    On a log axis the values are shifted by 1 (record 0 is the initial model).
    """

    epoch: bool = False
    log: bool = False

    def values(self, ds: Any) -> np.ndarray:
        """x of every record of ``ds`` (a Dataset or DataArray with ``step`` and, for epochs, ``epoch``)."""
        name = "epoch" if self.epoch else "step"
        if name not in ds.coords and name not in getattr(ds, "data_vars", {}):
            raise KeyError(f"no {name!r} to draw on the x axis; coordinates: {sorted(map(str, ds.coords))}")
        return np.asarray(ds[name].values, dtype=float) + x_offset(self.log)

    def of_steps(self, steps: Any, metrics: Any) -> np.ndarray:
        """x of optimisation ``steps`` (e.g. LR decays), read through ``metrics`` (step -> epoch)."""
        steps = np.asarray(steps, dtype=float)
        if self.epoch:
            st = np.asarray(metrics["step"].values, dtype=float)
            ep = np.asarray(metrics["epoch"].values, dtype=float)
            steps = np.interp(steps, st, ep)
        return steps + x_offset(self.log)

    @property
    def label(self) -> str:
        return ("epoch" if self.epoch else "optimisation step") + (" + 1 (log scale)" if self.log else "")

    def apply(self, ax: Any, *, label: bool = True) -> None:
        """Set the scale (and, with ``label``, the label) of ``ax``'s x axis."""
        if self.log:
            ax.set_xscale("log")
        if label:
            ax.set_xlabel(self.label)


def x_axis_for(view: Mapping[str, Any], attrs: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> XAxis:
    """The x axis of a figure of one or several runs from the experiment's plot options ``view``
    (``x_axis``, ``log_x``) and the runs' ``run.h5`` attributes.

    ``x_axis: auto`` uses epochs when every run records once per epoch, or when the runs take
    different numbers of steps per epoch (a shared step axis would misalign them); ``log_x``
    follows :func:`use_log_x` on the first run.
    """
    runs = [attrs] if isinstance(attrs, Mapping) else list(attrs)
    first = runs[0] if runs else {}
    option = view.get("x_axis", "auto")
    if option == "auto":
        spe = {float(a.get("steps_per_epoch", 0) or 0) for a in runs}
        epoch = bool(runs) and (all(use_epoch_x("auto", a) for a in runs) or len(spe) > 1)
    else:
        epoch = option == "epoch"
    return XAxis(epoch=epoch, log=use_log_x(view.get("log_x", "auto"), first))
