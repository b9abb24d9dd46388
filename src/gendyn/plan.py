"""What a workflow config will run and write, before anything runs (``gendyn plan``).

For every active experiment of a workflow config:

* **runs and jobs**: the jobs per rule that Snakemake schedules for a fresh results folder
  (:func:`workflow_jobs` builds the workflow's DAG in-process, so the counts are Snakemake's own)
  and how many of them request a GPU;
* **storage**, computed from shapes: ``run.h5`` (masks, activations, metrics of every record
  point, :func:`gendyn.store.run_file_nbytes`), ``checkpoints.h5`` (parameters and buffers at every
  checkpoint, :func:`gendyn.store.checkpoint_file_nbytes`) and every analysis output (each
  measure's estimator, ``estimate`` in ``gendyn.<measure>.stage``, found through the registry).
  Unit shapes come from one forward of the real model on the meta device (no weights, no data),
  record points from :func:`gendyn.record.record_steps` with the real steps per epoch, split sizes
  from the data when it is on this machine, else from the documented sizes
  (:mod:`gendyn.data.sizes`);
* **memory**: a peak estimate per analysis stage against ``resources.analysis.mem_budget_mb`` and
  the job's ``mem_mb``, naming the stages that would fail;
* **time** (``calibrate=True``): a few real training steps of every distinct model on this
  machine's device, scaled to each run's steps and record points.

The workflow prints the plan when a run that asks for GPUs starts (``print_plan`` in the config;
the Snakefile's ``onstart``).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "JobInfo",
    "RunShape",
    "StageEstimate",
    "ExperimentPlan",
    "Plan",
    "run_shape",
    "plan_config",
    "workflow_jobs",
    "jobs_from_dag",
    "plan_files",
    "format_plan",
    "should_print",
    "default_snakefile",
]

logger = logging.getLogger(__name__)

_GIB = 2**30
_MIB = 2**20
#: Resident memory of an analysis process before it holds any data (Python, torch, xarray, dask).
PROCESS_BYTES = 600 * _MIB


# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class JobInfo:
    """One job of the DAG: its rule, experiment (or neurashed study), run, GPUs and memory."""

    rule: str
    experiment: str | None
    run: str | None
    gpu: int = 0
    mem_mb: int | None = None
    study: str | None = None
    outputs: tuple[str, ...] = ()


def jobs_from_dag(jobs: Iterable[Any]) -> list[JobInfo]:
    """:class:`JobInfo` of Snakemake job objects (``workflow.dag.needrun_jobs()``)."""
    out = []
    for job in jobs:
        wc = dict(job.wildcards_dict)
        res = job.resources
        gpu = int(res.get("gpu", 0) or 0) if hasattr(res, "get") else 0
        mem = res.get("mem_mb") if hasattr(res, "get") else None
        out.append(
            JobInfo(
                job.rule.name, wc.get("experiment"), wc.get("run"), gpu, None if mem is None else int(mem),
                wc.get("study"), tuple(str(f) for f in job.output),
            )
        )  # fmt: skip
    return out


def default_snakefile() -> Path | None:
    """The project's Snakefile when gendyn runs from a source checkout (``pip install -e .``)."""
    here = Path(__file__).resolve()
    for parent in here.parents[:4]:
        cand = parent / "Snakefile"
        if cand.is_file() and (parent / "workflow" / "rules").is_dir():
            return cand
    return None


def workflow_jobs(
    configfiles: Sequence[Path | str],
    *,
    config: Mapping[str, Any] | None = None,
    snakefile: Path | str | None = None,
) -> tuple[list[JobInfo], dict[str, Any]]:
    """Every job Snakemake would schedule for ``configfiles`` in an empty folder, and the config.

    Builds the workflow's DAG in-process (``snakemake -n --forceall`` in a temporary working
    directory; the files are the whole configuration, as in any run). Pretrained weights
    that are not on this machine get empty placeholders there, as a dry run only checks that
    they exist.

    Returns
    -------
    (jobs, CFG): the jobs, and the validated configuration the rules read (``CFG`` of
    ``workflow/rules/common.smk``, after ``smoke`` if set).
    """
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    snakefile = Path(snakefile) if snakefile is not None else default_snakefile()
    if snakefile is None or not snakefile.is_file():
        raise FileNotFoundError(
            "gendyn plan: no Snakefile found; run it from a source checkout of gendyn or give --snakefile PATH"
        )
    files = [Path(f).resolve() for f in configfiles]
    overrides = dict(config or {})
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="gendyn-plan-") as tmp:
        overrides.update(_weight_placeholders(files, overrides, Path(tmp)))
        with _quiet_snakemake(), SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
            try:
                wapi = api.workflow(
                    resource_settings=ResourceSettings(cores=1),
                    config_settings=ConfigSettings(configfiles=files, config=overrides),
                    snakefile=snakefile.resolve(),
                    workdir=Path(tmp),
                )
                wapi.dag(DAGSettings(forceall=True))
                wf = wapi._workflow  # noqa: SLF001 - snakemake==9.27.1 (pinned): no public DAG accessor
                wf._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
                wf._build_dag()
                jobs = jobs_from_dag(wf.dag.needrun_jobs())
                cfg = wf.globals["CFG"]
            finally:
                os.chdir(cwd)
    return jobs, cfg


class _NoSnakemake(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("snakemake") or record.levelno >= logging.ERROR


@contextlib.contextmanager
def _quiet_snakemake() -> Any:
    """Snakemake's in-process log lines off for the block (the plan prints its own report)."""
    flt = _NoSnakemake()
    handlers = list(logging.getLogger().handlers)
    for h in handlers:
        h.addFilter(flt)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(flt)


def _weight_placeholders(files: Sequence[Path], overrides: Mapping[str, Any], tmp: Path) -> dict[str, Any]:
    """Config overrides pointing pretrained-weights files that are not on this machine at empty
    placeholders in ``tmp`` (and relative paths that are here at their absolute path, since the
    plan's working directory is ``tmp``)."""
    from gendyn.config import load_yaml, merge_configs

    default = default_snakefile()
    # As the Snakefile reads them: the given files, or config/config.yaml when none is given.
    sources = list(files) or ([default.parent / "config" / "config.yaml"] if default else [])
    merged = merge_configs(*(load_yaml(f) for f in sources), dict(overrides))
    if str(merged.get("smoke", False)).lower() == "true":
        return {}  # a smoke run writes its own stand-in weights
    out: dict[str, Any] = {}
    for name, exp in (merged.get("experiments") or {}).items():
        pre = (((exp or {}).get("analyses") or {}).get("elasticity") or {}).get("pretrained") or {}
        weights = pre.get("weights")
        if not weights:
            continue
        path = Path(weights) if Path(weights).is_absolute() else Path.cwd() / weights
        if path.is_file():
            target = path
        else:
            target = tmp / "weights-placeholder" / name / Path(weights).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        exp_over = out.setdefault("experiments", {}).setdefault(name, {})
        exp_over.setdefault("analyses", {}).setdefault("elasticity", {}).setdefault("pretrained", {})["weights"] = str(target)
    return out


# --------------------------------------------------------------------------- one run's shapes


@dataclass
class RunShape:
    """One run as the estimators see it: sizes and shapes, nothing trained or loaded.

    Attributes
    ----------
    experiment, run : names
    config : the validated run configuration
    data : split sizes, input shape and classes (:class:`gendyn.data.sizes.DataSizes`)
    steps_per_epoch, total_steps : training length
    record_steps : (R,) steps of the record points
    checkpoint_steps : (K,) steps with weights in ``checkpoints.h5``
    layers : recording sites with their unit shapes (:class:`gendyn.store.LayerInfo`)
    state : state-dict key -> (shape, itemsize)
    n_params : trainable and frozen parameters
    n_metrics : variables of ``/metrics`` besides ``step``
    n_param_modules : modules owning parameters (gradient norms)
    """

    experiment: str
    run: str
    config: dict[str, Any]
    data: Any
    steps_per_epoch: int
    total_steps: int
    record_steps: np.ndarray
    checkpoint_steps: np.ndarray
    layers: list[Any]
    state: dict[str, tuple[tuple[int, ...], int]]
    n_params: int
    n_metrics: int
    itemsize: int

    @property
    def n_records(self) -> int:
        return int(len(self.record_steps))

    @property
    def n_tracked_train(self) -> int:
        return int(self.config["recording"]["n_tracked_train"])

    @property
    def n_tracked_test(self) -> int:
        return int(self.config["recording"]["n_tracked_test"])

    @property
    def n_tracked(self) -> int:
        return self.n_tracked_train + self.n_tracked_test

    @property
    def n_units(self) -> int:
        return int(sum(lay.n_units for lay in self.layers))

    @property
    def state_bytes(self) -> int:
        return int(sum(int(np.prod(s, dtype=np.int64)) * i for s, i in self.state.values()))

    @property
    def input_numel(self) -> int:
        return int(np.prod(self.data.input_shape))

    def split_size(self, split: str) -> int:
        return int({"train": self.data.n_train, "test": self.data.n_test, "heldout": self.data.n_heldout}[split])


def _meta_model(run_cfg: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> Any:
    """The run's model on the meta device (shapes only) and its recording sites."""
    import torch

    from gendyn.models import build_run_model
    from gendyn.record import relu_layers

    with torch.device("meta"):
        model = build_run_model(run_cfg, tuple(input_shape), int(n_classes))
    dtype = next(iter(model.parameters())).dtype
    example = torch.empty((1, *input_shape), dtype=dtype, device="meta")
    return model, relu_layers(model, example)


def run_shape(
    run_cfg: Mapping[str, Any], *, probe: bool = True, n_outputs: int | None = None, _cache: dict[str, Any] | None = None
) -> RunShape:
    """The shapes of one run (a validated run config): data, schedule, layers, weights.

    ``n_outputs`` overrides the width of the output layer (given pretrained weights, e.g. 1000).
    """
    from gendyn.data.sizes import data_sizes
    from gendyn.record import record_steps, saves_checkpoint
    from gendyn.train import metric_names, training_length

    cache = _cache if _cache is not None else {}
    dkey = json.dumps(run_cfg["data"], sort_keys=True)
    if dkey not in cache:
        cache[dkey] = data_sizes(run_cfg["data"], probe=probe)
    sizes = cache[dkey]
    spe, total = training_length(run_cfg["training"], sizes.n_train, sizes.n_test)
    steps = record_steps(run_cfg["recording"]["schedule"], total, spe)
    ckpt = np.array([s for k, s in enumerate(steps) if saves_checkpoint(run_cfg["recording"], k, int(s), total)], dtype=np.int64)
    obj = run_cfg["training"].get("objective") or {}
    n_out = int(n_outputs or obj.get("n_outputs") or sizes.n_classes)
    mkey = json.dumps([run_cfg["model"], sizes.input_shape, n_out, obj.get("n_outputs")], sort_keys=True)
    if mkey not in cache:
        model, layers = _meta_model(run_cfg, sizes.input_shape, n_outputs or sizes.n_classes)
        state = {k: (tuple(int(d) for d in v.shape), int(v.element_size())) for k, v in model.state_dict().items()}
        n_params = sum(int(p.numel()) for p in model.parameters())
        cache[mkey] = (model, layers, state, n_params)
    model, layers, state, n_params = cache[mkey]
    n_metrics = len(metric_names(run_cfg, model, heldout=sizes.n_heldout > 0))
    itemsize = 8 if run_cfg["model"].get("dtype") == "float64" else 4
    return RunShape(
        str(run_cfg.get("experiment", "")), str(run_cfg.get("run", "")), dict(run_cfg), sizes, spe, total, steps, ckpt,
        list(layers), state, n_params, n_metrics, itemsize,
    )  # fmt: skip


# --------------------------------------------------------------------------- analysis estimates


@dataclass
class StageEstimate:
    """Output size and peak memory of the jobs of one analysis stage of one experiment.

    ``bytes`` is the total over the stage's files; ``peak_bytes`` the largest job's peak
    resident memory; ``budget_bytes`` the memory budget the stage sizes its work to (None: it
    does not read one) and ``limit_bytes`` the job's ``mem_mb``. ``fails`` names why the
    stage would fail at these sizes (empty: it fits).
    """

    measure: str
    stage: str
    n_files: int
    bytes: int
    peak_bytes: int
    budget_bytes: int | None = None
    limit_bytes: int | None = None
    fails: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure, "stage": self.stage, "files": self.n_files, "bytes": self.bytes,
            "peak_bytes": self.peak_bytes, "budget_bytes": self.budget_bytes, "limit_bytes": self.limit_bytes,
            "fits": not self.fails, "fails": self.fails, "note": self.note,
        }  # fmt: skip


def _estimator(measure: str) -> Any:
    from gendyn import registry

    target = registry.get(measure).estimate
    if target is None:
        return None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


# --------------------------------------------------------------------------- the plan


@dataclass
class ExperimentPlan:
    """Everything the plan says about one experiment (totals over its runs)."""

    name: str
    runs: list[RunShape]
    jobs: Counter = field(default_factory=Counter)
    gpu_jobs: int = 0
    run_h5: dict[str, int] = field(default_factory=dict)
    checkpoints_h5: dict[str, int] = field(default_factory=dict)
    stages: list[StageEstimate] = field(default_factory=list)
    trains: bool = True
    time: dict[str, Any] = field(default_factory=dict)

    @property
    def analysis_bytes(self) -> int:
        return int(sum(s.bytes for s in self.stages))

    @property
    def total_bytes(self) -> int:
        return int(self.run_h5.get("total", 0) + self.checkpoints_h5.get("total", 0) + self.analysis_bytes)

    def as_dict(self) -> dict[str, Any]:
        first = self.runs[0] if self.runs else None
        out: dict[str, Any] = {
            "runs": len(self.runs) if self.trains else 0,
            "jobs": int(sum(self.jobs.values())),
            "gpu_jobs": int(self.gpu_jobs),
            "jobs_by_rule": dict(sorted(self.jobs.items())),
            "bytes": {
                "run_h5": int(self.run_h5.get("total", 0)),
                "checkpoints_h5": int(self.checkpoints_h5.get("total", 0)),
                "analysis": self.analysis_bytes,
                "total": self.total_bytes,
            },
            "bytes_detail": {
                "run_h5": dict(self.run_h5),
                "checkpoints_h5": dict(self.checkpoints_h5),
                "analysis": {f"{s.measure}/{s.stage}": s.bytes for s in self.stages},
            },
            "memory": [s.as_dict() for s in self.stages],
            "per_run": [
                {
                    "run": r.run, "records": r.n_records, "checkpoints": int(len(r.checkpoint_steps)),
                    "steps": r.total_steps, "steps_per_epoch": r.steps_per_epoch, "tracked_images": r.n_tracked,
                }
                for r in self.runs
            ] if self.trains else [],  # fmt: skip
        }
        if first is not None:
            out["data"] = {
                "name": first.config["data"]["name"], "n_train": first.data.n_train, "n_test": first.data.n_test,
                "n_heldout": first.data.n_heldout, "input_shape": list(first.data.input_shape),
                "n_classes": first.data.n_classes, "sizes_from": first.data.origin,
            }  # fmt: skip
            out["model"] = {
                "name": first.config["model"]["name"],
                "parameters": [min(r.n_params for r in self.runs), max(r.n_params for r in self.runs)],
                "relu_sites": [min(len(r.layers) for r in self.runs), max(len(r.layers) for r in self.runs)],
                "units_per_image": [min(r.n_units for r in self.runs), max(r.n_units for r in self.runs)],
                "state_bytes": [min(r.state_bytes for r in self.runs), max(r.state_bytes for r in self.runs)],
            }
        if self.time:
            out["time"] = dict(self.time)
        return out


@dataclass
class Plan:
    """The plan of a whole workflow config."""

    sources: list[str]
    experiments: dict[str, ExperimentPlan]
    other_jobs: Counter = field(default_factory=Counter)
    studies: dict[str, Counter] = field(default_factory=dict)
    device: str = ""

    @property
    def jobs_total(self) -> int:
        return int(sum(sum(e.jobs.values()) for e in self.experiments.values()) + sum(self.other_jobs.values()))

    def as_dict(self) -> dict[str, Any]:
        exps = {n: e.as_dict() for n, e in self.experiments.items()}
        return {
            "config": self.sources,
            "experiments": exps,
            "totals": {
                "runs": sum(e["runs"] for e in exps.values()),
                "jobs": self.jobs_total,
                "gpu_jobs": sum(e["gpu_jobs"] for e in exps.values()),
                "bytes": {k: sum(e["bytes"][k] for e in exps.values()) for k in ("run_h5", "checkpoints_h5", "analysis", "total")},
            },
            "other_jobs": dict(sorted(self.other_jobs.items())),
            "studies": {k: dict(v) for k, v in self.studies.items()},
            **({"device": self.device} if self.device else {}),
        }


def _trains(exp: Mapping[str, Any]) -> bool:
    le = (exp.get("analyses") or {}).get("elasticity") or {}
    return le.get("pretrained") is None


def plan_config(
    cfg: Mapping[str, Any],
    *,
    jobs: Sequence[JobInfo] | None = None,
    probe: bool = True,
    calibrate: bool = False,
    sources: Sequence[str] = (),
) -> Plan:
    """The plan of a validated workflow config (``CFG`` of the workflow).

    Parameters
    ----------
    cfg : mapping
        Validated by :func:`gendyn.config.validate_config` (and shrunk by ``smoke``, if set).
    jobs : sequence of JobInfo, optional
        The DAG's jobs (:func:`workflow_jobs`, or ``jobs_from_dag`` of a running workflow).
    probe : bool
        Read split sizes from the data files where they are on this machine.
    calibrate : bool
        Time a few training steps per distinct model on this machine (``time`` of each experiment).
    """
    from gendyn.config import active_experiments, expand_experiment

    cache: dict[str, Any] = {}
    res = cfg["resources"]["analysis"]
    budget = int(res["mem_budget_mb"]) * _MIB
    limit = int(res["mem_mb"]) * _MIB
    plan = Plan(list(sources), {})
    for name in active_experiments(cfg):
        exp = cfg["experiments"][name]
        pre = ((exp.get("analyses") or {}).get("elasticity") or {}).get("pretrained") or {}
        runs = [
            run_shape(rc, probe=probe, n_outputs=pre.get("n_outputs"), _cache=cache)
            for _, _, rc in expand_experiment(name, exp, data_root=cfg.get("data_root"))
        ]
        ep = ExperimentPlan(name, runs, trains=_trains(exp))
        if ep.trains:
            ep.run_h5 = _sum_dicts(_run_file(r) for r in runs)
            ep.checkpoints_h5 = _sum_dicts(_checkpoint_file(r) for r in runs)
        for measure, settings in (exp.get("analyses") or {}).items():
            if settings is None:
                continue
            fn = _estimator(measure)
            if fn is None:
                continue
            for st in fn(settings, runs if ep.trains else runs[:1], experiment=exp, budget_bytes=budget):
                st.limit_bytes = limit
                if not st.fails and st.peak_bytes > limit:
                    st.fails = f"peak {_fmt_bytes(st.peak_bytes)} exceeds the job's mem_mb ({_fmt_bytes(limit)})"
                ep.stages.append(st)
        plan.experiments[name] = ep
    if jobs is not None:
        for j in jobs:
            if j.experiment in plan.experiments:
                plan.experiments[j.experiment].jobs[j.rule] += 1
                plan.experiments[j.experiment].gpu_jobs += int(j.gpu > 0)
            elif j.study is not None:
                plan.studies.setdefault(j.study, Counter())[j.rule] += 1
                plan.other_jobs[j.rule] += 1
            else:
                plan.other_jobs[j.rule] += 1
        for ep in plan.experiments.values():
            # The DAG decides which stages run (e.g. a paths summary only with LR decays) and how often.
            ep.stages = [st for st in ep.stages if ep.jobs.get(f"{st.measure}_{st.stage}")]
            for st in ep.stages:
                st.n_files = int(ep.jobs[f"{st.measure}_{st.stage}"])
    for study in _neurashed_studies(cfg):
        plan.studies.setdefault(study, Counter())
    if calibrate:
        plan.device = _calibrate(plan)
    return plan


def _neurashed_studies(cfg: Mapping[str, Any]) -> list[str]:
    ns = cfg.get("neurashed") or {}
    active = ns.get("active")
    if active is None:
        return list(ns.get("studies", {})) if cfg.get("active_experiments") is None else []
    return list(active)


def _sum_dicts(items: Iterable[Mapping[str, int]]) -> dict[str, int]:
    out: Counter = Counter()
    for d in items:
        out.update(d)
    return dict(out)


def _attrs_bytes(r: RunShape) -> int:
    """Root attributes of run.h5: the configuration as JSON, record steps and the rest."""
    return len(json.dumps(r.config, sort_keys=True)) + 8 * r.n_records + 1500 + 40 * len(r.layers)


def _run_file(r: RunShape) -> dict[str, int]:
    from gendyn.store import run_file_nbytes

    rec = r.config["recording"]
    return run_file_nbytes(
        r.n_records, r.n_tracked, r.layers, n_metrics=r.n_metrics, masks=bool(rec["masks"]),
        activations=rec["activations_dtype"] if rec["activations"] else None, attrs_bytes=_attrs_bytes(r),
    )  # fmt: skip


def _checkpoint_file(r: RunShape) -> dict[str, int]:
    from gendyn.store import checkpoint_file_nbytes

    return checkpoint_file_nbytes(len(r.checkpoint_steps), r.state)


# --------------------------------------------------------------------------- time


def _calibrate(plan: Plan) -> str:
    """Time training steps and eval forwards per distinct (model, input, dtype); fill ``time``."""
    from gendyn.runtime import resolve_device

    dev = resolve_device("auto")
    timings: dict[str, tuple[float, float]] = {}
    for ep in plan.experiments.values():
        if not ep.trains or not ep.runs:
            continue
        total_s = 0.0
        per_run = []
        for r in ep.runs:
            key = json.dumps([r.config["model"], list(r.data.input_shape), r.data.n_classes], sort_keys=True)
            if key not in timings:
                timings[key] = _time_steps(r, dev)
            step_s, fwd_s = timings[key]
            bs = int(r.config["training"]["batch_size"])
            obj = r.config["training"].get("objective")
            per_step_images = bs + (int(obj.get("test_batch_size") or bs) if obj else 0)
            train_s = r.total_steps * step_s * per_step_images
            evals = r.data.n_train + r.data.n_test + r.data.n_heldout + r.n_tracked
            record_s = r.n_records * evals * fwd_s
            per_run.append(train_s + record_s)
            total_s += train_s + record_s
        ep.time = {
            "device": str(dev), "seconds_total": total_s, "seconds_per_run_max": max(per_run),
            "hours_total": total_s / 3600, "calibrated_per_image_step_s": timings[key][0],
            "calibrated_per_image_forward_s": timings[key][1],
        }  # fmt: skip
    return str(dev)


def _time_steps(r: RunShape, device: Any) -> tuple[float, float]:
    """Seconds per image of one SGD step and of one eval forward of ``r``'s model on ``device``."""
    import torch

    from gendyn.models import build_run_model

    model = build_run_model(r.config, r.data.input_shape, int((r.config["training"].get("objective") or {}).get("n_outputs") or r.data.n_classes))
    model = model.to(device)
    dtype = next(model.parameters()).dtype
    bs = max(1, min(int(r.config["training"]["batch_size"]), 32))
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)
    x = torch.randn((bs, *r.data.input_shape), dtype=dtype, device=device)
    y = torch.zeros(bs, dtype=torch.int64, device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    model.train()
    step()  # warm-up (allocations, cuDNN algorithm choice)
    sync()
    n, t0 = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - t0 < 0.5:
        step()
        n += 1
        if time.perf_counter() - t0 > 5:
            break
    sync()
    step_s = (time.perf_counter() - t0) / (n * bs)
    model.eval()
    with torch.no_grad():
        model(x)
        sync()
        n, t0 = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - t0 < 0.3:
            model(x)
            n += 1
            if time.perf_counter() - t0 > 3:
                break
        sync()
    fwd_s = (time.perf_counter() - t0) / (n * bs)
    return step_s, fwd_s


# --------------------------------------------------------------------------- entry points


def plan_files(
    configfiles: Sequence[Path | str],
    *,
    config: Mapping[str, Any] | None = None,
    snakefile: Path | str | None = None,
    probe: bool = True,
    calibrate: bool = False,
) -> Plan:
    """The plan of config files as ``snakemake --configfile FILE ... [--config KEY=VALUE ...]`` reads them."""
    jobs, cfg = workflow_jobs(configfiles, config=config, snakefile=snakefile)
    return plan_config(cfg, jobs=jobs, probe=probe, calibrate=calibrate, sources=[str(f) for f in configfiles])


def should_print(cfg: Mapping[str, Any]) -> bool:
    """``print_plan`` of a validated config: auto = when a training or analysis job asks for a GPU."""
    from gendyn.config import active_experiments

    value = cfg.get("print_plan", "auto")
    if value in (True, False):
        return bool(value)
    names = active_experiments(cfg)
    if not names:
        return False
    if int(cfg["resources"]["train"]["gpu"]) > 0 and any(_trains(cfg["experiments"][n]) for n in names):
        return True
    return any(int(((cfg["experiments"][n].get("analyses") or {}).get("elasticity") or {}).get("gpu", 0)) > 0 for n in names)


# --------------------------------------------------------------------------- output


def _fmt_bytes(n: float) -> str:
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def _fmt_hours(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def format_plan(plan: Plan, *, title: str = "") -> str:
    """The plan in human form (what ``gendyn plan`` prints)."""
    d = plan.as_dict()
    t = d["totals"]
    lines = []
    head = title or " + ".join(plan.sources) or "workflow config"
    lines.append(
        f"{head}: {len(plan.experiments)} experiment(s), {t['runs']} run(s), {t['jobs']} job(s) "
        f"({t['gpu_jobs']} on GPUs); storage {_fmt_bytes(t['bytes']['total'])} "
        f"(run.h5 {_fmt_bytes(t['bytes']['run_h5'])}, checkpoints.h5 {_fmt_bytes(t['bytes']['checkpoints_h5'])}, "
        f"analyses {_fmt_bytes(t['bytes']['analysis'])})"
    )
    for name, ep in plan.experiments.items():
        e = d["experiments"][name]
        lines.append("")
        lines.append(f"experiment {name}: {e['runs']} run(s), {e['jobs']} job(s), {e['gpu_jobs']} on GPUs")
        if "data" in e:
            dd, m = e["data"], e["model"]
            shape = "x".join(str(s) for s in dd["input_shape"])
            held = f" / {dd['n_heldout']} held out" if dd["n_heldout"] else ""
            lines.append(
                f"  data {dd['name']}: {dd['n_train']} train / {dd['n_test']} test{held}, {shape}, "
                f"{dd['n_classes']} classes ({'counted from the files' if dd['sizes_from'] == 'files' else 'documented sizes'})"
            )
            params = "-".join(dict.fromkeys(f"{p / 1e6:.2f}" for p in m["parameters"]))
            weights = "-".join(dict.fromkeys(_fmt_bytes(b) for b in m["state_bytes"]))
            lines.append(
                f"  model {m['name']}: {params} M parameters, {_span(m['relu_sites'])} ReLU sites, "
                f"{_span(m['units_per_image'])} units per image, weights {weights}"
            )
        if e["jobs_by_rule"]:
            lines.append("  jobs: " + ", ".join(f"{k} {v}" for k, v in e["jobs_by_rule"].items()))
        if ep.trains and ep.runs:
            recs = sorted({r.n_records for r in ep.runs})
            cks = sorted({len(r.checkpoint_steps) for r in ep.runs})
            steps = sorted({r.total_steps for r in ep.runs})
            lines.append(
                f"  per run: {_span(steps)} steps, {_span(recs)} record points, {_span(cks)} checkpoints, "
                f"{ep.runs[0].n_tracked} tracked images"
            )
            rh, ck = ep.run_h5, ep.checkpoints_h5
            parts = [f"masks {_fmt_bytes(rh.get('masks', 0))}"]
            if rh.get("activations"):
                parts.append(f"activations {_fmt_bytes(rh['activations'])}")
            lines.append(
                f"  run.h5 {_fmt_bytes(rh.get('total', 0))} ({', '.join(parts)}); "
                f"checkpoints.h5 {_fmt_bytes(ck.get('total', 0))}; total over runs"
            )
        for st in ep.stages:
            budget = f", budget {_fmt_bytes(st.budget_bytes)}" if st.budget_bytes else ""
            status = "FAILS: " + st.fails if st.fails else "fits"
            note = f" ({st.note})" if st.note else ""
            lines.append(
                f"  {st.measure} {st.stage}: {st.n_files} file(s) {_fmt_bytes(st.bytes)}; peak memory "
                f"~{_fmt_bytes(st.peak_bytes)}{budget}, mem_mb {_fmt_bytes(st.limit_bytes or 0)}: {status}{note}"
            )
        lines.append(f"  storage {_fmt_bytes(ep.total_bytes)}")
        if ep.time:
            tm = ep.time
            unit = "GPU" if tm["device"].startswith("cuda") else f"{tm['device']}"
            lines.append(
                f"  training time on this machine's {unit}: {_fmt_hours(tm['seconds_total'])} in total, "
                f"{_fmt_hours(tm['seconds_per_run_max'])} for the longest run"
            )
    if plan.studies:
        lines.append("")
        lines.append("neurashed studies: " + ", ".join(f"{k} ({sum(v.values())} jobs)" for k, v in plan.studies.items()))
    if plan.other_jobs:
        lines.append("other jobs: " + ", ".join(f"{k} {v}" for k, v in sorted(plan.other_jobs.items())))
    return "\n".join(lines)


def _span(values: Sequence[int]) -> str:
    values = sorted(set(values))
    return f"{values[0]:,}" if len(values) == 1 else f"{values[0]:,}-{values[-1]:,}"


def print_plan(cfg: Mapping[str, Any], jobs: Sequence[JobInfo] | None = None, *, stream: Any = None) -> None:
    """Print the plan of a running workflow (the Snakefile's ``onstart``)."""
    stream = stream or sys.stderr
    plan = plan_config(cfg, jobs=jobs)
    print("gendyn plan (jobs: those of this invocation)\n" + format_plan(plan, title="workflow"), file=stream)
