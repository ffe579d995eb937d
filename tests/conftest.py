"""Shared fixtures: tiny synthetic data made by the tests themselves (no network, no PhiFlow unless needed)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

# Before torch's first MKL call: the simulators need MKL's CPU-independent path (src/equidyn/data/portable_numerics.py)
# and refuse to run if an earlier test's MKL call fixed another one in this process.
os.environ["MKL_CBWR"] = "COMPATIBLE"
import torch

warnings.filterwarnings("ignore", message=".*py3nj.*")
# One thread for every test: the problems are tiny, and threads only contend with each other on the 2-core CI.
torch.set_num_threads(1)
os.environ.setdefault("EQUIDYN_GIT_REV", "test")

# pyproject's `timeout = 900` guards the fast tests against a hang. The slow and paper-check tests run whole
# workflows whose wall time is a benchmark, not a bound (issue 12: a demo of 15+ minutes on a slow or shared
# machine is correct, not a failure), so they get only a hung-job guard far above any slow machine.
HUNG_JOB_TIMEOUT_S = int(os.environ.get("EQUIDYN_HUNG_TIMEOUT_S", 4 * 3600))
WORKFLOW_MARKERS = ("slow", "paper_check")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(m) for m in WORKFLOW_MARKERS) and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(HUNG_JOB_TIMEOUT_S))


@pytest.fixture
def python_killed_after_epoch(tmp_path_factory: pytest.TempPathFactory):
    """A ``python`` on whose training jobs ``$EQUIDYN_KILL_AFTER_EPOCH=N`` acts: SIGKILL after epoch N's state is
    saved (tests/kill_hook.py). Its directory can go first on ``PATH``, for Snakemake's jobs and the job server."""
    from kill_hook import write_python

    return write_python(tmp_path_factory.mktemp("killhook"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def smooth():
    """``smooth(rng, shape)``: a smooth random field, for tests that need plume-like data."""
    return smooth_field


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A smooth random field (low Fourier modes), so models see something plume-like rather than white noise."""
    noise = rng.standard_normal(shape)
    axes = tuple(range(-2, 0))
    spec = np.fft.fftn(noise, axes=axes)
    ky = np.fft.fftfreq(shape[-2])[:, None]
    kx = np.fft.fftfreq(shape[-1])[None, :]
    spec *= np.exp(-((kx**2 + ky**2) / 0.02))
    return np.real(np.fft.ifftn(spec, axes=axes)).astype(np.float32)


@pytest.fixture
def escnn_c4_net():
    """``escnn_c4_net(regular_fields, activation)``: a tiny C4-steerable net, vector in and out, on raw tensors.

    escnn's own frame is used as is (no conversion): the measures' tests need an escnn model whose cached filters
    and shared bases behave as in the real models, not the physical action. Float32 on purpose: escnn shares its
    basis-expansion modules between convolutions with the same representations, so ``.double()`` here would turn
    every other escnn model in the process to float64.
    """
    return tiny_escnn_c4_net


def tiny_escnn_c4_net(regular_fields: int, activation: str) -> torch.nn.Module:
    from escnn import gspaces
    from escnn import nn as enn

    gs = gspaces.rot2dOnR2(4)
    t_in = enn.FieldType(gs, [gs.irrep(1)])
    t_hid = enn.FieldType(gs, regular_fields * [gs.regular_repr])
    nonlinearity = {"elu": enn.ELU, "relu": enn.ReLU}[activation](t_hid)
    core = enn.SequentialModule(
        enn.R2Conv(t_in, t_hid, 3, padding=1), nonlinearity, enn.R2Conv(t_hid, t_in, 3, padding=1)
    )

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.core = core

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.core(enn.GeometricTensor(x, t_in)).tensor

    return Wrapped()
