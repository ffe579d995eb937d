# exponax's periodic 2-D turbulence (issue 24): one store per flow -> its symmetry check -> the data-EE table; then
# the training study on the stores: one job per (model, alpha, flow, seed) -> the trivial forecasts per flow -> the
# runs table, the summary and the figure. The measures (rules/dynamics.smk) and the claims (rules/claims.smk) take
# the runs like any other study's.
# The rules exist only when the config has an `exponax` section (config/exponax.yaml), so the plans of the demo, the
# laptop, held-out and paper configs are unchanged:
#   snakemake --profile profiles/local all --configfile config/exponax.yaml                 the whole study
#   snakemake --profile profiles/local exponax_data_all --configfile config/exponax.yaml    the data and their check

if "exponax" in config:
    EX = config["exponax"]
    EX_FLOWS = list(EX["flows"])
    EX_RUN = W.run_dir_pattern("exponax")

    # the gathering rules run on the submitting node (as the Snakefile's localrules; declared here, where they exist)
    localrules:
        exponax_data_table,
        exponax_table,
        exponax_summary,
        figure_exponax,

    rule exponax_data_all:
        input:
            expand(R("data/exponax/{flow}.zarr"), flow=EX_FLOWS),
            W.table("exponax_data_equivariance"),

    rule exponax_all:
        input:
            rules.exponax_data_all.input,
            W.table("exponax"),
            W.table("exponax_summary"),
            R("figures/exponax.pdf"),
            R("figures/exponax.png"),

    rule exponax_data:
        output:
            directory(R("data/exponax/{flow}.zarr")),
        wildcard_constraints:
            flow="|".join(EX_FLOWS),
        params:
            settings=lambda w: settings_json(EX["flows"][w.flow]),
        log:
            R("logs/exponax/{flow}.log"),
        benchmark:
            R("benchmarks/exponax/{flow}.tsv")
        threads: W.res("data", "threads")
        resources:
            runtime=W.res("data", "runtime"),
            mem_mb=W.res("data", "mem_mb"),
        conda:
            ENV
        shell:
            "python -m equidyn.cli exponax-data --settings {params.settings:q} --flow {wildcards.flow} --out {output}"
            " > {log} 2>&1"

    rule exponax_symmetry:
        input:
            store=R("data/exponax/{flow}.zarr"),
        output:
            R("analysis/exponax/symmetry/{flow}.json"),
        wildcard_constraints:
            flow="|".join(EX_FLOWS),
        params:
            trajectories=" ".join(str(t) for t in EX.get("symmetry_check", {}).get("trajectories", [])),
        log:
            R("logs/exponax/symmetry_{flow}.log"),
        benchmark:
            R("benchmarks/exponax/symmetry_{flow}.tsv")
        threads: W.res("data", "threads")
        resources:
            runtime=W.res("analysis", "runtime"),
            mem_mb=W.res("analysis", "mem_mb"),
        conda:
            ENV
        shell:
            "python -m equidyn.cli exponax-symmetry --store {input.store} --out {output}"
            + (" --trajectories {params.trajectories}" if EX.get("symmetry_check", {}).get("trajectories") else "")
            + " > {log} 2>&1"

    rule exponax_data_table:
        input:
            expand(R("analysis/exponax/symmetry/{flow}.json"), flow=EX_FLOWS),
        output:
            report(
                W.table("exponax_data_equivariance"),
                caption="../workflow/report/exponax_data_equivariance.rst",
                category="6 exponax flows",
            ),
        params:
            # the flows' data settings only: the training settings do not change the data
            settings=settings_json({"flows": EX["flows"], "symmetry_check": EX.get("symmetry_check", {})}),
        log:
            R("logs/tables/exponax_data_equivariance.log"),
        benchmark:
            R("benchmarks/tables/exponax_data_equivariance.tsv")
        threads: 1
        conda:
            ENV
        shell:
            "python -m equidyn.cli exponax-data-table --symmetry-files {input} --settings {params.settings:q}"
            " --out {output} > {log} 2>&1"

    rule exponax_train:
        input:
            store=W.store("exponax"),
        output:
            **W.train_outputs("exponax"),
        wildcard_constraints:
            flow="|".join(EX_FLOWS),
        params:
            settings=lambda w: W.run_settings("exponax", w),
            run_dir=lambda w: W.run_dir("exponax", w),
            attempts=W.train_attempts("exponax"),
        log:
            R(f"logs/{EX_RUN}/train.log"),
        benchmark:
            R(f"benchmarks/{EX_RUN}/train.tsv")
        threads: W.res("train", "threads")
        resources:
            runtime=W.model_res("train", "runtime"),
            mem_mb=W.model_res("train", "mem_mb"),
            gpu=W.res("train", "gpu", 0),
        conda:
            ENV
        shell:
            "cat {params.attempts:q} > {log} 2>/dev/null || true; "
            "python -m equidyn.cli exponax-train --settings {params.settings:q} --store {input.store}"
            " --model {wildcards.model} --alpha {wildcards.alpha} --flow {wildcards.flow} --seed {wildcards.seed}"
            " --run-dir {params.run_dir} --threads {threads} 2>&1 | tee -a {params.attempts:q} >> {log}"

    # persistence and the linear extrapolation on each flow's test windows, once per store
    rule baseline_exponax:
        input:
            store=W.store("exponax"),
        output:
            R(baseline_file("exponax")),
        wildcard_constraints:
            flow="|".join(EX_FLOWS),
        params:
            settings=lambda w: settings_json(baseline_settings("exponax", EX, {"flow": w.flow})),
        log:
            R("logs/baselines/exponax/flow{flow}.log"),
        benchmark:
            R("benchmarks/baselines/exponax/flow{flow}.tsv")
        threads: 1
        resources:
            runtime=W.res("analysis", "runtime"),
            mem_mb=W.res("analysis", "mem_mb"),
        conda:
            ENV
        shell:
            "python -m equidyn.cli baseline --study exponax --settings {params.settings:q} --store {input.store}"
            " --out {output} --threads {threads} > {log} 2>&1"

    rule exponax_table:
        input:
            evals=W.eval_files("exponax"),
            mirrors=W.run_files("exponax", "mirror_ee.json"),
            data=W.table("exponax_data_equivariance"),
        output:
            report(W.table("exponax"), caption="../workflow/report/exponax_table.rst", category="6 exponax flows"),
        log:
            R("logs/tables/exponax.log"),
        benchmark:
            R("benchmarks/tables/exponax.tsv")
        threads: 1
        conda:
            ENV
        shell:
            "python -m equidyn.cli exponax-table --eval-files {input.evals} --mirror-files {input.mirrors}"
            " --data-table-path {input.data} --out {output} > {log} 2>&1"

    rule exponax_summary:
        input:
            runs=W.table("exponax"),
            baselines=expand(R(baseline_file("exponax")), flow=EX_FLOWS),
        output:
            report(
                W.table("exponax_summary"),
                caption="../workflow/report/exponax_summary.rst",
                category="6 exponax flows",
            ),
        log:
            R("logs/tables/exponax_summary.log"),
        benchmark:
            R("benchmarks/tables/exponax_summary.tsv")
        threads: 1
        conda:
            ENV
        shell:
            "python -m equidyn.cli exponax-summary --exponax-csv {input.runs} --baselines {input.baselines}"
            " --out {output} > {log} 2>&1"

    rule figure_exponax:
        input:
            summary=W.table("exponax_summary"),
            runs=W.table("exponax"),
        output:
            pdf=R("figures/exponax.pdf"),
            png=report(R("figures/exponax.png"), caption="../workflow/report/exponax.rst", category="6 exponax flows"),
        log:
            R("logs/figures/exponax.log"),
        benchmark:
            R("benchmarks/figures/exponax.tsv")
        threads: 1
        conda:
            ENV
        shell:
            "python -m equidyn.cli figure-exponax --summary-csv {input.summary} --exponax-csv {input.runs}"
            " --out {output.pdf} > {log} 2>&1"
