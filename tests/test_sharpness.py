"""Sharpness, BLOG and curvature: closed form on a quadratic loss, curvature vs Hessian-vector products,
linear-term invariance, exact zero at zero displacement, seeding, exact restore, escnn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from equidyn.measures.hessian import HessianOperator
from equidyn.measures.sharpness import random_unit_directions, sharpness
from equidyn.models.base import functional_eval

DT = torch.float64


def regression_batches(seed: int = 0, k: int = 5):
    gen = torch.Generator().manual_seed(seed)
    sizes = (7, 3, 5)  # unequal: the loss must weight samples, not batches
    return [(torch.randn(n, k, generator=gen, dtype=DT), torch.randn(n, 1, generator=gen, dtype=DT)) for n in sizes]


def bn_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1)).double()
    model.train()
    with torch.no_grad():
        for _ in range(3):  # running statistics far from any batch's own statistics
            model(3.0 * torch.randn(8, 2, 6, 6, dtype=DT) + 2.0)
    return model


def image_batches(seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, 2, 6, 6, generator=gen, dtype=DT), torch.randn(n, 2, 6, 6, generator=gen, dtype=DT))
        for n in (4, 2)
    ]


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_directions_are_unit_seeded_and_seed_only():
    a = list(random_unit_directions(100, 4, seed=3))
    b = list(random_unit_directions(100, 4, seed=3))
    c = list(random_unit_directions(100, 4, seed=4))
    torch.manual_seed(123)  # the global RNG plays no part
    d = list(random_unit_directions(100, 4, seed=3))
    for u, v, w in zip(a, b, d, strict=True):
        assert torch.linalg.vector_norm(u).item() == pytest.approx(1.0, abs=1e-14)
        assert torch.equal(u, v) and torch.equal(u, w)
    assert not torch.equal(a[0], c[0])


def test_quadratic_loss_matches_closed_form():
    # L(w) = mean_i (x_i·w + b − y_i)²  ⇒  L(w + t d) − L(w) = (2t/N) Σ r_i (x̃_i·d) + (t²/N) Σ (x̃_i·d)²
    torch.manual_seed(0)
    model = nn.Linear(5, 1).double()
    batches = regression_batches()
    ts, n_dir, seed = [0.05, 0.3, 1.0], 6, 11
    out = sharpness(model, batches, nn.functional.mse_loss, ts, n_dir, seed)

    x = torch.cat([b[0] for b in batches]).numpy()
    y = torch.cat([b[1] for b in batches]).numpy()[:, 0]
    xt = np.concatenate([x, np.ones((len(x), 1))], 1)  # parameter order: weight (1×5), then bias
    w = np.concatenate([model.weight.detach().numpy()[0], model.bias.detach().numpy()])
    r = xt @ w - y
    assert out["loss"] == pytest.approx(np.mean(r**2), rel=1e-12)
    per_t = np.zeros(len(ts))
    curv_t = np.zeros(len(ts))
    for i, d in enumerate(random_unit_directions(6, n_dir, seed)):
        xd = xt @ d.numpy()
        for j, t in enumerate(ts):
            delta = 2 * t * np.mean(r * xd) + t**2 * np.mean(xd**2)
            assert out["loss_perturbed"][i][j] - out["loss"] == pytest.approx(delta, rel=1e-9, abs=1e-14)
            per_t[j] += abs(delta) / n_dir
            curv_t[j] += t**2 * np.mean(xd**2) / n_dir  # the quadratic's symmetric part, exactly
    assert out["curvature_per_displacement"] == pytest.approx(curv_t.tolist(), rel=1e-8)
    assert out["curvature"] == pytest.approx(curv_t.mean(), rel=1e-8)
    # per unit t²: twice the Gauss-Newton curvature 2·mean(xd²)/2 averaged over directions, the same at every t
    assert np.allclose(out["curvature_per_t2"], 2 * curv_t / np.array(ts) ** 2, rtol=1e-6)
    assert out["per_displacement"] == pytest.approx(per_t.tolist(), rel=1e-9)
    assert out["sharpness"] == pytest.approx(per_t.mean(), rel=1e-9)
    assert out["sharpness_rel"] == pytest.approx(per_t.mean() / np.mean(r**2), rel=1e-9)
    assert out["n_params"] == 6 and out["displacements"] == ts


def curvature_from_hvp(model: nn.Module, batches, crit, n_dir: int, seed: int) -> np.ndarray:
    """``dᵀHd`` for the measure's own directions, from Hessian-vector products of the same eval-mode loss."""
    with functional_eval(model):
        op = HessianOperator(model, batches, crit)
        dirs = torch.stack(list(random_unit_directions(op.n_params, n_dir, seed)))
        return torch.einsum("kn,kn->k", op.matmat(dirs).double(), dirs).numpy()


def test_curvature_sharpness_matches_hessian_vector_products_at_small_t():
    model = bn_model()
    batches = image_batches()
    crit = nn.functional.mse_loss
    n_dir, seed, t = 8, 5, 1e-3
    dhd = curvature_from_hvp(model, batches, crit, n_dir, seed)
    assert dhd.mean() > 0.1 * np.abs(dhd).max()  # a clearly positive mean, so a 10 % bound is meaningful
    out = sharpness(model, batches, crit, [t], n_dir, seed)
    assert out["curvature"] == pytest.approx(t**2 * dhd.mean() / 2, rel=0.1)
    assert out["curvature_per_t2"][0] == pytest.approx(dhd.mean(), rel=0.1)
    kappa = (np.array(out["loss_perturbed"])[:, 0] + np.array(out["loss_perturbed_minus"])[:, 0]) / 2 - out["loss"]
    assert np.allclose(kappa, t**2 * dhd / 2, rtol=0.1, atol=0.01 * t**2 * np.abs(dhd).max())
    assert out["curvature_se"] == pytest.approx(t**2 / 2 * dhd.std(ddof=1) / np.sqrt(n_dir), rel=0.1)


class Tilted(nn.Module):
    """``model`` plus a loss term linear in the weights: forward returns (output, gᵀw)."""

    def __init__(self, inner: nn.Module, seed: int) -> None:
        super().__init__()
        self.inner = inner
        n = sum(p.numel() for p in inner.parameters())
        self.register_buffer("g", torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=DT))

    def forward(self, x: torch.Tensor):
        w = torch.cat([p.reshape(-1) for p in self.inner.parameters()])
        return self.inner(x), self.g @ w


def test_curvature_sharpness_ignores_a_linear_term_and_the_blog_sharpness_does_not():
    model = bn_model()
    batches = image_batches()
    crit = nn.functional.mse_loss
    ts = [0.01, 0.05]
    plain = sharpness(model, batches, crit, ts, 6, seed=2)
    tilted = sharpness(Tilted(model, seed=9), batches, lambda out, y: crit(out[0], y) + out[1], ts, 6, seed=2)
    assert tilted["curvature"] == pytest.approx(plain["curvature"], rel=1e-6, abs=1e-12)
    assert tilted["curvature_per_displacement"] == pytest.approx(plain["curvature_per_displacement"], rel=1e-6)
    # the BLOG's definition picks up t·|gᵀd|, which here is far larger than the curvature term
    assert tilted["sharpness"] > 5 * plain["sharpness"]


def test_batchnorm_model_at_zero_displacement_is_exactly_zero():
    model = bn_model()
    batches = image_batches()
    crit = nn.functional.mse_loss
    with torch.no_grad():  # control: train-mode L(w) differs, so a train/eval mismatch could not hide
        train_loss = sum(crit(model(x), y).item() * len(x) for x, y in batches) / 6
    out = sharpness(model, batches, crit, [0.0], n_directions=3, seed=0)
    assert abs(train_loss - out["loss"]) > 1e-3
    assert out["sharpness"] == 0.0 and out["curvature"] == 0.0
    assert all(v == out["loss"] for row in out["loss_perturbed"] for v in row)
    mixed = sharpness(model, batches, crit, [0.0, 0.1], n_directions=3, seed=0)
    assert mixed["per_displacement"][0] == 0.0 and mixed["per_displacement"][1] > 0.0


def test_same_seed_same_numbers_and_perturbations_undone():
    model = bn_model()
    batches = image_batches()
    before = state(model)
    a = sharpness(model, batches, nn.functional.l1_loss, [0.01, 0.1], n_directions=4, seed=5)
    assert_same_state(before, state(model))  # weights and BN running stats (and num_batches_tracked) intact
    assert model.training and all(m.training for m in model.modules())
    b = sharpness(model, batches, nn.functional.l1_loss, [0.01, 0.1], n_directions=4, seed=5)
    c = sharpness(model, batches, nn.functional.l1_loss, [0.01, 0.1], n_directions=4, seed=6)
    assert a == b
    assert a["sharpness"] != c["sharpness"]


def test_weights_restored_when_the_criterion_fails_midway():
    model = bn_model()
    before = state(model)
    calls = {"n": 0}

    def flaky(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("boom")
        return nn.functional.mse_loss(out, target)

    with pytest.raises(RuntimeError, match="boom"):
        sharpness(model, image_batches(), flaky, [0.5], n_directions=2, seed=0)
    assert_same_state(before, state(model))


def test_escnn_cached_filters_do_not_hide_the_perturbation(escnn_c4_net):
    torch.manual_seed(0)
    model = escnn_c4_net(2, "relu")
    batches = [(torch.randn(3, 2, 8, 8), torch.randn(3, 2, 8, 8))]
    from_train = sharpness(model, batches, nn.functional.mse_loss, [0.5], n_directions=2, seed=1)
    model.eval()  # escnn caches the expanded filter now
    before = state(model)
    from_eval = sharpness(model, batches, nn.functional.mse_loss, [0.5], n_directions=2, seed=1)
    assert from_eval["sharpness"] > 1e-3
    assert from_eval == from_train
    assert_same_state(before, state(model))  # including the re-cached filter
    assert not any(m.training for m in model.modules())


def test_bad_input_is_named():
    model = nn.Linear(5, 1).double()
    with pytest.raises(ValueError, match="displacements"):
        sharpness(model, regression_batches(), nn.functional.mse_loss, [], 2, 0)
    with pytest.raises(ValueError, match="empty"):
        sharpness(model, [], nn.functional.mse_loss, [0.1], 2, 0)
    x = torch.randn(3, 5, dtype=DT)
    with pytest.raises(ValueError, match="batch 1"):
        sharpness(model, [(x, x[:, :1]), (x, x[:2, :1])], nn.functional.mse_loss, [0.1], 2, 0)
    with pytest.raises(ValueError, match="scalar"):
        sharpness(model, [(x, x[:, :1])], lambda a, b: (a - b) ** 2, [0.1], 2, 0)
