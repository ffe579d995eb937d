"""Size the laptop study from measurements: one training job per model, and one measure job, at the laptop settings.

    python benchmarks/bench_laptop.py --config config/config.yaml config/laptop.yaml \\
        --store levels=/tmp/x/results/laptop/data/levels/level0.zarr --store rotation=... \\
        --jobs levels:convnet levels:e2cnn levels:rsteer rotation:e2cnn superres:gcnn3d tutorial:escnn \\
        --measure levels:rsteer --epochs 3 --out /tmp/bench-laptop

Each job runs in a fresh ``python`` (so imports and model building count, as in a workflow job), with the run's
settings exactly as the workflow builds them except ``training.epochs`` (set to ``--epochs``; the trainer reports
seconds per epoch, so a full run is ``overhead + epochs × s/epoch``). Beside every job it times
``python -c "import torch"`` (the project's yardstick, :mod:`equidyn.yardstick`) and records the job's CPU time: on a
machine shared with other work, the CPU time of a one-thread job is close to its wall time on an idle machine, and
``wall × import_idle / import_now`` is a second estimate. Prints one TSV row per job.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from equidyn.config import load_config  # noqa: E402
from equidyn.studies.catalog import study as study_module  # noqa: E402
from equidyn.workflow import MEASURE_SECTIONS  # noqa: E402
from equidyn.yardstick import torch_import_seconds  # noqa: E402


def _timed(code: str, *, threads: int = 1) -> tuple[float, float]:
    """Wall and CPU seconds (children's user + system) of ``python -c code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", f"import torch; torch.set_num_threads({threads}); {code}"],
        check=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": str(threads)},
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def first_run(section: dict, study: str, model: str) -> dict:
    key = study_module(study).DESCRIPTION.model_key
    return next(r for r in study_module(study).runs(section) if r[key] == model)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", nargs="+", required=True)
    p.add_argument("--store", action="append", default=[], help="study=path of a store made with these settings")
    p.add_argument("--jobs", nargs="*", default=[], help="study:model (tutorial: the label)")
    p.add_argument("--measure", nargs="*", default=[], help="study:model whose trained job is measured")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    stores = dict(s.split("=", 1) for s in args.store)
    out = Path(args.out)
    print("job\tepochs\twall_s\tcpu_s\ts_per_epoch\timport_torch_s\tparams", flush=True)
    for job in args.jobs + [f"{m}:measure" for m in args.measure]:
        parts = job.split(":")
        study, model = parts[0], parts[1]
        section = json.loads(json.dumps(cfg[study]))
        section["training"]["epochs"] = args.epochs
        run = first_run(section, study, model)
        settings = study_module(study).run_settings(section, run)
        run_dir = out / study_module(study).DESCRIPTION.run_path(run)
        imp = torch_import_seconds(sys.executable, repeats=2)
        if len(parts) == 2:
            kw = {k: (float(v) if k == "alpha" else v) for k, v in run.items()}
            code = (
                f"from equidyn.studies.catalog import study; import json; "
                f"study({study!r}).train_run(json.loads({json.dumps(settings)!r}), {stores[study]!r}, "
                f"{str(run_dir)!r}, **{kw!r})"
            )
            wall, cpu = _timed(code)
            summary = json.loads((run_dir / "train.json").read_text())
            print(
                f"{job}\t{summary['epochs_run']}\t{wall:.1f}\t{cpu:.1f}\t{summary['seconds_per_epoch']:.2f}"
                f"\t{imp:.2f}\t{summary['params']}",
                flush=True,
            )
            continue
        for measure in MEASURE_SECTIONS:
            dyn = {k: cfg["dynamics"][k] for k in MEASURE_SECTIONS[measure]}
            msettings = {"run": settings, "dynamics": dyn}
            code = (
                f"from equidyn.studies.dynamics import measure; import json; "
                f"measure({study!r}, {measure!r}, json.loads({json.dumps(msettings)!r}), {stores[study]!r}, "
                f"{str(run_dir / 'best.pt')!r}, {str(run_dir / f'{measure}_best.json')!r})"
            )
            wall, cpu = _timed(code)
            print(f"{study}:{model}:{measure}\t-\t{wall:.1f}\t{cpu:.1f}\t-\t{imp:.2f}\t-", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
