"""GPU-ready training (issue 14), checked on the CPU: data gathered on the task's device, ``amp`` (bfloat16
autocast) keeps the equivariance of the exact models within bf16 rounding, runs record their device, s/epoch
and peak memory, ``max_batches`` truncates epochs, and benchmarks/gpu_paper_step.py runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from equidyn.measures.equivariance import equivariance_error
from equidyn.models.base import ModelSpec
from equidyn.models.registry import build_model
from equidyn.symmetry import FieldLayout, group_by_name
from equidyn.training.tasks import ForecastTask
from equidyn.training.trainer import TrainSettings, _identity_settings, train

ROOT = Path(__file__).resolve().parents[1]
# bfloat16 keeps 8 bits of mantissa (relative rounding 2^-8 ≈ 4e-3); an exactly equivariant network stays
# equivariant up to a few roundings, while a plain CNN is off by O(1).
BF16_EE_BOUND = 1e-2


def _task(rng: np.random.Generator) -> ForecastTask:
    frames = torch.from_numpy(rng.standard_normal((3, 12, 2, 8, 8)).astype(np.float32))
    windows = {
        "train": torch.cartesian_prod(torch.arange(3), torch.arange(0, 6)),
        "valid": torch.cartesian_prod(torch.arange(3), torch.arange(7, 9)),
    }
    return ForecastTask(frames=frames, windows=windows, input_frames=1, steps={"train": 1, "valid": 1}, scale=2.0)


def test_a_task_on_a_device_gathers_its_batches_there_without_host_copies(rng) -> None:
    """On the meta device nothing can be copied to or from the host, so this fails if a batch goes through it."""
    task = _task(rng)
    task.to(torch.device("meta"))
    assert task.windows["train"].device.type == "meta" and task.device.type == "meta"
    x, y = task.batch("train", torch.tensor([0, 4, 7], device="meta"))
    assert x.device.type == y.device.type == "meta"
    assert x.shape == (3, 2, 8, 8) and y.shape == (3, 1, 2, 8, 8)


def _spec(name: str, grid: tuple[int, ...], group: str, layout: str) -> ModelSpec:
    options = {"separable": True} if name == "gcnn3d" else {}
    return ModelSpec(
        name=name,
        in_layout=FieldLayout.parse(layout),
        out_layout=FieldLayout.parse("1 vector"),
        hidden=4 if len(grid) == 2 else 1,
        layers=3 if len(grid) == 2 else 2,
        grid=grid,
        group=group,
        options=options,
    )


@pytest.mark.parametrize(
    ("name", "grid", "group", "layout", "exact"),
    [
        ("e2cnn", (16, 16), "C4", "1 vector", True),
        ("gcnn3d", (2, 2, 2), "Oh", "1 vector", True),  # bfloat16 3-D convolutions are slow on a CPU
        ("convnet", (16, 16), "C4", "1 vector", False),
    ],
)
def test_equivariance_errors_stay_within_bf16_rounding_under_autocast(name, grid, group, layout, exact) -> None:
    torch.manual_seed(0)
    model = build_model(_spec(name, grid, group, layout)).eval()
    x = torch.randn(3 if len(grid) == 2 else 1, model.in_channels, *grid)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        ee = equivariance_error(model, x, group_by_name(group), model.in_layout, model.out_layout)["ee_rel"]
    if exact:
        assert ee < BF16_EE_BOUND
    else:
        assert ee > 10 * BF16_EE_BOUND  # the bound separates exact models from a plain CNN


def test_training_with_amp_runs_and_records_device_time_and_memory(rng, tmp_path) -> None:
    task = _task(rng)
    settings = TrainSettings(epochs=3, batch_size=4, lr=3e-3, patience=3, device="cpu", amp=True)
    torch.manual_seed(0)
    summary = train(task, _spec("e2cnn", (8, 8), "C4", "1 vector"), settings, tmp_path / "run", seed=0, alpha=0.0)
    written = json.loads((tmp_path / "run" / "train.json").read_text())
    assert written["amp"] is True and written["device"] == "cpu" and written["gpu_peak_mem_mb"] is None
    # the epoch time is recorded, never asserted (wall time is a measurement, not a test)
    assert np.isfinite(written["seconds_per_epoch"]) and np.isfinite(summary["best_val"])
    # the checkpoint is float32 and, evaluated in float32, exactly equivariant
    from equidyn.training.checkpoint import load_model

    model, _ = load_model(tmp_path / "run" / "best.pt")
    x = torch.randn(2, 2, 8, 8)
    assert equivariance_error(model, x, group_by_name("C4"), model.in_layout, model.out_layout)["ee_rel"] < 1e-5


def test_new_settings_at_their_defaults_leave_a_runs_identity_unchanged() -> None:
    """A state/last.pt written before amp/max_batches existed still resumes; turning amp on is a different run."""
    before = {"batch_size", "lr", "weight_decay", "lr_gamma", "patience", "eval_batch_size"}  # epochs: extendable
    assert set(_identity_settings(TrainSettings())) == before
    assert _identity_settings(TrainSettings(amp=True))["amp"] is True


def test_max_batches_caps_the_batches_of_every_epoch(rng, tmp_path) -> None:
    task = _task(rng)
    seen = []
    original = task.batch

    def counting(split, index):
        if split == "train":
            seen.append(len(index))
        return original(split, index)

    task.batch = counting  # type: ignore[method-assign]
    settings = TrainSettings(epochs=3, batch_size=4, patience=3, device="cpu", max_batches=2)
    train(task, _spec("convnet", (8, 8), "C4", "1 vector"), settings, tmp_path / "run", seed=0, alpha=0.0)
    assert seen == [4, 4] * 3  # 18 windows would be 5 batches per epoch


def test_gpu_paper_step_benchmark_runs_on_cpu_quick() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_paper_step.py"), "--device=cpu", "--quick", "--threads=1"],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    names = {row.split("|")[1].strip() for row in rows}
    expected = {"mlp", "convnet", "e2cnn", "rpp", "combo", "clcnn", "lift", "rgroup", "rsteer", "cnn3d", "gcnn3d"}
    assert expected | {"rgcnn3d", "HVP, rsteer", "HVP, gcnn3d"} <= names
    for row in rows:
        fp32, amp = (float(row.split("|")[k]) for k in (5, 6))
        assert fp32 > 0 and amp > 0
