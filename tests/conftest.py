"""Shared fixtures: tiny synthetic data made by the tests themselves (no network, no PhiFlow unless needed)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

warnings.filterwarnings("ignore", message=".*py3nj.*")
torch.set_num_threads(1)
os.environ.setdefault("EQUIDYN_GIT_REV", "test")


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
