"""The C4 action: group laws, exactness, the physical convention, and agreement with escnn's own action."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from equidyn.symmetry import C4, FieldLayout
from equidyn.symmetry.escnn_frame import escnn_element, escnn_field_type, from_escnn, to_escnn

G = C4()
LAYOUTS = ["scalar", "vector", "regular", "sign", "2 vector + 1 scalar + 1 regular + 1 sign"]


def test_cayley_table_is_a_group() -> None:
    table = G.cayley
    assert sorted(table[0]) == list(G.elements)  # closure, identity row
    for a, b, c in itertools.product(G.elements, repeat=3):
        assert table[table[a, b], c] == table[a, table[b, c]]
    for a in G.elements:
        assert G.compose(a, G.inverse(a)) == 0
        assert G.compose(a, 0) == a == G.compose(0, a)


@pytest.mark.parametrize("spec", LAYOUTS)
def test_action_is_a_homomorphism_and_four_quarter_turns_are_the_identity(spec: str) -> None:
    layout = FieldLayout.parse(spec)
    x = torch.randn(2, G.channels(layout), 7, 7, dtype=torch.float64)
    for a, b in itertools.product(G.elements, repeat=2):
        lhs = G.act(a, G.act(b, x, layout), layout)
        assert torch.equal(lhs, G.act(G.compose(a, b), x, layout))
    y = x
    for _ in range(4):
        y = G.act(1, y, layout)
    assert torch.equal(y, x)  # exact: index permutations and signs only
    assert torch.equal(G.act(0, x, layout), x)


def test_rotation_is_counter_clockwise_about_the_centre_in_the_physical_frame() -> None:
    n = 16
    x = torch.zeros(1, 1, n, n)
    x[0, 0, 3, 10] = 1.0  # y = 3 (row), x = 10 (column)
    y = G.act(1, x, FieldLayout.parse("scalar"))
    row, col = (int(v) for v in torch.nonzero(y[0, 0])[0])
    c = (n - 1) / 2
    # R(90°) (x, y) = (-y, x) about the centre
    assert (col, row) == (round(-(3 - c) + c), round((10 - c) + c))


def test_vector_components_rotate_with_the_positions() -> None:
    n = 8
    flow_x = torch.zeros(1, 2, n, n)
    flow_x[0, 0] = 1.0  # uniform flow along +x
    rotated = G.act(1, flow_x, FieldLayout.parse("vector"))
    assert torch.equal(rotated[0, 0], torch.zeros(n, n))
    assert torch.equal(rotated[0, 1], torch.ones(n, n))  # now along +y
    # the W22 rotation dataset's inflow/force pairs are successive quarter turns of (32, 5)/(0, 1)
    c = np.array([32.0, 32.0])
    for k, (pos, force) in enumerate([((32, 5), (0, 1)), ((59, 32), (-1, 0)), ((32, 59), (0, -1)), ((5, 32), (1, 0))]):
        assert np.allclose(G.matrix(k) @ (np.array([32, 5]) - c) + c, pos)
        assert np.allclose(G.matrix(k) @ np.array([0, 1]), force)


def test_regular_fields_shift_channels() -> None:
    x = torch.arange(4.0).view(1, 4, 1, 1).repeat(1, 1, 3, 3)
    y = G.act(1, x, FieldLayout.parse("regular"))
    assert y[0, :, 1, 1].tolist() == [3.0, 0.0, 1.0, 2.0]  # channel c moves to c + 1


@pytest.mark.parametrize("spec", LAYOUTS)
def test_escnn_frame_mapping_matches_escnn_transform(spec: str) -> None:
    from escnn import gspaces
    from escnn import nn as enn

    layout = FieldLayout.parse(spec)
    gspace = gspaces.rot2dOnR2(4)
    ftype = escnn_field_type(gspace, layout)
    x = torch.randn(2, G.channels(layout), 9, 9)
    assert torch.equal(from_escnn(to_escnn(x, layout), layout), x)
    for k in G.elements:
        ours = G.act(k, x, layout)
        theirs = enn.GeometricTensor(to_escnn(x, layout), ftype).transform(gspace.fibergroup.element(escnn_element(k)))
        assert torch.equal(from_escnn(theirs.tensor, layout), ours)


def test_layout_parsing_and_errors() -> None:
    layout = FieldLayout.parse("10 vector + 1 scalar")
    assert G.channels(layout) == 21
    assert str(layout) == "10 vector + 1 scalar"
    with pytest.raises(ValueError, match="unknown field kind"):
        FieldLayout.parse("2 tensor")
    with pytest.raises(ValueError, match="channels"):
        G.act(1, torch.zeros(1, 3, 4, 4), FieldLayout.parse("vector"))
    with pytest.raises(ValueError, match="square"):
        G.act(1, torch.zeros(1, 1, 4, 5), FieldLayout.parse("scalar"))


# -- D4: rotations and mirrors (the tutorial's Coriolis question) ---------------------------------------------------
D4_LAYOUTS = ["scalar", "vector", "sign", "2 vector + 1 scalar + 1 sign", "regular"]


def test_d4_is_a_group_containing_c4_index_by_index() -> None:
    from equidyn.symmetry import D4, group_by_name

    d4 = group_by_name("D4")
    assert isinstance(d4, D4) and d4.order == 8
    table = d4.cayley
    for a, b, c in itertools.product(d4.elements, repeat=3):
        assert table[table[a, b], c] == table[a, table[b, c]]
    for k in range(4):
        assert np.array_equal(d4.matrix(k), G.matrix(k)) and d4.sign(k) == G.sign(k)
    dets = [round(np.linalg.det(d4.matrix(g))) for g in d4.elements]
    assert dets == [1, 1, 1, 1, -1, -1, -1, -1]
    assert len({d4.matrix(g).tobytes() for g in d4.elements}) == 8


@pytest.mark.parametrize("spec", D4_LAYOUTS)
def test_d4_action_is_an_exact_homomorphism(spec: str) -> None:
    from equidyn.symmetry import D4

    d4 = D4()
    layout = FieldLayout.parse(spec)
    x = torch.randn(2, d4.channels(layout), 6, 6, dtype=torch.float64)
    for a, b in itertools.product(d4.elements, repeat=2):
        assert torch.equal(d4.act(a, d4.act(b, x, layout), layout), d4.act(d4.compose(a, b), x, layout))
    for g in range(4):
        if spec != "regular":  # regular fields differ (8 vs 4 channels); every other kind agrees with C4
            assert torch.equal(d4.act(g, x, layout), G.act(g, x, layout))
    for g in range(4, 8):  # every mirror is an involution
        assert torch.equal(d4.act(g, d4.act(g, x, layout), layout), x)


def test_d4_mirror_moves_positions_and_components_physically() -> None:
    from equidyn.symmetry import D4

    d4, n = D4(), 8
    x = torch.zeros(1, 2, n, n)
    x[0, 0, 1, 5] = 1.0  # u at (x, y) = (5, 1)
    x[0, 1, 1, 5] = 2.0  # v there
    y = d4.act(4, x, FieldLayout.parse("vector"))  # (x, y) -> (x, -y) about the centre
    assert y[0, 0, n - 2, 5] == 1.0 and y[0, 1, n - 2, 5] == -2.0
    # ⟨u′v′⟩ ~ u v: the sign field is odd under axis mirrors, even under diagonal ones
    assert d4.sign(4) == -1.0 and d4.sign(6) == -1.0 and d4.sign(5) == 1.0 and d4.sign(7) == 1.0
    for g in d4.elements:
        m = d4.matrix(g)
        uv = np.array([0.3, -1.7])
        ru, rv = m @ uv
        assert np.isclose(ru * rv, d4.sign(g) * uv[0] * uv[1]), g  # the product transforms by the character


@pytest.mark.parametrize("spec", ["scalar", "vector", "sign", "2 vector + 1 scalar + 1 sign"])
def test_d4_escnn_frame_mapping_matches_escnn_transform(spec: str) -> None:
    from escnn import nn as enn

    from equidyn.symmetry import D4
    from equidyn.symmetry.escnn_frame import d4_gspace, escnn_d4_element

    d4, gspace = D4(), d4_gspace()
    layout = FieldLayout.parse(spec)
    ftype = escnn_field_type(gspace, layout)
    x = torch.randn(2, d4.channels(layout), 9, 9)
    for g in d4.elements:
        ours = d4.act(g, x, layout)
        element = gspace.fibergroup.element(escnn_d4_element(g))
        theirs = enn.GeometricTensor(to_escnn(x, layout), ftype).transform(element)
        assert torch.allclose(from_escnn(theirs.tensor, layout), ours, atol=1e-6), g
