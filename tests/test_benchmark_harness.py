"""The benchmark harness: variants interleaved with alternating order, paired ratios, one thread by default."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import harness  # noqa: E402
import run_all  # noqa: E402


def test_variants_are_interleaved_with_alternating_order() -> None:
    calls: list[str] = []
    variants = {name: (lambda n=name: calls.append(n)) for name in ("a", "b", "c")}
    times = harness.interleaved(variants, repeats=3, warmup=1)
    assert calls == ["a", "b", "c", "a", "b", "c", "c", "b", "a", "a", "b", "c"]
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}


def test_paired_ratio_is_the_median_of_per_round_ratios() -> None:
    # the machine's load changes from round to round (x1, x10, x3); within a round both variants see it
    times = {"a": [1.0, 10.0, 3.0, 1.0, 10.0], "b": [2.0, 20.0, 6.0, 2.5, 30.0]}
    assert harness.paired_ratio(times, "b", "a") == pytest.approx(2.0)  # ratios 2, 2, 2, 2.5, 3
    assert harness.spread(times["a"]) == "1–10"


def test_every_benchmark_takes_threads_and_defaults_to_one() -> None:
    for script, _, quick in run_all.BENCHMARKS:
        if script == "bench_turbulence.py":  # compares thread counts on purpose: default [1, all]; run_all passes 1
            continue
        text = (ROOT / "benchmarks" / script).read_text()
        match = re.search(r'"--threads", type=int, (nargs="\+", )?default=([^,)]+)', text)
        assert match, f"{script} has no --threads option"
        assert match.group(2) in ("1", "[1]"), f"{script}: --threads defaults to {match.group(2)}"
        assert "--threads" not in quick  # run_all passes its own --threads to every script
    env = harness.single_thread_env({"PATH": "/bin"})
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1" and env["PATH"] == "/bin"
