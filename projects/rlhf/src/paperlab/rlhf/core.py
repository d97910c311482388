"""The equations of RLHF as pure functions on tensors (no model, no I/O). Shapes: B batch, T response tokens.

Every tensor over response tokens comes with ``mask_BxT`` (1 for a real response token, up to and including
EOS; 0 for the padding after it). Prompts are left-padded and responses right-padded; the functions here
see only the response part, aligned so that column t is the t-th generated token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


# ------------------------------------------------------------------ Bradley-Terry reward model
def bt_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(r_c - r_r), averaged: the negative log-likelihood of the Bradley-Terry model."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def bt_accuracy(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> float:
    """Fraction of pairs where the chosen answer gets the strictly higher reward (a tie counts as wrong)."""
    return (r_chosen > r_rejected).float().mean().item()


def bt_prob(r_a: torch.Tensor, r_b: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """P(a preferred over b) = sigmoid((r_a - r_b) / scale)."""
    return torch.sigmoid((r_a - r_b) / scale)


# ------------------------------------------------------------------ token log-probabilities
def logprobs_of(logits_BxTxV: torch.Tensor, tokens_BxT: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log pi(token_t | context) from the logits that predicted each token (temperature as in the rollout)."""
    logp = torch.log_softmax(logits_BxTxV.float() / temperature, dim=-1)
    return logp.gather(-1, tokens_BxT.unsqueeze(-1)).squeeze(-1)


def entropy_of(logits_BxTxV: torch.Tensor) -> torch.Tensor:
    """Per-token entropy of the categorical distribution, B x T."""
    logp = torch.log_softmax(logits_BxTxV.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp_min(1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp_min(1)


def masked_var(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased variance of the masked entries."""
    mean = masked_mean(x, mask)
    n = mask.sum().clamp_min(2)
    return ((x - mean) ** 2 * mask).sum() / (n - 1)


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over the masked entries; ``shift_mean=False`` adds the mean back (rescale only).

    Padded entries are returned as 0 so that they never leak into a later sum."""
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask


# ------------------------------------------------------------------ KL penalty and rewards
def kl_per_token(logp_BxT: torch.Tensor, ref_logp_BxT: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimates of KL(pi || ref) on tokens sampled from pi (Schulman's k1 and k3).

    k1 = log pi - log ref (unbiased, can be negative); k3 = (ratio - 1) - log ratio with ratio = ref / pi
    (unbiased, always >= 0, lower variance)."""
    log_ratio = logp_BxT - ref_logp_BxT
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r} (k1 or k3)")


def last_token_index(mask_BxT: torch.Tensor) -> torch.Tensor:
    """Index of the last real response token per row (EOS if the response has one); 0 for an empty row."""
    t = torch.arange(mask_BxT.shape[1], device=mask_BxT.device)
    return (t * mask_BxT.long()).argmax(-1)


def token_rewards(score_B: torch.Tensor, kl_BxT: torch.Tensor, mask_BxT: torch.Tensor, kl_coef: float):
    """Per-token rewards r_t = -beta * KL_t, plus the reward model's score on the last real token.

    Returns (rewards B x T, non_score_reward B x T); both are 0 on padding."""
    mask = mask_BxT.to(kl_BxT.dtype)
    non_score = -kl_coef * kl_BxT * mask
    rewards = non_score.clone()
    rows = torch.arange(len(score_B), device=score_B.device)
    rewards[rows, last_token_index(mask_BxT)] += score_B
    return rewards, non_score


# ------------------------------------------------------------------ advantages
def gae(rewards_BxT: torch.Tensor, values_BxT: torch.Tensor, mask_BxT: torch.Tensor, gamma: float, lam: float):
    """Generalised advantage estimation over response tokens; the episode ends after the last real token.

    delta_t = r_t + gamma V_{t+1} - V_t (V after the end is 0), A_t = delta_t + gamma lam A_{t+1}.
    Returns (advantages, returns = advantages + values); both are 0 on padding."""
    mask = mask_BxT.to(values_BxT.dtype)
    values = values_BxT * mask
    rewards = rewards_BxT * mask
    T = rewards.shape[1]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(T)):
        next_v = values[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_v - values[:, t]
        last = (delta + gamma * lam * last) * mask[:, t]
        adv[:, t] = last
    return adv, (adv + values) * mask


# ------------------------------------------------------------------ PPO losses
def policy_loss(logp_new, logp_old, advantages, mask, cliprange: float):
    """Clipped surrogate: mean over real tokens of max(-A r, -A clip(r, 1-eps, 1+eps)), r = pi_new / pi_old.

    Returns (loss, clip fraction, approximate KL(old || new) = mean of 0.5 (log r)^2)."""
    log_ratio = logp_new - logp_old
    ratio = log_ratio.exp()
    loss_unclipped = -advantages * ratio
    loss_clipped = -advantages * ratio.clamp(1 - cliprange, 1 + cliprange)
    loss = masked_mean(torch.maximum(loss_unclipped, loss_clipped), mask)
    clipfrac = masked_mean((loss_clipped > loss_unclipped).float(), mask)
    approx_kl = masked_mean(0.5 * log_ratio**2, mask)
    return loss, clipfrac.detach(), approx_kl.detach()


def value_loss(values_new, values_old, returns, mask, cliprange_value: float):
    """0.5 * max((V - R)^2, (clip(V, V_old +- eps) - R)^2), mean over real tokens; returns (loss, clip fraction)."""
    v_clipped = values_old + (values_new - values_old).clamp(-cliprange_value, cliprange_value)
    l1 = (values_new - returns) ** 2
    l2 = (v_clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(l1, l2), mask)
    return loss, masked_mean((l2 > l1).float(), mask).detach()


# ------------------------------------------------------------------ KL controller
class AdaptiveKLController:
    """Ziegler et al. (2019): beta <- beta (1 + clip(KL / target - 1, -0.2, 0.2) * n / horizon)."""

    def __init__(self, init_kl_coef: float, target: float, horizon: int):
        self.value, self.target, self.horizon = init_kl_coef, target, horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        if self.target <= 0:
            return  # fixed coefficient
        error = min(max(current_kl / self.target - 1, -0.2), 0.2)
        self.value *= 1 + error * n_steps / self.horizon


def best_of_n_kl(n: int) -> float:
    """KL(best-of-n || base) = log n - (n - 1) / n (Stiennon et al. 2020, appendix; exact for distinct samples)."""
    import math

    return math.log(n) - (n - 1) / n
