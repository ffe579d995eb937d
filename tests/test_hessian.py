"""Hessian spectra against dense Hessians, known quadratics and PyHessian."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from equidyn.measures._loss import flatten, unflatten_like
from equidyn.measures.hessian import (
    NEGATIVE_SIGMA,
    NEGATIVE_THRESHOLD,
    HessianOperator,
    hessian_spectrum,
    pyhessian_reference,
    smoothed_negative_mass,
)
from equidyn.models.base import ModelSpec, functional_eval
from equidyn.models.registry import build_model
from equidyn.symmetry import FieldLayout

DT = torch.float64


# ---------------------------------------------------------------- problems with known Hessians


class Quadratic(nn.Module):
    """``L(w) = ½ wᵀHw − bᵀw`` through the (model, batches, criterion) interface: the output is w itself."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(n, dtype=DT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w


def quadratic_problem(eigenvalues: np.ndarray, rotate: bool, seed: int = 0):
    n = len(eigenvalues)
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.normal(size=(n, n)))[0] if rotate else np.eye(n)
    h = torch.tensor(q @ np.diag(eigenvalues) @ q.T, dtype=DT)
    b = torch.tensor(rng.normal(size=n), dtype=DT)
    model = Quadratic(n)
    with torch.no_grad():
        model.w.copy_(torch.tensor(rng.normal(size=n)))
    batches = [(torch.zeros(3, 1, dtype=DT), torch.zeros(3, 1, dtype=DT)), (torch.zeros(1, 1, dtype=DT),) * 2]
    return model, batches, (lambda w, _y: 0.5 * w @ h @ w - b @ w), h


def tiny_net(conv: bool, dtype=DT) -> tuple[nn.Module, list]:
    torch.manual_seed(0)
    if conv:
        model = nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.Tanh(), nn.Conv2d(3, 2, 3, padding=1)
        )
        shape = (2, 5, 5)
    else:
        model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.BatchNorm1d(6), nn.Linear(6, 2))
        shape = (3,)
    model = model.to(dtype)
    model.train()
    with torch.no_grad():
        model(2.0 * torch.randn(32, *shape, dtype=dtype) + 1.0)
    gen = torch.Generator().manual_seed(1)
    out_shape = (2, 5, 5) if conv else (2,)
    batches = [
        (torch.randn(n, *shape, generator=gen, dtype=dtype), torch.randn(n, *out_shape, generator=gen, dtype=dtype))
        for n in (7, 4)
    ]
    return model, batches


def dense_hessian(model: nn.Module, batches, criterion) -> torch.Tensor:
    """Reference: torch.autograd.functional.hessian of the sample-weighted mean loss in eval behaviour."""
    named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    total = sum(len(x) for x, _ in batches)

    def loss(w: torch.Tensor) -> torch.Tensor:
        subs = dict(zip([k for k, _ in named], unflatten_like(w, params), strict=True))
        return sum(criterion(torch.func.functional_call(model, subs, (x,)), y) * len(x) for x, y in batches) / total

    with functional_eval(model):
        return torch.autograd.functional.hessian(loss, flatten([p.detach() for p in params]))


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- dense references


@pytest.mark.parametrize("conv", [False, True])
def test_top_eigenvalues_and_trace_match_dense_hessian(conv):
    model, batches = tiny_net(conv)
    crit = nn.functional.mse_loss
    h = dense_hessian(model, batches, crit)
    ev = torch.linalg.eigvalsh(h).numpy()
    n = len(ev)
    before = state(model)
    out = hessian_spectrum(model, batches, crit, top_k=3, n_hutchinson=n, n_slq=2, slq_steps=20, seed=0, tol=1e-8)
    assert out["converged"] and out["n_params"] == n
    assert np.allclose(out["eigenvalues"], ev[::-1][:3], rtol=1e-4, atol=0)
    assert out["lambda_max"] == out["eigenvalues"][0]
    assert out["lambda_min"] >= ev[0] - 1e-9  # a Ritz value never leaves the spectrum's hull
    assert out["trace_method"] == "exact" and out["trace_se"] == 0.0
    assert out["trace"] == pytest.approx(float(h.trace()), rel=1e-4)
    # nothing left behind: weights, running stats, modes, gradients
    after = state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training and all(p.grad is None for p in model.parameters())


def test_escnn_model_after_eval_matches_dense_hessian(escnn_c4_net):
    torch.manual_seed(0)
    model = escnn_c4_net(1, "elu")
    model.eval()  # caches filters: a Hessian through the cache would be zero
    batches = [(torch.randn(3, 2, 6, 6), torch.randn(3, 2, 6, 6))]
    crit = nn.functional.mse_loss
    ev = torch.linalg.eigvalsh(dense_hessian(model, batches, crit).double()).numpy()
    out = hessian_spectrum(model, batches, crit, top_k=2, n_hutchinson=4, n_slq=1, slq_steps=8, seed=0, tol=1e-5)
    assert out["converged"] and abs(ev[-1]) > 1e-3
    assert np.allclose(out["eigenvalues"], ev[::-1][:2], rtol=1e-4)
    assert not any(m.training for m in model.modules())


# ---------------------------------------------------------------- known quadratics


def test_quadratic_eigenvalues_density_and_negative_mass():
    n = 60
    lam = np.concatenate([np.linspace(-3.0, -0.5, 24), np.linspace(0.2, 10.0, 36)])
    model, batches, crit, _ = quadratic_problem(lam, rotate=False)
    out = hessian_spectrum(model, batches, crit, top_k=5, n_hutchinson=10, n_slq=3, slq_steps=n, seed=2, tol=1e-10)
    assert np.allclose(out["eigenvalues"], np.sort(lam)[::-1][:5], rtol=1e-8)
    # diagonal H and a Rademacher start: every quadrature weight is exactly 1/n, so SLQ gives the exact value
    exact = smoothed_negative_mass(lam, None, NEGATIVE_THRESHOLD * 10.0, NEGATIVE_SIGMA * 10.0)
    assert 0.35 < exact < 0.4  # the 24 eigenvalues below -0.5, less a smoothed share of those near -0.6
    assert out["negative_mass"] == pytest.approx(exact, abs=1e-10)
    assert out["negative_threshold"] == pytest.approx(0.6) and out["negative_sigma"] == pytest.approx(0.2)
    dens = out["density"]
    for nodes, weights in zip(dens["nodes"], dens["weights"], strict=True):
        assert sum(weights) == pytest.approx(1.0, abs=1e-12)
        assert np.allclose(np.sort(nodes), np.sort(lam), atol=1e-8)
    assert np.trapz(dens["values"], dens["grid"]) == pytest.approx(1.0, abs=1e-3)
    grid, values = np.asarray(dens["grid"]), np.asarray(dens["values"])
    assert np.trapz(values[grid < 0], grid[grid < 0]) == pytest.approx(0.4, abs=0.02)


def test_smoothed_negative_mass_definition():
    from scipy.special import ndtr

    lam = np.array([-2.0, -1.0, 0.0, 0.0, 5.0])
    floor = float(ndtr(-3.0))  # what a zero eigenvalue counted before the floor was subtracted: Φ(−3) = 0.135 %
    # far below the threshold counts 1, at the threshold (1/2 − floor)/(1 − floor), zero and positive eigenvalues 0
    assert smoothed_negative_mass(lam, None, 1.0, 1e-9) == pytest.approx((1 + 0.5) / 5)
    assert smoothed_negative_mass(lam, None, 0.3, 0.1) == pytest.approx((2 * 1.0) / 5, abs=1e-12)
    assert smoothed_negative_mass(np.array([-0.3]), None, 0.3, 0.1) == pytest.approx((0.5 - floor) / (1 - floor))
    assert smoothed_negative_mass(np.zeros(4), None, 0.3, 0.1) == 0.0
    # the issue-21 floor: without the subtraction, a spectrum with no negative eigenvalue at all reads Φ(−3)
    assert smoothed_negative_mass(np.zeros(4), None, 0.3, 0.1, subtract_floor=False) == pytest.approx(
        0.0013499, rel=1e-4
    )
    assert smoothed_negative_mass(lam, np.array([0, 0, 0, 0, 1.0]), 0.1, 0.1) < 1e-12
    with pytest.raises(ValueError, match="sigma"):
        smoothed_negative_mass(lam, None, 0.1, 0.0)


def _spectrum(kind: str, n: int = 400, lam_max: float = 10.0) -> np.ndarray:
    """Test spectra: 10 % negative eigenvalues or none, each with a large near-zero bulk (60 %) or without one."""
    rng = np.random.default_rng(sum(map(ord, kind)))
    n_neg = n // 10 if kind.startswith("negative") else 0
    n_bulk = int(0.6 * n) if kind.endswith("bulk") else 0
    neg = -lam_max * rng.uniform(0.02, 0.3, n_neg)
    bulk = lam_max * rng.uniform(0.0, 1e-3, n_bulk)  # PSD bulk at 0: the floor it used to produce is all there is
    pos = lam_max * rng.uniform(0.01, 1.0, n - n_neg - n_bulk - 1)
    return np.sort(np.concatenate([neg, bulk, pos, [lam_max]]))


@pytest.mark.parametrize("kind", ["negative+bulk", "negative", "none+bulk", "none"])
def test_negative_curvature_measures_on_dense_hessians_with_known_spectra(kind):
    """Issue 21: λ_min (± its Lanczos residual), λ_min/λ_max and the SLQ negative mass (± SE over ≥ 5 runs) are
    within 3 error bars of the dense truth with 10 % negative eigenvalues, and of 0 with none."""
    lam = _spectrum(kind)
    model, batches, crit, h = quadratic_problem(lam, rotate=True, seed=7)
    out = hessian_spectrum(model, batches, crit, top_k=1, n_hutchinson=2, n_slq=8, slq_steps=60, seed=1, tol=1e-6,
                           max_steps=200)  # fmt: skip
    ev = torch.linalg.eigvalsh(h).numpy()
    true_min = float(ev[0])
    res = out["lambda_min_residual"]
    assert true_min - 1e-9 <= out["lambda_min"] <= true_min + 3 * res + 1e-9, (out["lambda_min"], true_min, res)
    # the error bar is small against λ_max; a bulk at the low end converges slowest (there it is ~2e-6 λ_max, not
    # the tol of 1e-6 after 200 steps), which is what the residual column is for
    assert res <= 1e-5 * ev[-1]
    assert out["lambda_min_ratio"] == pytest.approx(true_min / ev[-1], abs=3 * res / ev[-1] + 1e-12)
    exact = smoothed_negative_mass(ev, None, NEGATIVE_THRESHOLD * ev[-1], NEGATIVE_SIGMA * ev[-1])
    se = out["negative_mass_se"]
    assert math.isfinite(se)  # 8 runs: an SE is published
    assert abs(out["negative_mass"] - exact) <= 3 * se + 1e-12, (out["negative_mass"], exact, se)
    if kind.startswith("none"):
        assert exact == 0.0 and out["negative_mass"] == pytest.approx(0.0, abs=1e-12) and out["lambda_min"] > -1e-9
        old = smoothed_negative_mass(ev, None, NEGATIVE_THRESHOLD * ev[-1], NEGATIVE_SIGMA * ev[-1], False)
        if kind == "none+bulk":  # the old definition read the floor: Φ(−3) × the 60 % bulk, not 0
            assert old > 0.5 * 0.00135 * 0.6
    else:
        assert 0.05 < exact < 0.1 and out["lambda_min_ratio"] < -0.02


def test_negative_mass_has_no_se_below_five_runs():
    lam = _spectrum("negative")
    model, batches, crit, _ = quadratic_problem(lam, rotate=True, seed=7)
    out = hessian_spectrum(model, batches, crit, top_k=1, n_hutchinson=2, n_slq=3, slq_steps=20, seed=1)
    assert math.isfinite(out["negative_mass"]) and math.isnan(out["negative_mass_se"])


def test_negative_mass_of_a_rotated_indefinite_quadratic_is_unbiased():
    # Rotated H: the weights are random, but their expectation gives the exact smoothed mass.
    lam = np.concatenate([np.linspace(-2.0, -0.1, 20), np.linspace(0.1, 5.0, 60)])
    model, batches, crit, _ = quadratic_problem(lam, rotate=True, seed=3)
    out = hessian_spectrum(model, batches, crit, top_k=1, n_hutchinson=4, n_slq=12, slq_steps=40, seed=4)
    exact = smoothed_negative_mass(lam, None, NEGATIVE_THRESHOLD * 5.0, NEGATIVE_SIGMA * 5.0)
    assert abs(out["negative_mass"] - exact) < 3 * out["negative_mass_se"]
    assert 0.0 < out["negative_mass_se"] < 0.05


def registry_model(name: str, hidden: int) -> tuple[nn.Module, list]:
    """A tiny 3-layer model built by the registry (BN statistics set on data), with one batch of random targets.

    Its Hessian has the shape of a network's: a dense bulk of eigenvalues around 0 (the weights are not at a
    minimum of this loss), a few positive outliers, and a negative tail.
    """
    torch.manual_seed(0)
    layout = FieldLayout.parse("1 vector")
    model = build_model(ModelSpec(name=name, in_layout=layout, out_layout=layout, hidden=hidden, layers=3, grid=(6, 6)))
    with torch.no_grad():
        model.train()(torch.randn(16, 2, 6, 6))
    gen = torch.Generator().manual_seed(1)
    return model, [(torch.randn(6, 2, 6, 6, generator=gen), torch.randn(6, 2, 6, 6, generator=gen))]


# (model, hidden): 300-600 parameters each; the paper's SLQ settings (5 runs of 80 steps) over 5 seeds
@pytest.mark.parametrize(("name", "hidden"), [("convnet", 6), ("e2cnn", 2), ("rsteer", 1)])
def test_negative_mass_matches_the_dense_spectrum_of_registry_models(name, hidden):
    model, batches = registry_model(name, hidden)
    crit = nn.functional.mse_loss
    ev = torch.linalg.eigvalsh(dense_hessian(model, batches, crit).double()).numpy()
    assert (np.abs(ev) < 0.01 * ev[-1]).mean() > 0.1 and (ev < 0).mean() > 0.25  # a bulk at 0, a negative tail
    exact = smoothed_negative_mass(ev, None, NEGATIVE_THRESHOLD * ev[-1], NEGATIVE_SIGMA * ev[-1])
    assert exact > 0.01
    new, old = [], []
    for seed in range(5):
        out = hessian_spectrum(
            model, batches, crit, top_k=1, n_hutchinson=2, n_slq=5, slq_steps=80, seed=seed, tol=1e-6, cache_graphs=True
        )
        assert out["lambda_max"] == pytest.approx(ev[-1], rel=1e-4)
        z = (out["negative_mass"] - exact) / out["negative_mass_se"]
        assert abs(z) < 4.6, f"seed {seed}: z = {z:.2f}"  # 99 % of Student's t with 4 dof (SE from 5 runs)
        new.append((out["negative_mass"], out["negative_mass_se"]))
        # the old definition (quadrature weight of nodes below 0), from the same Ritz nodes and weights
        d = out["density"]
        old.append(
            [
                sum(w for t, w in zip(th, ws, strict=True) if t < 0)
                for th, ws in zip(d["nodes"], d["weights"], strict=True)
            ]
        )
    est, se = np.array(new).T
    pooled_se = math.sqrt(np.mean(se**2) / len(se))
    assert abs(est.mean() - exact) < 3 * pooled_se
    old = np.array(old)
    old_se = math.sqrt(np.mean(old.var(axis=1, ddof=1) / old.shape[1]) / len(old))
    old_z = (old.mean() - (ev < 0).mean()) / old_se
    new_z = (est.mean() - exact) / pooled_se
    print(f"{name}: n={len(ev)} exact {exact:.4f} SLQ {est.mean():.4f} z {new_z:+.2f}; old definition z {old_z:+.2f}")
    if name in ("convnet", "rsteer"):  # the old definition is biased by many SEs where the bulk straddles 0
        assert abs(old_z) > 4


def test_hutchinson_is_unbiased_and_its_standard_error_is_calibrated():
    n = 100
    lam = np.concatenate([[40.0, 25.0, 12.0], np.random.default_rng(0).uniform(-0.5, 1.0, n - 3)])
    model, batches, crit, _ = quadratic_problem(lam, rotate=True, seed=1)
    exact = float(lam.sum())
    plain, deflated = [], []
    for seed in range(12):
        for deflate, bucket in ((False, plain), (True, deflated)):
            out = hessian_spectrum(
                model, batches, crit, top_k=3, n_hutchinson=30, n_slq=1, slq_steps=4, seed=seed, deflate_trace=deflate
            )
            assert out["trace_method"] == ("hutchinson-deflated" if deflate else "hutchinson")
            bucket.append((out["trace"], out["trace_se"]))
    for bucket in (plain, deflated):
        est, se = np.array(bucket).T
        assert np.all(np.abs(est - exact) < 4.5 * se)
        assert 0.5 < np.std(est, ddof=1) / np.mean(se) < 2.0  # the reported SE matches the spread over seeds
    # deflating the three outliers removes most of the variance
    assert np.mean(np.array(deflated)[:, 1]) < 0.5 * np.mean(np.array(plain)[:, 1])


# ---------------------------------------------------------------- PyHessian cross-check


def test_agrees_with_pyhessian():
    model, batches = tiny_net(conv=True, dtype=torch.float32)
    crit = nn.functional.mse_loss
    ev = torch.linalg.eigvalsh(dense_hessian(model, batches, crit).double()).numpy()
    assert ev[-3] > abs(ev[0])  # power iteration finds the largest |λ|: compare where those are the top three
    ref = pyhessian_reference(model, batches, crit, top_k=3, n_trace=200, seed=0, tol=1e-7, max_iter=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # must converge without a warning
        ours = hessian_spectrum(model, batches, crit, top_k=3, n_hutchinson=50, n_slq=1, slq_steps=4, seed=0)
    assert np.allclose(ours["eigenvalues"], ref["eigenvalues"], rtol=2e-3)
    assert np.allclose(ours["eigenvalues"], ev[::-1][:3], rtol=1e-3)
    exact = ev.sum()
    assert abs(ref["trace"] - exact) < 4 * ref["trace_se"]
    assert abs(ours["trace"] - exact) < 4 * ours["trace_se"]
    assert abs(ours["trace"] - ref["trace"]) < 4 * math.hypot(ours["trace_se"], ref["trace_se"])
    assert all(p.grad is None for p in model.parameters())


# ---------------------------------------------------------------- reproducibility and guards


def test_same_seed_same_numbers():
    model, batches = tiny_net(conv=False)
    kw = dict(top_k=2, n_hutchinson=10, n_slq=5, slq_steps=10)  # 5 runs: a finite SE (NaN != NaN in ==)
    a = hessian_spectrum(model, batches, nn.functional.mse_loss, seed=7, **kw)
    torch.manual_seed(999)  # the global RNG plays no part
    b = hessian_spectrum(model, batches, nn.functional.mse_loss, seed=7, **kw)
    c = hessian_spectrum(model, batches, nn.functional.mse_loss, seed=8, **kw)
    assert a == b
    assert a["trace"] != c["trace"]


@pytest.mark.parametrize("conv", [False, True])
def test_cached_and_batched_graphs_give_the_same_products(conv):
    model, batches = tiny_net(conv=conv)
    v = torch.randn(3, sum(p.numel() for p in model.parameters()), dtype=DT)
    crit = nn.functional.mse_loss
    with functional_eval(model):
        loop = HessianOperator(model, batches, crit, batched=False)
        fresh = loop.matmat(v)
        batched = HessianOperator(model, batches, crit)
        cached = HessianOperator(model, batches, crit, cache_graphs=True).matmat(v)
        vmapped = batched.matmat(v)
        single = HessianOperator(model, batches, crit).matvec(v[1])
    assert batched.batched  # the vmapped path ran, it did not fall back
    for other in (cached, vmapped):
        assert torch.allclose(fresh, other, rtol=1e-12, atol=1e-14)
    assert torch.allclose(fresh[1], single, rtol=1e-12, atol=1e-14)


def test_unconverged_lanczos_warns():
    model, batches = tiny_net(conv=True)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        out = hessian_spectrum(
            model, batches, nn.functional.mse_loss, top_k=3, n_hutchinson=4, n_slq=1, slq_steps=4, seed=0, max_steps=4
        )
    assert out["converged"] is False


def test_bad_arguments_are_named():
    model, batches = tiny_net(conv=False)
    crit = nn.functional.mse_loss
    with pytest.raises(ValueError, match="top_k"):
        hessian_spectrum(model, batches, crit, top_k=10_000, n_hutchinson=4, n_slq=1, slq_steps=4, seed=0)
    with pytest.raises(ValueError, match="n_hutchinson"):
        hessian_spectrum(model, batches, crit, top_k=1, n_hutchinson=1, n_slq=1, slq_steps=4, seed=0)
    with pytest.raises(TypeError, match="seed"):
        hessian_spectrum(model, batches, crit, top_k=1, n_hutchinson=4, n_slq=1, slq_steps=4, seed=1.5)


@pytest.mark.parametrize("conv", [False, True])
def test_smaller_vector_chunks_and_batches_give_the_same_spectrum(conv):
    """The memory knobs (``vector_chunk``, samples per batch) do not change the measured values."""
    model, batches = tiny_net(conv=conv)
    singles = [(x[i : i + 1], y[i : i + 1]) for x, y in batches for i in range(len(x))]
    kw = dict(top_k=2, n_hutchinson=6, n_slq=3, slq_steps=8, seed=3)
    crit = nn.functional.mse_loss
    wide = hessian_spectrum(model, batches, crit, chunk=16, **kw)
    narrow = hessian_spectrum(model, singles, crit, chunk=1, **kw)
    for key in ("lambda_max", "trace", "trace_se", "negative_mass"):
        assert narrow[key] == pytest.approx(wide[key], rel=1e-9, abs=1e-12), key
    assert narrow["n_hvp"] == wide["n_hvp"]
