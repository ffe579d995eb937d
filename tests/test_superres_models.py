"""The 3-D super-resolution models: exact O_h equivariance on velocity fields, relaxation, Hessians, budgets.

Sizes are tiny (coarse 3³ → fine 12³, two hidden regular fields) so that all 48 elements of O_h are checked in
seconds; the odd coarse size puts a voxel on the rotation centre, the even fine size does not, so both cases
of "about the grid centre" are exercised. Equivariance is asserted in float32 (the training dtype) at ≤ 1e-5
relative, and in float64 at ≤ 1e-12, which shows the float32 residue is rounding, not a symmetry defect.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from equidyn.models.base import count_parameters, functional_eval, load_model_state, model_state
from equidyn.models.groupconv3d import (
    GroupConv3d,
    LiftConv3d,
    ProjectConv3d,
    depthwise_conv3d,
    spine_orbit_index,
    upsample2,
)
from equidyn.models.registry import build_model, fit_hidden
from equidyn.models.superres3d import BLOG_BUDGETS, PAPER_HIDDEN, paper_spec
from equidyn.symmetry import FieldLayout
from equidyn.symmetry.octahedral import Octahedral

OH = Octahedral(with_reflections=True)
CHIRAL = Octahedral(with_reflections=False)
VEC3 = FieldLayout.parse("3 vector")
VEC1 = FieldLayout.parse("1 vector")


def tiny(name: str, group: str = "Oh", hidden: int = 2, **options: object):
    torch.manual_seed(0)
    return build_model(replace(paper_spec(name, group, **options), hidden=hidden))


def relative_errors(f, x, group, in_layout, out_layout, elements=None, batched=True) -> list[float]:
    """``max|f(g·x) − g·f(x)| / max|f(x)|`` for each element (all of them by default)."""
    elements = list(group.elements if elements is None else elements)
    with torch.no_grad():
        fx = f(x)
        scale = float(fx.abs().max())
        if batched:  # one forward for all elements; only valid where samples do not interact (eval mode)
            moved = f(torch.cat([group.act(g, x, in_layout) for g in elements])).split(len(x))
        else:
            moved = [f(group.act(g, x, in_layout)) for g in elements]
        pairs = zip(elements, moved, strict=True)
        return [float((m - group.act(g, fx, out_layout)).abs().max()) / scale for g, m in pairs]


def warmed_up(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """A few training-mode forwards, so eval mode uses non-trivial running statistics."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x + 0.1 * torch.randn_like(x))
    return model.eval()


@pytest.mark.parametrize("name", ["gcnn3d", "rgcnn3d"])
def test_group_models_are_equivariant_to_all_of_oh_on_velocity_fields(name: str) -> None:
    model = tiny(name)
    x = torch.randn(1, 9, 3, 3, 3)
    warmed_up(model, x)
    assert model(x).shape == (1, 3, 12, 12, 12)
    errs = relative_errors(model, x, OH, VEC3, VEC1)
    assert len(errs) == 48 and max(errs) <= 1e-5, max(errs)
    # training mode: batch statistics pooled over each regular field are invariant too
    model.train()
    errs = relative_errors(model, x, OH, VEC3, VEC1, elements=range(0, 48, 5), batched=False)
    assert max(errs) <= 1e-5, max(errs)


def test_float64_errors_are_rounding_only() -> None:
    model = tiny("gcnn3d", hidden=1).double()
    x = torch.randn(1, 9, 2, 2, 2, dtype=torch.float64)
    warmed_up(model, x)
    assert max(relative_errors(model, x, OH, VEC3, VEC1)) <= 1e-12


def test_a_gcnn_over_o_is_equivariant_to_rotations_only() -> None:
    model = tiny("gcnn3d", group="O")
    assert model.group.order == 24 and model.equivariant_to == "O"
    x = torch.randn(1, 9, 3, 3, 3)
    warmed_up(model, x)
    assert max(relative_errors(model, x, CHIRAL, VEC3, VEC1)) <= 1e-5
    # the 24 improper elements of O_h are not imposed, and the net is not equivariant to them
    assert min(relative_errors(model, x, OH, VEC3, VEC1, elements=range(24, 48))) > 1e-3


def test_the_cnn_is_not_equivariant() -> None:
    model = tiny("cnn3d", hidden=4)
    x = torch.randn(1, 9, 3, 3, 3)
    warmed_up(model, x)
    assert model.equivariant_to is None
    assert min(relative_errors(model, x, OH, VEC3, VEC1, elements=range(1, 48))) > 1e-3


@pytest.mark.parametrize("separable", [True, False])
@pytest.mark.parametrize("banks", [None, 2])
def test_each_layer_satisfies_its_kernel_constraint(separable: bool, banks: int | None) -> None:
    torch.manual_seed(1)
    reg2 = FieldLayout.parse("2 regular")
    reg3 = FieldLayout.parse("3 regular")
    lift = LiftConv3d(OH, FieldLayout.parse("2 vector + 1 scalar"), 2, banks=banks).double()
    conv = GroupConv3d(OH, 2, 3, separable=separable, banks=banks).double()
    proj = ProjectConv3d(OH, 3, FieldLayout.parse("1 vector + 1 scalar"), banks=banks).double()
    with torch.no_grad():
        conv.bias.normal_()
        lift.bias.normal_()
    x = torch.randn(1, 7, 4, 4, 4, dtype=torch.float64)
    r = torch.randn(1, 96, 4, 4, 4, dtype=torch.float64)
    q = torch.randn(1, 144, 4, 4, 4, dtype=torch.float64)
    assert max(relative_errors(lift, x, OH, FieldLayout.parse("2 vector + 1 scalar"), reg2)) <= 1e-12
    assert max(relative_errors(conv, r, OH, reg2, reg3)) <= 1e-12
    assert max(relative_errors(proj, q, OH, reg3, FieldLayout.parse("1 vector + 1 scalar"))) <= 1e-12
    up = lambda t: conv.forward_upsampled(t, upsample2(t))  # noqa: E731
    assert torch.allclose(up(r), conv(upsample2(r)), atol=1e-12)  # mixing commutes with the up-sampling
    assert max(relative_errors(up, r, OH, reg2, reg3)) <= 1e-12


def test_velocity_as_three_scalars_is_the_published_defect() -> None:
    # A lift that treats (u, v, w) as scalars is invariant-kernel-wise fine for scalars but not for vectors.
    lift = LiftConv3d(OH, FieldLayout.parse("9 scalar"), 2).double()
    x = torch.randn(1, 9, 4, 4, 4, dtype=torch.float64)
    reg = FieldLayout.parse("2 regular")
    assert max(relative_errors(lift, x, OH, FieldLayout.parse("9 scalar"), reg)) <= 1e-12
    assert max(relative_errors(lift, x, OH, VEC3, reg, elements=range(1, 48))) > 1e-2


def test_upsampler_is_equivariant_and_the_published_transposed_conv_is_not() -> None:
    x = torch.randn(1, 2, 5, 5, 5, dtype=torch.float64)
    scalars = FieldLayout.parse("2 scalar")
    assert max(relative_errors(upsample2, x, OH, scalars, scalars)) <= 1e-15
    # stride-2 transposed conv, padding 1, output padding 1, O_h-*invariant* kernel: still off by a voxel
    index, sign = spine_orbit_index(OH, FieldLayout.parse("scalar"), (3, 3, 3))
    base = torch.randn(27, dtype=torch.float64)
    kernel = (base[index] * sign).mean(0).expand(2, 1, 3, 3, 3).contiguous()  # group average: invariant

    def transposed(t: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose3d(t, kernel, stride=2, padding=1, output_padding=1, groups=2)

    assert transposed(x).shape == upsample2(x).shape
    quarter_z = OH.rotation("z", 1)
    assert relative_errors(transposed, x, OH, scalars, scalars, elements=[quarter_z])[0] > 0.1


def test_relaxed_model_breaks_symmetry_only_when_its_weights_vary() -> None:
    model = tiny("rgcnn3d")
    x = torch.randn(1, 9, 3, 3, 3)
    warmed_up(model, x)
    assert model.has_regularizer and model.equivariant_to is None
    assert float(model.regularizer().detach()) == 0.0
    layers = model.relaxed_layers()
    assert len(layers) == 1 + 8 + 1  # lift, 2 × (up-block + conv-block) × 2 convs, projection
    with torch.no_grad():
        for layer in layers:
            layer.relaxation.weights.add_(0.1 * torch.randn_like(layer.relaxation.weights))
    assert float(model.regularizer().detach()) > 0
    assert min(relative_errors(model, x, OH, VEC3, VEC1, elements=range(1, 48))) > 1e-3


def test_regularizer_has_the_known_value() -> None:
    model = tiny("rgcnn3d", filter_banks=3)
    layer = model.relaxed_layers()[3]
    with torch.no_grad():
        layer.relaxation.weights[1, 5] += 0.5  # one entry of bank 1 differs from the other 47 by 0.5
    # Σ over ordered pairs (g, h): the entry pairs with 47 others, twice (g, h) and (h, g)
    assert float(model.regularizer().detach()) == pytest.approx(2 * 47 * 0.5)
    loss = model.regularizer()
    loss.backward()
    grad = layer.relaxation.weights.grad
    assert grad[1, 5] == pytest.approx(2 * 47) and grad[0].abs().sum() == 0


@pytest.mark.parametrize("name", ["gcnn3d", "rgcnn3d"])
def test_hessian_vector_products_run_through_the_models(name: str) -> None:
    """Double backward agrees with central differences of the gradient, and the Hessian is symmetric.

    float64, a tiny ε (ReLU kinks: a larger step would cross some and the difference quotient would jump), and
    for the RGCNN relaxed weights moved off the regulariser's kink at "all equal".
    """
    model = tiny(name, hidden=1).double()
    x = torch.randn(2, 9, 2, 2, 2, dtype=torch.float64)
    y = torch.randn(2, 3, 8, 8, 8, dtype=torch.float64)
    warmed_up(model, x)
    if model.has_regularizer:
        with torch.no_grad():
            for layer in model.relaxed_layers():
                layer.relaxation.weights.add_(0.1 * torch.randn_like(layer.relaxation.weights))
    params = [p for p in model.parameters() if p.requires_grad]

    def grads(create_graph: bool = False) -> list[torch.Tensor]:
        with functional_eval(model):
            loss = F.mse_loss(model(x), y) + (1e-3 * model.regularizer() if model.has_regularizer else 0)
            return list(torch.autograd.grad(loss, params, create_graph=create_graph))

    def flat(ts) -> torch.Tensor:
        return torch.cat([t.flatten() for t in ts])

    u, v = [torch.randn_like(p) for p in params], [torch.randn_like(p) for p in params]
    g = grads(create_graph=True)
    hv = flat(torch.autograd.grad(flat(g) @ flat(v), params, retain_graph=True))  # double backward
    hu = flat(torch.autograd.grad(flat(g) @ flat(u), params))
    assert float(flat(u) @ hv) == pytest.approx(float(flat(v) @ hu), rel=1e-9)
    eps = 1e-7
    with torch.no_grad():
        for p, vi in zip(params, v, strict=True):
            p.add_(eps * vi)
    g_plus = flat(grads())
    with torch.no_grad():
        for p, vi in zip(params, v, strict=True):
            p.sub_(2 * eps * vi)
    g_minus = flat(grads())
    fd = (g_plus - g_minus) / (2 * eps)
    assert hv.abs().max() > 0
    assert torch.allclose(hv, fd, rtol=1e-4, atol=1e-5 * float(fd.abs().max())), float((hv - fd).abs().max())


def test_depthwise_convolution_is_twice_differentiable() -> None:
    x = torch.randn(2, 3, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(depthwise_conv3d(x, w), F.conv3d(x, w, padding=1, groups=3))
    assert torch.autograd.gradgradcheck(depthwise_conv3d, (x, w))


def test_filters_are_rebuilt_from_the_parameters_in_every_mode() -> None:
    model = tiny("gcnn3d")
    x = torch.randn(1, 9, 3, 3, 3)
    warmed_up(model, x)
    before = model(x)
    with torch.no_grad():
        model.blocks[0].conv1.mix.mul_(2.0)  # in-place perturbation in eval mode must take effect
    assert not torch.allclose(model(x), before)
    with functional_eval(model):
        inside = model(x)
    assert torch.equal(inside, model(x))
    clone = tiny("gcnn3d")
    load_model_state(clone, model_state(model))
    clone.eval()
    assert torch.equal(clone(x), model(x))


def test_paper_defaults_meet_the_blog_budgets() -> None:
    counts = {name: count_parameters(build_model(paper_spec(name))) for name in PAPER_HIDDEN}
    assert counts == {"cnn3d": 132_795, "gcnn3d": 120_581, "rgcnn3d": 128_770}
    for name, count in counts.items():
        assert abs(count - BLOG_BUDGETS[name]) <= 0.05 * BLOG_BUDGETS[name]
        # the registry's budget search lands on the same width
        assert fit_hidden(paper_spec(name), BLOG_BUDGETS[name])[0].hidden == PAPER_HIDDEN[name]


def test_upsample_factor_sets_the_output_grid() -> None:
    x = torch.randn(1, 9, 2, 2, 2)
    for factor, n in [(1, 2), (2, 4), (8, 16)]:
        model = tiny("gcnn3d", hidden=1, upsample_factor=factor)
        assert model(x).shape == (1, 3, n, n, n)


def test_bad_specs_and_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="filter_banks"):
        tiny("gcnn3d", filter_banks=3)
    with pytest.raises(ValueError, match="power of two"):
        tiny("cnn3d", upsample_factor=3)
    with pytest.raises(ValueError, match="'Oh' or 'O'"):
        tiny("rgcnn3d", group="C4")
    with pytest.raises(ValueError, match="filter_banks must be >= 1"):
        tiny("rgcnn3d", filter_banks=0)
    with pytest.raises(ValueError, match=r"expects \(batch, 9"):
        tiny("gcnn3d", hidden=1)(torch.zeros(1, 3, 2, 2, 2))
    with pytest.raises(ValueError, match="odd"):
        GroupConv3d(OH, 1, 1, kernel_size=4)
