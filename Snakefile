# equidyn workflow: how imposed equivariance (strict, relaxed, none) changes what networks learn and how they train.
#
#   snakemake --profile profiles/local all        the demo on a laptop (config/demo.yaml, ≤ 10 min on 2 cores)
#   snakemake --profile profiles/slurm all        the paper-scale study on a SLURM GPU cluster
#   snakemake --profile profiles/local results/demo/figures/ee_vs_data_ee.pdf    rebuild one figure
#
# Every rule is thin: it declares inputs, outputs, params, log, benchmark and resources, and calls one `equidyn`
# subcommand (src/equidyn/cli.py). All logic lives in the package.

from snakemake.utils import min_version

min_version("9.0")

import os
import sys

# The package's config validation needs only jsonschema and PyYAML (both Snakemake dependencies), so the Snakefile
# imports it from the source tree even when Snakemake itself runs outside the project's environment.
sys.path.insert(0, os.path.join(workflow.basedir, "src"))
from equidyn.config import validate_config  # noqa: E402
from equidyn.lineage import git_rev  # noqa: E402


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


validate_config(config)

# Every job runs `python -m equidyn.cli` with the package's source on PYTHONPATH (so a `--sdm conda` environment
# needs no install step) and the code revision the workflow was launched from (so cluster jobs report it even
# where the checkout is not a git repository).
# (The prefix is formatted by Snakemake, hence the doubled braces; it replaces the default "set -euo pipefail;".)
shell.prefix(
    "set -euo pipefail; "
    + f"export PYTHONPATH={workflow.basedir}/src${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    + f"export EQUIDYN_GIT_REV={git_rev(workflow.basedir)}; "
)

# A local run forks every job from one server process that has imported torch, xarray, escnn, … once, which saves
# each job 1.5–2.5 s of imports (src/equidyn/jobserver.py; docs/decisions.md). `local_job_server: false` turns it
# off; it is never used on a cluster, in a dry run, or under --sdm conda.
from equidyn.jobserver import start_for_workflow  # noqa: E402

JOB_SERVER = []


onstart:
    JOB_SERVER.append(
        start_for_workflow(
            workflow,
            enabled=config.get("local_job_server", True),
            src=os.path.join(workflow.basedir, "src"),
            log=os.path.join(".snakemake", "log", "equidyn-job-server.log"),
        )
    )


onsuccess:
    for server in filter(None, JOB_SERVER):
        server.stop()


onerror:
    for server in filter(None, JOB_SERVER):
        server.stop()


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/baselines.smk"
include: "rules/levels.smk"
include: "rules/rotation.smk"
include: "rules/superres.smk"
include: "rules/tutorial.smk"
include: "rules/dynamics.smk"
include: "rules/claims.smk"
include: "rules/convergence.smk"
include: "rules/scaling.smk"
include: "rules/exponax.smk"


# Tables, figures, the claims and the convergence report run on the node that runs Snakemake, not as cluster jobs:
# each reads small files (evaluation JSONs, CSVs, histories) and takes seconds, while a SLURM submission of its own
# would wait in the queue — about 30 of them, in a serial chain at the end of the run. (On a local run every job is
# local anyway.) tests/test_workflow.py checks against the cluster plan that every such rule is named here.
localrules:
    all,
    levels_data_table,
    levels_table,
    levels_summary,
    rotation_tables,
    rotation_summary,
    superres_table,
    superres_summary,
    tutorial_table,
    dynamics_table,
    convergence_study,
    convergence_table,
    claims_table,
    figure_claims,
    figure_ee_vs_data_ee,
    figure_rotation_rollout,
    figure_rotation_rmse_by_step,
    figure_superres_curves,
    figure_superres_slices,
    figure_tutorial_rotated,
    figure_tutorial_skill,
    figure_ee_vs_alpha,
    figure_lie_vs_alpha,
    figure_levels_curves,
    figure_test_rmse_bars,
    figure_hessian_density,
    figure_sharpness,
    figure_lambda_max_vs_skill,
    scaling_part,
    scaling_table,
    scaling_fits,
    figure_scaling,


STUDY_TARGETS = {
    "levels": rules.levels_all.input,
    "rotation": rules.rotation_all.input,
    "superres": rules.superres_all.input,
    "tutorial": rules.tutorial_all.input,
    "scaling": rules.scaling_all.input,
    # the exponax study's rules exist only with an exponax section (rules/exponax.smk)
    **({"exponax": rules.exponax_all.input} if "exponax" in config else {}),
}


rule all:
    default_target: True
    input:
        [STUDY_TARGETS[s] for s in W.studies()],
        # the measures and the claims read the model-grid studies' tables; a config that runs only the scaling
        # study (config/scaling.yaml) has neither
        rules.dynamics_all.input if config["dynamics"]["runs"] else [],
        rules.claims_all.input if set(W.studies()) & set(CLAIM_TABLES) else [],
        rules.convergence_all.input if CONVERGENCE_STUDIES else [],
