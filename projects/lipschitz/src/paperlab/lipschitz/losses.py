"""Losses for Lipschitz classifiers and the margin -> certified radius link.

- Cross-entropy with a temperature (Béthune et al. 2022): ``CE(tau * f(x), y)``. For a 1-Lipschitz f
  the temperature sets the trade-off: a large tau behaves like the plain CE of an unconstrained net
  (accuracy), a small tau pushes for large margins (robustness). With an offset u (the "offset
  cross-entropy" of the certified-robustness literature, e.g. Prach & Lampert 2022): ``CE(tau * (f(x)
  - u e_y), y)``: the true logit must beat the others by u before the loss treats the point as a
  correctly classified one, so u aims the margin at a radius (u = sqrt(2) r for radius r).
- Multi-class hinge with margin m, in deel-torchlip's one-vs-all form: every logit is pushed to
  ``+m/2`` (true class) or ``-m/2`` (others), the true class weighted by (K - 1).
- hKR (Serrurier et al. 2021): ``alpha * hinge - (1 - alpha) * KR`` where the Kantorovich-Rubinstein
  term of class k is ``E[f_k | y = k] - E[f_k | y != k]`` estimated on the batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def ce_temperature(logits: torch.Tensor, y: torch.Tensor, temperature: float, offset: float = 0.0) -> torch.Tensor:
    """``CE(tau * (f - u e_y), y)``: temperature tau, offset u subtracted from the true logit."""
    if offset:
        logits = logits - offset * F.one_hot(y, logits.shape[1]).to(logits.dtype)
    return F.cross_entropy(logits * temperature, y)


def multiclass_hinge(logits: torch.Tensor, y: torch.Tensor, margin: float) -> torch.Tensor:
    """Per-sample mean over classes of relu(m/2 - s_k f_k), s_k = +1 for the true class (weight K-1)."""
    k = logits.shape[1]
    onehot = F.one_hot(y, k).to(logits.dtype)
    sign = 2 * onehot - 1
    hinge = F.relu(margin / 2 - sign * logits)
    hinge = hinge * (1 + (k - 2) * onehot)  # true class weighted by K - 1
    return hinge.mean(dim=1).mean()


def kr_multiclass(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The batch estimate of sum_k (E[f_k | y=k] - E[f_k | y!=k]) / K (a Wasserstein-1 dual lower bound per
    class when f_k is 1-Lipschitz). Classes absent from the batch contribute 0 on that side."""
    k = logits.shape[1]
    onehot = F.one_hot(y, k).to(logits.dtype)
    n_pos = onehot.sum(0)
    n_neg = logits.shape[0] - n_pos
    pos = (logits * onehot).sum(0) / n_pos.clamp_min(1)
    neg = (logits * (1 - onehot)).sum(0) / n_neg.clamp_min(1)
    return (pos - neg).mean()


def hkr(logits: torch.Tensor, y: torch.Tensor, alpha: float, margin: float) -> torch.Tensor:
    """alpha * hinge(margin) - (1 - alpha) * KR; alpha in [0, 1] (deel-torchlip's convention)."""
    return alpha * multiclass_hinge(logits, y, margin) - (1 - alpha) * kr_multiclass(logits, y)


def loss_fn(
    name: str,
    logits: torch.Tensor,
    y: torch.Tensor,
    temperature: float,
    margin: float,
    alpha: float,
    offset: float = 0.0,
):
    if name == "ce":
        return ce_temperature(logits, y, temperature, offset)
    if name == "hinge":
        return multiclass_hinge(logits, y, margin)
    if name == "hkr":
        return hkr(logits, y, alpha, margin)
    raise ValueError(f"unknown loss {name!r}")


# ---------------------------------------------------------------- certification


def margins(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """f_y - max_{j != y} f_j (negative when misclassified)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.clone()
    other.scatter_(1, y[:, None], float("-inf"))
    return true - other.max(1).values


def certified_radius(logits: torch.Tensor, y: torch.Tensor, lipschitz: float = 1.0) -> torch.Tensor:
    """For an L-Lipschitz (l2) network, no perturbation with ||delta|| < (f_y - max_j f_j) / (sqrt(2) L) can
    change the prediction: f_y - f_j is sqrt(2) L-Lipschitz ((e_y - e_j)^T J has norm <= sqrt(2) ||J||).
    Returns 0 for misclassified points."""
    if not lipschitz > 0:
        raise ValueError(f"the Lipschitz bound must be > 0, got {lipschitz}")
    return (margins(logits, y) / (math.sqrt(2) * lipschitz)).clamp_min(0)


def pairwise_certified_radius(logits: torch.Tensor, y: torch.Tensor, head: torch.Tensor, feature_bound: float):
    """A tighter certificate when the last layer is linear, f = W g + b with g L_g-Lipschitz:
    f_y - f_j is L_g ||w_y - w_j||-Lipschitz, so r = min_j (f_y - f_j) / (L_g ||w_y - w_j||). For an
    orthonormal head ||w_y - w_j|| = sqrt(2) and this is certified_radius."""
    diff_norm = torch.cdist(head, head)  # (K, K): ||w_i - w_j||
    gaps = logits.gather(1, y[:, None]) - logits  # (N, K): f_y - f_j
    scale = diff_norm[y] * feature_bound  # (N, K)
    ratio = gaps / scale.clamp_min(1e-12)
    ratio.scatter_(1, y[:, None], float("inf"))
    return ratio.min(1).values.clamp_min(0)


def certified_accuracy(radius: torch.Tensor, correct: torch.Tensor, eps: float) -> float:
    """Fraction of points that are correct with a certified radius > eps (eps = 0: clean accuracy)."""
    if eps < 0:
        raise ValueError(f"radius must be >= 0, got {eps}")
    ok = correct & (radius > eps) if eps > 0 else correct
    return ok.float().mean().item()
