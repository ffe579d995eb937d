# The symmetry-level study ([W22] Fig. 4, [BLOG]). Base plumes -> level datasets -> one training job per
# (model, alpha, level, seed) -> evaluation of the epoch-3 and best checkpoints -> tables -> figure.

LV = config["levels"]
LV_RUN = W.run_dir_pattern("levels")
from equidyn.studies.levels import level_data_settings  # noqa: E402


rule levels_all:
    input:
        W.table("data_equivariance"),
        W.table("levels"),
        W.table("levels_summary"),
        R("figures/ee_vs_data_ee.pdf"),
        R("figures/ee_vs_data_ee.png"),


rule levels_base:
    output:
        directory(R("data/levels/base.zarr")),
    params:
        settings=settings_json({"physics": LV["physics"], "base": LV["base"]}),
    log:
        R("logs/levels/base.log"),
    benchmark:
        R("benchmarks/levels/base.tsv")
    threads: W.res("data", "threads")
    resources:
        runtime=W.res("data", "runtime"),
        mem_mb=W.res("data", "mem_mb"),
    conda:
        ENV
    shell:
        "python -m equidyn.cli levels-base --settings {params.settings:q} --out {output} > {log} 2>&1"


rule levels_level:
    input:
        base=R("data/levels/base.zarr"),
    output:
        directory(W.store("levels")),
    params:
        settings=settings_json(level_data_settings(LV)),
    log:
        R("logs/levels/level{level}.log"),
    benchmark:
        R("benchmarks/levels/level{level}.tsv")
    threads: 1
    resources:
        runtime=W.res("data", "runtime"),
        mem_mb=W.res("data", "mem_mb"),
    conda:
        ENV
    shell:
        "python -m equidyn.cli levels-level --settings {params.settings:q} --base {input.base} --level {wildcards.level}"
        " --out {output} > {log} 2>&1"


rule levels_data_ee:
    input:
        store=R("data/levels/level{level}.zarr"),
    output:
        R("analysis/levels/data_ee/level{level}.json"),
    params:
        frames=" ".join(str(f) for f in LV.get("data_ee", {}).get("frames", [10, -1])),
    log:
        R("logs/levels/data_ee_level{level}.log"),
    benchmark:
        R("benchmarks/levels/data_ee_level{level}.tsv")
    threads: 1
    resources:
        runtime=W.res("analysis", "runtime"),
        mem_mb=W.res("analysis", "mem_mb"),
    conda:
        ENV
    shell:
        "python -m equidyn.cli levels-data-ee --store {input.store} --frames {params.frames} --out {output} > {log} 2>&1"


rule levels_train:
    input:
        store=W.store("levels"),
    output:
        **W.train_outputs("levels"),
    params:
        settings=lambda w: W.run_settings("levels", w),
        run_dir=lambda w: W.run_dir("levels", w),
        attempts=W.train_attempts("levels"),
    log:
        R(f"logs/{LV_RUN}/train.log"),
    benchmark:
        R(f"benchmarks/{LV_RUN}/train.tsv")
    threads: W.res("train", "threads")
    resources:
        runtime=W.model_res("train", "runtime"),
        mem_mb=W.model_res("train", "mem_mb"),
        gpu=W.res("train", "gpu", 0),
    conda:
        ENV
    shell:
        "cat {params.attempts:q} > {log} 2>/dev/null || true; "
        "python -m equidyn.cli levels-train --settings {params.settings:q} --store {input.store} --model {wildcards.model}"
        " --alpha {wildcards.alpha} --level {wildcards.level} --seed {wildcards.seed} --run-dir {params.run_dir}"
        " --threads {threads} 2>&1 | tee -a {params.attempts:q} >> {log}"


rule levels_data_table:
    input:
        expand(R("analysis/levels/data_ee/level{level}.json"), level=LV["levels"]),
    output:
        report(W.table("data_equivariance"), caption="../workflow/report/data_equivariance.rst", category="1 Symmetry levels"),
    params:
        settings=settings_json({"physics": LV["physics"], "base": LV["base"], **level_data_settings(LV)}),
    log:
        R("logs/tables/data_equivariance.log"),
    benchmark:
        R("benchmarks/tables/data_equivariance.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli levels-data-table --data-ee-files {input} --settings {params.settings:q} --out {output} > {log} 2>&1"


rule levels_table:
    input:
        evals=W.eval_files("levels"),
        data=W.table("data_equivariance"),
    output:
        report(W.table("levels"), caption="../workflow/report/levels_table.rst", category="1 Symmetry levels"),
    log:
        R("logs/tables/levels.log"),
    benchmark:
        R("benchmarks/tables/levels.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli levels-table --eval-files {input.evals} --data-table-path {input.data} --out {output} > {log} 2>&1"


rule levels_summary:
    input:
        levels=W.table("levels"),
        baselines=expand(R(baseline_file("levels")), level=LV["levels"]),
    output:
        report(W.table("levels_summary"), caption="../workflow/report/levels_summary.rst", category="1 Symmetry levels"),
    log:
        R("logs/tables/levels_summary.log"),
    benchmark:
        R("benchmarks/tables/levels_summary.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli levels-summary --levels-csv {input.levels} --baselines {input.baselines} --out {output}"
        " > {log} 2>&1"


rule figure_ee_vs_data_ee:
    input:
        levels=W.table("levels"),
        data=W.table("data_equivariance"),
    output:
        pdf=R("figures/ee_vs_data_ee.pdf"),
        png=report(R("figures/ee_vs_data_ee.png"), caption="../workflow/report/ee_vs_data_ee.rst", category="1 Symmetry levels"),
    log:
        R("logs/figures/ee_vs_data_ee.log"),
    benchmark:
        R("benchmarks/figures/ee_vs_data_ee.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli figure-ee-vs-data-ee --levels-csv {input.levels} --data-csv {input.data} --out {output.pdf}"
        " > {log} 2>&1"
