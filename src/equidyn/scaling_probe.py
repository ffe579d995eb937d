"""What a scaling run at cluster shapes needs: peak memory and seconds per training step of every (arm, size).

    python -m equidyn.cli scaling-probe --config config/config.yaml config/scaling_cluster.yaml --grid 64 \\
        --out probe.csv

Each (arm, size) runs in a fresh process (peak RSS is per process): the model at the size's budget on random
inputs of the study's shapes (``input_frames`` velocity frames on a ``grid``² square), ``steps`` Adam steps at the
config's batch size on one thread; it reports the parameters, the forward FLOPs per sample
(``torch.utils.flop_counter``), the fastest step and the process's peak RSS. The cluster config's
``scaling.resources_by_size`` is derived from this table (docs/reproduction.md, "The scaling study at cluster
sizes"): memory carries over to a GPU job's host; CPU seconds only bound a GPU job's time.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from .atomic import write_csv


def probe_one(entry: str, budget: int, grid: int, input_frames: int, batch: int, steps: int) -> dict[str, Any]:
    """One (arm, size): the measurement itself (run in its own process by :func:`probe`)."""
    import torch

    from .measures.correction import flops_per_sample
    from .models.base import count_parameters
    from .models.registry import build_model
    from .studies import common

    torch.set_num_threads(1)
    model_entry = {**json.loads(entry), "budget": int(budget)}
    spec = common.model_spec(model_entry, f"{input_frames} vector", "1 vector", (grid, grid), "C4")
    model = build_model(spec)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 2 * input_frames, grid, grid, generator=generator)
    y = torch.randn(batch, 2, grid, grid, generator=generator)
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = ((model(x) - y) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter() - t0)
    record = {
        "arm": common.model_label(model_entry),
        "size": int(budget),
        "params": count_parameters(model),
        "hidden": spec.hidden,
        "flops_per_sample": flops_per_sample(model, x[:2]),
        "seconds_per_step": min(times),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(record))
    return record


def probe(config: list[str], grid: int, out: str | os.PathLike, steps: int = 3) -> Any:
    """Every (arm, size) of a scaling config's size sweep, each in a fresh process; one row each in ``out``."""
    import pandas as pd

    from .config import load_config
    from .studies.common import model_label

    section = load_config(config)["scaling"]
    rows = []
    for entry in section["models"]:
        plain = {k: v for k, v in entry.items() if k not in ("alphas", "budget")}
        for size in section["sizes"]:
            cmd = [
                sys.executable,
                "-m",
                "equidyn.cli",
                "scaling-probe-one",
                "--entry",
                json.dumps(plain),
                "--budget",
                str(size),
                "--grid",
                str(grid),
                "--input-frames",
                str(section["input_frames"]),
                "--batch",
                str(section["training"]["batch_size"]),
                "--steps",
                str(steps),
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"probe of {model_label(entry)} at {size} failed:\n{done.stderr[-2000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    df = pd.DataFrame(rows)
    write_csv(df, out)
    return df
