"""Benchmark: top-5 Hessian eigenvalues + Hutchinson trace, PyHessian 0.1 against equidyn's path.

The problem is the one the pipeline solves at every checkpoint: a ~600k-parameter 2-D conv net (pluggable via
``--model module:function``, a function ``(hidden: int) -> nn.Module`` mapping (B, 2, H, W) to (B, 2, H, W)) on a
fixed, seeded subset of ``--samples`` inputs of shape 2×``grid``×``grid`` in batches of ``--batch``. Both
sides use the same batches, the same MSE criterion, eval-mode behaviour and the same number of Hutchinson
probes; PyHessian keeps its default eigenvalue tolerance (relative change 1e-3), equidyn its residual tolerance.

Reported: medians over ``--repeats`` runs of the wall time of each method, the number of Hessian-vector products
equidyn used, and the agreement of the values (relative difference of each eigenvalue; trace difference in
units of the combined standard error). Prints a markdown table; ``--json`` also writes the raw numbers.

    python benchmarks/bench_hessian.py                       # the documented configuration (slow on CPU)
    python benchmarks/bench_hessian.py --grid 16 --samples 32 # a CPU-sized smoke run
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

import harness  # benchmarks/harness.py (this script's folder is first on sys.path)
from equidyn.atomic import write_text
from equidyn.measures.hessian import HessianOperator, hessian_spectrum, pyhessian_reference
from equidyn.models.base import count_parameters, functional_eval


def convnet(hidden: int = 128, layers: int = 6) -> nn.Module:
    """Plain conv net: conv(2→h), (layers−2) × [conv(h→h), BN, ReLU], conv(h→2); 3×3 kernels. h=128: 595k."""
    mods: list[nn.Module] = [nn.Conv2d(2, hidden, 3, padding=1), nn.ReLU()]
    for _ in range(layers - 2):
        mods += [nn.Conv2d(hidden, hidden, 3, padding=1), nn.BatchNorm2d(hidden), nn.ReLU()]
    mods.append(nn.Conv2d(hidden, 2, 3, padding=1))
    return nn.Sequential(*mods)


def load_builder(spec: str | None) -> Callable[[int], nn.Module]:
    if spec is None:
        return convnet
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def make_problem(builder, hidden: int, samples: int, grid: int, batch: int, seed: int):
    torch.manual_seed(seed)
    model = builder(hidden)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, 2, grid, grid, generator=gen)
    y = torch.roll(x, shifts=1, dims=-1) + 0.1 * torch.randn(samples, 2, grid, grid, generator=gen)
    model.train()
    with torch.no_grad():  # realistic BatchNorm running statistics
        for i in range(0, samples, batch):
            model(x[i : i + batch])
    model.eval()
    return model, [(x[i : i + batch], y[i : i + batch]) for i in range(0, samples, batch)]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="module:function building the model from `hidden`")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--grid", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--probes", type=int, default=20, help="Hutchinson probes (both methods)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--cache-graphs", action="store_true", help="also time equidyn with cached gradient graphs")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    harness.set_threads(args.threads)

    model, batches = make_problem(load_builder(args.model), args.hidden, args.samples, args.grid, args.batch, args.seed)
    crit = nn.functional.mse_loss
    n_params = count_parameters(model)

    def ours(cache: bool):
        return hessian_spectrum(
            model,
            batches,
            crit,
            top_k=args.top_k,
            n_hutchinson=args.probes,
            n_slq=1,
            slq_steps=2,  # the minimum: this benchmark times eigenvalues + trace
            seed=args.seed,
            cache_graphs=cache,
        )

    def pyh():
        return pyhessian_reference(
            model, batches, crit, top_k=args.top_k, n_trace=args.probes, seed=args.seed, return_vectors=True
        )

    methods = {"PyHessian 0.1": pyh, "equidyn": lambda: ours(False)}
    if args.cache_graphs:
        methods["equidyn (cached graphs)"] = lambda: ours(True)
    times: dict[str, list[float]] = {k: [] for k in methods}
    results: dict[str, dict] = {}
    for round_ in range(args.repeats):  # interleaved, the order alternating per round (benchmarks/harness.py)
        for name in list(methods) if round_ % 2 == 0 else reversed(list(methods)):
            t, out = timed(methods[name])
            times[name].append(t)
            results[name] = out

    ref = results["PyHessian 0.1"]
    eq = results["equidyn"]
    # PyHessian's power iteration targets the largest |λ|: compare with equidyn's converged Ritz values in that
    # order, and check PyHessian's eigenvectors directly through their residuals ‖Hv − λv‖/|λ|.
    theta, res = np.array(eq["ritz_values"]), np.array(eq["ritz_residuals"])
    good = res <= eq["tol"] * np.abs(theta).max()
    by_mag = theta[good][np.argsort(-np.abs(theta[good]))][: args.top_k]
    with functional_eval(model):
        op = HessianOperator(model, batches, crit)
        vecs = torch.stack([v / v.norm() for v in ref.pop("eigenvectors")])
        hv = op.matmat(vecs)
    rayleigh = (hv * vecs).sum(1)
    py_res = ((hv - rayleigh[:, None] * vecs).norm(dim=1) / rayleigh.abs()).tolist()
    z = abs(eq["trace"] - ref["trace"]) / float(np.hypot(eq["trace_se"], ref["trace_se"]))

    print(
        f"\nmodel: {n_params:,} parameters; subset: {args.samples} × 2×{args.grid}×{args.grid} in batches of "
        f"{args.batch}; top-{args.top_k} + trace with {args.probes} probes; {args.repeats} repeats; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}\n"
    )
    print("| method | median time (s) | all times (s) | HVPs | top eigenvalues | trace ± SE |")
    print("|---|---|---|---|---|---|")
    for name in methods:
        out = results[name]
        hvps = out.get("n_hvp", "—")
        eig = ", ".join(f"{v:.5g}" for v in out["eigenvalues"])
        ts = ", ".join(f"{t:.1f}" for t in times[name])
        print(
            f"| {name} | {statistics.median(times[name]):.1f} | {ts} | {hvps} | {eig} | "
            f"{out['trace']:.5g} ± {out['trace_se']:.2g} |"
        )
    print("\n| k | PyHessian λ_k | its residual ‖Hv−λv‖/|λ| | equidyn λ_k (largest-|λ| order) | rel. diff |")
    print("|---|---|---|---|---|")
    for k, (lp, rp) in enumerate(zip(ref["eigenvalues"], py_res, strict=True)):
        le = by_mag[k] if k < len(by_mag) else float("nan")
        print(f"| {k + 1} | {lp:.6g} | {rp:.1e} | {le:.6g} | {abs(le - lp) / abs(le):.1e} |")
    print(
        f"\nequidyn top-{args.top_k} (algebraic) residuals "
        f"{', '.join(f'{r:.1e}' for r in eq['eigen_residuals'])} after {eq['lanczos_steps']} Lanczos steps; "
        f"λ_min {eq['lambda_min']:.5g} (residual {eq['lambda_min_residual']:.1e}); trace difference {z:.2f} "
        f"combined SE; speed-up {1 / harness.paired_ratio(times, 'equidyn', 'PyHessian 0.1'):.2f}× (paired median)"
    )
    if args.json:
        payload = {"args": vars(args) | {"json": str(args.json)}, "n_params": n_params, "times": times}
        payload["results"] = {k: {kk: vv for kk, vv in v.items() if kk != "density"} for k, v in results.items()}
        write_text(args.json, json.dumps(payload, indent=2, default=str))


if __name__ == "__main__":
    main()
