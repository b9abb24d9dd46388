"""Build the reproduction index: every claim of every paper figure, from the analysis files.

For every paper (000-003), every figure any registered measure reproduces
(:func:`gendyn.registry.paper_figures`) and every claim of that figure
(:attr:`gendyn.registry.Measure.claims`), :func:`build_index` finds the experiments (or
neurashed studies) that declare the figure (:func:`gendyn.reproduction.declare.declarations`),
reads the files the claim needs (``run.h5`` and the stage outputs named in ``Claim.needs``,
located through the registry's stage outputs), calls the claim
(``gendyn.<measure>.claims.<name>``) with the thresholds of ``reproduction.thresholds`` and
writes one row per declaring experiment (one row for a pooled claim). A figure no active
experiment declares gets a ``not run`` row per claim, so the index always lists every figure
of the four papers. :func:`write_index` publishes the CSV (and an HTML table for the report)
atomically through :mod:`gendyn.store`.
"""

from __future__ import annotations

import csv
import html
import importlib
import io
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gendyn import registry
from gendyn.reproduction.core import NOT_RUN, VERDICTS, Evidence, Outcome, RunResult, fmt
from gendyn.reproduction.declare import PRETRAINED_RUN
from gendyn.reproduction.table import COLUMNS, figure_sort_key

__all__ = ["build_index", "write_index", "render_html", "thresholds_for", "claim_function"]

logger = logging.getLogger(__name__)

Group = Sequence[tuple[str, Sequence[str] | None]]  # (experiment or study, run ids or None for a study)


def thresholds_for(settings: Mapping[str, Any], measure: str) -> dict[str, Any]:
    """The thresholds a claim of ``measure`` reads: ``common`` overlaid by the measure's section."""
    th = settings.get("thresholds", {})
    return {**th.get("common", {}), **th.get(measure, {})}


def claim_function(measure: str, claim: registry.Claim) -> Any:
    """``gendyn.<measure>.claims.<name>``, imported on first use."""
    return getattr(importlib.import_module(f"gendyn.{measure}.claims"), claim.name)


class _Reader:
    """Opens the result files of one index build once each (lazily, kept open until close)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._datasets: dict[str, Any] = {}
        self._runs: dict[tuple[str, str], RunResult | str] = {}

    def dataset(self, rel: str) -> Any:
        if rel not in self._datasets:
            from gendyn import store

            path = self.root / rel
            self._datasets[rel] = store.open_analysis(path) if path.exists() else None
        return self._datasets[rel]

    def run(self, experiment: str, run: str) -> RunResult | str:
        """The run, or why it cannot be read (no run.h5, an unfinished or foreign one)."""
        key = (experiment, run)
        if key not in self._runs:
            from gendyn.store import StoreError

            try:
                self._runs[key] = self._read_run(experiment, run)
            except StoreError as e:
                self._runs[key] = str(e)
        return self._runs[key]

    def _read_run(self, experiment: str, run: str) -> RunResult | str:
        import xarray as xr

        from gendyn import store

        rel = f"{experiment}/runs/{run}/{store.RUN_FILE}"
        path = self.root / rel
        if not path.exists():
            return RunResult(experiment, run) if run == PRETRAINED_RUN else "no run.h5"
        attrs = store.check_run_file(path)
        cfg = json.loads(attrs.get("config", "{}"))
        metrics = xr.open_dataset(path, group="metrics", engine="h5netcdf")
        self._datasets[rel + "#metrics"] = metrics
        return RunResult(experiment, run, cfg, attrs, metrics, {}, (rel,))

    def close(self) -> None:
        for ds in self._datasets.values():
            if ds is not None:
                ds.close()
        self._datasets.clear()


def _evidence(reader: _Reader, measure: registry.Measure, claim: registry.Claim, group: Group, study: bool) -> tuple[Evidence, list[str], list[str], dict[tuple[str, str], tuple[str, ...]]]:
    """(evidence, problems that make the row `not run`, runs left out, files per run key + ("", "") for experiment files)."""
    from gendyn import store

    per_run = [s for s in claim.needs if "{run}" in measure.stage(s).output]
    per_exp = [s for s in claim.needs if "{run}" not in measure.stage(s).output]
    problems: list[str] = []
    left_out: list[str] = []
    files: dict[tuple[str, str], tuple[str, ...]] = {}
    outputs: dict[str, dict[str, Any]] = {}
    runs: list[RunResult] = []
    exp_files: list[str] = []
    for name, rids in group:
        base = f"neurashed/{name}" if study else name
        for stage in per_exp:
            rel = f"{base}/{measure.stage(stage).output}"
            ds = reader.dataset(rel)
            if ds is None:
                problems.append(f"missing {rel}")
            else:
                outputs.setdefault(name, {})[stage] = ds
                exp_files.append(rel)
        for rid in rids or ():
            r = reader.run(name, rid)
            if isinstance(r, str):
                left_out.append(f"{name}/{rid}: {r}")
                continue
            analyses, own, missing, skipped = {}, [], [], []
            for stage in per_run:
                rel = f"{name}/{measure.stage(stage).output.format(run=rid)}"
                ds = reader.dataset(rel)
                if ds is None:
                    missing.append(rel)
                elif store.is_skipped(ds):  # the stage skipped the run (a diverged run: too few records)
                    skipped.append(f"{rel} ({ds.attrs[store.SKIPPED_ATTR]})")
                else:
                    analyses[stage] = ds
                    own.append(rel)
            if (missing or skipped) and not r.diverged:
                why = [f"missing {', '.join(missing)}"] if missing else []
                why += [f"skipped {', '.join(skipped)}"] if skipped else []
                left_out.append(f"{name}/{rid}: {'; '.join(why)}")
                continue
            run_files = tuple(own) if per_run else r.files
            runs.append(RunResult(r.experiment, r.run, r.config, r.attrs, r.metrics, analyses, run_files))
            files[r.key] = run_files
    if per_run and not runs and not problems:
        problems.append("no run with every file the claim reads" + (f" ({'; '.join(left_out)})" if left_out else ""))
    files[("", "")] = tuple(exp_files)
    ev = Evidence(tuple(name for name, _ in group), tuple(runs), outputs)
    return ev, problems, left_out, files


def _value(v: Any) -> str:
    if isinstance(v, str):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "" if math.isnan(f) else fmt(f, 4)


def _row(paper: str, figure: str, claim: registry.Claim, out: Outcome, experiments: Sequence[str], runs: Sequence[tuple[str, str]], files: Sequence[str], extra_note: str = "") -> dict[str, str]:
    several = len({e for e, _ in runs}) > 1
    run_col = ";".join(f"{e}/{r}" if several else r for e, r in runs)
    note = "; ".join(x for x in (out.note, extra_note) if x)
    return {
        "paper": paper,
        "figure": figure,
        "claim": claim.text,
        "statistic": claim.statistic,
        "value": _value(out.value),
        "threshold": out.threshold,
        "verdict": out.verdict,
        "experiment": ";".join(experiments),
        "run": run_col,
        "files": ";".join(dict.fromkeys(files)),
        "note": note,
    }


def build_index(results_dir: Path | str, declared: Mapping[str, Any], settings: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every row of the reproduction index.

    Parameters
    ----------
    results_dir : path
        The results folder (``results_dir`` of the config): ``{experiment}/...`` and
        ``neurashed/{study}/...`` below it.
    declared : mapping
        :func:`gendyn.reproduction.declare.declarations` of the config: which experiments and
        runs (and which studies) declare each paper figure.
    settings : mapping
        The ``reproduction`` section, resolved (``gendyn.config.stage_settings("reproduction", ...)``).

    Returns
    -------
    list of dict
        One dict per row with the columns of :data:`gendyn.reproduction.table.COLUMNS`, in
        paper order, figures by number, claims in registry order.

    Notes
    -----
    A claim that raises is reported in its row (verdict ``not run``, the error in ``note``)
    and logged with its traceback, so one broken claim never hides the others.
    """
    root = Path(results_dir)
    by_figure: dict[str, list[tuple[str, Sequence[str] | None, bool]]] = {}
    for exp, figs in (declared.get("experiments") or {}).items():
        for fid, rids in figs.items():
            by_figure.setdefault(fid, []).append((exp, list(rids), False))
    for study, figs in (declared.get("studies") or {}).items():
        for fid in figs:
            by_figure.setdefault(fid, []).append((study, None, True))
    rows: list[dict[str, str]] = []
    reader = _Reader(root)
    try:
        for paper, figures in registry.paper_figures().items():
            for figure in sorted(figures, key=figure_sort_key):
                fid = f"{paper}:{figure}"
                for measure, claim in registry.claims_for(paper, figure):
                    decl = [d for d in by_figure.get(fid, []) if d[2] == (measure.name == "neurashed")]
                    if not decl:
                        where = "neurashed study" if measure.name == "neurashed" else "active experiment"
                        out = Outcome(float("nan"), NOT_RUN, "", f"no {where} declares reproduces: {fid}", ())
                        rows.append(_row(paper, figure, claim, out, (), (), ()))
                        continue
                    groups = [decl] if claim.scope == "pooled" else [[d] for d in decl]
                    for group in groups:
                        rows.append(_one(reader, paper, figure, measure, claim, group, settings))
    finally:
        reader.close()
    return rows


def _one(reader: _Reader, paper: str, figure: str, measure: registry.Measure, claim: registry.Claim, group: Sequence[tuple[str, Sequence[str] | None, bool]], settings: Mapping[str, Any]) -> dict[str, str]:
    study = group[0][2]
    names = [f"neurashed/{name}" if study else name for name, _, _ in group]
    ev, problems, left_out, files = _evidence(reader, measure, claim, [(n, r) for n, r, _ in group], study)
    extra = f"left out: {'; '.join(left_out)}" if left_out else ""
    if problems:
        out = Outcome(float("nan"), NOT_RUN, "", "; ".join(problems), ())
        return _row(paper, figure, claim, out, names, (), (), extra if "no run with" not in problems[0] else "")
    try:
        out = claim_function(measure.name, claim)(ev, thresholds_for(settings, measure.name))
    except Exception as e:  # noqa: BLE001 - reported in the row, traceback in the log
        logger.warning("claim %s.%s on %s failed", measure.name, claim.name, names, exc_info=True)
        out = Outcome(float("nan"), NOT_RUN, "", f"claim failed: {type(e).__name__}: {e}", ())
    used = [r.key for r in ev.runs] if out.runs is None else list(out.runs)
    used_files = [f for key in used for f in files.get(key, ())] + list(files[("", "")])
    if out.verdict == NOT_RUN and not used:
        used_files = []
    return _row(paper, figure, claim, out, names, used, used_files, extra)


# --------------------------------------------------------------------------- output


def _csv_text(rows: Sequence[Mapping[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({c: row.get(c, "") for c in COLUMNS})
    return buf.getvalue()


_COLOURS = {"reproduced": "#1a7f37", "partial": "#9a6700", "not reproduced": "#cf222e", "not run": "#6e7781"}
_CELL = "padding:2px 6px;vertical-align:top;text-align:left"


def _summary_line(rows: Sequence[Mapping[str, str]]) -> str:
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    parts = ", ".join(f'<span style="color:{_COLOURS[v]};font-weight:bold">{n} {v}</span>' for v, n in counts.items())
    n_fig = len({(r["paper"], r["figure"]) for r in rows})
    return f"{len(rows)} claims of {n_fig} paper figures: {parts}."


def render_html(rows: Sequence[Mapping[str, str]], *, compact: bool = False) -> str:
    """The index as one HTML fragment (inline styles only): a summary line and a table.

    ``compact`` keeps what a reader scans first — figure, claim (with the experiment it was
    computed from), value, verdict — narrow enough for the description column of the report's
    first page (``workflow/report/workflow.rst``); the full table adds the statistic, the
    threshold, the runs and the note with the measured reason.
    """
    titles: dict[str, list[str]] = {}
    for m in registry.measures():
        titles.setdefault(m.paper, []).append(m.title)
    e = html.escape
    heads = ("figure", "claim", "value", "verdict") if compact else (
        "figure", "claim", "statistic", "value", "threshold", "verdict", "from", "note")  # fmt: skip
    size = "11px" if compact else "12px"
    out = [
        f'<div class="gendyn-reproduction" style="font-size:{size};line-height:1.35">',
        f"<p>{_summary_line(rows)}</p>",
        f'<table style="border-collapse:collapse;width:100%;margin:0;font-size:{size}">',
        "<tr>" + "".join(f'<th style="{_CELL};border-bottom:2px solid #888">{h}</th>' for h in heads) + "</tr>",
    ]
    last_paper = None
    for r in rows:
        if r["paper"] != last_paper:
            last_paper = r["paper"]
            title = " / ".join(titles.get(r["paper"], []))
            out.append(f'<tr><td colspan="{len(heads)}" style="{_CELL};padding-top:8px;font-weight:bold;'
                       f'border-bottom:1px solid #bbb">Paper {e(r["paper"])} - {e(title)}</td></tr>')  # fmt: skip
        colour = _COLOURS.get(r["verdict"], "#000")
        claim = e(r["claim"])
        if compact and r["experiment"]:
            claim += f'<br><span style="color:#666">{e(r["experiment"])}</span>'
        cells = {
            "figure": e(r["figure"]),
            "claim": claim,
            "statistic": e(r["statistic"]),
            "value": e(r["value"]),
            "threshold": e(r["threshold"]),
            "verdict": f'<span style="color:{colour};font-weight:bold">{e(r["verdict"])}</span>',
            "from": e(r["experiment"] + (f" ({r['run']})" if r["run"] else "")),
            "note": f'<span style="font-size:11px;color:#444">{e(r["note"])}</span>',
        }
        tds = "".join(f'<td style="{_CELL}{";white-space:nowrap" if h in ("figure", "verdict") else ""}">{cells[h]}</td>' for h in heads)
        out.append(f'<tr style="border-bottom:1px solid #eee">{tds}</tr>')
    out += ["</table>", "</div>", ""]
    return "\n".join(out)


def write_index(
    rows: Sequence[Mapping[str, str]],
    csv_path: Path | str,
    html_path: Path | str | None = None,
    summary_path: Path | str | None = None,
) -> None:
    """Publish the index atomically: the CSV and, if given, the full HTML table (a whole page,
    UTF-8, the report's "Reproduction index" item) and the compact fragment of
    :func:`render_html` (the report's first page)."""
    from gendyn.store import atomic_write_text

    atomic_write_text(Path(csv_path), _csv_text(rows))
    if html_path is not None:
        page = ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>gendyn reproduction index</title></head>\n'
                f'<body style="font-family:sans-serif;margin:1em">\n<h2>Reproduction index</h2>\n{render_html(rows)}</body></html>\n')  # fmt: skip
        atomic_write_text(Path(html_path), page)
    if summary_path is not None:
        atomic_write_text(Path(summary_path), render_html(rows, compact=True))
