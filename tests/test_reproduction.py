"""The reproduction index: every claim on synthetic results that pass, fail and are partial; the
registry's coverage of every paper figure; declarations, thresholds and the engine on a tiny
real run; a dry run of the reproduce config when the checkout has one.

Synthetic datasets carry exactly the variables, dims and coordinates the claims read from the
real outputs (docs/measures.md); each claim is called as the engine calls it, with the schema's
default thresholds unless a test changes one.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from gendyn import registry
from gendyn.config import ConfigError, load_yaml, stage_settings, validate_config
from gendyn.reproduction import core
from gendyn.reproduction.core import NOT_REPRODUCED, NOT_RUN, PARTIAL, REPRODUCED, Evidence, RunResult
from gendyn.reproduction.engine import build_index, render_html, thresholds_for, write_index
from gendyn.reproduction.table import COLUMNS, figure_sort_key, read_index, verdicts

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = stage_settings("reproduction", {})


def th(measure: str, **over: Any) -> dict[str, Any]:
    """The default thresholds a claim of ``measure`` reads, with some changed."""
    return {**thresholds_for(SETTINGS, measure), **over}


def claim(measure: str, name: str):
    return getattr(__import__(f"gendyn.{measure}.claims", fromlist=[name]), name)


def run(name: str = "r0", *, exp: str = "exp", config: dict | None = None, attrs: dict | None = None,
        metrics: Any = None, **analyses: Any) -> RunResult:  # fmt: skip
    return RunResult(exp, name, config or {}, attrs or {}, metrics, analyses)


def ev(*runs: RunResult, outputs: dict | None = None) -> Evidence:
    return Evidence(tuple(sorted({r.experiment for r in runs})), tuple(runs), outputs or {})


# --------------------------------------------------------------------------- the registry


def test_every_paper_figure_has_a_claim_and_every_claim_a_documented_function() -> None:
    for m in registry.measures():
        module = __import__(f"gendyn.{m.name}.claims", fromlist=["x"])
        for fig in m.paper_figures:
            assert m.claims_for(fig), f"{m.name}: paper {m.paper} {fig} has no claim"
        for c in m.claims:
            fn = getattr(module, c.name)
            assert set(c.figures) <= set(m.paper_figures), (m.name, c.name)
            for stage in c.needs:
                m.stage(stage)  # raises for an unknown stage
            assert c.text and c.statistic and c.scope in ("experiment", "pooled")
            doc = fn.__doc__ or ""
            assert f"Paper {m.paper}" in doc or "Paper 002" in doc, f"{m.name}.{c.name}: docstring must cite the paper"
            assert "reproduced" in doc, f"{m.name}.{c.name}: docstring must define the verdicts"
    assert set(registry.paper_figures()) == {"000", "001", "002", "003"}


def test_every_threshold_has_a_type_default_and_description() -> None:
    from gendyn.config import schema

    sections = schema()["$defs"]["reproduction"]["properties"]["thresholds"]["properties"]
    assert set(sections) == {"common", *registry.NAMES}
    for name, sec in sections.items():
        for key, node in sec["properties"].items():
            assert "default" in node and node.get("description"), f"reproduction.thresholds.{name}.{key}"
            assert "type" in node or "enum" in node, f"reproduction.thresholds.{name}.{key}"
    common = set(sections["common"]["properties"])
    for name in registry.NAMES:
        assert not common & set(sections[name]["properties"]), f"{name} repeats a common key"


def test_every_threshold_a_claim_reads_exists_and_every_threshold_is_read() -> None:
    """Claims read thresholds as t['key'] / t.get('key'): each key must be in the schema, and
    each schema key must be read by some claim (or by the shared grading of core.py)."""
    import re

    from gendyn.config import schema

    sections = schema()["$defs"]["reproduction"]["properties"]["thresholds"]["properties"]
    core_text = (ROOT / "src" / "gendyn" / "reproduction" / "core.py").read_text()
    everything = core_text
    for name in registry.NAMES:
        text = (ROOT / "src" / "gendyn" / name / "claims.py").read_text()
        everything += text
        used = set(re.findall(r"t\[\"(\w+)\"\]|t\['(\w+)'\]", text))
        used = {a or b for a, b in used} | set(re.findall(r"t\.get\(\"(\w+)\"", text))
        known = set(sections[name]["properties"]) | set(sections["common"]["properties"])
        assert used <= known, f"{name}: unknown thresholds {sorted(used - known)}"
    unread = [f"{sec}.{k}" for sec, node in sections.items() for k in node["properties"] if f'"{k}"' not in everything]
    assert not unread, f"thresholds no claim reads: {unread}"


def test_figure_sort_key_orders_like_the_papers() -> None:
    ids = ["R1", "App. E", "Fig 16", "Fig S1b", "Sec. 4", "Fig 2", "Fig 1b", "Fig 1", "Fig S1a", "Fig 1a"]
    assert sorted(ids, key=figure_sort_key) == ["Fig 1", "Fig 1a", "Fig 1b", "Fig 2", "Fig 16", "Fig S1a", "Fig S1b",
                                                "Sec. 4", "App. E", "R1"]  # fmt: skip


# --------------------------------------------------------------------------- shared grading


def test_per_run_aggregates_seeds_and_names_diverged_runs() -> None:
    t = th("lc")
    fn = lambda r: core.Outcome(r.attrs["v"], core.at_least(r.attrs["v"], 1.0, 0.5), "≥ 1")  # noqa: E731
    ok = [run(f"s{i}", attrs={"v": 2.0}) for i in range(3)]
    assert core.per_run(ev(*ok), fn, t).verdict == REPRODUCED
    mixed = ok[:2] + [run("s2", attrs={"v": 0.1})]
    out = core.per_run(ev(*mixed), fn, t)
    assert out.verdict == PARTIAL and "2/3 reproduced" in out.note and out.value == 2.0
    assert core.per_run(ev(*mixed), fn, {**t, "min_run_fraction": 0.6}).verdict == REPRODUCED
    diverged = ok[:2] + [run("s2", attrs={"v": 2.0, "diverged": 1, "diverged_step": 17})]
    out = core.per_run(ev(*diverged), fn, t)
    assert out.verdict == PARTIAL and "s2 diverged at step 17" in out.note
    only = core.per_run(ev(run("s0", attrs={"v": 2.0, "diverged": 1})), fn, t)
    assert only.verdict == NOT_REPRODUCED and "diverged" in only.note
    assert core.per_run(ev(), fn, t).verdict == NOT_RUN


def test_trend_grades_direction_strength_and_number_of_values() -> None:
    t = th("lc")
    runs = [run(f"d{d}_s{s}", config={"model": {"depth": d}}, attrs={"v": 10 - d + 0.1 * s}) for d in (1, 2, 3, 4) for s in (0, 1)]
    key, stat = (lambda r: r.get("model.depth")), (lambda r: r.attrs["v"])
    assert core.trend(runs, key, stat, -1, t, key_name="depth", stat_name="v").verdict == REPRODUCED
    assert core.trend(runs, key, stat, +1, t, key_name="depth", stat_name="v").verdict == NOT_REPRODUCED
    two = [r for r in runs if r.get("model.depth") <= 2]
    out = core.trend(two, key, stat, -1, t, key_name="depth", stat_name="v")
    assert out.verdict == PARTIAL and "only 2 values" in out.note
    one = [r for r in runs if r.get("model.depth") == 1]
    assert core.trend(one, key, stat, -1, t, key_name="depth", stat_name="v").verdict == NOT_RUN
    noisy = [run(f"d{d}", config={"model": {"depth": d}}, attrs={"v": v}) for d, v in zip((1, 2, 3, 4, 5), (5, 3, 4, 2, 3))]
    assert core.trend(noisy, key, stat, -1, t, key_name="depth", stat_name="v").verdict == PARTIAL
    runs[0] = run("d1_s0", config={"model": {"depth": 1}}, attrs={"v": 1.0, "diverged": 1})
    out = core.trend(runs, key, stat, -1, t, key_name="depth", stat_name="v")
    assert "d1_s0 diverged" in out.note and ("exp", "d1_s0") not in out.runs


def test_spearman_matches_a_hand_computed_case() -> None:
    assert core.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert core.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert core.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert math.isnan(core.spearman([1, 1, 1], [1, 2, 3]))


# --------------------------------------------------------------------------- paper 001: LC

#: A paper-like LC trajectory: first descent, ascent, second descent (steps 0 .. 1e5).
STEPS = np.array([0, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000])
DOUBLE_DESCENT = np.array([18, 12, 6, 5, 7, 11, 14, 10, 7, 6], dtype=float)


def lc_ds(train: np.ndarray, *, test: np.ndarray | None = None, layers: np.ndarray | None = None,
          test_layers: np.ndarray | None = None, steps: np.ndarray = STEPS, train_acc=None, test_acc=None) -> xr.Dataset:  # fmt: skip
    """``analysis/lc/{run}.nc`` with the variables the LC claims read (radius 1 only)."""
    test = train * 0.9 if test is None else test
    lay = np.stack([train / 2, train / 2], -1) if layers is None else layers
    tlay = lay * 0.9 if test_layers is None else test_layers
    R = len(steps)
    mean = np.stack([train, test, train * 0.5], 1)[:, :, None]  # record, split, radius
    lay_mean = np.stack([lay, tlay, lay * 0.5], 1)[:, :, None, :]  # record, split, radius, layer
    train_acc = np.linspace(0.1, 1.0, R) if train_acc is None else train_acc
    test_acc = np.linspace(0.1, 0.9, R) if test_acc is None else test_acc
    return xr.Dataset(
        {"lc_mean": (("record", "split", "radius"), mean), "lc_layer_mean": (("record", "split", "radius", "layer"), lay_mean),
         "train_acc": ("record", np.asarray(train_acc, float)), "test_acc": ("record", np.asarray(test_acc, float))},
        coords={"record": np.arange(R), "step": ("record", steps), "split": ["train", "test", "random"], "radius": [1.0],
                "layer": ["relu1", "relu2"]},
    )  # fmt: skip


def lc_run(train: np.ndarray, name: str = "r0", config: dict | None = None, **kw: Any) -> RunResult:
    return run(name, config=config, compute=lc_ds(train, **kw))


@pytest.mark.parametrize(
    ("curve", "first", "ascent", "second"),
    [
        (DOUBLE_DESCENT, REPRODUCED, REPRODUCED, REPRODUCED),
        # training ends during the ascent: no second descent
        (np.array([18, 12, 6, 5, 7, 11, 14, 15, 16, 17.0]), REPRODUCED, REPRODUCED, NOT_REPRODUCED),
        # a shallow second descent (peak 14 -> 12)
        (np.array([18, 12, 6, 5, 7, 11, 14, 13.5, 12.5, 12.0]), REPRODUCED, REPRODUCED, PARTIAL),
        # a weak first descent and a weak ascent, no second descent
        (np.array([10, 9.5, 9, 8.5, 8.6, 8.7, 8.8, 8.9, 9.0, 9.1]), PARTIAL, NOT_REPRODUCED, NOT_REPRODUCED),
        # only falls
        (np.array([18, 16, 14, 12, 10, 9, 8, 7, 6, 5.0]), REPRODUCED, NOT_REPRODUCED, NOT_REPRODUCED),
        # no first descent, only an ascent (grokking-like)
        (np.array([10, 10.5, 11, 13, 15, 17, 18, 18.5, 19, 19.5]), NOT_REPRODUCED, REPRODUCED, NOT_REPRODUCED),
    ],
)
def test_lc_phases_on_curves_with_and_without_each_phase(curve, first, ascent, second) -> None:
    e, t = ev(lc_run(curve)), th("lc")
    assert claim("lc", "first_descent")(e, t).verdict == first
    assert claim("lc", "ascent")(e, t).verdict == ascent
    out = claim("lc", "second_descent")(e, t)
    assert out.verdict == second, out


def test_lc_phases_values_and_thresholds_from_config() -> None:
    from gendyn.lc.claims import phases

    p = phases(DOUBLE_DESCENT)
    assert (p["trough"], p["peak"]) == (3, 6)
    assert p["first_descent"] == pytest.approx(1 - 5 / 18) and p["ascent"] == pytest.approx(14 / 5)
    assert p["second_descent"] == pytest.approx(1 - 6 / 14)
    e = ev(lc_run(DOUBLE_DESCENT))
    assert claim("lc", "second_descent")(e, th("lc", second_descent=0.7)).verdict == PARTIAL
    assert claim("lc", "second_descent")(e, th("lc", second_descent=0.7, second_descent_partial=0.6)).verdict == NOT_REPRODUCED
    # NaN records (a split without points) are skipped
    gappy = DOUBLE_DESCENT.copy()
    gappy[4] = np.nan
    assert claim("lc", "ascent")(ev(lc_run(gappy)), th("lc")).verdict == REPRODUCED


def _grok(test_acc: np.ndarray, train_acc: np.ndarray | None = None, lc: np.ndarray | None = None) -> RunResult:
    train_acc = np.array([0.1, 0.3, 0.6, 0.97, 1, 1, 1, 1, 1, 1.0]) if train_acc is None else train_acc
    lc = np.array([20, 21, 22, 24, 23, 22, 21, 25, 18, 12.0]) if lc is None else lc
    return lc_run(lc, train_acc=train_acc, test_acc=test_acc)


def test_grokking_runs_that_grok_and_that_do_not() -> None:
    t = th("lc")
    groks = _grok(np.array([0.1, 0.15, 0.2, 0.2, 0.2, 0.21, 0.22, 0.4, 0.85, 0.9]))  # memorised at 100, jump ~3e4
    out = claim("lc", "grokking_delayed_generalization")(ev(groks), t)
    assert out.verdict == REPRODUCED and out.value == pytest.approx(30001 / 101)
    assert claim("lc", "grokking_second_ascent")(ev(groks), t).verdict == REPRODUCED  # LC 21 -> 25 before the jump
    flat = _grok(groks.analyses["compute"]["test_acc"].values, lc=np.array([20, 21, 22, 24, 23, 22, 21, 20, 19, 12.0]))
    assert claim("lc", "grokking_second_ascent")(ev(flat), t).verdict == NOT_REPRODUCED
    early = _grok(np.array([0.1, 0.15, 0.2, 0.3, 0.6, 0.8, 0.85, 0.9, 0.9, 0.9]))  # jump right after memorisation
    assert claim("lc", "grokking_delayed_generalization")(ev(early), t).verdict in (PARTIAL, NOT_REPRODUCED)
    mid = _grok(np.array([0.1, 0.15, 0.2, 0.2, 0.2, 0.7, 0.85, 0.9, 0.9, 0.9]))  # jump at step 1000: delay ~10 -> 1000/100
    assert claim("lc", "grokking_delayed_generalization")(ev(mid), th("lc", grok_delay=20)).verdict == PARTIAL
    no_jump = _grok(np.full(10, 0.2))
    out = claim("lc", "grokking_delayed_generalization")(ev(no_jump), t)
    assert out.verdict == NOT_REPRODUCED and "no jump" in out.note
    assert claim("lc", "grokking_second_ascent")(ev(no_jump), t).verdict == NOT_REPRODUCED
    never = _grok(np.full(10, 0.2), train_acc=np.linspace(0.1, 0.4, 10))
    out = claim("lc", "grokking_delayed_generalization")(ev(never), t)
    assert out.verdict == NOT_REPRODUCED and "not memorised" in out.note


def test_no_first_descent_under_grokking_initialisation() -> None:
    t = th("lc")
    grok = np.array([20, 20.3, 20.8, 21.3, 21, 20, 19, 18, 17, 16.0])
    assert claim("lc", "no_first_descent")(ev(lc_run(grok)), t).verdict == REPRODUCED
    assert claim("lc", "no_first_descent")(ev(lc_run(DOUBLE_DESCENT)), t).verdict == NOT_REPRODUCED
    some = np.array([20, 18, 16, 17, 19, 21, 22, 20, 18, 17.0])  # 20 % descent
    assert claim("lc", "no_first_descent")(ev(lc_run(some)), t).verdict == PARTIAL


def regions_ds(centres: dict[int, np.ndarray], steps: tuple[int, ...] = (0, 300, 3000, 100000),
               local: tuple[np.ndarray, np.ndarray] | None = None) -> xr.Dataset:  # fmt: skip
    """``analysis/regions/{run}.nc``: small triangles around given centres per record; the
    decision boundary is the line u = 0.5; anchors at (0,0), (1,0), (0,1)."""
    verts, rec, start, size = [], [], [], []
    for r, cs in centres.items():
        for c in cs:
            start.append(len(verts))
            verts += [c + [-0.01, -0.01], c + [0.01, -0.01], c + [0.0, 0.01]]
            rec.append(r)
            size.append(3)
    segs = np.array([[[0.5, -0.1], [0.5, 1.1]]] * len(steps))
    n_local = 6
    ln, ll = local if local is not None else (np.tile(np.arange(n_local)[:, None], (1, 3)), np.tile(np.arange(n_local)[:, None], (1, 3)))
    return xr.Dataset(
        {"vertex_uv": (("vertex", "coord"), np.array(verts)), "region_record": ("region", np.array(rec)),
         "region_start": ("region", np.array(start)), "region_size": ("region", np.array(size)),
         "segment_uv": (("segment", "end", "coord"), segs), "segment_record": ("segment", np.arange(len(steps))),
         "anchor_uv": (("anchor", "coord"), np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])),
         "n_regions": ("record", np.array([len(centres[r]) for r in range(len(steps))])),
         "local_n_regions": (("local_record", "local_point"), np.asarray(ln, float)),
         "local_lc": (("local_record", "local_point"), np.asarray(ll, float))},
        coords={"record": np.arange(len(steps)), "step": ("record", np.array(steps)), "coord": ["u", "v"]},
    )  # fmt: skip


def _near(points: list[tuple[float, float]], n: int = 10) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([np.array(p) + 0.02 * rng.standard_normal((n, 2)) for p in points])


def test_region_migration_towards_the_decision_boundary() -> None:
    t = th("lc")
    anchors, boundary = _near([(0.05, 0.05), (0.95, 0.05), (0.05, 0.95)]), _near([(0.5, 0.2), (0.5, 0.5), (0.5, 0.8)])
    everywhere = _near([(0.3, 0.3), (0.5, 0.5), (0.8, 0.1), (0.1, 0.8)])
    # LC peaks at step 3000 (record 6 of STEPS); regions near the anchors there, at the boundary at the end
    migrating = run(compute=lc_ds(DOUBLE_DESCENT), regions=regions_ds({0: everywhere, 1: anchors, 2: anchors, 3: boundary}))
    out = claim("lc", "region_migration")(ev(migrating), t)
    assert out.verdict == REPRODUCED and out.value == pytest.approx(1.0)
    staying = run(compute=lc_ds(DOUBLE_DESCENT), regions=regions_ds({0: everywhere, 1: anchors, 2: anchors, 3: anchors}))
    assert claim("lc", "region_migration")(ev(staying), t).verdict == NOT_REPRODUCED
    some = np.concatenate([anchors[:27], boundary[:3]])  # 10 % of the regions move
    part = run(compute=lc_ds(DOUBLE_DESCENT), regions=regions_ds({0: everywhere, 1: anchors, 2: anchors, 3: some}))
    assert claim("lc", "region_migration")(ev(part), t).verdict == PARTIAL
    rising = np.array([18, 12, 6, 5, 7, 11, 14, 15, 16, 17.0])  # no final descent yet
    out = claim("lc", "region_migration")(ev(run(compute=lc_ds(rising), regions=migrating.analyses["regions"])), t)
    assert out.verdict == NOT_REPRODUCED and "no final descent" in out.note


def test_exact_region_counts_track_lc() -> None:
    t = th("lc")
    up = np.array([50, 30, 20, 15, 30, 45.0])[:, None].repeat(3, 1)
    same = run(regions=regions_ds({r: _near([(0.5, 0.5)]) for r in range(4)}, local=(up, up / 3)))
    assert claim("lc", "regions_track_lc")(ev(same), t).verdict == REPRODUCED
    anti = run(regions=regions_ds({r: _near([(0.5, 0.5)]) for r in range(4)}, local=(up, -up)))
    assert claim("lc", "regions_track_lc")(ev(anti), t).verdict == NOT_REPRODUCED
    weak = np.array([30, 50, 20, 15, 45, 30.0])[:, None].repeat(3, 1)  # rho 0.5
    out = claim("lc", "regions_track_lc")(ev(run(regions=regions_ds({r: _near([(0.5, 0.5)]) for r in range(4)}, local=(up, weak)))), t)
    assert out.verdict == PARTIAL, out


def test_shallow_layers_sharper_and_train_test_gap() -> None:
    t = th("lc")
    l1 = np.array([9, 6, 3, 2, 4, 8, 10, 6, 4, 3.0])  # ascent 5
    l2 = np.array([9, 6, 3, 3, 3.5, 4, 4.5, 4, 3.5, 3.0])  # ascent 1.5
    both = np.stack([l1, l2], -1)
    sharp = run(compute=lc_ds(l1 + l2, layers=both, test_layers=np.stack([l1 * 0.7, l2], -1)))
    assert claim("lc", "shallow_layers_sharper")(ev(sharp), t).verdict == REPRODUCED
    assert claim("lc", "shallow_layers_train_test_gap")(ev(sharp), t).verdict == REPRODUCED
    flipped = run(compute=lc_ds(l1 + l2, layers=both[:, ::-1], test_layers=np.stack([l2, l1 * 0.7], -1)))
    assert claim("lc", "shallow_layers_sharper")(ev(flipped), t).verdict == NOT_REPRODUCED
    assert claim("lc", "shallow_layers_train_test_gap")(ev(flipped), t).verdict == NOT_REPRODUCED
    slight = run(compute=lc_ds(l1 + l2, layers=np.stack([l1, l1 / 1.1], -1), test_layers=np.stack([l1 / 1.02, l1 / 1.1], -1)))
    assert claim("lc", "shallow_layers_sharper")(ev(slight), t).verdict in (PARTIAL, NOT_REPRODUCED)
    assert claim("lc", "shallow_layers_train_test_gap")(ev(slight), t).verdict == PARTIAL


def robust_ds(robust: list[float], clean: list[float]) -> xr.Dataset:
    steps = np.array([0, 30, 300, 3000, 30000, 100000][: len(robust)])
    return xr.Dataset({"robust_acc": ("record", np.array(robust)), "clean_acc": ("record", np.array(clean))},
                      coords={"record": np.arange(len(steps)), "step": ("record", steps)})  # fmt: skip


def test_delayed_robustness() -> None:
    t, clean = th("lc"), [0.1, 0.6, 0.95, 0.97, 0.97, 0.97]
    late = run(robust=robust_ds([0.0, 0.05, 0.1, 0.15, 0.4, 0.55], clean))
    assert claim("lc", "delayed_robustness")(ev(late), t).verdict == REPRODUCED
    early = run(robust=robust_ds([0.0, 0.2, 0.3, 0.1, 0.02, 0.0], clean))
    assert claim("lc", "delayed_robustness")(ev(early), t).verdict == NOT_REPRODUCED
    small = run(robust=robust_ds([0.0, 0.05, 0.1, 0.1, 0.12, 0.15], clean))
    assert claim("lc", "delayed_robustness")(ev(small), t).verdict == PARTIAL


def _sweep(key: str, values: list[Any], curve_of) -> list[RunResult]:
    out = []
    for v in values:
        section, _, name = key.partition(".")
        out.append(lc_run(curve_of(v), name=f"{name}{v}", config={section: {name: v}}))
    return out


def test_lc_sweep_claims_pass_and_fail() -> None:
    t = th("lc")

    def ascent_curve(a: float) -> np.ndarray:  # trough 5, peak 5 a
        return np.array([18, 12, 6, 5, 5 * a, 5 * a * 0.9, 5 * a * 0.8, 5 * a * 0.7, 5 * a * 0.6, 5 * a * 0.5])

    deep_flat = _sweep("model.depth", [1, 2, 3, 4], lambda d: ascent_curve(4 - 0.5 * d))
    assert claim("lc", "depth_flattens_ascent")(ev(*deep_flat), t).verdict == REPRODUCED
    deep_sharp = _sweep("model.depth", [1, 2, 3, 4], lambda d: ascent_curve(1.5 + 0.5 * d))
    assert claim("lc", "depth_flattens_ascent")(ev(*deep_sharp), t).verdict == NOT_REPRODUCED
    assert claim("lc", "grok_depth_raises_peak")(ev(*deep_sharp), t).verdict == REPRODUCED
    assert claim("lc", "weight_decay_lowers_peak")(ev(*_sweep("training.weight_decay", [0, 1e-4, 1e-3, 1e-2], lambda w: ascent_curve(3 - 100 * w))), t).verdict == REPRODUCED
    width = _sweep("model.width", [20, 200, 1000], lambda w: np.array([5 + w / 100, 5, 4, 4, 6, 7, 7, 6, 5, 5.0]))
    assert claim("lc", "width_first_descent")(ev(*width), t).verdict == REPRODUCED
    sizes = [lc_run(ascent_curve(a), name=f"n{n}") for n, a in ((1000, 3.0), (5000, 2.0), (60000, 1.1))]
    sizes = [RunResult(r.experiment, r.run, {}, {"n_train": int(r.run[1:])}, None, r.analyses) for r in sizes]
    assert claim("lc", "data_shrinks_ascent")(ev(*sizes), t).verdict == REPRODUCED
    assert claim("lc", "random_labels_data_raises_peak")(ev(*sizes), t).verdict == NOT_REPRODUCED
    one = _sweep("model.depth", [3], ascent_curve)
    assert claim("lc", "depth_flattens_ascent")(ev(*one), t).verdict == NOT_RUN


def test_batch_norm_claims() -> None:
    t = th("lc")
    plain = [lc_run(DOUBLE_DESCENT, name=f"d{d}_bnfalse", config={"model": {"bn": False, "depth": d}}) for d in (3, 5)]
    no_second = np.array([18, 16, 15, 16, 18, 20, 22, 23, 23.5, 24.0])
    bn = [lc_run(no_second, name=f"d{d}_bntrue", config={"model": {"bn": True, "depth": d}}) for d in (3, 5)]
    assert claim("lc", "bn_removes_second_descent")(ev(*plain, *bn), t).verdict == REPRODUCED
    assert claim("lc", "bn_raises_lc")(ev(*plain, *bn), t).verdict == REPRODUCED
    assert claim("lc", "bn_removes_second_descent")(ev(*bn, *[lc_run(no_second, name="x", config={"model": {"bn": False}})]), t).verdict == NOT_REPRODUCED
    assert claim("lc", "bn_raises_lc")(ev(*plain), t).verdict == NOT_RUN
    low = [lc_run(DOUBLE_DESCENT * 1.1, name="b", config={"model": {"bn": True}})]
    assert claim("lc", "bn_raises_lc")(ev(*plain, *low), t).verdict == PARTIAL


# --------------------------------------------------------------------------- paper 000: paths


def paths_ds(median_s: np.ndarray, self_sim: np.ndarray, *, pearson: float = 0.3, ranks: np.ndarray | None = None,
             epochs: np.ndarray | None = None, decays: list[float] | None = None, act: bool = True) -> xr.Dataset:  # fmt: skip
    """``analysis/paths/{run}.nc``: records x 2 layers; ``self_sim`` (record, image) for both layers."""
    R = len(median_s)
    epochs = np.arange(1, R + 1, dtype=float) if epochs is None else epochs
    q = np.stack([np.clip(median_s - 0.2, 0, 1), median_s, np.clip(median_s + 0.05, 0, 0.999)], -1)  # quantile 0.25, 0.5, 0.75
    q = np.stack([q, q], 1)  # record, layer, quantile
    ss = np.stack([self_sim, self_sim], 1)  # record, layer, image
    if ranks is None:
        ranks = np.tile(np.arange(8), (R, 2, 3, 1))
        ranks[R // 2 :, :, :, [0, 1]] = ranks[R // 2 :, :, :, [1, 0]]  # the nearest neighbour changes once
    data = {
        "cross_path_q": (("record", "layer", "quantile"), q),
        "cross_path_mean": (("record", "layer"), np.stack([median_s, median_s], 1)),
        "self_sim": (("record", "layer", "image"), ss),
        "self_sim_mean": (("record", "layer"), ss.mean(-1)),
        "overlap_pearson": (("overlap_record", "layer"), np.array([[pearson, -pearson / 2]])),
        "nn_rank": (("record", "layer", "baseline", "candidate"), ranks),
    }
    if act:
        data["act_cross_q"] = (("record", "layer", "quantile"), q)
        data["nn_rank_act"] = (("record", "layer", "baseline", "candidate"), ranks)
    ds = xr.Dataset(data, coords={
        "record": np.arange(1, R + 1), "epoch": ("record", epochs), "step": ("record", (epochs * 10).astype(int)),
        "prev_step": ("record", ((epochs - 1) * 10).astype(int)), "layer": ["relu1", "relu2"],
        "layer_index": ("layer", [1, 2]), "quantile": [0.25, 0.5, 0.75], "overlap_record": [R], "baseline": [5, 10, 15],
        "candidate": np.arange(8), "image": np.arange(self_sim.shape[1])})  # fmt: skip
    if decays is not None:
        ds.attrs["decay_epochs"] = decays
    return ds


def _sig(values: list[float], n: int = 20) -> np.ndarray:
    """Self-similarity (record, image): each record's images spread a little around a mean."""
    return np.clip(np.array(values)[:, None] + np.linspace(-0.01, 0.01, n)[None], 0, 1)


def _lr_metrics(lr: list[float]) -> xr.Dataset:
    steps = np.arange(len(lr)) * 10
    return xr.Dataset({"lr": ("step", np.array(lr, float))}, coords={"step": steps})


def test_cross_path_below_one_and_rising() -> None:
    t = th("paths")
    below = np.array([0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.999, 0.999, 0.999])
    e = ev(run(compute=paths_ds(below, _sig([0.8] * 10))))
    assert claim("paths", "cross_path_below_one")(e, t).verdict == REPRODUCED
    assert claim("paths", "activation_below_one")(e, t).verdict == REPRODUCED
    assert claim("paths", "cross_path_rises")(e, t).verdict == REPRODUCED
    early_only = np.array([0.6, 0.8, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999])
    assert claim("paths", "cross_path_below_one")(ev(run(compute=paths_ds(early_only, _sig([0.8] * 10)))), t).verdict == PARTIAL
    perfect = np.full(10, 0.999)
    e = ev(run(compute=paths_ds(perfect, _sig([0.8] * 10), act=False)))
    assert claim("paths", "cross_path_below_one")(e, t).verdict == NOT_REPRODUCED
    assert claim("paths", "cross_path_rises")(e, t).verdict == NOT_REPRODUCED
    assert claim("paths", "activation_below_one")(e, t).verdict == NOT_RUN  # no activations recorded
    slight = np.linspace(0.9, 0.92, 10)
    assert claim("paths", "cross_path_rises")(ev(run(compute=paths_ds(slight, _sig([0.8] * 10)))), t).verdict == PARTIAL


def test_overlap_not_linear() -> None:
    t, s = th("paths"), np.linspace(0.6, 0.99, 10)
    assert claim("paths", "overlap_not_linear")(ev(run(compute=paths_ds(s, _sig([0.8] * 10), pearson=0.3))), t).verdict == REPRODUCED
    assert claim("paths", "overlap_not_linear")(ev(run(compute=paths_ds(s, _sig([0.8] * 10), pearson=-0.93))), t).verdict == PARTIAL
    assert claim("paths", "overlap_not_linear")(ev(run(compute=paths_ds(s, _sig([0.8] * 10), pearson=0.99))), t).verdict == NOT_REPRODUCED


def test_self_similarity_early_below_one_and_late_near_one() -> None:
    t, s = th("paths"), np.linspace(0.6, 0.99, 10)
    good = ev(run(compute=paths_ds(s, _sig([0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995]))))
    assert claim("paths", "self_similarity_below_one_early")(good, t).verdict == REPRODUCED
    assert claim("paths", "self_similarity_rises_to_one")(good, t).verdict == REPRODUCED
    stuck = ev(run(compute=paths_ds(s, _sig([0.7, 0.72, 0.74, 0.75, 0.76, 0.77, 0.78, 0.79, 0.8, 0.8]))))
    assert claim("paths", "self_similarity_rises_to_one")(stuck, t).verdict == PARTIAL
    perfect = ev(run(compute=paths_ds(s, np.ones((10, 20)))))
    assert claim("paths", "self_similarity_below_one_early")(perfect, t).verdict == NOT_REPRODUCED
    assert claim("paths", "self_similarity_rises_to_one")(perfect, t).verdict == NOT_REPRODUCED


def test_self_similarity_constant_lr_control() -> None:
    """σ → 1 at a constant learning rate: a constant-LR run, or the stretch before the first decay."""
    t, s = th("paths"), np.linspace(0.6, 0.99, 10)
    sig = _sig([0.7, 0.8, 0.86, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995])
    constant = run("const", compute=paths_ds(s, sig), metrics=_lr_metrics([0.1] * 11))
    out = claim("paths", "self_similarity_constant_lr")(ev(constant), t)
    assert out.verdict == REPRODUCED and "constant learning rate" in out.note
    # the same rise in a decaying run, but the rate decays after epoch 3 (``lr`` at a step is the rate of the
    # next update): σ only reaches 0.86 at the constant rate
    decaying = run("step", compute=paths_ds(s, sig), metrics=_lr_metrics([0.1] * 3 + [0.01] * 8))
    out = claim("paths", "self_similarity_constant_lr")(ev(decaying), t)
    assert out.verdict == PARTIAL and out.value == pytest.approx(0.86) and "before the first decay" in out.note
    # with a constant-LR run in the experiment, the control uses it
    out = claim("paths", "self_similarity_constant_lr")(ev(decaying, constant), t)
    assert out.verdict == REPRODUCED and out.runs == (("exp", "const"),)
    # σ only rises once the learning rate decays: not reproduced
    jump = _sig([0.7, 0.7, 0.7, 0.7, 0.95, 0.97, 0.98, 0.99, 0.99, 0.995])
    late = run("late", compute=paths_ds(s, jump), metrics=_lr_metrics([0.1] * 4 + [0.01] * 7))
    assert claim("paths", "self_similarity_constant_lr")(ev(late), t).verdict == NOT_REPRODUCED
    # without metrics: the decay epochs stored by the analysis
    attrs_only = run("attrs", compute=paths_ds(s, jump, decays=[4.0]))
    assert claim("paths", "self_similarity_constant_lr")(ev(attrs_only), t).verdict == NOT_REPRODUCED


def test_nearest_neighbours_change() -> None:
    t, s, sig = th("paths"), np.linspace(0.6, 0.99, 10), _sig([0.8] * 10)
    assert claim("paths", "neighbours_change")(ev(run(compute=paths_ds(s, sig))), t).verdict == REPRODUCED
    assert claim("paths", "activation_neighbours_change")(ev(run(compute=paths_ds(s, sig))), t).verdict == REPRODUCED
    fixed = np.tile(np.arange(8), (10, 2, 3, 1))
    assert claim("paths", "neighbours_change")(ev(run(compute=paths_ds(s, sig, ranks=fixed))), t).verdict == NOT_REPRODUCED
    one = fixed.copy()
    one[5:, :, 0, [0, 1]] = one[5:, :, 0, [1, 0]]  # only the first baseline's nearest neighbour changes
    assert claim("paths", "neighbours_change")(ev(run(compute=paths_ds(s, sig, ranks=one))), t).verdict == PARTIAL
    assert claim("paths", "neighbours_change")(ev(run(compute=paths_ds(s, sig))), th("paths", rank_layer=3)).verdict == NOT_RUN


def _fig7(pairs: list[tuple[float, float]], exp: str = "exp") -> Evidence:
    runs = [run(f"r{i}", exp=exp) for i in range(len(pairs))]
    summary = xr.Dataset({"R": ("run", [p[0] for p in pairs]), "test_acc": ("run", [p[1] for p in pairs])},
                         coords={"run": [r.run for r in runs]})  # fmt: skip
    return Evidence((exp,), tuple(runs), {exp: {"summary": summary}})


def test_early_mid_ratio_correlation_over_runs() -> None:
    t = th("paths")
    R = np.linspace(0.5, 0.9, 8)
    assert claim("paths", "ratio_predicts_generalization")(_fig7(list(zip(R, 0.5 + 0.3 * R))), t).verdict == REPRODUCED
    out = claim("paths", "ratio_predicts_generalization")(_fig7(list(zip(R[:4], 0.5 + 0.3 * R[:4]))), t)
    assert out.verdict == PARTIAL and "fewer than 8 runs" in out.note
    assert claim("paths", "ratio_predicts_generalization")(_fig7(list(zip(R, 0.9 - 0.3 * R))), t).verdict == NOT_REPRODUCED
    assert claim("paths", "ratio_predicts_generalization")(_fig7(list(zip(R, 0.9 - 0.3 * R))), th("paths", fig7_sign=-1)).verdict == REPRODUCED
    assert claim("paths", "ratio_predicts_generalization")(_fig7([(0.6, 0.7), (0.7, 0.8)]), t).verdict == NOT_RUN


# --------------------------------------------------------------------------- paper 002


def hist_ds(median: np.ndarray, within: float = 0.7, between: float = 0.5) -> xr.Dataset:
    names = ["bear", "leopard", "tiger"]
    return xr.Dataset(
        {"class_median": (("class_i", "class_j"), median), "within_median": within, "between_median": between,
         "ratio_median": within / between, "ratio": within / between},
        coords={"class_i": [0, 1, 2], "class_j": [0, 1, 2], "class_name_i": ("class_i", names), "class_name_j": ("class_j", names)},
    )  # fmt: skip


def test_le_histogram_ordering() -> None:
    t = th("elasticity")
    paper = np.array([[0.8, 0.3, 0.3], [0.2, 0.7, 0.6], [0.2, 0.6, 0.75]])  # felines move each other, not the bear
    assert claim("elasticity", "own_class_highest")(ev(run(histograms=hist_ds(paper))), t).verdict == REPRODUCED
    assert claim("elasticity", "within_exceeds_between")(ev(run(histograms=hist_ds(paper))), t).verdict == REPRODUCED
    leopard_row = paper.copy()
    leopard_row[1] = [0.2, 0.6, 0.7]  # a leopard update moves tigers more than leopards
    assert claim("elasticity", "own_class_highest")(ev(run(histograms=hist_ds(leopard_row))), t).verdict == PARTIAL
    flat = np.full((3, 3), 0.5) + np.eye(3)[::-1] * 0.1
    assert claim("elasticity", "own_class_highest")(ev(run(histograms=hist_ds(flat))), t).verdict == NOT_REPRODUCED
    assert claim("elasticity", "within_exceeds_between")(ev(run(histograms=hist_ds(paper, 0.55, 0.5))), t).verdict == PARTIAL
    assert claim("elasticity", "within_exceeds_between")(ev(run(histograms=hist_ds(paper, 0.4, 0.5))), t).verdict == NOT_REPRODUCED


def study(**outputs: xr.Dataset) -> Evidence:
    return Evidence(("quick",), (), {"quick": outputs})


def ir_ds(small_final: list[float], large_change: float = 0.0) -> xr.Dataset:
    init = np.array([0.3, 0.27, 0.35])[: len(small_final)]
    small = np.stack([init, (init + np.array(small_final)) / 2, np.array(small_final)], -1)
    large = np.stack([init, init, init + large_change], -1)
    return xr.Dataset({"shared_share": (("seed", "batch", "record"), np.stack([small, large], 1))},
                      coords={"seed": np.arange(len(init)), "batch": ["small", "large"]})  # fmt: skip


def test_neurashed_implicit_regularization_over_seeds() -> None:
    t = th("neurashed")
    assert claim("neurashed", "small_batch_concentrates")(study(implicit_regularization=ir_ds([1, 1, 1])), t).verdict == REPRODUCED
    assert claim("neurashed", "large_batch_uniform")(study(implicit_regularization=ir_ds([1, 1, 1])), t).verdict == REPRODUCED
    out = claim("neurashed", "small_batch_concentrates")(study(implicit_regularization=ir_ds([1, 1, 0.9])), t)
    assert out.verdict == PARTIAL and "range 0.9-1 over 3 seeds" in out.note
    assert claim("neurashed", "small_batch_concentrates")(study(implicit_regularization=ir_ds([0.2, 0.2, 0.2])), t).verdict == NOT_REPRODUCED
    assert claim("neurashed", "large_batch_uniform")(study(implicit_regularization=ir_ds([1, 1, 1], 0.01)), t).verdict == PARTIAL
    assert claim("neurashed", "large_batch_uniform")(study(implicit_regularization=ir_ds([1, 1, 1], 0.3)), t).verdict == NOT_REPRODUCED
    assert claim("neurashed", "small_batch_concentrates")(study(), t).verdict == NOT_RUN


def ib_ds(level2: list[list[float]], y_end: float = 1.0) -> xr.Dataset:
    mx = np.array(level2)  # seed, record
    mx = np.stack([np.full_like(mx, 2.0), mx], -1)
    my = np.full_like(mx, y_end)
    return xr.Dataset({"mi_x": (("seed", "record", "level"), mx), "mi_y": (("seed", "record", "level"), my)},
                      coords={"level": [1, 2], "seed": np.arange(len(level2))})  # fmt: skip


def test_neurashed_information_bottleneck() -> None:
    t = th("neurashed")
    good = [[0.01, 1.0, 2.2, 1.5, 1.0], [0.02, 0.8, 1.6, 1.2, 1.01]]
    assert claim("neurashed", "information_bottleneck")(study(information_bottleneck=ib_ds(good)), t).verdict == REPRODUCED
    weak = [[0.01, 0.8, 1.2, 1.1, 1.0], [0.02, 0.9, 1.3, 1.1, 1.0]]  # compresses, but peaks below 1.4 bits
    assert claim("neurashed", "information_bottleneck")(study(information_bottleneck=ib_ds(weak)), t).verdict == PARTIAL
    no = [[0.01, 0.5, 1.0, 1.5, 2.0], [0.01, 0.5, 1.0, 1.5, 2.0]]  # fits, never compresses
    assert claim("neurashed", "information_bottleneck")(study(information_bottleneck=ib_ds(no)), t).verdict == NOT_REPRODUCED


def test_neurashed_local_elasticity_and_drawings() -> None:
    t = th("neurashed")
    le = lambda rows: xr.Dataset({"le": (("seed", "probe"), np.array(rows))}, coords={"probe": ["1a", "1b", "2", "3"]})  # noqa: E731
    good = le([[1, 0.9, 0.01, 1e-9], [1, 0.4, 0.04, 1e-7]])
    assert claim("neurashed", "local_elasticity_ordering")(study(local_elasticity=good), t).verdict == REPRODUCED
    some = le([[1, 0.9, 0.01, 1e-9], [1, 0.01, 0.04, 1e-7]])
    assert claim("neurashed", "local_elasticity_ordering")(study(local_elasticity=some), t).verdict == PARTIAL
    bad = le([[1, 0.01, 0.9, 0.5], [1, 0.01, 0.9, 0.5]])
    assert claim("neurashed", "local_elasticity_ordering")(study(local_elasticity=bad), t).verdict == NOT_REPRODUCED
    assert claim("neurashed", "graph_structure")(study(), t).verdict == REPRODUCED
    assert claim("neurashed", "pathways")(study(), t).verdict == REPRODUCED
    assert claim("neurashed", "pathways")(study(), th("neurashed", pathway_jaccard=0.95)).verdict == PARTIAL


# --------------------------------------------------------------------------- paper 003


def mem_runs(specs: list[dict[str, Any]], exp: str = "exp") -> Evidence:
    """Runs with configs and their summary.nc rows; spec keys: name, objective, data, n_train,
    target, k, mix, and summary variables (final_test_acc, ...)."""
    runs, rows = [], []
    summary_vars = ("epochs_to_threshold", "censored_at", "final_train_acc", "final_test_acc", "test_acc_last",
                    "heldout_acc_last", "gradnorm_first_weight_peak", "gradnorm_first_weight_final")  # fmt: skip
    for s in specs:
        cfg = {"data": {"name": s.get("data", "cifar10")}, "training": {"objective": {"name": s.get("objective", "J"), "k": s.get("k", 0.11)}}}
        if "target" in s:
            cfg["training"]["objective"]["target"] = s["target"]
        if "mix" in s:
            cfg["data"]["mix_fraction"] = s["mix"]
        attrs = {"n_classes": 10, "n_train": s.get("n_train", 5120), **({"diverged": 1} if s.get("diverged") else {})}
        metrics = None
        if "curve" in s:
            tr, te = s["curve"]
            metrics = xr.Dataset({"train_acc": ("step", np.array(tr)), "test_acc": ("step", np.array(te)),
                                  "epoch": ("step", np.arange(len(tr), dtype=float))}, coords={"step": np.arange(len(tr))})  # fmt: skip
        runs.append(RunResult(exp, s["name"], cfg, attrs, metrics, {}))
        rows.append({v: s.get(v, np.nan) for v in summary_vars})
    summary = xr.Dataset({v: ("run", [r[v] for r in rows]) for v in rows[0]}, coords={"run": [s["name"] for s in specs]})
    return Evidence((exp,), tuple(runs), {exp: {"summary": summary}})


def test_j_prime_below_chance_and_j_generalizes() -> None:
    t = th("memorization")
    e = mem_runs([
        {"name": "jp", "objective": "J_prime", "final_test_acc": 0.024, "final_train_acc": 0.93},
        {"name": "j", "objective": "J", "curve": ([0.1, 0.5, 0.92, 0.99], [0.1, 0.4, 0.6, 0.62])},
    ])  # fmt: skip
    out = claim("memorization", "j_prime_below_chance")(e, t)
    assert out.verdict == REPRODUCED and out.value == pytest.approx(0.024) and out.runs == (("exp", "jp"),)
    assert claim("memorization", "j_generalizes")(e, t).verdict == REPRODUCED
    slow = mem_runs([{"name": "jp", "objective": "J_prime", "final_test_acc": 0.07, "final_train_acc": 0.8}])
    assert claim("memorization", "j_prime_below_chance")(slow, t).verdict == PARTIAL
    above = mem_runs([{"name": "jp", "objective": "J_prime", "final_test_acc": 0.3, "final_train_acc": 0.95}])
    assert claim("memorization", "j_prime_below_chance")(above, t).verdict == NOT_REPRODUCED
    poor = mem_runs([{"name": "j", "curve": ([0.1, 0.5, 0.92], [0.1, 0.2, 0.25])}])
    assert claim("memorization", "j_generalizes")(poor, t).verdict == PARTIAL
    assert claim("memorization", "j_prime_below_chance")(poor, t).verdict == NOT_RUN  # no J' run
    diverged = mem_runs([{"name": "jp", "objective": "J_prime", "final_test_acc": 0.02, "final_train_acc": 0.95, "diverged": 1}])
    out = claim("memorization", "j_prime_below_chance")(diverged, t)
    assert out.verdict == NOT_REPRODUCED and "diverged" in out.note


def test_heldout_and_epochs_ratio() -> None:
    t = th("memorization")
    e = mem_runs([
        {"name": "j", "objective": "J", "epochs_to_threshold": 10, "heldout_acc_last": 0.85},
        {"name": "jp", "objective": "J_prime", "epochs_to_threshold": 80, "heldout_acc_last": 0.4},
    ])  # fmt: skip
    assert claim("memorization", "heldout_drops")(e, t).verdict == REPRODUCED
    out = claim("memorization", "memorization_slower")(e, t)
    assert out.verdict == REPRODUCED and out.value == pytest.approx(8.0)
    censored = mem_runs([
        {"name": "j", "objective": "J", "epochs_to_threshold": 10},
        {"name": "jp", "objective": "J_prime", "censored_at": 100},
    ])  # fmt: skip
    out = claim("memorization", "memorization_slower")(censored, t)
    assert out.verdict == REPRODUCED and "lower bound" in out.note
    faster = mem_runs([{"name": "j", "objective": "J", "epochs_to_threshold": 30}, {"name": "jp", "objective": "J_prime", "epochs_to_threshold": 20}])
    assert claim("memorization", "memorization_slower")(faster, t).verdict == NOT_REPRODUCED
    a_bit = mem_runs([{"name": "j", "objective": "J", "epochs_to_threshold": 30}, {"name": "jp", "objective": "J_prime", "epochs_to_threshold": 40}])
    assert claim("memorization", "memorization_slower")(a_bit, t).verdict == PARTIAL
    assert claim("memorization", "heldout_drops")(faster, t).verdict == NOT_RUN  # no held-out data


def test_noise_versus_images_pooled_over_experiments() -> None:
    t = th("memorization")
    images = mem_runs([{"name": "img", "objective": "J0", "epochs_to_threshold": 300, "test_acc_last": 0.12}], exp="images")
    noise = mem_runs([{"name": "noise", "objective": "J0", "data": "gaussian_noise", "epochs_to_threshold": 100,
                       "test_acc_last": 0.1}], exp="noise")  # fmt: skip
    pooled = Evidence(("images", "noise"), images.runs + noise.runs, {**images.outputs, **noise.outputs})
    out = claim("memorization", "noise_fitted_faster")(pooled, t)
    assert out.verdict == REPRODUCED and out.value == pytest.approx(3.0)
    assert claim("memorization", "noise_fitted_faster")(images, t).verdict == NOT_RUN  # no noise run
    slower = mem_runs([{"name": "img", "objective": "J0", "epochs_to_threshold": 50},
                       {"name": "noise", "objective": "J0", "data": "gaussian_noise", "epochs_to_threshold": 100}])  # fmt: skip
    assert claim("memorization", "noise_fitted_faster")(slower, t).verdict == NOT_REPRODUCED
    both_censored = mem_runs([{"name": "img", "objective": "J0", "censored_at": 100},
                              {"name": "noise", "objective": "J0", "data": "gaussian_noise", "censored_at": 100}])  # fmt: skip
    assert claim("memorization", "noise_fitted_faster")(both_censored, t).verdict == NOT_REPRODUCED
    assert claim("memorization", "j0_holds_test_near_k")(pooled, t).verdict == REPRODUCED
    far = mem_runs([{"name": "img", "objective": "J0", "test_acc_last": 0.35}])
    assert claim("memorization", "j0_holds_test_near_k")(far, t).verdict == NOT_REPRODUCED
    near = mem_runs([{"name": "img", "objective": "J0", "test_acc_last": 0.2}])
    assert claim("memorization", "j0_holds_test_near_k")(near, t).verdict == PARTIAL


def test_dataset_size_and_mixture_ordering() -> None:
    t = th("memorization")
    specs = []
    for n, e_img, e_noise in ((2560, 100, 300), (5120, 150, 200), (10240, 250, 120)):
        specs.append({"name": f"img{n}", "objective": "J0", "n_train": n, "epochs_to_threshold": e_img})
        specs.append({"name": f"noise{n}", "objective": "J0", "data": "gaussian_noise", "n_train": n, "epochs_to_threshold": e_noise})
    e = mem_runs(specs)
    assert claim("memorization", "noise_larger_faster")(e, t).verdict == REPRODUCED
    assert claim("memorization", "images_larger_slower")(e, t).verdict == REPRODUCED
    flipped = mem_runs([{**s, "epochs_to_threshold": 1000 - s["epochs_to_threshold"]} for s in specs])
    assert claim("memorization", "noise_larger_faster")(flipped, t).verdict == NOT_REPRODUCED
    assert claim("memorization", "images_larger_slower")(flipped, t).verdict == NOT_REPRODUCED
    mix = mem_runs([{"name": f"f{f}", "objective": "J0", "data": "mixture", "mix": f, "epochs_to_threshold": 50 + 300 * f}
                    for f in (0.0, 0.2, 0.6, 1.0)])  # fmt: skip
    assert claim("memorization", "mixture_noise_faster")(mix, t).verdict == REPRODUCED


def test_jt_targets_and_gradient_norms() -> None:
    t = th("memorization")
    jt = mem_runs([{"name": f"t{x}", "objective": "Jt", "target": x, "test_acc_last": x + 0.01, "epochs_to_threshold": 400 - 500 * x}
                   for x in (0.2, 0.3, 0.4, 0.5)])  # fmt: skip
    assert claim("memorization", "jt_tracks_target")(jt, t).verdict == REPRODUCED
    assert claim("memorization", "jt_higher_target_faster")(jt, t).verdict == REPRODUCED
    off = mem_runs([{"name": "t3", "objective": "Jt", "target": 0.3, "test_acc_last": 0.38}])
    assert claim("memorization", "jt_tracks_target")(off, t).verdict == PARTIAL
    paper = mem_runs([
        {"name": "j", "objective": "J", "gradnorm_first_weight_peak": 0.9, "gradnorm_first_weight_final": 5e-6},
        {"name": "jp", "objective": "J_prime", "gradnorm_first_weight_peak": 0.1, "gradnorm_first_weight_final": 5e-3},
    ])  # fmt: skip
    assert claim("memorization", "gradnorm_peak_lower")(paper, t).verdict == REPRODUCED
    assert claim("memorization", "gradnorm_final_higher")(paper, t).verdict == REPRODUCED
    quick = mem_runs([
        {"name": "j", "objective": "J", "gradnorm_first_weight_peak": 0.2, "gradnorm_first_weight_final": 6e-4},
        {"name": "jp", "objective": "J_prime", "gradnorm_first_weight_peak": 0.9, "gradnorm_first_weight_final": 2e-3},
    ])  # fmt: skip
    assert claim("memorization", "gradnorm_peak_lower")(quick, t).verdict == NOT_REPRODUCED
    assert claim("memorization", "gradnorm_final_higher")(quick, t).verdict == PARTIAL
    out = claim("memorization", "basin_ratio")(Evidence(), t)
    assert out.verdict == REPRODUCED and out.value == pytest.approx(176.09, abs=0.01)


# --------------------------------------------------------------------------- declarations and config


def default_config() -> dict[str, Any]:
    return load_yaml(ROOT / "config" / "config.yaml")


def test_default_config_declares_quick_analogues() -> None:
    from gendyn.reproduction.declare import declarations

    d = declarations(validate_config(default_config()))
    assert d["experiments"]["lc_quick"]["001:Fig 2"] == ["init_scale1"]
    assert d["experiments"]["lc_quick"]["001:Fig 9"] == ["init_scale8"]
    assert d["experiments"]["memorization_quick"]["003:Fig 2a"] == ["nameJ0_seed0", "nameJ0_seed1", "nameJ0_seed2"]
    assert set(d["studies"]["quick"]) == {"002:Fig 1", "002:Fig 2", "002:Fig 3", "002:Fig 4", "002:Sec. 3"}
    assert "quick" not in d["experiments"]  # the foundation smoke experiment declares nothing


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("001:Fig 99", "paper 001 has no figure 'Fig 99'"),
        ("005:Fig 1", "is not PAPER:FIGURE"),
        ("Fig 2", "is not a paper figure"),
        ("002:Fig 3", "declare it in neurashed.studies"),
        ("003:Fig 1a", "does not compute"),
        ({"figure": "001:Fig 2", "where": {"model.depht": 2}}, "'depht' is not a key of model"),
    ],
)
def test_bad_declarations_fail_validation_naming_the_key(entry: Any, message: str) -> None:
    cfg = default_config()
    cfg["experiments"]["lc_quick"]["reproduces"] = [entry]
    with pytest.raises(ConfigError, match="experiments.lc_quick.reproduces") as err:
        validate_config(cfg)
    assert message in str(err.value)


def test_where_matching_no_run_and_study_declarations() -> None:
    from gendyn.reproduction.declare import declarations, matches

    cfg = default_config()
    cfg["experiments"]["lc_quick"]["reproduces"] = [{"figure": "001:Fig 2", "where": {"model.init_scale": [1, 8]}}]
    assert declarations(validate_config(cfg))["experiments"]["lc_quick"]["001:Fig 2"] == ["init_scale1", "init_scale8"]
    cfg["experiments"]["lc_quick"]["reproduces"] = [{"figure": "001:Fig 2", "where": {"model.init_scale": 3}}]
    with pytest.raises(ConfigError, match="matches none of the runs"):
        declarations(validate_config(cfg))
    cfg = default_config()
    cfg["neurashed"]["studies"]["quick"]["reproduces"] = ["002:Fig 5"]
    with pytest.raises(ConfigError, match="not a neurashed figure"):
        validate_config(cfg)
    assert matches({"model": {"depth": 2}}, {"model.depth": [1, 2]}) and not matches({"model": {}}, {"model.depth": 2})


def test_thresholds_are_validated_and_reach_the_claims() -> None:
    s = stage_settings("reproduction", {"thresholds": {"lc": {"ascent": 3.0}}})
    assert thresholds_for(s, "lc")["ascent"] == 3.0 and thresholds_for(s, "lc")["min_run_fraction"] == 1.0
    with pytest.raises(ConfigError, match="reproduction.thresholds.lc: unknown key"):
        stage_settings("reproduction", {"thresholds": {"lc": {"ascnet": 3.0}}})
    e = ev(lc_run(DOUBLE_DESCENT))
    assert claim("lc", "ascent")(e, thresholds_for(SETTINGS, "lc")).verdict == REPRODUCED
    assert claim("lc", "ascent")(e, thresholds_for(s, "lc")).verdict == PARTIAL


def test_verdicts_reads_rows_of_given_figures(tmp_path: Path) -> None:
    rows = [
        {**{c: "" for c in COLUMNS}, "paper": "001", "figure": "Fig 2", "claim": "a", "verdict": "reproduced", "experiment": "lc_quick"},
        {**{c: "" for c in COLUMNS}, "paper": "001", "figure": "Fig 9", "claim": "b", "verdict": "partial", "experiment": "x;lc_quick"},
        {**{c: "" for c in COLUMNS}, "paper": "001", "figure": "Fig 3", "claim": "c", "verdict": "not run"},
        {**{c: "" for c in COLUMNS}, "paper": "000", "figure": "Fig 2", "claim": "d", "verdict": "not run"},
    ]  # fmt: skip
    path = tmp_path / "reproduction.csv"
    write_index(rows, path, tmp_path / "reproduction.html", tmp_path / "summary.html")
    assert [r["claim"] for r in verdicts(path, "001", ["Fig 2", "Fig 9"])] == ["a", "b"]
    assert [r["claim"] for r in verdicts(path, "001", ["Fig 2", "Fig 9", "Fig 3"], "lc_quick")] == ["a", "b"]
    assert verdicts(tmp_path / "absent.csv", "001", ["Fig 2"]) == []
    assert read_index(path) == [{c: r.get(c, "") for c in COLUMNS} for r in rows]
    page = (tmp_path / "reproduction.html").read_text()
    assert '<meta charset="utf-8">' in page and "Paper 001" in page
    assert "1 reproduced" in render_html(rows, compact=True)


# --------------------------------------------------------------------------- the engine on a tiny real run


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """results/tinyexp with two trained runs (seed 0, 1), their paths and LC analyses and a
    memorization-free experiment layout; seed 1 is marked diverged afterwards."""
    import h5py
    import torch

    from conftest import tiny_run_config

    from gendyn import store
    from gendyn.lc.stage import compute as lc_compute
    from gendyn.paths.stage import compute as paths_compute
    from gendyn.train import train_run

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("results")
    for seed in (0, 1):
        rid = f"seed{seed}"
        cfg = tiny_run_config(training__seed=seed, training__epochs=4)
        cfg["experiment"], cfg["run"] = "tinyexp", rid
        rd = root / "tinyexp" / "runs" / rid
        train_run(cfg, rd)
        ds = paths_compute(rd, stage_settings("paths", {"max_pairwise": 16, "baselines": [1, 2], "n_candidates": 8}))
        store.write_netcdf(ds, root / "tinyexp" / "analysis" / "paths" / f"{rid}.nc", measure="paths")
        lc = lc_compute(rd, stage_settings("lc", {"radii": [1.0], "n_directions": 4, "n_train": 20, "n_test": 20, "n_random": 20}))
        store.write_netcdf(lc, root / "tinyexp" / "analysis" / "lc" / f"{rid}.nc", measure="lc")
    with h5py.File(root / "tinyexp" / "runs" / "seed1" / "run.h5", "r+") as f:
        f.attrs["diverged"] = 1
        f.attrs["diverged_step"] = 7
    return root


DECLARED = {
    "experiments": {"tinyexp": {"000:Fig 5": ["seed0", "seed1"], "001:Fig 2": ["seed0"], "001:R1": ["seed0"]}},
    "studies": {},
}


def test_engine_on_a_tiny_run_lists_every_figure_and_names_its_sources(tiny_results: Path) -> None:
    rows = build_index(tiny_results, DECLARED, SETTINGS)
    assert {(r["paper"], r["figure"]) for r in rows} == {(p, f) for p, figs in registry.paper_figures().items() for f in figs}
    assert all(r["verdict"] in core.VERDICTS and set(r) == set(COLUMNS) for r in rows)
    by = {(r["figure"], r["claim"][:30]): r for r in rows if r["paper"] in ("000", "001")}
    fig5 = [r for r in rows if (r["paper"], r["figure"]) == ("000", "Fig 5")]
    assert len(fig5) == 3 and {r["experiment"] for r in fig5} == {"tinyexp"}
    for r in fig5:
        assert r["verdict"] != NOT_RUN, r
        assert "seed1 diverged at step 7" in r["note"], r  # the diverged run is named, never crashes
        assert r["files"].split(";")[0] == "tinyexp/analysis/paths/seed0.nc"
        assert all((tiny_results / f).exists() for f in r["files"].split(";"))
    lc = [r for r in rows if (r["paper"], r["figure"]) == ("001", "Fig 2")]
    assert len(lc) == 3 and all(r["run"] == "seed0" and r["files"] == "tinyexp/analysis/lc/seed0.nc" for r in lc)
    assert all(r["verdict"] != NOT_RUN and r["value"] != "" for r in lc)
    r1 = next(r for r in rows if (r["paper"], r["figure"]) == ("001", "R1"))
    assert r1["verdict"] == NOT_RUN and "missing tinyexp/analysis/robust/seed0.nc" in r1["note"]
    undeclared = next(r for r in rows if (r["paper"], r["figure"]) == ("003", "Fig 1a"))
    assert undeclared["verdict"] == NOT_RUN and undeclared["experiment"] == "" and "003:Fig 1a" in undeclared["note"]
    assert not any("claim failed" in r["note"] for r in rows)
    assert by  # rows are keyed for debugging output on failure


def test_a_run_whose_analysis_was_skipped_as_diverged_is_named_not_fatal(tiny_results: Path, tmp_path: Path) -> None:
    """A diverged run's paths analysis is a skipped-run file (issue #15): the index leaves the
    run out of the claim, names it as diverged, and still gives a verdict from the other run."""
    import shutil

    from gendyn import store

    root = tmp_path / "results"
    shutil.copytree(tiny_results, root)
    nc = root / "tinyexp" / "analysis" / "paths" / "seed1.nc"
    attrs = dict(store.open_analysis(nc).attrs)
    nc.unlink()
    store.write_netcdf(store.skipped_dataset("1 records but lag=1", attrs), nc, measure="paths")
    fig5 = [r for r in build_index(root, DECLARED, SETTINGS) if (r["paper"], r["figure"]) == ("000", "Fig 5")]
    assert len(fig5) == 3
    for r in fig5:
        assert r["verdict"] != NOT_RUN and "claim failed" not in r["note"], r
        assert "seed1 diverged at step 7" in r["note"], r
        assert "seed1.nc" not in r["files"], r


def test_changing_a_threshold_changes_the_verdict(tiny_results: Path) -> None:
    base = {r["claim"]: r for r in build_index(tiny_results, DECLARED, SETTINGS) if r["figure"] == "Fig 2" and r["paper"] == "001"}
    strict = stage_settings("reproduction", {"thresholds": {"lc": {"first_descent": 2.0, "first_descent_partial": 2.0}}})
    lax = stage_settings("reproduction", {"thresholds": {"lc": {"first_descent": -1.0}}})
    name = "LC around training points first decreases after initialisation"
    got = {s: next(r for r in build_index(tiny_results, DECLARED, st) if r["claim"] == name)
           for s, st in (("strict", strict), ("lax", lax))}  # fmt: skip
    assert got["strict"]["verdict"] == NOT_REPRODUCED and got["lax"]["verdict"] == REPRODUCED
    assert got["strict"]["value"] == got["lax"]["value"] == base[name]["value"]
    assert "≥ 2" in got["strict"]["threshold"]


def test_cli_writes_the_index_from_a_config(tiny_results: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    cfg = {"results_dir": str(tiny_results), "active_experiments": ["tinyexp"],
           "experiments": {"tinyexp": {"data": {"name": "digits", "n_test": 200}, "model": {"name": "mlp"},
                                       "training": {"epochs": 4}, "analyses": {"paths": {}},
                                       "reproduces": ["000:Fig 5"], "sweep": {"training.seed": [0, 1]}}}}  # fmt: skip
    (tmp_path / "c.yaml").write_text(json.dumps(cfg))
    out = tmp_path / "index.csv"
    proc = subprocess.run(
        ["gendyn", "reproduce", str(tiny_results), str(out), "--config", str(tmp_path / "c.yaml"),
         "--set", "thresholds.paths.late_self_sim=0.0", "--html", str(tmp_path / "i.html")],
        capture_output=True, text=True, env=cli_env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = read_index(out)
    fig5 = [r for r in rows if (r["paper"], r["figure"]) == ("000", "Fig 5")]
    assert {r["run"] for r in fig5} == {"seed0;seed1"} and (tmp_path / "i.html").exists()
    assert "≥ 0 and rising" in fig5[1]["threshold"]
    bad = subprocess.run(["gendyn", "reproduce", str(tiny_results), str(out), "--declared", "{", "--settings", "{}"],
                         capture_output=True, text=True, env=cli_env, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "--declared: not valid JSON" in bad.stderr


# --------------------------------------------------------------------------- the reproduce config

REPRODUCE = ROOT / "config" / "reproduce.yaml"
#: Headline claims the reproduce config must give a verdict for (issue #16, "done when").
HEADLINE = ("001:Fig 2", "001:Fig 9", "001:Fig 1", "001:R1", "000:Fig 5", "003:Fig 1a")


@pytest.mark.skipif(not REPRODUCE.exists(), reason="config/reproduce.yaml is not in this checkout yet (the lead adds it, issue #16)")
def test_reproduce_config_dry_run_builds_the_index(tmp_path: Path) -> None:
    from test_workflow import job_stats, snakemake

    from gendyn.reproduction.declare import declarations

    from gendyn.cli import _load_configs

    cfg = _load_configs([str(ROOT / "config" / "config.yaml"), str(REPRODUCE)])
    declared = declarations(cfg)
    figures = {f for figs in declared["experiments"].values() for f in figs} | {f for figs in declared["studies"].values() for f in figs}
    missing = [f for f in HEADLINE if f not in figures]
    assert not missing, f"config/reproduce.yaml declares no experiment for {missing}"
    # Weights a user supplies (paper 002 Fig. 5) exist in a real setup; a dry run only checks that.
    for exp in cfg["experiments"].values():
        weights = (((exp.get("analyses") or {}).get("elasticity") or {}).get("pretrained") or {}).get("weights")
        if weights and not Path(weights).is_absolute():
            (tmp_path / weights).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / weights).touch()
    res = snakemake(tmp_path, "-n", "--cores", "2", configfile=REPRODUCE, timeout=600)
    assert res.returncode == 0, res.describe()
    assert job_stats(res.output).get("reproduction") == 1, res.describe()


def test_docs_list_every_claim() -> None:
    text = (ROOT / "docs" / "reproduction.md").read_text()
    missing = [f"{m.name}.{c.name}" for m in registry.measures() for c in m.claims if f"`{c.name}`" not in text]
    assert not missing, f"docs/reproduction.md does not describe {missing}"
