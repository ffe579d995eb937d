"""Run every benchmark in this folder and print their markdown tables, with the wall time of each.

    .venv/bin/python benchmarks/run_all.py [--quick] [--threads N]

Each benchmark is also runnable on its own (see its docstring). Results are recorded, with the machine, in
docs/benchmarks.md. Every benchmark runs with one thread unless ``--threads`` says otherwise (torch and the
BLAS/OpenMP pools of the child process), and compares its variants interleaved round by round, with medians and
paired ratios (benchmarks/harness.py), so a shared, loaded machine moves the absolute times but not the ratios.
``--quick`` runs tiny sizes and few repeats: a check that every benchmark works, not a measurement.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

import harness  # benchmarks/harness.py (this script's folder is first on sys.path)

HERE = Path(__file__).resolve().parent

# (script, default args, quick args); each script takes --threads
BENCHMARKS = [
    ("bench_smoke.py", [], ["--grid", "16", "--batches", "1", "2", "--steps", "1", "--repeats", "1"]),
    ("bench_train_step.py", [], ["--quick"]),
    (
        "bench_hessian.py",
        [],
        [
            "--hidden",
            "4",
            "--samples",
            "4",
            "--grid",
            "8",
            "--batch",
            "4",
            "--top-k",
            "2",
            "--probes",
            "2",
            "--repeats",
            "1",
        ],
    ),
    ("bench_superres_models.py", [], ["--quick"]),
    ("bench_turbulence.py", [], ["--sizes", "16", "--repeats", "1", "--steps", "2"]),
    # issue 14: a job's fixed cost vs `import torch`; paper-size steps fp32 vs bf16 (on a GPU when there is one)
    ("bench_job_overhead.py", [], ["--quick"]),
    ("gpu_paper_step.py", [], ["--device", "cpu", "--quick"]),
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that every benchmark runs")
    p.add_argument("--threads", type=int, default=1, help="threads per benchmark (default 1)")
    p.add_argument("--only", nargs="+", default=None, help="run only these scripts (e.g. bench_hessian.py)")
    args = p.parse_args()
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}")
    print(f"threads per benchmark: {args.threads}\n")
    env = harness.single_thread_env(threads=args.threads)
    failures, walls = 0, {}
    for script, default, quick in BENCHMARKS:
        path = HERE / script
        if not path.exists() or (args.only and script not in args.only):
            continue
        print(f"## {script}\n", flush=True)
        t0 = time.perf_counter()
        cmd = [sys.executable, str(path), *(quick if args.quick else default), "--threads", str(args.threads)]
        out = subprocess.run(cmd, env=env)
        walls[script] = time.perf_counter() - t0
        failures += out.returncode != 0
        print(f"\n({script}: {walls[script]:.1f} s wall{', FAILED' if out.returncode else ''})\n", flush=True)
    print("| benchmark | wall s |\n| --- | --- |")
    for script, wall in walls.items():
        print(f"| {script} | {wall:.1f} |")
    print(f"| total | {sum(walls.values()):.1f} |")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
