"""D4 (90-degree rotations and reflections): the layers satisfy f(g . x) = g . f(x) for all eight
elements, the whole D4 network is invariant to all eight, and the C4 network is not invariant to a
reflection (what the extra group elements buy)."""

from __future__ import annotations

import pytest
import torch

from paperlab.gcnn.checkpoint import load_model, make_meta, save_model
from paperlab.gcnn.config import Config
from paperlab.gcnn.dihedral import GroupGroupConv, GroupLiftingConv, act_on_group_map, regular_permutations
from paperlab.gcnn.evaluate import REFLECTION, act, equivariance_errors
from paperlab.gcnn.groups import CyclicGroup, DihedralGroup
from paperlab.gcnn.layers import GroupConv, LiftingConv
from paperlab.gcnn.model import build, build_model
from paperlab.shared.checkpoint import CheckpointError

D4 = DihedralGroup(4)
MULTS, POOLS = [1, 1, 2], [1, 2]


def _random_bn(net):
    with torch.no_grad():  # non-trivial batch-norm statistics: the invariance must not rely on zero means
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm3d | torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)


@pytest.mark.parametrize("g", D4.elements())
def test_d4_lifting_and_group_conv_are_exactly_equivariant(g):
    torch.manual_seed(0)
    lift, gconv = GroupLiftingConv(D4, 3, 4, 5), GroupGroupConv(D4, 4, 3, 3)
    x = torch.randn(2, 3, 12, 12)
    y, y_g = lift(x), lift(D4.act_on_image(g, x))
    assert torch.allclose(y_g, act_on_group_map(D4, g, y), atol=1e-5)
    z, z_g = gconv(y), gconv(y_g)
    assert torch.allclose(z_g, act_on_group_map(D4, g, z), atol=1e-5)
    assert z.abs().max() > 0.1


def test_d4_equivariance_fails_with_the_rotation_only_roll():
    """The test above can fail: treating a reflected map with C4's roll of the group axis (the index
    permutation of the wrong group) breaks it."""
    torch.manual_seed(0)
    gconv = GroupGroupConv(D4, 2, 2, 3)
    y = torch.randn(1, 2, 8, 10, 10)
    s = 4  # the reflection
    good = gconv(act_on_group_map(D4, s, y))
    assert torch.allclose(good, act_on_group_map(D4, s, gconv(y)), atol=1e-5)
    plain_flip = gconv(torch.flip(y, dims=(-1,)))  # plane mirrored, group axis untouched
    assert not torch.allclose(plain_flip, act_on_group_map(D4, s, gconv(y)), atol=1e-2)


def test_action_on_group_maps_is_a_group_action():
    f = torch.randn(1, 2, 8, 6, 6)
    for a in D4.elements():
        for b in D4.elements():
            lhs = act_on_group_map(D4, a, act_on_group_map(D4, b, f))
            assert torch.equal(lhs, act_on_group_map(D4, D4.compose(a, b), f)), (a, b)
    p = regular_permutations(D4)
    assert all(sorted(row.tolist()) == list(range(8)) for row in p)  # every row a permutation


def test_generic_layers_on_c4_equal_the_c4_layers():
    """With the cyclic group, the generic lifting/group conv are the C4 layers (same weights, same output)."""
    torch.manual_seed(0)
    c4 = CyclicGroup(4)
    lift, glift = LiftingConv(2, 3, 5, 4), GroupLiftingConv(c4, 2, 3, 5)
    conv, gconv = GroupConv(3, 2, 3, 4), GroupGroupConv(c4, 3, 2, 3)
    glift.load_state_dict(lift.state_dict())
    gconv.weight.data.copy_(conv.weight.data)
    gconv.bias.data.copy_(conv.bias.data)
    x = torch.randn(2, 2, 10, 10)
    assert torch.allclose(glift(x), lift(x), atol=1e-6)
    assert torch.allclose(gconv(lift(x)), conv(lift(x)), atol=1e-6)


def test_whole_d4_network_is_invariant_to_all_eight_elements():
    torch.manual_seed(0)
    d4, c4 = build("d4", 3, 10, 2, MULTS, 5, POOLS).eval(), build("c4", 3, 10, 2, MULTS, 5, POOLS).eval()
    _random_bn(d4)
    _random_bn(c4)
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        y = d4(x)
        for g in D4.elements():
            assert torch.allclose(d4(D4.act_on_image(g, x)), y, atol=1e-5), g
        # the C4 net is invariant to rotations, not to the mirror image
        assert not torch.allclose(c4(torch.flip(x, dims=(-1,))), c4(x), atol=1e-3)


def test_per_layer_errors_of_d4_net_at_rotation_and_reflection():
    torch.manual_seed(0)
    net = build("d4", 3, 10, 2, MULTS, 5, POOLS).double().eval()
    errs = equivariance_errors(net, "d4", torch.randn(2, 3, 16, 16, dtype=torch.float64))
    assert list(errs) == ["90.0", REFLECTION]
    assert max(max(v) for v in errs.values()) < 1e-12
    f = net.features(torch.randn(1, 3, 16, 16, dtype=torch.float64))[0]
    assert not torch.allclose(act(f, net, "d4", 0, REFLECTION), torch.flip(f, dims=(-1,)))


def test_d4_checkpoint_is_refused_as_c8(tmp_path):
    """D4 and C8 nets have identically shaped weights; only the recorded group tells them apart."""
    kw = dict(base_width=2, width_mults=[1, 2], pool_after=[1], kernel_size=3, match="width")
    cfg = Config(model="d4", **kw)
    net, c8 = build_model(cfg, 1, 4), build_model(Config(model="c8", **kw), 1, 4)
    assert {k: p.shape for k, p in net.named_parameters()} == {k: p.shape for k, p in c8.named_parameters()}
    save_model(tmp_path / "model.pt", make_meta(cfg, net, 1, 16, 4), net)
    with pytest.raises(CheckpointError, match="d4 model"):
        load_model(tmp_path / "model.pt", model="c8")
    loaded, _, _ = load_model(tmp_path / "model.pt", model="d4")
    x = torch.randn(1, 1, 16, 16)
    assert torch.allclose(loaded(x), net.eval()(x))
