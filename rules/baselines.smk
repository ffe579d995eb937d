# Trivial baselines (issue 11): persistence for the forecasting studies, the trilinearly upsampled coarse input for
# super-resolution, scored like the models on the same test windows, once per data store. The summary tables join
# them as columns (baseline_*, *_skill); the tutorial's R² already is skill against the mean.

from equidyn.studies.baselines import baseline_file, baseline_settings


rule baseline_levels:
    input:
        store=W.store("levels"),
    output:
        R(baseline_file("levels")),
    params:
        settings=lambda w: settings_json(baseline_settings("levels", config["levels"], {"level": int(w.level)})),
    log:
        R("logs/baselines/levels/level{level}.log"),
    benchmark:
        R("benchmarks/baselines/levels/level{level}.tsv")
    threads: 1
    resources:
        runtime=W.res("analysis", "runtime"),
        mem_mb=W.res("analysis", "mem_mb"),
    conda:
        ENV
    shell:
        "python -m equidyn.cli baseline --study levels --settings {params.settings:q} --store {input.store}"
        " --out {output} --threads {threads} > {log} 2>&1"


rule baseline_one_store:
    input:
        store=lambda w: W.store(w.study),
    output:
        R("analysis/baselines/{study}.json"),
    wildcard_constraints:
        study="rotation|superres",
    params:
        settings=lambda w: settings_json(baseline_settings(w.study, config[w.study], {})),
    log:
        R("logs/baselines/{study}.log"),
    benchmark:
        R("benchmarks/baselines/{study}.tsv")
    threads: 1
    resources:
        runtime=W.res("analysis", "runtime"),
        mem_mb=W.res("analysis", "mem_mb"),
    conda:
        ENV
    shell:
        "python -m equidyn.cli baseline --study {wildcards.study} --settings {params.settings:q} --store {input.store}"
        " --out {output} --threads {threads} > {log} 2>&1"
