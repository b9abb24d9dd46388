"""``gendyn diff``: comparing two results trees (gendyn.diff)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from gendyn import diff as gdiff
from gendyn.diff import cli as gdiff_cli
from gendyn.diff import hdf5 as gdiff_h5
from gendyn.diff import Difference, diff_files, diff_text, diff_trees

BASELINE = Path("/work/baseline_results")


# --------------------------------------------------------------------------- fixtures


def write_run_h5(path: Path) -> None:
    """A small run.h5 lookalike: root attributes, groups, chunked datasets, strings."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.attrs["gendyn_format"] = "gendyn-run/1"
        f.attrs["gendyn_version"] = "0.1.0"
        f.attrs["torch_version"] = "2.14.1"
        f.attrs["config"] = json.dumps({"training": {"lr": 0.1, "epochs": 3}})
        f.attrs["record_steps"] = np.array([0, 10, 20])
        f.attrs["fill"] = np.array([np.nan, 1.0])
        m = f.create_group("metrics")
        m.create_dataset("train_loss", data=np.array([2.3, 1.1, np.nan, 0.4]))
        m.create_dataset("step", data=np.arange(4, dtype=np.int64))
        m["train_loss"].attrs["units"] = "nats"
        masks = f.create_group("masks")
        masks.create_dataset("relu1", data=rng.integers(0, 255, size=(4, 16, 32), dtype=np.uint8), chunks=(1, 16, 32))
        masks["relu1"].attrs["module"] = "relu1"
        w = rng.standard_normal((4, 8, 64))
        f.create_dataset("state/fc1.weight", data=w, chunks=(1, 8, 64), compression="gzip")
        f.create_dataset("tracked/split", data=np.array(["train"] * 5 + ["test"] * 3, dtype=object),
                         dtype=h5py.string_dtype())


def write_analysis_nc(path: Path) -> None:
    import xarray as xr

    ds = xr.Dataset(
        {
            "lc": (("record", "radius"), np.arange(6, dtype=np.float64).reshape(3, 2)),
            "count": (("record",), np.array([1, 2, 3], dtype=np.int64)),
        },
        coords={"record": [0, 10, 20], "radius": [0.1, 1.0], "split": ("record", ["train", "test", "train"])},
        attrs={"measure": "lc", "gendyn_version": "0.1.0", "settings": json.dumps({"radii": [0.1, 1.0]})},
    )
    ds["lc"].attrs["description"] = "local complexity"
    ds.to_netcdf(path, engine="h5netcdf")


def make_tree(root: Path) -> Path:
    """A miniature results tree with every kind of file that diff_trees handles."""
    run = root / "exp" / "runs" / "r0"
    run.mkdir(parents=True)
    write_run_h5(run / "run.h5")
    (run / "config.yaml").write_text("experiment: exp\nrun: r0\ntraining:\n  lr: 0.1\n")
    (root / "exp" / "runs.csv").write_text("run,model.depth\nr0,1\n")
    (root / "exp" / "analysis" / "lc").mkdir(parents=True)
    write_analysis_nc(root / "exp" / "analysis" / "lc" / "r0.nc")
    (root / "exp" / "figures").mkdir()
    (root / "exp" / "figures" / "curves.png").write_bytes(b"\x89PNG fake")
    (root / "exp" / "logs").mkdir()
    (root / "exp" / "logs" / "train.log").write_text("started at 12:00\n")
    return root


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    a = make_tree(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    return a, b


RUN = "exp/runs/r0/run.h5"
NC = "exp/analysis/lc/r0.nc"


def kinds(diffs: list[Difference]) -> list[tuple[str, str, str]]:
    return [(d.path, d.where, d.kind) for d in diffs]


# --------------------------------------------------------------------------- identical


def test_identical_trees_have_no_differences(trees: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = trees
    assert diff_trees(a, b) == []
    assert diff_trees(a, b, ignore_attrs=()) == []  # a byte copy: even versions agree
    assert gdiff.main([str(a), str(b)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["4 file(s) compared, 0 differ, 0 only in A, 0 only in B"]


def test_netcdf_written_twice_compares_equal(tmp_path: Path) -> None:
    """Two separate writes: object references (DIMENSION_LIST, ...) differ, names do not."""
    write_analysis_nc(tmp_path / "a.nc")
    write_analysis_nc(tmp_path / "b.nc")
    assert diff_files(tmp_path / "a.nc", tmp_path / "b.nc", ignore_attrs=()) == []


def test_netcdf_dimension_scale_change_is_found(tmp_path: Path) -> None:
    import xarray as xr

    write_analysis_nc(tmp_path / "a.nc")
    ds = xr.open_dataset(tmp_path / "a.nc", engine="h5netcdf").load()
    ds = ds.assign_coords(radius=[0.1, 2.0])
    ds.to_netcdf(tmp_path / "b.nc", engine="h5netcdf")
    d = diff_files(tmp_path / "a.nc", tmp_path / "b.nc")
    assert [(x.where, x.kind) for x in d] == [("/radius", "values")]
    assert d[0].detail.startswith("1 of 2 values differ, max |a-b| = 1 at index (1,)")


# --------------------------------------------------------------------------- values


def test_changed_values_are_counted(trees: tuple[Path, Path]) -> None:
    a, b = trees
    with h5py.File(b / RUN, "r+") as f:
        w = f["state/fc1.weight"][...]
        w[0, 0, 0] += 1e-12
        w[2, 3, 5] += 0.5
        w[3, 7, 63] -= 0.25
        f["state/fc1.weight"][...] = w
    d = diff_trees(a, b)
    assert kinds(d) == [(RUN, "/state/fc1.weight", "values")]
    assert d[0].detail.startswith("3 of 2048 values differ, max |a-b| = 0.5 at index (2, 3, 5)")


def test_values_counted_across_blocks(trees: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Small blocks: every block is read, counts add up, indices are global."""
    a, b = trees
    monkeypatch.setattr(gdiff_h5, "BLOCK_BYTES", 200)  # < one (8, 64) float64 row: blocks cut axis 1 too
    with h5py.File(b / RUN, "r+") as f:
        w = f["state/fc1.weight"][...]
        w[0, 0, 0] += 1.0
        w[1, 5, 40] += 3.0
        w[3, 7, 63] += 2.0
        f["state/fc1.weight"][...] = w
        r = f["masks/relu1"][...]
        r[3, 15, 31] ^= 1
        f["masks/relu1"][...] = r
    d = {x.where: x for x in diff_trees(a, b)}
    assert set(d) == {"/state/fc1.weight", "/masks/relu1"}
    assert d["/state/fc1.weight"].detail.startswith("3 of 2048 values differ, max |a-b| = 3 at index (1, 5, 40)")
    assert d["/masks/relu1"].detail.startswith("1 of 2048 values differ, max |a-b| = 1 at index (3, 15, 31)")


@pytest.mark.parametrize(
    ("shape", "itemsize", "chunks", "block_bytes"),
    [
        ((10,), 8, None, 24),
        ((7, 5, 3), 8, (2, 5, 3), 64),
        ((3, 4, 100), 4, (1, 4, 100), 100),
        ((2, 3), 1, None, 1 << 20),
        ((5, 1, 9), 2, (5, 1, 1), 7),
    ],
)
def test_blocks_cover_each_element_once(
    shape: tuple[int, ...], itemsize: int, chunks: tuple[int, ...] | None, block_bytes: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gdiff_h5, "BLOCK_BYTES", block_bytes)
    seen = np.zeros(shape, dtype=int)
    for sel in gdiff_h5._blocks(shape, itemsize, chunks):
        seen[sel] += 1
        assert seen[sel].size * itemsize <= max(block_bytes, itemsize * shape[-1]) or seen[sel].size == 1
    assert (seen == 1).all()


def test_nan_at_same_place_is_equal_nan_vs_number_differs(tmp_path: Path) -> None:
    for name, values in (("a", [1.0, np.nan, 3.0]), ("b", [1.0, np.nan, 3.0]), ("c", [1.0, 2.0, 3.0])):
        with h5py.File(tmp_path / f"{name}.h5", "w") as f:
            f["x"] = np.array(values)
            f["t"] = np.array(["2024-01-01", "NaT"], dtype="datetime64[s]").view(np.int64)
    assert diff_files(tmp_path / "a.h5", tmp_path / "b.h5") == []
    d = diff_files(tmp_path / "a.h5", tmp_path / "c.h5")
    assert [(x.where, x.kind) for x in d] == [("/x", "values")]
    assert d[0].detail.startswith("1 of 3 values differ")
    assert "1 NaN vs number" in d[0].detail


def test_nat_aware_and_bitwise_floats() -> None:
    t = np.array(["2024-01-01", "NaT", "NaT"], dtype="datetime64[ns]")
    u = np.array(["2024-01-01", "NaT", "2024-01-02"], dtype="datetime64[ns]")
    assert gdiff_h5._differ_mask(t, t.copy(), None).tolist() == [False, False, False]
    assert gdiff_h5._differ_mask(t, u, None).tolist() == [False, False, True]
    # Exact by default: -0.0 is not 0.0, 1 ulp is a difference; NaN payloads and signs do not matter
    z = np.array([0x00000000, 0x7FC00000, 0x3F800000, 0x3F800000], dtype=np.uint32).view(np.float32)
    w = np.array([0x80000000, 0xFFC00001, 0x3F800001, 0x3F800000], dtype=np.uint32).view(np.float32)
    assert np.isnan(z[1]) and np.isnan(w[1])
    assert gdiff_h5._differ_mask(z, w, None).tolist() == [True, False, True, False]
    c = np.array([complex(1, np.nan)])
    assert gdiff_h5._differ_mask(c, c.copy(), None).tolist() == [False]


def test_tolerances(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["x"] = np.array([1.0, 100.0, np.inf])
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["x"] = np.array([1.0 + 1e-9, 100.0 + 1e-5, np.inf])
    assert len(diff_files(tmp_path / "a.h5", tmp_path / "b.h5")) == 1
    d = diff_files(tmp_path / "a.h5", tmp_path / "b.h5", atol=1e-8)
    assert d and d[0].detail.startswith("1 of 3 values differ")
    assert diff_files(tmp_path / "a.h5", tmp_path / "b.h5", rtol=1e-6) == []
    assert gdiff.main([str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "--rtol", "1e-6"]) == 0


def test_strings_compound_and_vlen(tmp_path: Path) -> None:
    rec = np.dtype([("name", "S8"), ("w", "f8", (2,))])
    for name, s, r, v in (
        ("a", "train", (b"x", [1.0, np.nan]), [1, 2, 3]),
        ("b", "train", (b"x", [1.0, np.nan]), [1, 2, 3]),
        ("c", "test", (b"x", [1.0, 5.0]), [1, 2]),
    ):
        with h5py.File(tmp_path / f"{name}.h5", "w") as f:
            f.create_dataset("split", data=np.array(["train", s], dtype=object), dtype=h5py.string_dtype())
            f["fixed"] = np.array([b"ab", s.encode()], dtype="S8")
            f["rec"] = np.array([(b"y", [0.0, 0.0]), r], dtype=rec)
            vl = f.create_dataset("vl", shape=(2,), dtype=h5py.vlen_dtype(np.int32))
            vl[0], vl[1] = [7], v
    assert diff_files(tmp_path / "a.h5", tmp_path / "b.h5") == []
    d = {x.where: x for x in diff_files(tmp_path / "a.h5", tmp_path / "c.h5")}
    assert set(d) == {"/split", "/fixed", "/rec", "/vl"}
    assert all(x.kind == "values" and x.detail.startswith("1 of 2 values differ") for x in d.values())
    assert "a=b'train' b=b'test'" in d["/split"].detail


def test_references_compare_by_target_path(tmp_path: Path) -> None:
    """Object references in datasets and dimension-scale attributes: by what they point to."""
    for name, order, target in (("a", "sxy", "x"), ("b", "yxs", "x"), ("c", "sxy", "y")):
        with h5py.File(tmp_path / f"{name}.h5", "w") as f:
            for v in order:  # creation order: other object addresses in b
                f[v] = np.arange(2.0) if v == "s" else np.full(2, float(ord(v)))
            f["s"].make_scale("s")
            for v in order.replace("s", ""):  # REFERENCE_LIST of s in this order
                f[v].dims[0].attach_scale(f["s"])
            refs = f.create_dataset("refs", shape=(2,), dtype=h5py.ref_dtype)
            refs[0], refs[1] = f["s"].ref, f[target].ref
    with h5py.File(tmp_path / "a.h5") as fa, h5py.File(tmp_path / "b.h5") as fb:
        assert fa["refs"][1] != fb["refs"][1]  # else the test proves nothing
    assert diff_files(tmp_path / "a.h5", tmp_path / "b.h5") == []
    d = diff_files(tmp_path / "a.h5", tmp_path / "c.h5")
    assert [(x.where, x.kind) for x in d] == [("/refs", "values")]
    assert "reference to /x" in d[0].detail and "reference to /y" in d[0].detail


# --------------------------------------------------------------------------- structure


def test_dtype_shape_and_extra_dataset(trees: tuple[Path, Path]) -> None:
    a, b = trees
    with h5py.File(b / RUN, "r+") as f:
        x = f["metrics/step"][...]
        del f["metrics/step"]
        f["metrics/step"] = x.astype(np.int32)
        del f["metrics/train_loss"]
        f["metrics/train_loss"] = np.array([2.3, 1.1, np.nan])
        f["metrics/extra"] = np.zeros(3)
        f.create_group("new_group/sub").create_dataset("y", data=[1])
    d = diff_trees(a, b)
    assert kinds(d) == [
        (RUN, "/metrics/extra", "only_in_b"),
        (RUN, "/metrics/step", "dtype"),
        (RUN, "/metrics/train_loss@units", "attribute"),  # the dataset was rewritten without it
        (RUN, "/metrics/train_loss", "shape"),
        (RUN, "/new_group", "only_in_b"),  # once, not again for its members
    ]
    by = {x.where: x.detail for x in d}
    assert by["/metrics/step"] == "a=int64 b=int32"
    assert by["/metrics/train_loss"] == "a=(4,) b=(3,)"
    assert by["/metrics/extra"] == "dataset float64 (3,)"
    # and the other way round
    assert [x.kind for x in diff_trees(b, a) if x.where == "/metrics/extra"] == ["only_in_a"]


def test_changed_and_ignored_attributes(trees: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = trees
    with h5py.File(b / RUN, "r+") as f:
        f.attrs["gendyn_version"] = "0.2.0"  # ignored by default
        f.attrs["config"] = json.dumps({"training": {"lr": 0.2, "epochs": 3}})
        f.attrs["record_steps"] = np.array([0, 10, 30])
        f.attrs["fill"] = np.array([np.nan, 1.0])  # NaN == NaN: equal
        f["masks/relu1"].attrs["module"] = "relu2"
    d = diff_trees(a, b)
    assert kinds(d) == [
        (RUN, "/@config", "attribute"),
        (RUN, "/@record_steps", "attribute"),
        (RUN, "/masks/relu1@module", "attribute"),
    ]
    by = {x.where: x.detail for x in d}
    assert by["/masks/relu1@module"] == "a='relu1' b='relu2'"
    assert '"lr": 0.1' in by["/@config"] and '"lr": 0.2' in by["/@config"]
    assert by["/@record_steps"].startswith("1 of 3 values differ, max |a-b| = 10 at index (2,)")

    all_attrs = diff_trees(a, b, ignore_attrs=())
    assert (RUN, "/@gendyn_version", "attribute") in kinds(all_attrs)
    assert gdiff.main([str(a), str(b)]) == 1
    assert "gendyn_version" not in capsys.readouterr().out
    assert gdiff.main([str(a), str(b), "--no-default-ignores"]) == 1
    out = capsys.readouterr().out
    assert f"{RUN}: /@gendyn_version: attribute: a='0.1.0' b='0.2.0'" in out.splitlines()
    # --ignore-attr adds names (patterns) to the defaults
    assert gdiff.main([str(a), str(b), "--ignore-attr", "config", "--ignore-attr", "record_*",
                       "--ignore-attr", "module"]) == 0


def test_attribute_only_on_one_side(trees: tuple[Path, Path]) -> None:
    a, b = trees
    with h5py.File(b / NC, "r+") as f:
        f["lc"].attrs["units"] = "regions"
        del f["lc"].attrs["description"]
    assert kinds(diff_trees(a, b)) == [(NC, "/lc@description", "attribute"), (NC, "/lc@units", "attribute")]
    assert [x.detail for x in diff_trees(a, b)] == ["only in a: 'local complexity'", "only in b: 'regions'"]


# --------------------------------------------------------------------------- files


def test_files_only_in_one_tree(trees: tuple[Path, Path]) -> None:
    a, b = trees
    (a / "exp" / "runs.csv").unlink()
    (b / "exp" / "figures" / "curves.png").unlink()
    (b / "exp" / "analysis" / "extra").mkdir()
    (b / "exp" / "analysis" / "extra" / "x.nc").write_bytes(b"")
    d = diff_trees(a, b)
    assert kinds(d) == [
        ("exp/analysis/extra/x.nc", "<file>", "only_in_b"),
        ("exp/figures/curves.png", "<file>", "only_in_a"),
        ("exp/runs.csv", "<file>", "only_in_b"),
    ]


def test_figures_and_logs_are_not_compared(trees: tuple[Path, Path]) -> None:
    a, b = trees
    (b / "exp" / "figures" / "curves.png").write_bytes(b"\x89PNG other")
    (b / "exp" / "logs" / "train.log").write_text("started at 13:00\n")
    assert diff_trees(a, b) == []
    d = diff_trees(a, b, include=("*.log",))
    assert kinds(d) == [("exp/logs/train.log", "line 1", "text")]


def test_text_difference_names_first_line(trees: tuple[Path, Path]) -> None:
    a, b = trees
    (b / "exp" / "runs.csv").write_text("run,model.depth\nr0,2\n")
    (b / "exp" / "runs" / "r0" / "config.yaml").write_text("experiment: exp\nrun: r0\ntraining:\n  lr: 0.1\nx: 1\n")
    d = diff_trees(a, b)
    assert kinds(d) == [("exp/runs.csv", "line 2", "text"), ("exp/runs/r0/config.yaml", "line 5", "text")]
    assert d[0].detail == "a='r0,1\\n' b='r0,2\\n' (1 of 2 lines differ)"
    assert d[1].detail == "a=<end of file> b='x: 1\\n' (a has 4 lines, b has 5)"
    assert diff_text(a / "exp" / "runs.csv", a / "exp" / "runs.csv") == []


def test_unreadable_files(trees: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = trees
    data = (b / RUN).read_bytes()
    (b / RUN).write_bytes(data[: len(data) // 2])  # truncated
    (b / NC).write_text("not an HDF5 file\n")
    d = diff_trees(a, b)
    assert kinds(d) == [(NC, "<file>", "unreadable"), (RUN, "<file>", "unreadable")]
    assert all(x.detail.startswith("b: OSError") for x in d)
    assert "truncated" in d[1].detail
    assert "\n" not in d[1].detail
    assert gdiff.main([str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "Traceback" not in out
    assert out.strip().splitlines()[-1] == "4 file(s) compared, 2 differ, 0 only in A, 0 only in B"


# --------------------------------------------------------------------------- command line


def test_json_output_and_max_lines(trees: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = trees
    (b / "exp" / "runs.csv").write_text("run\n")
    with h5py.File(b / RUN, "r+") as f:
        f["metrics/step"][0] = 7
    (b / "exp" / "new.yaml").write_text("x: 1\n")
    assert gdiff.main([str(a), str(b), "--json"]) == 1
    captured = capsys.readouterr()
    records = json.loads(captured.out)
    assert [(r["path"], r["where"], r["kind"]) for r in records] == [
        ("exp/new.yaml", "<file>", "only_in_b"),
        ("exp/runs.csv", "line 1", "text"),
        (RUN, "/metrics/step", "values"),
    ]
    assert set(records[0]) == {"path", "where", "kind", "detail"}
    assert "4 file(s) compared, 2 differ, 0 only in A, 1 only in B" in captured.err

    assert gdiff.main([str(a), str(b), "--max-lines", "1"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "exp/new.yaml: <file>: only_in_b: file (5 bytes)"
    assert lines[1].startswith("... 2 more difference(s) not shown")
    assert lines[2] == "4 file(s) compared, 2 differ, 0 only in A, 1 only in B"


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_tree(tmp_path / "a")
    missing = tmp_path / "nope"
    assert gdiff.main([str(a), str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    assert gdiff.main([str(missing), str(a)]) == 2
    assert gdiff.main([str(a)]) == 2
    assert gdiff.main([str(a), str(a), "--rtol", "x"]) == 2
    assert gdiff.main([str(a), str(a), "--atol", "-1"]) == 2
    assert gdiff.main([str(a), str(a / "exp" / "runs.csv")]) == 2
    assert gdiff.main([str(a), str(a)]) == 0
    with pytest.raises(NotADirectoryError, match="nope"):
        diff_trees(a, missing)


def test_register_adds_diff_subcommand(tmp_path: Path) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="gendyn")
    gdiff.register(parser.add_subparsers(dest="command"))
    a = make_tree(tmp_path / "a")
    args = parser.parse_args(["diff", str(a), str(a), "--ignore-attr", "x", "--json"])
    assert args.func is gdiff_cli.cmd_diff and args.ignore_attr == ["x"] and args.max_lines == 200
    assert args.func(args) == 0


# --------------------------------------------------------------------------- real results


@pytest.mark.skipif(not BASELINE.is_dir(), reason="no /work/baseline_results on this machine")
@pytest.mark.parametrize("rel", ["le_quick/runs/base/run.h5", "le_quick/analysis/paths/base.nc"])
def test_real_file_against_its_copy(tmp_path: Path, rel: str) -> None:
    src = BASELINE / rel
    if not src.is_file():
        pytest.skip(f"{src} not present")
    copy = tmp_path / src.name
    shutil.copyfile(src, copy)
    assert diff_files(src, copy, ignore_attrs=()) == []

    # flip one bit of one value of the first numeric dataset with more than one element
    with h5py.File(copy, "r+") as f:
        names: list[str] = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and o.dtype.kind in "fiu"
                     and o.size > 1 and "CLASS" not in o.attrs else None)
        target = f[names[0]]
        x = target[...]
        flat = x.reshape(-1).view(np.uint8)
        flat[0] ^= 1
        target[...] = x
    d = diff_files(src, copy)
    assert [(x.where, x.kind) for x in d] == [(f"/{names[0]}", "values")]
    assert d[0].detail.startswith(f"1 of {x.size} values differ")


def test_results_only_ignores_figures_logs_and_hidden_markers(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root, fig in ((a, "figures/curves/x.png"), (b, "figures/views/runs/x/curves.png")):
        (root / fig).parent.mkdir(parents=True)
        (root / fig).write_bytes(b"png")
        (root / "runs.csv").write_text("run\nx\n")
    (b / "figures" / "views" / "runs" / "x" / ".snakemake_timestamp").write_text("")
    assert {d.kind for d in diff_trees(a, b)} == {"only_in_a", "only_in_b"}  # the figures moved
    assert diff_trees(a, b, results_only=True) == []
    assert gdiff.main([str(a), str(b), "--results-only"]) == 0
    (b / "runs.csv").write_text("run\ny\n")
    assert [d.kind for d in diff_trees(a, b, results_only=True)] == ["text"]
