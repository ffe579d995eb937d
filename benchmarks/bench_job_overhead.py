"""A job's fixed cost: process start to its first training step, and to its first measure step, vs ``import torch``.

    .venv/bin/python benchmarks/bench_job_overhead.py [--repeats 5] [--quick] [--importtime] [--job-server]

Every Snakemake job is a fresh ``python -m equidyn.cli ...`` process, so what it spends before its first step
(interpreter start, imports, reading the store, sizing and building the model) is paid again by each of the
paper's ~2,800 jobs. This benchmark runs real CLI jobs on a tiny level store made here (so the data's size adds
nothing) with the demo's model sizes, one thread each:

* ``train convnet``, ``train e2cnn``, ``train rsteer``: ``levels-train``; the time until the first training
  step's backward pass has finished — everything before it is per-job overhead;
* ``measure lie (e2cnn)``, ``measure lie (convnet)``: ``measure`` of a checkpoint written here; the time until
  the measure's first forward pass;
* ``import torch``: ``python -c "import torch"``, the yardstick (src/equidyn/yardstick.py) — a job cannot start
  faster than that, and its time moves with the machine just as the jobs' do, so the ratio is what is compared.

How a step is seen without touching the package: the job runs under a tiny launcher that registers torch's global
module-forward hook and wraps ``Tensor.backward``, prints a time stamp when each first fires, and ends the process
(the same two hooks whatever optimiser the trainer runs; ``torch.optim.Adam`` imports ``torch._dynamo`` in its
constructor, before the first forward, so that import is inside the measured time). The
launcher imports torch before the CLI does, which moves that import earlier but adds nothing, since every job
imports torch. Rounds are interleaved (one of each job per round) so a machine that slows down mid-run slows
every row alike; the table gives medians over rounds. ``--job-server`` adds each job once more as a client of a
local job server (src/equidyn/jobserver.py, what a local workflow run uses), timed from the client's start; the
server (started before the rounds, as Snakemake's ``onstart`` does) carries the same hooks; with ``--baseline-src``
the baseline gets its own server too ("(baseline, job server)" rows). ``--importtime``
adds ``-X importtime`` to each job and prints the ten slowest top-level imports of each, which is how the cuts in
docs/benchmarks.md were found.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Hooks that print "@<event> <epoch seconds>" on stderr at the first forward and at the end of the first backward
# pass (the optimiser's update, microseconds, follows it), and end the job at $EQUIDYN_BENCH_STOP.
HOOKS = r"""
import os, sys, time
import torch

def _mark(event):
    print(f"@{event} {time.time():.6f}", file=sys.stderr, flush=True)
    if event == os.environ["EQUIDYN_BENCH_STOP"]:
        os._exit(0)

_seen = set()
def _once(event):
    if event not in _seen:
        _seen.add(event)
        _mark(event)

torch.nn.modules.module.register_module_forward_pre_hook(lambda m, a: _once("forward"))
_backward = torch.Tensor.backward

def _backward_then_mark(self, *args, **kwargs):
    result = _backward(self, *args, **kwargs)
    _once("step")
    return result

torch.Tensor.backward = _backward_then_mark
"""
# Runs the CLI job given as arguments in this process.
LAUNCHER = HOOKS + "from equidyn.cli import main\nsys.exit(main(sys.argv[1:]))\n"
# A local job server (equidyn.jobserver, as the Snakefile starts for a local run) whose forked jobs carry the hooks.
SERVER = HOOKS + "from equidyn.jobserver import serve\nserve(sys.argv[1])\n"

SPLITS = {"train": [0, 8], "valid": [8, 11], "test": [11, 14]}
# The demo's level-study model entries (config/demo.yaml): the sizing search and the escnn builds are part of the
# fixed cost, so they are measured at the sizes jobs really use.
MODELS = {
    "convnet": {"name": "convnet", "budget": 8000, "layers": 4},
    "e2cnn": {"name": "e2cnn", "budget": 8000, "layers": 4},
    "rsteer": {"name": "rsteer", "budget": 8000, "layers": 4},
}


def level_settings(model: str) -> dict:
    return {
        "physics": {},
        "base": {},
        "splits": SPLITS,
        "input_frames": 1,
        "rollout": {"train": 1, "valid": 1, "test": 1},
        "training": {"epochs": 3, "batch_size": 8, "lr": 3e-3, "patience": 3, "device": "cpu"},
        "evaluation": {"ee_samples": 4},
        "model": MODELS[model],
    }


def make_store(root: Path, grid: int) -> Path:
    """A level store of smooth random plumes (5 sims × 14 frames), like the tests' own."""
    import numpy as np

    from equidyn.data.smoke import PlumePhysics
    from equidyn.data.smoke_datasets import build_level, frames_dataset
    from equidyn.store import write_store

    rng = np.random.default_rng(0)
    noise = rng.standard_normal((5, 14, 2, grid, grid))
    k = np.fft.fftfreq(grid)
    spec = np.fft.fftn(noise, axes=(-2, -1)) * np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / 0.02)
    velocity = np.real(np.fft.ifftn(spec, axes=(-2, -1))).astype(np.float32)
    ds = frames_dataset(
        velocity,
        PlumePhysics(grid=grid, n_steps=14, keep_from=0),
        {"inflow_x": ("sim", np.zeros(5)), "inflow_y": ("sim", np.zeros(5))},
    )
    write_store(ds, root / "base.zarr", {})
    build_level(root / "base.zarr", 1, SPLITS, root / "level1.zarr")
    return root / "level1.zarr"


def train_args(store: Path, model: str, run_dir: Path, threads: int = 1) -> list[str]:
    return [
        "levels-train", "--settings", json.dumps(level_settings(model)), "--store", str(store), "--model", model,
        "--alpha", "0", "--level", "1", "--seed", "0", "--run-dir", str(run_dir), "--threads", str(threads),
    ]  # fmt: skip


def measure_args(store: Path, model: str, checkpoint: Path, out: Path, threads: int = 1) -> list[str]:
    settings = {"run": level_settings(model), "dynamics": {"lie": {"samples": 4}}}
    return [
        "measure", "--study", "levels", "--measure", "lie", "--settings", json.dumps(settings), "--store",
        str(store), "--checkpoint", str(checkpoint), "--out", str(out), "--threads", str(threads),
    ]  # fmt: skip


SRC = Path(__file__).resolve().parents[1] / "src"


def job_env(src: Path = SRC) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "EQUIDYN_GIT_REV": os.environ.get("EQUIDYN_GIT_REV", "bench"),
    }


def run_job(
    cli_args: list[str] | None, stop: str, importtime: bool, src: Path = SRC, server: str | None = None
) -> tuple[float, str]:
    """Seconds from process start to the ``stop`` event (or to exit for ``import torch``), and stderr.

    ``server``: the job is a thin ``python -m equidyn.cli …`` client of the job server at that socket, as in a local
    workflow run, and the time runs from the client's start to the event in the forked job.
    """
    flags = ["-X", "importtime"] if importtime else []
    if cli_args is None:
        cmd = [sys.executable, *flags, "-c", "import torch"]
    elif server:
        cmd = [sys.executable, *flags, "-m", "equidyn.cli", *cli_args]
    else:
        cmd = [sys.executable, *flags, "-c", LAUNCHER, *cli_args]
    env = {**job_env(src), "EQUIDYN_BENCH_STOP": stop}
    if server:
        env["EQUIDYN_JOB_SERVER"] = server
    t0 = time.time()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    t_end = time.time()
    if out.returncode != 0:
        raise RuntimeError(f"job failed ({out.returncode}): {' '.join(cmd[:6])}...\n{out.stderr[-3000:]}")
    if cli_args is None:
        return t_end - t0, out.stderr
    marks = dict(line[1:].split() for line in out.stderr.splitlines() if line.startswith("@"))
    if stop not in marks:
        raise RuntimeError(f"job ended without a {stop!r} event:\n{out.stderr[-3000:]}")
    return float(marks[stop]) - t0, out.stderr


def slowest_imports(stderr: str, n: int = 10) -> list[tuple[float, str]]:
    """The ``n`` slowest top-level imports (cumulative seconds) of an ``-X importtime`` log."""
    rows = []
    for line in stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2][1:]  # one space after the bar; nested imports are indented further
        if not name.startswith(" "):
            rows.append((int(parts[1]) / 1e6, name))
    return sorted(rows, reverse=True)[:n]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds; the table gives medians")
    p.add_argument("--quick", action="store_true", help="one round of the ConvNet job, a measure and torch")
    p.add_argument("--importtime", action="store_true", help="print each job's slowest imports (one round)")
    p.add_argument("--grid", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="torch threads of each job (--threads of the CLI)")
    p.add_argument(
        "--baseline-src",
        type=Path,
        help="another checkout's src/ (e.g. from `git archive <rev>`): its jobs run interleaved with these, as "
        "'(baseline)' rows, so before and after are measured under the same load",
    )
    p.add_argument(
        "--job-server",
        action="store_true",
        help="also run each job as a client of a local job server (what a local workflow run does), as "
        "'(job server)' rows",
    )
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="equidyn-overhead-") as tmp:
        root = Path(tmp)
        store = make_store(root, args.grid)
        # a job server per source tree (with --baseline-src, the baseline's own server too): socket, process
        servers: dict[Path, tuple[str, subprocess.Popen]] = {}
        if args.job_server:
            for k, src in enumerate([SRC, *([args.baseline_src.resolve()] if args.baseline_src else [])]):
                socket_path = str(root / f"server{k}.sock")
                servers[src] = (
                    socket_path,
                    subprocess.Popen([sys.executable, "-c", SERVER, socket_path], env=job_env(src)),
                )
            for socket_path, _ in servers.values():
                while not os.path.exists(socket_path):
                    time.sleep(0.05)
        # checkpoints for the measure jobs: one full (tiny) training run per model, not timed
        checkpoints = {}
        for model in ("convnet", "e2cnn") if not args.quick else ("convnet",):
            run_dir = root / f"ckpt_{model}"
            subprocess.run(
                [sys.executable, "-m", "equidyn.cli", *train_args(store, model, run_dir)],
                env=job_env(), check=True, capture_output=True,
            )  # fmt: skip
            checkpoints[model] = run_dir / "best.pt"

        Job = tuple[list[str] | None, str, Path, str | None]
        jobs: dict[str, Job] = {"import torch": (None, "", SRC, None)}
        trees = [("", SRC, None)]
        if args.baseline_src:
            trees.append((" (baseline)", args.baseline_src.resolve(), None))
        for src, (socket_path, _) in servers.items():
            label = " (job server)" if src == SRC else " (baseline, job server)"
            trees.append((label, src, socket_path))
        for label, src, via in trees:
            tag = label.strip(" ()").replace(" ", "_")
            for model in ("convnet",) if args.quick else ("convnet", "e2cnn", "rsteer"):
                run = train_args(store, model, root / f"run_{model}{tag}", args.threads)
                jobs[f"train {model}: first step{label}"] = (run, "step", src, via)
            for model in checkpoints:
                out = root / f"lie_{model}{tag}.json"
                jobs[f"measure lie ({model}): first forward{label}"] = (
                    measure_args(store, model, checkpoints[model], out, args.threads),
                    "forward",
                    src,
                    via,
                )

        rounds = 1 if args.quick or args.importtime else args.repeats
        times: dict[str, list[float]] = {name: [] for name in jobs}
        for _ in range(rounds):
            for name, (cli_args, stop, src, via) in jobs.items():
                seconds, stderr = run_job(cli_args, stop, args.importtime, src, via)
                times[name].append(seconds)
                if args.importtime:
                    print(f"### {name}: slowest imports (cumulative s)")
                    for secs, mod in slowest_imports(stderr):
                        print(f"    {secs:6.3f}  {mod}")
        for _, server in servers.values():
            server.terminate()
            server.wait()

    torch_s = statistics.median(times["import torch"])
    print(f"\n{rounds} interleaved round(s), medians, {args.threads} thread(s) per job, {os.cpu_count()} CPUs\n")
    print("| job | to first step (s) | × import torch |")
    print("|---|---:|---:|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.2f} | {med / torch_s:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
