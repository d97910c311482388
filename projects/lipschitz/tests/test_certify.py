"""Losses by hand, the certified radius against brute force, and attacks against the certificate."""

import math

import pytest
import torch
import torch.nn.functional as F

from paperlab.lipschitz.attacks import fgsm_l2, pgd_l2
from paperlab.lipschitz.layers import BjorckLinear, GroupSort
from paperlab.lipschitz.losses import (
    ce_temperature,
    certified_accuracy,
    certified_radius,
    hkr,
    kr_multiclass,
    margins,
    multiclass_hinge,
    pairwise_certified_radius,
)
from paperlab.lipschitz.model import LipschitzSequential


def test_hkr_by_hand():
    logits = torch.tensor([[0.5, -0.2, 0.1], [0.0, 0.3, -0.4], [0.2, 0.1, 0.6], [-0.1, 0.4, 0.0]])
    y = torch.tensor([0, 1, 2, 1])
    m, alpha = 0.4, 0.9
    # hinge: relu(m/2 - s f), true class weighted by K - 1 = 2, mean over classes then batch
    rows = [
        (2 * max(0, 0.2 - 0.5) + max(0, 0.2 - 0.2) + max(0, 0.2 + 0.1)) / 3,
        (max(0, 0.2 + 0.0) + 2 * max(0, 0.2 - 0.3) + max(0, 0.2 - 0.4)) / 3,
        (max(0, 0.2 + 0.2) + max(0, 0.2 + 0.1) + 2 * max(0, 0.2 - 0.6)) / 3,
        (max(0, 0.2 - 0.1) + 2 * max(0, 0.2 - 0.4) + max(0, 0.2 + 0.0)) / 3,
    ]
    hinge = sum(rows) / 4
    # KR per class: mean of f_k over y = k minus mean over y != k
    kr0 = 0.5 - (0.0 + 0.2 - 0.1) / 3
    kr1 = (0.3 + 0.4) / 2 - (-0.2 + 0.1) / 2
    kr2 = 0.6 - (0.1 - 0.4 + 0.0) / 3
    kr = (kr0 + kr1 + kr2) / 3
    assert multiclass_hinge(logits, y, m).item() == pytest.approx(hinge, abs=1e-6)
    assert kr_multiclass(logits, y).item() == pytest.approx(kr, abs=1e-6)
    assert hkr(logits, y, alpha, m).item() == pytest.approx(alpha * hinge - (1 - alpha) * kr, abs=1e-6)


def test_hkr_matches_deel_torchlip():
    functional = pytest.importorskip("deel.torchlip.functional")
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(64, 10, generator=g), torch.randint(0, 10, (64,), generator=g)
    theirs = functional.hkr_multiclass_loss(logits, F.one_hot(y, 10).float(), alpha=0.98, min_margin=0.5).mean()
    assert hkr(logits, y, 0.98, 0.5).item() == pytest.approx(theirs.item(), rel=1e-5)


def test_ce_temperature():
    logits, y = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    assert ce_temperature(logits, y, 3.0).item() == pytest.approx(math.log(1 + math.exp(-3.0)))
    # offset u = 0.4 on the true logit: the margin 1.0 counts as 0.6 -> log(1 + exp(-3 * 0.6))
    assert ce_temperature(logits, y, 3.0, offset=0.4).item() == pytest.approx(math.log(1 + math.exp(-1.8)))
    # the offset only moves the true class: a misclassified point is pushed harder, never rewarded
    wrong = torch.tensor([1])
    assert ce_temperature(logits, wrong, 3.0, offset=0.4).item() == pytest.approx(math.log(1 + math.exp(4.2)))


def _toy_net(seed: int) -> LipschitzSequential:
    torch.manual_seed(seed)
    net = LipschitzSequential(
        BjorckLinear(2, 16), GroupSort(2), BjorckLinear(16, 16), GroupSort(2), BjorckLinear(16, 3)
    )
    for p in net.parameters():
        p.data.add_(torch.randn_like(p))
    return net.eval()


def _brute_force_distance(net, x: torch.Tensor, label: int, r_max: float = 3.0) -> float:
    """Smallest distance to a point of another class, on a fine polar grid around x."""
    radii = torch.linspace(1e-3, r_max, 1500)
    angles = torch.linspace(0, 2 * math.pi, 720)
    pts = x + radii[:, None, None] * torch.stack((angles.cos(), angles.sin()), 1)[None]
    with torch.no_grad():
        pred = net(pts.reshape(-1, 2)).argmax(1).reshape(len(radii), len(angles))
    flipped = (pred != label).any(1)
    return radii[flipped.nonzero()[0, 0]].item() if flipped.any() else float("inf")


def test_certified_radius_vs_brute_force_2d():
    net = _toy_net(0)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(12, 2, generator=g) * 4 - 2
    with torch.no_grad():
        logits = net(x)
    y = logits.argmax(1)
    radius = certified_radius(logits, y)  # the network is 1-Lipschitz
    for i in range(len(x)):
        distance = _brute_force_distance(net, x[i], y[i].item())
        assert radius[i].item() <= distance + 3e-3  # never certifies past the true boundary


def test_certificate_is_tight_for_an_orthonormal_linear_net():
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    x, y = torch.tensor([[0.3, -0.1]]), torch.tensor([0])
    logits = x @ w.t()
    r = certified_radius(logits, y).item()
    assert r == pytest.approx(0.4 / math.sqrt(2))  # distance to the line x1 = x2
    assert pairwise_certified_radius(logits, y, w, 1.0).item() == pytest.approx(r)


def test_pgd_never_flips_a_certified_point_and_finds_real_flips():
    net = _toy_net(2)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(400, 2, generator=g) * 4 - 2
    with torch.no_grad():
        logits = net(x)
    y = logits.argmax(1)
    radius = certified_radius(logits, y)
    box = (-10.0, 10.0)
    for eps in (0.05, 0.2, 0.5):
        adv = pgd_l2(net, x, y, eps, steps=50, box=box, generator=g)
        assert ((adv - x).norm(dim=1) <= eps + 1e-5).all()
        with torch.no_grad():
            flipped = net(adv).argmax(1) != y
        assert not (flipped & (radius > eps)).any()
        adv_fgsm = fgsm_l2(net, x, y, eps, box=box)
        with torch.no_grad():
            assert not ((net(adv_fgsm).argmax(1) != y) & (radius > eps)).any()
    assert flipped.any()  # at eps = 0.5 the attack does flip uncertified points: it is not a no-op


def test_bad_radius_refused():
    x, y = torch.zeros(1, 2), torch.tensor([0])
    net = _toy_net(0)
    with pytest.raises(ValueError, match="radius"):
        pgd_l2(net, x, y, 0.0)
    with pytest.raises(ValueError, match="radius"):
        fgsm_l2(net, x, y, -1.0)
    with pytest.raises(ValueError, match="radius"):
        certified_accuracy(torch.ones(1), torch.ones(1, dtype=torch.bool), -0.1)


def test_margins():
    logits = torch.tensor([[2.0, 1.0, 0.5], [0.0, 1.0, 3.0]])
    assert margins(logits, torch.tensor([0, 1])).tolist() == [1.0, -2.0]
