"""Issue 20: the held-out level protocol, the tied RSteer, the augmented ConvNet and the collapse diagnostic."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from equidyn.data.smoke import PlumePhysics
from equidyn.data.smoke_datasets import (
    build_heldout_level,
    data_equivariance_error,
    frames_dataset,
    heldout_split_sims,
    unrotated_tasks,
)
from equidyn.measures.correction import correction_diagnostics, flops_per_sample
from equidyn.measures.equivariance import equivariance_error
from equidyn.models.base import ModelSpec
from equidyn.models.registry import build_model
from equidyn.store import open_store, write_store
from equidyn.studies import common, levels
from equidyn.symmetry import C4, FieldLayout

G = C4()
GROUPS = {"train": [0, 2, 4], "valid": [3], "test": [1, 5]}


def _base(tmp_path, rng, smooth, n_sims=12, n_frames=8, n=8):
    physics = PlumePhysics(grid=n, n_steps=n_frames, keep_from=0)
    velocity = smooth(rng, (n_sims, n_frames, 2, n, n))
    ds = frames_dataset(
        velocity, physics, {"inflow_x": ("sim", np.zeros(n_sims)), "inflow_y": ("sim", np.zeros(n_sims))}
    )
    write_store(ds, tmp_path / "base.zarr", {"physics": {}, "base": {}})
    return tmp_path / "base.zarr", velocity


def test_heldout_level_holds_out_whole_rotated_plume_groups(tmp_path, rng, smooth) -> None:
    base, velocity = _base(tmp_path, rng, smooth)
    build_heldout_level(base, 2, GROUPS, tmp_path / "l2.zarr")
    ds = open_store(tmp_path / "l2.zarr")
    assert ds.attrs["protocol"] == "heldout"
    sims = heldout_split_sims(ds)
    assert sims == {"train": list(range(12)), "valid": [12, 13, 14, 15], "test": list(range(16, 24))}
    # group b of level 2 is base plumes b, b+2, b+4, b+6, the j-th rotated by j·90°
    for sim in range(ds.sizes["sim"]):
        b, j = int(ds.group.values[sim]), int(ds.rotation.values[sim])
        assert int(ds.base_sim.values[sim]) == b + 2 * j
    assert np.array_equal(unrotated_tasks(ds), velocity[ds.base_sim.values])
    # the scale is the training groups' rms speed over every frame: no valid/test plume enters it
    train = velocity[ds.base_sim.values[sims["train"]]].astype(np.float64)
    assert ds.attrs["norm_scale"] == pytest.approx(np.sqrt((train**2).sum(2).mean()))
    # data EE: the mean over groups of each group's EE in the published definition
    d = velocity.astype(np.float64)
    per_group = [np.mean([np.abs(d[b] - d[b + 2 * j]).mean() for j in (1, 2, 3)]) for b in (0, 2, 4, 3, 1, 5)]
    assert data_equivariance_error(ds, frames=None) == pytest.approx(np.mean(per_group), rel=1e-12)


def test_heldout_level_zero_is_exactly_symmetric(tmp_path, rng, smooth) -> None:
    base, _ = _base(tmp_path, rng, smooth)
    build_heldout_level(base, 0, GROUPS, tmp_path / "l0.zarr")
    ds = open_store(tmp_path / "l0.zarr")
    assert data_equivariance_error(ds, frames=None) == 0.0
    v = ds.velocity.values
    layout = FieldLayout.of(("vector", v.shape[1]))
    for g in range(0, v.shape[0], 4):
        for k in (1, 2, 3):
            rotated = G.act_numpy(k, v[g].reshape(1, -1, 8, 8), layout).reshape(v[g].shape)
            assert np.array_equal(rotated, v[g + k])


def test_heldout_groups_are_validated(tmp_path, rng, smooth) -> None:
    base, _ = _base(tmp_path, rng, smooth)
    with pytest.raises(ValueError, match=r"levels\.heldout\.test: group 2 is also in levels\.heldout\.train"):
        build_heldout_level(base, 0, {"train": [0, 2], "valid": [3], "test": [2]}, tmp_path / "x.zarr")
    with pytest.raises(ValueError, match=r"group 3 of level 3 needs base plume 12.*at least 13"):
        build_heldout_level(base, 3, {"train": [0], "valid": [3], "test": [5]}, tmp_path / "x.zarr")
    with pytest.raises(ValueError, match="missing \\['valid'\\]"):
        build_heldout_level(base, 0, {"train": [0], "valid": [], "test": [5]}, tmp_path / "x.zarr")
    assert not (tmp_path / "x.zarr").exists()


def _settings(model: dict, **over) -> dict:
    return {
        "input_frames": 2,
        "rollout": {"train": 1, "valid": 1, "test": 1},
        "model": model,
        **over,
    }


def test_heldout_task_uses_every_frame_of_the_split_groups(tmp_path, rng, smooth) -> None:
    base, _ = _base(tmp_path, rng, smooth)
    build_heldout_level(base, 0, GROUPS, tmp_path / "l0.zarr")
    task, ds = levels.make_task(_settings({"name": "convnet"}), tmp_path / "l0.zarr")
    sims = heldout_split_sims(ds)
    for split in ("train", "valid", "test"):
        w = task.windows[split]
        assert set(w[:, 0].tolist()) == set(sims[split])
        assert sorted(set(w[:, 1].tolist())) == list(range(8 - 3 + 1))  # every start of a 3-frame window
        assert len(w) == len(sims[split]) * 6
    assert task.augment is None


def test_augmented_windows_are_group_transforms_of_the_originals(tmp_path, rng, smooth) -> None:
    base, _ = _base(tmp_path, rng, smooth)
    build_heldout_level(base, 0, GROUPS, tmp_path / "l0.zarr")
    task, _ = levels.make_task(_settings({"name": "convnet", "augment": True}), tmp_path / "l0.zarr")
    x, y = task.batch("train", torch.arange(16))
    xa, ya = task.augment(x, y, torch.Generator().manual_seed(0))
    layout_in, layout_out = FieldLayout.parse("2 vector"), FieldLayout.parse("1 vector")
    used = set()
    for i in range(16):
        match = [g for g in range(4) if torch.equal(G.act(g, x[i : i + 1], layout_in), xa[i : i + 1])]
        assert match, f"window {i} is not a rotation of its original"
        g = match[0]
        used.add(g)
        assert torch.equal(G.act(g, y[i : i + 1, 0], layout_out), ya[i : i + 1, 0])  # the same element on the target
    assert len(used) > 1  # random elements, not one fixed rotation


def test_model_labels_identify_entries_that_share_a_network() -> None:
    section = {
        "models": [
            {"name": "convnet", "alphas": [0]},
            {"name": "convnet", "label": "convnet_aug", "augment": True},
        ],
        "seeds": [0],
    }
    runs = common.model_alpha_seed_runs(section, levels=[0])
    assert [r["model"] for r in runs] == ["convnet", "convnet_aug"]
    assert common.model_entry(section["models"], "convnet_aug")["augment"] is True
    with pytest.raises(ValueError, match="'nope' is not in"):
        common.model_entry(section["models"], "nope")


def _spec(name: str = "rsteer", **over) -> ModelSpec:
    """A small 2-frame → 1-frame vector model spec of the level study."""
    fields = {
        "name": name,
        "in_layout": FieldLayout.parse("2 vector"),
        "out_layout": FieldLayout.parse("1 vector"),
        "hidden": 1,
        "layers": 3,
        "grid": (8, 8),
        "group": "C4",
        "residual": "linear",
        "rescale": True,
        **over,
    }
    return ModelSpec(**fields)


def _rsteer(tied: bool):
    spec = _spec(options={"tied": True} if tied else {})
    torch.manual_seed(0)
    return build_model(spec)


def test_tied_projection_is_the_orthogonal_projection_onto_constant_coefficients() -> None:
    conv = _rsteer(tied=True).relaxed_convs()[0]
    v = torch.randn_like(conv.weights)
    p = conv.tied_projection(v)
    assert torch.allclose(conv.tied_projection(p), p)  # idempotent
    assert float((v - p) @ p) == pytest.approx(0.0, abs=1e-5)  # orthogonal
    c = torch.arange(conv.n_coefficients, dtype=v.dtype)
    assert torch.equal(conv.tied_projection(conv.constant(c)), conv.constant(c))


def _constant_over_taps(conv) -> bool:
    """Every coefficient's entries are bit-for-bit equal over the taps where it acts."""
    w, c = conv.weights.detach(), conv.active_coefficient
    first = torch.zeros(conv.n_coefficients, dtype=w.dtype).index_reduce(0, c, w, "amin", include_self=False)
    return torch.equal(w, first[c])


@pytest.mark.parametrize("tied", [True, False])
def test_a_tied_rsteer_stays_equivariant_through_training_and_a_free_one_does_not(tied, rng, smooth) -> None:
    model = _rsteer(tied)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=4e-4)
    x = torch.from_numpy(smooth(rng, (8, 4, 8, 8)))
    y = torch.from_numpy(smooth(rng, (8, 2, 8, 8))) * torch.linspace(0.5, 2, 8)[None, None, :, None]  # not symmetric
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        model.project_gradients()
        opt.step()
    taps_constant = all(_constant_over_taps(conv) for conv in model.relaxed_convs())
    model.eval()
    ee = equivariance_error(model, x, G, model.in_layout, model.out_layout)["ee_rel"]
    if tied:
        assert taps_constant
        assert ee < 1e-5
    else:
        assert not taps_constant
        assert ee > 1e-3


def test_rsteer_rejects_unknown_options() -> None:
    spec = _spec(options={"tyed": True})
    with pytest.raises(ValueError, match="unknown options \\['tyed'\\]"):
        build_model(spec)


class _Fixed(torch.nn.Module):
    """A 'model' that returns skip + t·(target − skip): correction ratio |t|, skill 1 − |1 − t|."""

    def __init__(self, task, t: float) -> None:
        super().__init__()
        self.task, self.t = task, t
        self.spec = _spec("fixed", layers=2)
        self.out_channels = 2

    def forward(self, x):
        w = self.task.windows["test"]
        # find each input's target by matching the window (the test set is small)
        xs, ys = self.task.batch("test", torch.arange(len(w)))
        out = []
        for xi in x:
            i = int(torch.nonzero((xs == xi).flatten(1).all(1))[0])
            skip = 2 * xi[2:] - xi[:2]
            out.append(skip + self.t * (ys[i, 0] - skip))
        return torch.stack(out)


@pytest.mark.parametrize("t", [0.0, 0.5, 1.0])
def test_correction_diagnostics_have_known_answers(t, tmp_path, rng, smooth) -> None:
    base, _ = _base(tmp_path, rng, smooth)
    build_heldout_level(base, 0, GROUPS, tmp_path / "l0.zarr")
    task, _ = levels.make_task(_settings({"name": "convnet"}), tmp_path / "l0.zarr")
    d = correction_diagnostics(task, _Fixed(task, t), "test", batch_size=7)
    assert d["correction_ratio"] == pytest.approx(t, abs=1e-5)
    assert d["skill_vs_skip"] == pytest.approx(t, abs=1e-5)


def test_flops_of_a_convolution_are_counted_exactly() -> None:
    conv = torch.nn.Conv2d(3, 5, 3, padding=1, bias=False)
    assert flops_per_sample(conv, torch.zeros(4, 3, 8, 8)) == 2 * 5 * 3 * 9 * 64  # one multiply-add = 2


def test_heldout_run_settings_keep_the_published_protocols_identity() -> None:
    section = json.loads(
        json.dumps(
            {
                "physics": {},
                "base": {},
                "splits": {"train": [0, 2], "valid": [2, 3], "test": [3, 4]},
                "input_frames": 2,
                "rollout": {},
                "training": {},
                "evaluation": {},
                "models": [{"name": "convnet", "alphas": [0]}],
                "seeds": [0],
                "levels": [0],
            }
        )
    )
    run = {"model": "convnet", "alpha": "0", "level": 0, "seed": 0}
    published = levels.run_settings(section, run)
    assert "splits" in published and "protocol" not in published and "heldout" not in published
    without_splits = {k: v for k, v in section.items() if k != "splits"}
    heldout = levels.run_settings({**without_splits, "protocol": "heldout", "heldout": GROUPS}, run)
    assert "splits" not in heldout and heldout["heldout"] == GROUPS and heldout["protocol"] == "heldout"


def test_lambda_max_vs_skill_figure_plots_one_point_per_measured_run(tmp_path) -> None:
    import pandas as pd

    from equidyn.figures.dynamics import lambda_max_vs_skill

    rows = []
    for model, alpha in (("e2cnn", 0.0), ("rsteer", 0.01), ("rsteer_tied", 0.0)):
        for seed in range(4):
            rows.append(
                {
                    "study": "levels",
                    "model": model,
                    "alpha": alpha,
                    "level": 0,
                    "seed": seed,
                    "checkpoint": "best",
                    "skill_vs_skip": 0.5 + 0.1 * seed,
                    "hessian_lambda_max": 1.0 + seed,
                    "config_sha": "c",
                    "git_rev": "g",
                    "data_sha": "d",
                }
            )
    rows.append({**rows[0], "checkpoint": "epoch3"})  # not plotted
    pd.DataFrame(rows).to_csv(tmp_path / "dynamics.csv", index=False)
    lambda_max_vs_skill(tmp_path / "dynamics.csv", tmp_path / "fig.pdf")
    assert (tmp_path / "fig.pdf").stat().st_size > 0 and (tmp_path / "fig.png").exists()
    pd.DataFrame(rows).drop(columns=["skill_vs_skip"]).to_csv(tmp_path / "old.csv", index=False)
    with pytest.raises(ValueError, match="lacks \\['skill_vs_skip'\\]"):
        lambda_max_vs_skill(tmp_path / "old.csv", tmp_path / "old.pdf")


def test_lambda_max_vs_skill_derives_the_skill_of_an_older_table(tmp_path) -> None:
    import pandas as pd

    from equidyn.figures.dynamics import lambda_max_vs_skill

    base = {"study": "levels", "alpha": 0.0, "level": 0, "checkpoint": "best", "config_sha": "c", "git_rev": "g"}
    rows = [
        {**base, "model": m, "seed": s, "test_rmse": 0.002 + 0.001 * s, "hessian_lambda_max": 1.0 + s, "data_sha": "d"}
        for m in ("e2cnn", "rsteer")
        for s in range(3)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "dynamics.csv", index=False)
    pd.DataFrame([{"level": 0, "linear_extrapolation_test_rmse": 0.004}]).to_csv(tmp_path / "summary.csv", index=False)
    lambda_max_vs_skill(tmp_path / "dynamics.csv", tmp_path / "fig.pdf", tmp_path / "summary.csv")
    assert (tmp_path / "fig.png").exists()


def test_dynamics_figures_draw_a_table_measured_at_the_best_checkpoint_only(tmp_path) -> None:
    """``dynamics.runs[].checkpoints: [best]``: the epoch-3 rows carry no measure, and the figures skip them."""
    import pandas as pd

    from equidyn.figures.dynamics import sharpness

    rows = []
    for model in ("e2cnn", "rsteer"):
        for seed in range(3):
            for ckpt in ("epoch3", "best"):
                measured = ckpt == "best"
                rows.append(
                    {
                        "study": "levels",
                        "model": model,
                        "alpha": 0.0,
                        "level": 0,
                        "seed": seed,
                        "checkpoint": ckpt,
                        "sharpness_blog": 0.1 + seed if measured else float("nan"),
                        "sharpness_curvature": 0.01 * (seed + 1) if measured else float("nan"),
                        "config_sha": "c",
                        "git_rev": "g",
                        "data_sha": "d",
                    }
                )
    pd.DataFrame(rows).to_csv(tmp_path / "dynamics.csv", index=False)
    sharpness(tmp_path / "dynamics.csv", tmp_path / "sharpness.pdf")
    assert (tmp_path / "sharpness.png").exists()


def test_a_model_without_a_skip_is_measured_against_persistence(tmp_path, rng, smooth) -> None:
    base, _ = _base(tmp_path, rng, smooth)
    build_heldout_level(base, 0, GROUPS, tmp_path / "l0.zarr")
    task, _ = levels.make_task(_settings({"name": "convnet"}), tmp_path / "l0.zarr")

    class Persistence(torch.nn.Module):
        spec = _spec("persistence", residual="")
        out_channels = 2

        def forward(self, x):
            return x[:, 2:]

    d = correction_diagnostics(task, Persistence(), "test")
    assert d["skip"] == "last" and d["correction_ratio"] == 0.0 and d["skill_vs_skip"] == pytest.approx(0.0, abs=1e-9)


def test_extra_seeds_extend_the_arms_of_one_comparison_and_rerun_nothing() -> None:
    """Issue 20, item 3: a claim that ≤ 20 seeds would resolve is extended by seeds of its two arms only."""
    import copy
    from pathlib import Path

    from equidyn.config import check_runnable, load_config

    root = Path(__file__).resolve().parents[1]
    config = load_config([root / "config" / "config.yaml", root / "config" / "heldout.yaml"])
    section = copy.deepcopy(config["levels"])
    for entry in section["models"]:  # the 10-seed study, before its extension
        entry.pop("extra_seeds", None)
    extended = copy.deepcopy(section)
    for entry in extended["models"]:
        if common.model_label(entry) in ("e2cnn", "rsteer_tied"):
            entry["extra_seeds"] = [10, 11, 12, 13]
    before, after = levels.runs(section), levels.runs(extended)
    added = [r for r in after if r not in before]
    assert {r["model"] for r in added} == {"e2cnn", "rsteer_tied"} and len(added) == 8
    assert all(r in after for r in before)
    # an existing run's settings (its config_sha and rerun trigger) are unchanged
    for run in before:
        assert levels.run_settings(extended, run) == levels.run_settings(section, run)
    bad = copy.deepcopy(config)
    bad["levels"]["models"][2]["extra_seeds"] = [9, 10]
    assert any("extra_seeds[0]: seed 9 is already in levels.seeds" in p for p in check_runnable(bad))


def test_heldout_group_problems_are_one_check_for_the_config_and_the_builder() -> None:
    """The one check behind both the config validation (tests/test_faults.py) and the store builder
    (test_heldout_groups_are_validated): every problem at once, each naming its config key."""
    from equidyn.data.heldout_groups import heldout_group_problems

    assert heldout_group_problems({"train": [0, 2], "valid": [3], "test": [1]}, 3, 13) == []
    problems = heldout_group_problems({"train": [0, -1], "valid": [0], "test": [4]}, 3, 13)
    assert problems == [
        "levels.heldout.train: group -1 is negative",
        "levels.heldout.valid: group 0 is also in levels.heldout.train",
        "levels.heldout: group 4 of level 3 needs base plume 13, but there are 13 base plumes "
        "(raise levels.base.n_sims to at least 14)",
    ]
    assert heldout_group_problems({"train": [0]}, 0, 13) == [
        "levels.heldout needs a non-empty list of base indices for ['train', 'valid', 'test']; "
        "missing ['valid', 'test']"
    ]
