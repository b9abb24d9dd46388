"""Configuration: schema validation with defaults, sweep expansion, run ids.

The schema (``schemas/config.schema.yaml``, also linked as ``workflow/schemas/``) is the one
source of truth for keys, types, defaults and allowed values. :func:`validate_config`
checks a whole workflow configuration before any job runs; :func:`validate_run` checks one
resolved run (what ``gendyn train`` reads). Both fill defaults and raise
:class:`ConfigError` naming the key, the bad value and the allowed values.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from gendyn.datainfo import split_sizes, uses_data_root

__all__ = [
    "ConfigError",
    "load_yaml",
    "validate_config",
    "validate_run",
    "validate_section",
    "stage_settings",
    "parse_overrides",
    "expand_experiment",
    "check_data_sizes",
    "active_experiments",
    "merge_configs",
    "load_workflow_config",
    "run_id",
    "config_hash",
    "read_run_config",
    "write_run_config",
    "write_runs_table",
    "SECTIONS",
    "parse_figure_id",
    "reproduces_entries",
]

logger = logging.getLogger(__name__)

#: Sections of a run that a sweep may vary.
SECTIONS = ("data", "model", "training", "recording")


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or not allowed."""


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The configuration schema (JSON schema, draft 2020-12) as a dict."""
    text = resources.files("gendyn").joinpath("schemas/config.schema.yaml").read_text()
    return yaml.safe_load(text)


def _sub_schema(name: str) -> dict[str, Any]:
    root = schema()
    return {"$defs": root["$defs"], **root["$defs"][name]}


def load_yaml(path: Path | str) -> dict[str, Any]:
    """Read a YAML mapping, naming the file on any error."""
    path = Path(path)
    try:
        with path.open() as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


# --------------------------------------------------------------------------- validation


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/$defs/"):
            raise RuntimeError(f"unsupported $ref {ref!r} in the gendyn schema")
        node = {**schema()["$defs"][ref.rsplit("/", 1)[1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _fill_defaults(node: Mapping[str, Any], value: Any) -> Any:
    """Return ``value`` with the schema's defaults filled in, recursively (a copy)."""
    node = _resolve(node)
    if isinstance(value, dict):
        out = dict(value)
        props = node.get("properties", {})
        for key, sub in props.items():
            sub_r = _resolve(sub)
            if key not in out and "default" in sub_r:
                out[key] = copy.deepcopy(sub_r["default"])
            if key in out:
                out[key] = _fill_defaults(sub_r, out[key])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for key in out:
                if key not in props:
                    out[key] = _fill_defaults(extra, out[key])
        return out
    return value


def _format_path(path: Iterable[Any], prefix: str) -> str:
    parts = [prefix] if prefix else []
    parts += [str(p) for p in path]
    return ".".join(parts) or "<top level>"


def _allowed_keys(node: Mapping[str, Any]) -> list[str]:
    return sorted(_resolve(node).get("properties", {}))


def _describe(error: jsonschema.ValidationError, prefix: str) -> str:
    where = _format_path(error.absolute_path, prefix)
    v = error.validator
    if v == "enum":
        allowed = ", ".join(repr(a) for a in error.validator_value)
        return f"{where}: {error.instance!r} is not allowed; choose one of: {allowed}"
    if v == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(_allowed_keys(error.schema))
        return f"{where}: unknown key(s) {', '.join(map(repr, extra))}; allowed keys: {allowed}"
    if v == "required":
        return f"{where}: {error.message}"
    if v == "type":
        want = error.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return f"{where}: {error.instance!r} has the wrong type; expected {want}"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{where}: {error.instance!r} violates {v} {error.validator_value}"
    if v == "anyOf" and ".reproduces." in f"{where}.":
        return f"{where}: {error.instance!r} is not a paper figure; write 'PAPER:FIGURE' (e.g. '001:Fig 2') or {{figure: '001:Fig 9', where: {{model.init_scale: 8}}}}"
    if v == "anyOf" and where.endswith("training"):
        return f"{where}: give the training length as `epochs` or `steps`"
    if v == "pattern" or v == "propertyNames":
        return f"{where}: {error.message}"
    return f"{where}: {error.message}"


def _check(value: Any, node: Mapping[str, Any], prefix: str, source: str) -> None:
    validator = jsonschema.Draft202012Validator(node)
    errors = sorted(validator.iter_errors(value), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        # The deepest error is usually the most precise; report all, deepest first.
        errors = sorted(errors, key=lambda e: -len(e.absolute_path))
        lines = [_describe(e, prefix) for e in errors[:5]]
        head = f"{source}: invalid configuration" if source else "invalid configuration"
        raise ConfigError(head + "\n  " + "\n  ".join(lines))


#: Models without a batch-norm option (``model.bn: true`` is rejected for them).
_MODELS_WITHOUT_BN = ("alexnet", "convnet")


def _check_numbers(section: Mapping[str, Any], definition: str, where: str, head: str) -> None:
    """Numbers JSON schema lets through: nan/inf, and integer-valued floats (``2.0``) for integer keys."""
    props = schema()["$defs"][definition].get("properties", {})
    for key, v in section.items():
        if not isinstance(v, float):
            continue
        if not math.isfinite(v):
            raise ConfigError(f"{head}{where}.{key}: {v!r} is invalid; expected a finite number")
        types = props.get(key, {}).get("type", [])
        types = [types] if isinstance(types, str) else types
        if "integer" in types and "number" not in types:
            raise ConfigError(f"{head}{where}.{key}: {v!r} is not an integer; write it as {int(v)}")


def _check_data_rules(data: Mapping[str, Any], where: str, head: str) -> None:
    """Rules of a defaulted ``data`` section that the schema cannot express (``where``: its place)."""
    _check_numbers(data, "data", where, head)
    first_n, train_subset, test_subset = data.get("first_n"), data.get("train_subset"), data.get("test_subset")
    if first_n is not None and (train_subset is not None or test_subset is not None):
        raise ConfigError(
            f"{head}{where}.first_n: {first_n} together with {where}.train_subset/test_subset "
            f"({train_subset!r}/{test_subset!r}) is ambiguous; set first_n to null or both subsets to null"
        )
    if data.get("random_labels") and data.get("label_noise", 0) > 0:
        raise ConfigError(
            f"{head}{where}.label_noise: {data['label_noise']!r} together with {where}.random_labels: true is "
            "ambiguous; set label_noise to 0 or random_labels to false"
        )
    classes = data.get("classes")
    if classes is not None:
        name = data.get("name")
        if name == "imagenet":
            if not all(isinstance(c, str) for c in classes):
                raise ConfigError(
                    f"{head}{where}.classes: {list(classes)!r} is invalid for dataset 'imagenet'; "
                    "expected class folder names (wnids, strings) such as 'n01440764'"
                )
        elif not all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
            source = data.get("base") if name in ("gaussian_noise", "mixture") else name
            raise ConfigError(
                f"{head}{where}.classes: {list(classes)!r} is invalid for dataset {source!r}; expected integer labels"
            )
        if len(set(classes)) != len(classes):
            raise ConfigError(f"{head}{where}.classes: {list(classes)!r} contains duplicates; list each class once")


def _check_model_rules(model: Mapping[str, Any], where: str, head: str) -> None:
    """Rules of a defaulted ``model`` section that the schema cannot express (``where``: its place)."""
    _check_numbers(model, "model", where, head)
    name = model.get("name")
    if model.get("bn") and name in _MODELS_WITHOUT_BN:
        raise ConfigError(
            f"{head}{where}.bn: true is not available for {name} (it has no batch-norm option); set {where}.bn: false"
        )
    if name == "preact_resnet18" and model.get("stem") == "imagenet":
        raise ConfigError(
            f"{head}{where}.stem: 'imagenet' is not available for preact_resnet18 (paper 001's code has the CIFAR "
            f"stem only); set {where}.stem: cifar or auto"
        )


#: Cross-key rules per schema definition, run by :func:`_check_semantics` (whole runs) and
#: :func:`validate_section` (one section).
_SECTION_RULES = {"data": _check_data_rules, "model": _check_model_rules}


def _check_semantics(run: Mapping[str, Any], prefix: str, source: str) -> None:
    tr = run["training"]
    head = f"{source}: " if source else ""
    if tr.get("epochs") is None and tr.get("steps") is None:
        raise ConfigError(f"{head}{prefix}training: give the training length as `epochs` or `steps` (both are null)")
    if tr.get("epochs") is not None and tr.get("steps") is not None:
        raise ConfigError(
            f"{head}{prefix}training: both epochs={tr['epochs']} and steps={tr['steps']} are set; give exactly one"
        )
    rec = run.get("recording", {})
    if rec.get("activations") and not rec.get("masks", True):
        pass  # activations alone are fine
    _check_data_rules(run["data"], f"{prefix}data", head)
    _check_model_rules(run["model"], f"{prefix}model", head)
    sched = rec.get("schedule", {})
    if sched.get("kind") == "list" and not sched.get("steps"):
        raise ConfigError(f"{head}{prefix}recording.schedule.steps: empty for kind 'list'; give the record steps")


def merge_configs(*configs: Mapping[str, Any]) -> dict[str, Any]:
    """Several config files given together, merged in order as Snakemake merges them.

    Nested mappings merge key by key; any other value (lists included) replaces the earlier one.
    """
    out: dict[str, Any] = {}
    for cfg in configs:
        out = _merge(out, cfg)
    return out


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else copy.deepcopy(v)
    return out


def load_workflow_config(paths: Iterable[Path | str]) -> dict[str, Any]:
    """The validated workflow configuration Snakemake builds from ``--configfile`` files.

    A config file is the whole configuration: ``config/config.yaml`` is the default only when
    no ``--configfile`` is given (the ``Snakefile`` reads it then), and is never merged into a
    user's file; schema defaults fill what a file leaves out. Several files given together merge
    in order (:func:`merge_configs`). ``gendyn validate FILE ...`` lists the runs of exactly
    this configuration, with the run ids Snakemake uses.
    """
    paths = [Path(p) for p in paths]
    merged = merge_configs(*(load_yaml(p) for p in paths))
    return validate_config(merged, source=" + ".join(str(p) for p in paths))


def validate_config(config: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """Validate a whole workflow configuration and return it with defaults filled in.

    Parameters
    ----------
    config : mapping
        The parsed YAML (Snakemake's ``config``).
    source : str
        Name of the file(s) for error messages.

    Raises
    ------
    ConfigError
        Naming the key, the bad value and the allowed values.
    """
    root = schema()
    config = _command_line_booleans(config, root)
    _check(config, root, "", source)
    out = _fill_defaults(root, dict(config))
    if not out["experiments"] and not out["neurashed"]["studies"]:
        raise ConfigError(
            f"{source + ': ' if source else ''}experiments: none defined, so there is nothing to build. A config "
            "file given with --configfile is the whole configuration (config/config.yaml is read only when no "
            "--configfile is given): define the experiments to build in it, or change single keys of the "
            "default configuration with --config KEY=VALUE"
        )
    for name, exp in out["experiments"].items():
        prefix = f"experiments.{name}."
        _check_semantics(exp, prefix, source)
        for key, values in exp.get("sweep", {}).items():
            section, _, rest = key.partition(".")
            _check_sweep_key(exp, section, rest, prefix + "sweep." + key, source)
            for v in values:
                trial = _set_dotted(copy.deepcopy({s: exp.get(s, {}) for s in SECTIONS}), key, v)
                try:
                    _check(trial[section], _sub_schema(section), prefix + section, source)
                except ConfigError as e:
                    raise ConfigError(f"{e}\n  (value {v!r} from {prefix}sweep.{key})") from None
    _check_reproduces(out, source)
    active = out.get("active_experiments")
    if active is not None:
        unknown = [a for a in active if a not in out["experiments"]]
        if unknown:
            raise ConfigError(
                f"{source + ': ' if source else ''}active_experiments: {unknown} not defined; "
                f"defined experiments: {sorted(out['experiments'])}"
            )
    return out


def parse_figure_id(text: str, where: str = "reproduces") -> tuple[str, str]:
    """``"001:Fig 2"`` → ``("001", "Fig 2")``, checked against the registry's paper figures.

    Raises
    ------
    ConfigError
        Naming ``where``, the unknown paper or figure and the figures the paper has.
    """
    from gendyn import registry

    paper, sep, figure = str(text).partition(":")
    figure = figure.strip()
    figures = registry.paper_figures()
    if not sep or paper not in figures:
        raise ConfigError(f"{where}: {text!r} is not PAPER:FIGURE with PAPER one of {', '.join(figures)} (e.g. '001:Fig 2')")
    if figure not in figures[paper]:
        known = ", ".join(repr(f) for f in figures[paper])
        raise ConfigError(f"{where}: paper {paper} has no figure {figure!r}; its figures: {known}")
    return paper, figure


def reproduces_entries(entries: Iterable[Any], where: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The declarations of a ``reproduces`` list as (paper, figure, where-filter), checked."""
    out = []
    for i, entry in enumerate(entries):
        item = entry if isinstance(entry, Mapping) else {"figure": entry}
        paper, figure = parse_figure_id(item["figure"], f"{where}[{i}]")
        out.append((paper, figure, dict(item.get("where") or {})))
    return out


def _check_reproduces(cfg: Mapping[str, Any], source: str) -> None:
    """Declared paper figures exist, belong to a measure the experiment (or study) computes, and
    their ``where`` keys are run-configuration keys."""
    from gendyn import registry

    head = f"{source}: " if source else ""
    for name, exp in cfg["experiments"].items():
        where = f"experiments.{name}.reproduces"
        try:
            entries = reproduces_entries(exp.get("reproduces", []), where)
        except ConfigError as e:
            raise ConfigError(head + str(e)) from None
        for i, (paper, figure, filt) in enumerate(entries):
            measures = {m.name for m, _ in registry.claims_for(paper, figure)}
            if measures == {"neurashed"}:
                raise ConfigError(
                    f"{head}{where}[{i}]: {paper}:{figure} is a neurashed simulation; declare it in "
                    "neurashed.studies.<study>.reproduces"
                )
            missing = sorted(m for m in measures if m not in exp.get("analyses", {}))
            if missing:
                raise ConfigError(
                    f"{head}{where}[{i}]: {paper}:{figure} is checked from analyses.{missing[0]}, which experiment "
                    f"{name!r} does not compute; add analyses.{missing[0]} or remove the declaration"
                )
            for key in filt:
                section, _, rest = key.partition(".")
                _check_sweep_key(exp, section, rest, f"{where}[{i}].where.{key}", source)
    for study, st in cfg.get("neurashed", {}).get("studies", {}).items():
        where = f"neurashed.studies.{study}.reproduces"
        try:
            entries = reproduces_entries(st.get("reproduces", []), where)
        except ConfigError as e:
            raise ConfigError(head + str(e)) from None
        for i, (paper, figure, filt) in enumerate(entries):
            measures = {m.name for m, _ in registry.claims_for(paper, figure)}
            if measures != {"neurashed"}:
                raise ConfigError(f"{head}{where}[{i}]: {paper}:{figure} is not a neurashed figure; declare it on an experiment")
            if filt:
                raise ConfigError(f"{head}{where}[{i}].where: a neurashed study has no runs to filter; remove `where`")


def _command_line_booleans(config: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Top-level booleans given as ``--config smoke=true``: Snakemake passes ``"true"`` as a string."""
    props = root.get("properties", {})
    fixed = dict(config)
    for key, value in config.items():
        node = props.get(key, {})
        allowed = node.get("type") == "boolean" or True in node.get("enum", [])
        if allowed and isinstance(value, str) and value.lower() in ("true", "false"):
            fixed[key] = value.lower() == "true"
    return fixed


def _check_sweep_key(exp: Mapping[str, Any], section: str, rest: str, where: str, source: str) -> None:
    node: Mapping[str, Any] = _sub_schema(section)
    for part in rest.split("."):
        props = _resolve(node).get("properties", {})
        if part not in props:
            raise ConfigError(
                f"{source + ': ' if source else ''}{where}: {part!r} is not a key of "
                f"{section}; allowed keys: {', '.join(sorted(props))}"
            )
        node = props[part]


def validate_section(definition: str, value: Mapping[str, Any], where: str, source: str = "") -> dict[str, Any]:
    """Validate one schema definition (e.g. ``analysis_paths``) and fill its defaults.

    ``where`` prefixes error messages with the value's place in the config
    (e.g. ``analyses.paths``). ``data`` and ``model`` also get the cross-key rules that
    :func:`validate_run` applies to them, so a section validated alone is valid in a run;
    a section that is already valid and defaulted comes back unchanged.
    """
    node = _sub_schema(definition)
    _check(value, node, where, source)
    out = _fill_defaults(node, dict(value))
    if definition in _SECTION_RULES:
        _SECTION_RULES[definition](out, where, f"{source}: " if source else "")
    return out


def validate_run(run: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """Validate one run configuration (as written to ``runs/{run}/config.yaml``); fill defaults."""
    node = _sub_schema("run")
    _check(run, node, "", source)
    out = _fill_defaults(node, dict(run))
    _check_semantics(out, "", source)
    return out


# --------------------------------------------------------------------------- expansion


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    parts = key.split(".")
    node = d
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = copy.deepcopy(value)
    return d


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        s = "true" if v else "false"
    elif isinstance(v, float):
        s = f"{v:g}"
    elif isinstance(v, (list, tuple)):
        s = "+".join(_fmt_value(x) for x in v)
    elif v is None:
        s = "none"
    else:
        s = str(v)
    return re.sub(r"[^A-Za-z0-9.+-]", "", s.replace("/", "-")) or "x"


def _labels(keys: list[str]) -> dict[str, str]:
    """Short readable label per sweep key: last path part, or more parts where ambiguous."""
    labels = {}
    for k in keys:
        parts = k.split(".")
        n = 1
        while n < len(parts) and sum(1 for o in keys if o.split(".")[-n:] == parts[-n:]) > 1:
            n += 1
        labels[k] = "-".join(parts[-n:]) if n > 1 else parts[-1]
    return labels


def run_id(assignment: Mapping[str, Any], keys: list[str] | None = None) -> str:
    """Readable, deterministic run id from a sweep assignment, e.g. ``depth2_seed0``.

    With no sweep the id is ``base``.
    """
    keys = list(assignment) if keys is None else keys
    if not keys:
        return "base"
    labels = _labels(keys)
    return "_".join(f"{labels[k]}{_fmt_value(assignment[k])}" for k in keys)


def expand_experiment(
    name: str, exp: Mapping[str, Any], *, data_root: str | None = None
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Expand an experiment's sweep grid.

    ``data_root`` (the top-level ``data_root``) fills ``data.root`` where a run reads its data
    from disk and has no root of its own (:func:`gendyn.datainfo.uses_data_root`); runs on
    embedded data never get one, so moving ``data_root`` changes none of them. Every run is
    checked against the sizes of its data (:func:`check_data_sizes`).

    Returns
    -------
    list of (run id, swept values, resolved run config)
        In grid order (the first sweep key varies slowest). Run configs are validated.
    """
    sweep = exp.get("sweep", {}) or {}
    keys = list(sweep)
    base = {s: copy.deepcopy(exp[s]) for s in SECTIONS if s in exp}
    runs = []
    seen: dict[str, dict[str, Any]] = {}
    for combo in itertools.product(*(sweep[k] for k in keys)):
        assignment = dict(zip(keys, combo))
        rid = run_id(assignment, keys)
        if rid in seen:
            raise ConfigError(
                f"experiments.{name}.sweep: values {assignment} and {seen[rid]} give the same run id "
                f"{rid!r}; make the sweep values distinct after formatting"
            )
        seen[rid] = assignment
        cfg = copy.deepcopy(base)
        for k, v in assignment.items():
            _set_dotted(cfg, k, v)
        cfg = {"experiment": name, "run": rid, **cfg}
        cfg = validate_run(cfg, source=f"experiments.{name} run {rid}")
        if data_root is not None and cfg["data"].get("root") is None and uses_data_root(cfg["data"]):
            cfg["data"]["root"] = str(data_root)
        check_data_sizes(cfg, source=f"experiments.{name} run {rid}")
        runs.append((rid, assignment, cfg))
    return runs


def check_data_sizes(run: Mapping[str, Any], source: str = "") -> None:
    """Check a validated run against the sizes of its data, without loading it.

    Catches what would otherwise fail inside the training job: a subset, ``n_test`` or
    ``first_n`` larger than the data, more tracked images than a split holds, a batch larger
    than the training split with ``drop_last``, record steps (``schedule.kind: list``) after
    the last training step. Sizes come from :func:`gendyn.datainfo.split_sizes`; where they
    are unknown (ImageNet folders, class subsets of mnist5k/digits) the job checks.

    Raises
    ------
    ConfigError
        Naming the key, its value and the size it exceeds.
    """
    head = f"{source}: " if source else ""
    try:
        sizes = split_sizes(run["data"])
    except ValueError as e:
        raise ConfigError(f"{head}{e}") from None
    if sizes is None:
        return
    rec, tr = run["recording"], run["training"]
    for split in ("train", "test"):
        want = int(rec.get(f"n_tracked_{split}", 0))
        if want > sizes[split]:
            raise ConfigError(
                f"{head}recording.n_tracked_{split}: {want} exceeds the {sizes[split]} images of the {split} split; lower it"
            )
    drop_last = bool(tr.get("drop_last"))

    def per_epoch(n: int, bs: int) -> int:
        return n // bs if drop_last else math.ceil(n / bs)

    bs = int(tr["batch_size"])
    spe = per_epoch(sizes["train"], bs)
    if spe < 1:
        raise ConfigError(
            f"{head}training.batch_size: {bs} exceeds the {sizes['train']} training images with drop_last: true; "
            "lower it or set training.drop_last: false"
        )
    objective = tr.get("objective")
    if objective is not None:
        test_bs = int(objective.get("test_batch_size") or bs)
        test_spe = per_epoch(sizes["test"], test_bs)
        if test_spe < 1:
            raise ConfigError(
                f"{head}training.objective.test_batch_size: {test_bs} exceeds the {sizes['test']} test images "
                "with drop_last: true; lower it or set training.drop_last: false"
            )
        spe = min(spe, test_spe)
    total = int(tr["steps"]) if tr.get("steps") is not None else int(tr["epochs"]) * spe
    sched = rec.get("schedule", {})
    if sched.get("kind") == "list":
        bad = [int(x) for x in sched.get("steps", []) if int(x) > total]
        if bad:
            raise ConfigError(
                f"{head}recording.schedule.steps: {bad} exceed the run's {total} training steps "
                f"({spe} per epoch); lower them or train longer"
            )


def write_runs_table(runs: Iterable[tuple[str, Mapping[str, Any], Any]], path: Path | str) -> None:
    """Write ``runs.csv``: one row per run, its id and every swept value."""
    import csv
    import io

    runs = list(runs)
    keys: list[str] = []
    for _, swept, _ in runs:
        keys += [k for k in swept if k not in keys]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["run", *keys])
    for rid, swept, _ in runs:
        w.writerow([rid, *(json.dumps(swept[k]) if isinstance(swept.get(k), (list, dict)) else swept.get(k, "") for k in keys)])
    from gendyn.store import atomic_write_text

    atomic_write_text(Path(path), buf.getvalue())


def active_experiments(config: Mapping[str, Any]) -> list[str]:
    """Experiments to build: ``active_experiments`` or all, in file order."""
    active = config.get("active_experiments")
    return list(config["experiments"]) if active is None else list(active)


def config_hash(cfg: Mapping[str, Any]) -> str:
    """Short stable hash of a run configuration (training-relevant sections only)."""
    relevant = {k: cfg[k] for k in ("data", "model", "training", "recording") if k in cfg}
    blob = json.dumps(relevant, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def read_run_config(path: Path | str) -> dict[str, Any]:
    """Read and validate a run configuration file (YAML or JSON), its data sizes included."""
    cfg = validate_run(load_yaml(path), source=str(path))
    check_data_sizes(cfg, source=str(path))
    return cfg


def write_run_config(cfg: Mapping[str, Any], path: Path | str) -> None:
    """Write a run configuration as YAML, atomically."""
    from gendyn.store import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(dict(cfg), sort_keys=False))


# --------------------------------------------------------------------------- stage settings


def _settings_node(section: str) -> tuple[dict[str, Any], str]:
    """Schema node and config location of a stage's settings (see :func:`stage_settings`)."""
    root = schema()
    measure, _, part = section.partition(".")
    if section == "reproduction":
        return _sub_schema("reproduction"), "reproduction"
    if measure == "neurashed":
        study = root["$defs"]["neurashed"]["properties"]["studies"]["additionalProperties"]
        if part not in study["properties"] or study["properties"][part].get("type") != "object":
            allowed = [k for k, v in study["properties"].items() if v.get("type") == "object"]
            raise ConfigError(f"neurashed phenomenon {part!r} is not one of {', '.join(allowed)}")
        return {"$defs": root["$defs"], **study["properties"][part]}, f"neurashed.studies.<study>.{part}"
    name = f"analysis_{measure}"
    if part or name not in root["$defs"]:
        known = sorted(k[len("analysis_") :] for k in root["$defs"] if k.startswith("analysis_"))
        raise ConfigError(f"no settings section {section!r}; sections: {', '.join(known)}, neurashed.<phenomenon>, reproduction")
    return _sub_schema(name), f"analyses.{measure}"


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["regions.n_records=4", "radii=[0.1, 1]"]`` → ``{"regions.n_records": 4, "radii": [0.1, 1]}``.

    Values are read as YAML (numbers, lists, booleans, null; anything else stays a string).
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set radii='[0.1, 1]' or --set regions.n_records=4")
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({e})") from None
    return out


def stage_settings(
    section: str,
    value: Mapping[str, Any] | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    source: str = "",
) -> dict[str, Any]:
    """The settings of an analysis stage, validated against the schema, defaults filled.

    The one way every stage (CLI, workflow, tests, users) turns a settings mapping into the
    values it runs with.

    Parameters
    ----------
    section : str
        ``"paths"``, ``"lc"``, ``"elasticity"``, ``"memorization"`` (schema
        ``$defs/analysis_<name>``, config ``experiments.<name>.analyses.<name>``), or
        ``"neurashed.<phenomenon>"`` (``neurashed.studies.<study>.<phenomenon>``).
    value : mapping, JSON string or None
        The settings as given (None or ``"null"``: all defaults).
    overrides : mapping, optional
        Dotted keys → values set on top (``{"regions.n_records": 4}``); None values are
        ignored.
    source : str
        Where the settings came from, for error messages (e.g. ``--settings``).

    Raises
    ------
    ConfigError
        Naming the key, the bad value and the allowed values.
    """
    node, where = _settings_node(section)
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{source or 'settings'}: not valid JSON ({e}); expected a mapping of {where}") from None
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source or 'settings'}: expected a mapping of {where}, got {type(value).__name__}")
    merged = copy.deepcopy(dict(value))
    for key, v in (overrides or {}).items():
        if v is not None:
            _set_dotted(merged, key, v)
    _check(merged, node, where, source)
    return _fill_defaults(node, merged)
