"""Smoke generation: seconds per simulation-step, batched against one plume at a time.

    .venv/bin/python benchmarks/bench_smoke.py [--grid 64] [--batches 1 10 50] [--steps 6] [--repeats 3] [--threads 1]

PhiFlow's per-step cost on a CPU is mostly fixed overhead, so advancing many plumes along a batch dimension divides
it among them; this measures by how much. The batch sizes are timed interleaved, round by round, after one
untimed warm-up each; the table gives medians and the paired per-round speed-up (benchmarks/harness.py).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

import harness  # benchmarks/harness.py (this script's folder is first on sys.path)


def simulation(batch: int, grid: int, steps: int):
    """A callable that simulates ``batch`` plumes for ``steps`` steps."""
    from equidyn.data.smoke import PlumePhysics, PlumeSetup, simulate

    physics = PlumePhysics(
        grid=grid, inflow_radius=grid / 12.8, velocity_dt=0.5, n_steps=steps, keep_from=0, batch_size=batch
    )
    centers = np.tile([grid / 2, grid / 12.8], (batch, 1))
    forces = np.stack([np.zeros(batch), 0.005 * (np.arange(batch) + 1)], axis=1)
    return lambda: simulate(PlumeSetup(centers, forces), physics)


def main() -> None:
    warnings.filterwarnings("ignore")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", type=int, default=64)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 10, 50])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args()
    threads = harness.set_threads(args.threads)
    print(f"smoke generation, {args.grid}x{args.grid}, float64, torch threads {threads}, {args.repeats} rounds\n")
    variants = {str(b): simulation(b, args.grid, args.steps) for b in args.batches}
    times = harness.interleaved(variants, args.repeats, warmup=1)
    print("| plumes per batch | s per batch step (median) | min–max | s per plume-step | speed-up vs 1 plume |")
    print("| --- | --- | --- | --- | --- |")
    first = str(args.batches[0])
    for batch in args.batches:
        per_step = [t / args.steps for t in times[str(batch)]]
        per_plume = harness.median(per_step) / batch
        # paired per round: (time of the first batch size per plume) / (this one per plume)
        speedup = batch * args.batches[0] ** -1 / harness.paired_ratio(times, str(batch), first)
        cells = [batch, f"{harness.median(per_step):.3f}", harness.spread(per_step), f"{per_plume:.4f}"]
        print(harness.markdown_row([*cells, f"{speedup:.1f}x"]))


if __name__ == "__main__":
    main()
