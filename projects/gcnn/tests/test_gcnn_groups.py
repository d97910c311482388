"""Group axioms of C_n and D_n, their representations, and the image rotations they act by."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from paperlab.gcnn.groups import CyclicGroup, DihedralGroup
from paperlab.gcnn.rotate import _interpolate, quarter_turns, rotate_image

GROUPS = [CyclicGroup(4), CyclicGroup(8), CyclicGroup(5), DihedralGroup(4), DihedralGroup(3)]


@pytest.mark.parametrize("G", GROUPS, ids=repr)
def test_group_axioms(G):
    els = G.elements()
    assert len(els) == G.order
    e = G.identity
    for a in els:
        assert G.compose(e, a) == a == G.compose(a, e)
        assert G.compose(a, G.inverse(a)) == e == G.compose(G.inverse(a), a)
        for b in els:
            assert G.compose(a, b) in els  # closure
            for c in els:
                assert G.compose(G.compose(a, b), c) == G.compose(a, G.compose(b, c))


def test_dihedral_is_not_abelian_but_cyclic_is():
    D, C = DihedralGroup(4), CyclicGroup(4)
    assert any(D.compose(a, b) != D.compose(b, a) for a, b in itertools.product(D.elements(), repeat=2))
    assert all(C.compose(a, b) == C.compose(b, a) for a, b in itertools.product(C.elements(), repeat=2))


@pytest.mark.parametrize("G", GROUPS, ids=repr)
def test_plane_and_regular_representations_are_homomorphisms(G):
    for a, b in itertools.product(G.elements(), repeat=2):
        ab = G.compose(a, b)
        assert torch.allclose(G.matrix(ab), G.matrix(a) @ G.matrix(b), atol=1e-12)
        assert torch.equal(G.regular(ab), G.regular(a) @ G.regular(b))
    for a in G.elements():  # orthogonal; rotations have det +1, reflections -1
        m = G.matrix(a)
        assert torch.allclose(m @ m.T, torch.eye(2, dtype=m.dtype), atol=1e-12)


def test_regular_action_is_a_cyclic_shift():
    G = CyclicGroup(8)
    f = torch.arange(8.0, dtype=torch.float64)
    for a in G.elements():
        assert torch.equal(G.regular(a) @ f, G.act_on_signal(a, f, 0))


@pytest.mark.parametrize("G", [CyclicGroup(4), DihedralGroup(4)], ids=repr)
def test_action_on_images_is_a_group_action_exactly(G):
    x = torch.randn(2, 3, 9, 9)
    for a, b in itertools.product(G.elements(), repeat=2):
        assert torch.equal(G.act_on_image(a, G.act_on_image(b, x)), G.act_on_image(G.compose(a, b), x))


def test_image_rotation_matches_the_plane_action():
    """A point mass at (x, y) (x right, y up) goes to matrix @ (x, y)."""
    G = CyclicGroup(4)
    img = torch.zeros(7, 7)
    img[3 - 1, 3 + 2] = 1.0  # x = 2, y = 1
    for a in G.elements():
        out = G.act_on_image(a, img)
        r, c = (out == 1).nonzero()[0].tolist()
        x, y = (G.matrix(a) @ torch.tensor([2.0, 1.0], dtype=torch.float64)).round().tolist()
        assert (c - 3, 3 - r) == (x, y)


def test_interpolated_rotation_agrees_with_rot90():
    x = torch.randn(2, 3, 10, 10, dtype=torch.float64)
    assert torch.allclose(_interpolate(x, math.pi / 2, "zeros"), torch.rot90(x, 1, (-2, -1)), atol=1e-10)
    assert quarter_turns(math.pi) == (2, 0.0)
    assert quarter_turns(-math.pi / 2) == (3, 0.0)
    # rotating by 30 then by -30 degrees is close to the identity in the interior of a smooth image
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 33), torch.linspace(-1, 1, 33), indexing="ij")
    smooth = torch.exp(-((xx - 0.2) ** 2 + yy**2) * 8).double()
    back = rotate_image(rotate_image(smooth, math.radians(30)), math.radians(-30))
    assert (back - smooth).abs().max() < 0.03


def test_rotation_refuses_non_square_images():
    with pytest.raises(ValueError, match="square"):
        rotate_image(torch.zeros(1, 8, 9), 0.3)
