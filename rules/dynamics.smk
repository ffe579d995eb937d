# Training-dynamics analysis: one rule per measure (Lie derivative, sharpness, Hessian), one job per
# (trained run, checkpoint); then dynamics.csv and the figures. `dynamics.runs` selects which runs are measured
# (the paper config: all of them; the demo: a subset that fits its time budget).

MEASURES = list(MEASURE_SECTIONS)

# One rule per (measured study, measure): each study's run keys are its wildcards, so the store and the run
# settings come from the study description, with no path parsed back.
for _study in W.measured_studies():
    for _measure in MEASURES:

        rule:
            name:
                f"measure_{_measure}_{_study}"
            input:
                checkpoint=W.checkpoint_pattern(_study),
                store=W.store(_study),
            output:
                W.measure_pattern(_study, _measure),
            params:
                settings=lambda w, s=_study, m=_measure: W.measure_settings(s, w, m),
                study=_study,
                measure=_measure,
                attempts=W.output_attempts,
            log:
                W.measure_pattern(_study, _measure, "logs"),
            benchmark:
                W.measure_pattern(_study, _measure, "benchmarks")
            threads: W.res("analysis", "threads")
            resources:
                runtime=W.model_res("analysis", "runtime"),
                mem_mb=W.model_res("analysis", "mem_mb"),
                gpu=W.res("analysis", "gpu", 0),
            conda:
                ENV
            shell:
                "cat {params.attempts:q} > {log} 2>/dev/null || true; "
                "python -m equidyn.cli measure --study {params.study} --measure {params.measure}"
                " --settings {params.settings:q} --store {input.store} --checkpoint {input.checkpoint} --out {output}"
                " --threads {threads} 2>&1 | tee -a {params.attempts:q} >> {log}"


rule dynamics_table:
    input:
        measures=W.dynamics_files(tuple(MEASURES)),
        evals=W.dynamics_eval_files(),
    output:
        report(R("tables/dynamics.csv"), caption="../workflow/report/dynamics_table.rst", category="4 Training dynamics"),
    log:
        R("logs/tables/dynamics.log"),
    benchmark:
        R("benchmarks/tables/dynamics.tsv")
    threads: 1
    conda:
        ENV
    shell:
        "python -m equidyn.cli dynamics-table --measure-files {input.measures} --eval-files {input.evals}"
        " --out {output} > {log} 2>&1"


# figure name -> (equidyn subcommand, its input option, the input files)
DYNAMICS_FIGURES = {
    "ee_vs_alpha": ("figure-ee-vs-alpha", "--levels-csv", [R("tables/levels.csv")]),
    "lie_vs_alpha": ("figure-lie-vs-alpha", "--dynamics-csv", [R("tables/dynamics.csv")]),
    "levels_curves": ("figure-levels-curves", "--history-files", W.level_history_files()),
    "test_rmse_bars": ("figure-test-rmse-bars", "--levels-csv", [R("tables/levels.csv")]),
    "hessian_density": ("figure-hessian-density", "--hessian-files", W.hessian_figure_files()),
    "sharpness": ("figure-sharpness", "--dynamics-csv", [R("tables/dynamics.csv")]),
    "lambda_max_vs_skill": ("figure-lambda-max-vs-skill", "--dynamics-csv", [R("tables/dynamics.csv")]),
}

LEVEL_FIGURES = {"ee_vs_alpha", "levels_curves", "test_rmse_bars"}
# The figures `dynamics_all` asks for: the level figures where the config runs the level study, the others where a
# run of the level, super-resolution or rotation study is measured (they draw those studies; a config that runs the
# exponax study alone has its own figure, rules/exponax.smk). Every config before the exponax study asks for all.
DRAWN_FIGURES = [
    f
    for f in DYNAMICS_FIGURES
    if ("levels" in W.studies() if f in LEVEL_FIGURES else {s for s, _ in W.dynamics_runs()} & {"levels", "superres", "rotation"})
]

for _figure, (_command, _option, _inputs) in DYNAMICS_FIGURES.items():

    rule:
        name:
            f"figure_{_figure}"
        input:
            _inputs,
        output:
            pdf=R(f"figures/{_figure}.pdf"),
            png=report(
                R(f"figures/{_figure}.png"),
                caption=f"../workflow/report/{_figure}.rst",
                category="1 Symmetry levels" if _figure in LEVEL_FIGURES else "4 Training dynamics",
            ),
        params:
            command=_command,
            option=_option,
        log:
            R(f"logs/figures/{_figure}.log"),
        benchmark:
            R(f"benchmarks/figures/{_figure}.tsv")
        threads: 1
        conda:
            ENV
        shell:
            "python -m equidyn.cli {params.command} {params.option} {input} --out {output.pdf} > {log} 2>&1"


rule dynamics_all:
    input:
        R("tables/dynamics.csv"),
        [R(f"figures/{f}.{ext}") for f in DRAWN_FIGURES for ext in ("pdf", "png")],
