"""Joining a study's trivial baseline into its summary table: the baseline's scores and each model's skill.

The baseline files come from :mod:`equidyn.studies.baseline_job`; a baseline is one number per store, so it is a
column, and the skill ``1 − model/baseline`` carries the seed CI of the model's mean. A baseline scored on other
data than the runs is refused.
"""

from __future__ import annotations

from typing import Any

from .common import read_json


def _read(files: list[str]) -> list[dict[str, Any]]:
    return [read_json(path) for path in files]


def _skill(summary, metric: str, baseline_col: str, name: str | None = None) -> None:
    """``<metric>_skill = 1 − model/baseline`` (or ``name``) with its 95 % CI (the baseline is one number per
    store, so the seed CI of the model's mean carries over): > 0 beats the baseline, 0 is no better, 1 is perfect."""
    name = name or f"{metric}_skill"
    summary[name] = 1 - summary[f"{metric}_mean"] / summary[baseline_col]
    summary[f"{name}_ci_low"] = 1 - summary[f"{metric}_ci_high"] / summary[baseline_col]
    summary[f"{name}_ci_high"] = 1 - summary[f"{metric}_ci_low"] / summary[baseline_col]


def _check_data(summary, records: list[dict[str, Any]], on: str | None = None) -> None:
    """A baseline scored on other data than the runs would make the skill meaningless: refuse it."""
    for rec in records:
        rows = summary if on is None else summary[summary[on] == rec[on]]
        for shas in rows["data_sha"]:
            if rec["data_sha"] not in str(shas).split(";"):
                where = "" if on is None else f" ({on} {rec[on]})"
                raise ValueError(
                    f"baseline {rec['baseline']} of {rec['study']}{where} was scored on data {rec['data_sha']}, "
                    f"the runs on {shas}: rebuild the baseline"
                )


def join_levels(summary, files: list[str]):
    """``baseline_test_rmse`` (persistence on the same level's test windows) and ``test_rmse_skill`` columns."""
    records = _read(files)
    _check_data(summary, records, on="level")
    by_level = {r["level"]: r for r in records}
    missing = sorted(set(summary["level"]) - set(by_level))
    if missing:
        raise ValueError(f"no persistence baseline for level(s) {missing}")
    summary["baseline"] = "persistence"
    summary["baseline_test_rmse"] = summary["level"].map(lambda lv: by_level[lv]["scores"]["test"]["rmse"])
    _skill(summary, "test_rmse", "baseline_test_rmse")
    summary["linear_extrapolation_test_rmse"] = summary["level"].map(lambda lv: _linear(by_level[lv], "test"))
    return summary


def _linear(record: dict[str, Any], split: str) -> float:
    """The linear extrapolation's RMSE on ``split`` (NaN where the runs have one input frame)."""
    return record.get("scores_linear_extrapolation", {}).get(split, {}).get("rmse", float("nan"))


def join_rotation(summary, files: list[str]):
    """``baseline_rmse_future`` / ``baseline_rmse_domain`` (persistence) and the two skill columns."""
    (record,) = _read(files)
    _check_data(summary, [record])
    summary["baseline"] = "persistence"
    for split, short in (("test_future", "future"), ("test_domain", "domain")):
        summary[f"baseline_rmse_{short}"] = record["scores"][split]["rmse"]
        _skill(summary, f"rmse_{short}", f"baseline_rmse_{short}")
        summary[f"linear_extrapolation_rmse_{short}"] = _linear(record, split)
    return summary


def join_superres(summary, files: list[str]):
    """``baseline_test_mae`` / ``baseline_test_rmse`` (trilinearly upsampled input) and ``test_mae_skill``."""
    (record,) = _read(files)
    _check_data(summary, [record])
    summary["baseline"] = "interpolated_input"
    summary["baseline_test_mae"] = record["scores"]["test"]["mae"]
    summary["baseline_test_rmse"] = record["scores"]["test"]["rmse"]
    _skill(summary, "test_mae", "baseline_test_mae")
    return summary


def join_exponax(summary, files: list[str]):
    """Per flow, both trivial forecasts of the same test windows and the skill over each with its 95 % CI:
    ``persistence_test_rmse``, ``linear_extrapolation_test_rmse``, ``test_rmse_skill_vs_persistence``,
    ``test_rmse_skill_vs_linear_extrapolation`` (``_ci_low``/``_ci_high``), and ``beats_trivial_95``: whether the
    arm beats both with 95 % confidence (both skills' lower bounds above 0)."""
    records = _read(files)
    _check_data(summary, records, on="flow")
    by_flow = {r["flow"]: r for r in records}
    missing = sorted(set(summary["flow"]) - set(by_flow))
    if missing:
        raise ValueError(f"no trivial baseline for flow(s) {missing}")
    summary["persistence_test_rmse"] = summary["flow"].map(lambda f: by_flow[f]["scores"]["test"]["rmse"])
    summary["linear_extrapolation_test_rmse"] = summary["flow"].map(lambda f: _linear(by_flow[f], "test"))
    _skill(summary, "test_rmse", "persistence_test_rmse", "test_rmse_skill_vs_persistence")
    _skill(summary, "test_rmse", "linear_extrapolation_test_rmse", "test_rmse_skill_vs_linear_extrapolation")
    summary["beats_trivial_95"] = (summary["test_rmse_skill_vs_persistence_ci_low"] > 0) & (
        summary["test_rmse_skill_vs_linear_extrapolation_ci_low"] > 0
    )
    return summary
