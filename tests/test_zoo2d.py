"""The W22 baselines: shapes, parameter counts, budget fits, and exactness of every equivariant part.

MLP, Rpp, Combo, CLCNN and Lift (RGroup has tests/test_rgroup.py). Each exactness claim is checked with the
spine's ``C4().act`` and bounded; each "not equivariant" claim has a lower bound, so the tests can fail both
ways.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from equidyn.measures.equivariance import equivariance_error
from equidyn.models.base import ModelSpec, count_parameters
from equidyn.models.baselines2d import CLCNN, LocallyConnected2d, Rpp
from equidyn.models.registry import available_models, build_model, fit_hidden, parameter_polynomial
from equidyn.models.smoke2d import E2CNN
from equidyn.symmetry import C4, FieldLayout

G = C4()
ZOO = ["mlp", "rpp", "combo", "clcnn", "lift", "rgroup"]
GRID = (12, 12)


def spec(name: str, hidden: int = 2, layers: int = 3, frames: int = 2, grid=GRID, **options) -> ModelSpec:
    return ModelSpec(
        name=name,
        in_layout=FieldLayout.parse(f"{frames} vector"),
        out_layout=FieldLayout.parse("1 vector"),
        hidden=hidden,
        layers=layers,
        grid=grid,
        options=options,
    )


def _ee(f, x, in_layout, out_layout) -> float:
    return equivariance_error(f, x, G, in_layout, out_layout)["ee_rel"]


def _trained_bn(model: torch.nn.Module, x: torch.Tensor) -> None:
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x * 2 + 0.5)
    model.eval()


def _n(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------- every model
def test_every_zoo_model_is_registered() -> None:
    assert set(ZOO) <= set(available_models())


@pytest.mark.parametrize("name", ZOO)
def test_output_shape_and_regularizer(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(spec(name))
    x = torch.randn(3, 4, *GRID)
    y = model(x)
    assert y.shape == (3, 2, *GRID)
    reg = model.regularizer(x)
    assert reg.shape == () and torch.isfinite(reg)
    assert model.has_regularizer == (name in ("rpp", "clcnn", "rgroup"))
    assert model.equivariant_to is None  # none of them is strictly equivariant as a whole


@pytest.mark.parametrize("name", ZOO)
def test_budget_fit_is_exact(name: str) -> None:
    s = spec(name)
    a, b, c = parameter_polynomial(s)
    assert count_parameters(build_model(s.with_hidden(5))) == round(a * 25 + b * 5 + c)
    budget = 4 * round(a * 16 + b * 4 + c)  # reachable for every model on a 12x12 grid
    fitted, predicted = fit_hidden(s, budget)
    assert count_parameters(build_model(fitted)) == predicted
    wider = fitted.hidden + 1
    assert abs(predicted - budget) <= abs(round(a * wider**2 + b * wider + c) - budget)


def test_parameter_counts_match_the_construction() -> None:
    h, k2, pixels = 3, 9, math.prod(GRID)
    # MLP: in -> h -> h -> out, BatchNorm1d (2 per unit) on the hidden layers
    d_in, d_out = 4 * pixels, 2 * pixels
    assert count_parameters(build_model(spec("mlp", hidden=h, layers=3))) == (
        d_in * h + h + 2 * h + h * h + h + 2 * h + h * d_out + d_out
    )
    # CLCNN: per position a (C_out, C_in, k, k) kernel and a bias; 4h channels in between
    chans = [4, 4 * h, 4 * h, 2]
    assert count_parameters(build_model(spec("clcnn", hidden=h, layers=3))) == sum(
        pixels * (o * i * k2 + o) for i, o in itertools.pairwise(chans)
    )
    # Rpp: exactly an E2CNN plus bias-free free convolutions between the same channels
    rpp = build_model(spec("rpp", hidden=h))
    e2 = build_model(spec("e2cnn", hidden=h))
    free = sum(i * o * k2 for i, o in itertools.pairwise(chans))
    assert count_parameters(rpp) == count_parameters(e2) + free
    # Combo: conv head (with BN) + E2CNN tail; Lift: encoder + E2CNN backbone
    combo = build_model(spec("combo", hidden=h, layers=4, noneq_layers=2))
    head = (4 * 4 * h * k2 + 4 * h + 8 * h) + (4 * h * 4 * h * k2 + 4 * h + 8 * h)
    assert count_parameters(combo) == head + count_parameters(combo.tail)
    assert combo.tail.spec.layers == 2
    lift = build_model(spec("lift", hidden=h, lift_channels=5))
    encoder = (4 * h * k2 + h + 2 * h) + (h * 5 * k2 + 5)
    assert count_parameters(lift) == encoder + count_parameters(lift.backbone)


def test_unknown_or_invalid_options_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown options"):
        build_model(spec("lift", lift_channel=4))
    with pytest.raises(ValueError, match="equivariant layers"):
        build_model(spec("combo", layers=3, noneq_layers=2))
    with pytest.raises(ValueError, match="penalty"):
        build_model(spec("clcnn", penalty="l2"))


# --------------------------------------------------------------------------------------------- MLP
def test_mlp_reads_the_grid_and_is_not_equivariant() -> None:
    torch.manual_seed(0)
    model = build_model(spec("mlp", hidden=16))
    x = torch.randn(8, 4, *GRID)
    _trained_bn(model, x)
    assert _ee(model, x, model.in_layout, model.out_layout) > 1e-2
    with pytest.raises(ValueError, match="grid"):
        model(torch.randn(2, 4, 10, 10))


# --------------------------------------------------------------------------------------------- Rpp
def test_rpp_with_zero_free_weights_is_exactly_equivariant_and_unpenalised() -> None:
    torch.manual_seed(0)
    model = build_model(spec("rpp", hidden=3))
    assert isinstance(model, Rpp)
    x = torch.randn(4, 4, *GRID)
    _trained_bn(model, x)
    assert _ee(model, x, model.in_layout, model.out_layout) > 1e-2  # free pathway on: not equivariant
    manual = sum(float(conv.weight.detach().pow(2).sum()) for conv in model.free_convs())
    with torch.no_grad():
        assert float(model.regularizer()) == pytest.approx(manual, rel=1e-6)
        assert manual > 0
        for conv in model.free_convs():
            conv.weight.zero_()
        assert float(model.regularizer()) == 0.0
    model.train()  # escnn caches its filters in eval mode: rebuild them from the current weights
    _trained_bn(model, x)
    ee = equivariance_error(model, x, G, model.in_layout, model.out_layout)
    assert ee["ee_rel"] <= 1e-5 and ee["output_mean_abs"] > 1e-2


# ------------------------------------------------------------------------------------------- Combo
def test_combo_tail_is_exactly_equivariant_on_regular_fields_and_the_head_is_not() -> None:
    torch.manual_seed(0)
    model = build_model(spec("combo", hidden=3, layers=4))
    x = torch.randn(4, 4, *GRID)
    _trained_bn(model, x)
    assert isinstance(model.tail, E2CNN)
    z = torch.relu(torch.randn(4, 12, *GRID))
    assert _ee(model.tail, z, model.tail_layout, model.out_layout) <= 1e-5
    assert _ee(model, x, model.in_layout, model.out_layout) > 1e-2


# -------------------------------------------------------------------------------------------- Lift
def test_lift_backbone_is_exact_in_input_fields_and_invariant_channels() -> None:
    torch.manual_seed(0)
    model = build_model(spec("lift", hidden=3, lift_channels=3))
    x = torch.randn(4, 4, *GRID)
    _trained_bn(model, x)
    assert str(model.backbone_layout) == "2 vector + 3 scalar"
    xe = torch.cat([x, torch.randn(4, 3, *GRID)], dim=1)
    assert _ee(model.backbone, xe, model.backbone_layout, model.out_layout) <= 1e-5
    # the same channels read as vectors instead of scalars are *not* transformed correctly: the test can fail
    wrong = FieldLayout.parse("2 vector + 1 vector + 1 scalar")
    assert _ee(model.backbone, xe, wrong, model.out_layout) > 1e-2
    # the encoder breaks the symmetry, so the whole model is not equivariant
    assert _ee(model, x, model.in_layout, model.out_layout) > 1e-2


def test_lift_works_on_any_grid_size() -> None:
    torch.manual_seed(0)
    model = build_model(spec("lift")).eval()
    for n in (9, 16, 20):
        assert model(torch.randn(2, 4, n, n)).shape == (2, 2, n, n)


# ------------------------------------------------------------------------------------------- CLCNN
def _clcnn(penalty: str = "weights", hidden: int = 2) -> CLCNN:
    torch.manual_seed(0)
    model = build_model(spec("clcnn", hidden=hidden, penalty=penalty))
    with torch.no_grad():
        for layer in model.lc_layers:
            layer.bias.normal_(0, 0.1)
    return model


def test_locally_connected_weight_action_is_the_conjugated_layer() -> None:
    """``g·(W, b)`` computes ``x ↦ ρ_out(g) L(ρ_in(g)⁻¹ x)``, and composes like the group."""
    torch.manual_seed(0)
    lin, lout = FieldLayout.parse("1 vector + 1 scalar"), FieldLayout.parse("2 regular")
    layer = LocallyConnected2d(G, lin, lout, (7, 7), kernel_size=3)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 3, 7, 7)
    for g in G.elements:
        conj = G.act(g, layer(G.act(G.inverse(g), x, lin)), lout)
        moved = LocallyConnected2d(G, lin, lout, (7, 7), kernel_size=3)
        w, b = layer.transformed(g)
        with torch.no_grad():
            moved.weight.copy_(w)
            moved.bias.copy_(b)
        assert torch.allclose(moved(x), conj, atol=1e-5)
    # the cached gather maps reproduce the spine's act exactly
    for g in G.elements:
        slow = layer.act_on_parameters(g, layer.weight, layer.bias)
        assert all(torch.equal(a, b) for a, b in zip(layer.transformed(g), slow, strict=True))
    # a group action: 1·(1·W) = (1∘1)·W = 2·W, exactly (the entries are only permuted and negated)
    twice = [t.detach().clone() for t in layer.transformed(2)]
    w1, b1 = layer.transformed(1)
    with torch.no_grad():
        layer.weight.copy_(w1)
        layer.bias.copy_(b1)
    for a, b in zip(layer.transformed(1), twice, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("penalty", ["weights", "outputs"])
def test_clcnn_penalty_is_zero_for_a_symmetrised_net_and_positive_otherwise(penalty: str) -> None:
    model = _clcnn(penalty)
    x = torch.randn(4, 4, *GRID)
    assert _ee(model, x, model.in_layout, model.out_layout) > 1e-2
    assert float(model.regularizer(x).detach()) > 1e-3
    model.symmetrize_()
    ee = equivariance_error(model, x, G, model.in_layout, model.out_layout)
    assert ee["ee_rel"] <= 1e-5 and ee["output_mean_abs"] > 1e-3
    reg = model.regularizer(x)
    assert float(reg.detach()) == 0.0  # inside the hinge's round-off margin
    reg.backward()  # and the gradient there is zero, not NaN
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert torch.isfinite(grads).all() and float(grads.abs().max()) == 0.0


def test_clcnn_outputs_penalty_needs_a_batch() -> None:
    with pytest.raises(ValueError, match="batch"):
        _clcnn("outputs").regularizer()


def test_clcnn_margin_tolerates_small_breaking_only() -> None:
    model = _clcnn()
    model.symmetrize_()
    layer = model.lc_layers[0]
    with torch.no_grad():
        layer.weight[0, 0, 0] += 1e-3  # one entry off the symmetric subspace: RMS defect under the margin
    assert float(model.regularizer().detach()) == 0.0
    with torch.no_grad():
        layer.weight.add_(0.01 * torch.randn_like(layer.weight))
    assert float(model.regularizer().detach()) > 1e-3
