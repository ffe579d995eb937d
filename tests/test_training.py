"""Training: seeded, resumable after a kill with identical numbers, a truly best checkpoint, disjoint splits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import kill_hook
from equidyn import jobserver
from equidyn.data.smoke import PlumePhysics
from equidyn.data.smoke_datasets import build_level, frames_dataset
from equidyn.runs import CHECKPOINTS, EARLY_CHECKPOINT, EARLY_EPOCH
from equidyn.store import write_store
from equidyn.studies import levels
from equidyn.training import checkpoint
from equidyn.training.tasks import ForecastTask, rollout_loss

SETTINGS = {
    "splits": {"train": [0, 8], "valid": [8, 11], "test": [11, 14]},
    "input_frames": 1,
    "rollout": {"train": 2, "valid": 1, "test": 2},
    "physics": {},
    "base": {},
    "models": [
        {"name": "convnet", "hidden": 4, "layers": 3},
        {"name": "rsteer", "hidden": 2, "layers": 2, "alphas": [0, 0.1]},
    ],
    "training": {"epochs": 5, "batch_size": 4, "lr": 3e-3, "patience": 5, "device": "cpu"},
    "evaluation": {"ee_samples": 4},
}


@pytest.fixture
def level_store(tmp_path_factory, smooth):
    return make_level_store(tmp_path_factory.mktemp("data"), smooth, np.random.default_rng(3))


def make_level_store(tmp, smooth, rng):
    """A level-1 store of 5 smooth 8×8 plumes, 14 frames (also what made ``tests/golden/old_optimiser_state``)."""
    velocity = smooth(rng, (5, 14, 2, 8, 8))
    ds = frames_dataset(
        velocity,
        PlumePhysics(grid=8, n_steps=14, keep_from=0),
        {
            "inflow_x": ("sim", np.zeros(5)),
            "inflow_y": ("sim", np.zeros(5)),
        },
    )
    write_store(ds, tmp / "base.zarr", {})
    build_level(tmp / "base.zarr", 1, SETTINGS["splits"], tmp / "level1.zarr")
    return tmp / "level1.zarr"


def test_windows_never_cross_split_boundaries(level_store) -> None:
    task, _ = levels.make_task(SETTINGS, level_store)
    frames_used = {}
    for split in ("train", "valid", "test"):
        w = task.windows[split]
        length = task.input_frames + task.steps[split]
        frames_used[split] = {int(s) + k for s in w[:, 1] for k in range(length)}
        lo, hi = SETTINGS["splits"][split]
        assert min(frames_used[split]) >= lo and max(frames_used[split]) < hi
    assert not frames_used["train"] & frames_used["valid"]
    assert not frames_used["train"] & frames_used["test"]
    assert not frames_used["valid"] & frames_used["test"]


def test_rollout_loss_sums_per_step_losses() -> None:
    frames = torch.randn(1, 6, 2, 4, 4)
    task = ForecastTask(frames, {"train": torch.tensor([[0, 0]])}, 1, {"train": 3}, 1.0)
    model = torch.nn.Conv2d(2, 2, 1)
    x, y = task.batch("train", torch.tensor([0]))
    preds = task.predict(model, x, 3)
    expected = sum(torch.nn.functional.mse_loss(preds[:, s], y[:, s]) for s in range(3))
    assert torch.allclose(rollout_loss(task, model, x, y), expected)
    assert torch.equal(preds[:, 1], model(model(x)))  # autoregressive


def _run(level_store, run_dir, model="convnet", alpha=0.0, seed=0):
    settings = levels.run_settings(SETTINGS, {"model": model})
    return levels.train_run(settings, level_store, run_dir, model=model, alpha=alpha, level=1, seed=seed)


def test_best_checkpoint_is_the_best_validation_epoch_and_results_are_seeded(level_store, tmp_path) -> None:
    summary = _run(level_store, tmp_path / "a", seed=0)
    hist = pd.read_csv(tmp_path / "a" / "history.csv")
    assert list(hist.columns[:4]) == ["epoch", "train_loss", "train_rmse", "val_rmse"]
    best = checkpoint.load(tmp_path / "a" / "best.pt")
    assert best["epoch"] == int(hist.loc[hist.val_rmse.idxmin(), "epoch"]) == summary["best_epoch"]
    assert checkpoint.load(tmp_path / "a" / f"{EARLY_CHECKPOINT}.pt")["epoch"] == EARLY_EPOCH
    # the best checkpoint holds that epoch's weights, not the last epoch's
    model, _ = checkpoint.load_model(tmp_path / "a" / "best.pt")
    task, _ = levels.make_task(SETTINGS, level_store)
    from equidyn.training.tasks import score

    assert score(task, model, "valid")["rmse"] == pytest.approx(hist.val_rmse.min(), rel=1e-6)
    evals = {c: json.loads((tmp_path / "a" / f"eval_{c}.json").read_text()) for c in CHECKPOINTS}
    assert evals["best"]["checkpoint_epoch"] == best["epoch"] and evals["best"]["seed"] == 0
    assert {"scores", "ee", "ee_rel", "config_sha", "git_rev", "data_sha"} <= set(evals["best"])
    assert evals["best"]["scores"]["test"]["rmse"] > 0
    # same seed -> same numbers; seed 0 is a real seed
    _run(level_store, tmp_path / "b", seed=0)
    _run(level_store, tmp_path / "c", seed=1)
    h_b = pd.read_csv(tmp_path / "b" / "history.csv")
    h_c = pd.read_csv(tmp_path / "c" / "history.csv")
    assert np.array_equal(hist.val_rmse.values, h_b.val_rmse.values)
    assert not np.array_equal(hist.val_rmse.values, h_c.val_rmse.values)


def test_alpha_enters_the_loss_linearly_and_only_for_regularised_models(level_store, tmp_path) -> None:
    with pytest.raises(ValueError, match="has no regularizer"):
        _run(level_store, tmp_path / "x", model="convnet", alpha=0.1)
    _run(level_store, tmp_path / "r0", model="rsteer", alpha=0.0)
    _run(level_store, tmp_path / "r1", model="rsteer", alpha=0.1)
    reg0 = pd.read_csv(tmp_path / "r0" / "history.csv").regularizer.iloc[-1]
    reg1 = pd.read_csv(tmp_path / "r1" / "history.csv").regularizer.iloc[-1]
    assert reg1 < reg0  # the penalty pulls the relaxed weights towards equivariance


def _same_numbers(a_dir, b_dir) -> tuple[dict, dict]:
    """Two run directories hold bit-identical histories (but the wall times) and best-checkpoint scores; returns
    their ``eval_best.json`` for further checks."""
    a = pd.read_csv(a_dir / "history.csv").drop(columns="seconds")
    b = pd.read_csv(b_dir / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    ea = json.loads((a_dir / "eval_best.json").read_text())
    eb = json.loads((b_dir / "eval_best.json").read_text())
    assert ea["scores"] == eb["scores"]
    return ea, eb


@pytest.mark.parametrize("job_server", [False, True], ids=["own-process", "job-server"])
def test_a_killed_training_job_resumes_to_identical_numbers(
    level_store, tmp_path, job_server, python_killed_after_epoch
) -> None:
    """Killed and resumed equals straight; also when the killed and resumed jobs are forked by the local job
    server (equidyn.jobserver) and the straight one runs in its own process: the server changes no number."""
    settings = json.dumps(levels.run_settings(SETTINGS, {"model": "rsteer"}))
    server = None
    if job_server:
        server = jobserver.start(str(python_killed_after_epoch), str(tmp_path / "server.log"),
                                 {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
        assert server is not None

    def cli(run_dir, kill_after=None, via_server=job_server):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        env.pop(kill_hook.ENV, None)
        env.pop(jobserver.ENV, None)
        if via_server:
            env[jobserver.ENV] = server.path
        if kill_after is not None:
            env[kill_hook.ENV] = str(kill_after)
        return subprocess.run(
            [
                str(python_killed_after_epoch) if kill_after is not None else sys.executable,
                "-m",
                "equidyn.cli",
                "levels-train",
                "--settings",
                settings,
                "--store",
                str(level_store),
                "--model",
                "rsteer",
                "--alpha",
                "0.1",
                "--level",
                "1",
                "--seed",
                "7",
                "--run-dir",
                str(run_dir),
                "--threads",
                "1",
            ],
            env=env,
            capture_output=True,
            text=True,
        )

    try:
        killed = cli(tmp_path / "killed", kill_after=2)
        # SIGKILL, as a scheduler would; through the server the client reports it as the shell does (128 + 9)
        assert killed.returncode == (128 + 9 if job_server else -9), killed.stderr
        assert (tmp_path / "killed" / "state" / "last.pt").exists()
        assert not (tmp_path / "killed" / "best.pt").exists()  # no declared output before the end
        resumed = cli(tmp_path / "killed")
    finally:
        if server is not None:
            server.stop()
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    straight = cli(tmp_path / "straight", via_server=False)
    assert straight.returncode == 0, straight.stderr
    ea, eb = _same_numbers(tmp_path / "killed", tmp_path / "straight")
    assert ea["ee"] == eb["ee"]


def test_raising_epochs_continues_a_finished_run_to_the_numbers_of_a_longer_one(level_store, tmp_path) -> None:
    """Issue 11: curves that had not flattened are trained on, not retrained, and end as if run straight."""

    def run(run_dir, epochs):
        settings = levels.run_settings(SETTINGS, {"model": "convnet"})
        settings = {**settings, "training": {**settings["training"], "epochs": epochs, "patience": 99}}
        return levels.train_run(settings, level_store, run_dir, model="convnet", alpha=0.0, level=1, seed=2)

    assert run(tmp_path / "extended", 4)["epochs_run"] == 4
    assert run(tmp_path / "extended", 6)["epochs_run"] == 6
    run(tmp_path / "straight", 6)
    ea, eb = _same_numbers(tmp_path / "extended", tmp_path / "straight")
    assert ea["checkpoint_epoch"] == eb["checkpoint_epoch"]
    assert ea["config_sha"] == eb["config_sha"]  # the extended run's lineage is the longer run's
    with pytest.raises(RuntimeError, match="more than the configured 5"):
        run(tmp_path / "extended", 5)


def test_resume_refuses_state_from_another_configuration(level_store, tmp_path) -> None:
    _run(level_store, tmp_path / "r", seed=0)
    with pytest.raises(RuntimeError, match="different configuration"):
        _run(level_store, tmp_path / "r", seed=1)


# What equidyn's own Adam and ExponentialLR (training/optim.py, replaced by torch.optim in issue 22) saved in
# ``state/last.pt``: torch's layout less the entries below them (see tests/golden/old_optimiser_state, written by them).
OLD_GROUP_KEYS = {"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "params"}
OLD_SCHEDULER_KEYS = {"gamma", "base_lrs", "last_epoch"}
OLD_STATE_DIR = Path(__file__).parent / "golden" / "old_optimiser_state" / "state"
OLD_STATE = OLD_STATE_DIR / "last.pt"


def _in_old_layout(state: dict) -> dict:
    groups = [{k: v for k, v in g.items() if k in OLD_GROUP_KEYS} for g in state["optimiser"]["param_groups"]]
    scheduler = {k: v for k, v in state["scheduler"].items() if k in OLD_SCHEDULER_KEYS}
    return {**state, "optimiser": {**state["optimiser"], "param_groups": groups}, "scheduler": scheduler}


def _convnet_run(level_store, run_dir, epochs: int, seed: int = 0):
    """The convnet run of SETTINGS (patience 5: it runs every epoch up to 5) for ``epochs`` epochs."""
    settings = levels.run_settings(SETTINGS, {"model": "convnet"})
    settings = {**settings, "training": {**settings["training"], "epochs": epochs}}
    return levels.train_run(settings, level_store, run_dir, model="convnet", alpha=0.0, level=1, seed=seed)


def test_the_golden_old_state_has_the_old_optimisers_layout() -> None:
    """The layout the tests below strip a state to is the one the hand-written optimiser really wrote."""
    state = checkpoint.load(OLD_STATE)
    (group,) = state["optimiser"]["param_groups"]
    assert set(group) == OLD_GROUP_KEYS and set(state["scheduler"]) == OLD_SCHEDULER_KEYS
    assert all(s["step"].dtype == torch.float32 and s["step"].ndim == 0 for s in state["optimiser"]["state"].values())


def test_a_state_saved_by_the_old_optimiser_resumes_to_the_numbers_of_an_uninterrupted_run(level_store, tmp_path):
    """A run whose ``state/last.pt`` has the old optimiser's layout (stripped from a real one, so that the first
    epochs are this machine's) continues with torch.optim bit for bit as a run that never stopped."""
    _convnet_run(level_store, tmp_path / "old", 3)
    last = tmp_path / "old" / "state" / "last.pt"
    checkpoint.save(last, _in_old_layout(checkpoint.load(last)))
    _convnet_run(level_store, tmp_path / "old", 5)
    _convnet_run(level_store, tmp_path / "straight", 5)
    _same_numbers(tmp_path / "old", tmp_path / "straight")


def test_the_golden_state_of_the_old_optimiser_resumes(level_store, tmp_path):
    """``last.pt`` as the hand-written optimiser wrote it (3 epochs, tests/golden/old_optimiser_state) loads and
    trains on: epochs 4 and 5 follow its history and the lr schedule goes on from its third epoch. (Its first three
    epochs were computed on the machine that wrote the file, so later epochs are compared by value, not by bit.)"""
    run_dir = tmp_path / "golden"
    shutil.copytree(OLD_STATE_DIR, run_dir / "state")
    old = checkpoint.load(OLD_STATE)
    assert _convnet_run(level_store, run_dir, 5)["epochs_run"] == 5
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history.epoch) == [1, 2, 3, 4, 5]
    assert history.train_loss[:3].tolist() == pytest.approx([row["train_loss"] for row in old["history"]], rel=1e-12)
    gamma, lr3 = SETTINGS["training"].get("lr_gamma", 0.95), old["history"][-1]["lr"]
    assert history.lr[3:].tolist() == pytest.approx([lr3 * gamma, lr3 * gamma**2], rel=1e-12)
    assert np.isfinite(history.val_rmse).all() and history.train_loss[4] < history.train_loss[0]


def test_the_old_layout_becomes_torchs_own_so_the_scheduler_knows_its_last_lr() -> None:
    """Loaded as saved, an old scheduler state would leave torch's ``_last_lr`` at the first epoch's lr; converted,
    the optimiser and scheduler hold what torch's own would after the same steps."""
    from equidyn.training.trainer import torch_optimiser_state

    def make():
        torch.manual_seed(0)
        net = torch.nn.Linear(3, 2)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-3)
        return net, opt, torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)

    net, opt, sched = make()
    for _ in range(3):
        net(torch.ones(4, 3)).sum().backward()
        opt.step()
        sched.step()
    old = _in_old_layout({"optimiser": opt.state_dict(), "scheduler": sched.state_dict()})
    _, plain_opt, plain_sched = make()
    plain_opt.load_state_dict(old["optimiser"])
    plain_sched.load_state_dict(old["scheduler"])
    assert plain_sched.get_last_lr() != sched.get_last_lr()  # what the conversion is for
    _, new_opt, new_sched = make()
    converted = torch_optimiser_state(old["optimiser"], old["scheduler"])
    new_opt.load_state_dict(converted[0])
    new_sched.load_state_dict(converted[1])
    assert new_sched.state_dict() == sched.state_dict()
    assert new_opt.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    # a state torch wrote passes unchanged
    assert torch_optimiser_state(opt.state_dict(), sched.state_dict())[1] == sched.state_dict()


def test_spread_elements_picks_evenly_spread_non_identity_elements() -> None:
    from equidyn.studies.common import spread_elements

    assert spread_elements(48, 1) == [1]
    assert spread_elements(48, 4) == [1, 12, 24, 36]
    assert spread_elements(4, 0) == spread_elements(4, 9) == [1, 2, 3]


def test_evaluation_can_average_the_ee_over_fewer_elements(level_store, tmp_path) -> None:
    """``evaluation.ee_elements`` (the paper-scale check's cap) is honoured and recorded; unset means all."""
    capped = {**SETTINGS, "evaluation": {"ee_samples": 4, "ee_elements": 1}}
    settings = levels.run_settings(capped, {"model": "convnet"})
    levels.train_run(settings, level_store, tmp_path / "one", model="convnet", alpha=0.0, level=1, seed=0)
    _run(level_store, tmp_path / "all", seed=0)
    one = json.loads((tmp_path / "one" / "eval_best.json").read_text())
    every = json.loads((tmp_path / "all" / "eval_best.json").read_text())
    assert one["ee_elements"] == [1] and every["ee_elements"] == [1, 2, 3]
    assert one["ee"] != every["ee"]  # a ConvNet is not equivariant: the elements matter


def test_training_by_level_gives_some_levels_more_epochs_and_leaves_the_others() -> None:
    section = {**SETTINGS, "training_by_level": [{"levels": [3, 6], "epochs": 9}]}
    at = {level: levels.run_settings(section, {"model": "convnet", "level": level}) for level in (0, "3", 6)}
    assert at["3"]["training"]["epochs"] == at[6]["training"]["epochs"] == 9
    assert at[0] == levels.run_settings(SETTINGS, {"model": "convnet", "level": 0})  # unchanged: no rerun
    assert at["3"]["training"]["batch_size"] == SETTINGS["training"]["batch_size"]


def test_a_resumed_run_continues_the_random_draws_of_its_regulariser(tmp_path) -> None:
    """The tutorial's equivariance penalty draws its group elements from torch's global generator. A run resumed
    (here: extended, the same code path) must continue that stream, not restart it from the seed: the laptop
    study's one extended penalty run differed from a straight run from its first new epoch on, before the fix."""
    from equidyn.models.base import ModelSpec
    from equidyn.symmetry import FieldLayout
    from equidyn.training import trainer
    from equidyn.training.tasks import PairTask

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 3, 8, 8, generator=gen), torch.randn(24, 3, 8, 8, generator=gen)
    layouts = {
        "in_layout": FieldLayout.parse("1 vector + 1 scalar"),
        "out_layout": FieldLayout.parse("1 sign + 1 vector"),
    }
    spec = ModelSpec(name="closure_cnn_penalty", hidden=4, layers=3, grid=(8, 8), **layouts)

    def run(run_dir, epochs):
        task = PairTask({s: x for s in ("train", "valid", "test")}, {s: y for s in ("train", "valid", "test")}, 1.0)
        settings = trainer.TrainSettings(epochs=epochs, batch_size=8, patience=99, device="cpu")
        torch.manual_seed(12345)  # whatever the process did before: the run must not depend on it
        return trainer.train(task, spec, settings, run_dir, seed=2, alpha=0.1)

    run(tmp_path / "extended", 3)
    run(tmp_path / "extended", 5)
    run(tmp_path / "straight", 5)
    a = pd.read_csv(tmp_path / "extended" / "history.csv").drop(columns="seconds")
    b = pd.read_csv(tmp_path / "straight" / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
