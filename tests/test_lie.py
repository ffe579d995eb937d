"""Lie derivative: known answers for exactly equivariant, anisotropic and position-dependent operators.

The fields are sums of Gaussian bumps, so every operator below (Fourier Gaussian blur, pointwise matrices, masks,
Fourier upsampling) has a closed-form Lie derivative. For ``F(v) = M·(G_Σ * v)`` and ``R_t = exp(tJ)``:

    g_t⁻¹ F(g_t v) = R_tᵀ M R_t · (G_{R_tᵀ Σ R_t} * v)
    ⇒ L F(v) = [M, J] (G_Σ * v) + M · d/dt (G_{Σ(t)} * v),   Σ̇ = ΣJ − JΣ,

and for a bump ``exp(−½ dᵀS⁻¹d)`` the blur is ``sqrt(det S / det C) exp(−½ dᵀC⁻¹d)`` with ``C = Σ + S``, whose
t-derivative is that times ``−½ tr(C⁻¹Ċ) + ½ dᵀC⁻¹ĊC⁻¹d``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from equidyn.measures.lie import generator_action, lie_derivative, rotation_generators
from equidyn.symmetry import C4, FieldLayout

DT = torch.float64
VEC = FieldLayout.parse("vector")


def coords(grid: tuple[int, ...]) -> np.ndarray:
    """Centred index coordinates, shape (*grid, ndim), components in physical (x, y[, z]) order."""
    nd = len(grid)
    mesh = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in grid], indexing="ij")
    return np.stack([mesh[nd - 1 - k] for k in range(nd)], -1)


def quad(d: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.einsum("...i,ij,...j->...", d, a, d)


def random_bumps(nd: int, stds: tuple[float, float], shift: float, seed: int = 0):
    """One anisotropic, rotated, off-centre Gaussian bump per vector component."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(nd):
        q, _ = np.linalg.qr(rng.normal(size=(nd, nd)))
        out.append((rng.uniform(-shift, shift, nd), q @ np.diag(rng.uniform(*stds, nd) ** 2) @ q.T))
    return out


def sample(bumps, grid) -> torch.Tensor:
    p = coords(grid)
    return torch.tensor(np.stack([np.exp(-0.5 * quad(p - mu, np.linalg.inv(s))) for mu, s in bumps])[None], dtype=DT)


def fft_blur(x: torch.Tensor, sigmas: tuple[float, ...]) -> torch.Tensor:
    """Gaussian blur with std ``sigmas[k]`` along physical axis k, exact in Fourier space (periodic)."""
    nd = len(sigmas)
    spec = torch.fft.fftn(x, dim=tuple(range(-nd, 0)))
    for k, s in enumerate(sigmas):
        ax = x.dim() - 1 - k
        w = 2 * math.pi * torch.fft.fftfreq(x.shape[ax], dtype=x.dtype)
        shape = [1] * x.dim()
        shape[ax] = -1
        spec = spec * torch.exp(-0.5 * s**2 * w**2).view(shape)
    return torch.fft.ifftn(spec, dim=tuple(range(-nd, 0))).real


def fourier_upsample(x: torch.Tensor, nd: int, factor: int) -> torch.Tensor:
    """Trigonometric interpolation onto a grid ``factor`` times finer with the same physical centre."""
    spec = torch.fft.fftn(x, dim=tuple(range(-nd, 0)))
    for k in range(nd):
        ax = x.dim() - 1 - k
        n = x.shape[ax]
        freq = torch.fft.fftfreq(n, dtype=DT) * n
        pos = (torch.arange(factor * n, dtype=DT) - (factor * n - 1) / 2) / factor + (n - 1) / 2
        basis = torch.exp(2j * math.pi * pos[:, None] * freq[None, :] / n) / n
        spec = torch.movedim(torch.tensordot(spec, basis.to(spec.dtype), dims=([ax], [1])), -1, ax)
    return spec.real


def blur_operator(sigmas, m, up: int = 1):
    mt = torch.as_tensor(np.asarray(m, dtype=float), dtype=DT)
    nd = len(sigmas)

    def f(v: torch.Tensor) -> torch.Tensor:
        b = fft_blur(v, sigmas).unflatten(1, (-1, nd))
        out = torch.einsum("ij,bnj...->bni...", mt, b).flatten(1, 2)
        return fourier_upsample(out, nd, up) if up > 1 else out

    return f


def analytic_lie(points: np.ndarray, bumps, sigmas, m, jmat: np.ndarray) -> np.ndarray:
    """Closed-form L F for ``F(v) = M (G_Σ * v)`` (module docstring), evaluated at ``points`` (input units)."""
    sig = np.diag(np.square(sigmas))
    m = np.asarray(m, dtype=float)
    dsig = sig @ jmat - jmat @ sig
    blur, dblur = [], []
    for mu, s in bumps:
        c = sig + s
        ci = np.linalg.inv(c)
        d = points - mu
        f = math.sqrt(np.linalg.det(s) / np.linalg.det(c)) * np.exp(-0.5 * quad(d, ci))
        blur.append(f)
        dblur.append(f * (-0.5 * np.trace(ci @ dsig) + 0.5 * quad(d, ci @ dsig @ ci)))
    return np.einsum("ij,j...->i...", m @ jmat - jmat @ m, np.stack(blur)) + np.einsum(
        "ij,j...->i...", m, np.stack(dblur)
    )


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# ---------------------------------------------------------------- generators and the infinitesimal action


def test_generators_match_the_spine_and_orientation():
    jz = rotation_generators(2)["z"].numpy()
    assert np.allclose(scipy.linalg.expm(math.pi / 2 * jz), C4().matrix(1), atol=1e-12)
    gens = {a: j.numpy() for a, j in rotation_generators(3).items()}
    e = np.eye(3)
    for axis, (src, dst) in {"z": (0, 1), "x": (1, 2), "y": (2, 0)}.items():
        j = gens[axis]
        assert np.allclose(j, -j.T)
        assert np.allclose(scipy.linalg.expm(math.pi / 2 * j) @ e[src], e[dst], atol=1e-12)


@pytest.mark.parametrize("nd", [2, 3])
def test_generator_action_is_the_derivative_of_the_physical_rotation(nd):
    # (g_t·v)(p) = R_t v(R_tᵀ p) evaluated analytically at t = ±ε; A v must be its t-derivative.
    grid = (40,) * nd if nd == 2 else (28,) * nd
    bumps = random_bumps(nd, (3.5, 4.5), 2.0, seed=1)
    p = coords(grid)
    layout = FieldLayout.parse("1 scalar + 1 vector")
    x = torch.cat([sample(bumps[:1], grid), sample(bumps, grid)], dim=1)
    for jt in rotation_generators(nd).values():
        jmat = jt.numpy()

        def rotated(t, jmat=jmat):
            r = scipy.linalg.expm(t * jmat)
            q = p @ r  # rows are R_tᵀ p
            comps = np.stack([np.exp(-0.5 * quad(q - mu, np.linalg.inv(s))) for mu, s in bumps])
            scalar = np.exp(-0.5 * quad(q - bumps[0][0], np.linalg.inv(bumps[0][1])))
            return np.concatenate([scalar[None], np.einsum("ij,j...->i...", r, comps)])

        eps = 1e-4
        expected = (rotated(eps) - rotated(-eps)) / (2 * eps)
        got = generator_action(x, layout, jt, order=4)[0].numpy()
        assert rel_err(got, expected) < 2e-3


# ---------------------------------------------------------------- known answers


@pytest.mark.parametrize(
    ("nd", "grid", "stds", "shift", "sigmas", "m"),
    [
        (2, 64, (5.0, 6.0), 3.0, (2.0, 2.0), [[1.0, -0.4], [0.4, 1.0]]),  # a I + b J commutes with SO(2)
        (3, 56, (4.0, 5.5), 2.0, (1.5, 1.5, 1.5), np.eye(3)),
    ],
)
def test_isotropic_blur_is_equivariant(nd, grid, stds, shift, sigmas, m):
    bumps = random_bumps(nd, stds, shift)
    out = lie_derivative(blur_operator(sigmas, m), sample(bumps, (grid,) * nd), VEC, VEC, nd)
    assert out["lie_derivative"] <= 1e-3
    assert max(out["per_generator"].values()) <= 1e-3
    assert len(out["per_generator"]) == (1 if nd == 2 else 3)


@pytest.mark.parametrize(
    ("nd", "grid", "stds", "shift", "sigmas", "m"),
    [
        (2, 64, (5.0, 6.0), 3.0, (1.5, 3.0), [[1.0, 0.3], [-0.2, 0.7]]),
        (3, 56, (4.0, 5.5), 2.0, (1.0, 1.5, 2.5), [[1.0, 0.3, 0.0], [-0.2, 0.7, 0.1], [0.0, 0.2, 1.2]]),
    ],
)
def test_anisotropic_operator_matches_closed_form(nd, grid, stds, shift, sigmas, m):
    bumps = random_bumps(nd, stds, shift)
    x = sample(bumps, (grid,) * nd)
    f = blur_operator(sigmas, m)
    out = lie_derivative(f, x, VEC, VEC, nd, return_fields=True)
    norm_f = float(f(x).norm())
    expected_headline = []
    for axis, jt in rotation_generators(nd).items():
        exact = analytic_lie(coords((grid,) * nd), bumps, sigmas, m, jt.numpy())
        assert rel_err(out["fields"][axis][0].numpy(), exact) < 0.02, axis
        expected = np.linalg.norm(exact) / norm_f
        assert out["per_generator"][axis] == pytest.approx(expected, rel=0.02)
        expected_headline.append(expected)
    assert out["lie_derivative"] == pytest.approx(np.mean(expected_headline), rel=0.02)
    assert out["lie_derivative"] > 0.1  # a real signal, not a vanishing one


def test_position_dependent_operator_pins_the_grid_centre():
    # F(s, v) = m(p)·(s, v) with an off-centre mask: L F = ((J p)·∇m)·(s, v), which depends on where p = 0 is.
    grid = (48, 48)
    bumps = random_bumps(2, (5.0, 6.0), 2.0, seed=3)
    layout = FieldLayout.parse("1 scalar + 1 vector")
    x = torch.cat([sample(bumps[:1], grid), sample(bumps, grid)], dim=1)
    p = coords(grid)
    c, w = np.array([4.0, -3.0]), 9.0
    mask = np.exp(-0.5 * np.sum((p - c) ** 2, -1) / w**2)
    jp = p @ rotation_generators(2)["z"].numpy().T
    dmask = np.sum(jp * (-(p - c) / w**2), -1) * mask
    mt = torch.tensor(mask, dtype=DT)
    expected = dmask * x[0].numpy()
    for order, tol in ((2, 0.03), (4, 0.005)):  # a centre off by half a pixel gives 0.22
        out = lie_derivative(lambda v: v * mt, x, layout, layout, 2, order=order, return_fields=True)
        assert rel_err(out["fields"]["z"][0].numpy(), expected) < tol
    # the 2-D default is order 4: the same field as order=4, below order 2's floor
    default = lie_derivative(lambda v: v * mt, x, layout, layout, 2, return_fields=True)
    assert default["order"] == 4 and rel_err(default["fields"]["z"][0].numpy(), expected) < 0.005


@pytest.mark.parametrize(("order", "tol_iso"), [(2, 1e-2), (4, 1e-3)])
def test_input_and_output_on_different_grids(order, tol_iso):
    # 48² → 96², blur then trigonometric upsampling about the shared centre. The output's Lie derivative is
    # the input-grid closed form evaluated at the fine points divided by the factor (centred index units).
    coarse, up = 48, 2
    bumps = random_bumps(2, (4.0, 5.0), 2.0, seed=4)
    x = sample(bumps, (coarse, coarse))
    iso = lie_derivative(blur_operator((1.5, 1.5), np.eye(2), up), x, VEC, VEC, 2, order=order)
    assert iso["lie_derivative"] <= tol_iso
    sigmas, m = (1.0, 2.0), [[1.0, 0.3], [-0.2, 0.7]]
    out = lie_derivative(blur_operator(sigmas, m, up), x, VEC, VEC, 2, order=order, return_fields=True)
    exact = analytic_lie(coords((coarse * up,) * 2) / up, bumps, sigmas, m, rotation_generators(2)["z"].numpy())
    assert rel_err(out["fields"]["z"][0].numpy(), exact) < 0.02


def test_isotropic_upsampler_3d_fourth_order():
    bumps = random_bumps(3, (3.0, 3.5), 2.0, seed=5)
    out = lie_derivative(blur_operator((1.0,) * 3, np.eye(3), 2), sample(bumps, (32,) * 3), VEC, VEC, 3, order=4)
    assert out["lie_derivative"] <= 2e-3


# ---------------------------------------------------------------- real models and AD paths


def _escnn_c4_model() -> torch.nn.Module:
    from escnn import gspaces
    from escnn import nn as enn

    from equidyn.symmetry.escnn_frame import escnn_field_type, from_escnn, to_escnn

    gs = gspaces.rot2dOnR2(4)
    t_in = escnn_field_type(gs, VEC)
    t_hid = escnn_field_type(gs, FieldLayout.parse("2 regular"))
    core = enn.SequentialModule(
        enn.R2Conv(t_in, t_hid, 3, padding=1),
        enn.InnerBatchNorm(t_hid),
        enn.ReLU(t_hid),
        enn.R2Conv(t_hid, t_in, 3, padding=1),
    )

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.core = core

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return from_escnn(self.core(enn.GeometricTensor(to_escnn(x, VEC), t_in)).tensor, VEC)

    return Wrapped()


def test_escnn_model_forward_and_reverse_paths_agree_and_modes_are_kept():
    # float32 on purpose: escnn shares its basis-expansion modules between convolutions with the same
    # representations, so .double() on one model would change every other escnn model in the process.
    torch.manual_seed(0)
    model = _escnn_c4_model()
    model.train()
    model(torch.randn(8, 2, 12, 12))  # give BatchNorm running statistics
    model.eval()  # escnn caches its filters here
    x = sample(random_bumps(2, (2.0, 3.0), 2.0), (16, 16)).float() + 0.1 * torch.randn(1, 2, 16, 16)
    x = torch.cat([x, x.flip(-1)])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fwd = lie_derivative(model, x, VEC, VEC, 2, method="jvp")
    rev = lie_derivative(model, x, VEC, VEC, 2, method="vjp")
    assert fwd["method"] == "jvp" and rev["method"] == "vjp"
    assert np.allclose(fwd["per_sample"], rev["per_sample"], rtol=1e-5)
    assert fwd["lie_derivative"] > 1e-3  # built for C4 only: not SO(2)-equivariant
    # eval-mode BatchNorm: a sample's value does not depend on its batch mates
    alone = lie_derivative(model, x[:1], VEC, VEC, 2)
    assert alone["per_sample"][0] == pytest.approx(fwd["per_sample"][0], rel=1e-5)
    assert not model.training and not any(m.training for m in model.modules())
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_grid_sample_falls_back_to_double_vjp():
    # forward-mode AD has no formula for grid_sample in torch 2.13; "auto" must still give the exact derivative
    theta = torch.tensor([[[0.9, 0.1, 0.05], [-0.1, 1.1, 0.0]]], dtype=DT)

    def warp(v: torch.Tensor) -> torch.Tensor:
        grid = torch.nn.functional.affine_grid(theta.expand(v.shape[0], 2, 3), list(v.shape), align_corners=False)
        return torch.nn.functional.grid_sample(v, grid, align_corners=False)

    x = sample(random_bumps(2, (3.0, 4.0), 2.0), (24, 24))
    auto = lie_derivative(warp, x, VEC, VEC, 2)
    rev = lie_derivative(warp, x, VEC, VEC, 2, method="vjp")
    assert auto["method"] == "vjp"
    assert auto["per_sample"] == rev["per_sample"]
    assert auto["lie_derivative"] > 1e-2


# ---------------------------------------------------------------- bad input


def test_layouts_without_a_generator_are_rejected():
    x = torch.randn(1, 4, 8, 8, dtype=DT)
    with pytest.raises(ValueError, match="regular"):
        lie_derivative(lambda v: v, x, FieldLayout.parse("regular"), FieldLayout.parse("regular"), 2)
    with pytest.raises(ValueError, match="channels"):
        lie_derivative(lambda v: v, x, VEC, VEC, 2)
    with pytest.raises(ValueError, match="ndim"):
        lie_derivative(lambda v: v, x, VEC, VEC, 4)


def test_zero_output_is_a_clear_error():
    x = torch.randn(2, 2, 8, 8, dtype=DT)
    with pytest.raises(ValueError, match=r"samples \[1\]"):
        lie_derivative(lambda v: v * torch.tensor([1.0, 0.0], dtype=DT).view(2, 1, 1, 1), x, VEC, VEC, 2)


def test_batching_the_samples_changes_memory_not_values():
    """``batch_size`` (the paper's 3-D measures need 1) gives the per-sample values of one pass over all samples."""
    torch.manual_seed(0)
    f = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 2, 3, padding=1)).double()
    x = torch.randn(5, 2, 12, 12, dtype=DT)
    whole = lie_derivative(f, x, VEC, VEC, 2, return_fields=True)
    parts = lie_derivative(f, x, VEC, VEC, 2, return_fields=True, batch_size=2)
    assert parts["per_sample"] == pytest.approx(whole["per_sample"], rel=1e-12)
    assert parts["n_samples"] == 5 and parts["fields"]["z"].shape == whole["fields"]["z"].shape


def test_a_zero_output_is_named_by_its_sample_index_across_batches():
    x = torch.randn(4, 2, 8, 8, dtype=DT)
    x[3] = 0.0
    with pytest.raises(ValueError, match=r"samples \[3\]"):
        lie_derivative(lambda v: v * 1.0, x, VEC, VEC, 2, batch_size=2)
