# The rotation-equivariance tutorial ([TUT]): a user's NetCDF (`--config tutorial_data=PATH`) or the built-in
# file made from horizontal slices of the turbulence data -> prepared store -> one job per (target, model, seed)
# that trains on orientation-biased data and tests on rotated data -> table and figures.

TU = config["tutorial"]
TU_RUN = W.run_dir_pattern("tutorial")


rule tutorial_all:
    input:
        R("tables/tutorial.csv"),
        R("figures/tutorial_rotated.pdf"),
        R("figures/tutorial_skill.pdf"),


rule tutorial_builtin:
    input:
        turbulence=R("data/superres/turbulence.zarr"),
    output:
        R("data/tutorial/builtin.nc"),
    params:
        settings=settings_json({"data": TU["data"]}),
    log:
        R("logs/tutorial/builtin.log"),
    benchmark:
        R("benchmarks/tutorial/builtin.tsv")
    threads: 1
    resources:
        runtime=W.res("data", "runtime"),
        mem_mb=W.res("data", "mem_mb"),
    conda:
        ENV
    shell:
        "python -m equidyn.cli tutorial-builtin --settings {params.settings:q} --turbulence {input.turbulence} --out {output}"
        " > {log} 2>&1"


rule tutorial_prepare:
    input:
        source=W.tutorial_source(),
    output:
        directory(W.store("tutorial")),
    params:
        settings=W.tutorial_prepare_settings(),
    log:
        R("logs/tutorial/prepare.log"),
    benchmark:
        R("benchmarks/tutorial/prepare.tsv")
    threads: 1
    resources:
        runtime=W.res("data", "runtime"),
        mem_mb=W.res("data", "mem_mb"),
    conda:
        ENV
    shell:
        "python -m equidyn.cli tutorial-prepare --settings {params.settings:q} --source {input.source:q} --out {output} > {log} 2>&1"


rule tutorial_train:
    input:
        store=W.store("tutorial"),
    output:
        **W.train_outputs("tutorial"),
    params:
        settings=lambda w: W.run_settings("tutorial", w),
        run_dir=lambda w: W.run_dir("tutorial", w),
    log:
        R(f"logs/{TU_RUN}/train.log"),
    benchmark:
        R(f"benchmarks/{TU_RUN}/train.tsv")
    threads: W.res("train", "threads")
    resources:
        runtime=W.res("train", "runtime"),
        mem_mb=W.res("train", "mem_mb"),
        gpu=W.res("train", "gpu", 0),
    conda:
        ENV
    shell:
        "python -m equidyn.cli tutorial-train --settings {params.settings:q} --store {input.store} --label {wildcards.label}"
        " --target {wildcards.target} --seed {wildcards.seed} --run-dir {params.run_dir} --threads {threads}"
        " >> {log} 2>&1"


rule tutorial_table:
    input:
        W.run_files("tutorial", "eval_rotated.json"),
    output:
        report(R("tables/tutorial.csv"), caption="../workflow/report/tutorial_table.rst", category="5 Tutorial"),
    log:
        R("logs/tables/tutorial.log"),
    benchmark:
        R("benchmarks/tables/tutorial.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli tutorial-table --eval-files {input} --out {output} > {log} 2>&1"


rule figure_tutorial_rotated:
    input:
        W.run_files("tutorial", "rotated_example.npz", W.first_seed_runs("tutorial", target=TU["targets"][0])),
    output:
        pdf=R("figures/tutorial_rotated.pdf"),
        png=report(R("figures/tutorial_rotated.png"), caption="../workflow/report/tutorial_rotated.rst", category="5 Tutorial"),
    log:
        R("logs/figures/tutorial_rotated.log"),
    benchmark:
        R("benchmarks/figures/tutorial_rotated.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli figure-tutorial-rotated --example-files {input} --out {output.pdf} > {log} 2>&1"


rule figure_tutorial_skill:
    input:
        R("tables/tutorial.csv"),
    output:
        pdf=R("figures/tutorial_skill.pdf"),
        png=report(R("figures/tutorial_skill.png"), caption="../workflow/report/tutorial_skill.rst", category="5 Tutorial"),
    log:
        R("logs/figures/tutorial_skill.log"),
    benchmark:
        R("benchmarks/figures/tutorial_skill.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli figure-tutorial-skill --table-csv {input} --out {output.pdf} > {log} 2>&1"
