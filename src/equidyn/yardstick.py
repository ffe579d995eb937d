"""The demo's wall time, measured against a yardstick of the same machine, and recorded rather than asserted.

Why a yardstick: machines of the same kind differ in speed by 2× or more from one day to the next, so "the demo
takes 7 minutes" is a promise that a slow machine breaks. ``python -c "import torch"`` is dominated by the same
things that dominate a demo job (loading shared libraries, importing Python modules, single-core CPU speed), so
the ratio ``demo wall time / import-torch time`` moves much less between machines than either number does. The
end-to-end test and ``benchmarks/bench_demo.py`` both record that ratio next to the raw times; neither fails
because a machine was slow.

Imports stay light (stdlib only): the test harness and the benchmark import this before any job runs.
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

# Columns of the record file, in order; one row per timed demo run.
RECORD_FIELDS = (
    "when_utc",
    "source",
    "git_rev",
    "machine",
    "cpus",
    "demo_wall_s",
    "torch_import_s",
    "wall_over_torch_import",
    "jobs",
    "job_time_sum_s",
)


def torch_import_seconds(python: str | None = None, repeats: int = 3) -> float:
    """Median wall time of ``python -c "import torch"`` in a fresh process, over ``repeats`` runs.

    A fresh process each time, because the yardstick is the cold-start cost every Snakemake job pays; the first
    run may also warm the page cache, which is why this takes the median rather than the first or the minimum.
    """
    python = python or sys.executable
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([python, "-c", "import torch"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def job_time_sum(benchmark_dir: Path) -> tuple[int, float]:
    """``(number of jobs, sum of their wall seconds)`` from Snakemake's ``benchmark:`` files below a folder.

    The sum is the demo's work independent of how well two cores were kept busy; the wall time is what a user
    waits. Both move with machine speed, so both are recorded next to the yardstick.
    """
    files = sorted(Path(benchmark_dir).rglob("*.tsv"))
    total = 0.0
    for path in files:
        with path.open() as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        total += sum(float(row["s"]) for row in rows)
    return len(files), total


def demo_record(
    wall_s: float, torch_import_s: float, benchmark_dir: Path | None, source: str, git_rev: str
) -> dict[str, str]:
    """One row of the record file (all values as text, in ``RECORD_FIELDS`` order)."""
    jobs, job_sum = job_time_sum(benchmark_dir) if benchmark_dir is not None else (0, float("nan"))
    return {
        "when_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": source,
        "git_rev": git_rev,
        "machine": f"{platform.machine()} {platform.processor() or 'cpu'}".strip(),
        "cpus": str(os.cpu_count()),
        "demo_wall_s": f"{wall_s:.1f}",
        "torch_import_s": f"{torch_import_s:.3f}",
        "wall_over_torch_import": f"{wall_s / torch_import_s:.0f}",
        "jobs": str(jobs),
        "job_time_sum_s": f"{job_sum:.1f}",
    }


def append_records(path: Path, rows: Iterable[dict[str, str]]) -> None:
    """Append rows to a tab-separated record file, writing the header when the file is new.

    Appending (not replacing) keeps the history of runs, which is what shows a slowdown over time. A row is one
    short ``write`` of a line, so a concurrent reader sees whole rows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RECORD_FIELDS, delimiter="\t", lineterminator="\n")
        if new:
            writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in RECORD_FIELDS})


def format_record(row: dict[str, str]) -> str:
    """The one line a test or benchmark prints, so a slowdown is visible in the CI log."""
    return (
        f"demo wall time: {row['demo_wall_s']} s = {row['wall_over_torch_import']}x the machine's "
        f"`import torch` ({row['torch_import_s']} s); {row['jobs']} jobs, {row['job_time_sum_s']} s of job time"
    )
