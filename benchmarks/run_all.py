"""Run every benchmark in this folder with its defaults and print their markdown tables.

    .venv/bin/python benchmarks/run_all.py [--quick]

Each benchmark is also runnable on its own (see its docstring). Results are recorded, with the machine, in
docs/benchmarks.md; timings are medians over repeats, measured on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (script, default args, quick args)
BENCHMARKS = [
    ("bench_smoke.py", [], ["--grid", "32", "--batches", "1", "8", "--steps", "3", "--repeats", "1"]),
    ("bench_train_step.py", [], ["--quick"]),
    (
        "bench_hessian.py",
        [],
        ["--hidden", "8", "--samples", "8", "--grid", "16", "--top-k", "2", "--probes", "4", "--repeats", "1"],
    ),
    ("bench_superres_models.py", [], ["--quick"]),
    ("bench_turbulence.py", [], ["--sizes", "16", "--repeats", "1", "--steps", "2", "--threads", "1"]),
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that every benchmark runs")
    args = p.parse_args()
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}\n")
    failures = 0
    for script, default, quick in BENCHMARKS:
        path = HERE / script
        if not path.exists():
            continue
        print(f"## {script}\n", flush=True)
        out = subprocess.run([sys.executable, str(path), *(quick if args.quick else default)])
        failures += out.returncode != 0
        print(flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
