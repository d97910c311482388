"""Our C4 layers against e2cnn's (the peer) on the same weights.

For C4 with trivial (image) and regular (group) fields, e2cnn's R2Conv expands to a conv2d filter
bank in which the filter for rotation r is exactly rot90^r of the filter for r = 0 (and, for group
convs, that filter's rotation axis rolled by r). Loading e2cnn's r = 0 filters into our
LiftingConv / GroupConv must then give e2cnn's outputs to float precision: the two layers are the
same linear map, only parametrised differently (e2cnn: a band-limited steerable basis; ours: free
pixels). Skipped where e2cnn is not installed.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from paperlab.gcnn.layers import GroupConv, LiftingConv

e2cnn = pytest.importorskip("e2cnn")
warnings.filterwarnings("ignore", module="e2cnn")


def _setup():
    from e2cnn import gspaces
    from e2cnn import nn as enn

    r2 = gspaces.Rot2dOnR2(N=4)
    return r2, enn


def test_e2cnn_c4_filter_bank_is_our_rot90_bank_and_outputs_agree():
    torch.manual_seed(0)
    r2, enn = _setup()
    t_in = enn.FieldType(r2, [r2.trivial_repr] * 3)
    t_mid = enn.FieldType(r2, [r2.regular_repr] * 2)
    t_out = enn.FieldType(r2, [r2.regular_repr] * 3)
    lift_e = enn.R2Conv(t_in, t_mid, kernel_size=5, padding=2)
    gconv_e = enn.R2Conv(t_mid, t_out, kernel_size=5, padding=2)
    with torch.no_grad():
        lift_e.bias.normal_()
    lift_e.eval()
    gconv_e.eval()
    f1, b1 = lift_e.expand_parameters()
    f2, b2 = gconv_e.expand_parameters()
    f1 = f1.view(2, 4, 3, 5, 5)
    for r in range(4):  # the structure of e2cnn's bank: rotation r is rot90^r of rotation 0
        assert torch.allclose(f1[:, r], torch.rot90(f1[:, 0], r, (-2, -1)), atol=1e-6)

    lift, gconv = LiftingConv(3, 2, 5, 4), GroupConv(2, 3, 5, 4)
    with torch.no_grad():
        lift.weight.copy_(f1[:, 0])
        lift.bias.copy_(b1.view(2, 4)[:, 0])
        gconv.weight.copy_(f2.view(3, 4, 2, 4, 5, 5)[:, 0])
        gconv.bias.copy_(b2.view(3, 4)[:, 0])
    x = torch.randn(2, 3, 14, 14)
    with torch.no_grad():
        ours = gconv(lift(x))
        theirs = gconv_e(lift_e(enn.GeometricTensor(x, t_in))).tensor.view(2, 3, 4, 14, 14)
    assert theirs.abs().max() > 0.1
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_peer_model_is_invariant_to_90_degrees_like_ours():
    from paperlab.gcnn.model import build

    torch.manual_seed(0)
    net = build("e2c4", 1, 10, 2, [1, 1, 2], 5, [1, 2]).eval()
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(net(torch.rot90(x, 1, (-2, -1))), net(x), atol=1e-5)
