"""Paper-size train step of every 2-D and 3-D model, and one Hessian-vector product: float32 vs bfloat16 autocast.

    .venv/bin/python benchmarks/gpu_paper_step.py [--device auto|cuda|cpu] [--repeats 5] [--out table.md]
    .venv/bin/python benchmarks/gpu_paper_step.py --device cpu --quick      (tests/test_gpu_ready.py runs this)

For a lent GPU: one command, a few minutes, a markdown table for docs/benchmarks.md. The models and their sizes
come from config/config.yaml — the rotation study's nine 2-D models (600k-parameter budget, ``10 vector`` → ``1
vector`` on 64², batch 16; the level study trains three of them on ``1 vector`` inputs) and the super-resolution
study's three 3-D models (16³ → 64³, batch 4) — so the table describes what the paper configuration trains.

A step is what the trainer does (training/trainer.py): forward, loss (MSE, or L1 for 3-D), the model's penalty at
alpha 1e-4 when it has one, backward, equidyn's Adam. ``fp32`` runs with TF32 off; ``amp`` is the ``training.amp``
setting: bfloat16 autocast with TF32 matmuls. The HVP row is one Hessian-vector product of the training loss of
one batch (double backward inside ``functional_eval``, as the Hessian measure does) for the RSteer and the O_h
GCNN. Times are medians over ``--repeats`` after two warm-up steps, synchronised on CUDA; memory is
``max_memory_allocated`` per model and precision (CUDA only). ``--quick``: tiny grids and widths, one step, no
warm-up — a check that every model builds and steps in both precisions, not a measurement.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALPHA = 1e-4
HVP_MODELS = ("rsteer", "gcnn3d")


def load_config() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def model_cases(quick: bool) -> list[dict]:
    """One case per model: name, spec, batch, loss — at paper size (or tiny with ``quick``)."""
    from equidyn.studies.common import model_spec

    config = load_config()
    rot, sr = config["rotation"], config["superres"]
    cases = []
    grid = 16 if quick else int(rot["physics"]["grid"])
    for entry in rot["models"]:
        entry = {k: v for k, v in entry.items() if k != "alphas"}
        if quick:
            entry["budget"] = 3000
        spec = model_spec(entry, f"{rot['input_frames']} vector", "1 vector", (grid, grid), "C4")
        batch = 2 if quick else int(rot["training"]["batch_size"])
        cases.append({"name": entry["name"], "spec": spec, "batch": batch, "loss": "mse"})
    coarse = 2 if quick else int(sr["data"]["offline"]["n"]) // int(sr["data"]["factor"])
    for entry in sr["models"]:
        entry = {k: v for k, v in entry.items() if k != "alphas"}
        if quick:
            entry["hidden"] = 2
        spec = model_spec(entry, "3 vector", "1 vector", (coarse,) * 3, sr["group"])
        batch = 1 if quick else int(sr["training"]["batch_size"])
        cases.append({"name": entry["name"], "spec": spec, "batch": batch, "loss": "l1"})
    return cases


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _precision(device, amp: bool):
    """TF32 only with amp (as the trainer sets it), and the matching autocast context."""
    import contextlib

    import torch

    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = amp
        torch.backends.cudnn.allow_tf32 = amp
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()


def data(model, batch: int, device):
    import torch

    spec = model.spec
    factor = 4 if len(spec.grid) == 3 else 1
    x = torch.randn(batch, model.in_channels, *spec.grid, device=device)
    y = torch.randn(batch, model.out_channels, *(g * factor for g in spec.grid), device=device)
    return x, y


def time_train_step(case: dict, device, amp: bool, repeats: int, warmup: int = 2) -> tuple[float, float | None]:
    """Median seconds of one train step and the peak CUDA memory (MiB) of this model in this precision."""
    import torch

    from equidyn.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(case["spec"]).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=4e-4)
    x, y = data(model, case["batch"], device)
    loss_fn = torch.nn.functional.mse_loss if case["loss"] == "mse" else torch.nn.functional.l1_loss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        with _precision(device, amp):
            loss = loss_fn(model(x), y)
            if model.has_regularizer:
                loss = loss + ALPHA * model.regularizer(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times = []
    for k in range(warmup + repeats):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        if k >= warmup:
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return statistics.median(times), peak


def time_hvp(case: dict, device, amp: bool, repeats: int, warmup: int = 1) -> float:
    """Median seconds of one Hessian-vector product of one batch's training loss (double backward)."""
    import torch

    from equidyn.models.base import functional_eval
    from equidyn.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(case["spec"]).to(device)
    x, y = data(model, case["batch"], device)
    loss_fn = torch.nn.functional.mse_loss if case["loss"] == "mse" else torch.nn.functional.l1_loss
    params = [p for p in model.parameters() if p.requires_grad]
    v = [torch.randn_like(p) for p in params]

    def hvp() -> None:
        with functional_eval(model) as m, _precision(device, amp):
            loss = loss_fn(m(x), y)
            grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True, materialize_grads=True)
            dot = sum((g * w).sum() for g, w in zip(grads, v, strict=True))
            torch.autograd.grad(dot, params, allow_unused=True, materialize_grads=True)

    times = []
    for k in range(warmup + repeats):
        _sync(device)
        t0 = time.perf_counter()
        hvp()
        _sync(device)
        if k >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto (default: cuda when available), cuda, cuda:N or cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat: checks that the script runs")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--out", type=Path, help="also write the table to this file")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*py3nj.*")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu (with --quick for a check that the script works)", file=sys.stderr)
        return 2
    repeats = 1 if args.quick else args.repeats
    warmup = 0 if args.quick else 2
    from equidyn.models.base import count_parameters
    from equidyn.models.registry import build_model

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    lines = [
        f"device: {name}; torch {torch.__version__}; {'quick (tiny sizes)' if args.quick else 'paper sizes'}; "
        f"median of {repeats} after {warmup} warm-up step(s)",
        "",
        "| model | input | batch | params | fp32 s/step | amp s/step | amp speed-up | fp32 peak MiB | amp peak MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cases = model_cases(args.quick)
    for case in cases:
        params = count_parameters(build_model(case["spec"]))
        t32, m32 = time_train_step(case, device, False, repeats, warmup)
        t16, m16 = time_train_step(case, device, True, repeats, warmup)
        shape = "×".join(map(str, case["spec"].grid))
        mem = [f"{m:.0f}" if m is not None else "–" for m in (m32, m16)]
        lines.append(
            f"| {case['name']} | {shape} | {case['batch']} | {params:,} | {t32:.4f} | {t16:.4f} | {t32 / t16:.2f}× "
            f"| {mem[0]} | {mem[1]} |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
    for case in (c for c in cases if c["name"] in HVP_MODELS):
        h32, h16 = (time_hvp(case, device, amp, repeats, warmup // 2) for amp in (False, True))
        lines.append(
            f"| HVP, {case['name']} | one batch | {case['batch']} | | {h32:.4f} | {h16:.4f} | {h32 / h16:.2f}× | | |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
