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
