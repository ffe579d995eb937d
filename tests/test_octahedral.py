"""O_h and O on cubic grids: group laws, exactness, the physical convention, and consistency with C4."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from equidyn.symmetry import C4, FieldLayout, group_by_name
from equidyn.symmetry.octahedral import Octahedral

OH = Octahedral(with_reflections=True)
CHIRAL = Octahedral(with_reflections=False)
LAYOUTS = ["scalar", "vector", "regular", "sign", "2 vector + 1 scalar + 1 regular + 1 sign"]


@pytest.mark.parametrize(("group", "order"), [(OH, 48), (CHIRAL, 24)])
def test_elements_are_the_signed_permutation_matrices(group: Octahedral, order: int) -> None:
    assert group.order == order and group.ndim == 3
    mats = [group.matrix(g) for g in group.elements]
    assert np.array_equal(mats[0], np.eye(3, dtype=np.int64))  # 0 is the identity
    assert len({m.tobytes() for m in mats}) == order  # all distinct
    for m in mats:
        assert np.array_equal(np.abs(m).sum(0), [1, 1, 1]) and np.array_equal(np.abs(m).sum(1), [1, 1, 1])
        assert np.array_equal(m @ m.T, np.eye(3))
    dets = [round(np.linalg.det(m)) for m in mats]
    assert dets.count(1) == 24 and dets.count(-1) == order - 24
    assert [group.sign(g) for g in group.elements] == dets


@pytest.mark.parametrize("group", [OH, CHIRAL])
def test_cayley_table_is_a_group(group: Octahedral) -> None:
    t = group.cayley
    for row in t:  # closure and the Latin-square property
        assert sorted(row) == list(group.elements)
    assert np.array_equal(t[0], np.arange(group.order)) and np.array_equal(t[:, 0], np.arange(group.order))
    a, b, c = np.meshgrid(*(np.arange(group.order),) * 3, indexing="ij")
    assert np.array_equal(t[t[a, b], c], t[a, t[b, c]])  # associativity, all order³ triples
    for g in group.elements:
        assert t[g, group.inverse(g)] == 0 == t[group.inverse(g), g]
        assert np.array_equal(group.matrix(group.inverse(g)), group.matrix(g).T)


def test_o_is_the_rotation_subgroup_of_oh_index_by_index() -> None:
    for g in CHIRAL.elements:
        assert np.array_equal(CHIRAL.matrix(g), OH.matrix(g))
        for h in CHIRAL.elements:
            assert CHIRAL.compose(g, h) == OH.compose(g, h)
    assert all(OH.sign(g) == -1 for g in range(24, 48))
    assert group_by_name("Oh").order == 48 and group_by_name("O").order == 24


@pytest.mark.parametrize("group", [OH, CHIRAL])
@pytest.mark.parametrize("spec", LAYOUTS)
def test_action_is_an_exact_homomorphism(group: Octahedral, spec: str) -> None:
    layout = FieldLayout.parse(spec)
    x = torch.randn(2, group.channels(layout), 3, 3, 3, dtype=torch.float64)
    assert torch.equal(group.act(0, x, layout), x)
    acted = [group.act(g, x, layout) for g in group.elements]
    for a, b in itertools.product(group.elements, repeat=2):
        # exact equality: the action is index permutations and signs only
        assert torch.equal(group.act(a, acted[b], layout), acted[group.compose(a, b)])


def test_an_indicator_lands_where_the_matrix_says() -> None:
    n = 5
    centre = (n - 1) / 2
    rng = np.random.default_rng(0)
    for g in OH.elements:
        x_, y_, z_ = (int(v) for v in rng.integers(0, n, 3))
        field = torch.zeros(1, 1, n, n, n)
        field[0, 0, z_, y_, x_] = 1.0  # tensor axes (z, y, x)
        moved = OH.act(g, field, FieldLayout.parse("scalar"))
        z2, y2, x2 = (int(v) for v in torch.nonzero(moved[0, 0])[0])
        expected = OH.matrix(g) @ (np.array([x_, y_, z_]) - centre) + centre
        assert np.array_equal([x2, y2, z2], expected), g


def test_vector_components_rotate_with_the_positions() -> None:
    n = 4
    flow_x = torch.zeros(1, 3, n, n, n)
    flow_x[0, 0] = 1.0  # uniform flow along +x
    quarter_z = OH.rotation("z", 1)
    out = OH.act(quarter_z, flow_x, FieldLayout.parse("vector"))
    assert torch.equal(out[0, 1], torch.ones(n, n, n)) and out[0, 0].abs().sum() == 0 == out[0, 2].abs().sum()
    inversion = OH.element_of(-np.eye(3, dtype=np.int64))
    assert torch.equal(OH.act(inversion, flow_x, FieldLayout.parse("vector"))[0, 0], -torch.ones(n, n, n))
    # a pseudo-scalar ("sign" field) changes sign under the inversion, a scalar does not
    s = torch.ones(1, 1, n, n, n)
    assert torch.equal(OH.act(inversion, s, FieldLayout.parse("sign")), -s)
    assert torch.equal(OH.act(inversion, s, FieldLayout.parse("scalar")), s)


def test_regular_fields_permute_channels_by_left_translation() -> None:
    x = torch.arange(48.0, dtype=torch.float64).view(1, 48, 1, 1, 1)
    for g in (1, 17, 30):
        y = OH.act(g, x, FieldLayout.parse("regular"))
        # (g·f)(h) = f(g⁻¹h): channel c moves to channel g∘c
        for c in range(48):
            assert y[0, OH.compose(g, c), 0, 0, 0] == c


@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_rotations_about_an_axis_are_cyclic_and_right_handed(axis: str) -> None:
    r = [OH.rotation(axis, k) for k in range(4)]
    assert r[0] == 0 and len(set(r)) == 4
    assert OH.compose(r[1], r[1]) == r[2] and OH.compose(r[1], r[3]) == 0
    e = np.eye(3, dtype=np.int64)
    a = "xyz".index(axis)
    # right-handed: about z, x → y; about x, y → z; about y, z → x
    assert np.array_equal(OH.matrix(r[1]) @ e[(a + 1) % 3], e[(a + 2) % 3])


def test_rotations_about_z_act_as_c4_on_every_z_slice() -> None:
    c4 = C4()
    n = 5
    scalar = torch.randn(2, 1, n, n, n, dtype=torch.float64)
    vector = torch.randn(2, 3, n, n, n, dtype=torch.float64)
    for k in range(4):
        g = OH.rotation("z", k)
        assert np.array_equal(OH.matrix(g)[:2, :2], c4.matrix(k)) and OH.matrix(g)[2, 2] == 1
        s3 = OH.act(g, scalar, FieldLayout.parse("scalar"))
        v3 = OH.act(g, vector, FieldLayout.parse("vector"))
        for z in range(n):
            assert torch.equal(s3[:, :, z], c4.act(k, scalar[:, :, z], FieldLayout.parse("scalar")))
            assert torch.equal(v3[:, :2, z], c4.act(k, vector[:, :2, z], FieldLayout.parse("vector")))
            assert torch.equal(v3[:, 2:, z], c4.act(k, vector[:, 2:, z], FieldLayout.parse("scalar")))


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="cubic"):
        OH.transform_grid(torch.zeros(1, 1, 4, 4, 5), 1)
    with pytest.raises(ValueError, match=r"elements 0\.\.23"):
        CHIRAL.matrix(24)
    with pytest.raises(ValueError, match="axis"):
        OH.rotation("w", 1)
    with pytest.raises(ValueError, match="not an element"):
        CHIRAL.element_of(-np.eye(3))
