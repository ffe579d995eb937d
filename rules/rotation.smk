# The rotation forecasting benchmark (W22 Table 1, rotation rows): one dataset, one training job per
# (model, alpha, seed) that also evaluates its checkpoints, then tables and figures.

RO = config["rotation"]
RO_RUN = W.run_dir_pattern("rotation")


rule rotation_all:
    input:
        W.table("rotation_benchmark"),
        W.table("rotation_summary"),
        R("figures/rotation_rollout.pdf"),
        R("figures/rotation_rmse_by_step.pdf"),


rule rotation_data:
    output:
        directory(W.store("rotation")),
    params:
        settings=settings_json({k: RO[k] for k in ("physics", "plumes", "held_out", "frames")}),
    log:
        R("logs/rotation/data.log"),
    benchmark:
        R("benchmarks/rotation/data.tsv")
    threads: W.res("data", "threads")
    resources:
        runtime=W.res("data", "runtime"),
        mem_mb=W.res("data", "mem_mb"),
    conda:
        ENV
    shell:
        "python -m equidyn.cli rotation-data --settings {params.settings:q} --out {output} > {log} 2>&1"


rule rotation_train:
    input:
        store=W.store("rotation"),
    output:
        **W.train_outputs("rotation"),
    params:
        settings=lambda w: W.run_settings("rotation", w),
        run_dir=lambda w: W.run_dir("rotation", w),
        attempts=W.train_attempts("rotation"),
    log:
        R(f"logs/{RO_RUN}/train.log"),
    benchmark:
        R(f"benchmarks/{RO_RUN}/train.tsv")
    threads: W.res("train", "threads")
    resources:
        runtime=W.model_res("train", "runtime"),
        mem_mb=W.model_res("train", "mem_mb"),
        gpu=W.res("train", "gpu", 0),
    conda:
        ENV
    shell:
        "cat {params.attempts:q} > {log} 2>/dev/null || true; "
        "python -m equidyn.cli rotation-train --settings {params.settings:q} --store {input.store} --model {wildcards.model}"
        " --alpha {wildcards.alpha} --seed {wildcards.seed} --run-dir {params.run_dir} --threads {threads}"
        " 2>&1 | tee -a {params.attempts:q} >> {log}"


rule rotation_tables:
    input:
        W.run_files("rotation", "eval_best.json"),
    output:
        benchmark=report(W.table("rotation_benchmark"), caption="../workflow/report/rotation_benchmark.rst", category="2 Rotation benchmark"),
        by_step=W.table("rotation_by_step"),
    log:
        R("logs/tables/rotation_benchmark.log"),
    benchmark:
        R("benchmarks/tables/rotation_benchmark.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "(python -m equidyn.cli rotation-benchmark-table --eval-files {input} --out {output.benchmark}"
        " && python -m equidyn.cli rotation-by-step-table --eval-files {input} --out {output.by_step}) > {log} 2>&1"


rule rotation_summary:
    input:
        benchmark=W.table("rotation_benchmark"),
        baselines=R(baseline_file("rotation")),
    output:
        report(W.table("rotation_summary"), caption="../workflow/report/rotation_summary.rst", category="2 Rotation benchmark"),
    log:
        R("logs/tables/rotation_summary.log"),
    benchmark:
        R("benchmarks/tables/rotation_summary.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli rotation-summary-table --benchmark-csv {input.benchmark} --baselines {input.baselines}"
        " --out {output} > {log} 2>&1"


rule figure_rotation_rollout:
    input:
        # one seed (the first) per (model, alpha): the figure compares models on the same test-domain window
        W.run_files("rotation", "rollout_example.npz", W.first_seed_runs("rotation")),
    output:
        pdf=R("figures/rotation_rollout.pdf"),
        png=report(R("figures/rotation_rollout.png"), caption="../workflow/report/rotation_rollout.rst", category="2 Rotation benchmark"),
    log:
        R("logs/figures/rotation_rollout.log"),
    benchmark:
        R("benchmarks/figures/rotation_rollout.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli figure-rotation-rollout --example-files {input} --out {output.pdf} > {log} 2>&1"


rule figure_rotation_rmse_by_step:
    input:
        W.table("rotation_by_step"),
    output:
        pdf=R("figures/rotation_rmse_by_step.pdf"),
        png=report(R("figures/rotation_rmse_by_step.png"), caption="../workflow/report/rotation_rmse_by_step.rst", category="2 Rotation benchmark"),
    log:
        R("logs/figures/rotation_rmse_by_step.log"),
    benchmark:
        R("benchmarks/figures/rotation_rmse_by_step.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli figure-rotation-rmse-by-step --by-step-csv {input} --out {output.pdf} > {log} 2>&1"
