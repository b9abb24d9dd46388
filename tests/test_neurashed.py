"""The neurashed simulator (paper 002): invariants, determinism, and the three phenomena of
the spec (§2.4, §6.6) on the simulator's real output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from gendyn import neurashed as ns
from gendyn.neurashed import Graph, Neurashed, builtin_graph, mutual_information

SEEDS = [0, 1, 2, 3, 4]


# --------------------------------------------------------------------------- graphs and scores


def test_builtin_pathways_follow_the_firing_rules() -> None:
    g = builtin_graph("fig1")
    assert g.pathway("1a") == {"0", "1", "2", "3", "a", "b", "e", "p", "q", "C1"}
    assert g.pathway("1b") == {"0", "1", "2", "4", "a", "b", "e", "p", "q", "C1"}
    assert g.pathway("2") == {"2", "3", "4", "5", "b", "c", "e", "r", "t", "C2"}
    assert g.pathway("3") == {"5", "6", "7", "d", "s", "C3"}
    g4 = builtin_graph("fig4")
    assert g4.pathway("1-1") == {"1", "2", "7", "A", "D", "C1"}  # D: at least 2 of 1..7
    assert len(g4.types) == 8
    with pytest.raises(ValueError, match="not on level"):
        Graph("bad", (("x",), ("y",), ("C",)), {"y": ("x",), "C": ("x",)}, {}, {"t": (frozenset({"x"}), "C")})


def test_scores_are_zero_off_the_pathway_and_logits_depend_only_on_it() -> None:
    sim = Neurashed("fig1", seed=3)
    sim.train(200, batch=1, sampling="iid")
    for t in sim.type_names:
        path = sim.graph.pathway(t)
        S = sim.scores([t])[0]
        off = [sim.index[n] for n in sim.nodes if n not in path]
        assert np.all(S[off] == 0.0)
        assert np.all(S[[sim.index[n] for n in path if n not in sim.graph.classes]] > 0)
        lam2 = sim.lam.copy()
        lam2[[i for i in off if not sim._top[i]]] *= 7.0
        eta2 = sim.eta.copy()
        eta2[[k for k, (f, _) in enumerate(sim.edges) if f not in path]] *= 5.0
        assert np.array_equal(sim.logits_of(lam2, eta2, [t]), sim.logits([t]))
    # paper eq. (1) by hand for type 3: Z_3 = eta_{s,C3} lambda_s lambda_d (lambda_6 + lambda_7)
    lam, i = sim.lam, sim.index
    z3 = sim.eta[sim.edges.index(("s", "C3"))] * lam[i["s"]] * lam[i["d"]] * (lam[i["6"]] + lam[i["7"]])
    assert sim.logits(["3"])[0, 2] == pytest.approx(z3, rel=1e-14)


def test_factors_stay_nonnegative_and_full_batch_mul_keeps_ratios() -> None:
    sim = Neurashed("fig3", ("mul", 1.02), ("mul", 0.995), seed=1)
    ds = sim.train(300, batch=2, record_every=50, types=["P1", "P2"])
    lam = ds["lam"].sel(node=[str(k) for k in range(6)] + ["u", "h", "v"]).values
    assert np.all(lam >= 0) and np.all(ds["eta"].values >= 0)
    np.testing.assert_allclose(lam / lam[0], np.broadcast_to(lam[:, :1] / lam[0, :1], lam.shape), rtol=1e-12)
    add = Neurashed("fig1", ("add", 0.01), ("mul", 0.9), init="zeros", seed=0)
    d2 = add.train(50, batch=1)
    assert np.all(np.nan_to_num(d2["lam"].values, nan=0.0) >= 0)
    with pytest.raises(ValueError, match="zeros"):
        Neurashed("fig1", ("mul", 1.02), ("mul", 0.99), init="zeros")
    with pytest.raises(ValueError, match="g_minus"):
        Neurashed("fig1", ("mul", 1.02), ("mul", 1.5))


def test_same_seed_gives_identical_trajectories() -> None:
    a = Neurashed("fig4", ("mul", 1.03), ("mul", 0.99), seed=7).train(400, batch=2, record_every=10, sampling="iid")
    b = Neurashed("fig4", ("mul", 1.03), ("mul", 0.99), seed=7).train(400, batch=2, record_every=10, sampling="iid")
    c = Neurashed("fig4", ("mul", 1.03), ("mul", 0.99), seed=8).train(400, batch=2, record_every=10, sampling="iid")
    for v in ("lam", "eta", "logits", "accuracy"):
        assert np.array_equal(a[v].values, b[v].values, equal_nan=True), v
    assert not np.array_equal(a["lam"].values, c["lam"].values, equal_nan=True)
    m1 = ns.information_bottleneck(3, steps=300, record_every=100, n_draws=50)
    m2 = ns.information_bottleneck(3, steps=300, record_every=100, n_draws=50)
    assert np.array_equal(m1["mi_x"].values, m2["mi_x"].values)


def test_simulator_local_elasticity_of_a_type_with_itself_is_one_and_leaves_it_unchanged() -> None:
    sim = Neurashed("fig1", seed=0)
    sim.train(100, batch=1, sampling="iid")
    lam, eta, steps = sim.lam.copy(), sim.eta.copy(), sim.steps_done
    assert sim.local_elasticity("1a", ["1a"])[0] == pytest.approx(1.0, rel=1e-15)
    assert np.array_equal(sim.lam, lam, equal_nan=True) and np.array_equal(sim.eta, eta) and sim.steps_done == steps


def test_mutual_information_limits() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    apart = np.eye(8)  # 8 well-separated means
    ix, iy = mutual_information(apart, labels, sigma=0.02, n_draws=100)
    assert ix == pytest.approx(3.0, abs=1e-6) and iy == pytest.approx(1.0, abs=1e-6)
    by_class = np.repeat(np.eye(2), 4, axis=0)
    ix, iy = mutual_information(by_class, labels, n_draws=100)
    assert ix == pytest.approx(1.0, abs=1e-6) and iy == pytest.approx(1.0, abs=1e-6)
    ix, iy = mutual_information(np.zeros((8, 3)), labels, n_draws=100)
    assert ix == pytest.approx(0.0, abs=1e-12) and iy == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- the three phenomena (spec §6.6)


@pytest.mark.parametrize("seed", SEEDS)
def test_local_elasticity_ordering_on_fig1(seed: int) -> None:
    ds = ns.elasticity_experiment(seed)
    le = {str(p): float(v) for p, v in zip(ds["probe"].values, ds["le"].values)}
    assert le["1a"] == pytest.approx(1.0)
    assert le["1b"] > le["2"] > le["3"] >= 0
    assert le["3"] < 1e-3


def test_implicit_regularization_small_batch_concentrates_on_shared_nodes() -> None:
    for seed in SEEDS:
        ds = ns.implicit_regularization(seed)
        small = ds["shared_share"].sel(batch="small").values
        large = ds["shared_share"].sel(batch="large").values
        assert small[-1] >= 0.99, (seed, small[-1])
        assert np.all(np.abs(large - large[0]) <= 1e-9), seed
        assert ds["participation"].sel(batch="small").values[-1] < ds["participation"].sel(batch="large").values[-1]


def test_information_bottleneck_fits_then_compresses() -> None:
    for seed in SEEDS:
        ds = ns.information_bottleneck(seed)
        x2 = ds["mi_x"].sel(level=2).values
        assert x2[0] <= 0.1, (seed, x2[0])
        assert x2.max() >= 1.4, (seed, x2.max())
        assert 0.95 <= x2[-1] <= 1.05, (seed, x2[-1])
        assert float(ds["mi_y"].sel(level=2).values[-1]) >= 0.95
        assert float(ds["mi_x"].sel(level=1).values[-1]) <= 1.1
        assert int(ds["step"].values[x2.argmax()]) < 2000  # fitting first, compression later


# --------------------------------------------------------------------------- CLI and figures


def test_cli_simulates_and_every_figure_renders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    import matplotlib.pyplot as plt

    from gendyn.cli import main
    from gendyn.config import stage_settings
    from gendyn.figures.jobs import FigureJob, run_figure_job
    from gendyn.neurashed import figures as figs
    from gendyn.neurashed.stage import simulate

    out = tmp_path / "information_bottleneck.nc"
    settings = {"steps": 600, "record_every": 100, "n_draws": 50}
    args = ["neurashed", "simulate", "information_bottleneck", str(out), "--settings", json.dumps(settings), "--set", "n_draws=40"]
    assert main([*args, "--seeds", "0", "1", "--threads", "1"]) == 0
    ds = xr.open_dataset(out)
    assert list(ds["seed"].values) == [0, 1] and json.loads(ds.attrs["settings"])["steps"] == 600
    assert json.loads(ds.attrs["settings"])["n_draws"] == 40 and ds.attrs["n_draws"] == 40
    assert ds.attrs["gendyn_format"] == "gendyn-analysis/1" and ds.sizes["record"] == 7
    # the library stage with the resolved settings is the command's dataset
    lib = simulate("information_bottleneck", stage_settings("neurashed.information_bottleneck", {**settings, "n_draws": 40}), [0, 1])
    np.testing.assert_array_equal(lib["mi_x"].values, ds["mi_x"].values)
    ir = simulate("implicit_regularization", {"steps": 100, "record_every": 20}, [0, 1])
    le = simulate("local_elasticity", {"steps": 200}, [0, 1, 2])
    ir_nc, le_nc = tmp_path / "ir.nc", tmp_path / "le.nc"
    from gendyn import store

    store.write_netcdf(ir, ir_nc, measure="neurashed")
    store.write_netcdf(le, le_nc, measure="neurashed")
    job = FigureJob("neurashed", "experiment", experiment="tiny", settings={"view": {"dpi": 30}},
                    inputs={"implicit_regularization": (ir_nc,), "information_bottleneck": (out,), "local_elasticity": (le_nc,)})  # fmt: skip
    pngs = run_figure_job(job, tmp_path / "figures")
    assert [p.stem for p in pngs] == ["fig1_graph", "fig2_pathways", "fig3_implicit_regularization",
                                      "fig4_information_bottleneck", "elasticity"]  # fmt: skip
    assert all(p.stat().st_size > 2_000 and p.with_suffix(".pdf").exists() for p in pngs)
    bare = run_figure_job(FigureJob("neurashed", "experiment", experiment="tiny"), tmp_path / "bare")
    assert [p.stem for p in bare] == ["fig1_graph", "fig2_pathways"]
    for fig in (figs.fig3_implicit_regularization(ir), figs.elasticity_bars(le)):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=30)
        plt.close(fig)
        assert buf.tell() > 2_000
    capsys.readouterr()
    assert main(["neurashed", "simulate", "local_elasticity", str(tmp_path / "x.nc"), "--settings", '{"steps": 0}']) == 2
    assert "local_elasticity.steps: 0 violates minimum 1" in capsys.readouterr().err
    assert math.isfinite(float(ds["mi_x"].max()))


def test_importing_the_package_and_its_cli_stays_light() -> None:
    import subprocess
    import sys

    code = ("import sys, gendyn.neurashed, gendyn.neurashed.cli; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'xarray') if m in sys.modules))")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    assert ns.Neurashed.__module__ == "gendyn.neurashed.simulator" and "elasticity_experiment" in dir(ns)
