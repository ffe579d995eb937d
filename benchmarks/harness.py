"""Timing that holds up on a shared machine: one thread by default, variants interleaved, medians and paired ratios.

On a loaded machine (other jobs, other agents, a laptop throttling) a benchmark that times model A five times and
then model B five times measures the load as much as the models: the load drifts between the two blocks. Here
every round times each variant once, the order alternating from round to round (A B C, C B A, …), and a ratio
is the median over rounds of the *paired* ratio t_A / t_B taken within one round, so slow drift cancels. One torch
thread is the default: with two threads on a 2-core machine shared with anything else, a step waits for the slower
thread, and the spread, not the code, decides the result.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def set_threads(threads: int | None) -> int:
    """Use ``threads`` torch threads (default 1); returns the number in use."""
    import torch

    n = 1 if threads is None else int(threads)
    torch.set_num_threads(n)
    return torch.get_num_threads()


def single_thread_env(env: Mapping[str, str] | None = None, threads: int = 1) -> dict[str, str]:
    """``env`` (default: this process's) with the BLAS/OpenMP thread counts a child benchmark process should use."""
    out = dict(os.environ if env is None else env)
    out.update({name: str(threads) for name in THREAD_ENV})
    return out


def interleaved(
    variants: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each variant, ``repeats`` rounds, each round timing every variant once.

    ``warmup`` untimed calls of each variant come first (allocator, kernel selection, optimiser state). ``sync``
    (e.g. ``torch.cuda.synchronize``) runs before and after each timed call, so asynchronous work is counted.
    """
    names = list(variants)
    for name in names:
        for _ in range(warmup):
            variants[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else reversed(names):
            if sync:
                sync()
            t0 = time.perf_counter()
            variants[name]()
            if sync:
                sync()
            times[name].append(time.perf_counter() - t0)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def paired_ratio(times: Mapping[str, list[float]], name: str, base: str) -> float:
    """Median over rounds of ``times[name][r] / times[base][r]``: the load of round ``r`` cancels."""
    return statistics.median(a / b for a, b in zip(times[name], times[base], strict=True))


def spread(values: list[float]) -> str:
    """``min–max`` of the timed calls, to show how much the machine moved during the measurement."""
    return f"{min(values):.3g}–{max(values):.3g}"


def markdown_row(cells: list[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"
