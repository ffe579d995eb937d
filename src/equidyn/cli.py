"""The ``equidyn`` command line: one subcommand per Snakemake rule, each a thin call into the package.

Rules pass their config section as JSON (``--settings '{...}'``), so a job depends only on its own settings and
Snakemake's params trigger reruns exactly when they change. Heavy imports (torch, escnn, phiflow) happen inside
the called functions, so ``equidyn --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

Arg = tuple[str, dict[str, Any]]


def _json(text: str) -> Any:
    if text.startswith("@"):
        with open(text[1:]) as fh:
            return json.load(fh)
    return json.loads(text)


SETTINGS: Arg = ("--settings", {"type": _json, "required": True, "help": "config section as JSON (or @file)"})
OUT: Arg = ("--out", {"required": True})
THREADS: Arg = ("--threads", {"type": int, "default": None, "help": "torch intra-op threads"})


def _a(name: str, **kw: Any) -> Arg:
    return (name, kw)


# name -> (target "module:function", arguments, help). Argument dests map 1:1 onto the function's parameters.
COMMANDS: dict[str, tuple[str, list[Arg], str]] = {
    "validate-config": (
        "equidyn.config:cli_validate",
        [_a("files", nargs="+")],
        "validate YAML config files (merged in order) against config/schema.yaml",
    ),
    "levels-base": (
        "equidyn.studies.levels:generate_base",
        [SETTINGS, OUT],
        "simulate the level study's base plumes",
    ),
    "levels-level": (
        "equidyn.studies.levels:build_level",
        [SETTINGS, _a("--base", required=True), _a("--level", type=int, required=True), OUT],
        "build one level dataset from the base plumes",
    ),
    "levels-data-ee": (
        "equidyn.studies.levels:data_ee",
        [_a("--store", required=True), OUT, _a("--frames", type=int, nargs=2, default=None)],
        "data equivariance error of one level over the stored frames [start:stop] (default: published [10:-1])",
    ),
    "levels-train": (
        "equidyn.studies.levels:train_run",
        [
            SETTINGS,
            _a("--store", required=True),
            _a("--model", required=True),
            _a("--alpha", type=float, required=True),
            _a("--level", type=int, required=True),
            _a("--seed", type=int, required=True),
            _a("--run-dir", required=True),
            THREADS,
        ],
        "train one (model, alpha, level, seed) run",
    ),
    "levels-data-table": (
        "equidyn.studies.levels:data_table",
        [_a("--data-ee-files", nargs="+", required=True), OUT, SETTINGS],
        "tables/data_equivariance.csv",
    ),
    "levels-table": (
        "equidyn.studies.levels:levels_table",
        [_a("--eval-files", nargs="+", required=True), _a("--data-table-path", required=True), OUT],
        "tables/levels.csv",
    ),
    "scaling-train": (
        "equidyn.studies.scaling:train_run",
        [
            SETTINGS,
            _a("--store", required=True),
            _a("--model", required=True),
            _a("--alpha", type=float, required=True),
            _a("--level", type=int, required=True),
            _a("--size", type=int, required=True),
            _a("--fraction", type=float, required=True),
            _a("--seed", type=int, required=True),
            _a("--run-dir", required=True),
            THREADS,
        ],
        "train one (model, alpha, level, size, fraction, seed) run of the scaling study",
    ),
    "scaling-part": (
        "equidyn.studies.scaling:part_table",
        [
            SETTINGS,
            _a("--sweep", required=True),
            _a("--level", type=int, required=True),
            _a("--root", required=True),
            OUT,
        ],
        "one part of the scaling study (a sweep at one level): its runs' rows",
    ),
    "scaling-table": (
        "equidyn.studies.scaling:study_table",
        [_a("--parts", nargs="+", required=True), OUT, _a("--settings", type=_json, default=None)],
        "tables/scaling.csv: every run of the scaling study once (with --settings: each part checked against it)",
    ),
    "scaling-fits": (
        "equidyn.studies.scaling_analysis:analyse",
        [
            _a("--scaling-csv", required=True),
            _a("--fits-out", required=True),
            _a("--gaps-out", required=True),
            _a("--curves-out", required=True),
            _a("--n-resamples", type=int, default=999),
        ],
        "tables/scaling_fits.csv (L_inf + A x^-alpha per arm, level and axis, bootstrap CIs) and scaling_gaps.csv",
    ),
    "figure-scaling": (
        "equidyn.figures.scaling:scaling_figure",
        [_a("--scaling-csv", required=True), _a("--curves-csv", required=True), _a("--axis", required=True), OUT],
        "test error against parameters, data or compute (log-log, fits with bands)",
    ),
    "baseline": (
        "equidyn.studies.baseline_job:compute",
        [_a("--study", required=True), SETTINGS, _a("--store", required=True), OUT, THREADS],
        "score a study's trivial baseline (persistence, interpolated input) on its test splits, once per store",
    ),
    "convergence": (
        "equidyn.studies.convergence:study_table",
        [_a("--study", required=True), SETTINGS, _a("--root", required=True), OUT, _a("--figure", default=None)],
        "one study's convergence rows (validation loss change over the last 20% of epochs) and learning curves",
    ),
    "convergence-table": (
        "equidyn.studies.convergence:combine",
        [_a("--tables", nargs="+", required=True), OUT],
        "tables/convergence.csv: every study's convergence rows",
    ),
    "publish-findings": (
        "equidyn.findings:publish",
        [
            _a("--results", required=True, help="one run's directory, e.g. results/laptop"),
            _a("--docs", default="docs"),
            _a("--page", help="publish as docs/findings/<page>.md beside docs/findings.md (e.g. heldout)"),
            _a("--include-page", action="append", help="a published page whose claims join docs/findings/claims.csv"),
        ],
        "docs/findings.md, docs/findings/*.csv and docs/img/findings/*.png from a finished run",
    ),
    "publish-scaling": (
        "equidyn.findings_scaling:publish",
        [
            _a("--results", required=True, help="the scaling run's directory, e.g. results/scaling"),
            _a("--docs", default="docs"),
        ],
        "docs/findings/scaling.md, its tables and figures from a finished scaling run",
    ),
    "scaling-probe": (
        "equidyn.scaling_probe:probe",
        [
            _a("--config", nargs="+", required=True),
            _a("--grid", type=int, required=True),
            OUT,
            _a("--steps", type=int, default=3),
        ],
        "peak memory and seconds per step of every (arm, size) of a scaling config (cluster requests)",
    ),
    "scaling-probe-one": (
        "equidyn.scaling_probe:probe_one",
        [
            _a("--entry", required=True),
            _a("--budget", type=int, required=True),
            _a("--grid", type=int, required=True),
            _a("--input-frames", type=int, required=True),
            _a("--batch", type=int, required=True),
            _a("--steps", type=int, required=True),
        ],
        "one (arm, size) of scaling-probe, in its own process",
    ),
    "levels-summary": (
        "equidyn.studies.levels:summary_table",
        [
            _a("--levels-csv", required=True),
            _a("--baselines", nargs="+", default=None, help="baseline JSONs (analysis/baselines/)"),
            OUT,
        ],
        "tables/levels_summary.csv: mean and 95% CI over seeds",
    ),
    "rotation-data": (
        "equidyn.studies.rotation:generate",
        [SETTINGS, OUT],
        "simulate the rotation dataset (36 plumes, four directions)",
    ),
    "rotation-train": (
        "equidyn.studies.rotation:train_run",
        [
            SETTINGS,
            _a("--store", required=True),
            _a("--model", required=True),
            _a("--alpha", type=float, required=True),
            _a("--seed", type=int, required=True),
            _a("--run-dir", required=True),
            THREADS,
        ],
        "train and evaluate one (model, alpha, seed) run of the rotation benchmark",
    ),
    "rotation-benchmark-table": (
        "equidyn.studies.rotation:benchmark_table",
        [_a("--eval-files", nargs="+", required=True), OUT],
        "tables/rotation_benchmark.csv",
    ),
    "rotation-by-step-table": (
        "equidyn.studies.rotation:by_step_table",
        [_a("--eval-files", nargs="+", required=True), OUT],
        "tables/rotation_by_step.csv",
    ),
    "rotation-summary-table": (
        "equidyn.studies.rotation:summary_table",
        [
            _a("--benchmark-csv", required=True),
            _a("--baselines", nargs="+", default=None, help="baseline JSONs (analysis/baselines/)"),
            OUT,
        ],
        "tables/rotation_summary.csv",
    ),
    "figure-rotation-rollout": (
        "equidyn.figures.rotation:rollout",
        [_a("--example-files", nargs="+", required=True), OUT],
        "figures/rotation_rollout.pdf",
    ),
    "figure-rotation-rmse-by-step": (
        "equidyn.figures.rotation:rmse_by_step",
        [_a("--by-step-csv", required=True), OUT],
        "figures/rotation_rmse_by_step.pdf",
    ),
    "tutorial-turbulence": (
        "equidyn.studies.tutorial:turbulence",
        [SETTINGS, OUT, THREADS],
        "the tutorial's offline turbulence of one flow (optionally on an f-plane)",
    ),
    "tutorial-builtin": (
        "equidyn.studies.tutorial:builtin",
        [SETTINGS, _a("--turbulence", required=True), OUT],
        "the built-in tutorial NetCDF from horizontal slices of the turbulence data",
    ),
    "tutorial-prepare": (
        "equidyn.studies.tutorial:prepare",
        [SETTINGS, _a("--source", required=True), OUT],
        "validate the tutorial input file, compute flux targets, split and store",
    ),
    "tutorial-train": (
        "equidyn.studies.tutorial:train_run",
        [
            SETTINGS,
            _a("--store", required=True),
            _a("--flow", required=True),
            _a("--label", required=True),
            _a("--seed", type=int, required=True),
            _a("--run-dir", required=True),
            THREADS,
        ],
        "train one tutorial model and test it on rotated and mirrored data",
    ),
    "tutorial-table": (
        "equidyn.studies.tutorial:table",
        [
            _a("--eval-files", nargs="+", required=True),
            _a("--stores", nargs="+", required=True),
            OUT,
            _a("--ceiling-out", required=True),
        ],
        "tables/tutorial.csv",
    ),
    "figure-tutorial-rotated": (
        "equidyn.figures.tutorial:rotated",
        [_a("--example-files", nargs="+", required=True), OUT],
        "figures/tutorial_rotated.pdf",
    ),
    "figure-tutorial-skill": (
        "equidyn.figures.tutorial:skill",
        [_a("--table-csv", required=True), _a("--ceiling-csv", required=True), OUT],
        "figures/tutorial_skill.pdf",
    ),
    "superres-data": (
        "equidyn.studies.superres:data",
        [SETTINGS, OUT, THREADS],
        "make the turbulence store (offline solver or JHTDB download)",
    ),
    "superres-train": (
        "equidyn.studies.superres:train_run",
        [
            SETTINGS,
            _a("--store", required=True),
            _a("--model", required=True),
            _a("--alpha", type=float, required=True),
            _a("--seed", type=int, required=True),
            _a("--run-dir", required=True),
            THREADS,
        ],
        "train and evaluate one (model, alpha, seed) super-resolution run",
    ),
    "superres-table": (
        "equidyn.studies.superres:table",
        [_a("--eval-files", nargs="+", required=True), OUT],
        "tables/superres.csv",
    ),
    "superres-summary-table": (
        "equidyn.studies.superres:summary_table",
        [
            _a("--superres-csv", required=True),
            _a("--baselines", nargs="+", default=None, help="baseline JSONs (analysis/baselines/)"),
            OUT,
        ],
        "tables/superres_summary.csv",
    ),
    "figure-superres-curves": (
        "equidyn.figures.superres:learning_curves",
        [_a("--history-files", nargs="+", required=True), OUT],
        "figures/superres_curves.pdf",
    ),
    "figure-superres-slices": (
        "equidyn.figures.superres:slices",
        [_a("--example-files", nargs="+", required=True), OUT],
        "figures/superres_slices.pdf",
    ),
    "measure": (
        "equidyn.studies.dynamics:measure",
        [
            _a("--study", required=True),
            _a("--measure", required=True),
            SETTINGS,
            _a("--store", required=True),
            _a("--checkpoint", required=True),
            OUT,
            THREADS,
        ],
        "one training-dynamics measure (lie, sharpness, hessian) of one checkpoint",
    ),
    "dynamics-table": (
        "equidyn.studies.dynamics:table",
        [_a("--measure-files", nargs="+", required=True), _a("--eval-files", nargs="+", required=True), OUT],
        "tables/dynamics.csv",
    ),
    "figure-ee-vs-alpha": (
        "equidyn.figures.dynamics:ee_vs_alpha",
        [_a("--levels-csv", required=True), OUT],
        "figures/ee_vs_alpha.pdf",
    ),
    "figure-lie-vs-alpha": (
        "equidyn.figures.dynamics:lie_vs_alpha",
        [_a("--dynamics-csv", required=True), OUT],
        "figures/lie_vs_alpha.pdf",
    ),
    "figure-levels-curves": (
        "equidyn.figures.dynamics:levels_curves",
        [_a("--history-files", nargs="+", required=True), OUT],
        "figures/levels_curves.pdf",
    ),
    "figure-test-rmse-bars": (
        "equidyn.figures.dynamics:test_rmse_bars",
        [_a("--levels-csv", required=True), OUT],
        "figures/test_rmse_bars.pdf",
    ),
    "figure-hessian-density": (
        "equidyn.figures.dynamics:hessian_density",
        [_a("--hessian-files", nargs="+", required=True), OUT],
        "figures/hessian_density.pdf",
    ),
    "figure-sharpness": (
        "equidyn.figures.dynamics:sharpness",
        [_a("--dynamics-csv", required=True), OUT],
        "figures/sharpness.pdf",
    ),
    "figure-lambda-max-vs-skill": (
        "equidyn.figures.dynamics:lambda_max_vs_skill",
        [
            _a("--dynamics-csv", required=True),
            OUT,
            _a("--levels-summary-csv", help="derive the skill of a dynamics table that lacks it (before issue 20)"),
        ],
        "figures/lambda_max_vs_skill.pdf",
    ),
    "figure-ee-vs-data-ee": (
        "equidyn.figures.levels:ee_vs_data_ee",
        [_a("--levels-csv", required=True), _a("--data-csv", required=True), OUT],
        "figures/ee_vs_data_ee.pdf",
    ),
    "claims": (
        "equidyn.studies.claims:claims_table",
        [
            _a("--levels-csv"),
            _a("--dynamics-csv"),
            _a("--superres-csv"),
            _a("--rotation-csv"),
            _a("--tutorial-csv"),
            _a("--exponax-csv"),
            _a("--levels-protocol", default="time", choices=["time", "heldout"]),
            OUT,
        ],
        "tables/claims.csv: every claim the run's tables can test, paired across seeds with a 95% CI",
    ),
    "figure-claims": (
        "equidyn.figures.claims:forest",
        [_a("--claims-csv", required=True), OUT],
        "figures/claims.pdf (forest plot of the claims table)",
    ),
    "exponax-data": (
        "equidyn.studies.exponax:generate",
        [SETTINGS, _a("--flow", required=True, choices=["decaying", "kolmogorov"]), OUT],
        "simulate one exponax flow's trajectories into a store (exponax.flows.<flow> as --settings)",
    ),
    "exponax-symmetry": (
        "equidyn.studies.exponax:symmetry",
        [_a("--store", required=True), OUT, _a("--trajectories", type=int, nargs="+", default=None)],
        "an exponax store's symmetry check: simulate-then-act against act-then-simulate per D4 element, data EE",
    ),
    "exponax-data-table": (
        "equidyn.studies.exponax:data_table",
        [_a("--symmetry-files", nargs="+", required=True), OUT, SETTINGS],
        "tables/exponax_data_equivariance.csv",
    ),
    "exponax-train": (
        "equidyn.studies.exponax_study:train_run",
        [
            SETTINGS,
            _a("--store", required=True),
            _a("--model", required=True),
            _a("--alpha", type=float, required=True),
            _a("--flow", required=True, choices=["decaying", "kolmogorov"]),
            _a("--seed", type=int, required=True),
            _a("--run-dir", required=True),
            THREADS,
        ],
        "train one (model, alpha, flow, seed) run of the exponax study",
    ),
    "exponax-table": (
        "equidyn.studies.exponax_tables:runs_table",
        [
            _a("--eval-files", nargs="+", required=True),
            _a("--mirror-files", nargs="+", required=True),
            _a("--data-table-path", required=True),
            OUT,
        ],
        "tables/exponax.csv: one row per evaluated checkpoint of the exponax study",
    ),
    "exponax-summary": (
        "equidyn.studies.exponax_tables:summary_table",
        [
            _a("--exponax-csv", required=True),
            _a("--baselines", nargs="+", default=None, help="baseline JSONs (analysis/baselines/exponax/)"),
            OUT,
        ],
        "tables/exponax_summary.csv: mean and 95% CI over seeds, skill over both trivial forecasts",
    ),
    "figure-exponax": (
        "equidyn.figures.exponax:exponax_figure",
        [_a("--summary-csv", required=True), _a("--exponax-csv", required=True), OUT],
        "figures/exponax.pdf: test RMSE against the trivial forecasts, and C4/mirror EE, per flow and arm",
    ),
}


def _resolve(target: str) -> Callable[..., Any]:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def _accepts(func: Callable[..., Any], name: str) -> bool:
    """Whether ``func`` has a parameter ``name`` (so ``--threads`` reaches functions that bound their own threads)."""
    import inspect

    return name in inspect.signature(func).parameters


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="equidyn", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (target, args, help_text) in COMMANDS.items():
        # argparse %-formats help strings; the texts are plain prose ("95% CI"), so a % is a literal
        p = sub.add_parser(name, help=help_text.replace("%", "%%"), description=help_text.replace("%", "%%"))
        p.set_defaults(_target=target)
        for flag, kw in args:
            p.add_argument(flag, **{**kw, "help": kw["help"].replace("%", "%%")} if "help" in kw else kw)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # a job started by the shell: run it in the local job server if the workflow started one
        from equidyn.jobserver import delegate

        code = delegate(sys.argv[1:])
        if code is not None:
            return code
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    kwargs = {k: v for k, v in vars(args).items() if k not in ("command", "verbose", "_target")}
    target = _resolve(args._target)
    if kwargs.get("threads"):  # a torch job: training, measures, data
        import torch

        torch.set_num_threads(kwargs["threads"])
    if "threads" in kwargs and not _accepts(target, "threads"):
        del kwargs["threads"]  # the job's threads are applied above; a function that takes them gets them too
    t0 = time.perf_counter()
    target(**kwargs)
    logging.getLogger("equidyn").info("%s finished in %.1f s", args.command, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
