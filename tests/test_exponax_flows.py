"""exponax's periodic 2-D turbulence (issue 24): the stored grid and its action, the vorticity's orientation, the data
EE in the levels' definition, and (with jax) the rotated/reflected simulations, the data EE of both flows, the
stability check and the store.

The simulations are tiny (8² stored cells on 16² nodes, a few frames): what is tested is exactness and bookkeeping,
not turbulence. The tests that simulate need exponax/jax, which requirements/lock.txt installs; without them they
skip and the numpy parts still run.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from equidyn.data import exponax_flows as ef
from equidyn.measures.equivariance import orbit_equivariance_error
from equidyn.symmetry import C4, D4, FieldLayout

NEEDS_JAX = "exponax/jax are not installed in this environment (requirements/lock.txt pins them: scripts/setup.sh)"


def needs_exponax() -> None:
    pytest.importorskip("exponax", reason=NEEDS_JAX)


TINY_SAMPLING = {
    "splits": {"train": 2, "valid": 1, "test": 1},
    "spinup": 0.5,
    "frame_dt": 0.1,
    "n_frames": 5,
    "batch_size": 2,
}


def tiny(flow: str, **physics: object) -> tuple[ef.FlowPhysics, ef.InitialVorticity, ef.Sampling]:
    extra = {"diffusivity": 0.01, "drag": -0.1, "injection_mode": 1} if flow == "kolmogorov" else {}
    return (
        ef.FlowPhysics(**{"flow": flow, "grid": 8, "refine": 2, "dt": 0.01, **extra, **physics}),
        ef.InitialVorticity(peak_wavenumber=2.0),
        ef.Sampling.from_dict(TINY_SAMPLING),
    )


# ---------------------------------------------------------------- numpy only


@pytest.mark.parametrize("refine", [2, 4])
def test_the_stored_cells_turn_with_the_simulated_nodes(refine: int) -> None:
    """Acting about node 0 of the simulated grid, then keeping the stored cells' centres, is the stored grid's own
    action about its centre: the pair the symmetry checks rely on."""
    d4, layout = D4(), ef.LAYOUT
    nodes = np.random.default_rng(0).standard_normal((2, 1, 8 * refine, 8 * refine))
    for g in d4.elements:
        lhs = ef.to_stored_grid(d4.act_numpy(g, nodes, layout, about="node"), refine)
        rhs = d4.act_numpy(g, ef.to_stored_grid(nodes, refine), layout)
        assert np.array_equal(lhs, rhs), g


def test_stored_cells_are_the_cell_centres() -> None:
    nodes = np.arange(16.0)[None, :] * np.ones((16, 1))  # node index along x
    assert ef.to_stored_grid(nodes, 2)[0].tolist() == [2 * j + 1 for j in range(8)]  # (j + ½)·(L/8) = node 2j + 1


def test_velocity_is_divergence_free_with_the_vorticity_as_curl() -> None:
    physics = ef.FlowPhysics(grid=8)
    w = ef.initial_vorticity(physics, ef.InitialVorticity(peak_wavenumber=2.0), 0, 0)[0]
    v = ef.velocity(w, physics.domain_extent)
    n = w.shape[-1]
    k = np.fft.fftfreq(n, 1.0 / n) * 2 * np.pi / physics.domain_extent
    dx = lambda f: np.fft.ifft2(1j * k[None, :] * np.fft.fft2(f)).real  # noqa: E731
    dy = lambda f: np.fft.ifft2(1j * k[:, None] * np.fft.fft2(f)).real  # noqa: E731
    assert np.allclose(dx(v[1]) - dy(v[0]), w, atol=1e-12)  # ∂x v_y − ∂y v_x = ω
    assert np.allclose(dx(v[0]) + dy(v[1]), 0, atol=1e-12)


def test_initial_vorticity_is_seeded_per_trajectory_and_scaled() -> None:
    physics, initial = ef.FlowPhysics(grid=16), ef.InitialVorticity(peak_wavenumber=3.0, rms_velocity=0.7)
    a = ef.initial_vorticity(physics, initial, 5, 2)
    assert np.array_equal(a, ef.initial_vorticity(physics, initial, 5, 2))
    assert not np.allclose(a, ef.initial_vorticity(physics, initial, 5, 3))
    assert not np.allclose(a, ef.initial_vorticity(physics, initial, 6, 2))
    speed = np.sqrt(np.mean(np.sum(ef.velocity(a[0], physics.domain_extent) ** 2, axis=0)))
    assert speed == pytest.approx(0.7, rel=1e-12)
    spectrum = np.fft.fft2(a[0])
    assert abs(spectrum[0, 0]) < 1e-9 and np.allclose(spectrum[16], 0) and np.allclose(spectrum[:, 16], 0)


def test_orbit_data_ee_is_the_levels_definition() -> None:
    rng = np.random.default_rng(1)
    d = rng.standard_normal((3, 4, 5, 2, 6, 6))
    levels = np.mean([np.mean([np.abs(g[0] - g[j]).mean() for j in (1, 2, 3)]) for g in d])  # the published formula
    assert orbit_equivariance_error(d)["ee"] == levels
    same = np.repeat(d[:, :1], 8, axis=1)
    assert orbit_equivariance_error(same) == {"ee": 0.0, "ee_rel": 0.0}
    with pytest.raises(ValueError, match="members"):
        orbit_equivariance_error(d[:, :1])


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="whole number"):
        ef.Sampling(spinup=0.015).steps(0.01)
    with pytest.raises(ValueError, match="positive count"):
        ef.Sampling.from_dict({"splits": {"train": 4, "test": 1}})
    with pytest.raises(ValueError, match="unknown key"):
        ef.Sampling.from_dict({"n_frame": 3})
    with pytest.raises(ValueError, match="refine"):
        ef.FlowPhysics(refine=3)
    with pytest.raises(ValueError, match="flow"):
        ef.FlowPhysics(flow="channel")
    sampling = ef.Sampling.from_dict({"splits": {"train": 3, "valid": 1, "test": 2}})
    assert sampling.split_sims() == {"train": [0, 1, 2], "valid": [3], "test": [4, 5]}
    assert sampling.steps(0.01) == (500, 25)


def test_d4_element_names_describe_their_matrices() -> None:
    d4 = D4()
    points = {"identity": (1, 2), "rot90": (-2, 1), "rot180": (-1, -2), "rot270": (2, -1), "flip_y": (1, -2),
              "swap_xy": (2, 1), "flip_x": (-1, 2), "swap_neg": (-2, -1)}  # fmt: skip
    for g, name in enumerate(D4.ELEMENT_NAMES):
        assert tuple(d4.matrix(g) @ np.array([1, 2])) == points[name], name


# ---------------------------------------------------------------- with exponax


def test_exponax_convection_is_the_advection_by_equidyns_velocity() -> None:
    """exponax's vorticity term, evaluated on a band-limited field, is ``−(v·∇)ω`` with :func:`velocity`'s ``v``:
    the stored array is the vorticity of equidyn's frame, with its sign."""
    needs_exponax()
    import exponax
    import jax.numpy as jnp

    from equidyn.data.exponax_flows import precision_scope

    n, length = 16, 2 * np.pi
    y, x = np.meshgrid(np.arange(n) * length / n, np.arange(n) * length / n, indexing="ij")
    w = np.sin(x + 2 * y) + 0.5 * np.cos(3 * x) - 0.3 * np.sin(2 * y - x)
    with precision_scope(64):
        convection = exponax.nonlin_fun.VorticityConvection2d(
            2, n, derivative_operator=exponax.spectral.build_derivative_operator(2, length, n), dealiasing_fraction=1.0
        )
        got = np.asarray(exponax.ifft(convection(exponax.fft(jnp.asarray(w[None]))), num_spatial_dims=2))[0]
    vx, vy = ef.velocity(w, length)
    k = np.fft.fftfreq(n, 1.0 / n)
    dwdx = np.fft.ifft2(1j * k[None, :] * np.fft.fft2(w)).real
    dwdy = np.fft.ifft2(1j * k[:, None] * np.fft.fft2(w)).real
    assert np.allclose(got, -(vx * dwdx + vy * dwdy), atol=1e-10)


def test_a_rotated_or_reflected_decaying_flow_is_the_acted_flow() -> None:
    """Simulating ``g·ω₀`` equals ``g`` acting on the simulation of ``ω₀`` for all eight elements, to solver
    precision — with the pseudoscalar's sign: acting on the vorticity as a scalar fails under every mirror."""
    needs_exponax()
    physics, initial, sampling = tiny("decaying")
    check = ef.symmetry_check(physics, initial, sampling, n_frames=4)
    assert check["kept"] == list(D4.ELEMENT_NAMES) and check["broken"] == []
    assert max(row["rel_max"] for row in check["by_element"].values()) < 1e-12

    spin, stride = sampling.steps(physics.dt)
    start = ef.simulate(physics, ef.initial_vorticity(physics, initial, 0, 0)[None], spin, stride, 1)[:, :1]
    d4, scalar = D4(), FieldLayout.parse("scalar")
    for g in range(4, 8):
        as_scalar = d4.act_numpy(g, start, scalar, about="node")
        simulated = ef.to_stored_grid(ef.simulate(physics, as_scalar, 0, stride, 3), physics.refine)
        reference = ef.to_stored_grid(ef.simulate(physics, start, 0, stride, 3), physics.refine)
        undone = d4.act_numpy(g, simulated[0][:, None], scalar)[:, 0]
        assert np.abs(undone - reference[0]).max() > 1e-3 * np.abs(reference).max(), g


def test_data_ee_is_zero_for_decaying_turbulence_and_clearly_positive_for_kolmogorov_flow() -> None:
    needs_exponax()
    decaying = ef.symmetry_check(*tiny("decaying"), n_frames=4)
    kolmogorov = ef.symmetry_check(*tiny("kolmogorov"), n_frames=4)
    assert decaying["data_ee_d4_rel"] < 1e-12 and decaying["data_ee_c4_rel"] < 1e-12
    assert kolmogorov["data_ee_c4_rel"] > 0.01 and kolmogorov["data_ee_d4_rel"] > 0.01
    # the forcing cos(k 2π x/L) is even about the box centre: it keeps the half turn and breaks the rest
    assert kolmogorov["kept"] == ["identity", "rot180"]
    assert kolmogorov["by_element"]["rot180"]["rel_max"] < 1e-12
    assert min(kolmogorov["by_element"][name]["rel_l1"] for name in kolmogorov["broken"]) > 0.01


def test_generate_writes_a_checked_store_that_does_not_depend_on_jaxs_global_precision(tmp_path) -> None:
    needs_exponax()
    import jax

    from equidyn.store import open_store, store_settings

    physics, initial, sampling = tiny("kolmogorov")
    before = jax.config.jax_enable_x64
    shas = []
    try:
        for flag in (False, True):  # importing escnn sets it to True (through pymanopt)
            jax.config.update("jax_enable_x64", flag)
            report = ef.generate(physics, initial, sampling, tmp_path / f"x64_{flag}.zarr")
            shas.append(open_store(tmp_path / f"x64_{flag}.zarr").attrs["content_sha256"])
    finally:
        jax.config.update("jax_enable_x64", before)
    assert shas[0] == shas[1]
    ds = open_store(tmp_path / "x64_True.zarr")
    assert ds.vorticity.shape == (4, 5, 8, 8) and ds.vorticity.dtype == np.float32
    assert ef.store_frames(ds).shape == (4, 5, 1, 8, 8)
    assert json.loads(ds.attrs["split_sims"]) == {"train": [0, 1], "valid": [2], "test": [3]}
    assert ds.split.values.tolist() == ["train", "train", "valid", "test"]
    assert ds.attrs["layout"] == "1 pseudoscalar" and ds.attrs["protocol"] == "heldout"
    assert np.allclose(ds.x.values, (np.arange(8) + 0.5) * 2 * np.pi / 8)
    assert np.allclose(ds.time.values, 0.5 + 0.1 * np.arange(5))
    train = ds.vorticity.values[:2].astype(np.float64)
    assert ds.attrs["norm_scale"] == pytest.approx(np.sqrt(np.mean(train**2)))
    stability = json.loads(ds.attrs["stability"])
    assert stability == report and stability["finite"] and 0 < stability["max_cfl"] <= ef.CFL_MAX
    assert ef.settings_of(store_settings(ds)) == (physics, initial, sampling)
    # the store's own settings drive the symmetry check
    check = ef.store_symmetry_check(tmp_path / "x64_True.zarr")
    assert check["data_sha"] == ds.attrs["content_sha256"] and check["kept"] == ["identity", "rot180"]


def test_unstable_settings_are_refused(tmp_path) -> None:
    needs_exponax()
    physics = tiny("decaying", dt=0.1)[0]
    sampling = ef.Sampling.from_dict({**TINY_SAMPLING, "spinup": 0.0, "n_frames": 2})
    fast = ef.InitialVorticity(peak_wavenumber=2.0, rms_velocity=10.0)  # CFL ≈ 10·0.1/(2π/16) ≫ 0.5
    with pytest.raises(ef.FlowUnstableError, match=r"CFL|non-finite"):
        ef.generate(physics, fast, sampling, tmp_path / "unstable.zarr")
    assert not (tmp_path / "unstable.zarr").exists()


def test_the_group_orbits_agree_between_c4_and_d4() -> None:
    """C4's elements are D4's first four, index by index, so the C4 data EE is the D4 orbit's first four members."""
    for g, h in itertools.product(range(4), repeat=2):
        assert C4().compose(g, h) == D4().compose(g, h)


# ---------------------------------------------------------------- CLI, config, table


def test_the_config_validates_and_names_each_flow_by_its_key() -> None:
    from pathlib import Path

    from equidyn.config import load_config, validate_config
    from equidyn.studies.exponax import flow_settings

    root = Path(__file__).resolve().parents[1]
    config = validate_config(load_config([root / "config" / "config.yaml", root / "config" / "exponax.yaml"]))
    section = config["exponax"]
    assert set(section["flows"]) == {"decaying", "kolmogorov"}
    physics, _, sampling = flow_settings(section["flows"]["kolmogorov"], "kolmogorov")
    assert physics.flow == "kolmogorov" and physics.nodes == 64 and sampling.n_trajectories == 64
    assert all(t < sampling.n_trajectories for t in section["symmetry_check"]["trajectories"])
    with pytest.raises(ValueError, match="the key names the flow"):
        flow_settings({"physics": {"flow": "decaying"}}, "kolmogorov")
    bad = {**config, "exponax": {"flows": {"kolmogorov": {"physics": {"refine": 3}}}}}
    with pytest.raises(ValueError, match="refine"):
        validate_config(bad)


def test_cli_subcommands_reach_the_study_functions() -> None:
    from equidyn.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["exponax-data", "--settings", "{}", "--flow", "kolmogorov", "--out", "x.zarr"])
    assert args._target == "equidyn.studies.exponax:generate" and args.flow == "kolmogorov"
    args = parser.parse_args(["exponax-symmetry", "--store", "s", "--out", "o.json", "--trajectories", "1", "2"])
    assert args._target == "equidyn.studies.exponax:symmetry" and args.trajectories == [1, 2]
    with pytest.raises(SystemExit):
        parser.parse_args(["exponax-data", "--settings", "{}", "--flow", "channel", "--out", "x"])


def test_data_table_has_one_row_per_flow_with_its_elements_and_lineage(tmp_path) -> None:
    import pandas as pd

    from equidyn.atomic import write_json
    from equidyn.studies.exponax import TABLE_COLUMNS, data_table

    files = []
    for flow, broken in (("kolmogorov", 0.5), ("decaying", 1e-15)):
        by_element = {name: {"element": g, "rel_l1": 0.0 if g in (0, 2) else broken, "kept": g in (0, 2)}
                      for g, name in enumerate(D4.ELEMENT_NAMES)}  # fmt: skip
        record = {"flow": flow, "group": "D4", "trajectories": [5, 6], "n_frames": 3, "frame_dt": 0.1,
                  "data_ee_c4": broken, "data_ee_c4_rel": broken, "data_ee_d4": broken, "data_ee_d4_rel": broken,
                  "data_ee_c4_rel_first_frame": broken, "data_ee_d4_rel_first_frame": broken,
                  "kept": ["identity", "rot180"], "broken": [], "by_element": by_element, "data_sha": flow}  # fmt: skip
        files.append(str(tmp_path / f"{flow}.json"))
        write_json(files[-1], record)
    data_table(files, tmp_path / "t.csv", {"flows": {}})
    table = pd.read_csv(tmp_path / "t.csv")
    assert table.flow.tolist() == ["decaying", "kolmogorov"] and table.n_trajectories.tolist() == [2, 2]
    assert list(table.columns[: len(TABLE_COLUMNS)]) == list(TABLE_COLUMNS)
    assert [c for c in table.columns if c.startswith("rel_l1_")] == [f"rel_l1_{name}" for name in D4.ELEMENT_NAMES]
    assert table[["config_sha", "git_rev", "data_sha"]].notna().all().all()
    assert table.kept.tolist() == ["identity rot180"] * 2
