# exponax's periodic 2-D turbulence (issue 24): one store per flow -> its symmetry check -> the data-EE table.
# The rules exist only when the config has an `exponax` section (config/exponax.yaml), so the plans of the demo, the
# laptop, held-out and paper configs are unchanged; `all` does not reach them yet (the training study will):
#   snakemake --profile profiles/local exponax_all --configfile config/exponax.yaml

if "exponax" in config:
    EX = config["exponax"]
    EX_FLOWS = list(EX["flows"])

    rule exponax_all:
        input:
            expand(R("data/exponax/{flow}.zarr"), flow=EX_FLOWS),
            W.table("exponax_data_equivariance"),

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
            settings=settings_json(EX),
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
