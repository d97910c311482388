"""The Lipschitz layers against independent measurements (autograd power iteration on the layer's
function, the explicit operator matrix's SVD, the FFT method)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from paperlab.lipschitz.bounds import autograd_operator_norm, jacobian_lower_bound, upper_bound
from paperlab.lipschitz.config import Config
from paperlab.lipschitz.layers import (
    BjorckConv2d,
    BjorckLinear,
    FullSort,
    GroupSort,
    L2NormPool2d,
    ScaledAvgPool2d,
    SpectralConv2d,
    SpectralLinear,
    bjorck,
    conv_operator_matrix,
    conv_power_iteration,
    conv_singular_values_fft,
)
from paperlab.lipschitz.model import LipschitzSequential, build_model


def _scramble(layer: nn.Module, seed: int) -> nn.Module:
    """Replace the orthogonal initialisation by an ill-conditioned random weight, then train-mode steps
    so that the persistent vectors are warm, as in a trained layer."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * torch.rand(layer.weight.shape, generator=g))
    return layer.eval()


LAYERS = [
    ("spectral-linear", lambda: SpectralLinear(24, 16), (24,)),
    ("spectral-linear-wide", lambda: SpectralLinear(10, 30), (10,)),
    ("bjorck-linear", lambda: BjorckLinear(24, 16), (24,)),
    ("bjorck-linear-tall", lambda: BjorckLinear(10, 30), (10,)),
    ("spectral-conv", lambda: SpectralConv2d(3, 6, 8), (3, 8, 8)),
    ("spectral-conv-stride2", lambda: SpectralConv2d(4, 6, 8, stride=2), (4, 8, 8)),
    ("bjorck-conv", lambda: BjorckConv2d(3, 6, 8), (3, 8, 8)),
    ("bjorck-conv-stride2", lambda: BjorckConv2d(4, 8, 8, stride=2), (4, 8, 8)),
]


@pytest.mark.parametrize("name,make,shape", LAYERS, ids=[x[0] for x in LAYERS])
def test_layer_operator_norm_is_one(name, make, shape):
    layer = _scramble(make(), seed=len(name))
    norm = autograd_operator_norm(layer, shape, n_iter=800, tol=1e-9)
    assert norm <= 1 + 1e-3
    assert norm >= 1 - 1e-2  # spectral: divided by its exact norm; Björck: orthogonal


def test_conv_power_iteration_matches_exact_svd():
    g = torch.Generator().manual_seed(0)
    for stride, n in ((1, 6), (2, 7), (2, 6)):
        w = torch.randn(5, 3, 3, 3, generator=g, dtype=torch.float64)
        exact = torch.linalg.matrix_norm(conv_operator_matrix(w, (3, n, n), stride, 1), ord=2).item()
        v = torch.randn(1, 3, n, n, generator=g, dtype=torch.float64)
        sigma, _ = conv_power_iteration(w, v / v.norm(), stride, 1, 5000)  # top two sigmas can be close
        assert sigma.item() == pytest.approx(exact, rel=1e-6)


def test_fft_singular_values_match_circular_operator_svd():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    n = 6
    basis = torch.eye(3 * n * n, dtype=torch.float64).reshape(-1, 3, n, n)
    circ = F.conv2d(F.pad(basis, (1, 1, 1, 1), mode="circular"), w).reshape(len(basis), -1).t()
    exact = torch.linalg.svdvals(circ).sort().values
    fft = conv_singular_values_fft(w, n).sort().values
    assert torch.allclose(exact, fft, atol=1e-9)


def test_reshaped_kernel_norm_is_not_a_bound():
    """A 3x3 averaging kernel: ||W_mat||_2 = 3 but the operator reaches ~9 on a large constant image."""
    w = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    reshaped = torch.linalg.matrix_norm(w.reshape(1, -1), ord=2).item()
    operator = torch.linalg.matrix_norm(conv_operator_matrix(w, (1, 16, 16), 1, 1), ord=2).item()
    assert reshaped == pytest.approx(3.0)
    assert operator > 2.5 * reshaped  # up to k = 3 times the reshaped norm
    assert operator <= 3 * reshaped + 1e-9  # the bound ceil(k/s) ||W_mat||_2


def test_bjorck_orthogonalises():
    g = torch.Generator().manual_seed(2)
    for shape in ((20, 8), (8, 20), (12, 12)):
        w = torch.randn(shape, generator=g, dtype=torch.float64)
        q = bjorck(w, 30, order_scale=torch.linalg.matrix_norm(w, ord=2))
        assert torch.allclose(torch.linalg.svdvals(q), torch.ones(min(shape), dtype=torch.float64), atol=1e-4)


@pytest.mark.parametrize("act", [GroupSort(2), GroupSort(4), FullSort()], ids=["maxmin", "groupsort4", "fullsort"])
def test_groupsort_preserves_gradient_norm(act):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 8, 4, 4, generator=g, requires_grad=True)
    upstream = torch.randn(5, 8, 4, 4, generator=g)
    (grad,) = torch.autograd.grad(act(x), x, upstream)
    assert torch.allclose(grad.flatten(1).norm(dim=1), upstream.flatten(1).norm(dim=1), rtol=1e-5)
    # and it sorts: each group is in descending order and holds the same values
    groups = act(x).unflatten(1, (8 // (act.group_size or 8), -1))
    assert (groups[:, :, :-1] >= groups[:, :, 1:] - 1e-6).all()


def test_pools_are_one_lipschitz():
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(2, 64, 3, 8, 8, generator=g)
    for pool in (L2NormPool2d(2), ScaledAvgPool2d(2)):
        ratio = (pool(a) - pool(b)).flatten(1).norm(dim=1) / (a - b).flatten(1).norm(dim=1)
        assert ratio.max() <= 1 + 1e-6
    assert autograd_operator_norm(ScaledAvgPool2d(2), (3, 8, 8)) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("kind", ["spectral", "bjorck"])
def test_network_gradient_norm_at_most_one(kind):
    cfg = Config(model=kind, widths=[4, 8], dense=16)
    torch.manual_seed(5)
    net = build_model(cfg)
    for p in net.parameters():  # away from the orthogonal initialisation
        p.data.add_(0.3 * torch.randn_like(p))
    net.train()
    net(torch.rand(8, 3, 32, 32))  # one training-mode pass moves the persistent vectors
    net.eval()
    x = torch.rand(16, 3, 32, 32, requires_grad=True)
    for k in range(3):
        (g,) = torch.autograd.grad(net(x)[:, k].sum(), x)
        assert g.flatten(1).norm(dim=1).max() <= 1 + 1e-3
    assert jacobian_lower_bound(net, x.detach()) <= 1 + 1e-3
    total, _, _ = upper_bound(net)
    assert total <= 1 + 1e-3
    assert net.lipschitz_bound() == 1.0


def test_unboundable_layer_refused_by_name():
    with pytest.raises(ValueError, match=r"layer 1 \(BatchNorm2d\)"):
        LipschitzSequential(SpectralConv2d(3, 4, 8), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match=r"layer 0 \(Conv2d\)"):
        LipschitzSequential(nn.Conv2d(3, 4, 3))


def test_baseline_bound_is_measured_not_assumed():
    net = build_model(Config(model="baseline", widths=[4, 8], dense=16))
    total, _, norms = upper_bound(net)
    assert total == pytest.approx(math.prod(v for _, v in norms))
    assert any(abs(v - 1) > 0.05 for _, v in norms)  # unconstrained layers are not 1-Lipschitz


@pytest.mark.filterwarnings("ignore:Sequential model contains a layer")
def test_peer_model_is_measured_with_the_same_tools():
    pytest.importorskip("deel.torchlip")
    net = build_model(Config(model="torchlip", widths=[4, 8], dense=16))
    total, features, norms = upper_bound(net)
    assert features <= 1 + 1e-3  # its convolutions and dense layers are 1-Lipschitz
    assert norms[-1][0].endswith("FrobeniusLinear")  # the head is measured too (unit rows: up to sqrt(10))
    x = torch.rand(4, 3, 32, 32)
    assert jacobian_lower_bound(net, x) <= total + 1e-3
