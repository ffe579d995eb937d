"""The demo's wall time, next to the machine's ``import torch`` time as a yardstick.

    .venv/bin/python benchmarks/bench_demo.py [--directory /tmp/equidyn-demo-bench] [--cores 2] [--keep]

Runs the README's demo (``snakemake --profile profiles/local all``) from scratch in a scratch directory, then
prints and appends to ``benchmarks/out/demo_wall.tsv`` one row: wall time, median ``import torch`` time, their
ratio, the number of jobs and the sum of their benchmark times. The 10-minute demo budget is a goal measured
here, not an assertion in the test suite (machine speed varies by 2× or more; see ``equidyn.yardstick``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "out" / "demo_wall.tsv"


def main() -> int:
    from equidyn.lineage import git_rev
    from equidyn.yardstick import append_records, demo_record, format_record, torch_import_seconds

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--directory", type=Path, default=None, help="scratch working directory (default: a temp dir)")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args()
    work = args.directory or Path(tempfile.mkdtemp(prefix="equidyn-demo-bench-"))
    shutil.rmtree(work / "results", ignore_errors=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    yardstick = torch_import_seconds()
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "all", "--profile", str(ROOT / "profiles" / "local"),
         "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work), "--cores", str(args.cores),
         "--configfile", str(ROOT / "config" / "demo.yaml")],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        print(out.stderr[-5000:], file=sys.stderr)
        return 1
    row = demo_record(wall, yardstick, work / "results" / "demo" / "benchmarks", "bench_demo.py", git_rev(ROOT))
    append_records(RECORD, [row])
    print("| demo wall s | import torch s | ratio | jobs | job time s |\n| --- | --- | --- | --- | --- |")
    print(f"| {row['demo_wall_s']} | {row['torch_import_s']} | {row['wall_over_torch_import']}× | {row['jobs']} | "
          f"{row['job_time_sum_s']} |")  # fmt: skip
    print(f"\n{format_record(row)}\nrecorded in {RECORD.relative_to(ROOT)}")
    if not args.keep and args.directory is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
