"""Train-step time of every registered 2-D model at paper scale (forward + backward + Adam step), as medians.

    .venv/bin/python benchmarks/bench_train_step.py [--budget 600000] [--grid 64] [--batch 8] [--repeats 5]
        [--models rgroup e2cnn ...] [--layers N] [--device cpu|cuda] [--threads N] [--quick]

Each model is sized with ``fit_hidden`` to the parameter budget (W22/BLOG: about 600k) with the rotation
benchmark's layouts (``10 vector`` in, ``1 vector`` out) and depths (config/config.yaml: 5 layers, MLP and
CLCNN 4). The loss is the MSE plus ``alpha * regularizer(x)`` (alpha 1e-4) for models that have a regulariser,
so the penalty's cost is included. Models that cannot be built as 2-D C4 models (the 3-D zoo) are skipped. The
last column compares with the E2CNN at the same budget, the comparison that docs/benchmarks.md bounds for
RGroup and RSteer (≤ 2×).

Robust on a shared machine (benchmarks/harness.py): one torch thread unless ``--threads`` says otherwise, the
models' steps interleaved round by round, and the ratio to E2CNN the median of per-round paired ratios.
"""

from __future__ import annotations

import argparse
import warnings

import harness  # benchmarks/harness.py (this script's folder is first on sys.path)

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


def train_step(model, x, y):
    """One train step (forward, loss with the penalty if the model has one, backward, Adam) as a callable."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=4e-4)
    use_reg = bool(getattr(model, "has_regularizer", False))
    model.train()

    def step() -> None:
        loss = torch.nn.functional.mse_loss(model(x), y)
        if use_reg:
            loss = loss + ALPHA * model.regularizer(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


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
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: stable on a shared machine)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that the benchmark runs")
    args = p.parse_args()
    if args.quick:
        args.budget, args.grid, args.batch, args.repeats, args.warmup = 5_000, 16, 2, 2, 1
        args.models = args.models or ["convnet", "e2cnn", "rsteer", "rgroup"]

    import torch

    from equidyn.models.base import count_parameters
    from equidyn.models.registry import available_models, build_model, fit_hidden

    threads = harness.set_threads(args.threads)
    device = torch.device(args.device)
    names = [n for n in available_models() if args.models is None or n in args.models]
    unknown = set(args.models or []) - set(available_models())
    if unknown:
        raise SystemExit(f"unknown models: {sorted(unknown)}")
    names = [n for n in names if is_2d(n, args.grid)]

    print(
        f"train step (forward + backward + Adam), batch {args.batch}, {args.grid}x{args.grid}, "
        "10 vector -> 1 vector, "
        f"budget {args.budget:,}, device {device}, torch threads {threads}, "
        f"{args.repeats} interleaved rounds after {args.warmup} warm-up step(s)\n"
    )
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 20, args.grid, args.grid, generator=gen).to(device)
    y = torch.randn(args.batch, 2, args.grid, args.grid, generator=gen).to(device)
    names.sort(key=lambda n: (n != "e2cnn", n))
    models, steps = {}, {}
    for name in names:
        # --quick: a fixed width (fitting a budget builds each model three more times)
        spec = _spec(name, args.grid, args.layers).with_hidden(2) if args.quick else None
        spec = spec or fit_hidden(_spec(name, args.grid, args.layers), args.budget)[0]
        torch.manual_seed(0)
        models[name] = build_model(spec).to(device)
        steps[name] = train_step(models[name], x, y)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
    times = harness.interleaved(steps, args.repeats, args.warmup, sync)
    print("| model | layers | hidden | parameters | s per step (median) | min–max | vs e2cnn (paired median) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, model in models.items():
        ratio = f"{harness.paired_ratio(times, name, 'e2cnn'):.3g}x" if "e2cnn" in times else "-"
        cells = [name, model.spec.layers, model.spec.hidden, f"{count_parameters(model):,}"]
        cells += [f"{harness.median(times[name]):.3f}", harness.spread(times[name]), ratio]
        print(harness.markdown_row(cells), flush=True)


if __name__ == "__main__":
    main()
