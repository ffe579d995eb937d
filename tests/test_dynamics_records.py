"""A measure's record keeps the run's keys: its own RNG seed must not overwrite the run's seed.

The laptop study (5 seeds measured) found every seed's Hessian and sharpness merged into seed 0's row of
dynamics.csv, because the measure's ``seed`` setting overwrote the checkpoint's ``seed`` in the record.
"""

from __future__ import annotations

import json

import pandas as pd

from equidyn.studies import dynamics

LINEAGE = {"config_sha": "c", "git_rev": "g", "data_sha": "d"}


def test_a_measure_setting_named_like_a_run_key_is_prefixed():
    meta = {"study": "levels", "model": "e2cnn", "alpha": 0.0, "level": 0, "seed": 3, **LINEAGE}
    out = dynamics._prefixed_collisions({"seed": 0, "lambda_max": 1.5}, meta)
    assert out == {"measure_seed": 0, "lambda_max": 1.5}
    assert {**meta, **out}["seed"] == 3


def test_the_dynamics_table_has_one_row_per_seed(tmp_path):
    evals, measures = [], []
    for seed in range(3):
        keys = {"study": "levels", "model": "rsteer", "alpha": 0.01, "level": 0, "seed": seed, **LINEAGE}
        (tmp_path / str(seed)).mkdir()
        e = tmp_path / str(seed) / "eval_best.json"
        e.write_text(json.dumps({**keys, "checkpoint_epoch": 9, "params": 10, "ee": 0.1, "ee_rel": 0.01,
                                 "scores": {"test": {"rmse": 0.1 + seed}}}))  # fmt: skip
        h = tmp_path / str(seed) / "hessian_best.json"
        result = dynamics._prefixed_collisions({"seed": 0, "lambda_max": 10.0 + seed, "trace": 1.0, "trace_se": 0.1,
                                                "negative_mass": 0.0, "negative_mass_se": 0.0, "lambda_min": -0.5,
                                                "lambda_min_residual": 1e-6, "lambda_min_ratio": -0.5 / (10.0 + seed)},
                                               keys)  # fmt: skip
        h.write_text(json.dumps({**keys, "measure": "hessian", "checkpoint": "best", **result}))
        evals.append(str(e))
        measures.append(str(h))
    df = dynamics.table(measures, evals, tmp_path / "dynamics.csv")
    assert len(df) == 3 and sorted(df.seed) == [0, 1, 2]
    assert pd.Series(df.set_index("seed").hessian_lambda_max).to_dict() == {0: 10.0, 1: 11.0, 2: 12.0}
    # issue 21: the negative curvature itself, with its Lanczos residual as the error bar
    assert (df.hessian_lambda_min == -0.5).all() and (df.hessian_lambda_min_residual == 1e-6).all()
    assert df.set_index("seed").hessian_lambda_min_ratio.to_dict() == {0: -0.05, 1: -0.5 / 11, 2: -0.5 / 12}


def test_the_dynamics_table_carries_the_measures_own_commit(tmp_path):
    """A measure rerun at a later commit than its training says so in the table (its own lineage column)."""
    keys = {"study": "levels", "model": "rsteer", "alpha": 0.01, "level": 0, "seed": 0, **LINEAGE}
    e = tmp_path / "eval_best.json"
    e.write_text(json.dumps({**keys, "checkpoint_epoch": 9, "params": 10, "ee": 0.1, "ee_rel": 0.01,
                             "scores": {"test": {"rmse": 0.1}}}))  # fmt: skip
    files = []
    hessian = {"lambda_max": 1.0, "trace": 1.0, "trace_se": 0.1, "negative_mass": 0.0, "negative_mass_se": 0.0}
    for measure, rev, result in (("hessian", "m1", hessian), ("lie", "m2", {"lie_derivative": 0.5})):
        f = tmp_path / f"{measure}_best.json"
        f.write_text(json.dumps({**keys, "measure": measure, "checkpoint": "best", **result,
                                 "measure_git_rev": rev, "measure_config_sha": "dyn"}))  # fmt: skip
        files.append(str(f))
    df = dynamics.table(files, [str(e)], tmp_path / "dynamics.csv")
    row = df.iloc[0]
    assert row.git_rev == "g"  # the training's commit, from the evaluation
    assert row.measure_git_rev == "m1;m2" and row.measure_config_sha == "dyn"
