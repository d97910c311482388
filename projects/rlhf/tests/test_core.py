"""The equations against hand computations: Bradley-Terry, KL penalty + EOS reward, GAE, clipped losses, whitening."""

from __future__ import annotations

import math

import pytest
import torch

from paperlab.rlhf.core import (
    AdaptiveKLController,
    best_of_n_kl,
    bt_accuracy,
    bt_loss,
    gae,
    kl_per_token,
    last_token_index,
    policy_loss,
    token_rewards,
    value_loss,
    whiten,
)


def test_bradley_terry_loss_and_accuracy_by_hand():
    rc, rr = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([1.0, 0.0, 1.0])
    # -log sigmoid(d) = log(1 + exp(-d)) for d = 1, 0, -2
    hand = (math.log1p(math.exp(-1)) + math.log(2) + math.log1p(math.exp(2))) / 3
    assert bt_loss(rc, rr).item() == pytest.approx(hand, rel=1e-6)
    assert bt_accuracy(rc, rr) == pytest.approx(1 / 3)  # the tie counts as wrong


def test_kl_penalty_and_eos_reward_placement_with_padding():
    # row 0: response of 3 tokens (the 3rd is EOS) then 2 pads; row 1: 5 tokens, truncated (no EOS)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    logp = torch.tensor([[-1.0, -2.0, -0.5, -9.0, -9.0], [-1.0, -1.0, -1.0, -1.0, -1.0]])
    ref = torch.tensor([[-1.5, -1.0, -0.5, -1.0, -1.0], [-2.0, -1.0, -3.0, -1.0, -0.5]])
    kl = kl_per_token(logp, ref, "k1") * mask
    assert kl.tolist() == [[0.5, -1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 2.0, 0.0, -0.5]]
    assert last_token_index(mask).tolist() == [2, 4]
    rewards, non_score = token_rewards(torch.tensor([3.0, -1.0]), kl, mask, kl_coef=0.1)
    expected = torch.tensor([[-0.05, 0.1, 3.0, 0.0, 0.0], [-0.1, 0.0, -0.2, 0.0, 0.05 - 1.0]])
    assert torch.allclose(rewards, expected)
    assert torch.allclose(non_score, -0.1 * kl)
    assert (rewards[0, 3:] == 0).all()  # nothing on padding


def test_k1_and_k3_estimate_the_same_kl():
    torch.manual_seed(0)
    p = torch.tensor([0.5, 0.3, 0.2])
    q = torch.tensor([0.2, 0.3, 0.5])
    exact = (p * (p / q).log()).sum()
    x = torch.multinomial(p, 200_000, replacement=True)
    logp, logq = p.log()[x], q.log()[x]
    k1, k3 = kl_per_token(logp, logq, "k1"), kl_per_token(logp, logq, "k3")
    assert (k3 >= 0).all() and (k1 < 0).any()
    assert k1.mean().item() == pytest.approx(exact.item(), abs=0.01)
    assert k3.mean().item() == pytest.approx(exact.item(), abs=0.01)
    with pytest.raises(ValueError, match="unknown KL estimator"):
        kl_per_token(logp, logq, "k2")


def test_gae_equals_the_direct_sum():
    torch.manual_seed(1)
    gamma, lam = 0.9, 0.8
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    r, v = torch.randn(3, 4), torch.randn(3, 4)
    adv, ret = gae(r, v, mask, gamma, lam)
    for b in range(3):
        n = int(mask[b].sum())
        vals = v[b, :n].tolist() + [0.0]  # the episode ends after the last real token
        deltas = [r[b, t].item() + gamma * vals[t + 1] - vals[t] for t in range(n)]
        for t in range(n):
            direct = sum((gamma * lam) ** k * deltas[t + k] for k in range(n - t))
            assert adv[b, t].item() == pytest.approx(direct, abs=1e-5)
            assert ret[b, t].item() == pytest.approx(direct + vals[t], abs=1e-5)
        assert (adv[b, n:] == 0).all() and (ret[b, n:] == 0).all()
    # lambda = 1, gamma = 1: the return is the plain sum of the remaining rewards
    adv1, ret1 = gae(r, v, mask, 1.0, 1.0)
    assert ret1[1, 0].item() == pytest.approx(r[1].sum().item(), abs=1e-5)


@pytest.mark.parametrize(
    "adv, ratio, clipped",
    [(1.0, 1.5, True), (1.0, 0.5, False), (-1.0, 0.5, True), (-1.0, 1.5, False)],
    ids=["A>0 r>1+eps", "A>0 r<1-eps", "A<0 r<1-eps", "A<0 r>1+eps"],
)
def test_clipped_policy_loss_four_cases(adv, ratio, clipped):
    eps = 0.2
    logp_old = torch.tensor([[0.0]])
    logp_new = torch.tensor([[math.log(ratio)]], requires_grad=True)
    a, mask = torch.tensor([[adv]]), torch.ones(1, 1)
    loss, clipfrac, _ = policy_loss(logp_new, logp_old, a, mask, eps)
    r_used = min(max(ratio, 1 - eps), 1 + eps) if clipped else ratio
    assert loss.item() == pytest.approx(-adv * r_used, rel=1e-6)
    loss.backward()
    if clipped:  # the pessimistic clipped term wins: no gradient pushes further
        assert logp_new.grad.item() == 0.0 and clipfrac.item() == 1.0
    else:
        assert logp_new.grad.item() == pytest.approx(-adv * ratio, rel=1e-5) and clipfrac.item() == 0.0


@pytest.mark.parametrize("v_new, clipped", [(0.5, True), (2.0, False), (-2.0, False), (0.1, False)])
def test_clipped_value_loss(v_new, clipped):
    v_old, ret, eps = torch.tensor([[0.0]]), torch.tensor([[1.0]]), 0.2
    v = torch.tensor([[v_new]], requires_grad=True)
    loss, frac = value_loss(v, v_old, ret, torch.ones(1, 1), eps)
    v_c = min(max(v_new, -eps), eps)
    assert loss.item() == pytest.approx(0.5 * max((v_new - 1) ** 2, (v_c - 1) ** 2))
    loss.backward()
    # v = 0.5 moved 0.5 from v_old: its clipped twin (0.2) is farther from the return and wins, no gradient
    assert (v.grad.item() == 0.0) == clipped and frac.item() == float(clipped)


def test_whitening_keeps_the_mean_and_ignores_padding():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0], [4.0, 5.0, -100.0, -100.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]).float()
    real = x[mask.bool()]
    kept = whiten(x, mask, shift_mean=False)
    assert kept[mask.bool()].mean().item() == pytest.approx(real.mean().item(), rel=1e-5)
    assert kept[mask.bool()].std().item() == pytest.approx(1.0, rel=1e-4)
    w = whiten(x, mask)
    assert w[mask.bool()].mean().item() == pytest.approx(0.0, abs=1e-6)
    assert (w[~mask.bool()] == 0).all()


def test_adaptive_kl_controller_and_best_of_n_kl():
    ctl = AdaptiveKLController(0.1, target=6.0, horizon=100)
    ctl.update(12.0, 10)  # too much KL: the coefficient grows (error clipped at +0.2)
    assert ctl.value == pytest.approx(0.1 * (1 + 0.2 * 0.1))
    ctl.update(0.0, 10)
    assert ctl.value < 0.1 * 1.02
    fixed = AdaptiveKLController(0.1, target=0.0, horizon=100)
    fixed.update(50.0, 10)
    assert fixed.value == 0.1
    assert best_of_n_kl(1) == 0.0 and best_of_n_kl(4) == pytest.approx(math.log(4) - 0.75)
