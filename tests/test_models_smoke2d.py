"""ConvNet, E2CNN and RSteer: exact equivariance where claimed, none where not, and RSteer ≡ E2CNN at constant w."""

from __future__ import annotations

import pytest
import torch

from equidyn.measures.equivariance import equivariance_error
from equidyn.models.base import ModelSpec, count_parameters, functional_eval
from equidyn.models.registry import build_model, fit_hidden, parameter_polynomial
from equidyn.models.smoke2d import RelaxedR2Conv
from equidyn.symmetry import C4, FieldLayout

G = C4()


def spec(name: str, hidden: int = 4, layers: int = 3, frames: int = 2) -> ModelSpec:
    return ModelSpec(
        name=name,
        in_layout=FieldLayout.parse(f"{frames} vector"),
        out_layout=FieldLayout.parse("1 vector"),
        hidden=hidden,
        layers=layers,
        grid=(12, 12),
    )


def _trained_bn(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Give BatchNorm non-trivial running statistics, as after training."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x * 2 + 0.5)
    model.eval()


def test_e2cnn_is_exactly_c4_equivariant() -> None:
    torch.manual_seed(0)
    model = build_model(spec("e2cnn"))
    x = torch.randn(4, 4, 12, 12)
    _trained_bn(model, x)
    ee = equivariance_error(model, x, G, model.in_layout, model.out_layout)
    assert ee["ee_rel"] <= 1e-5
    assert ee["output_mean_abs"] > 1e-2


def test_rsteer_at_initialisation_is_exactly_equivariant_and_unregularised() -> None:
    torch.manual_seed(0)
    model = build_model(spec("rsteer"))
    x = torch.randn(4, 4, 12, 12)
    _trained_bn(model, x)
    assert equivariance_error(model, x, G, model.in_layout, model.out_layout)["ee_rel"] <= 1e-5
    assert float(model.regularizer()) == 0.0


def test_rsteer_with_constant_tap_weights_is_the_e2cnn() -> None:
    torch.manual_seed(1)
    e2 = build_model(spec("e2cnn"))
    rs = build_model(spec("rsteer"))
    e2_state = e2.state_dict()
    with torch.no_grad():
        e2_convs = [m for m in e2.modules() if hasattr(m, "basisexpansion")]
        rs_convs = [m for m in rs.modules() if isinstance(m, RelaxedR2Conv)]
        assert len(e2_convs) == len(rs_convs) == 3
        for a, b in zip(e2_convs, rs_convs, strict=True):
            b.weights.copy_(b.constant(a.weights))
            if a.bias is not None:
                b.bias.copy_(a.bias)
        for name, value in rs.state_dict().items():  # batch-norm parameters and statistics
            if "batch_norm" in name or "running" in name:
                value.copy_(e2_state[name])
    x = torch.randn(3, 4, 12, 12)
    for mode in (True, False):
        e2.train(mode)
        rs.train(mode)
        assert torch.allclose(e2(x), rs(x), atol=1e-6, rtol=1e-5)


def test_perturbed_rsteer_breaks_equivariance_and_pays_the_penalty() -> None:
    torch.manual_seed(0)
    model = build_model(spec("rsteer"))
    with torch.no_grad():
        for conv in model.relaxed_convs():
            conv.weights.add_(0.3 * torch.randn_like(conv.weights))
    model.eval()
    x = torch.randn(4, 4, 12, 12)
    assert equivariance_error(model, x, G, model.in_layout, model.out_layout)["ee_rel"] > 1e-2
    assert float(model.regularizer()) > 0


def test_regularizer_is_the_l1_norm_of_tap_differences() -> None:
    conv = build_model(spec("rsteer", layers=2)).relaxed_convs()[0]
    full = int(torch.nonzero(conv.active.all(dim=1))[0])  # a coefficient whose basis element acts at every tap
    grid = torch.zeros(conv.n_coefficients, 3, 3)
    grid[full, 1, 1] = 2.0  # one bump in the middle tap: 4 active neighbours, |2| each
    conv.set_tap_weights(grid)
    assert float(conv.smoothness_penalty()) == pytest.approx(8.0)
    ring = int(torch.nonzero(~conv.active[:, 4] & conv.active.any(dim=1))[0])  # zero at the centre tap
    grid = torch.zeros(conv.n_coefficients, 3, 3)
    grid[ring] = 1.0  # constant over the taps where it acts: no penalty, the inert centre is not compared
    conv.set_tap_weights(grid)
    assert float(conv.smoothness_penalty()) == 0.0
    assert torch.equal(conv.tap_weights()[ring].flatten() != 0, conv.active[ring])


def test_rsteer_has_no_inert_coefficients() -> None:
    # issue 9: with escnn's basis, 104 of 432 tap coefficients (hidden width 1, one vector in and out) multiply a
    # basis element that is exactly zero at their tap, and 56 more one below 1e-6 of the largest (rounding)
    layout = FieldLayout.parse("1 vector")
    model = build_model(ModelSpec(name="rsteer", in_layout=layout, out_layout=layout, hidden=1, layers=3, grid=(6, 6)))
    convs = model.relaxed_convs()
    total = sum(c.active.numel() for c in convs)
    inert = sum(int((~c.active).sum()) for c in convs)
    assert (total, inert) == (432, 160)
    assert sum(c.weights.numel() for c in convs) == total - inert
    for conv in convs:  # every remaining coefficient changes the filter
        jac = torch.autograd.functional.jacobian(lambda w, c=conv: _filter_with(c, w), conv.weights.detach())
        assert (jac.flatten(0, -2).abs().amax(dim=0) > 1e-6 * jac.abs().max()).all()


def _filter_with(conv, weights: torch.Tensor) -> torch.Tensor:
    saved = conv.weights
    try:
        del conv.weights
        conv.weights = weights
        return conv.expand_parameters()[0]
    finally:
        del conv.weights
        conv.weights = saved


def test_convnet_is_not_equivariant() -> None:
    torch.manual_seed(0)
    model = build_model(spec("convnet")).eval()
    x = torch.randn(4, 4, 12, 12)
    assert equivariance_error(model, x, G, model.in_layout, model.out_layout)["ee_rel"] > 1e-2


@pytest.mark.parametrize("name", ["convnet", "e2cnn", "rsteer"])
def test_parameter_budget_fit_is_exact(name: str) -> None:
    s = spec(name)
    a, b, c = parameter_polynomial(s)
    for h in (4, 7):
        assert count_parameters(build_model(s.with_hidden(h))) == round(a * h * h + b * h + c)
    fitted, predicted = fit_hidden(s, 5000)
    assert count_parameters(build_model(fitted)) == predicted
    assert abs(predicted - 5000) < abs(round(a * (fitted.hidden + 1) ** 2 + b * (fitted.hidden + 1) + c) - 5000)


def test_functional_eval_tracks_in_place_weight_changes_for_escnn() -> None:
    """escnn caches filters in eval mode; functional_eval must see perturbed weights (sharpness pitfall)."""
    torch.manual_seed(0)
    model = build_model(spec("e2cnn")).eval()
    x = torch.randn(2, 4, 12, 12)
    y0 = model(x)
    conv = next(m for m in model.modules() if hasattr(m, "basisexpansion"))
    with torch.no_grad():
        conv.weights.add_(1.0)
    assert torch.equal(model(x), y0)  # the stale cache: the pitfall itself
    with functional_eval(model):
        assert not torch.allclose(model(x), y0)
        model(x).sum().backward()  # repeated backward passes work
        model(x).sum().backward()
    with torch.no_grad():
        conv.weights.sub_(1.0)
    with functional_eval(model):
        assert torch.allclose(model(x), y0, atol=1e-6)
    assert not model.training and torch.allclose(model(x), y0, atol=1e-6)  # cache rebuilt on exit
