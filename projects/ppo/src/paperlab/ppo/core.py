"""The mathematics of PPO and PPO-EWMA, as small pure functions and classes (tested one by one).

- :func:`gae`: generalised advantage estimation over a rollout with episode ends inside it;
- :func:`policy_loss`: the clipped surrogate, in the *decoupled* form of PPO-EWMA (behaviour policy
  for importance sampling, proximal policy for the clip); with the proximal policy equal to the
  behaviour policy it is exactly PPO's objective;
- :func:`value_loss`: squared error, optionally clipped around the old prediction;
- :class:`RunningMeanStd`, :class:`RewardScaler`: running observation / return statistics;
- :class:`EwmaModel`: the proximal policy as an exponentially weighted moving average of weights;
- :class:`EwmaMoments`: EWMA'd advantage mean/variance across iterations.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def gae(
    rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and value targets from a (T, N) rollout.

    ``dones[t]`` marks that the episode ended *at* step t (after reward ``rewards[t]``): nothing
    is bootstrapped across it. ``values[t]`` = V(s_t); ``last_value`` = V(s_T) of the state after
    the rollout. A truncated (time-limit) ending is handled by the caller, which adds
    gamma * V(final observation) to the reward of that step before calling this.

        delta_t = r_t + gamma * (1 - d_t) * V(s_{t+1}) - V(s_t)
        A_t     = delta_t + gamma * lam * (1 - d_t) * A_{t+1}
    """
    T = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    next_adv = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(T)):
        notdone = 1.0 - dones[t].to(rewards.dtype)
        delta = rewards[t] + gamma * notdone * next_value - values[t]
        next_adv = delta + gamma * lam * notdone * next_adv
        adv[t] = next_adv
        next_value = values[t]
    return adv, adv + values


def policy_loss(
    logp: torch.Tensor,
    logp_behav: torch.Tensor,
    logp_prox: torch.Tensor,
    adv: torch.Tensor,
    clip_coef: float,
    imp_samp_max: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The (decoupled) clipped surrogate, to be minimised.

        r      = pi / pi_prox                       (the ratio that is clipped)
        w      = pi_prox / pi_behav                 (importance weight for off-policy data)
        loss   = -E[ w * min(r * A, clip(r, 1 - eps, 1 + eps) * A) ]

    In the log domain as in the PPO-EWMA code, so that stale data cannot overflow. For PPO,
    ``logp_prox is logp_behav`` and w = 1. The gradient is zero for every sample whose ratio is
    outside the clip range on the side that would increase the objective.
    """
    if imp_samp_max > 0:  # cap pi / pi_behav at imp_samp_max (only extreme ratios are touched)
        logp_behav = torch.maximum(logp_behav, logp.detach() - math.log(imp_samp_max))
    logratio = logp - logp_prox
    unclipped = -adv * torch.exp(logp - logp_behav)
    clipped_logratio = torch.clamp(logratio, math.log(1.0 - clip_coef), math.log(1.0 + clip_coef))
    clipped = -adv * torch.exp(clipped_logratio + logp_prox - logp_behav)
    loss = torch.max(unclipped, clipped).mean()
    with torch.no_grad():
        ratio = logratio.exp()
        stats = {
            "approx_kl": ((ratio - 1) - logratio).mean(),  # the k3 estimator of KL(pi_prox || pi)
            "clip_frac": ((ratio - 1.0).abs() > clip_coef).float().mean(),
        }
    return loss, stats


def value_loss(
    value: torch.Tensor, old_value: torch.Tensor, target: torch.Tensor, clip_coef: float | None
) -> torch.Tensor:
    """0.5 * E[(V - target)^2], or with clipping the max of the clipped and unclipped errors."""
    unclipped = (value - target) ** 2
    if clip_coef is None:
        return 0.5 * unclipped.mean()
    clipped_value = old_value + torch.clamp(value - old_value, -clip_coef, clip_coef)
    return 0.5 * torch.max(unclipped, (clipped_value - target) ** 2).mean()


class RunningMeanStd:
    """Mean and variance of a stream of batches (Chan et al.'s parallel update), in float64."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        self.mean = torch.zeros(shape, dtype=torch.float64)
        self.var = torch.ones(shape, dtype=torch.float64)
        self.count = epsilon

    def update(self, x: torch.Tensor) -> None:
        x = x.detach().to(torch.float64).reshape(-1, *self.mean.shape)
        batch_mean, batch_var, n = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * n / total
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.var = m2 / total
        self.count = total

    def normalize(self, x: torch.Tensor, clip: float) -> torch.Tensor:
        y = (x - self.mean.to(x.dtype)) / torch.sqrt(self.var.to(x.dtype) + 1e-8)
        return y.clamp(-clip, clip)

    def state_dict(self) -> dict:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, d: dict) -> None:
        self.mean, self.var, self.count = d["mean"].clone(), d["var"].clone(), float(d["count"])


class RewardScaler:
    """Divide rewards by the running std of the discounted return (gymnasium's NormalizeReward)."""

    def __init__(self, num_envs: int, gamma: float):
        self.gamma = gamma
        self.ret = torch.zeros(num_envs, dtype=torch.float64)
        self.rms = RunningMeanStd(())

    def __call__(self, reward: torch.Tensor, done: torch.Tensor, clip: float) -> torch.Tensor:
        self.ret = self.ret * self.gamma + reward.to(torch.float64)
        self.rms.update(self.ret)
        self.ret = self.ret * (1.0 - done.to(torch.float64))
        return (reward / torch.sqrt(self.rms.var.to(reward.dtype) + 1e-8)).clamp(-clip, clip)

    def state_dict(self) -> dict:
        return {"ret": self.ret, "rms": self.rms.state_dict()}

    def load_state_dict(self, d: dict) -> None:
        self.ret = d["ret"].clone()
        self.rms.load_state_dict(d["rms"])


class EwmaModel:
    """An exponentially weighted moving average of a module's weights, bias-corrected.

    After k updates with decay beta the average weighs the k+1 snapshots theta_0..theta_k with
    weights beta^(k-i) / sum_j beta^j, so it starts equal to the model (no zero-initialisation
    bias) and has an age of about beta / (1 - beta) updates once k is large. Same arithmetic as
    openai/ppo-ewma's ``EwmaModel``.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.model = copy.deepcopy(model).requires_grad_(False)
        self.decay = decay
        self.total_weight = 1.0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        new_total = self.decay * self.total_weight + 1.0
        keep = self.decay * self.total_weight / new_total
        for p_avg, p in zip(self.model.parameters(), model.parameters(), strict=True):
            p_avg.mul_(keep).add_(p.detach(), alpha=1.0 - keep)
        self.total_weight = new_total

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "total_weight": self.total_weight}

    def load_state_dict(self, d: dict) -> None:
        self.model.load_state_dict(d["model"])
        self.total_weight = float(d["total_weight"])


class EwmaMoments:
    """EWMA'd mean and variance of batches (advantage normalisation that does not depend on the
    batch size): each batch enters with weight = its count, older statistics decay by ``decay``
    per batch. With decay 0 it returns the last batch's moments."""

    def __init__(self, decay: float):
        self.decay = decay
        self.w = self.wsum = self.wsumsq = 0.0

    def update(self, x: torch.Tensor) -> tuple[float, float]:
        n = x.numel()
        mean, var = x.mean().item(), x.var(unbiased=False).item()
        self.w = self.decay * self.w + n
        self.wsum = self.decay * self.wsum + mean * n
        self.wsumsq = self.decay * self.wsumsq + n * (var + mean**2)
        m = self.wsum / self.w
        return m, max(self.wsumsq / self.w - m * m, 0.0)

    def state_dict(self) -> dict:
        return {"w": self.w, "wsum": self.wsum, "wsumsq": self.wsumsq}

    def load_state_dict(self, d: dict) -> None:
        self.w, self.wsum, self.wsumsq = d["w"], d["wsum"], d["wsumsq"]
