# The rotation tutorial ([TUT]): per flow (f0; with tutorial.coriolis.f > 0 also an f-plane flow), the
# tutorial's own offline turbulence -> the built-in NetCDF (+x wind added) or, for f0, a user's NetCDF
# (`--config tutorial_data=PATH`) -> coarse-grained inputs and sub-filter flux targets -> one job per
# (flow, model, seed) that trains on orientation-biased data and tests on rotated and mirrored data -> tables, figures.

TU = config["tutorial"]
TU_RUN = W.run_dir_pattern("tutorial")
# A missing input file stops the workflow here, at start-up: when the DAG is built, a missing input of a job whose
# outputs exist is no error ("Nothing to be done"), and a mistyped path would leave the old results looking current.
W.tutorial_user_file()


# (global: the tutorial's flows are named by their Coriolis parameter, f0, f2 …; the exponax study's flows, which
# its measure rules take as a run key, by name)
wildcard_constraints:
    flow="f[0-9.e+-]+|decaying|kolmogorov",


rule tutorial_all:
    input:
        R("tables/tutorial.csv"),
        R("tables/tutorial_ceiling.csv"),
        R("figures/tutorial_rotated.pdf"),
        R("figures/tutorial_skill.pdf"),


rule tutorial_turbulence:
    output:
        directory(R("data/tutorial/{flow}/turbulence.zarr")),
    params:
        settings=W.tutorial_turbulence_settings,
    log:
        R("logs/tutorial/{flow}/turbulence.log"),
    benchmark:
        R("benchmarks/tutorial/{flow}/turbulence.tsv")
    threads: 1
    resources:
        runtime=W.res("data", "runtime"),
        mem_mb=W.res("data", "mem_mb"),
    conda:
        ENV
    shell:
        "python -m equidyn.cli tutorial-turbulence --settings {params.settings:q} --out {output} --threads {threads}"
        " > {log} 2>&1"


rule tutorial_builtin:
    input:
        turbulence=R("data/tutorial/{flow}/turbulence.zarr"),
    output:
        R("data/tutorial/{flow}/builtin.nc"),
    params:
        settings=settings_json({"data": TU["data"]}),
    log:
        R("logs/tutorial/{flow}/builtin.log"),
    benchmark:
        R("benchmarks/tutorial/{flow}/builtin.tsv")
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
        source=W.tutorial_source,
    output:
        directory(W.store("tutorial")),
    params:
        settings=W.tutorial_prepare_settings,
    log:
        R("logs/tutorial/{flow}/prepare.log"),
    benchmark:
        R("benchmarks/tutorial/{flow}/prepare.tsv")
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
        attempts=W.train_attempts("tutorial"),
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
        "cat {params.attempts:q} > {log} 2>/dev/null || true; "
        "python -m equidyn.cli tutorial-train --settings {params.settings:q} --store {input.store} --flow {wildcards.flow}"
        " --label {wildcards.label} --seed {wildcards.seed} --run-dir {params.run_dir} --threads {threads}"
        " 2>&1 | tee -a {params.attempts:q} >> {log}"


rule tutorial_table:
    input:
        evals=W.run_files("tutorial", "eval_rotated.json"),
        stores=W.tutorial_stores(),
    output:
        table=report(R("tables/tutorial.csv"), caption="../workflow/report/tutorial_table.rst", category="5 Tutorial"),
        ceiling=R("tables/tutorial_ceiling.csv"),
    log:
        R("logs/tables/tutorial.log"),
    benchmark:
        R("benchmarks/tables/tutorial.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli tutorial-table --eval-files {input.evals} --stores {input.stores} --out {output.table}"
        " --ceiling-out {output.ceiling} > {log} 2>&1"


rule figure_tutorial_rotated:
    input:
        W.run_files("tutorial", "rotated_example.npz", W.first_seed_runs("tutorial", flow="f0")),
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
        table=R("tables/tutorial.csv"),
        ceiling=R("tables/tutorial_ceiling.csv"),
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
        "python -m equidyn.cli figure-tutorial-skill --table-csv {input.table} --ceiling-csv {input.ceiling}"
        " --out {output.pdf} > {log} 2>&1"
