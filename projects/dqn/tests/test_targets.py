"""The DQN, Double-DQN and Munchausen targets on hand-made batches, against direct computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from paperlab.dqn.targets import dqn_target, linear_epsilon, munchausen_target


def test_dqn_target_uses_max_and_masks_terminals():
    rewards = torch.tensor([1.0, 0.0, -1.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    q_next = torch.tensor([[1.0, 3.0], [10.0, 20.0], [-2.0, -5.0]])
    y = dqn_target(rewards, terminated, 0.9, q_next)
    assert torch.allclose(y, torch.tensor([1.0 + 0.9 * 3.0, 0.0, -1.0 + 0.9 * -2.0]))


def test_double_dqn_evaluates_the_online_argmax_with_the_target_net():
    rewards = torch.zeros(2)
    terminated = torch.zeros(2)
    q_next_target = torch.tensor([[1.0, 3.0], [4.0, 2.0]])
    q_next_online = torch.tensor([[5.0, 0.0], [0.0, 5.0]])  # argmax disagrees with the target net
    y = dqn_target(rewards, terminated, 1.0, q_next_target, q_next_online)
    assert y.tolist() == [1.0, 2.0]


def _munchausen_direct(r, done, a, gamma, q, q_next, alpha, tau, l0):
    """Element-by-element transcription of eq. (3) of Vieillard et al. (2020), with numpy."""
    out = []
    for i in range(len(r)):
        z = q[i] / tau
        log_pi = z - (z.max() + math.log(np.exp(z - z.max()).sum()))
        bonus = alpha * min(max(tau * log_pi[a[i]], l0), 0.0)
        zn = q_next[i] / tau
        log_pi_n = zn - (zn.max() + math.log(np.exp(zn - zn.max()).sum()))
        pi_n = np.exp(log_pi_n)
        soft_v = float((pi_n * (q_next[i] - tau * log_pi_n)).sum())
        out.append(r[i] + bonus + gamma * (1 - done[i]) * soft_v)
    return np.array(out)


def test_munchausen_target_matches_direct_computation():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(16, 4)).astype(np.float64)
    q_next = rng.normal(size=(16, 4)).astype(np.float64)
    r = rng.normal(size=16)
    done = (rng.random(16) < 0.3).astype(np.float64)
    a = rng.integers(0, 4, size=16)
    for alpha, tau, l0 in [(0.9, 0.03, -1.0), (0.9, 1.0, -1.0), (0.5, 0.3, -0.2)]:
        y = munchausen_target(
            torch.tensor(r),
            torch.tensor(done),
            torch.tensor(a),
            0.99,
            torch.tensor(q),
            torch.tensor(q_next),
            alpha,
            tau,
            l0,
        )
        assert np.allclose(y.numpy(), _munchausen_direct(r, done, a, 0.99, q, q_next, alpha, tau, l0), atol=1e-10)


def test_munchausen_log_policy_bonus_is_clipped_at_l0():
    # action 1 is far worse than action 0: tau * log pi(1|s) = -(10 - 0) = -10, clipped to l0 = -1
    q = torch.tensor([[10.0, 0.0]])
    q_next = torch.zeros(1, 2)
    y = munchausen_target(
        torch.zeros(1), torch.ones(1), torch.tensor([1]), 0.99, q, q_next, alpha=0.9, tau=1.0, l0=-1.0
    )
    assert y.item() == pytest.approx(0.9 * -1.0)
    # the greedy action gets a bonus close to 0 (log pi ~ 0), never positive
    y_greedy = munchausen_target(
        torch.zeros(1), torch.ones(1), torch.tensor([0]), 0.99, q, q_next, alpha=0.9, tau=1.0, l0=-1.0
    )
    assert -1e-3 < y_greedy.item() <= 0.0


def test_soft_value_tends_to_max_for_small_tau_and_to_logsumexp_form_for_large():
    q_next = torch.tensor([[1.0, 2.0, 4.0]])
    zeros, no_done, a = torch.zeros(1), torch.zeros(1), torch.tensor([2])
    y_small = munchausen_target(zeros, no_done, a, 1.0, q_next, q_next, alpha=0.0, tau=1e-3)
    assert y_small.item() == pytest.approx(4.0, abs=1e-3)  # soft value -> max as tau -> 0
    # for any tau, sum pi (q - tau log pi) = tau * logsumexp(q / tau)
    y = munchausen_target(zeros, no_done, a, 1.0, q_next, q_next, alpha=0.0, tau=2.0)
    assert y.item() == pytest.approx(2.0 * torch.logsumexp(q_next / 2.0, 1).item(), rel=1e-6)
    # the soft value of a terminal next state is not used
    assert munchausen_target(zeros, torch.ones(1), a, 1.0, q_next, q_next, alpha=0.0).item() == 0.0


def test_linear_epsilon_schedule():
    assert linear_epsilon(0, 1.0, 0.1, 100) == 1.0
    assert linear_epsilon(50, 1.0, 0.1, 100) == pytest.approx(0.55)
    assert linear_epsilon(100, 1.0, 0.1, 100) == pytest.approx(0.1)
    assert linear_epsilon(10_000, 1.0, 0.1, 100) == pytest.approx(0.1)
    assert linear_epsilon(5, 1.0, 0.1, 0) == 0.1
    assert linear_epsilon(3000 - 5000, 1.0, 0.1, 100) == 1.0  # before eps_decay_start (shifted step < 0)
