"""3-D super-resolution models: median train-step time (forward + backward + Adam step, L1 loss).

    .venv/bin/python benchmarks/bench_superres_models.py [--device cpu|cuda] [--sizes paper demo]
        [--models cnn3d gcnn3d rgcnn3d] [--batch 1] [--repeats 3] [--quick]

``paper``: 16³ → 64³ with the paper-scale widths (``PAPER_HIDDEN``: about 121–133k parameters each, O_h).
``demo``: 4³ → 16³ with the small widths the demo workflow trains (``DEMO_HIDDEN``), batch 4.
``--quick`` runs the demo size once (a check that the script works). Prints a markdown table: parameters,
median seconds per step, peak memory (CUDA: ``max_memory_allocated``; CPU: the process's peak RSS, which
only grows, so run one size per process for a clean CPU number).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import warnings
from dataclasses import replace

#: Widths the demo trains (tiny, so a step at 4³ → 16³ takes well under a second on a CPU core).
DEMO_HIDDEN = {"cnn3d": 8, "gcnn3d": 2, "rgcnn3d": 2}
SIZES = {"paper": (16, None, 1), "demo": (4, DEMO_HIDDEN, 4)}  # coarse grid, widths (None: paper), batch


def peak_memory_gb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def time_model(name: str, size: str, batch: int | None, repeats: int, device) -> tuple[int, float, float]:
    import torch

    from equidyn.models.base import count_parameters
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
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = (model(x) - y).abs().mean()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    step()  # warm-up: allocator, kernel selection, Adam state
    times = [step() for _ in range(repeats)]
    return count_parameters(model), statistics.median(times), peak_memory_gb(device)


def main() -> int:
    warnings.filterwarnings("ignore")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:0")
    p.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["demo", "paper"])
    p.add_argument("--models", nargs="+", default=["cnn3d", "gcnn3d", "rgcnn3d"])
    p.add_argument("--batch", type=int, default=None, help="override the batch size of every size")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quick", action="store_true", help="demo size, one repeat")
    args = p.parse_args()
    import torch

    if args.quick:
        args.sizes, args.repeats = ["demo"], 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"--device {args.device}: CUDA is not available on this machine", file=sys.stderr)
        return 2
    threads = f"{torch.get_num_threads()} threads"
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else threads
    print(f"3-D super-resolution train step (Adam, L1), float32, {device.type} ({where})\n")
    print("| size | model | hidden | params | batch | grid | s per step (median) | peak memory GB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        coarse, widths, default_batch = SIZES[size]
        for name in args.models:
            from equidyn.models.superres3d import PAPER_HIDDEN

            hidden = (widths or PAPER_HIDDEN)[name]
            params, seconds, mem = time_model(name, size, args.batch, args.repeats, device)
            grid = f"{coarse}³→{4 * coarse}³"
            batch = args.batch or default_batch
            row = [size, name, hidden, f"{params:,}", batch, grid, f"{seconds:.3f}", f"{mem:.2f}"]
            print("| " + " | ".join(str(v) for v in row) + " |")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
