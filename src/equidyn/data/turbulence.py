"""Offline forced isotropic turbulence: a compact pseudo-spectral Navier–Stokes solver on ``torch.fft``.

The super-resolution study ([W24, BLOG]) was run on JHTDB's ``isotropic1024coarse``, which needs a personal
token and the network. This module is the embedded default that lets the whole pipeline run offline: it solves
the incompressible Navier–Stokes equations in a 2π-periodic box,

    ∂u/∂t = P[u × ω − f_c ẑ × u] − ν k² u + f,      ∇·u = 0,     ω = ∇ × u,

in Fourier space (rotational form; ``P`` the Leray projection onto divergence-free modes), with

* the 2/3 rule: only modes with every ``|k_i| ≤ K = (n−1)//3`` are kept, so the quadratic term is alias-free
  and the truncated system conserves energy exactly (the energy budget below closes to time-stepping error);
* forcing at fixed power: ``f = ε/(2 E_f) · u`` on the band ``0 < |k| ≤ k_f``, where ``E_f`` is the energy in
  that band, so the injected power is exactly ``ε`` at every instant. The forcing is a function of ``u`` and
  of ``|k|`` only, so the whole solver commutes with the octahedral group (and with translations);
* classical RK4 time stepping with a CFL (or fixed) step, in float64;
* an optional f-plane Coriolis force ``−f_c ẑ × u`` (``coriolis``, default 0: the system rotates about the
  vertical at ``f_c/2``). It does no work, so the energy budget is unchanged, and it commutes with every
  rotation about z — but Ω ∝ ẑ is a pseudo-vector, so it breaks the mirrors that flip a horizontal axis
  (tests/test_turbulence.py shows both). The rotation tutorial uses it to ask whether Coriolis breaks the
  symmetry a D4 model imposes ([TUT]).

Physical units are explicit: lengths in the box's units (side 2π), velocity and time in the units in which the
forcing power ``ε`` and viscosity ``ν`` are given. By default ``ν`` is chosen from ``k_max η`` (the resolution
criterion of DNS), so every grid size gets a resolved but as-turbulent-as-affordable flow.

:func:`generate_offline` spins the flow up to a statistically stationary state, then records ``n_samples``
samples of ``n_times`` consecutive snapshots (``snapshot_interval`` apart), separated by a decorrelation gap,
and writes them with :func:`equidyn.store.write_store` in the layout shared with the JHTDB client
(``sample, time, component, z, y, x``). Diagnostics (Re_λ, ε, η/dx, k_max η, spin-up length, energy budget)
go into the store's attributes so a figure can say which flow it was made from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time as _time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import xarray as xr

from ..settings import settings_from_dict
from ..store import write_store
from .portable_numerics import pin_mkl_branch

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Order of vector components in every equidyn turbulence store (REFERENCE conventions: x, y[, z]).
COMPONENTS = ("x", "y", "z")


@dataclass(frozen=True)
class OfflineTurbulenceSettings:
    """How the offline forced-turbulence data set is made (config section ``superres.data.offline``).

    Times are physical (solver units, see the module docstring). The defaults are the paper scale: 64³ cubes,
    50 samples of 4 snapshots each.
    """

    n: int = 64
    n_samples: int = 50
    n_times: int = 4
    snapshot_interval: float = 0.1
    decorrelation_gap: float = 1.0
    spinup_time: float = 10.0
    forcing_power: float = 0.1
    forcing_kmax: float = 2.0
    viscosity: float | None = None
    kmax_eta: float = 1.0
    initial_energy: float = 0.5
    initial_peak_k: float = 2.0
    dt: float | None = None
    cfl: float = 0.8
    seed: int = 0
    coriolis: float = 0.0  # f-plane Coriolis parameter f_c (rotation about z); 0: none

    def __post_init__(self) -> None:
        if self.n < 8 or self.n % 2:
            raise ValueError(f"offline turbulence: n must be an even grid size >= 8, got {self.n}")
        for name in ("n_samples", "n_times"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"offline turbulence: {name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "snapshot_interval",
            "forcing_power",
            "forcing_kmax",
            "kmax_eta",
            "initial_energy",
            "cfl",
        ):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"offline turbulence: {name} must be > 0, got {getattr(self, name)}")
        for name in ("decorrelation_gap", "spinup_time"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"offline turbulence: {name} must be >= 0, got {getattr(self, name)}")
        if self.viscosity is not None and not self.viscosity > 0:
            raise ValueError(f"offline turbulence: viscosity must be > 0 or null, got {self.viscosity}")
        if self.dt is not None and not self.dt > 0:
            raise ValueError(f"offline turbulence: dt must be > 0 or null (CFL), got {self.dt}")
        if self.forcing_kmax >= (self.n - 1) // 3:
            raise ValueError(
                f"offline turbulence: forcing_kmax={self.forcing_kmax} is not below the dealiasing cut-off "
                f"{(self.n - 1) // 3} of a {self.n}³ grid"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> OfflineTurbulenceSettings:
        return settings_from_dict(cls, d, "superres.data.offline")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def resolved_viscosity(self) -> float:
        """ν: the setting, or the value that puts the Kolmogorov scale at ``k_max η = kmax_eta``.

        With the dissipation equal to the forcing power in the stationary state, ``η = (ν³/ε)^{1/4}``.
        """
        if self.viscosity is not None:
            return float(self.viscosity)
        k_max = (self.n - 1) // 3
        eta = self.kmax_eta / k_max
        return float((self.forcing_power * eta**4) ** (1.0 / 3.0))


class SpectralNS:
    """The pseudo-spectral operator (stateless): wavenumbers, masks, right-hand side, RK4 step, diagnostics.

    Fields in Fourier space have shape ``(3, n, n, n//2+1)`` (``rfftn`` over the grid axes ``(z, y, x)``,
    x last), with component 0 = u_x, 1 = u_y, 2 = u_z, normalised as Fourier coefficients
    (``norm="forward"``), so the mean kinetic energy is ``½ Σ |û_k|²`` over the full spectrum.
    """

    def __init__(
        self,
        n: int,
        viscosity: float,
        forcing_power: float,
        forcing_kmax: float,
        dtype: torch.dtype = torch.float64,
        coriolis: float = 0.0,
    ) -> None:
        self.n = n
        self.coriolis = float(coriolis)
        self.viscosity = float(viscosity)
        self.forcing_power = float(forcing_power)
        self.forcing_kmax = float(forcing_kmax)
        self.dtype = dtype
        self.dx = 2 * math.pi / n
        self.k_cut = (n - 1) // 3
        kz = torch.fft.fftfreq(n, 1.0 / n, dtype=dtype).view(n, 1, 1)
        ky = torch.fft.fftfreq(n, 1.0 / n, dtype=dtype).view(1, n, 1)
        kx = torch.fft.rfftfreq(n, 1.0 / n, dtype=dtype).view(1, 1, n // 2 + 1)
        shape = (n, n, n // 2 + 1)
        #: wavevector components in component order (x, y, z), each broadcast to the half-spectrum shape
        self.k = torch.stack([kx.expand(shape), ky.expand(shape), kz.expand(shape)])
        self.k2 = (self.k**2).sum(0)
        self.k2_safe = torch.where(self.k2 == 0, torch.ones_like(self.k2), self.k2)
        kabs = self.k.abs()
        self.dealias = (kabs <= self.k_cut).all(0).to(dtype)
        self.forced = ((self.k2 > 0) & (self.k2 <= self.forcing_kmax**2 + 1e-9)).to(dtype)
        # rfft stores kx > 0 once for the pair (k, -k): weight 2 in sums over the full spectrum.
        w = torch.full((n // 2 + 1,), 2.0, dtype=dtype)
        w[0] = 1.0
        w[-1] = 1.0  # Nyquist column (n even); it is dealiased away anyway
        self.weight = w.view(1, 1, -1).expand(shape)
        # the forced band holds a few dozen modes: gather them instead of masking the whole spectrum
        self._forced_index = torch.nonzero(self.forced.flatten()).flatten()
        self._forced_weight = self.weight.flatten()[self._forced_index]

    # -- transforms ---------------------------------------------------------------------------------------
    def to_spectral(self, u: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfftn(u, dim=(-3, -2, -1), norm="forward")

    def to_physical(self, uh: torch.Tensor) -> torch.Tensor:
        n = self.n
        return torch.fft.irfftn(uh, s=(n, n, n), dim=(-3, -2, -1), norm="forward")

    def project(self, vh: torch.Tensor) -> torch.Tensor:
        """Leray projection: remove the component of each mode along its wavevector."""
        kdotv = (self.k * vh).sum(0)
        return vh - self.k * (kdotv / self.k2_safe)

    def curl(self, uh: torch.Tensor) -> torch.Tensor:
        kx, ky, kz = self.k
        ux, uy, uz = uh
        return 1j * torch.stack([ky * uz - kz * uy, kz * ux - kx * uz, kx * uy - ky * ux])

    # -- physics ------------------------------------------------------------------------------------------
    def forcing(self, uh: torch.Tensor) -> torch.Tensor:
        """Fixed-power forcing: ``ε/(2 E_f)`` times the velocity in the forced band (zero if it is empty)."""
        band = uh.flatten(1)[:, self._forced_index]
        e_f = float(0.5 * (self._forced_weight * torch.view_as_real(band).square().sum((0, 2))).sum())
        if e_f <= 0:
            return torch.zeros_like(uh)
        fh = torch.zeros_like(uh)
        fh.flatten(1)[:, self._forced_index] = (self.forcing_power / (2.0 * e_f)) * band
        return fh

    def rhs(self, uh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``dû/dt`` and the physical velocity (so a caller can take a CFL step without another FFT)."""
        both = self.to_physical(torch.cat([uh, self.curl(uh)]))
        u = both[:3]
        ux, uy, uz, wx, wy, wz = both
        # written out: torch.linalg.cross over the leading dimension is ~10x slower on CPU
        nl = torch.stack([uy * wz - uz * wy, uz * wx - ux * wz, ux * wy - uy * wx])
        nlh = self.to_spectral(nl) * self.dealias
        if self.coriolis:
            # −f ẑ × u = (f u_y, −f u_x, 0): linear, so it acts on the (already dealiased) spectral state
            nlh = nlh + self.coriolis * torch.stack([uh[1], -uh[0], torch.zeros_like(uh[2])])
        nlh = self.project(nlh)
        return nlh - self.viscosity * self.k2 * uh + self.forcing(uh), u

    def step(self, uh: torch.Tensor, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One classical RK4 step; returns the new state and the physical velocity at the step's *start*."""
        k1, u0 = self.rhs(uh)
        k2, _ = self.rhs(uh + 0.5 * dt * k1)
        k3, _ = self.rhs(uh + 0.5 * dt * k2)
        k4, _ = self.rhs(uh + dt * k3)
        return uh + (dt / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4), u0

    def cfl_dt(self, u: torch.Tensor, cfl: float) -> float:
        """Largest stable step: advective CFL on ``Σ|u_i|`` and RK4's viscous limit on the largest ``k²``."""
        umax = float(u.abs().sum(0).max())
        dt_adv = cfl * self.dx / max(umax, 1e-12)
        dt_visc = 2.5 / (self.viscosity * 3 * self.k_cut**2)
        # RK4 is stable for oscillations up to |f dt| ≈ 2.8; 1.0 keeps the inertial waves accurate
        dt_rot = 1.0 / abs(self.coriolis) if self.coriolis else math.inf
        return min(dt_adv, dt_visc, dt_rot)

    # -- diagnostics --------------------------------------------------------------------------------------
    def energy(self, uh: torch.Tensor) -> float:
        """Mean kinetic energy ``½⟨|u|²⟩``."""
        return float(0.5 * (self.weight * (uh.abs() ** 2).sum(0)).sum())

    def dissipation(self, uh: torch.Tensor) -> float:
        """Mean dissipation rate ``ν⟨|ω|²⟩ = 2ν Σ k² E(k)``."""
        return float(self.viscosity * (self.weight * self.k2 * (uh.abs() ** 2).sum(0)).sum())

    def injected_power(self, uh: torch.Tensor) -> float:
        """Power put in by the forcing, ``⟨f·u⟩`` (equal to ε whenever the forced band is not empty)."""
        fh = self.forcing(uh)
        return float((self.weight * (fh.conj() * uh).real.sum(0)).sum())

    def spectrum(self, uh: torch.Tensor) -> np.ndarray:
        """Shell-summed energy spectrum ``E(k)`` on integer shells ``k = round(|k|)``, ``k = 0 .. k_cut``."""
        shell = torch.round(self.k2.sqrt()).long().flatten()
        e = (0.5 * self.weight * (uh.abs() ** 2).sum(0)).flatten()
        out = torch.zeros(int(shell.max()) + 1, dtype=self.dtype).index_add_(0, shell, e)
        return out[: self.k_cut + 1].numpy()

    def divergence(self, uh: torch.Tensor) -> torch.Tensor:
        """Spectral divergence in physical space (zero to round-off for a state of this solver)."""
        return self.to_physical((1j * self.k * uh).sum(0, keepdim=True))[0]

    def initial_condition(self, seed: int, energy: float, peak_k: float) -> torch.Tensor:
        """Random solenoidal field with ``E(k) ∝ k⁴ exp(−2 (k/k_p)²)`` and mean energy ``energy``.

        Drawn as white noise in physical space (so the spectrum is Hermitian by construction), projected,
        shaped and rescaled; deterministic for a given seed.
        """
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.randn((3, self.n, self.n, self.n), generator=gen, dtype=self.dtype)
        uh = self.project(self.to_spectral(noise)) * self.dealias
        kk = self.k2.sqrt()
        # white noise has E(k) ∝ k²; the k⁴ target needs an amplitude factor k · exp(-(k/k_p)²)
        uh = uh * (kk * torch.exp(-((kk / peak_k) ** 2)))
        uh[:, 0, 0, 0] = 0
        return uh * math.sqrt(energy / self.energy(uh))


@dataclass
class FlowStats:
    """Time averages of the flow over the recorded (stationary) phase, and the derived turbulence scales."""

    energy: float
    dissipation: float
    viscosity: float
    n: int
    k_cut: int
    spectrum: np.ndarray = field(repr=False)
    component_rms: np.ndarray = field(repr=False)

    @property
    def u_rms(self) -> float:
        """r.m.s. of one velocity component, ``u' = sqrt(2E/3)``."""
        return math.sqrt(2 * self.energy / 3)

    @property
    def taylor_microscale(self) -> float:
        return math.sqrt(15 * self.viscosity * self.u_rms**2 / self.dissipation)

    @property
    def re_lambda(self) -> float:
        return self.u_rms * self.taylor_microscale / self.viscosity

    @property
    def eta(self) -> float:
        return (self.viscosity**3 / self.dissipation) ** 0.25

    @property
    def integral_scale(self) -> float:
        """``L = π/(2u'²) Σ E(k)/k``."""
        k = np.arange(len(self.spectrum))
        return float(math.pi / (2 * self.u_rms**2) * np.sum(self.spectrum[1:] / k[1:]))

    def as_attrs(self) -> dict[str, Any]:
        dx = 2 * math.pi / self.n
        return {
            "energy": self.energy,
            "dissipation": self.dissipation,
            "u_rms": self.u_rms,
            "component_rms": [float(c) for c in self.component_rms],
            "taylor_microscale": self.taylor_microscale,
            "re_lambda": self.re_lambda,
            "kolmogorov_eta": self.eta,
            "eta_over_dx": self.eta / dx,
            "kmax_eta": self.k_cut * self.eta,
            "integral_scale": self.integral_scale,
            "large_eddy_time": self.integral_scale / self.u_rms,
            "kolmogorov_time": math.sqrt(self.viscosity / self.dissipation),
            "spectrum": [float(e) for e in self.spectrum],
        }


@dataclass
class Trajectory:
    """Per-step series of energy ``E``, dissipation ``D`` and injected power ``P`` (budgets, tests)."""

    t: list[float] = field(default_factory=list)
    energy: list[float] = field(default_factory=list)
    dissipation: list[float] = field(default_factory=list)
    power: list[float] = field(default_factory=list)

    def record(self, solver: SpectralNS, uh: torch.Tensor, t: float) -> None:
        self.t.append(t)
        self.energy.append(solver.energy(uh))
        self.dissipation.append(solver.dissipation(uh))
        self.power.append(solver.injected_power(uh))

    def budget_residual(self) -> float:
        """``|ΔE − ∫(P − D) dt| / ∫P dt`` over the series (trapezoid rule): zero for an exact budget."""
        t, e = np.asarray(self.t), np.asarray(self.energy)
        p, d = np.asarray(self.power), np.asarray(self.dissipation)
        if len(t) < 2:
            return 0.0
        net = np.trapezoid(p - d, t) if hasattr(np, "trapezoid") else np.trapz(p - d, t)  # numpy 1.26
        gross = np.trapezoid(p, t) if hasattr(np, "trapezoid") else np.trapz(p, t)
        return float(abs((e[-1] - e[0]) - net) / max(gross, 1e-300))


class Integrator:
    """Advances a state by exact physical durations with RK4, sub-steps by CFL (or a fixed ``dt``)."""

    def __init__(self, solver: SpectralNS, cfl: float, dt: float | None = None) -> None:
        self.solver = solver
        self.cfl = cfl
        self.fixed_dt = dt
        self.n_steps = 0

    def advance(
        self,
        uh: torch.Tensor,
        t: float,
        duration: float,
        chunk: float,
        on_step: Callable[[torch.Tensor, float], None] | None = None,
    ) -> tuple[torch.Tensor, float]:
        """Advance ``uh`` from ``t`` by ``duration`` in pieces of at most ``chunk``, uniformly sub-stepped.

        Each piece is split into ``ceil(piece / dt_cfl)`` equal steps, with ``dt_cfl`` from the state at its
        start, so snapshot times are hit exactly.
        """
        remaining = duration
        while remaining > 1e-12:
            piece = min(chunk, remaining)
            if self.fixed_dt is not None:
                n_sub = max(1, round(piece / self.fixed_dt))
                if abs(n_sub * self.fixed_dt - piece) > 1e-9 * max(piece, 1.0):
                    raise ValueError(
                        f"fixed dt={self.fixed_dt} does not divide the interval {piece}: choose dt so that "
                        "snapshot_interval, decorrelation_gap and spinup_time are multiples of it, or use CFL"
                    )
            else:
                dt_cfl = self.solver.cfl_dt(self.solver.to_physical(uh), self.cfl)
                n_sub = max(1, math.ceil(piece / dt_cfl - 1e-9))
            dt = piece / n_sub
            for _ in range(n_sub):
                uh, _ = self.solver.step(uh, dt)
                t += dt
                self.n_steps += 1
                if on_step is not None:
                    on_step(uh, t)
            remaining -= piece
        return uh, t


@dataclass
class OfflineRun:
    """Result of :func:`simulate`: float32 snapshots (``sample, time, component, z, y, x``), diagnostics."""

    velocity: np.ndarray
    t0: np.ndarray
    stats: FlowStats
    spinup: Trajectory
    sampling: Trajectory
    diagnostics: dict[str, Any]


def make_solver(settings: OfflineTurbulenceSettings) -> SpectralNS:
    return SpectralNS(
        settings.n,
        settings.resolved_viscosity,
        settings.forcing_power,
        settings.forcing_kmax,
        torch.float64,
        coriolis=settings.coriolis,
    )


def simulate(settings: OfflineTurbulenceSettings) -> OfflineRun:
    """Spin up to stationarity, then record the samples; the whole run is deterministic given ``settings``.

    Energy, dissipation and injected power are recorded after every step (a few per cent of a step's cost),
    so the energy budget and the approach to stationarity can be reported for every data set.
    """
    pin_mkl_branch()  # torch.fft on MKL: the same bits on every x86 CPU (portable_numerics.py)
    solver = make_solver(settings)
    integ = Integrator(solver, settings.cfl, settings.dt)
    uh = solver.initial_condition(settings.seed, settings.initial_energy, settings.initial_peak_k)
    chunk = settings.snapshot_interval
    wall0 = _time.perf_counter()

    spin = Trajectory()
    spin.record(solver, uh, 0.0)
    uh, t = integ.advance(uh, 0.0, settings.spinup_time, chunk, lambda v, tt: spin.record(solver, v, tt))
    spinup_steps = integ.n_steps
    log.info("offline turbulence %d³: spun up for t=%.3g in %d steps", settings.n, t, spinup_steps)

    samp = Trajectory()
    samp.record(solver, uh, t)

    def on_step(v: torch.Tensor, tt: float) -> None:
        samp.record(solver, v, tt)

    n = settings.n
    velocity = np.empty((settings.n_samples, settings.n_times, 3, n, n, n), dtype=np.float32)
    t0 = np.empty(settings.n_samples)
    energies, dissipations, spectra, comp_ms = [], [], [], []
    for s in range(settings.n_samples):
        if s > 0:
            uh, t = integ.advance(uh, t, settings.decorrelation_gap, chunk, on_step)
        t0[s] = t
        for j in range(settings.n_times):
            if j > 0:
                uh, t = integ.advance(uh, t, settings.snapshot_interval, chunk, on_step)
            u = solver.to_physical(uh)
            velocity[s, j] = u.to(torch.float32).numpy()
            energies.append(solver.energy(uh))
            dissipations.append(solver.dissipation(uh))
            spectra.append(solver.spectrum(uh))
            comp_ms.append((u**2).mean(dim=(1, 2, 3)).numpy())
        log.info("offline turbulence: sample %d/%d at t0=%.3f", s + 1, settings.n_samples, t0[s])

    stats = FlowStats(
        energy=float(np.mean(energies)),
        dissipation=float(np.mean(dissipations)),
        viscosity=solver.viscosity,
        n=n,
        k_cut=solver.k_cut,
        spectrum=np.mean(spectra, axis=0),
        component_rms=np.sqrt(np.mean(comp_ms, axis=0)),
    )
    half = len(spin.t) // 2
    diagnostics = {
        **stats.as_attrs(),
        "viscosity": solver.viscosity,
        "forcing_power": solver.forcing_power,
        "coriolis": solver.coriolis,
        "dealias_kmax": solver.k_cut,
        "dx": solver.dx,
        "spinup_time": settings.spinup_time,
        "spinup_steps": spinup_steps,
        "spinup_final_energy": spin.energy[-1],
        # mean D/ε over the second half of the spin-up: near 1 when the spin-up reached the stationary state
        "spinup_dissipation_ratio": float(np.mean(spin.dissipation[half:]) / solver.forcing_power),
        "total_steps": integ.n_steps,
        "mean_dt": (t / integ.n_steps) if integ.n_steps else float("nan"),
        "end_time": t,
        "wall_seconds": _time.perf_counter() - wall0,
        "energy_budget_residual": samp.budget_residual(),
    }
    return OfflineRun(velocity, t0, stats, spin, samp, diagnostics)


def to_dataset(run: OfflineRun, settings: OfflineTurbulenceSettings) -> xr.Dataset:
    """The shared turbulence store layout (see :mod:`equidyn.data.superres_data`) for an offline run."""
    n = settings.n
    dx = 2 * math.pi / n
    pos = np.arange(n) * dx
    s = np.arange(settings.n_samples)
    zeros = np.zeros(settings.n_samples)
    ds = xr.Dataset(
        {"velocity": (("sample", "time", "component", "z", "y", "x"), run.velocity)},
        coords={
            "sample": s,
            "time": np.arange(settings.n_times) * settings.snapshot_interval,
            "component": list(COMPONENTS),
            "z": pos,
            "y": pos,
            "x": pos,
            "t0": ("sample", run.t0),
            "x0": ("sample", zeros),
            "y0": ("sample", zeros),
            "z0": ("sample", zeros),
        },
    )
    ds["velocity"].attrs["units"] = "solver velocity units (box side 2π, forcing power ε, viscosity ν)"
    ds["velocity"].attrs["long_name"] = "velocity, components in (x, y, z) order"
    for c in ("x", "y", "z", "x0", "y0", "z0"):
        ds[c].attrs["units"] = "box length units (side 2π)"
    ds["time"].attrs["units"] = "solver time units, relative to the sample's first snapshot (t0)"
    ds["t0"].attrs["units"] = "solver time units, counted from the start of the spin-up"
    ds.attrs.update(
        {
            "source": "offline",
            "title": "forced isotropic turbulence, pseudo-spectral DNS (equidyn.data.turbulence)",
            "units": json.dumps(
                {
                    "length": "periodic box of side 2π",
                    "time": "solver units (forcing power ε and viscosity ν are given in them)",
                    "velocity": "length / time",
                }
            ),
            "grid": "cell positions i*dx, dx = 2π/n; axes (z, y, x) with x last",
            "diagnostics": json.dumps(run.diagnostics, default=float),
            **{k: v for k, v in run.diagnostics.items() if k != "spectrum" and isinstance(v, (int, float))},
        }
    )
    return ds


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads (None: leave as is).

    A workflow job should use the cores it was given: torch defaults to all cores, and on a shared machine
    oversubscribed FFT threads made a step 5-10x slower in the benchmark (docs/turbulence.md).
    """
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def generate_offline(settings: OfflineTurbulenceSettings, out: str | Path, *, threads: int | None = None) -> str:
    """Simulate and write the offline turbulence store to ``out`` (atomically); return its checksum.

    ``threads`` bounds torch's threads (the job's cores). Grids up to 24³ always run on one thread: their FFTs
    are too small to share, and on a loaded 2-core machine two threads made the 16³ demo data 6x slower
    (1.7 s → 10 s). Results are bit-identical for any thread count (checked at 32³).
    """
    if threads is not None and settings.n <= 24:
        threads = 1
    with torch_threads(threads):
        run = simulate(settings)
    ds = to_dataset(run, settings)
    return write_store(ds, out, settings={"source": "offline", **settings.to_dict()})
