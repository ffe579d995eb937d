# 3-D turbulence super-resolution (W24 Exp. 5.5, BLOG): the turbulence store (offline solver by default, or a JHTDB
# download), one training job per (model, alpha, seed) that evaluates its checkpoints, tables and figures.

SR = config["superres"]
SR_RUN = W.run_dir_pattern("superres")


rule superres_all:
    input:
        W.table("superres"),
        W.table("superres_summary"),
        R("figures/superres_curves.pdf"),
        R("figures/superres_slices.pdf"),


rule superres_data:
    output:
        directory(W.store("superres")),
    params:
        settings=settings_json({"data": SR["data"]}),
        attempts=W.output_attempts,
    log:
        R("logs/superres/data.log"),
    benchmark:
        R("benchmarks/superres/data.tsv")
    threads: W.res("data", "threads")
    resources:
        runtime=W.res("data", "runtime"),
        mem_mb=W.res("data", "mem_mb"),
        # At most `--resources jhtdb=N` downloads at once (profiles set 1): the service rate-limits per token.
        jhtdb=1 if SR["data"]["source"] == "jhtdb" else 0,
    conda:
        ENV
    shell:
        # The JHTDB token is read from the environment variable named in the config; it never appears here.
        "cat {params.attempts:q} > {log} 2>/dev/null || true; "
        "python -m equidyn.cli superres-data --settings {params.settings:q} --out {output} --threads {threads}"
        " 2>&1 | tee -a {params.attempts:q} >> {log}"


rule superres_train:
    input:
        store=W.store("superres"),
    output:
        **W.train_outputs("superres"),
    params:
        settings=lambda w: W.run_settings("superres", w),
        run_dir=lambda w: W.run_dir("superres", w),
        attempts=W.train_attempts("superres"),
    log:
        R(f"logs/{SR_RUN}/train.log"),
    benchmark:
        R(f"benchmarks/{SR_RUN}/train.tsv")
    threads: W.res("train", "threads")
    resources:
        runtime=W.model_res("train", "runtime"),
        mem_mb=W.model_res("train", "mem_mb"),
        gpu=W.res("train", "gpu", 0),
    conda:
        ENV
    shell:
        "cat {params.attempts:q} > {log} 2>/dev/null || true; "
        "python -m equidyn.cli superres-train --settings {params.settings:q} --store {input.store} --model {wildcards.model}"
        " --alpha {wildcards.alpha} --seed {wildcards.seed} --run-dir {params.run_dir} --threads {threads}"
        " 2>&1 | tee -a {params.attempts:q} >> {log}"


rule superres_table:
    input:
        W.run_files("superres", "eval_best.json"),
    output:
        report(W.table("superres"), caption="../workflow/report/superres_table.rst", category="3 Super-resolution"),
    log:
        R("logs/tables/superres.log"),
    benchmark:
        R("benchmarks/tables/superres.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli superres-table --eval-files {input} --out {output} > {log} 2>&1"


rule superres_summary:
    input:
        superres=W.table("superres"),
        baselines=R(baseline_file("superres")),
    output:
        report(W.table("superres_summary"), caption="../workflow/report/superres_summary.rst", category="3 Super-resolution"),
    log:
        R("logs/tables/superres_summary.log"),
    benchmark:
        R("benchmarks/tables/superres_summary.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli superres-summary-table --superres-csv {input.superres} --baselines {input.baselines}"
        " --out {output} > {log} 2>&1"


rule figure_superres_curves:
    input:
        W.run_files("superres", "history.csv"),
    output:
        pdf=R("figures/superres_curves.pdf"),
        png=report(R("figures/superres_curves.png"), caption="../workflow/report/superres_curves.rst", category="3 Super-resolution"),
    log:
        R("logs/figures/superres_curves.log"),
    benchmark:
        R("benchmarks/figures/superres_curves.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli figure-superres-curves --history-files {input} --out {output.pdf} > {log} 2>&1"


rule figure_superres_slices:
    input:
        W.run_files("superres", "slice_example.npz", W.first_seed_runs("superres")),
    output:
        pdf=R("figures/superres_slices.pdf"),
        png=report(R("figures/superres_slices.png"), caption="../workflow/report/superres_slices.rst", category="3 Super-resolution"),
    log:
        R("logs/figures/superres_slices.log"),
    benchmark:
        R("benchmarks/figures/superres_slices.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli figure-superres-slices --example-files {input} --out {output.pdf} > {log} 2>&1"
