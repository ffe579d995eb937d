# Convergence (issue 11): did every run's validation loss flatten? One job per study reads the study's histories
# (relative change of the best validation loss over the last 20 % of epochs, < 5 % = flat) and draws its learning
# curves; tables/convergence.csv gathers the studies.

# Only the studies that train a run here: a scaling study whose parts are all kept (config/scaling_kept.yaml) trains
# none, and its kept parts carry each run's convergence verdict (the `flattened` column) already.
CONVERGENCE_STUDIES = [s for s in W.studies() if W.runs(s)]


rule convergence_study:
    input:
        histories=lambda w: W.run_files(w.study_c, "history.csv"),
        summaries=lambda w: W.run_files(w.study_c, "train.json"),
    output:
        table=R("analysis/convergence/{study_c}.csv"),
        pdf=R("figures/curves_{study_c}.pdf"),
        png=report(R("figures/curves_{study_c}.png"), caption="../workflow/report/convergence.rst", category="5 Convergence"),
    wildcard_constraints:
        study_c="|".join(CONVERGENCE_STUDIES),
    params:
        settings=lambda w: settings_json(config[w.study_c]),
        # results/<name>, from the output (analysis/convergence/<study>.csv below it), not hard-coded
        root=lambda w, output: os.path.dirname(os.path.dirname(os.path.dirname(output.table))),
    log:
        R("logs/convergence/{study_c}.log"),
    benchmark:
        R("benchmarks/convergence/{study_c}.tsv")
    threads: 1
    resources:
        runtime=W.res("report", "runtime"),
        mem_mb=W.res("report", "mem_mb"),
    conda:
        ENV
    shell:
        "python -m equidyn.cli convergence --study {wildcards.study_c} --settings {params.settings:q}"
        " --root {params.root} --out {output.table} --figure {output.pdf} > {log} 2>&1"


rule convergence_table:
    input:
        expand(R("analysis/convergence/{study_c}.csv"), study_c=CONVERGENCE_STUDIES),
    output:
        report(R("tables/convergence.csv"), caption="../workflow/report/convergence_table.rst", category="5 Convergence"),
    log:
        R("logs/tables/convergence.log"),
    benchmark:
        R("benchmarks/tables/convergence.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli convergence-table --tables {input} --out {output} > {log} 2>&1"


rule convergence_all:
    input:
        R("tables/convergence.csv"),
        expand(R("figures/curves_{study_c}.{ext}"), study_c=CONVERGENCE_STUDIES, ext=("pdf", "png")),
