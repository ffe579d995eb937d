"""Convergence check: known answers for the relative change, one row per run with lineage, and the figure."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from equidyn.studies import convergence


def test_relative_change_known_answers():
    # flat after epoch 5: the last 20 % (2 of 10 epochs) improve nothing
    assert convergence.relative_change([5, 4, 3, 2, 1, 1, 1, 1, 1, 1]) == (0.0, 0.0)
    # still falling: best before the tail is 2 (epoch 8), best overall 1 → 50 % improvement
    best, raw = convergence.relative_change([9, 8, 7, 6, 5, 4, 3, 2, 1.5, 1])
    assert best == pytest.approx(0.5) and raw == pytest.approx(0.5)
    # noise without progress: a spike is not convergence failure (best-so-far), but shows in the raw change
    best, raw = convergence.relative_change([4, 3, 2, 1, 1, 1, 1, 1, 3, 1.02])
    assert best == 0.0 and raw == pytest.approx(0.02)
    assert all(math.isnan(v) for v in convergence.relative_change([1.0]))


def test_validation_column_follows_the_training_loss():
    assert convergence.validation_column(["epoch", "train_rmse", "val_rmse", "val_mae"]) == "val_rmse"
    assert convergence.validation_column(["epoch", "train_mae", "val_mae", "val_rmse"]) == "val_mae"
    with pytest.raises(ValueError, match="no train_/val_"):
        convergence.validation_column(["epoch", "val_mae"])


def _write_run(run_dir, values, metric="rmse", meta=None):
    run_dir.mkdir(parents=True)
    h = pd.DataFrame({"epoch": range(1, len(values) + 1), f"train_{metric}": values, f"val_{metric}": values})
    h.to_csv(run_dir / "history.csv", index=False)
    meta = meta or {"config_sha": "cfg", "git_rev": "rev", "data_sha": "dat"}
    (run_dir / "train.json").write_text(json.dumps({"meta": meta, "stopped_early": False}))


def test_study_table_rows_figure_and_combine(tmp_path):
    section = {"models": [{"name": "convnet"}, {"name": "rsteer", "alphas": [0.01]}], "seeds": [0, 1]}
    flat, falling = [3, 2, 1, 1, 1, 1, 1, 1, 1, 1], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    for model, alpha in (("convnet", "0"), ("rsteer", "0.01")):
        for seed in (0, 1):
            values = falling if (model, seed) == ("rsteer", 1) else flat
            _write_run(tmp_path / f"runs/rotation/{model}/alpha{alpha}/seed{seed}", values)
    out, fig = tmp_path / "analysis/rotation.csv", tmp_path / "figures/curves_rotation.pdf"
    df = convergence.study_table("rotation", section, tmp_path, out, fig)
    assert len(df) == 4 and set(df.columns) >= {"model", "alpha", "seed", "n_epochs", "rel_change_last20", "flattened"}
    assert df.flattened.tolist() == [True, True, True, False]
    assert (df.config_sha == "cfg").all() and (df.n_epochs == 10).all()
    assert fig.exists() and fig.with_suffix(".png").stat().st_size > 1000
    combined = convergence.combine([str(out)], tmp_path / "tables/convergence.csv")
    assert combined.columns[0] == "study" and len(combined) == 4


def test_missing_history_names_the_run(tmp_path):
    section = {"models": [{"name": "convnet"}], "seeds": [0]}
    with pytest.raises(FileNotFoundError, match="runs/rotation/convnet/alpha0/seed0"):
        convergence.study_table("rotation", section, tmp_path, tmp_path / "x.csv")
