# gendyn workflow: train with recording -> analyses -> figures -> report.
# Table of contents only; rules live in workflow/rules/, logic in src/gendyn.
from snakemake.utils import min_version

min_version("9.0")


# The default configuration, read only when no --configfile is given: a user's config file is
# the whole configuration (schema defaults fill the rest), never merged into this one, so
# `gendyn validate FILE` lists exactly the runs `snakemake --configfile FILE` builds.
# Relative to this file, so `--directory` works from anywhere.
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/paths.smk"
include: "workflow/rules/lc.smk"
include: "workflow/rules/elasticity.smk"
include: "workflow/rules/neurashed.smk"
include: "workflow/rules/memorization.smk"
include: "workflow/rules/reproduction.smk"
# Last: the figure-job template makes the rules every file above registered.
include: "workflow/rules/figures.smk"


# Jobs, storage and memory of the experiments before the first job (config `print_plan`).
onstart:
    print_plan_on_start()


rule all:
    default_target: True
    input:
        all_targets(),
