# The scaling study (issue 23): per arm and level, test error against model size (at full data) and against data
# size (at the arm's budget), with compute counted; on the held-out level stores of the level rules. Parts (one
# sweep at one level, analysis/scaling/<sweep>_level<level>.csv) are what one sitting trains; tables/scaling.csv
# gathers them, then the fits, the gaps and the figures.

from equidyn.studies import scaling as SCALING  # noqa: E402

SC_RUN = W.run_dir_pattern("scaling")
SC_AXES = ("params", "data", "compute")
SC_PART_FILES = ("eval_best.json", "train.json", "history.csv")  # what a part's table reads of each run


rule scaling_all:
    input:
        W.table("data_equivariance"),
        W.table("scaling"),
        W.table("scaling_fits"),
        W.table("scaling_gaps"),
        expand(R("figures/scaling_{axis}.{ext}"), axis=SC_AXES, ext=("pdf", "png")),


rule scaling_train:
    input:
        store=W.store("scaling"),
    output:
        **W.train_outputs("scaling"),
    params:
        settings=lambda w: W.run_settings("scaling", w),
        run_dir=lambda w: W.run_dir("scaling", w),
        attempts=W.train_attempts("scaling"),
    log:
        R(f"logs/{SC_RUN}/train.log"),
    benchmark:
        R(f"benchmarks/{SC_RUN}/train.tsv")
    threads: W.res("train", "threads")
    resources:
        runtime=W.scaling_res("runtime"),
        mem_mb=W.scaling_res("mem_mb"),
        gpu=W.res("train", "gpu", 0),
    conda:
        ENV
    shell:
        "cat {params.attempts:q} > {log} 2>/dev/null || true; "
        "python -m equidyn.cli scaling-train --settings {params.settings:q} --store {input.store}"
        " --model {wildcards.model} --alpha {wildcards.alpha} --level {wildcards.level} --size {wildcards.size}"
        " --fraction {wildcards.fraction} --seed {wildcards.seed} --run-dir {params.run_dir} --threads {threads}"
        " 2>&1 | tee -a {params.attempts:q} >> {log}"


rule scaling_part:
    input:
        runs=lambda w: W.runs_files("scaling", SC_PART_FILES, SCALING.runs_to_train(config["scaling"], w.sweep, int(w.level))),
        kept=list(config.get("scaling", {}).get("saved_parts", {}).values()),  # rows of runs a kept part already has
        store=R("data/levels/level{level}.zarr"),
    output:
        R("analysis/scaling/{sweep}_level{level}.csv"),
    wildcard_constraints:
        sweep="|".join(SCALING.SWEEPS),
    params:
        settings=settings_json(config.get("scaling", {})),
        root=lambda w, output: output[0].split("/analysis/scaling/")[0],  # results/<name>
    log:
        R("logs/scaling/{sweep}_level{level}.log"),
    benchmark:
        R("benchmarks/scaling/{sweep}_level{level}.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli scaling-part --settings {params.settings:q} --sweep {wildcards.sweep}"
        " --level {wildcards.level} --root {params.root} --out {output} > {log} 2>&1"


rule scaling_table:
    input:
        # each part's table, or the kept table that scaling.saved_parts names for it (an earlier sitting's)
        lambda w: SCALING.part_sources(config["scaling"], lambda sweep, level: R(f"analysis/scaling/{sweep}_level{level}.csv")),
    output:
        report(W.table("scaling"), caption="../workflow/report/scaling.rst", category="6 Scaling"),
    params:
        settings=settings_json(config.get("scaling", {})),
    log:
        R("logs/tables/scaling.log"),
    benchmark:
        R("benchmarks/tables/scaling.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli scaling-table --parts {input} --out {output} --settings {params.settings:q} > {log} 2>&1"


rule scaling_fits:
    input:
        W.table("scaling"),
    output:
        fits=report(W.table("scaling_fits"), caption="../workflow/report/scaling_fits.rst", category="6 Scaling"),
        gaps=W.table("scaling_gaps"),
        curves=R("analysis/scaling/curves.csv"),
    log:
        R("logs/tables/scaling_fits.log"),
    benchmark:
        R("benchmarks/tables/scaling_fits.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli scaling-fits --scaling-csv {input} --fits-out {output.fits} --gaps-out {output.gaps}"
        " --curves-out {output.curves} > {log} 2>&1"


rule figure_scaling:
    input:
        runs=W.table("scaling"),
        curves=R("analysis/scaling/curves.csv"),
    output:
        pdf=R("figures/scaling_{axis}.pdf"),
        png=report(R("figures/scaling_{axis}.png"), caption="../workflow/report/scaling_figure.rst", category="6 Scaling"),
    wildcard_constraints:
        axis="|".join(SC_AXES),
    log:
        R("logs/figures/scaling_{axis}.log"),
    benchmark:
        R("benchmarks/figures/scaling_{axis}.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli figure-scaling --scaling-csv {input.runs} --curves-csv {input.curves}"
        " --axis {wildcards.axis} --out {output.pdf} > {log} 2>&1"
