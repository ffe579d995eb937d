"""Train-step time of every registered 2-D model at paper scale (forward + backward + Adam step), as medians.

    .venv/bin/python benchmarks/bench_train_step.py [--budget 600000] [--grid 64] [--batch 8] [--repeats 5]
        [--models rgroup e2cnn ...] [--layers N] [--device cpu|cuda] [--threads N] [--quick]

Each model is sized with ``fit_hidden`` to the parameter budget (W22/BLOG: about 600k) with the rotation
benchmark's layouts (``10 vector`` in, ``1 vector`` out) and depths (config/config.yaml: 5 layers, MLP and
CLCNN 4). The loss is the MSE plus ``alpha * regularizer(x)`` (alpha 1e-4) for models that have a regulariser,
so the penalty's cost is included. Models that cannot be built as 2-D C4 models (the 3-D zoo) are skipped. The
last column compares with the E2CNN at the same budget, the comparison that docs/benchmarks.md bounds for
RGroup and RSteer (≤ 2×).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

LAYERS = {"mlp": 4, "clcnn": 4}  # config/config.yaml, rotation study; every other model: 5
DEFAULT_LAYERS = 5
ALPHA = 1e-4


def _spec(name: str, grid: int, layers: int | None):
    from equidyn.models.base import ModelSpec
    from equidyn.symmetry import FieldLayout

    return ModelSpec(
        name=name,
        in_layout=FieldLayout.parse("10 vector"),
        out_layout=FieldLayout.parse("1 vector"),
        hidden=1,
        layers=layers or LAYERS.get(name, DEFAULT_LAYERS),
        grid=(grid, grid),
        group="C4",
    )


def is_2d(name: str, grid: int) -> bool:
    """Whether ``name`` builds as a 2-D C4 model (the 3-D models reject a C4 spec)."""
    from equidyn.models.registry import build_model

    try:
        build_model(_spec(name, grid, None))
    except ValueError:
        return False
    return True


def time_steps(model, x, y, repeats: int, warmup: int, device) -> list[float]:
    """Wall-clock seconds of ``repeats`` train steps after ``warmup`` untimed ones."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=4e-4)
    use_reg = bool(getattr(model, "has_regularizer", False))

    def step() -> None:
        loss = torch.nn.functional.mse_loss(model(x), y)
        if use_reg:
            loss = loss + ALPHA * model.regularizer(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    model.train()
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    warnings.filterwarnings("ignore")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=600_000, help="parameter budget for fit_hidden")
    p.add_argument("--grid", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--layers", type=int, default=None, help="override every model's depth")
    p.add_argument("--models", nargs="+", default=None, help="only these registered names")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that the benchmark runs")
    args = p.parse_args()
    if args.quick:
        args.budget, args.grid, args.batch, args.repeats, args.warmup = 20_000, 16, 2, 1, 1

    import torch

    from equidyn.models.base import count_parameters
    from equidyn.models.registry import available_models, build_model, fit_hidden

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = [n for n in available_models() if args.models is None or n in args.models]
    unknown = set(args.models or []) - set(available_models())
    if unknown:
        raise SystemExit(f"unknown models: {sorted(unknown)}")
    names = [n for n in names if is_2d(n, args.grid)]

    print(
        f"train step (forward + backward + Adam), batch {args.batch}, {args.grid}x{args.grid}, "
        "10 vector -> 1 vector, "
        f"budget {args.budget:,}, device {device}, torch threads {torch.get_num_threads()}, "
        f"median of {args.repeats}\n"
    )
    print("| model | layers | hidden | parameters | s per step (median) | min | vs e2cnn |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 20, args.grid, args.grid, generator=gen).to(device)
    y = torch.randn(args.batch, 2, args.grid, args.grid, generator=gen).to(device)
    # E2CNN first: every row is printed as soon as it is measured, with its ratio to the E2CNN's time
    names.sort(key=lambda n: (n != "e2cnn", n))
    base = None
    for name in names:
        spec, _ = fit_hidden(_spec(name, args.grid, args.layers), args.budget)
        torch.manual_seed(0)
        model = build_model(spec).to(device)
        times = time_steps(model, x, y, args.repeats, args.warmup, device)
        med, best = statistics.median(times), min(times)
        base = med if name == "e2cnn" else base
        ratio = f"{med / base:.3g}x" if base else "-"
        n_params = count_parameters(model)
        cells = [name, spec.layers, spec.hidden, f"{n_params:,}", f"{med:.3f}", f"{best:.3f}", ratio]
        print("| " + " | ".join(map(str, cells)) + " |", flush=True)
        del model


if __name__ == "__main__":
    main()
