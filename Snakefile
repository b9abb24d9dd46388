# gendyn workflow: train with recording -> analyses -> figures -> report.
# Table of contents only; rules live in workflow/rules/, logic in src/gendyn.
from snakemake.utils import min_version

min_version("9.0")


# Relative to this file, so `--directory` and `--configfile` work from anywhere.
configfile: f"{workflow.basedir}/config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/paths.smk"
include: "workflow/rules/lc.smk"
include: "workflow/rules/elasticity.smk"
include: "workflow/rules/neurashed.smk"
include: "workflow/rules/memorization.smk"
# Last: the figure-job template makes the rules every file above registered.
include: "workflow/rules/figures.smk"


# Jobs, storage and memory of the experiments before the first job (config `print_plan`).
onstart:
    print_plan_on_start()


rule all:
    default_target: True
    input:
        all_targets(),
