"""The report's labels and captions (gendyn.report) and their place in the workflow.

Captions are built from the registry's text with the values each figure job used and, once
``results/reproduction.csv`` exists, its verdicts. They reach the report through a param object
that Snakemake keeps out of its rerun trigger: a new index or an edited caption reschedules
nothing. The workflow test runs a tiny neurashed study (seconds), adds an index and builds the
report.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

INDEX_ROW = {
    "paper": "002",
    "figure": "Fig 3",
    "claim": "small batches concentrate the model on the shared nodes",
    "experiment": "tiny",
    "run": "",
    "statistic": "final share, batch 1",
    "value": "0.998",
    "threshold": ">= 0.99",
    "verdict": "reproduced",
    "files": "results/neurashed/tiny/implicit_regularization.nc",
}


def write_index(path: Path, rows: list[dict[str, str]]) -> Path:
    from gendyn.reproduction.table import COLUMNS

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return path


# --------------------------------------------------------------------------- labels and captions


def test_labels_have_one_format_and_follow_the_experiment() -> None:
    from gendyn import registry
    from gendyn.report import figure_label, paper_ids

    pattern = re.compile(r"^((Fig \d+[a-z]?|Fig S\d+[a-z]?|App\. [A-Z]|Sec\. \d+|R\d+)(, |$))+$")
    for m in registry.measures():
        for info in m.figures:
            for i in info.shows:
                assert pattern.match(i), (m.name, info.name, i)
    assert figure_label("lc", "dynamics") == "Fig 2, Fig 9"  # an experiment that declares nothing
    # what an experiment declares (gendyn.reproduction.declare.declarations): figure -> runs
    declared = {"001:Fig 2": ["base"], "001:Fig 9": ["grok"], "003:Fig 2a": ["a", "b"], "000:Fig 1": ["base"]}
    assert figure_label("lc", "dynamics", declared) == "Fig 2, Fig 9"  # the experiment figure shows both
    assert figure_label("lc", "dynamics", declared, run="base") == "Fig 2"
    assert figure_label("lc", "dynamics", declared, run="grok") == "Fig 9"
    assert figure_label("lc", "sweep", declared) == "LC across the sweep"  # a project figure here: its title
    assert paper_ids("memorization", "curves", declared) == ("Fig 2a",)
    assert paper_ids("memorization", "curves", {}) == ()  # declares only other papers' figures
    assert figure_label("views", "compare_model.depth") == "runs compared: depth"
    assert figure_label("elasticity", "training") == "LE over training"


def _default_jobs() -> list[tuple[str, str, str, dict, dict, dict, dict]]:
    """(set, experiment, run, settings, view, runs, declared) of every figure job of the default config."""
    from gendyn.config import active_experiments, expand_experiment, load_yaml, validate_config
    from gendyn.reproduction.declare import declarations

    cfg = validate_config(load_yaml(ROOT / "config" / "config.yaml"))
    declared = declarations(cfg)
    out = []
    for name in active_experiments(cfg):
        exp = cfg["experiments"][name]
        runs = {rid: (swept, rcfg) for rid, swept, rcfg in expand_experiment(name, exp)}
        sets = ["views", *[m for m in exp["analyses"] if exp["analyses"][m] is not None]]
        for s in sets:
            settings = exp["analyses"].get(s) or {}
            for run in ["", *runs]:
                out.append((s, name, run, settings, exp["figures"], runs, declared["experiments"].get(name)))
    for study, settings in cfg["neurashed"]["studies"].items():
        ids = declared["studies"].get(study)
        out.append(("neurashed", study, "", settings, {}, {}, None if ids is None else {i: [] for i in ids}))
    return out


def test_captions_give_the_values_used_and_name_no_config_key() -> None:
    """Every caption of every default figure job is filled: no ``{field}`` left, no dotted settings key."""
    from gendyn import registry
    from gendyn.report import FigureCaptions, caption_values

    seen = 0
    for s, exp, run, settings, view, runs, declared in _default_jobs():
        m = registry.figure_set(s)
        cap = FigureCaptions(s, exp, run, caption_values(s, exp, run, settings=settings, view=view, runs=runs), declared)
        for info in m.figures:
            if (info.scope == "run") != bool(run):
                continue
            name = info.name.replace("*", "model.depth")
            text = cap.caption(name)
            seen += 1
            assert not re.search(r"\{[A-Za-z_]+\}", text), (s, exp, run, name, text)
            assert not re.search(r"``(figures|analyses|training|model|data)\.[a-z_.]+``", text), (s, name, text)
            assert "(default" not in text, (s, name, text)
    assert seen > 100
    # values a reader needs are there: the LC radius, the threshold, the seeds
    lc = {j[1]: j for j in _default_jobs() if j[0] == "lc" and j[2] == "init_scale1"}["lc_quick"]
    text = FigureCaptions("lc", "lc_quick", "init_scale1", caption_values("lc", "lc_quick", "init_scale1", settings=lc[3],
                                                                           view=lc[4], runs=lc[5]), lc[6]).caption("dynamics")
    assert "r = 1" in text and "P = 10" in text and "Reproduces paper 001, Fig 2." in text
    mem = {j[1]: j for j in _default_jobs() if j[0] == "memorization" and not j[2]}["memorization_quick"]
    text = FigureCaptions("memorization", "memorization_quick", "", caption_values(
        "memorization", "memorization_quick", settings=mem[3], view=mem[4], runs=mem[5]), mem[6]).caption("threshold")
    assert "τ = 0.9" in text and "3 seeds: 0, 1, 2" in text and "min-max" in text and "Fig 1b" in text


def test_caption_shows_the_verdicts_of_the_index(tmp_path: Path) -> None:
    from gendyn.report import FigureCaptions, read_verdicts

    index = write_index(tmp_path / "reproduction.csv", [
        INDEX_ROW,
        {**INDEX_ROW, "figure": "Fig 4", "verdict": "not reproduced", "claim": "level 2 compresses"},
        {**INDEX_ROW, "experiment": "other", "claim": "not this experiment"},
        {**INDEX_ROW, "experiment": "other;tiny", "claim": "pooled over two experiments", "verdict": "partial"},
    ])  # fmt: skip
    rows = read_verdicts(index, "002", ["Fig 3"], "tiny")
    assert [r["claim"] for r in rows] == [INDEX_ROW["claim"], "pooled over two experiments"]
    cap = FigureCaptions("neurashed", "tiny", values={"seeds": "1 seeds (0)"}, index_csv=str(index))
    text = cap.caption("fig3_implicit_regularization")
    assert "**REPRODUCED** Fig 3: small batches concentrate" in text and "(final share, batch 1 = 0.998; threshold >= 0.99)" in text
    assert "not this experiment" not in text and "compresses" not in text
    assert "no verdict recorded for Fig 1" in cap.caption("fig1_graph")
    assert "Reproduction index" not in FigureCaptions("neurashed", "tiny", index_csv=str(tmp_path / "none.csv")).caption("fig1_graph")
    # run figures take the rows of their run and the rows without a run
    index2 = write_index(tmp_path / "r2.csv", [{**INDEX_ROW, "paper": "001", "figure": "Fig 2", "experiment": "e", "run": "a"},
                                               {**INDEX_ROW, "paper": "001", "figure": "Fig 2", "experiment": "e", "run": "b"}])  # fmt: skip
    assert [r["run"] for r in read_verdicts(index2, "001", ["Fig 2"], "e", "a")] == ["a"]


def test_the_caption_param_is_not_a_rerun_trigger() -> None:
    """Snakemake serialises only builtin params into its rerun trigger; the caption object is left out,
    so an edited caption text or a new reproduction index never reschedules a figure job."""
    from snakemake.persistence import UNREPRESENTABLE, PersistenceBase

    from gendyn.report import FigureCaptions

    cap = FigureCaptions("lc", "e", "r", {"radius": 1.0}, {}, "results/reproduction.csv")
    assert PersistenceBase._serialize_param_builtin(None, cap) is UNREPRESENTABLE  # noqa: SLF001
    assert PersistenceBase._serialize_param_builtin(None, {"a": 1}) is not UNREPRESENTABLE  # a dict would be one
    assert repr(cap) == "FigureCaptions(lc, e/r)"


# --------------------------------------------------------------------------- in the workflow

TINY_STUDY = {
    "active_experiments": [],
    "neurashed": {
        "active": ["tiny"],
        "studies": {
            "tiny": {
                "seeds": [0],
                "dpi": 40,
                "implicit_regularization": {"steps": 60, "record_every": 20},
                "information_bottleneck": {"steps": 200, "record_every": 50, "n_draws": 10},
                "local_elasticity": {"steps": 60},
            }
        },
    },
}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of a tiny neurashed study (the paper-002 simulator: no training, seconds)."""
    from test_workflow import snakemake

    work = tmp_path_factory.mktemp("report")
    cfg = work / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY_STUDY))
    res = snakemake(work, "--cores", "2", configfile=cfg, timeout=600)
    assert res.returncode == 0, res.describe()
    assert (work / "results" / "neurashed" / "tiny" / "figures" / "fig3_implicit_regularization.png").exists()
    return work


def test_a_new_index_reschedules_nothing_and_the_report_shows_its_verdict(study: Path) -> None:
    from test_workflow import nothing_scheduled, snakemake

    cfg = study / "tiny.yaml"
    write_index(study / "results" / "reproduction.csv", [INDEX_ROW])
    res = snakemake(study, "--cores", "2", "-n", configfile=cfg)
    assert res.returncode == 0 and nothing_scheduled(res), res.describe()
    # the job's recorded params hold no caption text (the caption object is left out)
    meta = "\n".join(p.read_text(errors="replace") for p in (study / ".snakemake" / "metadata").iterdir())
    assert "Reproduces paper" not in meta and "FigureCaptions" not in meta
    res = snakemake(study, "--report", "report.html", configfile=cfg)
    assert res.returncode == 0, res.describe()
    html = (study / "report.html").read_text(errors="replace")
    assert "small batches concentrate the model on the shared nodes" in html
    assert "REPRODUCED" in html and "final share, batch 1 = 0.998" in html
    m = re.search(r"var categories = (\{.*?\});\n", html)
    assert m, "no categories in the report"
    cats = json.loads(m.group(1))
    assert list(cats) == ["Paper 002 - neurashed simulator", "Reproduction index"]
    assert list(cats["Paper 002 - neurashed simulator"]) == ["simulation study 'tiny'"]
    assert "Each category of this report is one experiment" not in html  # the old, untrue description
    assert "Categories are the papers in paper order" in html
