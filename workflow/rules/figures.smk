# Figures of one run or one experiment; options come from experiments.<name>.figures.


rule training_curves:
    input:
        f"{RESULTS}/{{experiment}}/runs/{{run}}/run.h5",
    output:
        pdf=f"{RESULTS}/{{experiment}}/figures/curves/{{run}}.pdf",
        png=report(
            f"{RESULTS}/{{experiment}}/figures/curves/{{run}}.png",
            caption="../report/training_curves.rst",
            category="Runs - training curves and dashboards",
            subcategory="{experiment}: Training curves",
            labels={
                "experiment": "{experiment}",
                "run": "{run}",
                "figure": "training curves",
            },
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/figures/curves_{{run}}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: FIGURE_RES["threads"]
    resources:
        mem_mb=FIGURE_RES["mem_mb"],
        runtime=FIGURE_RES["runtime"],
    params:
        prefix=lambda wildcards, output: output.png[: -len(".png")],
        dpi=figure_option("dpi"),
        x_axis=figure_option("x_axis"),
        log_x=figure_option("log_x"),
    shell:
        "gendyn plot curves {input} {params.prefix} --dpi {params.dpi}"
        " --x-axis {params.x_axis} --log-x {params.log_x} 2> {log}"
