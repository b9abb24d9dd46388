# Every figure rule of the workflow, made from one template: one job per (experiment, figure
# set, run) or (experiment, figure set) runs `gendyn figures`, which draws every figure of the
# set its inputs allow into one folder; the report lists each PNG under its paper and
# experiment, labelled by the paper figure it reproduces, with its caption (gendyn.report:
# the registry's text with the values the job used and the reproduction index's verdicts).
# Include this file after the rules files of the measures: they register their figure jobs in
# FIGURE_JOBS (common.smk).

from gendyn import report as report_lib

#: The reproduction index (written after the figures); read when the report is rendered.
REPRODUCTION_INDEX = f"{RESULTS}/reproduction.csv"


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
    """Report category of a figure set: the paper of a measure, "Runs" for the views.

    The report lists categories alphabetically: Paper 000 ... Paper 003, then Runs.
    """
    return "Runs" if figure_set == "views" else registry.get(figure_set).category


def figure_subcategory(figure_set, experiment):
    """One subcategory per experiment (a neurashed study is a simulation study)."""
    if figure_set == "neurashed":
        return f"simulation study '{experiment}'"
    return experiment


def experiment_declared(figure_set, experiment):
    """What the experiment (or neurashed study) declares in `reproduces`, as
    {"PAPER:FIGURE": [run ids]} (gendyn.reproduction.declare); None when it declares nothing.
    """
    if figure_set == "neurashed":
        ids = REPRODUCTION["studies"].get(experiment)
        return None if ids is None else {i: [] for i in ids}
    return REPRODUCTION["experiments"].get(experiment)


def figure_labels(figure_set, wildcards, experiment, run=""):
    """Report labels: the paper figure ids ("Fig 2, Fig 9") or the title of a project figure,
    what it shows, and the run. The report sorts rows by the first label."""
    info = registry.figure_info(figure_set, wildcards.figure)
    labels = {
        "figure": report_lib.figure_label(
            figure_set,
            wildcards.figure,
            experiment_declared(figure_set, experiment),
            run,
        ),
        "shows": info.title,
    }
    if run:
        labels["run"] = run
    return labels


def figure_report(job, wildcards):
    """The job's captions (gendyn.report.FigureCaptions): a param that is not a builtin type,
    so Snakemake leaves it out of the rerun trigger; the caption template calls it."""
    exp, run = _expand(job.experiment, wildcards), _expand(job.run, wildcards)
    if job.figure_set == "neurashed":
        settings, view, runs = NEURASHED["studies"][exp], {}, {}
    else:
        settings = (
            analysis_config(exp, job.figure_set) if job.figure_set != "views" else None
        )
        view, runs = view_options(exp), RUNS[exp]
    return report_lib.FigureCaptions(
        figure_set=job.figure_set,
        experiment=exp,
        run=run,
        values=report_lib.caption_values(
            job.figure_set, exp, run, settings=settings, view=view, runs=runs
        ),
        declared=experiment_declared(job.figure_set, exp),
        index_csv=REPRODUCTION_INDEX,
    )


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
                    j.figure_set, _expand(j.experiment, wildcards)
                ),
                labels=lambda wildcards, j=_job: figure_labels(
                    j.figure_set,
                    wildcards,
                    _expand(j.experiment, wildcards),
                    _expand(j.run, wildcards),
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
            report=lambda wildcards, j=_job: figure_report(j, wildcards),
        shell:
            "gendyn figures {params.figure_set} {params.scope} {output:q} {params.inputs}"
            " --settings {params.settings:q} {params.names} 2> {log:q}"
