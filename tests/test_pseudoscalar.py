"""The pseudoscalar field kind (vorticity): kept by rotations, negated by reflections, and the curl of an acted vector
field is the acted curl. Also the action about a periodic grid's node, which the exponax data use."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from equidyn.symmetry import C4, D4, FieldLayout, Octahedral
from equidyn.symmetry.escnn_frame import escnn_field_type, from_escnn, to_escnn

MIXED = ["pseudoscalar", "1 pseudoscalar + 1 vector", "2 vector + 1 pseudoscalar + 1 scalar + 1 sign"]


@pytest.mark.parametrize("group", [C4(), D4()], ids=["C4", "D4"])
@pytest.mark.parametrize("spec", MIXED)
def test_action_with_pseudoscalars_is_an_exact_homomorphism(group, spec: str) -> None:
    layout = FieldLayout.parse(spec)
    x = torch.randn(2, group.channels(layout), 6, 6, dtype=torch.float64)
    for a, b in itertools.product(group.elements, repeat=2):
        assert torch.equal(group.act(a, group.act(b, x, layout), layout), group.act(group.compose(a, b), x, layout))
        for act in (group.act, group.act_about_node):
            assert torch.equal(act(a, act(b, x, layout), layout), act(group.compose(a, b), x, layout))
    assert torch.equal(group.act(0, x, layout), x)


def test_rotations_keep_a_pseudoscalars_sign_and_reflections_flip_it() -> None:
    d4, layout = D4(), FieldLayout.parse("pseudoscalar")
    w = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    scalar = FieldLayout.parse("scalar")
    for g in d4.elements:
        moved = d4.act(g, w, scalar)  # where the values go: the same as a scalar's
        expected = -moved if d4.is_reflection(g) else moved
        assert torch.equal(d4.act(g, w, layout), expected), g
    # C4 has no reflection: a pseudoscalar is a scalar there; under O_h it is the determinant ("sign") field
    assert all(torch.equal(C4().act(k, w, layout), C4().act(k, w, scalar)) for k in range(4))
    oh = Octahedral(with_reflections=True)
    cube = torch.randn(1, 1, 4, 4, 4, dtype=torch.float64)
    for g in (0, 5, 24, 30):
        assert torch.equal(oh.act(g, cube, layout), oh.act(g, cube, FieldLayout.parse("sign")))


def periodic_curl(v: torch.Tensor) -> torch.Tensor:
    """``∂x v_y − ∂y v_x`` by central differences on a periodic grid (x: last axis, y: rows, unit spacing)."""

    def dx(f: torch.Tensor) -> torch.Tensor:
        return (torch.roll(f, -1, -1) - torch.roll(f, 1, -1)) / 2

    def dy(f: torch.Tensor) -> torch.Tensor:
        return (torch.roll(f, -1, -2) - torch.roll(f, 1, -2)) / 2

    return (dx(v[:, 1]) - dy(v[:, 0]))[:, None]


@pytest.mark.parametrize("about", ["centre", "node"])
def test_curl_of_an_acted_vector_field_is_the_pseudoscalar_action_on_the_curl(about: str) -> None:
    d4 = D4()
    vec, pseudo = FieldLayout.parse("vector"), FieldLayout.parse("pseudoscalar")
    v = torch.randn(3, 2, 10, 10, dtype=torch.float64)
    act = d4.act if about == "centre" else d4.act_about_node
    for g in d4.elements:
        lhs = periodic_curl(act(g, v, vec))
        rhs = act(g, periodic_curl(v), pseudo)
        assert torch.allclose(lhs, rhs, rtol=0, atol=1e-13), g
    # and a scalar action on the curl would be wrong under every reflection
    scalar = FieldLayout.parse("scalar")
    for g in range(4, 8):
        assert not torch.allclose(periodic_curl(d4.act(g, v, vec)), d4.act(g, periodic_curl(v), scalar))


@pytest.mark.parametrize("group", [C4(), D4()], ids=["C4", "D4"])
def test_action_about_node_turns_about_index_zero_of_a_periodic_grid(group) -> None:
    n = 6
    x = torch.randn(1, 1, n, n, dtype=torch.float64)
    layout = FieldLayout.parse("pseudoscalar")
    for g in group.elements:
        m_inv = np.round(np.linalg.inv(group.matrix(g))).astype(int)
        det = round(np.linalg.det(group.matrix(g)))
        expected = torch.empty_like(x)
        for row, col in itertools.product(range(n), repeat=2):  # p = (x, y) = (col, row)
            src_x, src_y = (m_inv @ np.array([col, row])) % n
            expected[0, 0, row, col] = det * x[0, 0, src_y, src_x]
        assert torch.equal(group.act_about_node(g, x, layout), expected), g
    # node 0 and node n/2 are the same centre on an even periodic grid; the cell centre is not
    assert not torch.equal(group.act_about_node(1, x, layout), group.act(1, x, layout))
    with pytest.raises(ValueError, match="about"):
        group.act_numpy(1, x.numpy(), layout, about="corner")


@pytest.mark.parametrize("spec", ["pseudoscalar", "1 pseudoscalar + 1 vector + 1 scalar"])
def test_pseudoscalar_matches_escnn_transform_on_c4_and_d4(spec: str) -> None:
    from escnn import gspaces
    from escnn import nn as enn

    from equidyn.symmetry.escnn_frame import d4_gspace, escnn_d4_element, escnn_element

    layout = FieldLayout.parse(spec)
    x = torch.randn(2, D4().channels(layout), 9, 9)
    for group, gspace, element in (
        (C4(), gspaces.rot2dOnR2(4), escnn_element),
        (D4(), d4_gspace(), escnn_d4_element),
    ):
        ftype = escnn_field_type(gspace, layout)
        for g in group.elements:
            theirs = enn.GeometricTensor(to_escnn(x, layout), ftype).transform(gspace.fibergroup.element(element(g)))
            assert torch.allclose(from_escnn(theirs.tensor, layout), group.act(g, x, layout), atol=1e-6), g


def test_lie_derivative_treats_a_pseudoscalar_like_a_scalar() -> None:
    from equidyn.measures.lie import generator_action, rotation_generators

    x = torch.randn(1, 1, 12, 12, dtype=torch.float64)
    jz = rotation_generators(2)["z"]
    pseudo = generator_action(x, FieldLayout.parse("pseudoscalar"), jz)
    assert torch.equal(pseudo, generator_action(x, FieldLayout.parse("scalar"), jz))


@pytest.mark.parametrize("name", ["e2cnn", "rsteer"])
def test_the_c4_models_are_exactly_equivariant_on_pseudoscalar_fields(name: str) -> None:
    """The exponax flows' fields reach the level study's models unchanged: two vorticity frames in, one out."""
    from equidyn.measures.equivariance import equivariance_error
    from equidyn.models.base import ModelSpec
    from equidyn.models.registry import build_model

    spec = ModelSpec(
        name=name,
        in_layout=FieldLayout.parse("2 pseudoscalar"),
        out_layout=FieldLayout.parse("1 pseudoscalar"),
        hidden=4,
        layers=3,
        grid=(12, 12),
        residual="linear",
        rescale=True,
    )
    model = build_model(spec).eval()
    x = torch.randn(3, 2, 12, 12)
    err = equivariance_error(model, x, C4(), spec.in_layout, spec.out_layout)
    assert err["ee_rel"] < 1e-5
