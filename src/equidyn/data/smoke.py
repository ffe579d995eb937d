"""PhiFlow 2-D buoyant smoke plumes, simulated in batches and stored at cell centres.

Physics (W22, [W22]): a closed box of ``grid × grid`` cells with ``dx = 1``; smoke is a centred grid with
BOUNDARY extrapolation, velocity a staggered grid with ZERO extrapolation. Each step: MacCormack advection of the
smoke (``smoke_dt``) plus the inflow (a disc added every step); semi-Lagrangian self-advection of the velocity
(``velocity_dt``) plus the buoyancy ``smoke × force`` resampled onto the faces; a pressure projection.

Why batched: PhiFlow on a CPU costs ~0.35 s per 64×64 step whatever the batch size up to dozens of plumes
(docs/benchmarks.md), so all plumes of a dataset advance together along a ``sim`` batch dimension.

Why cell centres: the published data cropped padded staggered faces, which alone made physically rotated plumes
differ by 6–13 %. Centred velocities of a rotated set-up equal the rotated centred velocities to solver tolerance
(tests/test_smoke.py asserts it), so the symmetry of the data is what the experiment says it is.

Frames are returned in equidyn's layout: ``(sim, time, component, y, x)`` with components (x, y), rows = y upward.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..settings import settings_from_dict
from .portable_numerics import pin_mkl_branch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlumePhysics:
    """Numerical settings shared by every plume of a dataset (units: cells and steps; dx = 1)."""

    grid: int = 64
    inflow_radius: float = 5.0
    smoke_dt: float = 1.0
    velocity_dt: float = 1.0
    n_steps: int = 61
    keep_from: int = 10
    keep_to: int | None = None  # exclusive; None keeps through the last step
    batch_size: int = 50
    solver_rel_tol: float = 1e-7
    solver_abs_tol: float = 1e-9
    precision: int = 64

    def __post_init__(self) -> None:
        if self.grid < 8:
            raise ValueError(f"grid must be at least 8 cells, got {self.grid}")
        if not 0 <= self.keep_from < (self.keep_to or self.n_steps) <= self.n_steps:
            raise ValueError(
                f"need 0 <= keep_from < keep_to <= n_steps, got {self.keep_from}, {self.keep_to}, {self.n_steps}"
            )
        if self.precision not in (32, 64):
            raise ValueError(f"precision must be 32 or 64, got {self.precision}")

    @property
    def kept_steps(self) -> range:
        return range(self.keep_from, self.keep_to or self.n_steps)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlumePhysics:
        return settings_from_dict(cls, d, "smoke physics")


@dataclass(frozen=True)
class PlumeSetup:
    """Inflow centres ``(n, 2)`` and buoyancy force vectors ``(n, 2)``, both in (x, y) order."""

    centers: np.ndarray
    forces: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.centers)


def simulate(setup: PlumeSetup, physics: PlumePhysics) -> np.ndarray:
    """Run all plumes of ``setup``; return kept frames ``(sim, time, 2, y, x)`` as float32 velocities at centres."""
    pin_mkl_branch()  # the same bits on every x86 CPU (portable_numerics.py)
    out = []
    for start in range(0, len(setup), physics.batch_size):
        stop = min(start + physics.batch_size, len(setup))
        t0 = time.perf_counter()
        out.append(_simulate_batch(setup.centers[start:stop], setup.forces[start:stop], physics))
        log.info("simulated plumes %d-%d of %d in %.1f s", start, stop - 1, len(setup), time.perf_counter() - t0)
    return np.concatenate(out, axis=0)


def _simulate_batch(centers: np.ndarray, forces: np.ndarray, physics: PlumePhysics) -> np.ndarray:
    import torch
    from phi import math as phimath
    from phi.torch import flow as pf

    n = physics.grid
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with phimath.precision(physics.precision):
        sim = pf.batch(sim=len(centers))
        vec = pf.channel(vector="x,y")
        bounds = pf.Box(x=n, y=n)
        center = pf.tensor(np.asarray(centers, dtype=np.float64), sim, vec)
        force = pf.tensor(np.asarray(forces, dtype=np.float64), sim, vec)
        inflow = pf.CenteredGrid(
            pf.Sphere(center=center, radius=physics.inflow_radius),
            pf.extrapolation.BOUNDARY,
            x=n,
            y=n,
            bounds=bounds,
        )
        smoke = pf.CenteredGrid(0, pf.extrapolation.BOUNDARY, x=n, y=n, bounds=bounds)
        velocity = pf.StaggeredGrid(0, pf.extrapolation.ZERO, x=n, y=n, bounds=bounds)
        # rank_deficiency=0: with phiml's default null-space handling for the closed box (pressure defined up to a
        # constant), CG on some plumes "diverges" (its residual grows 1e5× over the start) at the first step.
        # The divergence of a closed-box face field sums to zero, so plain CG converges. No warm start either:
        # a tiny warm-start residual trips the same divergence test.
        solve = pf.Solve("CG", physics.solver_rel_tol, physics.solver_abs_tol, max_iterations=10_000, rank_deficiency=0)
        frames = []
        kept = set(physics.kept_steps)
        for step in range(physics.n_steps):
            smoke = pf.advect.mac_cormack(smoke, velocity, dt=physics.smoke_dt) + inflow
            buoyancy = pf.resample(smoke * force, to=velocity)
            velocity = pf.advect.semi_lagrangian(velocity, velocity, dt=physics.velocity_dt) + buoyancy
            velocity, _ = pf.fluid.make_incompressible(velocity, (), solve)
            if step in kept:
                frames.append(velocity.at_centers().values.numpy("sim,vector,y,x"))
    return np.stack(frames, axis=1).astype(np.float32)
