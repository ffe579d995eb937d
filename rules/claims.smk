# The claims table (the product's answer): every claim of BLOG, W22 and TUT that this run's tables can test, as a
# paired effect across seeds with a 95 % CI and a verdict; and its forest plot. The report opens with both.


# the tables of the studies `all` runs (config `studies`); a claim whose study is left out is not tested
CLAIM_TABLES = {
    "levels": "levels",
    "superres": "superres",
    "rotation": "rotation_benchmark",
    "tutorial": "tutorial",
    "exponax": "exponax",
}


rule claims_table:
    input:
        dynamics=W.table("dynamics"),
        **{study: W.table(table) for study, table in CLAIM_TABLES.items() if study in W.studies()},
    output:
        report(W.table("claims"), caption="../workflow/report/claims_table.rst", category="0 Claims"),
    log:
        R("logs/tables/claims.log"),
    benchmark:
        R("benchmarks/tables/claims.tsv")
    threads: 1
    resources:
        runtime=W.res("report", "runtime"),
        mem_mb=W.res("report", "mem_mb"),
    conda:
        ENV
    params:
        tables=lambda w, input: " ".join(f"--{name}-csv {path}" for name, path in input.items()),
        # labels the level rows: the published protocol (split in time) or the generalisation one (held out)
        protocol=config.get("levels", {}).get("protocol", "time"),
    shell:
        "python -m equidyn.cli claims {params.tables} --levels-protocol {params.protocol} --out {output} > {log} 2>&1"


rule figure_claims:
    input:
        W.table("claims"),
    output:
        pdf=R("figures/claims.pdf"),
        png=report(R("figures/claims.png"), caption="../workflow/report/claims.rst", category="0 Claims"),
    log:
        R("logs/figures/claims.log"),
    benchmark:
        R("benchmarks/figures/claims.tsv")
    threads: 1
    resources:
        runtime=W.res("report", "runtime"),
        mem_mb=W.res("report", "mem_mb"),
    conda:
        ENV
    shell:
        "python -m equidyn.cli figure-claims --claims-csv {input} --out {output.pdf} > {log} 2>&1"


rule claims_all:
    input:
        W.table("claims"),
        R("figures/claims.pdf"),
        R("figures/claims.png"),
