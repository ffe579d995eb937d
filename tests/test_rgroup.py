"""RGroup: exact at initialisation, broken by unequal bank weights, nonlinear, and twice differentiable.

Also the Hessian-vector products through RGroup and RSteer (double backward), checked against finite
differences of gradients.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from equidyn.measures.equivariance import equivariance_error
from equidyn.models.base import ModelSpec, count_parameters, functional_eval
from equidyn.models.registry import build_model, fit_hidden, parameter_polynomial
from equidyn.models.rgroup import (
    RegularLift,
    RegularProjection,
    RelaxedGroupConv2d,
    RGroup,
    regular_intertwiner,
)
from equidyn.symmetry import C4, FieldLayout

G = C4()


def spec(name: str = "rgroup", hidden: int = 3, layers: int = 3, frames: int = 2, **options) -> ModelSpec:
    return ModelSpec(
        name=name,
        in_layout=FieldLayout.parse(f"{frames} vector"),
        out_layout=FieldLayout.parse("1 vector"),
        hidden=hidden,
        layers=layers,
        grid=(12, 12),
        options=options,
    )


def _trained_bn(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Give batch normalisation non-trivial running statistics, as after training."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x * 2 + 0.5)
    model.eval()


def _ee(model, x) -> float:
    return equivariance_error(model, x, G, model.in_layout, model.out_layout)["ee_rel"]


# ----------------------------------------------------------------------------- lift and projection
MIXED = FieldLayout.parse("2 vector + 1 scalar + 1 sign + 1 regular")


def test_vector_lift_is_the_w22_cosine_formula() -> None:
    m = regular_intertwiner(G, FieldLayout.parse("1 vector"))
    i = torch.arange(4, dtype=torch.float64)
    expected = torch.stack([torch.cos(2 * math.pi * i / 4), torch.sin(2 * math.pi * i / 4)], 1) / math.sqrt(2)
    assert torch.allclose(m.double(), expected, atol=1e-7)


def test_lift_intertwines_every_field_kind_and_projection_inverts_it() -> None:
    torch.manual_seed(0)
    lift, project = RegularLift(G, MIXED), RegularProjection(G, MIXED)
    n_fields = 5
    reg = FieldLayout.of(("regular", n_fields))
    m = regular_intertwiner(G, MIXED)
    assert m.shape == (4 * n_fields, G.channels(MIXED))
    assert torch.allclose(m.T @ m, torch.eye(m.shape[1]), atol=1e-6)  # isometry: projection inverts it
    x = torch.randn(3, G.channels(MIXED), 6, 6)
    z = torch.randn(3, 4 * n_fields, 6, 6)
    assert torch.allclose(project(lift(x)), x, atol=1e-6)
    for g in G.elements:
        assert torch.allclose(lift(G.act(g, x, MIXED)), G.act(g, lift(x), reg), atol=1e-6)
        assert torch.allclose(project(G.act(g, z, reg)), G.act(g, project(z), MIXED), atol=1e-6)


def test_a_lift_with_the_wrong_handedness_is_caught() -> None:
    """The intertwining test can fail: lifting the mirrored vector (u, −v) does not commute with rotations."""
    layout = FieldLayout.parse("1 vector")
    lift = RegularLift(G, layout)
    x = torch.randn(2, 2, 6, 6)
    flip = torch.tensor([1.0, -1.0]).view(1, 2, 1, 1)
    wrong = lift(G.act(1, x, layout) * flip) - G.act(1, lift(x * flip), FieldLayout.of(("regular", 1)))
    assert wrong.abs().max() > 0.1


# --------------------------------------------------------------------------- the group convolution
def test_group_conv_filter_is_the_spine_orbit_of_its_base_kernels() -> None:
    torch.manual_seed(0)
    conv = RelaxedGroupConv2d(2, 3, kernel_size=3, banks=2)
    filt, bias = conv.expand_parameters()
    assert filt.shape == (12, 8, 3, 3) and bias.shape == (12,)
    blocks = filt.view(3, 4, 8, 3, 3)  # (o, g, i·h, ky, kx)
    reg = FieldLayout.of(("regular", 2))
    for g in G.elements:
        assert torch.equal(blocks[:, g], G.act(g, blocks[:, 0], reg))


def test_group_conv_is_equivariant_on_regular_fields_of_an_odd_grid() -> None:
    torch.manual_seed(0)
    conv = RelaxedGroupConv2d(2, 3, kernel_size=5, banks=3)
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 8, 13, 13)
    ee = equivariance_error(conv, x, G, FieldLayout.of(("regular", 2)), FieldLayout.of(("regular", 3)))
    assert ee["ee_rel"] <= 1e-6


def test_regularizer_is_the_sum_of_pairwise_bank_weight_differences() -> None:
    conv = RelaxedGroupConv2d(1, 1, banks=2)
    with torch.no_grad():
        conv.relaxed_weights.copy_(torch.tensor([[0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]))
    # bank 0: element 1 differs by 1 from the other three, in both orders -> 6; bank 1 is constant -> 0
    assert float(conv.relaxation_penalty().detach()) == pytest.approx(6.0)


# ------------------------------------------------------------------------------------- the network
def test_rgroup_at_initialisation_is_exactly_equivariant_in_train_and_eval_mode() -> None:
    torch.manual_seed(0)
    model = build_model(spec())
    assert isinstance(model, RGroup)
    x = torch.randn(4, 4, 12, 12)
    model.train()
    assert _ee(model, x) <= 1e-5  # batch statistics are pooled per regular field, hence invariant
    _trained_bn(model, x)
    ee = equivariance_error(model, x, G, model.in_layout, model.out_layout)
    assert ee["ee_rel"] <= 1e-5
    assert ee["output_mean_abs"] > 1e-2  # not trivially zero
    assert float(model.regularizer().detach()) == 0.0


def test_unequal_filter_bank_weights_break_equivariance_and_pay_the_penalty() -> None:
    torch.manual_seed(0)
    model = build_model(spec())
    x = torch.randn(4, 4, 12, 12)
    _trained_bn(model, x)
    with torch.no_grad():  # perturbing only the base kernels keeps the layers group convolutions
        for conv in model.group_convs():
            conv.base.add_(0.3 * torch.randn_like(conv.base))
    assert _ee(model, x) <= 1e-5
    with torch.no_grad():
        for conv in model.group_convs():
            conv.relaxed_weights.add_(0.3 * torch.randn_like(conv.relaxed_weights))
    assert _ee(model, x) > 1e-2  # no cached filter: the eval-mode model sees the in-place change
    assert float(model.regularizer().detach()) > 0.1


def test_rgroup_is_not_a_linear_network() -> None:
    """The published RGroup had no activation; here f(x) − f(0) is not linear in x."""
    torch.manual_seed(0)
    model = build_model(spec())
    x = torch.randn(4, 4, 12, 12)
    _trained_bn(model, x)
    with torch.no_grad():
        f0 = model(torch.zeros_like(x))
        lin_defect = (model(2 * x) - f0) - 2 * (model(x) - f0)
    assert lin_defect.abs().mean() > 1e-2 * (model(x) - f0).abs().mean()


def test_parameter_count_formula_and_budget_fit() -> None:
    s = spec(hidden=5, layers=4, frames=3, filter_banks=2)
    model = build_model(s)
    banks, k2, h = 2, 9, 5
    convs = [(3, h, True), (h, h, True), (h, h, True), (h, 1, False)]  # (in fields, out fields, bias)
    expected = sum(banks * o * i * 4 * k2 + banks * 4 + (o if b else 0) for i, o, b in convs) + 3 * 2 * h
    assert count_parameters(model) == expected
    a, b, c = parameter_polynomial(s)
    for width in (4, 9):
        assert count_parameters(build_model(s.with_hidden(width))) == round(a * width**2 + b * width + c)
    fitted, predicted = fit_hidden(s, 20000)
    assert count_parameters(build_model(fitted)) == predicted
    assert abs(predicted - 20000) < 0.1 * 20000


def test_unknown_option_is_an_error() -> None:
    with pytest.raises(ValueError, match="filter_bank"):
        build_model(spec(filter_bank=2))


# ------------------------------------------------------------------------- Hessian-vector products
def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _grad(model, loss_fn) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    return _flat(torch.autograd.grad(loss_fn(), params))


@pytest.mark.parametrize("name", ["rgroup", "rsteer"])
def test_hessian_vector_product_matches_finite_differences_of_gradients(name: str) -> None:
    torch.manual_seed(0)
    # deepcopy first: escnn shares its sampled bases between all convolutions of the same representation pair
    # (a process-wide cache), so .double() on the original would turn every later escnn model's basis to float64
    model = copy.deepcopy(build_model(spec(name, hidden=2, layers=3))).double()
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():  # move off the equal-weight point, so the relaxed directions are generic
        for mod in model.modules():
            for attr in ("relaxed_weights", "weights"):
                w = getattr(mod, attr, None)
                if isinstance(w, torch.nn.Parameter):
                    w.add_(0.1 * torch.randn_like(w))
    x = torch.randn(3, 4, 12, 12, dtype=torch.float64)
    y = torch.randn(3, 2, 12, 12, dtype=torch.float64)
    _trained_bn(model, x)

    def loss() -> torch.Tensor:
        return F.mse_loss(model(x), y) + 1e-2 * model.regularizer(x)

    v = [torch.randn_like(p) for p in params]
    norm = _flat(v).norm()
    v = [t / norm for t in v]
    with functional_eval(model):  # eval-mode statistics, filters re-expanded from the parameters
        grads = torch.autograd.grad(loss(), params, create_graph=True)
        hv = _flat(torch.autograd.grad(sum((g * t).sum() for g, t in zip(grads, v, strict=True)), params))
        eps = 1e-5
        with torch.no_grad():
            for p, t in zip(params, v, strict=True):
                p.add_(eps * t)
        g_plus = _grad(model, loss)
        with torch.no_grad():
            for p, t in zip(params, v, strict=True):
                p.sub_(2 * eps * t)
        g_minus = _grad(model, loss)
    fd = (g_plus - g_minus) / (2 * eps)
    assert hv.norm() > 1e-3
    assert (hv - fd).norm() <= 1e-5 * hv.norm()
