"""f(g . x) = g . f(x): lifting and group convolutions, whole networks, steerable layers, and the
translation equivariance of a plain convolution (and what breaks it)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from paperlab.gcnn.evaluate import act, equivariance_errors
from paperlab.gcnn.layers import GroupConv, LiftingConv, spatial_avg_pool
from paperlab.gcnn.model import build
from paperlab.gcnn.rotate import disk_mask, rotate_image
from paperlab.gcnn.steerable import SteerableConv, harmonic_basis, rotate_fields

MULTS, POOLS = [1, 1, 2], [1, 2]


def rot(x, k=1):
    return torch.rot90(x, k, dims=(-2, -1))


def smooth_image(b=2, c=3, size=33, seed=0):
    """Sums of Gaussian blobs: band-limited, so interpolated rotations are accurate."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    out = torch.zeros(b, c, size, size, dtype=torch.float64)
    for i in range(b):
        for j in range(c):
            for _ in range(4):
                cx, cy = (torch.rand(2, generator=g) - 0.5) * 0.8
                out[i, j] += torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.05).double()
    return out


def smooth_filters(*layers):
    """Random filters blurred by a 3x3 binomial kernel: interpolated rotation of white-noise 5x5 filters
    loses much of their energy (20-40% equivariance error, measured in the README); trained filters are
    smoother, and the tolerance below is stated for such filters."""
    blur = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    blur = (blur[:, None] * blur[None, :] / 16).view(1, 1, 3, 3)
    with torch.no_grad():
        for layer in layers:
            w = layer.weight
            flat = w.reshape(-1, 1, *w.shape[-2:])
            w.copy_(F.conv2d(flat, blur.to(w.dtype), padding=1).reshape(w.shape))


def rel_err_disc(a, b):
    m = disk_mask(a.shape[-1], dtype=a.dtype) * disk_mask(a.shape[-1] + 4, dtype=a.dtype)[2:-2, 2:-2]
    return ((a - b) * m).norm().item() / (b * m).norm().item()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_c4_lifting_and_group_conv_are_exactly_equivariant(k):
    torch.manual_seed(0)
    lift, gconv = LiftingConv(3, 4, 5, 4), GroupConv(4, 5, 3, 4)
    x = torch.randn(2, 3, 12, 12)
    y = lift(x)
    y_rot = lift(rot(x, k))
    assert torch.allclose(y_rot, torch.roll(rot(y, k), k, dims=2), atol=1e-5)
    z, z_rot = gconv(y), gconv(y_rot)
    assert torch.allclose(z_rot, torch.roll(rot(z, k), k, dims=2), atol=1e-5)
    assert z.abs().max() > 0.1  # not trivially zero


def test_group_conv_equivariance_fails_for_a_wrong_filter_bank():
    """The test above can fail: rotating without rolling the rotation axis breaks equivariance."""
    torch.manual_seed(0)
    gconv = GroupConv(2, 2, 3, 4)
    y = torch.randn(1, 2, 4, 10, 10)
    good = gconv(torch.roll(rot(y), 1, dims=2))
    bad = gconv(rot(y))  # the input acted on by the spatial rotation only
    assert torch.allclose(good, torch.roll(rot(gconv(y)), 1, dims=2), atol=1e-5)
    assert not torch.allclose(bad, torch.roll(rot(gconv(y)), 1, dims=2), atol=1e-2)


@pytest.mark.parametrize("n", [8, 16])
def test_cn_layers_exact_at_90_degrees_and_close_at_their_other_angles(n):
    torch.manual_seed(1)
    lift, gconv = LiftingConv(3, 3, 5, n).double(), GroupConv(3, 3, 5, n).double()
    smooth_filters(lift, gconv)
    x = smooth_image()
    f = gconv(lift(x))
    # 90 degrees: a quarter of the group, exact
    f90 = gconv(lift(rot(x)))
    assert torch.allclose(f90, torch.roll(rot(f), n // 4, dims=2), atol=1e-10)
    # 360/n degrees: interpolated filter and image rotation, a few per cent on smooth inputs
    a = 360.0 / n
    fa = gconv(lift(rotate_image(x, math.radians(a))))
    target = torch.roll(rotate_image(f, math.radians(a)), 1, dims=2)
    err = rel_err_disc(fa, target)
    assert err < 0.1, err
    # and the error is that of equivariance, not of a broken layer: without the roll it is large
    assert rel_err_disc(fa, rotate_image(f, math.radians(a))) > 2 * err


@pytest.mark.parametrize("model", ["c4", "c8", "c16", "so2"])
def test_whole_network_invariant_to_90_degree_rotations(model):
    torch.manual_seed(0)
    net = build(model, 3, 10, 2, MULTS, 5, POOLS).eval()
    with torch.no_grad():
        for m in net.modules():  # non-trivial batch-norm statistics
            if isinstance(m, torch.nn.BatchNorm3d | torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        x = torch.randn(3, 3, 16, 16)
        y = net(x)
        for k in (1, 2, 3):
            assert torch.allclose(net(rot(x, k)), y, atol=1e-5)


def test_plain_cnn_is_not_rotation_invariant():
    torch.manual_seed(0)
    net = build("cnn", 3, 10, 4, MULTS, 5, POOLS).eval()
    errs = equivariance_errors(net, "cnn", torch.randn(3, 3, 16, 16), angles=[90.0])["90.0"]
    assert min(errs) > 0.1, errs  # its feature maps do not rotate with the input


def test_per_layer_equivariance_errors_of_c4_net_are_zero():
    torch.manual_seed(0)
    net = build("c4", 3, 10, 2, MULTS, 5, POOLS).double().eval()
    errs = equivariance_errors(net, "c4", torch.randn(2, 3, 16, 16, dtype=torch.float64))
    assert list(errs) == ["90.0"] and max(errs["90.0"]) < 1e-12
    assert len(errs["90.0"]) == 3
    # the action on features: a wrong shift is detected
    f = net.features(torch.randn(1, 3, 16, 16, dtype=torch.float64))[0]
    assert not torch.allclose(act(f, net, "c4", 0, 90.0), rot(f))


def test_translation_equivariance_of_convolution_with_circular_padding():
    torch.manual_seed(0)
    w = torch.randn(4, 3, 5, 5)
    x = torch.randn(2, 3, 16, 16)

    def conv(z):
        return F.conv2d(F.pad(z, (2, 2, 2, 2), mode="circular"), w)

    for shift in [(1, 0), (3, -5), (7, 7)]:
        assert torch.allclose(conv(torch.roll(x, shift, (-2, -1))), torch.roll(conv(x), shift, (-2, -1)), atol=1e-5)
    # zero padding breaks it at the border (the interior still shifts with the input)
    zconv = torch.nn.functional.conv2d
    a = zconv(torch.roll(x, (3, 0), (-2, -1)), w, padding=2)
    b = torch.roll(zconv(x, w, padding=2), (3, 0), (-2, -1))
    assert not torch.allclose(a, b, atol=1e-3)
    assert torch.allclose(a[..., 6:-6, :][..., 2:-2], b[..., 6:-6, :][..., 2:-2], atol=1e-5)
    # stride 2 is equivariant only to even shifts
    s2 = lambda z: F.conv2d(F.pad(z, (2, 2, 2, 2), mode="circular"), w, stride=2)  # noqa: E731
    assert torch.allclose(s2(torch.roll(x, (2, 0), (-2, -1))), torch.roll(s2(x), (1, 0), (-2, -1)), atol=1e-5)
    assert not torch.allclose(s2(torch.roll(x, (1, 0), (-2, -1))), torch.roll(s2(x), (1, 0), (-2, -1)), atol=1e-2)


@pytest.mark.parametrize("m,n", [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 1), (0, 2)])
def test_steerable_basis_rotates_as_its_frequencies_say(m, n):
    """K(R d) = rho_n K(d) rho_m^-1: exact on the grid for 90 degrees, and each angular part has the
    angular frequency it claims (a rotation of the filter by theta multiplies it by the right phase)."""
    basis = harmonic_basis(m, n, 5)  # (nb, dn, dm, k, k)
    assert len(basis) > 0

    def rho(freq, t):
        if freq == 0:
            return torch.ones(1, 1, dtype=torch.float64)
        c, s = math.cos(freq * t), math.sin(freq * t)
        return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)

    t = math.pi / 2
    for K in basis:
        # rotating the sampled kernel: (R . K)(d) = K(R^-1 d); the constraint says rho_n K(R^-1 d) rho_m^-1 = K(d)
        rotated = torch.rot90(K, 1, dims=(-2, -1))  # K(R^-1 d) at every d
        lhs = torch.einsum("xy,yzhw,zv->xvhw", rho(n, t), rotated, rho(m, -t))
        assert torch.allclose(lhs, K, atol=1e-10)
    # bases of different (m, n) are not accidentally all satisfying every constraint
    if (m, n) == (1, 2):
        K = basis[0]
        wrong = torch.einsum("xy,yzhw,zv->xvhw", rho(1, t), torch.rot90(K, 1, dims=(-2, -1)), rho(m, -t))
        assert not torch.allclose(wrong, K, atol=1e-3)


def test_steerable_layer_equivariant_at_any_angle_up_to_discretisation():
    torch.manual_seed(0)
    in_mult, out_mult = [3], [2, 2, 2]
    conv = SteerableConv(in_mult, out_mult, 7).double()
    x = smooth_image(1, 3, 41)
    y = conv(x)
    assert torch.allclose(conv(rot(x)), rotate_fields(y, out_mult, math.pi / 2), atol=1e-10)
    errs = []
    for deg in (10, 22.5, 45, 60):
        a = math.radians(deg)
        errs.append(rel_err_disc(conv(rotate_image(x, a)), rotate_fields(y, out_mult, a)))
    assert max(errs) < 0.1, errs
    # a second layer, vector -> vector, keeps it
    conv2 = SteerableConv(out_mult, [1, 1, 1], 5).double()
    a = math.radians(30)
    err2 = rel_err_disc(conv2(conv(rotate_image(x, a))), rotate_fields(conv2(y), [1, 1, 1], a))
    assert err2 < 0.1, err2


def test_pooling_refuses_odd_sizes_and_commutes_with_rot90_on_even():
    x = torch.randn(2, 3, 4, 8, 8)
    assert torch.allclose(spatial_avg_pool(rot(x)), rot(spatial_avg_pool(x)), atol=1e-6)
    with pytest.raises(ValueError, match="odd side"):
        spatial_avg_pool(torch.randn(1, 2, 7, 7))


def test_layers_refuse_non_square_inputs():
    with pytest.raises(ValueError, match="square"):
        LiftingConv(1, 2, 3, 4)(torch.randn(1, 1, 8, 10))
    with pytest.raises(ValueError, match="square"):
        build("c4", 1, 10, 2, MULTS, 5, POOLS)(torch.randn(1, 1, 16, 12))
