# Every figure rule of the workflow, made from one template: one job per (experiment, figure
# set, run) or (experiment, figure set) runs `gendyn figures`, which draws every figure of the
# set its inputs allow into one folder; the report lists each PNG with its caption
# (gendyn.registry: label, title, caption per figure). Include this file after the rules
# files of the measures: they register their figure jobs in FIGURE_JOBS (common.smk).


def views_inputs_run(wildcards):
    """Training curves and dashboard of a run: run.h5 and the run's per-measure analyses."""
    exp, rid = wildcards.experiment, wildcards.run
    inputs = {"run": f"{run_dir(exp, rid)}/run.h5"}
    if view_options(exp)["dashboard"]:
        inputs.update(run_analysis_files(exp, rid))
    return inputs


def views_inputs_experiment(wildcards):
    """Comparisons across swept keys: runs.csv, every run.h5 and every per-run analysis."""
    exp = wildcards.experiment
    inputs = {
        "runs_table": f"{RESULTS}/{exp}/runs.csv",
        "run": [f"{run_dir(exp, rid)}/run.h5" for rid in run_ids(exp)],
    }
    for name in views_measures(exp):
        inputs[name] = [run_analysis_files(exp, rid)[name] for rid in run_ids(exp)]
    return inputs


def views_settings(wildcards):
    return measure_figure_settings(
        wildcards.experiment, views_measures(wildcards.experiment)
    )


FIGURE_JOBS.append(experiment_figures("views", "run", views_inputs_run, views_settings))
FIGURE_JOBS.append(
    experiment_figures("views", "experiment", views_inputs_experiment, views_settings)
)


def figure_input_args(wildcards, input):
    """--input ROLE=PATH for every input file of a figure job, quoted."""
    args = []
    for role in input.keys():
        files = input[role]
        for path in [files] if isinstance(files, str) else files:
            args.append(f"--input {shlex.quote(f'{role}={path}')}")
    return " ".join(args)


def figure_category(figure_set):
    """Report category of a figure set: the paper of a measure, "Runs" for the views."""
    return "Runs" if figure_set == "views" else registry.get(figure_set).category


def figure_subcategory(figure_set, wildcards, experiment):
    info = registry.figure_info(figure_set, wildcards.figure)
    return f"{experiment}: {info.title} ({info.label})"


def figure_labels(figure_set, wildcards, run=""):
    info = registry.figure_info(figure_set, wildcards.figure)
    labels = {"run": run} if run else {}
    if wildcards.figure.startswith("compare_"):
        labels["swept key"] = wildcards.figure[len("compare_") :]
    labels["figure"] = info.label
    return labels


def figure_captions(figure_set, scope, values):
    """{figure name: caption} of a figure job, with the values it was drawn with (a run job
    draws registry.DIVERGED instead when its run diverged too early for its analyses).
    """
    m = registry.figure_set(figure_set)
    captions = {
        f.name: m.caption(f.name, values) for f in m.figures if f.scope == scope
    }
    if scope == "run":
        captions[registry.DIVERGED.name] = m.caption(registry.DIVERGED.name, values)
    return captions


def caption_values(figure_set, experiment, run, settings):
    """Values the captions of a figure set quote (names, and what the settings chose)."""
    values = {"experiment": experiment, "run": run}
    mem = settings.get("memorization")
    if mem is not None:
        figure = mem.get("paper_figure") or ""
        values["reproduces"] = f"; reproduces {figure}" if figure else ""
    return values


def _expand(pattern, wildcards):
    return pattern.format(wildcards=wildcards) if pattern else ""


for _job in FIGURE_JOBS:

    rule:
        name:
            _job.rule_name
        input:
            unpack(_job.inputs),
        output:
            report(
                directory(_job.output),
                patterns=["{figure}.png"],
                caption="../report/figure.rst",
                category=figure_category(_job.figure_set),
                subcategory=lambda wildcards, j=_job: figure_subcategory(
                    j.figure_set, wildcards, _expand(j.experiment, wildcards)
                ),
                labels=lambda wildcards, j=_job: figure_labels(
                    j.figure_set, wildcards, _expand(j.run, wildcards)
                ),
            ),
        log:
            _job.log,
        conda:
            "../../envs/analysis.yaml"
        threads: FIGURE_RES["threads"]
        resources:
            mem_mb=FIGURE_RES["mem_mb"],
            runtime=FIGURE_RES["runtime"],
        params:
            # Plain values and default arguments bind this job's entry now: the shell
            # command itself is formatted when a job runs, after the loop has moved on.
            figure_set=_job.figure_set,
            scope=_job.scope,
            settings=lambda wildcards, j=_job: json.dumps(
                j.settings(wildcards), sort_keys=True
            ),
            inputs=figure_input_args,
            names=lambda wildcards, j=_job: (
                f"--experiment {shlex.quote(_expand(j.experiment, wildcards))}"
                + (f" --run {shlex.quote(_expand(j.run, wildcards))}" if j.run else "")
            ),
            captions=lambda wildcards, j=_job: figure_captions(
                j.figure_set,
                j.scope,
                caption_values(
                    j.figure_set,
                    _expand(j.experiment, wildcards),
                    _expand(j.run, wildcards),
                    j.settings(wildcards),
                ),
            ),
        shell:
            "gendyn figures {params.figure_set} {params.scope} {output:q} {params.inputs}"
            " --settings {params.settings:q} {params.names} 2> {log:q}"
