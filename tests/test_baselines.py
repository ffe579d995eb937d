"""Trivial baselines: known answers (persistence on a constant sequence, trilinear upsampling of a linear field) and
their columns in the summary tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from equidyn.data.superres_data import box_downsample
from equidyn.models.trivial import InterpolatedInput, LinearExtrapolation, Persistence
from equidyn.studies import baseline_tables, baselines
from equidyn.training.tasks import ForecastTask, PairTask, score

ROOT = Path(__file__).resolve().parents[1]


def _forecast_task(frames: torch.Tensor, steps: int = 3) -> ForecastTask:
    windows = torch.tensor([[0, 0], [0, 2], [1, 1]])
    return ForecastTask(frames=frames, windows={"test": windows}, input_frames=2, steps={"test": steps}, scale=2.0)


def test_persistence_is_exact_on_a_constant_sequence():
    field = torch.randn(2, 1, 2, 8, 8)
    task = _forecast_task(field.expand(2, 10, 2, 8, 8).clone())
    s = score(task, Persistence(2), "test")
    assert s["rmse"] == 0 and s["mae"] == 0 and s["rmse_by_step"] == [0, 0, 0]


def test_persistence_error_grows_linearly_on_a_linear_drift():
    """Frames u_t = t·c: persisting frame t0+1 misses frame t0+1+k by k·|c| at every element (physical units)."""
    t = torch.arange(10, dtype=torch.float32)
    frames = (t[None, :, None, None, None] * torch.ones(2, 10, 2, 4, 4)).clone()
    s = score(_forecast_task(frames), Persistence(2), "test")
    assert s["rmse_by_step"] == pytest.approx([2.0, 4.0, 6.0])  # scale 2
    assert s["mae"] == pytest.approx(4.0)


def test_linear_extrapolation_is_exact_on_a_linear_drift_and_misses_a_quadratic_by_its_curvature():
    t = torch.arange(10, dtype=torch.float32)
    frames = (t[None, :, None, None, None] * torch.ones(2, 10, 2, 4, 4)).clone()
    s = score(_forecast_task(frames), LinearExtrapolation(2), "test")
    assert s["rmse_by_step"] == pytest.approx([0.0, 0.0, 0.0], abs=1e-5)
    quad = (t[None, :, None, None, None] ** 2 * torch.ones(2, 10, 2, 4, 4)).clone()
    s = score(_forecast_task(quad, steps=1), LinearExtrapolation(2), "test")
    assert s["rmse"] == pytest.approx(2.0 * 2.0)  # second difference 2, scale 2


def test_interpolated_input_is_exact_on_a_linear_field_away_from_the_border():
    """Box means of a linear field sit at block centres, so trilinear upsampling reproduces it (interior)."""
    n, f = 16, 4
    z, y, x = torch.meshgrid(*(torch.arange(n, dtype=torch.float64) + 0.5,) * 3, indexing="ij")
    comps = torch.stack([0.3 * x - 0.2 * y + 1, 0.1 * z + 0.5 * x, -y + 2 * z])  # (3, n, n, n)
    fine = comps[None, None].expand(1, 3, 3, n, n, n)  # (B, time, 3, ...)
    coarse = box_downsample(fine, f).flatten(1, 2)  # (1, 9, 4, 4, 4)
    pred = InterpolatedInput(f)(coarse)
    inner = slice(f // 2, n - f // 2)
    assert torch.allclose(pred[0][:, inner, inner, inner], comps[:, inner, inner, inner], atol=1e-12)
    # and it is scored like a model: zero error on the interior crop of such pairs
    task = PairTask(inputs={"test": coarse}, targets={"test": pred.detach()}, scale=1.0)
    assert score(task, InterpolatedInput(f), "test")["mae"] == 0


def _summary(**cols):
    base = {"model": ["cnn", "gcnn"], "alpha": [0, 0], "data_sha": ["abc", "abc"]}
    return pd.DataFrame({**base, **cols})


def _record(tmp_path, name, **fields):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"study": name, "baseline": "b", "data_sha": "abc", **fields}))
    return str(path)


def test_skill_columns_and_ci_from_the_baseline(tmp_path):
    rec = _record(tmp_path, "superres", scores={"test": {"mae": 2.0, "rmse": 3.0}})
    s = baseline_tables.join_superres(
        _summary(test_mae_mean=[1.0, 3.0], test_mae_ci_low=[0.5, 2.0], test_mae_ci_high=[1.5, 4.0]), [rec]
    )
    assert list(s.test_mae_skill) == [0.5, -0.5]
    assert list(s.test_mae_skill_ci_low) == [0.25, -1.0] and list(s.test_mae_skill_ci_high) == [0.75, 0.0]
    assert list(s.baseline_test_rmse) == [3.0, 3.0]


def test_levels_join_per_level_and_refuses_other_data(tmp_path):
    recs = [_record(tmp_path, f"l{lv}", level=lv, scores={"test": {"rmse": 1.0 + lv}}) for lv in (0, 1)]
    summary = _summary(
        level=[0, 1], test_rmse_mean=[0.5, 1.0], test_rmse_ci_low=[0.4, 0.9], test_rmse_ci_high=[0.6, 1.1]
    )
    s = baseline_tables.join_levels(summary.copy(), recs)
    assert list(s.baseline_test_rmse) == [1.0, 2.0] and list(s.test_rmse_skill) == [0.5, 0.5]
    with pytest.raises(ValueError, match="no persistence baseline for level"):
        baseline_tables.join_levels(summary.copy(), recs[:1])
    other = _record(tmp_path, "x", level=0, data_sha="zzz", scores={"test": {"rmse": 1.0}})
    with pytest.raises(ValueError, match="scored on data zzz"):
        baseline_tables.join_levels(summary.copy(), [other, recs[1]])


def test_baseline_settings_drop_model_and_training():
    from equidyn.config import load_config

    cfg = load_config([f"{ROOT}/config/config.yaml", f"{ROOT}/config/demo.yaml"])
    run = {"model": cfg["levels"]["models"][0]["name"], "alpha": "0", "level": 0, "seed": 0}
    s = baselines.baseline_settings("levels", cfg["levels"], run)
    assert "model" not in s and "training" not in s and s["input_frames"] == cfg["levels"]["input_frames"]
    other = baselines.baseline_settings("levels", cfg["levels"], {**run, "model": cfg["levels"]["models"][-1]["name"]})
    assert other == s  # one baseline per store, whatever the model
