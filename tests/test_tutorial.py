"""The tutorial: flux targets transform by their representation, escnn is exact per output type, user files work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
import yaml

from equidyn.data.tutorial_data import (
    TARGETS,
    TutorialData,
    TutorialDataError,
    fluxes,
    gradient_model_uv,
    prepare,
    r2_score,
    subfilter_fluxes,
)
from equidyn.measures.equivariance import equivariance_error
from equidyn.models.base import ModelSpec
from equidyn.models.registry import build_model
from equidyn.symmetry import C4, D4, FieldLayout

ROOT = Path(__file__).resolve().parents[1]
G = C4()


def periodic_fields(rng: np.random.Generator, n: int = 12, batch: int = 2) -> torch.Tensor:
    y, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    out = np.zeros((batch, 3, n, n))
    for b in range(batch):
        for c in range(3):
            for _ in range(4):
                kx, ky = rng.integers(-2, 3, size=2)
                out[b, c] += rng.standard_normal() * np.cos(2 * np.pi * (kx * x + ky * y) / n + rng.uniform(0, 6.3))
    out[:, 0] += 1.5  # a mean wind along +x
    return torch.tensor(out)


@pytest.mark.parametrize("padding", ["circular", "reflect"])
def test_flux_of_rotated_fields_is_the_transformed_flux(rng, padding: str) -> None:
    fields = periodic_fields(rng)
    layout_in = FieldLayout.parse("1 vector + 1 scalar")
    base = fluxes(fields[:, 0], fields[:, 1], fields[:, 2], 5, padding)
    assert base["uv"].abs().mean() > 1e-2  # a real signal, not zeros
    for k in (1, 2, 3):
        rotated = G.act(k, fields, layout_in)
        got = fluxes(rotated[:, 0], rotated[:, 1], rotated[:, 2], 5, padding)
        for name, layout in TARGETS.items():
            expected = G.act(k, base[name], FieldLayout.parse(layout))
            assert torch.allclose(got[name], expected, atol=1e-12), (name, k)
    # ⟨u′v′⟩ changes sign under a quarter turn: the sign irrep, not a scalar
    quarter = fluxes(*G.act(1, fields, layout_in).unbind(1), 5, padding)["uv"]
    assert torch.allclose(quarter, -G.transform_grid(base["uv"], 1), atol=1e-12)


@pytest.mark.parametrize("factor", [2, 4])
def test_subfilter_flux_of_transformed_fields_is_the_transformed_flux_under_d4(rng, factor: int) -> None:
    """Every coarse-grained target (sign, vector, scalar) transforms by its representation under all of D4."""
    fields = periodic_fields(rng, n=16, batch=3)
    fields = fields + 0.3 * torch.randn(fields.shape, generator=torch.Generator().manual_seed(1), dtype=fields.dtype)
    layout_in = FieldLayout.parse("1 vector + 1 scalar")
    d4 = D4()
    base = subfilter_fluxes(fields[:, 0], fields[:, 1], fields[:, 2], factor)
    assert base["uv"].shape[-1] == 16 // factor and base["uv"].abs().mean() > 1e-3
    for g in d4.elements:
        moved = d4.act(g, fields, layout_in)
        got = subfilter_fluxes(moved[:, 0], moved[:, 1], moved[:, 2], factor)
        for name, layout in TARGETS.items():
            expected = d4.act(g, base[name], FieldLayout.parse(layout))
            assert torch.allclose(got[name], expected, atol=1e-12), (name, g)
    # ⟨u′v′⟩ is odd under a quarter turn and under the mirror y -> -y, even under the diagonal mirror x <-> y
    for g, sign in ((1, -1.0), (4, -1.0), (5, 1.0)):
        got = subfilter_fluxes(*d4.act(g, fields, layout_in).unbind(1), factor)["uv"]
        assert torch.allclose(got, sign * d4.transform_grid(base["uv"], g), atol=1e-12), g
    # the fluxes are Galilean invariant: the added wind changes inputs only
    shifted = subfilter_fluxes(fields[:, 0] + 5.0, fields[:, 1], fields[:, 2], factor)
    for name in TARGETS:
        assert torch.allclose(shifted[name], base[name], atol=1e-10), name


def test_gradient_model_and_r2_have_known_answers() -> None:
    # u = a x, v = b y: ∇u·∇v = 0; u = v = x: the model is 1/12 everywhere (unit spacing)
    y, x = np.meshgrid(np.arange(6.0), np.arange(6.0), indexing="ij")
    assert np.allclose(gradient_model_uv(2 * x, 3 * y), 0.0)
    assert np.allclose(gradient_model_uv(x, x), 1 / 12)
    truth = np.random.default_rng(0).standard_normal((5, 1, 4, 4))
    assert r2_score(truth, truth) == 1.0
    assert abs(r2_score(np.broadcast_to(truth.mean(), truth.shape), truth)) < 1e-12  # the mean scores 0
    assert r2_score(-truth, truth) < -3  # worse than the mean


def test_the_closure_targets_are_learnable_a_priori(tmp_path: Path) -> None:
    """On coarse-grained smooth turbulence the gradient model explains most of ⟨u′v′⟩ (a ceiling for the models)."""
    from equidyn.data.turbulence import OfflineTurbulenceSettings, generate_offline
    from equidyn.data.tutorial_data import builtin_from_turbulence
    from equidyn.store import open_store

    generate_offline(OfflineTurbulenceSettings(n=16, n_samples=5, n_times=1, spinup_time=2.0), tmp_path / "t.zarr")
    builtin_from_turbulence(tmp_path / "t.zarr", 2.0, tmp_path / "b.nc")
    prepare(TutorialData(factor=2, levels=1), tmp_path / "b.nc", ["uv", "vector_flux"], tmp_path / "p.zarr")
    ds = open_store(tmp_path / "p.zarr")
    assert ds.attrs["input_layout"] == "3 vector + 3 scalar" and ds.sizes["channel"] == 9
    assert ds.sizes["x"] == 8 and ds.attrs["coarsening_factor"] == 2
    assert 0.3 < ds.attrs["gradient_model_r2_fitted"] <= 1.0
    # every sample of one simulation sample lies in one split
    for _, split in pd.DataFrame({"g": ds.group.values, "s": ds.split.values}).groupby("g").s:
        assert split.nunique() == 1


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_escnn_model_is_exactly_equivariant_for_each_output_type(target: str) -> None:
    torch.manual_seed(0)
    spec = ModelSpec(
        name="e2cnn",
        in_layout=FieldLayout.parse("1 vector + 1 scalar"),
        out_layout=FieldLayout.parse(TARGETS[target]),
        hidden=4,
        layers=3,
        grid=(12, 12),
    )
    model = build_model(spec).eval()
    x = torch.randn(4, 3, 12, 12)
    ee = equivariance_error(model, x, G, spec.in_layout, spec.out_layout)
    assert ee["ee_rel"] <= 1e-5 and ee["output_mean_abs"] > 1e-3


@pytest.mark.parametrize("group", ["C4", "D4"])
@pytest.mark.parametrize("padding", ["circular", "zeros"])
def test_multi_output_escnn_is_exactly_equivariant(group: str, padding: str) -> None:
    """The coding activity's model: one network with a sign and a vector output (and levels as extra fields)."""
    from equidyn.symmetry import group_by_name

    torch.manual_seed(0)
    spec = ModelSpec(
        name="closure_escnn",
        in_layout=FieldLayout.parse("3 vector + 3 scalar"),
        out_layout=FieldLayout.parse("1 sign + 1 vector + 1 scalar"),
        hidden=2,
        layers=3,
        grid=(8, 8),
        group=group,
        options={"padding": padding},
    )
    model = build_model(spec).eval()
    x = torch.randn(3, 9, 8, 8)
    ee = equivariance_error(model, x, group_by_name(group), spec.in_layout, spec.out_layout)
    assert ee["ee_rel"] <= 1e-5 and ee["output_mean_abs"] > 1e-3
    assert len(ee["ee_by_element"]) == (3 if group == "C4" else 7)
    if group == "C4":  # a C4 model is not mirror-equivariant: the D4 test is sharp
        mirrored = equivariance_error(model, x, D4(), spec.in_layout, spec.out_layout)
        assert mirrored["ee_by_element"]["4"] > 1e-3


def test_cnn_rows_are_not_equivariant_and_the_penalty_measures_the_mismatch() -> None:
    torch.manual_seed(0)
    layouts = {
        "in_layout": FieldLayout.parse("1 vector + 1 scalar"),
        "out_layout": FieldLayout.parse("1 sign + 1 vector"),
    }
    cnn = build_model(ModelSpec(name="closure_cnn", hidden=4, layers=3, grid=(8, 8), **layouts)).eval()
    x = torch.randn(4, 3, 8, 8)
    assert equivariance_error(cnn, x, G, **layouts)["ee_rel"] > 1e-2
    penalised = build_model(ModelSpec(name="closure_cnn_penalty", hidden=4, layers=3, grid=(8, 8), **layouts))
    assert penalised.has_regularizer
    penalised.eval()
    torch.manual_seed(3)
    got = penalised.regularizer(x)
    # the same draw, computed sample by sample
    torch.manual_seed(3)
    elements = torch.randint(1, 4, (4,)).tolist()
    with torch.no_grad():
        expected = torch.stack(
            [
                (
                    penalised(G.act(g, x[i : i + 1], layouts["in_layout"]))
                    - G.act(g, penalised(x[i : i + 1]), layouts["out_layout"])
                )
                .pow(2)
                .mean()
                for i, g in enumerate(elements)
            ]
        ).mean()
    assert torch.allclose(got, expected, rtol=1e-5) and float(got) > 1e-4
    got.backward()  # differentiable: the trainer adds alpha * regularizer to the loss
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in penalised.parameters())
    # a pointwise scalar map is exactly equivariant: its penalty vanishes
    scalar = {"in_layout": FieldLayout.parse("1 scalar"), "out_layout": FieldLayout.parse("1 scalar")}
    pointwise = build_model(
        ModelSpec(name="closure_cnn_penalty", hidden=3, layers=2, grid=(8, 8), kernel_size=1, **scalar)
    )
    assert float(pointwise.eval().regularizer(torch.randn(4, 1, 8, 8))) < 1e-12


def test_runs_put_every_model_on_f0_and_the_coriolis_models_on_the_f_plane() -> None:
    from equidyn.studies import tutorial

    section = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())["tutorial"]
    assert tutorial.flows(section) == {"f0": 0.0, "f2": 2.0}
    grid = tutorial.runs(section)
    labels = [m["label"] for m in section["models"]]
    assert {(r["label"]) for r in grid if r["flow"] == "f0"} == set(labels)
    assert {r["label"] for r in grid if r["flow"] == "f2"} == set(section["coriolis"]["models"])
    coriolis_seeds = section["coriolis"].get("seeds", section["seeds"])
    assert len(grid) == len(section["seeds"]) * len(labels) + len(coriolis_seeds) * len(section["coriolis"]["models"])
    assert {r["seed"] for r in grid if r["flow"] == "f2"} == set(coriolis_seeds)
    settings = tutorial.run_settings(section, {"flow": "f2", "label": "escnn_d4", "seed": 0})
    assert settings["coriolis"] == 2.0 and settings["model"]["group"] == "D4"
    assert tutorial.output_layout(["uv", "vector_flux"]) == "1 sign + 1 vector"
    with pytest.raises(ValueError, match="not among the models"):
        tutorial.runs({**section, "coriolis": {"f": 1.0, "models": ["nope"]}})
    assert tutorial.flows({**section, "coriolis": {"f": 0.0}}) == {"f0": 0.0}


def user_file(tmp_path: Path, rng: np.random.Generator, n_time: int = 30, n: int = 16, **drop) -> Path:
    t = np.arange(n_time)
    fields = periodic_fields(rng, n=n, batch=n_time).numpy()
    ds = xr.Dataset(
        {
            "u": (("time", "y", "x"), fields[:, 0]),
            "v": (("time", "y", "x"), fields[:, 1]),
            "w": (("time", "y", "x"), fields[:, 2]),
        },
        coords={"time": t, "y": np.arange(n), "x": np.arange(n)},
    )
    for name, value in drop.items():
        if value is None:
            ds = ds.drop_vars(name)
        else:
            ds[name] = value
    path = tmp_path / "user.nc"
    ds.to_netcdf(path)
    return path


def test_prepare_names_the_culprit(tmp_path: Path, rng) -> None:
    settings = TutorialData(padding="reflect")
    with pytest.raises(TutorialDataError, match="'w' \\(the scalar\\) is missing"):
        prepare(settings, user_file(tmp_path, rng, w=None), ["uv"], tmp_path / "p.zarr")
    bad = np.zeros((30, 16))
    with pytest.raises(TutorialDataError, match="'w' \\(the scalar\\) has dims \\('time', 'y'\\)"):
        prepare(settings, user_file(tmp_path, rng, w=(("time", "y"), bad)), ["uv"], tmp_path / "p.zarr")
    nan = np.ones((30, 16, 16))
    nan[3, 4, 5] = np.nan
    with pytest.raises(TutorialDataError, match="'v' \\(the v\\) has 1 NaN"):
        prepare(settings, user_file(tmp_path, rng, v=(("time", "y", "x"), nan)), ["uv"], tmp_path / "p.zarr")
    with pytest.raises(TutorialDataError, match="does not exist"):
        prepare(settings, tmp_path / "nope.nc", ["uv"], tmp_path / "p.zarr")
    assert not (tmp_path / "p.zarr").exists()


def test_degenerate_data_is_rejected_naming_the_variable(tmp_path: Path, rng) -> None:
    settings = TutorialData(factor=2)
    const = np.full((30, 16, 16), 0.7)
    with pytest.raises(TutorialDataError, match="'w' \\(the scalar\\) is constant"):
        prepare(settings, user_file(tmp_path, rng, w=(("time", "y", "x"), const)), ["uv"], tmp_path / "p.zarr")
    zero = np.zeros((30, 16, 16))
    path = user_file(tmp_path, rng, u=(("time", "y", "x"), zero))
    with pytest.raises(TutorialDataError, match="'u' \\(the u\\) is constant"):
        prepare(settings, path, ["uv"], tmp_path / "p.zarr")
    with pytest.raises(TutorialDataError, match="leaves 1×1 cells"):
        prepare(TutorialData(factor=16), user_file(tmp_path, rng), ["uv"], tmp_path / "p.zarr")
    with pytest.raises(TutorialDataError, match=r"missing vertical .* dim\(s\) \[.z.\]"):
        prepare(TutorialData(factor=2, levels=1), user_file(tmp_path, rng), ["uv"], tmp_path / "p.zarr")
    assert not (tmp_path / "p.zarr").exists()


def test_a_scalar_constant_on_each_slice_is_rejected_naming_it(tmp_path: Path, rng) -> None:
    """Constant within each sample but not across samples: it used to pass, with ``target_vector_flux_scale = 0``,
    and every training job then failed with a NonFiniteLossError (issue 22)."""
    per_slice = np.broadcast_to(rng.standard_normal(30)[:, None, None], (30, 16, 16))
    path = user_file(tmp_path, rng, w=(("time", "y", "x"), per_slice))
    with pytest.raises(TutorialDataError, match=r"'w' \(the scalar\) is constant on every horizontal slice \(y×x\)"):
        prepare(TutorialData(factor=2), path, ["uv", "vector_flux"], tmp_path / "p.zarr")
    assert not (tmp_path / "p.zarr").exists()


def test_a_target_that_is_zero_on_the_training_split_is_rejected_naming_it(tmp_path: Path, rng) -> None:
    path = user_file(tmp_path, rng, flux=(("time", "y", "x"), np.zeros((30, 16, 16))))
    settings = TutorialData(factor=2, target_variables={"uv": "flux"})
    with pytest.raises(TutorialDataError, match=r"target 'uv' is zero on every training sample.*variable 'flux'"):
        prepare(settings, path, ["uv"], tmp_path / "p.zarr")
    assert not (tmp_path / "p.zarr").exists()


def test_training_split_keeps_only_biased_samples(tmp_path: Path, rng) -> None:
    angles = np.linspace(-180, 180, 40, endpoint=False)
    fields = periodic_fields(rng, n=12, batch=40).numpy() * 0.1
    fields[:, 0] = np.cos(np.radians(angles))[:, None, None] + fields[:, 0] - 0.15
    fields[:, 1] += np.sin(np.radians(angles))[:, None, None]
    ds = xr.Dataset({k: (("time", "y", "x"), fields[:, i]) for i, k in enumerate("uvw")})
    ds.to_netcdf(tmp_path / "rot.nc")
    prepare(TutorialData(split_fractions=(0.5, 0.25, 0.25)), tmp_path / "rot.nc", ["uv"], tmp_path / "p.zarr")
    out = xr.open_zarr(tmp_path / "p.zarr")
    train = out.mean_wind_angle.values[out.split.values == "train"]
    assert len(train) > 0 and np.all(np.abs(train) <= 45)
    assert (out.split.values == "test").sum() == 10  # valid/test keep every orientation


def test_a_user_netcdf_runs_through_snakemake(tmp_path: Path, rng) -> None:
    path = user_file(tmp_path, rng, n_time=40)
    tiny = {
        "name": "usertest",
        "tutorial": {
            "data": {"factor": 2, "levels": 0, "mean_wind": 0.0},
            "outputs": ["uv", "vector_flux"],
            "coriolis": {"f": 0.0, "models": []},
            "seeds": [0],
            "models": [
                {"label": "cnn", "model": "closure_cnn", "hidden": 4, "layers": 3},
                {"label": "escnn", "model": "closure_escnn", "hidden": 2, "layers": 3},
                {"label": "cnn_aug", "model": "closure_cnn", "hidden": 4, "layers": 3, "augment": True},
            ],
            "training": {"epochs": 3, "batch_size": 8, "lr": 3e-3, "patience": 3, "device": "cpu"},
        },
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "tutorial_all",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--cores",
            "2",
            "--directory",
            str(tmp_path),
            "--configfile",
            str(tmp_path / "tiny.yaml"),
            "--config",
            f"tutorial_data={path}",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    res = tmp_path / "results" / "usertest"
    assert not (res / "data" / "tutorial" / "f0" / "builtin.nc").exists()  # the user's file, not the built-in one
    table = pd.read_csv(res / "tables" / "tutorial.csv")
    assert len(table) == 3 * 8 * 2 and set(table.rotation) == {0, 90, 180, 270}
    assert set(table["transform"]) == {"rotation", "reflection"} and set(table.output) == {"uv", "vector_flux"}
    assert set(table.flow) == {"f0"}  # no Coriolis flow configured: only the user's file
    assert {"config_sha", "git_rev", "data_sha"} <= set(table.columns)
    rotated = table[(table.model == "escnn") & (table["transform"] == "rotation")]
    for _, g in rotated.groupby("output"):
        assert g.rmse.max() - g.rmse.min() <= 1e-4 * g.rmse.mean()
    ceiling = pd.read_csv(res / "tables" / "tutorial_ceiling.csv")
    assert list(ceiling.flow) == ["f0"] and ceiling.gradient_model_r2_fitted.notna().all()
    for fig in ("tutorial_rotated", "tutorial_skill"):
        assert (res / "figures" / f"{fig}.pdf").stat().st_size > 5000
