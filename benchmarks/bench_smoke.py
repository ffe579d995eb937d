"""Smoke generation: seconds per simulation-step, batched against one plume at a time.

    .venv/bin/python benchmarks/bench_smoke.py [--grid 64] [--batches 1 10 50] [--steps 6] [--repeats 3]

PhiFlow's per-step cost on a CPU is mostly fixed overhead, so advancing many plumes along a batch dimension divides
it among them; this measures by how much. Prints a markdown table of medians over repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np


def time_batch(batch: int, grid: int, steps: int) -> float:
    from equidyn.data.smoke import PlumePhysics, PlumeSetup, simulate

    physics = PlumePhysics(
        grid=grid, inflow_radius=grid / 12.8, velocity_dt=0.5, n_steps=steps, keep_from=0, batch_size=batch
    )
    centers = np.tile([grid / 2, grid / 12.8], (batch, 1))
    forces = np.stack([np.zeros(batch), 0.005 * (np.arange(batch) + 1)], axis=1)
    simulate(PlumeSetup(centers, forces), PlumePhysics(grid=grid, n_steps=1, keep_from=0, batch_size=batch))  # warm-up
    t0 = time.perf_counter()
    simulate(PlumeSetup(centers, forces), physics)
    return (time.perf_counter() - t0) / steps


def main() -> None:
    warnings.filterwarnings("ignore")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", type=int, default=64)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 10, 50])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    import torch

    print(f"smoke generation, {args.grid}x{args.grid}, float64, torch threads {torch.get_num_threads()}\n")
    print("| plumes per batch | s per batch step (median) | s per plume-step | speed-up vs 1 |")
    print("| --- | --- | --- | --- |")
    base = None
    for batch in args.batches:
        per_step = statistics.median(time_batch(batch, args.grid, args.steps) for _ in range(args.repeats))
        per_sim = per_step / batch
        base = base or per_sim
        print(f"| {batch} | {per_step:.3f} | {per_sim:.4f} | {base / per_sim:.1f}x |")


if __name__ == "__main__":
    main()
