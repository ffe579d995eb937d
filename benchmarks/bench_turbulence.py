"""Wall time per RK4 step of the offline turbulence solver (equidyn.data.turbulence) at 32³ and 64³.

Usage: ``python benchmarks/bench_turbulence.py [--sizes 32 64] [--repeats 5] [--steps 10] [--threads 1 2]``

Each repeat times ``--steps`` consecutive steps of a developed random field (after one warm-up step) and
reports seconds per step; the median over repeats is printed per size and thread count, together with the
CFL step at k_max η = 1 and the resulting cost per unit of simulated time. Thread counts matter: on a shared
machine oversubscribed FFT threads are much slower than one thread, so the workflow should give the solver
the cores its job owns (``generate_offline(..., threads=...)``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from equidyn.data.turbulence import OfflineTurbulenceSettings, make_solver, torch_threads


def seconds_per_step(n: int, steps: int, repeats: int) -> tuple[float, float, list[float]]:
    """(median s/step, CFL dt of the field, all repeats) for an ``n³`` grid with the default settings."""
    settings = OfflineTurbulenceSettings(n=n)
    solver = make_solver(settings)
    uh = solver.initial_condition(settings.seed, settings.initial_energy, settings.initial_peak_k)
    dt = solver.cfl_dt(solver.to_physical(uh), settings.cfl)
    uh, _ = solver.step(uh, dt)  # warm-up: FFT plans, allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            uh, _ = solver.step(uh, dt)
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times), dt, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, torch.get_num_threads()])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, default threads {torch.get_num_threads()}")
    print(f"{'n':>4} {'threads':>7} {'median s/step':>14} {'min':>8} {'max':>8} {'CFL dt':>8} {'s per unit time':>16}")
    for threads in dict.fromkeys(args.threads):
        with torch_threads(threads):
            for n in args.sizes:
                med, dt, all_t = seconds_per_step(n, args.steps, args.repeats)
                print(
                    f"{n:>4} {threads:>7} {med:>14.4f} {min(all_t):>8.4f} {max(all_t):>8.4f} {dt:>8.4f} "
                    f"{med / dt:>16.2f}"
                )


if __name__ == "__main__":
    main()
