"""The training study on exponax's flows (issue 24): the task on held-out trajectories, the augmentation and the
models on pseudoscalar frames, a tiny study end to end through the training job and the tables, the claims on a
synthetic table with a known answer, and the config.

Everything here runs on tiny synthetic stores in the stores' format (8² cells, a few frames), so it needs neither
jax nor exponax: the stores' own tests are tests/test_exponax_flows.py.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from equidyn.studies import exponax_study as ex

ROOT = Path(__file__).resolve().parents[1]
SPLITS = {"train": [0, 1, 2], "valid": [3], "test": [4]}


def synthetic_store(path: Path, flow: str, rng: np.random.Generator, n_frames: int = 6, grid: int = 8) -> Path:
    """A store in the exponax stores' format (:func:`equidyn.data.exponax_flows.generate`): a smooth periodic field
    drifting by one cell per frame, different per trajectory, ``vorticity (sim, time, y, x)``."""
    from equidyn.store import write_store

    n = sum(len(v) for v in SPLITS.values())
    k = np.fft.fftfreq(grid, 1.0 / grid)
    damp = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / 4)
    w = np.empty((n, n_frames, grid, grid), dtype=np.float32)
    for s in range(n):
        field = np.fft.ifft2(np.fft.fft2(rng.standard_normal((grid, grid))) * damp).real
        for t in range(n_frames):
            w[s, t] = np.roll(field, t, axis=-1) * (1 - 0.05 * t)
    split = np.empty(n, dtype=object)
    for name, sims in SPLITS.items():
        split[sims] = name
    ds = xr.Dataset(
        {"vorticity": (("sim", "time", "y", "x"), w)},
        coords={"sim": np.arange(n), "split": ("sim", split.astype(str)), "time": np.arange(n_frames) * 0.1},
    )
    ds.attrs = {
        "flow": flow,
        "protocol": "heldout",
        "layout": "1 pseudoscalar",
        "split_sims": json.dumps(SPLITS),
        "norm_scale": float(np.sqrt(np.mean(w[SPLITS["train"]].astype(np.float64) ** 2))),
    }
    write_store(ds, path, {"kind": "synthetic exponax-format store", "flow": flow})
    return path


def section(**training) -> dict:
    """A tiny study section in config/exponax.yaml's form (the flows' data settings are not read by training)."""
    models = [
        {"name": "convnet", "hidden": 4, "layers": 2, "residual": "linear", "rescale": True},
        {
            "name": "convnet",
            "label": "convnet_aug",
            "augment": True,
            "hidden": 4,
            "layers": 2,
            "residual": "linear",
            "rescale": True,
        },
        {"name": "e2cnn", "hidden": 2, "layers": 2, "residual": "linear", "rescale": True},
        {"name": "rsteer", "hidden": 2, "layers": 2, "residual": "linear", "rescale": True, "alphas": [0]},
        {
            "name": "rsteer",
            "label": "rsteer_tied",
            "options": {"tied": True},
            "hidden": 2,
            "layers": 2,
            "residual": "linear",
            "rescale": True,
        },
    ]
    return {
        "flows": {"decaying": {"physics": {"grid": 8}}, "kolmogorov": {"physics": {"grid": 8, "drag": -0.1}}},
        "input_frames": 2,
        "rollout": {"train": 1, "valid": 1, "test": 1},
        "seeds": [0, 1],
        "models": models,
        "training": {"epochs": 3, "batch_size": 4, "lr": 1e-2, "max_batches": 2, "device": "cpu", **training},
        "evaluation": {"ee_samples": 4},
    }


# ---------------------------------------------------------------- the task


def test_the_task_holds_out_whole_trajectories_and_uses_every_frame(tmp_path, rng) -> None:
    store = synthetic_store(tmp_path / "decaying.zarr", "decaying", rng)
    settings = ex.run_settings(section(), {"model": "convnet", "alpha": "0", "flow": "decaying", "seed": 0})
    task, ds = ex.make_task(settings, store)
    for split, sims in SPLITS.items():
        w = task.windows[split]
        assert sorted(set(w[:, 0].tolist())) == sims  # only the split's own trajectories
        # every start whose 2 inputs + 1 target lie in the record: 6 frames -> starts 0..3, for each trajectory
        assert sorted(map(tuple, w.tolist())) == list(itertools.product(sims, range(4)))
    assert task.scale == pytest.approx(ds.attrs["norm_scale"])
    x, y = task.batch("test", torch.arange(task.n("test")))
    assert x.shape == (4, 2, 8, 8) and y.shape == (4, 1, 1, 8, 8)
    raw = torch.from_numpy(ds.vorticity.values)
    assert torch.allclose(x[1, 1] * task.scale, raw[4, 2]) and torch.allclose(y[1, 0, 0] * task.scale, raw[4, 3])
    # normalised by the training trajectories' rms only
    train = raw[SPLITS["train"]].double()
    assert task.scale == pytest.approx(float(train.pow(2).mean().sqrt()), rel=1e-6)
    assert task.augment is None


def test_a_store_of_another_flow_is_refused(tmp_path, rng) -> None:
    store = synthetic_store(tmp_path / "kolmogorov.zarr", "kolmogorov", rng)
    settings = ex.run_settings(section(), {"model": "convnet", "alpha": "0", "flow": "decaying", "seed": 0})
    with pytest.raises(ValueError, match="flow 'decaying'"):
        ex.make_task(settings, store)


def test_the_augmentation_acts_on_pseudoscalar_frames_through_the_group_action(tmp_path, rng) -> None:
    """Every augmented window is some C4 element's image of the original under the one group action, the same
    element on the input frames and the target; the action is the pseudoscalar's: the same class on D4 flips the
    sign under every reflection, where a scalar action would not."""
    from equidyn.symmetry import C4, D4, FieldLayout
    from equidyn.training.tasks import C4Augmentation

    store = synthetic_store(tmp_path / "decaying.zarr", "decaying", rng)
    settings = ex.run_settings(section(), {"model": "convnet_aug", "alpha": "0", "flow": "decaying", "seed": 0})
    task, _ = ex.make_task(settings, store)
    aug = task.augment
    assert aug is not None and isinstance(aug.group, C4)
    assert str(aug.in_layout) == "2 pseudoscalar" and str(aug.out_layout) == "1 pseudoscalar"
    x, y = task.batch("train", torch.arange(12))
    xa, ya = aug(x, y, torch.Generator().manual_seed(0))
    used = set()
    for i in range(len(x)):
        g = next(g for g in range(4) if torch.equal(xa[i : i + 1], C4().act(g, x[i : i + 1], aug.in_layout)))
        assert torch.equal(ya[i : i + 1, 0], C4().act(g, y[i : i + 1, 0], aug.out_layout))
        used.add(g)
    assert len(used) > 1
    # the same augmentation over D4: reflections negate the frames after moving them
    d4 = C4Augmentation(D4(), aug.in_layout, aug.out_layout)
    scalar = FieldLayout.parse("2 scalar")
    xd, _ = d4(x, y, torch.Generator().manual_seed(1))
    for i in range(len(x)):
        g = next(g for g in range(8) if torch.equal(xd[i : i + 1], D4().act(g, x[i : i + 1], aug.in_layout)))
        moved = D4().act(g, x[i : i + 1], scalar)
        assert torch.equal(xd[i : i + 1], -moved if D4.is_reflection(g) else moved)


@pytest.mark.parametrize("label", ["e2cnn", "rsteer_tied", "rsteer"])
def test_the_c4_arms_are_exactly_c4_equivariant_on_vorticity_frames(label: str, tmp_path, rng) -> None:
    """E2CNN and the tied RSteer by construction (and the free RSteer at initialisation, where it is the E2CNN):
    rotations of the two input frames rotate the forecast, to float rounding. The mirrors are not imposed."""
    from equidyn.measures.equivariance import equivariance_error
    from equidyn.models.registry import build_model
    from equidyn.symmetry import C4, D4

    store = synthetic_store(tmp_path / "kolmogorov.zarr", "kolmogorov", rng)
    settings = ex.run_settings(section(), {"model": label, "alpha": "0", "flow": "kolmogorov", "seed": 0})
    task, ds = ex.make_task(settings, store)
    spec = ex.spec(settings, ds)
    assert (str(spec.in_layout), str(spec.out_layout), spec.group) == ("2 pseudoscalar", "1 pseudoscalar", "C4")
    torch.manual_seed(0)
    model = build_model(spec).eval()
    x, _ = task.batch("test", torch.arange(4))
    assert equivariance_error(model, x, C4(), spec.in_layout, spec.out_layout)["ee_rel"] < 1e-5
    mirrors = equivariance_error(model, x, D4(), spec.in_layout, spec.out_layout, elements=[4, 5, 6, 7])
    assert mirrors["ee_rel"] > 1e-4  # a C4 model is not built to keep the reflections


def test_a_trained_tied_rsteer_stays_exactly_c4_equivariant_on_vorticity_frames(tmp_path, rng) -> None:
    """The tied arm's claim holds after training, through the training job and its evaluation: its C4 EE stays at
    float noise (RSteer's parameters held in the equivariant subspace), while nothing keeps the mirrors."""
    store = synthetic_store(tmp_path / "decaying.zarr", "decaying", rng)
    run = {"model": "rsteer_tied", "alpha": "0", "flow": "decaying", "seed": 0}
    ex.train_run(ex.run_settings(section(), run), store, tmp_path / "run", model="rsteer_tied", alpha=0.0,
                 flow="decaying", seed=0)  # fmt: skip
    for checkpoint in ("epoch3", "best"):
        record = json.loads((tmp_path / "run" / f"eval_{checkpoint}.json").read_text())
        assert record["ee_rel"] < 1e-5, checkpoint
    mirror = json.loads((tmp_path / "run" / ex.MIRROR_FILE).read_text())
    assert mirror["best"]["ee_rel"] > 1e-4


# ---------------------------------------------------------------- a tiny study end to end


def test_a_tiny_study_trains_evaluates_and_fills_its_tables(tmp_path, rng) -> None:
    from equidyn.studies import exponax_tables
    from equidyn.studies.baseline_job import compute
    from equidyn.studies.baselines import baseline_file, baseline_settings

    sec = section()
    store = synthetic_store(tmp_path / "data" / "decaying.zarr", "decaying", rng)
    d = ex.DESCRIPTION
    runs = [r for r in ex.runs(sec) if r["flow"] == "decaying" and r["model"] in ("convnet", "e2cnn")]
    assert len(runs) == 4  # 2 arms x 2 seeds
    for run in runs:
        settings = ex.run_settings(sec, run)
        run_dir = tmp_path / d.run_path(run)
        ex.train_run(settings, store, run_dir, model=run["model"], alpha=float(run["alpha"]), flow="decaying",
                     seed=run["seed"])  # fmt: skip
        for name in d.train_files().values():
            assert (run_dir / name).exists(), name
        mirror = json.loads((run_dir / ex.MIRROR_FILE).read_text())
        assert {mirror[k] for k in ("model", "flow", "seed")} == {run["model"], "decaying", run["seed"]}
        assert mirror["elements"] == ["flip_y", "swap_xy", "flip_x", "swap_neg"] and mirror["best"]["ee_rel"] > 0
    baseline = tmp_path / baseline_file("exponax").format(flow="decaying")
    record = compute("exponax", baseline_settings("exponax", sec, {"flow": "decaying"}), store, baseline)
    assert record["flow"] == "decaying" and "scores_linear_extrapolation" in record
    data_csv = tmp_path / "data.csv"
    pd.DataFrame([{"flow": "decaying", **dict.fromkeys(exponax_tables.DATA_EE_COLUMNS, 1e-15)}]).to_csv(data_csv)
    evals = [str(tmp_path / d.run_file(r, f"eval_{c}.json")) for r in runs for c in ("epoch3", "best")]
    mirrors = [str(tmp_path / d.run_file(r, ex.MIRROR_FILE)) for r in runs]
    table = exponax_tables.runs_table(evals, mirrors, data_csv, tmp_path / "exponax.csv")
    assert len(table) == 8 and list(table.columns[: len(exponax_tables.TABLE_COLUMNS)]) == list(
        exponax_tables.TABLE_COLUMNS
    )
    filled = ["flops_per_sample", "skill_vs_skip", "ee_mirror_rel", "data_ee_d4_rel", "config_sha"]
    assert table[filled].notna().all().all()
    e2cnn = table[table.model == "e2cnn"]
    assert (e2cnn.ee_rel < 1e-5).all() and (table[table.model == "convnet"].ee_rel > 1e-4).all()
    summary = exponax_tables.summary_table(tmp_path / "exponax.csv", tmp_path / "summary.csv", [str(baseline)])
    assert len(summary) == 4 and (summary.n_seeds == 2).all()
    for column in ("test_rmse_skill_vs_persistence_ci_low", "test_rmse_skill_vs_linear_extrapolation_ci_high"):
        assert summary[column].notna().all()
    expected = (summary.test_rmse_skill_vs_persistence_ci_low > 0) & (
        summary.test_rmse_skill_vs_linear_extrapolation_ci_low > 0
    )
    assert (summary.beats_trivial_95 == expected).all()
    linear = record["scores_linear_extrapolation"]["test"]["rmse"]
    assert summary.test_rmse_skill_vs_linear_extrapolation.iloc[0] == pytest.approx(
        1 - summary.test_rmse_mean.iloc[0] / linear
    )
    from equidyn.figures.exponax import exponax_figure

    exponax_figure(tmp_path / "summary.csv", tmp_path / "exponax.csv", tmp_path / "exponax.pdf")
    assert (tmp_path / "exponax.png").stat().st_size > 0
    # the measures on the best checkpoints, the dynamics table (with its flow column), convergence and the claims
    from equidyn.studies import convergence, dynamics
    from equidyn.studies.claims import claims_table

    dyn = {"subset": {"samples": 4, "seed": 0}, "lie": {"samples": 4}, "sharpness": {"displacements": [0.01],
           "directions": 2, "seed": 0}, "hessian": {"top_k": 1, "hutchinson": 2, "slq_runs": 1, "slq_steps": 3,
           "seed": 0, "max_steps": 10, "tol": 1e-1}}  # fmt: skip
    measures = []
    for run in runs:
        for measure in ("lie", "sharpness", "hessian"):
            measures.append(str(tmp_path / d.run_file(run, f"{measure}_best.json")))
            record = dynamics.measure(
                "exponax", measure, {"run": ex.run_settings(sec, run), "dynamics": dyn}, store,
                tmp_path / d.run_file(run, "best.pt"), measures[-1],
            )  # fmt: skip
            assert record["flow"] == "decaying" and record["study"] == "exponax"
    best_evals = [str(tmp_path / d.run_file(r, "eval_best.json")) for r in runs]
    dyn_table = dynamics.table(measures, best_evals, tmp_path / "dynamics.csv")
    assert list(dyn_table.columns[:5]) == ["study", "model", "alpha", "level", "flow"] and len(dyn_table) == 4
    assert dyn_table[["hessian_lambda_max", "lie_derivative", "skill_vs_skip"]].notna().all().all()
    grid = {**sec, "flows": {"decaying": sec["flows"]["decaying"]}, "models": sec["models"][::2][:2]}
    conv = convergence.study_table("exponax", grid, tmp_path, tmp_path / "conv.csv", tmp_path / "curves.pdf")
    assert len(conv) == 4 and set(conv.flow) == {"decaying"}
    claims = claims_table(
        tmp_path / "claims.csv", dynamics_csv=str(tmp_path / "dynamics.csv"), exponax_csv=str(tmp_path / "exponax.csv")
    )
    assert (claims.study == "exponax").all() and {"test error", "learned"} <= set(claims.family)
    # a baseline of other data is refused
    other = synthetic_store(tmp_path / "other.zarr", "decaying", np.random.default_rng(99))
    compute("exponax", baseline_settings("exponax", sec, {"flow": "decaying"}), other, tmp_path / "b2.json")
    with pytest.raises(ValueError, match="rebuild the baseline"):
        exponax_tables.summary_table(tmp_path / "exponax.csv", tmp_path / "s2.csv", [str(tmp_path / "b2.json")])


# ---------------------------------------------------------------- the claims


def synthetic_tables(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, Path]:
    """``exponax.csv`` and ``dynamics.csv`` with a known answer: on decaying turbulence RSteer's test RMSE is 0.8×
    the E2CNN's (log-sd 0.02 over 10 seeds), on Kolmogorov flow the two are drawn from one distribution; RSteer's
    λ_max is 0.5× the E2CNN's on decaying turbulence; every arm beats its skip by about 0.3."""
    rows, dyn = [], []
    rmse = {"convnet": 1.0, "convnet_aug": 0.95, "e2cnn": 0.9, "rsteer": 0.72, "rsteer_tied": 0.9}

    def noise(sd: float) -> float:
        return float(np.exp(sd * rng.standard_normal()))

    for flow, model, seed in itertools.product(("decaying", "kolmogorov"), rmse, range(10)):
        mean = rmse[model] if flow == "decaying" or model not in ("rsteer", "e2cnn") else 0.9
        value = mean * noise(0.02)
        ee = 1e-7 if model in ("e2cnn", "rsteer_tied") else (0.3 if flow == "kolmogorov" else 0.1)
        keys = {"model": model, "alpha": 0.0, "flow": flow, "seed": seed}
        lineage = {"git_rev": "abc", "config_sha": "def", "data_sha": flow}
        skill = 0.3 + 0.01 * rng.standard_normal()
        for checkpoint in ("epoch3", "best"):
            rows.append(
                {**keys, "checkpoint": checkpoint, "test_rmse": value, "ee_rel": ee * noise(0.05),
                 "ee_mirror_rel": 0.2 * noise(0.05), "skill_vs_skip": skill, **lineage}
            )  # fmt: skip
        if model in ("e2cnn", "rsteer", "rsteer_tied"):
            lam = (0.5 if model == "rsteer" and flow == "decaying" else 1.0) * noise(0.05)
            dyn.append(
                {"study": "exponax", **keys, "level": np.nan, "checkpoint": "best", "test_rmse": value,
                 "skill_vs_skip": skill, "hessian_lambda_max": lam, "hessian_trace": 10 * lam,
                 "sharpness_curvature": lam, **lineage}
            )  # fmt: skip
    exponax_csv, dynamics_csv = tmp_path / "exponax.csv", tmp_path / "dynamics.csv"
    pd.DataFrame(rows).to_csv(exponax_csv, index=False)
    pd.DataFrame(dyn).to_csv(dynamics_csv, index=False)
    return exponax_csv, dynamics_csv


def test_the_exponax_claims_have_the_known_answer_under_their_own_study_name(tmp_path, rng) -> None:
    from equidyn.studies.claims import COLUMNS, EXPONAX_FLOWS, claims_table

    exponax_csv, dynamics_csv = synthetic_tables(tmp_path, rng)
    df = claims_table(tmp_path / "claims.csv", dynamics_csv=str(dynamics_csv), exponax_csv=str(exponax_csv))
    assert list(df.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert (df.study == "exponax").all() and (df.protocol == "generalisation").all()

    def row(flow: str, quantity: str, comparison: str, text: str = "relaxed model"):
        sub = df[
            df.claim.str.contains(EXPONAX_FLOWS[flow], regex=False)
            & df.claim.str.contains(text, regex=False)
            & (df.quantity == quantity)
            & (df.comparison == comparison)
        ]
        assert len(sub) == 1, (flow, quantity, comparison, sub)
        return sub.iloc[0]

    central = row("decaying", "test RMSE", "rsteer vs e2cnn")
    assert central.role == "primary" and central.ci_method == "welch_log_ratio" and not central.paired
    assert central.effect == pytest.approx(np.log(0.8), abs=0.03) and central.verdict == "supported"
    assert central.verdict_holm == "supported" and central.p_holm >= central.p_value
    assert row("kolmogorov", "test RMSE", "rsteer vs e2cnn").verdict != "supported"
    flat = row("decaying", "λ_max", "rsteer vs e2cnn")
    assert flat.role == "primary" and flat.effect == pytest.approx(np.log(0.5), abs=0.1)
    assert flat.learned_comparable == "yes"
    # issue 20's controls, per flow, with their designs
    assert row("decaying", "test RMSE", "convnet_aug vs convnet", "augmentation").paired
    assert not row("kolmogorov", "test RMSE", "e2cnn vs convnet", "strict").paired
    assert row("decaying", "λ_max", "rsteer vs rsteer_tied", "tied").paired
    learned = df[df.family == "learned"]
    assert len(learned) == 10 and (learned.role == "check").all() and (learned.verdict == "supported").all()
    # the EE rows: the relaxed model's C4 EE is 3x larger where the forcing breaks C4; secondary, ConvNets controls
    ee = df[(df.family == "EE") & (df.quantity == "relative C4 EE, Kolmogorov over decaying")]
    assert set(ee.comparison) == {"rsteer", "convnet (control)", "convnet_aug (control)"}
    assert (ee.role == "secondary").all()
    assert ee[ee.comparison == "rsteer"].effect.iloc[0] == pytest.approx(np.log(3), abs=0.1)
    # the Holm family: exactly the primary rows
    assert df.p_holm.notna().sum() == (df.role == "primary").sum() > 0
    from equidyn.figures.claims import forest

    forest(tmp_path / "claims.csv", tmp_path / "claims.pdf")
    assert (tmp_path / "claims.png").stat().st_size > 0


def test_the_claims_cli_takes_the_exponax_table() -> None:
    from equidyn.cli import build_parser

    args = build_parser().parse_args(["claims", "--exponax-csv", "e.csv", "--dynamics-csv", "d.csv", "--out", "c"])
    assert args.exponax_csv == "e.csv" and args._target == "equidyn.studies.claims:claims_table"
    args = build_parser().parse_args(
        [
            "exponax-train",
            "--settings",
            "{}",
            "--store",
            "s",
            "--model",
            "e2cnn",
            "--alpha",
            "0",
            "--flow",
            "kolmogorov",
            "--seed",
            "3",
            "--run-dir",
            "r",
        ]
    )
    assert args._target == "equidyn.studies.exponax_study:train_run" and args.flow == "kolmogorov"


# ---------------------------------------------------------------- the config and the grid


def exponax_config() -> dict:
    from equidyn.config import load_config, validate_config

    return validate_config(load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "exponax.yaml"]))


def test_the_study_config_validates_and_its_grid_has_every_arm_flow_and_seed() -> None:
    from equidyn.studies import catalog
    from equidyn.workflow import Workflow

    config = exponax_config()
    sec = config["exponax"]
    assert catalog.study("exponax") is ex and config["studies"] == ["exponax"]
    assert len(sec["seeds"]) >= 10
    grid = ex.runs(sec)
    labels = {"convnet", "convnet_aug", "e2cnn", "rsteer", "rsteer_tied"}
    assert {r["model"] for r in grid} >= labels and {r["flow"] for r in grid} == {"decaying", "kolmogorov"}
    assert len(grid) == sum(len(m.get("alphas", [0])) for m in sec["models"]) * 2 * len(sec["seeds"])
    for m in sec["models"]:
        assert m["budget"] == 12000 and m["residual"] == "linear" and m["rescale"] is True
    # measured: the arms the flatness claims compare, at the best checkpoint
    w = Workflow(config)
    measured = w.dynamics_runs()
    assert {s for s, _ in measured} == {"exponax"}
    assert {r["model"] for _, r in measured} == {"e2cnn", "rsteer", "rsteer_tied"}
    assert all(w.measured_checkpoints(s, r) == ("best",) for s, r in measured)


def test_a_runs_settings_are_its_own_flow_model_and_the_shared_training() -> None:
    """Adding a seed, an arm or changing the other flow's data does not change (and rerun) a run."""
    sec = exponax_config()["exponax"]
    run = {"model": "rsteer_tied", "alpha": "0", "flow": "decaying", "seed": 3}
    settings = ex.run_settings(sec, run)
    assert settings["flow"] == "decaying" and settings["data"] == sec["flows"]["decaying"]
    assert settings["model"]["options"] == {"tied": True} and "alphas" not in settings["model"]
    more = {**sec, "seeds": [*sec["seeds"], 99], "models": [*sec["models"], {"name": "mlp", "hidden": 2, "layers": 2}]}
    other_flow = {**sec, "flows": {**sec["flows"], "kolmogorov": {"physics": {"grid": 16}}}}
    assert ex.run_settings(more, run) == settings == ex.run_settings(other_flow, run)
    assert ex.run_settings(sec, {**run, "seed": 4}) == settings  # the seed is a run key, not a setting


def test_a_dynamics_selection_names_labels_and_flows() -> None:
    from equidyn.config import check_runnable

    config = exponax_config()
    config["dynamics"]["runs"] = [{"study": "exponax", "model": ["rsteer_tied"], "flow": ["kolmogorov"]}]
    assert check_runnable(config) == []
    config["dynamics"]["runs"] = [{"study": "exponax", "model": ["rsteer_free"], "level": [0]}]
    problems = " ".join(check_runnable(config))
    assert "rsteer_free" in problems and "no levels" in problems
