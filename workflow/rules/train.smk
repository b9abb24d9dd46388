# Training: one job per run of an experiment's sweep grid.


rule runs_table:
    output:
        f"{RESULTS}/{{experiment}}/runs.csv",
    log:
        f"{RESULTS}/{{experiment}}/logs/runs_table.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        table=runs_table_json,
    shell:
        "gendyn runs-table {params.table:q} {output:q} 2> {log:q}"


rule run_config:
    output:
        f"{RESULTS}/{{experiment}}/runs/{{run}}/config.yaml",
    log:
        f"{RESULTS}/{{experiment}}/logs/run_config/{{run}}.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        cfg=run_config_json,
    shell:
        "gendyn run-config {params.cfg:q} {output:q} 2> {log:q}"


rule train:
    input:
        config=rules.run_config.output[0],
    output:
        run=f"{RESULTS}/{{experiment}}/runs/{{run}}/run.h5",
        checkpoints=f"{RESULTS}/{{experiment}}/runs/{{run}}/checkpoints.h5",
    log:
        f"{RESULTS}/{{experiment}}/logs/train/{{run}}.log",
    conda:
        "../../envs/train.yaml"
    threads: TRAIN_RES["threads"]
    resources:
        gpu=TRAIN_RES["gpu"],
        gpu_model=optional_train_resource("gpu_model"),
        constraint=optional_train_resource("constraint"),
        mem_mb=TRAIN_RES["mem_mb"],
        runtime=TRAIN_RES["runtime"],
    params:
        out_dir=lambda wildcards, output: Path(output.run).parent,
    # --log: the log of an interrupted attempt is kept as {log}.1, .2, ... (not overwritten).
    shell:
        "gendyn --log {log:q} train {input.config:q} {params.out_dir:q} --threads {threads}"
