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

import numpy as np
import torch
from torch import nn


def gae(rewards, values, dones, last_value, gamma: float, lam: float):
    """Advantages and value targets from a (T, N) rollout (numpy arrays or torch tensors, same type out).

    ``dones[t]`` marks that the episode ended *at* step t (after reward ``rewards[t]``): nothing
    is bootstrapped across it. ``values[t]`` = V(s_t); ``last_value`` = V(s_T) of the state after
    the rollout. A truncated (time-limit) ending is handled by the caller, which adds
    gamma * V(final observation) to the reward of that step before calling this.

        delta_t = r_t + gamma * (1 - d_t) * V(s_{t+1}) - V(s_t)
        A_t     = delta_t + gamma * lam * (1 - d_t) * A_{t+1}

    The backward recursion runs in numpy: T small steps, where a torch operation costs several
    times a numpy one.
    """
    as_torch = isinstance(rewards, torch.Tensor)
    r, v, d, lv = (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
                   for x in (rewards, values, dones, last_value))  # fmt: skip
    notdone = 1.0 - d.astype(r.dtype)
    adv = np.zeros_like(r)
    next_adv = np.zeros_like(lv)
    next_value = lv
    for t in reversed(range(r.shape[0])):
        delta = r[t] + gamma * notdone[t] * next_value - v[t]
        next_adv = delta + gamma * lam * notdone[t] * next_adv
        adv[t] = next_adv
        next_value = v[t]
    ret = adv + v
    if as_torch:
        return torch.from_numpy(adv).to(rewards.device), torch.from_numpy(ret).to(rewards.device)
    return adv, ret


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


def _clip_(y: np.ndarray, clip: float) -> np.ndarray:
    """``np.clip(y, -clip, clip)`` in place, without ``np.clip``'s Python-level overhead."""
    np.minimum(y, clip, out=y)
    return np.maximum(y, -clip, out=y)


def _np64(x) -> np.ndarray:
    """A float64 numpy copy of an array or tensor (checkpoints of older runs hold torch tensors)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.array(x, dtype=np.float64)


class RunningMeanStd:
    """Mean and variance of a stream of batches (Chan et al.'s parallel update), in float64.

    Numpy on the host: the rollout updates it once per environment step with a handful of values,
    where a numpy operation costs a fraction of a torch one.
    """

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = epsilon

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64).reshape(-1, *self.mean.shape)
        n = x.shape[0]
        total = self.count + n
        if n == 1:  # one env: the batch is a single value, its variance 0 (the rollout's common case)
            delta = x[0] - self.mean
            m2 = self.var * self.count + delta * delta * (self.count / total)
        else:
            delta = x.mean(0) - self.mean
            m2 = self.var * self.count + x.var(0) * n + delta * delta * (self.count * n / total)
        self.mean = self.mean + delta * (n / total)
        self.var = m2 / total
        self.count = total

    def normalize(self, x: np.ndarray, clip: float) -> np.ndarray:
        """float32 ``(x - mean) / sqrt(var + 1e-8)`` clipped to [-clip, clip]."""
        x = np.asarray(x, dtype=np.float32)
        y = (x - self.mean.astype(np.float32)) / np.sqrt(self.var.astype(np.float32) + np.float32(1e-8))
        return _clip_(y, clip)

    def state_dict(self) -> dict:
        return {
            "mean": torch.tensor(np.asarray(self.mean)),
            "var": torch.tensor(np.asarray(self.var)),
            "count": float(self.count),
        }

    def load_state_dict(self, d: dict) -> None:
        self.mean, self.var, self.count = _np64(d["mean"]), _np64(d["var"]), float(d["count"])


class RewardScaler:
    """Divide rewards by the running std of the discounted return (gymnasium's NormalizeReward)."""

    def __init__(self, num_envs: int, gamma: float):
        self.gamma = gamma
        self.ret = np.zeros(num_envs, dtype=np.float64)
        self.rms = RunningMeanStd(())

    def __call__(self, reward: np.ndarray, done: np.ndarray, clip: float) -> np.ndarray:
        self.ret = self.ret * self.gamma + reward
        self.rms.update(self.ret)
        self.ret[done] = 0.0
        scaled = (reward / np.sqrt(np.float32(self.rms.var) + np.float32(1e-8))).astype(np.float32)
        return _clip_(scaled, clip)

    def state_dict(self) -> dict:
        return {"ret": torch.tensor(self.ret), "rms": self.rms.state_dict()}

    def load_state_dict(self, d: dict) -> None:
        self.ret = _np64(d["ret"])
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
