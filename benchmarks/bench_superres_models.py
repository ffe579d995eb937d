"""3-D super-resolution models: median train-step time (forward + backward + Adam step, L1 loss).

    .venv/bin/python benchmarks/bench_superres_models.py [--device cpu|cuda] [--sizes paper demo]
        [--models cnn3d gcnn3d rgcnn3d] [--batch 1] [--repeats 3] [--quick]

``paper``: 16³ → 64³ with the paper-scale widths (``PAPER_HIDDEN``: about 121–133k parameters each, O_h).
``demo``: 4³ → 16³ with the small widths the demo workflow trains (``DEMO_HIDDEN``), batch 4.
``--quick`` runs the demo size, batch 1, two rounds (a check that the script works). Prints a markdown table:
parameters, median seconds per step with the spread, the paired ratio to the CNN, and on CUDA each model's peak memory
(``max_memory_allocated`` over its warm-up step). The models of one size are timed interleaved, round by round,
with one torch thread unless ``--threads`` says otherwise (benchmarks/harness.py). On a CPU the process's peak RSS
only grows, so it is printed once per size, not per model.
"""

from __future__ import annotations

import argparse
import resource
import sys
import warnings
from dataclasses import replace

import harness  # benchmarks/harness.py (this script's folder is first on sys.path)

#: Widths the demo trains (tiny, so a step at 4³ → 16³ takes well under a second on a CPU core).
DEMO_HIDDEN = {"cnn3d": 8, "gcnn3d": 2, "rgcnn3d": 2}
SIZES = {"paper": (16, None, 1), "demo": (4, DEMO_HIDDEN, 4)}  # coarse grid, widths (None: paper), batch


def peak_memory_gb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def train_step(name: str, size: str, batch: int | None, device):
    """``(model, step)``: the model of ``size`` and a callable doing one train step on random data."""
    import torch

    from equidyn.models.registry import build_model
    from equidyn.models.superres3d import paper_spec

    coarse, widths, default_batch = SIZES[size]
    batch = batch or default_batch
    spec = paper_spec(name)
    if widths is not None:
        spec = replace(spec, hidden=widths[name])
    torch.manual_seed(0)
    model = build_model(spec).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 9, coarse, coarse, coarse, device=device)
    y = torch.randn(batch, 3, 4 * coarse, 4 * coarse, 4 * coarse, device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = (model(x) - y).abs().mean()
        loss.backward()
        opt.step()

    return model, step


def main() -> int:
    warnings.filterwarnings("ignore")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:0")
    p.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["demo", "paper"])
    p.add_argument("--models", nargs="+", default=["cnn3d", "gcnn3d", "rgcnn3d"])
    p.add_argument("--batch", type=int, default=None, help="override the batch size of every size")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--quick", action="store_true", help="demo size, one repeat")
    args = p.parse_args()
    import torch

    if args.quick:
        args.sizes, args.repeats, args.batch = ["demo"], 2, args.batch or 1
    harness.set_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"--device {args.device}: CUDA is not available on this machine", file=sys.stderr)
        return 2
    threads = f"{torch.get_num_threads()} threads"
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else threads
    print(f"3-D super-resolution train step (Adam, L1), float32, {device.type} ({where})\n")
    print(
        "| size | model | hidden | params | batch | grid | s per step (median) | min–max | vs first model | peak GB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    from equidyn.models.base import count_parameters
    from equidyn.models.superres3d import PAPER_HIDDEN

    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    for size in args.sizes:
        coarse, widths, default_batch = SIZES[size]
        models, steps, peaks = {}, {}, {}
        for name in args.models:
            models[name], steps[name] = train_step(name, size, args.batch, device)
            if device.type == "cuda":  # the warm-up step of each model alone gives its peak memory
                torch.cuda.reset_peak_memory_stats(device)
                steps[name]()
                peaks[name] = f"{peak_memory_gb(device):.2f}"
        times = harness.interleaved(steps, args.repeats, warmup=0 if device.type == "cuda" else 1, sync=sync)
        first = args.models[0]
        for name in args.models:
            hidden = (widths or PAPER_HIDDEN)[name]
            grid = f"{coarse}³→{4 * coarse}³"
            row = [size, name, hidden, f"{count_parameters(models[name]):,}", args.batch or default_batch, grid]
            row += [f"{harness.median(times[name]):.3f}", harness.spread(times[name])]
            row += [f"{harness.paired_ratio(times, name, first):.2f}x", peaks.get(name, "-")]
            print(harness.markdown_row(row), flush=True)
        if device.type != "cuda":
            print(f"\n(process peak RSS after {size}: {peak_memory_gb(device):.2f} GB)\n", flush=True)
        del models, steps
    return 0


if __name__ == "__main__":
    sys.exit(main())
