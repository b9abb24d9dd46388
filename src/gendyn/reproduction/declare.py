"""Which results each paper figure is checked on: the ``reproduces`` declarations of a config.

Light (no xarray, no torch): Snakemake calls :func:`declarations` while parsing the workflow.
An experiment declares the paper figures it is an honest analogue of
(``experiments.<name>.reproduces``), optionally restricted to the runs whose resolved
configuration matches a ``where`` filter; a neurashed study declares the simulator's figures
(``neurashed.studies.<study>.reproduces``). :func:`declarations` resolves them to run ids,
the form ``gendyn reproduce --declared`` takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["declarations", "active_studies", "matches", "PRETRAINED_RUN"]

#: Run id of an analysis of given weights (``analyses.elasticity.pretrained``), which trains nothing.
PRETRAINED_RUN = "pretrained"


def active_studies(cfg: Mapping[str, Any]) -> list[str]:
    """Neurashed studies a config builds: ``neurashed.active``, or all of them when the config
    selects no experiments (``active_experiments`` null), as ``workflow/rules/neurashed.smk``."""
    ns = cfg.get("neurashed", {}) or {}
    active = ns.get("active")
    studies = ns.get("studies", {}) or {}
    if active is None:
        return list(studies) if cfg.get("active_experiments") is None else []
    return [s for s in active if s in studies]


def _get(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def matches(run_cfg: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    """Whether a resolved run configuration has the values of a ``where`` filter.

    Each dotted key must equal the given value, or one of them when a list is given
    (``{"model.init_scale": [1, 2]}``).
    """
    for key, want in where.items():
        value = _get(run_cfg, key)
        wants = want if isinstance(want, list) else [want]
        if value not in wants:
            return False
    return True


def declarations(
    cfg: Mapping[str, Any],
    runs: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    studies: Sequence[str] | None = None,
    experiments: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The declared figures of a validated config, resolved to run ids.

    Parameters
    ----------
    cfg : mapping
        A config returned by :func:`gendyn.config.validate_config`.
    runs : mapping experiment -> run id -> resolved run config, optional
        The expanded sweep grids (the workflow's ``RUNS``); expanded here when None.
    studies : sequence of str, optional
        Active neurashed studies (default :func:`active_studies`).
    experiments : sequence of str, optional
        Active experiments (default :func:`gendyn.config.active_experiments`).

    Returns
    -------
    dict
        ``{"experiments": {experiment: {"PAPER:FIGURE": [run ids]}}, "studies": {study:
        ["PAPER:FIGURE", ...]}}`` with only active experiments and studies that declare
        something; figure ids normalised (``"001:Fig 2"``). An analysis of given weights
        (``analyses.elasticity.pretrained``) has the one run ``pretrained``.

    Raises
    ------
    ConfigError
        When a ``where`` filter matches none of the experiment's runs.
    """
    from gendyn.config import ConfigError, active_experiments, expand_experiment, reproduces_entries

    names = list(experiments) if experiments is not None else active_experiments(cfg)
    out: dict[str, Any] = {"experiments": {}, "studies": {}}
    for name in names:
        exp = cfg["experiments"][name]
        entries = reproduces_entries(exp.get("reproduces", []), f"experiments.{name}.reproduces")
        if not entries:
            continue
        pretrained = ((exp.get("analyses") or {}).get("elasticity") or {}).get("pretrained") is not None
        if pretrained:
            grid: Mapping[str, Mapping[str, Any]] = {PRETRAINED_RUN: {}}
        elif runs is not None and name in runs:
            grid = runs[name]
        else:
            grid = {rid: rcfg for rid, _, rcfg in expand_experiment(name, exp, data_root=cfg.get("data_root"))}
        figs: dict[str, list[str]] = {}
        for i, (paper, figure, where) in enumerate(entries):
            chosen = [rid for rid, rcfg in grid.items() if pretrained or matches(rcfg, where)]
            if not chosen:
                raise ConfigError(
                    f"experiments.{name}.reproduces[{i}].where: {where} matches none of the runs {sorted(grid)}; "
                    "fix the values or remove the filter"
                )
            fid = f"{paper}:{figure}"
            figs[fid] = list(dict.fromkeys([*figs.get(fid, []), *chosen]))
        out["experiments"][name] = figs
    ns = cfg.get("neurashed", {}) or {}
    for study in studies if studies is not None else active_studies(cfg):
        st = (ns.get("studies") or {}).get(study, {})
        entries = reproduces_entries(st.get("reproduces", []), f"neurashed.studies.{study}.reproduces")
        if entries:
            out["studies"][study] = list(dict.fromkeys(f"{p}:{f}" for p, f, _ in entries))
    return out
