# Paper 003 (memorization via gradient splitting): experiment table and figures.
# The objectives themselves train in rule `train` (training.objective); these rules read run.h5.


include: "memorization_common.smk"


rule memorization_summary:
    input:
        unpack(memorization_inputs),
    output:
        nc=f"{RESULTS}/{{experiment}}/analysis/memorization/summary.nc",
        csv=f"{RESULTS}/{{experiment}}/analysis/memorization/summary.csv",
    log:
        f"{RESULTS}/{{experiment}}/logs/memorization/summary.log",
    conda:
        "../../envs/analysis.yaml"
    threads: ANALYSIS_RES["threads"]
    resources:
        mem_mb=ANALYSIS_RES["mem_mb"],
        runtime=ANALYSIS_RES["runtime"],
    params:
        exp_dir=lambda wildcards, input: Path(input.runs).parent,
        metric=memorization_option("threshold_metric"),
        tau=memorization_option("threshold"),
        patience=memorization_option("patience"),
        interpolate=lambda wildcards: (
            "--interpolate"
            if analysis_config(wildcards.experiment, "memorization")["interpolate"]
            else ""
        ),
        last_epochs=memorization_option("last_epochs"),
    shell:
        "gendyn memorization summary {params.exp_dir} {output.nc} --csv {output.csv}"
        " --metric {params.metric} --tau {params.tau} --patience {params.patience}"
        " {params.interpolate} --last-epochs {params.last_epochs} 2> {log}"


rule memorization_curves:
    input:
        unpack(memorization_inputs),
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/memorization/curves.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/memorization/curves.png",
            caption="../report/memorization_curves.rst",
            category="Paper 003 - memorization",
            subcategory="{experiment}: Memorization (paper 003)",
            labels={"experiment": "{experiment}", "figure": "accuracy curves"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/memorization/curves.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        exp_dir=lambda wildcards, input: Path(input.runs).parent,
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        groups=memorization_group_args,
        splits=lambda wildcards: " ".join(
            analysis_config(wildcards.experiment, "memorization")["curve_splits"]
        ),
        paper_figure=memorization_option("paper_figure"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn memorization plot curves {params.prefix} --experiment {params.exp_dir}"
        " {params.groups} --splits {params.splits} --paper-figure={params.paper_figure:q}"
        " --dpi {params.dpi} 2> {log}"


rule memorization_threshold:
    input:
        summary=rules.memorization_summary.output.nc,
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/memorization/threshold.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/memorization/threshold.png",
            caption="../report/memorization_threshold.rst",
            category="Paper 003 - memorization",
            subcategory="{experiment}: Memorization (paper 003)",
            labels={"experiment": "{experiment}", "figure": "epochs to threshold"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/memorization/threshold.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        exp_dir=lambda wildcards: f"{RESULTS}/{wildcards.experiment}",
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        groups=memorization_group_args,
        paper_figure=memorization_option("paper_figure"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn memorization plot threshold {params.prefix} --experiment {params.exp_dir}"
        " --summary {input.summary} {params.groups} --paper-figure={params.paper_figure:q}"
        " --dpi {params.dpi} 2> {log}"


rule memorization_gradnorm:
    input:
        unpack(memorization_inputs),
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/memorization/gradnorm.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/memorization/gradnorm.png",
            caption="../report/memorization_gradnorm.rst",
            category="Paper 003 - memorization",
            subcategory="{experiment}: Memorization (paper 003)",
            labels={"experiment": "{experiment}", "figure": "gradient norm"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/memorization/gradnorm.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        exp_dir=lambda wildcards, input: Path(input.runs).parent,
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        groups=memorization_group_args,
        paper_figure=memorization_option("paper_figure"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn memorization plot gradnorm {params.prefix} --experiment {params.exp_dir}"
        " {params.groups} --paper-figure={params.paper_figure:q} --dpi {params.dpi} 2> {log}"


rule memorization_gap:
    input:
        unpack(memorization_inputs),
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/memorization/gap.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/memorization/gap.png",
            caption="../report/memorization_gap.rst",
            category="Paper 003 - memorization",
            subcategory="{experiment}: Memorization (paper 003)",
            labels={"experiment": "{experiment}", "figure": "generalization gap"},
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/memorization/gap.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        exp_dir=lambda wildcards, input: Path(input.runs).parent,
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        groups=memorization_group_args,
        paper_figure=memorization_option("paper_figure"),
        dpi=figure_option("dpi"),
    shell:
        "gendyn memorization plot gap {params.prefix} --experiment {params.exp_dir}"
        " {params.groups} --paper-figure={params.paper_figure:q} --dpi {params.dpi} 2> {log}"


rule memorization_basins:
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/memorization/basins.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/memorization/basins.png",
            caption="../report/memorization_basins.rst",
            category="Paper 003 - memorization",
            subcategory="{experiment}: Memorization (paper 003)",
            labels={
                "experiment": "{experiment}",
                "figure": "attractor basins (Fig. 3)",
            },
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/memorization/basins.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        dpi=figure_option("dpi"),
    shell:
        "gendyn memorization plot basins {params.prefix} --n-dims 1000 --dpi {params.dpi} 2> {log}"
