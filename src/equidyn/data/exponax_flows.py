"""Periodic 2-D turbulence from exponax (issue 24): decaying turbulence and Kolmogorov flow, in vorticity form.

**Why these two flows.** Both integrate ``ω_t + (v·∇)ω = ν Δω + λ ω (+ f)`` on the periodic square ``[0, L)²``
with exponax's pseudo-spectral ETDRK solvers ([exponax], the solvers behind APEBench). Without forcing (*decaying
turbulence*) the equations are invariant under every symmetry of the square, so a rotated or reflected initial
condition must give the rotated or reflected flow, the vorticity changing sign under reflections (it is a
pseudoscalar, :mod:`equidyn.symmetry.layout`). The *Kolmogorov* forcing ``f = −γ k (2π/L) cos(k 2π x/L)`` (the
curl of the body force ``(0, −γ sin(k 2π x/L))``) varies along x only, so it breaks the symmetry in the equations
themselves, not in a choice of data: it keeps the half turn about the box centre and breaks the quarter turns and
every mirror (:func:`symmetry_check` measures it element by element).

**Units.** Lengths in units of the domain (``L = domain_extent``, default 2π), times in the time unit ``T`` of the
equations: ``ν`` (diffusivity) in L²/T, ``λ`` (drag, exponax's linear term ``λω``, damping when negative) in 1/T,
``γ`` (injection scale, a body force per unit mass) in L/T², vorticity in 1/T, velocity in L/T.

**Orientation.** exponax's arrays are ``(x₀, x₁)`` = (rows, columns) = equidyn's ``(y, x)``. Its velocity is
``(v_x₀, v_x₁) = (∂₁ψ, −∂₀ψ)`` with ``ψ = Δ⁻¹ω``; read in equidyn's frame that is ``v = (−∂_y ψ, ∂_x ψ)``, whose
curl ``∂_x v_y − ∂_y v_x = Δψ = ω``. So the stored values are the vorticity of equidyn's frame as they are
(:func:`velocity` inverts it; a test checks exponax's convection term against it).

**Grid.** A trajectory is simulated on ``M = refine · grid`` nodes ``x_i = i L/M`` (exponax's grid) and stored on
``grid`` cells: the nodes ``i = refine·j + refine/2``, which are the *cell centres* ``(j + ½) L/grid`` of the stored
grid, equidyn's convention for every store. Two reasons: (1) the simulation resolves scales the stored grid cannot
(the enstrophy beyond ¾ of the dealiasing cut is recorded, :func:`stability_report`); (2) equidyn's D4 turns a
stored grid about its centre ``L/2``, which is then the simulated grid's node ``M/2`` (≡ node 0 on the periodic
grid), a centre of symmetry of the forcing's cosine. Stored at the simulated nodes themselves, the box centre would
lie half a node off every such centre, and the grid, not the physics, would break even the half turn. So the
simulated grid is acted on with :meth:`GridGroup.act_about_node` and the stored one with :meth:`GridGroup.act`;
subsampling commutes with the pair (tested).

**Stability.** exponax's default ``dt = 0.05`` with ``ν = 10⁻³`` goes to NaN within 50 steps at 64² (measured:
CFL 1.6 at the first step). At ``ν = 0.01`` on 64² nodes ``dt = 0.02`` (CFL up to ≈ 0.7) went NaN between t = 50 and 60;
``dt = 0.015`` (CFL ≤ 0.64) and ``dt = 0.01`` (CFL ≤ 0.41) stayed finite for 100 T on 16 trajectories. Every store
is therefore checked, and refused, if a frame is not finite, if the CFL number ``max|v| dt / (L/M)`` of a stored
frame exceeds :data:`CFL_MAX`, or (decaying) if the energy grows between frames; the numbers are kept in the store's
``stability`` attribute (docs/decisions.md, "exponax and jax (issue 24)").

**Precision.** The steppers are built and run inside ``jax.experimental.enable_x64(precision == 64)``: importing
escnn turns jax's global 64-bit flag on (through pymanopt), so relying on the flag would make the data depend on
what the process imported first.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import xarray as xr

from ..measures.equivariance import orbit_equivariance_error
from ..settings import settings_from_dict
from ..store import open_store, store_settings, write_store
from ..symmetry import D4, FieldLayout, GridGroup, group_by_name

log = logging.getLogger(__name__)

FLOWS = ("decaying", "kolmogorov")
SPLITS = ("train", "valid", "test")
#: the one field of a store: the vorticity, a pseudoscalar
LAYOUT = FieldLayout.parse("1 pseudoscalar")
#: the largest CFL number ``max|v| dt / (L/M)`` a stored frame may have: measured finite to 0.64, NaN at ≈ 0.7
CFL_MAX = 0.5
#: a D4 element whose per-element difference stays below this (relative, L1) is "kept" by the flow
KEPT_TOL = 1e-6


@dataclass(frozen=True)
class FlowPhysics:
    """The equations and their discretisation (units in the module docstring)."""

    flow: str = "decaying"
    grid: int = 32  # stored cells per side
    refine: int = 2  # simulated nodes per stored cell and side (even: the stored cells' centres are nodes)
    domain_extent: float = 2 * math.pi  # L
    dt: float = 0.01  # solver step, T
    diffusivity: float = 0.005  # ν, L²/T
    drag: float = 0.0  # λ, 1/T (exponax's linear term λω: negative damps)
    injection_mode: int = 4  # Kolmogorov: forcing wavenumber k, periods per L
    injection_scale: float = 1.0  # Kolmogorov: γ, L/T²
    order: int = 2  # ETDRK order (exponax's default; 1..4)
    precision: int = 64

    def __post_init__(self) -> None:
        if self.flow not in FLOWS:
            raise ValueError(f"flow must be one of {FLOWS}, got {self.flow!r}")
        if self.grid < 4 or self.grid % 2:
            raise ValueError(f"grid must be an even number of at least 4 cells, got {self.grid}")
        if self.refine < 2 or self.refine % 2:
            raise ValueError(
                f"refine must be even and >= 2 (stored cell centres are simulated nodes), got {self.refine}"
            )
        if self.precision not in (32, 64):
            raise ValueError(f"precision must be 32 or 64, got {self.precision}")
        if not 1 <= self.order <= 4:
            raise ValueError(f"order must be 1..4, got {self.order}")
        if self.dt <= 0 or self.diffusivity < 0 or self.domain_extent <= 0:
            raise ValueError("dt and domain_extent must be positive and diffusivity non-negative")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlowPhysics:
        return settings_from_dict(cls, d, "exponax physics")

    @property
    def nodes(self) -> int:
        """Simulated nodes per side, ``M``."""
        return self.refine * self.grid

    @property
    def node_spacing(self) -> float:
        return self.domain_extent / self.nodes

    def stepper(self) -> Any:
        """The exponax stepper (call inside :func:`precision_scope`: its coefficients take the active precision)."""
        import exponax

        common = {"diffusivity": self.diffusivity, "drag": self.drag, "order": self.order}
        args = (2, self.domain_extent, self.nodes, self.dt)
        if self.flow == "decaying":
            return exponax.stepper.NavierStokesVorticity(*args, **common)
        return exponax.stepper.KolmogorovFlowVorticity(
            *args, injection_mode=self.injection_mode, injection_scale=self.injection_scale, **common
        )


@dataclass(frozen=True)
class InitialVorticity:
    """Random initial vorticity: a Gaussian field with energy spectrum ``E(k) ∝ k⁴ exp(−2 (k/k₀)²)`` (peak at
    ``k₀`` periods per L), mean and Nyquist modes zero, scaled to the rms speed ``rms_velocity`` (L/T)."""

    peak_wavenumber: float = 4.0
    rms_velocity: float = 1.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InitialVorticity:
        return settings_from_dict(cls, d, "exponax initial")


@dataclass(frozen=True)
class Sampling:
    """Which trajectories and frames a store keeps. Trajectory ``i``'s initial condition is drawn from
    ``numpy.random.default_rng([seed, i])``, so it does not depend on how many trajectories there are."""

    splits: tuple[tuple[str, int], ...] = (("train", 48), ("valid", 8), ("test", 8))  # whole trajectories
    spinup: float = 5.0  # T, simulated from the initial condition and discarded
    frame_dt: float = 0.25  # T between stored frames
    n_frames: int = 48
    seed: int = 0
    batch_size: int = 16  # trajectories simulated together

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sampling:
        d = dict(d)
        if "splits" in d:
            splits = d["splits"]
            missing = [s for s in SPLITS if int(splits.get(s, 0)) < 1]
            if missing or set(splits) - set(SPLITS):
                raise ValueError(f"exponax splits need a positive count for exactly {SPLITS}, got {splits}")
            d["splits"] = tuple((s, int(splits[s])) for s in SPLITS)
        return settings_from_dict(cls, d, "exponax sampling")

    @property
    def n_trajectories(self) -> int:
        return sum(n for _, n in self.splits)

    def split_sims(self) -> dict[str, list[int]]:
        """Whole trajectories per split, in index order (the initial conditions are independent draws)."""
        out, start = {}, 0
        for name, n in self.splits:
            out[name] = list(range(start, start + n))
            start += n
        return out

    def steps(self, dt: float) -> tuple[int, int]:
        """Solver steps of the spin-up and between frames; both times must be whole multiples of ``dt``."""
        spin, stride = self.spinup / dt, self.frame_dt / dt
        for name, value in (("spinup", spin), ("frame_dt", stride)):
            if abs(value - round(value)) > 1e-9 * max(1.0, value):
                raise ValueError(f"exponax sampling.{name} must be a whole number of solver steps dt = {dt}")
        if round(stride) < 1 or self.n_frames < 2:
            raise ValueError("exponax sampling needs frame_dt >= dt and n_frames >= 2")
        return round(spin), round(stride)


# ------------------------------------------------------------------ fields


def initial_vorticity(physics: FlowPhysics, initial: InitialVorticity, seed: int, index: int) -> np.ndarray:
    """Trajectory ``index``'s initial vorticity on the simulated nodes, ``(1, M, M)`` float64."""
    m = physics.nodes
    rng = np.random.default_rng([seed, index])
    k = np.fft.fftfreq(m, 1.0 / m)
    kk = np.hypot(k[:, None], k[None, :])
    # per mode |ω̂|² = k²|v̂|² and E(k) ∝ k|v̂|² (a ring of modes), so E ∝ k⁴ exp(−2(k/k₀)²) ⇔ |ω̂| ∝ k^{5/2} exp(−(k/k₀)²)
    amplitude = kk**2.5 * np.exp(-((kk / initial.peak_wavenumber) ** 2))
    amplitude[m // 2, :] = 0.0
    amplitude[:, m // 2] = 0.0
    w = np.fft.ifft2(np.fft.fft2(rng.standard_normal((m, m))) * amplitude).real
    speed = np.sqrt(np.mean(np.sum(velocity(w, physics.domain_extent) ** 2, axis=-3)))
    return (w * (initial.rms_velocity / speed))[None]


def velocity(vorticity: np.ndarray, domain_extent: float) -> np.ndarray:
    """The periodic, divergence-free, mean-free velocity ``(…, 2, n, n)`` (components x, y) whose curl is
    ``vorticity`` ``(…, n, n)``: ``v = (−∂_y ψ, ∂_x ψ)`` with ``Δψ = ω`` (spectral)."""
    n = vorticity.shape[-1]
    k = np.fft.fftfreq(n, 1.0 / n) * (2 * np.pi / domain_extent)
    ky, kx = k[:, None], k[None, :]
    k2 = kx**2 + ky**2
    k2[0, 0] = 1.0
    psi = -np.fft.fft2(vorticity) / k2
    vx = np.fft.ifft2(-1j * ky * psi).real
    vy = np.fft.ifft2(1j * kx * psi).real
    return np.stack([vx, vy], axis=-3)


def to_stored_grid(frames: np.ndarray, refine: int) -> np.ndarray:
    """The stored cells' centres among the simulated nodes: every ``refine``-th node from ``refine/2``."""
    h = refine // 2
    return frames[..., h::refine, h::refine]


# ------------------------------------------------------------------ simulation


def precision_scope(precision: int) -> Any:
    """jax's precision for this block, whatever the global flag (see the module docstring, "Precision")."""
    from jax.experimental import enable_x64

    return enable_x64(precision == 64)


@functools.lru_cache(maxsize=16)
def _advance(physics: FlowPhysics, steps: int) -> Any:
    import exponax
    import jax

    return jax.jit(jax.vmap(exponax.RepeatedStepper(physics.stepper(), steps)))


@functools.lru_cache(maxsize=16)
def _rollout(physics: FlowPhysics, stride: int, n_frames: int) -> Any:
    import exponax
    import jax

    stepper = exponax.RepeatedStepper(physics.stepper(), stride)
    return jax.jit(jax.vmap(exponax.rollout(stepper, n_frames - 1, include_init=True)))


def simulate(physics: FlowPhysics, states: np.ndarray, spinup_steps: int, stride: int, n_frames: int) -> np.ndarray:
    """Advance ``states`` ``(B, 1, M, M)`` by ``spinup_steps`` steps, then keep ``n_frames`` frames ``stride``
    steps apart (the first is the spun-up state): ``(B, n_frames, M, M)`` on the simulated nodes, float64."""
    import jax.numpy as jnp

    with precision_scope(physics.precision):
        dtype = jnp.float64 if physics.precision == 64 else jnp.float32
        u = jnp.asarray(states, dtype=dtype)
        if spinup_steps:
            u = _advance(physics, spinup_steps)(u)
        frames = _rollout(physics, stride, n_frames)(u)
        return np.array(frames, dtype=np.float64)[:, :, 0]  # a writable copy (torch reads it in the actions)


# ------------------------------------------------------------------ checks


def stability_report(physics: FlowPhysics, frames: np.ndarray) -> dict[str, float]:
    """The numbers behind the stability check of simulated frames ``(B, T, M, M)`` (see :func:`check_stability`).

    ``max_cfl``: ``max|v| dt / (L/M)``; ``energy_growth``/``enstrophy_growth``: the largest relative increase of a
    trajectory's energy ``½⟨|v|²⟩``/enstrophy ``½⟨ω²⟩`` between consecutive frames (negative: every one decays);
    ``unresolved_fraction``: the largest share of a frame's enstrophy beyond ¾ of the dealiasing cut ``M/3``;
    ``enstrophy_halves``: the record's mean enstrophy in its second half over that in its first (1 if stationary);
    ``frame_change``: the mean relative L2 change between consecutive frames (what persistence would miss).
    """
    finite = bool(np.isfinite(frames).all())
    if not finite:
        return {"finite": False}
    v = velocity(frames, physics.domain_extent)
    speed = np.sqrt(np.sum(v**2, axis=-3))
    energy = 0.5 * np.mean(np.sum(v**2, axis=-3), axis=(-1, -2))  # (B, T)
    enstrophy = 0.5 * np.mean(frames**2, axis=(-1, -2))
    m = physics.nodes
    k = np.abs(np.fft.fftfreq(m, 1.0 / m))
    high = np.maximum(k[:, None], k[None, :]) > 0.75 * m / 3
    power = np.abs(np.fft.fft2(frames)) ** 2
    unresolved = power[..., high].sum(-1) / power.reshape(*power.shape[:2], -1).sum(-1)
    half = frames.shape[1] // 2
    change = np.linalg.norm(np.diff(frames, axis=1), axis=(-1, -2)) / np.linalg.norm(frames[:, :-1], axis=(-1, -2))
    return {
        "finite": True,
        "max_cfl": float(speed.max() * physics.dt / physics.node_spacing),
        "energy_growth": float(np.max(np.diff(energy, axis=1) / energy[:, :-1])),
        "enstrophy_growth": float(np.max(np.diff(enstrophy, axis=1) / enstrophy[:, :-1])),
        "unresolved_fraction": float(unresolved.max()),
        "enstrophy_halves": float(enstrophy[:, half:].mean() / enstrophy[:, :half].mean()),
        "frame_change": float(change.mean()),
        "energy_first_last": [float(energy[:, 0].mean()), float(energy[:, -1].mean())],
        "enstrophy_first_last": [float(enstrophy[:, 0].mean()), float(enstrophy[:, -1].mean())],
    }


class FlowUnstableError(RuntimeError):
    """A simulated trajectory failed the stability check: the settings are not stable, the data not usable."""


def check_stability(physics: FlowPhysics, report: dict[str, Any]) -> None:
    """Refuse frames that are not finite, exceed :data:`CFL_MAX`, or (decaying) gain energy between frames.

    The decaying flow's energy can only fall (``dE/dt = −2νZ`` plus damping); a rise beyond round-off is the
    first sign of the instability that ends in NaN.
    """
    if not report["finite"]:
        raise FlowUnstableError(f"{physics.flow}: non-finite vorticity (dt = {physics.dt} is unstable)")
    if report["max_cfl"] > CFL_MAX:
        raise FlowUnstableError(
            f"{physics.flow}: CFL number {report['max_cfl']:.3f} > {CFL_MAX} (dt = {physics.dt}, "
            f"{physics.nodes}² nodes); lower dt"
        )
    if physics.flow == "decaying" and physics.drag <= 0 and report["energy_growth"] > 1e-9:
        raise FlowUnstableError(f"{physics.flow}: energy grew by {report['energy_growth']:.2e} between frames")


def merge_reports(reports: list[dict[str, Any]], weights: list[int]) -> dict[str, Any]:
    """One report for a store from its batches' reports: worst case of the extremes, weighted means of the rest."""
    w = np.asarray(weights, dtype=float) / sum(weights)
    out: dict[str, Any] = {"finite": all(r["finite"] for r in reports)}
    for key in ("max_cfl", "energy_growth", "enstrophy_growth", "unresolved_fraction"):
        out[key] = max(r[key] for r in reports)
    for key in ("enstrophy_halves", "frame_change"):
        out[key] = float(sum(wi * r[key] for wi, r in zip(w, reports, strict=True)))
    for key in ("energy_first_last", "enstrophy_first_last"):
        out[key] = [float(sum(wi * r[key][j] for wi, r in zip(w, reports, strict=True))) for j in (0, 1)]
    return out


# ------------------------------------------------------------------ the store


def generate(
    physics: FlowPhysics, initial: InitialVorticity, sampling: Sampling, out: str | os.PathLike
) -> dict[str, Any]:
    """Simulate every trajectory, check it, and write the store ``out``; returns the stability report.

    Store: ``vorticity`` ``(sim, time, y, x)`` float32 at the stored cells' centres; ``split`` per sim; attributes
    ``split_sims`` (whole trajectories per split, the held-out protocol), ``norm_scale`` (rms vorticity over the
    training trajectories: one scalar, so normalising keeps every symmetry, the sign flips included), ``layout``
    and ``stability``.
    """
    spin, stride = sampling.steps(physics.dt)
    n = sampling.n_trajectories
    stored, reports, weights = [], [], []
    t0 = time.perf_counter()
    for start in range(0, n, sampling.batch_size):
        index = range(start, min(n, start + sampling.batch_size))
        states = np.stack([initial_vorticity(physics, initial, sampling.seed, i) for i in index])
        frames = simulate(physics, states, spin, stride, sampling.n_frames)
        report = stability_report(physics, frames)
        check_stability(physics, report)
        reports.append(report)
        weights.append(len(index))
        stored.append(to_stored_grid(frames, physics.refine).astype(np.float32))
        log.info("%s: trajectories %d-%d of %d simulated (%.1f s)", physics.flow, index[0], index[-1], n,
                 time.perf_counter() - t0)  # fmt: skip
    vorticity = np.concatenate(stored)
    report = merge_reports(reports, weights)
    split_sims = sampling.split_sims()
    split_of = np.empty(n, dtype=object)
    for name, sims in split_sims.items():
        split_of[sims] = name
    h = physics.domain_extent / physics.grid
    centres = (np.arange(physics.grid) + 0.5) * h
    times = sampling.spinup + sampling.frame_dt * np.arange(sampling.n_frames)
    ds = xr.Dataset(
        {"vorticity": (("sim", "time", "y", "x"), vorticity)},
        coords={
            "sim": np.arange(n),
            "split": ("sim", split_of.astype(str)),
            # (no "since" in the units: xarray would decode them as a calendar)
            "time": ("time", times, {"units": "T (time unit of the equations)", "origin": "the initial condition"}),
            "y": ("y", centres, {"units": "L (domain units)"}),
            "x": ("x", centres, {"units": "L (domain units)"}),
        },
    )
    ds.vorticity.attrs.update(units="1/T", location="cell centres", field_kind="pseudoscalar (∂x v − ∂y u)")
    ds.attrs = {
        "flow": physics.flow,
        "protocol": "heldout",
        "layout": str(LAYOUT),
        "split_sims": json.dumps(split_sims),
        "norm_scale": float(np.sqrt(np.mean(vorticity[split_sims["train"]].astype(np.float64) ** 2))),
        "stability": json.dumps(report),
    }
    settings = {
        "kind": "exponax-flow",
        "physics": asdict(physics),
        "initial": asdict(initial),
        "sampling": {**asdict(sampling), "splits": dict(sampling.splits)},
    }
    write_store(ds, out, settings)
    log.info("%s: %d trajectories × %d frames in %.1f s; stability %s", physics.flow, n, sampling.n_frames,
             time.perf_counter() - t0, report)  # fmt: skip
    return report


def settings_of(section: dict[str, Any]) -> tuple[FlowPhysics, InitialVorticity, Sampling]:
    """The three settings of one flow from its config section ``{physics, initial, sampling}``."""
    return (
        FlowPhysics.from_dict(section.get("physics", {})),
        InitialVorticity.from_dict(section.get("initial", {})),
        Sampling.from_dict(section.get("sampling", {})),
    )


def store_frames(ds: xr.Dataset) -> np.ndarray:
    """A store's frames as ``(sim, time, 1, y, x)``: the channel axis the training tasks expect (layout
    :data:`LAYOUT`)."""
    return ds.vorticity.values[:, :, None]


# ------------------------------------------------------------------ symmetry checked


def simulated_orbit(
    physics: FlowPhysics, states: np.ndarray, group: GridGroup, stride: int, n_frames: int
) -> np.ndarray:
    """Simulate every element's image of each start state and undo the element on the stored grid.

    ``states`` ``(B, 1, M, M)`` on the simulated nodes. Member ``g`` of start state ``b`` is
    ``g⁻¹ · S(g · u_b)``: ``g`` acts about the simulated grid's node 0 (≡ the box centre), the simulation ``S``
    keeps ``n_frames`` frames after the start, and ``g⁻¹`` acts on the stored grid about its centre. Returns
    ``(B, |G|, n_frames, 1, grid, grid)``; for a flow whose equations keep ``g`` member ``g`` equals member 0 to
    solver precision.
    """
    members = [group.act_numpy(g, states, LAYOUT, about="node") for g in group.elements]
    acted = np.stack(members, axis=1).reshape(-1, *states.shape[1:])  # (B·|G|, 1, M, M), b-major
    frames = simulate(physics, acted, 0, stride, n_frames + 1)[:, 1:]  # drop the start: equal by construction
    stored = to_stored_grid(frames, physics.refine)
    n = stored.shape[-1]
    stored = stored.reshape(len(states), group.order, n_frames, 1, n, n)
    out = np.empty_like(stored)
    for g in group.elements:  # the frames of every start state as one batch of single-channel fields
        undo = group.act_numpy(group.inverse(g), stored[:, g].reshape(-1, 1, n, n), LAYOUT)
        out[:, g] = undo.reshape(out[:, g].shape)
    return out


def symmetry_check(
    physics: FlowPhysics,
    initial: InitialVorticity,
    sampling: Sampling,
    *,
    trajectories: list[int] | None = None,
    n_frames: int | None = None,
    group: str = "D4",
) -> dict[str, Any]:
    """Simulate-then-act against act-then-simulate for every element, from the spun-up states of ``trajectories``
    (default: the first test trajectory), over ``n_frames`` stored frames (default: a store's record).

    Returns ``data_ee``: the data EE of the orbit in the levels' definition
    (:func:`equidyn.measures.equivariance.orbit_equivariance_error`: the mean absolute difference between the
    trajectory and each element's undone image, averaged over the non-identity elements), for C4 (the level
    study's group) and D4, absolute (1/T) and relative to ``mean |ω|``; and ``by_element``: per element its
    relative L1 difference, its largest absolute difference relative to ``max |ω|``, the relative L1 difference of
    the first frame alone (one frame interval after the start), and ``kept`` (relative L1 below :data:`KEPT_TOL`).
    """
    spin, stride = sampling.steps(physics.dt)
    n_frames = n_frames or sampling.n_frames
    trajectories = trajectories if trajectories is not None else [sampling.split_sims()["test"][0]]
    g = group_by_name(group)
    starts = np.stack([initial_vorticity(physics, initial, sampling.seed, i) for i in trajectories])
    if spin:
        starts = simulate(physics, starts, spin, stride, 1)[:, :1]  # (B, 1, M, M): the spun-up states
    t0 = time.perf_counter()
    orbit = simulated_orbit(physics, starts, g, stride, n_frames)
    seconds = time.perf_counter() - t0
    reference = orbit[:, 0]
    scale_mean, scale_max = float(np.mean(np.abs(reference))), float(np.max(np.abs(reference)))
    by_element = {}
    names = D4.ELEMENT_NAMES if g.name == "D4" else tuple(f"rot{90 * k}" for k in range(g.order))
    for e in g.elements:
        diff = np.abs(orbit[:, e] - reference)
        rel = float(diff.mean() / scale_mean)
        by_element[names[e]] = {
            "element": e,
            "rel_l1": rel,
            "rel_max": float(diff.max() / scale_max),
            "rel_l1_first_frame": float(diff[:, :1].mean() / np.mean(np.abs(reference[:, :1]))),
            "kept": rel < KEPT_TOL,
        }
    c4 = orbit_equivariance_error(orbit[:, :4])
    full = orbit_equivariance_error(orbit)
    c4_first, full_first = orbit_equivariance_error(orbit[:, :4, :1]), orbit_equivariance_error(orbit[:, :, :1])
    return {
        "flow": physics.flow,
        "group": g.name,
        "trajectories": list(trajectories),
        "n_frames": n_frames,
        "frame_dt": sampling.frame_dt,
        "precision": physics.precision,
        "mean_abs_vorticity": scale_mean,
        "data_ee_c4": c4["ee"],
        "data_ee_c4_rel": c4["ee_rel"],
        "data_ee_d4": full["ee"],
        "data_ee_d4_rel": full["ee_rel"],
        # after one frame interval: how far the symmetry is broken over the step a one-step model predicts
        "data_ee_c4_rel_first_frame": c4_first["ee_rel"],
        "data_ee_d4_rel_first_frame": full_first["ee_rel"],
        "kept": [name for name, row in by_element.items() if row["kept"]],
        "broken": [name for name, row in by_element.items() if not row["kept"]],
        "by_element": by_element,
        "seconds": seconds,
    }


def store_symmetry_check(store: str | os.PathLike, trajectories: list[int] | None = None) -> dict[str, Any]:
    """:func:`symmetry_check` with a store's own settings, tagged with the store's checksum."""
    ds = open_store(store)
    settings = store_settings(ds)
    physics, initial, sampling = settings_of(settings)
    record = symmetry_check(physics, initial, sampling, trajectories=trajectories)
    record["data_sha"] = ds.attrs["content_sha256"]
    return record


__all__ = [
    "CFL_MAX",
    "FLOWS",
    "KEPT_TOL",
    "LAYOUT",
    "FlowPhysics",
    "FlowUnstableError",
    "InitialVorticity",
    "Sampling",
    "check_stability",
    "generate",
    "initial_vorticity",
    "settings_of",
    "simulate",
    "simulated_orbit",
    "stability_report",
    "store_frames",
    "store_symmetry_check",
    "symmetry_check",
    "to_stored_grid",
    "velocity",
]
