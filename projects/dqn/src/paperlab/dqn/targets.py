"""Regression targets of the Q-learning update, as pure functions of Q-values.

Shapes: B is the batch, A the number of actions. ``terminated`` is 1.0 where s' is terminal.
"""

from __future__ import annotations

import torch


def dqn_target(rewards_B, terminated_B, gamma: float, q_next_target_BxA, q_next_online_BxA=None):
    """y = r + gamma (1 - done) Q_target(s', a*)  with a* = argmax_a Q_target(s', a) (DQN), or
    a* = argmax_a Q_online(s', a) when the online values are given (Double DQN, van Hasselt 2016)."""
    if q_next_online_BxA is None:
        next_value_B = q_next_target_BxA.max(dim=1).values
    else:
        a_star_B = q_next_online_BxA.argmax(dim=1, keepdim=True)
        next_value_B = q_next_target_BxA.gather(1, a_star_B).squeeze(1)
    return rewards_B + gamma * (1.0 - terminated_B) * next_value_B


def munchausen_target(
    rewards_B,
    terminated_B,
    actions_B,
    gamma: float,
    q_target_BxA,
    q_next_target_BxA,
    alpha: float = 0.9,
    tau: float = 0.03,
    l0: float = -1.0,
):
    """The Munchausen-DQN target (Vieillard et al. 2020, eq. 3 with the clipping of Sec. 3):

        pi = softmax(Q_target / tau)
        y  = r + alpha * clip(tau * log pi(a|s), l0, 0)
               + gamma (1 - done) * sum_a' pi(a'|s') [Q_target(s', a') - tau * log pi(a'|s')]

    ``log_softmax`` keeps ``tau * log pi`` exact even where pi underflows to 0.
    """
    log_pi_BxA = torch.log_softmax(q_target_BxA / tau, dim=1)
    bonus_B = alpha * (tau * log_pi_BxA.gather(1, actions_B.long().unsqueeze(1)).squeeze(1)).clamp(l0, 0.0)
    log_pi_next_BxA = torch.log_softmax(q_next_target_BxA / tau, dim=1)
    pi_next_BxA = log_pi_next_BxA.exp()
    soft_value_B = (pi_next_BxA * (q_next_target_BxA - tau * log_pi_next_BxA)).sum(dim=1)
    return rewards_B + bonus_B + gamma * (1.0 - terminated_B) * soft_value_B


def linear_epsilon(step: int, start: float, end: float, decay_steps: int) -> float:
    """Linear decay from ``start`` at step 0 to ``end`` at ``decay_steps``, then constant."""
    if decay_steps <= 0:
        return end
    frac = min(max(step, 0) / decay_steps, 1.0)
    return start + frac * (end - start)
