"""Physics checks of the offline forced-turbulence solver, each against a known answer.

Known answers: a Leray-projected field is divergence-free; the 2/3-dealiased nonlinear term conserves energy
exactly; fixed-power forcing injects exactly ε; so dE/dt = ε − D to time-stepping accuracy and, in the
stationary state, ⟨D⟩ = ε; isotropic forcing of an O_h-equivariant solver gives equal component variances
(within the sampling error of a finite record); and the spectrum approaches the K41 slope −5/3 as the
Reynolds number grows (reached near 64³, the slow test).
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from equidyn.data.turbulence import (
    Integrator,
    OfflineTurbulenceSettings,
    SpectralNS,
    generate_offline,
    make_solver,
    simulate,
)
from equidyn.store import open_store

OH = [(perm, signs) for perm in itertools.permutations(range(3)) for signs in itertools.product((1, -1), repeat=3)]


def act_oh(perm: tuple[int, ...], signs: tuple[int, ...], u: torch.Tensor) -> torch.Tensor:
    """Physical action of the signed permutation ``M[a, perm[a]] = signs[a]`` on ``(..., 3, z, y, x)`` fields.

    ``(g·u)(p) = M u(M⁻¹ p)``: written with ``permute`` and ``flip`` only (physical axis a = x, y, z lives on
    tensor dim -1, -2, -3), independent of the package's symmetry module.
    """
    nd = u.dim()
    dims = list(range(nd))
    for a in range(3):
        dims[nd - 1 - a] = nd - 1 - perm[a]
    v = u.permute(dims)
    flips = [nd - 1 - a for a in range(3) if signs[a] < 0]
    if flips:
        v = v.flip(flips)
    return torch.stack([signs[a] * v[..., perm[a], :, :, :] for a in range(3)], dim=-4)


def loglog_slope(spectrum: np.ndarray, lo: int, hi: int) -> float:
    k = np.arange(len(spectrum))
    m = (k >= lo) & (k <= hi)
    return float(np.polyfit(np.log(k[m]), np.log(spectrum[m]), 1)[0])


# -- settings ---------------------------------------------------------------------------------------------
def test_settings_reject_unknown_keys_and_derive_viscosity_from_kmax_eta():
    with pytest.raises(ValueError, match="n_sample"):
        OfflineTurbulenceSettings.from_dict({"n_sample": 3})
    with pytest.raises(ValueError, match="forcing_kmax"):
        OfflineTurbulenceSettings(n=16, forcing_kmax=5.0)
    with pytest.raises(ValueError, match="n must be"):
        OfflineTurbulenceSettings(n=17)
    s = OfflineTurbulenceSettings.from_dict({"n": 32, "kmax_eta": 1.5})
    eta = (s.resolved_viscosity**3 / s.forcing_power) ** 0.25
    assert 10 * eta == pytest.approx(1.5)  # k_max = (32 - 1) // 3 = 10
    assert OfflineTurbulenceSettings(viscosity=0.01).resolved_viscosity == 0.01


# -- exact properties of the operator ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def solver16() -> SpectralNS:
    return SpectralNS(16, viscosity=0.05, forcing_power=0.1, forcing_kmax=2.0)


def test_initial_condition_is_real_solenoidal_dealiased_and_has_the_requested_energy(solver16):
    uh = solver16.initial_condition(seed=3, energy=0.7, peak_k=2.0)
    u = solver16.to_physical(uh)
    assert solver16.energy(uh) == pytest.approx(0.7, rel=1e-12)
    assert 0.5 * float((u**2).sum(0).mean()) == pytest.approx(0.7, rel=1e-12)  # Parseval in physical space
    assert torch.allclose(solver16.to_spectral(u), uh, atol=1e-14)  # a real field: the round trip is exact
    assert float(solver16.divergence(uh).abs().max()) < 1e-13
    assert float((uh * (1 - solver16.dealias)).abs().max()) == 0.0
    assert not torch.equal(uh, solver16.initial_condition(seed=4, energy=0.7, peak_k=2.0))


def test_fixed_power_forcing_injects_exactly_epsilon(solver16):
    for seed in range(3):
        uh = solver16.initial_condition(seed=seed, energy=0.1 + seed, peak_k=3.0)
        assert solver16.injected_power(uh) == pytest.approx(0.1, rel=1e-12)


def test_dealiased_nonlinear_term_conserves_energy():
    inviscid = SpectralNS(16, viscosity=0.0, forcing_power=0.0, forcing_kmax=2.0)
    uh = inviscid.initial_condition(seed=1, energy=1.0, peak_k=4.0)
    duh, _ = inviscid.rhs(uh)
    de_dt = float((inviscid.weight * (uh.conj() * duh).real.sum(0)).sum())
    scale = float((inviscid.weight * duh.abs().sum(0) * uh.abs().sum(0)).sum())
    assert abs(de_dt) < 1e-13 * scale
    assert float(duh.abs().max()) > 1e-3  # the term is not trivially zero
    assert float((duh * (1 - inviscid.dealias)).abs().max()) == 0.0


def test_solver_commutes_with_every_octahedral_element(solver16):
    """Simulating the rotated/reflected initial field equals transforming the simulated field."""
    uh = solver16.initial_condition(seed=5, energy=0.5, peak_k=2.0)

    def run(u0: torch.Tensor) -> torch.Tensor:
        vh = solver16.to_spectral(u0)
        for _ in range(5):
            vh, _ = solver16.step(vh, 0.05)
        return solver16.to_physical(vh)

    u0 = solver16.to_physical(uh)
    u_t = run(u0)
    assert float((u_t - u0).abs().max()) > 1e-2  # the flow moved
    errors = [float((run(act_oh(p, s, u0)) - act_oh(p, s, u_t)).abs().max()) for p, s in OH]
    assert max(errors) < 1e-12 * float(u_t.abs().max())
    # and the check is sharp: a transformed field is not the untransformed one
    assert float((act_oh((1, 0, 2), (1, 1, 1), u_t) - u_t).abs().max()) > 1e-2


def test_coriolis_keeps_rotations_about_z_exact_and_breaks_horizontal_mirrors():
    """f-plane rotation: the solver commutes exactly with the elements that keep the pseudo-vector ẑ (rotations
    about z, the z-mirror, the inversion), and not with a mirror of a horizontal axis; energy is still conserved."""
    rotating = SpectralNS(16, viscosity=0.02, forcing_power=0.1, forcing_kmax=2.0, coriolis=4.0)
    uh = rotating.initial_condition(seed=5, energy=0.5, peak_k=2.0)

    def run(solver: SpectralNS, u0: torch.Tensor) -> torch.Tensor:
        vh = solver.to_spectral(u0)
        for _ in range(5):
            vh, _ = solver.step(vh, 0.05)
        return solver.to_physical(vh)

    u0 = rotating.to_physical(uh)
    u_t = run(rotating, u0)
    scale = float(u_t.abs().max())
    keeps, breaks = [], []
    for p, s in OH:
        m = np.zeros((3, 3))
        for a in range(3):
            m[a, p[a]] = s[a]
        err = float((run(rotating, act_oh(p, s, u0)) - act_oh(p, s, u_t)).abs().max())
        # the pseudo-vector Ω ∝ ẑ maps to det(M) M ẑ: kept iff that is +ẑ
        (keeps if round(np.linalg.det(m)) * m[2, 2] == 1 else breaks).append(err)
    assert len(keeps) == 8 and len(breaks) == 40
    assert max(keeps) < 1e-12 * scale  # the four rotations about z (and their z-mirror images) stay exact
    quarter_turn_z, mirror_x = ((1, 0, 2), (-1, 1, 1)), ((0, 1, 2), (-1, 1, 1))
    err_rot = float((run(rotating, act_oh(*quarter_turn_z, u0)) - act_oh(*quarter_turn_z, u_t)).abs().max())
    err_mirror = float((run(rotating, act_oh(*mirror_x, u0)) - act_oh(*mirror_x, u_t)).abs().max())
    assert err_rot < 1e-12 * scale
    assert err_mirror > 1e-3 * scale and min(breaks) > 1e-3 * scale  # a horizontal mirror is no longer a symmetry
    # without Coriolis the same mirror is exact again: the broken symmetry is the Coriolis term's doing
    still = SpectralNS(16, viscosity=0.02, forcing_power=0.1, forcing_kmax=2.0)
    assert float((run(still, act_oh(*mirror_x, u0)) - act_oh(*mirror_x, run(still, u0))).abs().max()) < 1e-12 * scale
    # Coriolis does no work: the inviscid, unforced rhs still conserves energy
    inviscid = SpectralNS(16, viscosity=0.0, forcing_power=0.0, forcing_kmax=2.0, coriolis=4.0)
    duh, _ = inviscid.rhs(uh)
    de_dt = float((inviscid.weight * (uh.conj() * duh).real.sum(0)).sum())
    assert abs(de_dt) < 1e-13 * float((inviscid.weight * duh.abs().sum(0) * uh.abs().sum(0)).sum())


def test_coriolis_setting_reaches_the_solver_and_the_diagnostics():
    s = OfflineTurbulenceSettings(n=16, n_samples=1, n_times=1, spinup_time=0.2, coriolis=3.0)
    assert make_solver(s).coriolis == 3.0
    assert simulate(s).diagnostics["coriolis"] == 3.0
    assert make_solver(OfflineTurbulenceSettings(n=16)).coriolis == 0.0


# -- a short 32³ run: divergence, energy budget, the stored layout ----------------------------------------
@pytest.fixture(scope="module")
def run32():
    s = OfflineTurbulenceSettings(n=32, n_samples=2, n_times=4, spinup_time=6.0, decorrelation_gap=1.0)
    return s, simulate(s)


def test_fields_are_divergence_free_to_round_off(run32):
    s, run = run32
    solver = make_solver(s)
    u = torch.from_numpy(run.velocity.astype(np.float64))  # float32 snapshots
    for snapshot in u.flatten(0, 1):
        uh = solver.to_spectral(snapshot)
        div = float(solver.divergence(uh).abs().max())
        # the scale to compare with: the largest velocity-gradient component, ∂_j u_i, in physical space
        grad = max(float(solver.to_physical(1j * solver.k[j] * uh).abs().max()) for j in range(3))
        assert div < 1e-5 * grad  # float32 storage round-off (eps 6e-8, amplified by k up to k_max)
        # the solver's own projection is exact in float64
        assert float(solver.divergence(solver.project(uh)).abs().max()) < 1e-13 * grad


def test_energy_input_balances_dissipation_step_by_step(run32):
    """dE/dt = ε − D: the recorded energy change equals the integrated budget to time-stepping error."""
    _, run = run32
    assert run.sampling.budget_residual() < 1e-4
    assert run.spinup.budget_residual() < 1e-4
    assert np.allclose(run.sampling.power, 0.1, rtol=1e-12)
    # it is a real balance, not two tiny numbers: the dissipated energy is of order the kinetic energy
    t, d = np.asarray(run.sampling.t), np.asarray(run.sampling.dissipation)
    assert float(np.sum(np.diff(t) * d[1:])) > 0.1 * run.sampling.energy[0]


def test_spinup_reaches_a_resolved_turbulent_state(run32):
    _, run = run32
    d = run.diagnostics
    assert 0.8 < d["kmax_eta"] < 1.3
    assert 15 < d["re_lambda"] < 60
    assert 0.7 < d["spinup_dissipation_ratio"] < 1.3


# -- a long 16³ record: stationarity and isotropy ---------------------------------------------------------
def _long_record(forcing_filter=None, duration: float = 300.0) -> dict[str, np.ndarray]:
    s = OfflineTurbulenceSettings(n=16)
    solver = make_solver(s)
    if forcing_filter is not None:
        plain = solver.forcing
        solver.forcing = lambda uh: solver.project(forcing_filter(plain(uh)))  # type: ignore[method-assign]
    integ = Integrator(solver, s.cfl)
    uh = solver.initial_condition(s.seed, s.initial_energy, s.initial_peak_k)
    uh, t = integ.advance(uh, 0.0, 10.0, 0.5)
    rows: list[list[float]] = []

    def record(v: torch.Tensor, tt: float) -> None:
        comp = (solver.weight * v.abs() ** 2).sum((1, 2, 3))  # ⟨u_c²⟩ by Parseval
        rows.append([tt, *comp.tolist(), solver.dissipation(v)])

    integ.advance(uh, t, duration, 0.5, record)
    r = np.asarray(rows)
    return {"t": r[:, 0], "ms": r[:, 1:4], "dissipation": r[:, 4], "spectrum": solver.spectrum(uh)}


def component_t_statistics(ms: np.ndarray, blocks: int = 15) -> list[float]:
    """t statistics of the pairwise differences of component mean squares, from batch means of the record."""
    means = np.array([ms[i].mean(0) for i in np.array_split(np.arange(len(ms)), blocks)])
    out = []
    for a, b in ((0, 1), (0, 2), (1, 2)):
        d = means[:, a] - means[:, b]
        out.append(float(d.mean() / (d.std(ddof=1) / math.sqrt(blocks))))
    return out


@pytest.fixture(scope="module")
def long16():
    return _long_record()


def test_stationary_dissipation_equals_forcing_power(long16):
    assert np.mean(long16["dissipation"]) == pytest.approx(0.1, rel=0.05)


def test_components_have_equal_rms_within_sampling_error(long16):
    tstats = component_t_statistics(long16["ms"])
    assert max(abs(t) for t in tstats) < 4.0, tstats
    rms = np.sqrt(long16["ms"].mean(0))
    assert rms.max() / rms.min() < 1.25


def test_isotropy_check_detects_anisotropic_forcing():
    """Negative control: forcing only u_x (then projected) must fail the isotropy statistic."""

    def x_only(fh: torch.Tensor) -> torch.Tensor:
        fh = fh.clone()
        fh[1:] = 0
        return fh

    rec = _long_record(x_only, duration=100.0)
    assert max(abs(t) for t in component_t_statistics(rec["ms"])) > 4.0


def test_spectrum_steepness_falls_towards_k41_as_the_grid_grows(long16, run32):
    """Same k_max η, more resolution → higher Re_λ → a shallower low-k slope, still steeper than −5/3."""
    slope16 = loglog_slope(long16["spectrum"], 2, 4)
    slope32 = loglog_slope(run32[1].stats.spectrum, 2, 5)
    assert slope16 < slope32 - 0.3
    assert -5 / 3 - 2.0 < slope32 < -5 / 3 + 0.1


@pytest.mark.slow
def test_inertial_range_slope_near_minus_five_thirds_at_64():
    # the low-k spectrum fluctuates with the large eddies: average 8 snapshots over 7 time units (~3 T_L)
    s = OfflineTurbulenceSettings(n=64, n_samples=8, n_times=1, spinup_time=8.0, decorrelation_gap=1.0)
    run = simulate(s)
    slope = loglog_slope(run.stats.spectrum, 2, 5)
    assert slope == pytest.approx(-5 / 3, abs=0.3), slope
    assert run.diagnostics["re_lambda"] > 40


# -- the store ---------------------------------------------------------------------------------------------
def test_generate_offline_writes_the_shared_layout_deterministically(tmp_path):
    s = OfflineTurbulenceSettings(
        n=16, n_samples=3, n_times=4, spinup_time=2.0, snapshot_interval=0.1, decorrelation_gap=0.5
    )
    sha = generate_offline(s, tmp_path / "a.zarr", threads=1)
    ds = open_store(tmp_path / "a.zarr")
    assert ds.attrs["content_sha256"] == sha
    assert ds["velocity"].dims == ("sample", "time", "component", "z", "y", "x")
    assert ds["velocity"].shape == (3, 4, 3, 16, 16, 16) and ds["velocity"].dtype == np.float32
    assert list(ds["component"].values) == ["x", "y", "z"]
    np.testing.assert_allclose(ds["time"].values, [0, 0.1, 0.2, 0.3], atol=1e-12)
    np.testing.assert_allclose(np.diff(ds["t0"].values), 0.3 + 0.5, atol=1e-9)
    assert ds["t0"].values[0] == pytest.approx(2.0)
    np.testing.assert_allclose(ds["x"].values, np.arange(16) * 2 * np.pi / 16)
    assert ds.attrs["source"] == "offline"
    for key in ("re_lambda", "dissipation", "eta_over_dx", "kmax_eta", "spinup_time", "spinup_steps"):
        assert key in ds.attrs
    assert json.loads(ds.attrs["settings"])["n"] == 16
    # consecutive snapshots differ, samples differ
    v = ds["velocity"].values
    assert np.abs(v[0, 1] - v[0, 0]).max() > 1e-4 and np.abs(v[1, 0] - v[0, 0]).max() > 1e-2
    assert generate_offline(s, tmp_path / "b.zarr", threads=1) == sha


def test_fixed_dt_must_divide_the_intervals():
    s = OfflineTurbulenceSettings(n=16, n_samples=1, spinup_time=0.25, dt=0.1)
    with pytest.raises(ValueError, match="does not divide"):
        simulate(s)
