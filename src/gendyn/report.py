"""The report's labels and captions: which paper figure a figure reproduces, the values its job
used, and the verdicts of the reproduction index.

The workflow passes one :class:`FigureCaptions` per figure job as a param; the caption template
(``workflow/report/figure.rst``) calls ``snakemake.params.report.caption(figure)`` when the
report is built. Snakemake leaves params that are not builtin types out of its rerun trigger,
so neither an edited caption text nor a new ``results/reproduction.csv`` (written after the
figures) reschedules a figure job; the verdicts are read when the report is rendered.

Light: no torch, no matplotlib (Snakemake builds these while parsing the workflow).

Labels have one format: the paper's figure ids (``Fig 2``, ``Fig 1a``, ``App. E``, ``Sec. 4``,
``R1``) joined by ", ", or the figure's title for project figures that reproduce none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gendyn import registry

__all__ = [
    "paper_ids",
    "figure_label",
    "read_verdicts",
    "verdict_lines",
    "caption_values",
    "FigureCaptions",
]

#: What an experiment declares (:func:`gendyn.reproduction.declare.declarations`): paper figure
#: id (``"001:Fig 2"``) -> the run ids it is declared for (empty: every run, or a study).
Declared = Mapping[str, Sequence[str]]


def paper_ids(figure_set: str, figure: str, declared: Declared | None = None, run: str = "") -> tuple[str, ...]:
    """The paper figures ``figure`` of ``figure_set`` reproduces for this experiment (and run).

    The ids the figure type can show (``FigureInfo.shows``) that the experiment declares in its
    ``reproduces`` (for a run figure: declared for this run). ``declared`` None (an experiment
    that declares nothing): every id the figure type can show.
    """
    info = registry.figure_info(figure_set, figure)
    if declared is None or not info.shows:
        return tuple(info.shows)
    paper = registry.figure_set(figure_set).paper
    out = []
    for fig in info.shows:
        runs = declared.get(f"{paper}:{fig}")
        if runs is None:
            continue
        if run and runs and run not in runs:
            continue
        out.append(fig)
    return tuple(out)


def figure_label(figure_set: str, figure: str, declared: Declared | None = None, run: str = "") -> str:
    """The report label of a figure: its paper ids (``Fig 2, Fig 9``) or, for a project figure, its title."""
    ids = paper_ids(figure_set, figure, declared, run)
    if ids:
        return ", ".join(ids)
    info = registry.figure_info(figure_set, figure)
    if figure.startswith("compare_"):
        from gendyn.figures.names import readable_key

        return f"{info.title}: {readable_key(figure[len('compare_'):])}"
    return info.title


# --------------------------------------------------------------------------- reproduction index


def read_verdicts(
    index_csv: Path | str, paper: str, figure_ids: Iterable[str], experiment: str, run: str = ""
) -> list[dict[str, str]]:
    """Rows of the reproduction index for these paper figures of one experiment (and run).

    :func:`gendyn.reproduction.table.verdicts`; for a run's figure, only rows computed from
    that run (or from no particular run). A missing file gives no rows.
    """
    from gendyn.reproduction.table import verdicts

    rows = verdicts(index_csv, paper, list(figure_ids), experiment)
    if run:
        rows = [r for r in rows if not (r.get("run") or "") or run in str(r["run"]).split(";")]
    return rows


def verdict_lines(rows: Sequence[Mapping[str, str]]) -> list[str]:
    """reStructuredText bullet lines of index rows:
    ``- **REPRODUCED** Fig 2: claim (statistic = value; threshold t)``, then the measured note."""
    lines = []
    for row in rows:
        stat = row.get("statistic", "")
        detail = f"{stat} = {row.get('value', '')}" if stat else ""
        if row.get("threshold", ""):
            detail += f"{'; ' if detail else ''}threshold {row['threshold']}"
        text = f"- **{row.get('verdict', '').upper() or '?'}** {row.get('figure', '')}: {row.get('claim', '')}"
        text += f" ({detail})" if detail else ""
        if row.get("note"):
            text += f" -- {row['note']}"
        lines.append(text)
    return lines


# --------------------------------------------------------------------------- caption values


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _layers(spec: Sequence[Any]) -> str:
    names = []
    for item in spec:
        if isinstance(item, int) or (isinstance(item, str) and item.lstrip("-").isdigit()):
            i = int(item)
            names.append(f"{i}" if i > 0 else ("the last" if i == -1 else f"the {-i}th from last"))
        else:
            names.append(str(item))
    return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1] if names else ""


def _seeds(runs: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]]) -> tuple[list[Any], str]:
    """Distinct training seeds of the runs and the caption text about how they are pooled."""
    from gendyn.figures.names import SEED_BAND

    seeds = list(dict.fromkeys(cfg.get("training", {}).get("seed") for _, cfg in runs.values()))
    swept = any("training.seed" in swept for swept, _ in runs.values())
    if swept and len(seeds) > 1:
        text = (f"Runs that differ only in their seed ({len(seeds)} seeds: {_fmt(seeds)}) are pooled: their mean, "
                f"with their {SEED_BAND} range as band or error bars.")  # fmt: skip
    else:
        text = f"One seed ({_fmt(seeds)}) per configuration: no seed band."
    return seeds, text


def _x_text(view: Mapping[str, Any], runs: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]]) -> str:
    kinds = {cfg.get("recording", {}).get("schedule", {}).get("kind") for _, cfg in runs.values()}
    opt = view.get("x_axis", "auto")
    epoch = opt == "epoch" or (opt == "auto" and kinds == {"epoch"})
    log = view.get("log_x", "auto") is True or view.get("log_x") == "true" or (
        view.get("log_x", "auto") == "auto" and kinds & {"log", "lc"}
    )
    return ("epochs" if epoch else "optimisation steps") + (" + 1 on a log scale" if log else "")


def caption_values(
    figure_set: str,
    experiment: str,
    run: str = "",
    *,
    settings: Mapping[str, Any] | None = None,
    view: Mapping[str, Any] | None = None,
    runs: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The values a figure job used, by the names the registry captions quote (``{radius}``, ...).

    Parameters
    ----------
    figure_set : str
        A measure or ``views``.
    experiment, run : str
        Names (``run`` empty for experiment figures).
    settings : mapping
        The experiment's resolved ``analyses.<measure>`` (for neurashed: the study's settings).
    view : mapping
        The experiment's plot options (``experiments.<name>.figures``).
    runs : mapping run id -> (swept values, resolved run config)
        The experiment's runs (the figure's run alone for run figures is read from it).
    """
    s = dict(settings or {})
    view = dict(view or {})
    runs = dict(runs or {})
    v: dict[str, Any] = {"experiment": experiment, "run": run}
    seeds, v["seeds"] = _seeds(runs) if runs else ([], "")
    v["x_axis"] = _x_text(view, {run: runs[run]} if run in runs else runs) if runs else "optimisation steps"
    if figure_set == "paths":
        f = s.get("figures", {})
        v.update(
            layers=_layers(f.get("layers", [1, 2, -1])),
            rank_layer=f.get("rank_layer", 2),
            ratio_layer=s.get("ratio_layer", 2),
            hist_bins=s.get("hist_bins", 1000),
            resolution=_fmt(1.0 / float(s.get("hist_bins", 1000))),
            norm={"l2": "cosine (l2)", "jaccard": "Jaccard"}.get(s.get("norm", "l2"), s.get("norm")),
            lag=s.get("lag", 1),
            baselines=_fmt([int(b) for b in s.get("baselines", [5, 10, 15])]),
            top_k=s.get("top_k", 6),
            top_last=int(s.get("top_k", 6)) - 1,
            n_candidates=s.get("n_candidates", 128),
            overlap_images=s.get("overlap_images", 512),
            max_points=f.get("max_points", 20000),
            generalization={"test_acc": "final test accuracy (%)", "test_error": "final test error (%)",
                            "gap": "final train - test accuracy (%)"}.get(f.get("generalization", "test_acc")),  # fmt: skip
            fig7_experiments=(" and of " + _fmt(f["fig7_experiments"])) if f.get("fig7_experiments") else "",
            n_tracked=_fmt(sorted({cfg.get("recording", {}).get("n_tracked_train") for _, cfg in runs.values()})) if runs else "?",
        )
    elif figure_set == "lc":
        f = s.get("figures", {})
        radii = [float(r) for r in s.get("radii", [1.0])]
        radius = f.get("radius")
        shown = min(radii, key=lambda r: abs(r - float(radius))) if radius is not None else max(radii)
        rob = s.get("robust") or {}
        reg = s.get("regions") or {}
        v.update(
            radius=_fmt(shown),
            radii=_fmt(radii),
            sweep_radii=_fmt(f.get("sweep_radii") or radii),
            P=s.get("n_directions", 25),
            band=_fmt(float(f.get("band", 0.25))),
            n_train=s.get("n_train"),
            n_test=s.get("n_test"),
            n_random=s.get("n_random"),
            eps=_fmt(float(rob.get("eps", 0.1))),
            alpha=_fmt(float(rob.get("alpha", 0.01))),
            pgd_steps=rob.get("steps", 20),
            pgd_points=rob.get("n_points", 1000),
            region_records=reg.get("n_records", 6),
            local_points=reg.get("local_points", 5),
            local_radius=_fmt(float(reg.get("local_radius") or max(radii))),
        )
    elif figure_set == "elasticity":
        f = s.get("figures", {})
        h = s.get("histograms") or {}
        names = h.get("class_names") or [str(c) for c in (h.get("classes") or [])]
        cl = s.get("cluster") or {}
        v.update(
            lr=_fmt(float(s.get("lr", 0.01))),
            hist_lr=_fmt(float(h.get("lr") or s.get("lr", 0.01))),
            form=s.get("form", "exact"),
            n_per_class=s.get("n_per_class") or "all tracked",
            matrix_stat=f.get("matrix_stat", "median"),
            hist_classes=_fmt(names) or "every class",
            hist_n=h.get("n_per_class", 120),
            n_bins=s.get("n_bins", 50),
            bin_width=_fmt(1.0 / float(s.get("n_bins", 50))),
            cluster_method=cl.get("method", "spectral"),
            pca_dims=cl.get("pca_dims", 50),
        )
    elif figure_set == "memorization":
        ks = sorted({float((cfg.get("training", {}).get("objective") or {}).get("k", 0.11)) for _, cfg in runs.values()
                     if (cfg.get("training", {}).get("objective") or {}).get("name") == "J0"})  # fmt: skip
        v.update(
            tau=_fmt(float(s.get("threshold", 0.9))),
            metric={"train_acc": "training accuracy", "test_acc": "test accuracy", "heldout_acc": "held-out accuracy",
                    "gap": "train - test accuracy"}.get(s.get("threshold_metric", "train_acc")),  # fmt: skip
            patience=s.get("patience", 1),
            k=_fmt(ks) if ks else "(no J⁰ run)",
            compare=(" Runs of " + _fmt(s["compare_experiments"]) + " with the same objective are drawn as further groups.")
            if s.get("compare_experiments") else "",
        )
    elif figure_set == "neurashed":
        ir = s.get("implicit_regularization", {})
        ib = s.get("information_bottleneck", {})
        le = s.get("local_elasticity", {})
        v.update(
            seeds=f"{len(s.get('seeds', [0]))} seeds ({_fmt(s.get('seeds', [0]))})",
            ir_a=_fmt(float(ir.get("a", 1.02))), ir_b=_fmt(float(ir.get("b", 0.995))), ir_steps=ir.get("steps", 2000),
            ib_base=_fmt(float(ib.get("base", 1.022))), ib_plus=_fmt(float(ib.get("plus_exponent", 1.25))),
            ib_minus=_fmt(float(ib.get("minus_exponent", -0.25))), ib_dom=_fmt(float(ib.get("dominant_exponent", 0.75))),
            ib_steps=ib.get("steps", 4000), ib_sigma=_fmt(float(ib.get("sigma", 0.02))), ib_s0=_fmt(float(ib.get("s0", 0.03))),
            ib_draws=ib.get("n_draws", 400),
            le_a=_fmt(float(le.get("a", 1.02))), le_b=_fmt(float(le.get("b", 0.998))), le_steps=le.get("steps", 500),
        )  # fmt: skip
    return v


# --------------------------------------------------------------------------- the param object


@dataclass(frozen=True, repr=False)
class FigureCaptions:
    """Captions and labels of the figures of one figure job, for the report.

    Not a builtin type, so Snakemake keeps it out of the job's rerun trigger; the template
    calls :meth:`caption` per figure when the report is rendered.

    Attributes
    ----------
    figure_set : str
        A measure or ``views``.
    experiment, run : str
    values : mapping
        :func:`caption_values` of the job.
    declared : mapping or None
        What the experiment declares (:data:`Declared`); None: it declares nothing.
    index_csv : str
        The reproduction index (``results/reproduction.csv``); absent = no verdicts.
    """

    figure_set: str
    experiment: str
    run: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    declared: Declared | None = None
    index_csv: str = ""

    def __repr__(self) -> str:  # what Snakemake prints for the param
        where = f"{self.experiment}/{self.run}" if self.run else self.experiment
        return f"FigureCaptions({self.figure_set}, {where})"

    def ids(self, figure: str) -> tuple[str, ...]:
        return paper_ids(self.figure_set, figure, self.declared, self.run)

    def label(self, figure: str) -> str:
        return figure_label(self.figure_set, figure, self.declared, self.run)

    def caption(self, figure: str) -> str:
        """reStructuredText caption of ``figure``: the registry text with the job's values, the
        paper figures it reproduces, and the reproduction verdicts where the index has them."""

        m = registry.figure_set(self.figure_set)
        info = m.figure(figure)
        values = dict(self.values)
        if figure.startswith("compare_"):
            from gendyn.figures.names import readable_key

            values["key"] = figure[len("compare_"):]
            values["key_name"] = readable_key(values["key"])
        text = m.caption(figure, values)
        ids = self.ids(figure)
        if m.paper:
            if ids:
                text += f"\n\nReproduces paper {m.paper}, {', '.join(ids)}."
            elif info.shows:
                text += f"\n\nProject figure for this experiment (the figure type can show paper {m.paper} {', '.join(info.shows)})."
        if self.index_csv and Path(self.index_csv).is_file() and m.paper:
            rows = read_verdicts(self.index_csv, m.paper, ids, self.experiment, self.run)
            if rows:
                text += "\n\nReproduction index (``" + str(self.index_csv) + "``):\n\n" + "\n".join(verdict_lines(rows))
            elif ids:
                text += f"\n\nReproduction index: no verdict recorded for {', '.join(ids)} of ``{self.experiment}``."
        return text

    def to_json(self) -> str:
        """The object's content (for tests and debugging)."""
        return json.dumps({"set": self.figure_set, "experiment": self.experiment, "run": self.run,
                           "values": dict(self.values), "declared": None if self.declared is None else {k: list(v) for k, v in self.declared.items()},
                           "index_csv": self.index_csv}, sort_keys=True, default=str)  # fmt: skip
