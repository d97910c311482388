"""l2 attacks written here: FGSM (one normalised gradient step) and PGD (Madry et al. 2018) in l2,
both kept inside the [0, 1] image box. Untargeted: they ascend the cross-entropy of the logits
(a margin loss would also do; CE has useful gradients far from the boundary)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _l2_normalize(g: torch.Tensor) -> torch.Tensor:
    return g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (g.dim() - 1))


def _project(delta: torch.Tensor, eps: float) -> torch.Tensor:
    norm = delta.flatten(1).norm(dim=1).view(-1, *[1] * (delta.dim() - 1))
    return delta * torch.clamp(eps / norm.clamp_min(1e-12), max=1.0)


def _check(eps: float) -> None:
    if not eps > 0:
        raise ValueError(f"attack radius must be > 0, got {eps}")


def _grad(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, x)
    return g


def fgsm_l2(model, x: torch.Tensor, y: torch.Tensor, eps: float, box: tuple[float, float] = (0.0, 1.0)):
    _check(eps)
    return (x + eps * _l2_normalize(_grad(model, x, y))).clamp(*box).detach()


def pgd_l2(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    box: tuple[float, float] = (0.0, 1.0),
    random_start: bool = True,
    generator=None,
):
    """Projected gradient ascent on the l2 ball of radius eps (step 2.5 eps / steps, Madry et al.)."""
    _check(eps)
    alpha = 2.5 * eps / steps if step_size is None else step_size
    delta = torch.zeros_like(x)
    if random_start:
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        r = torch.rand(x.shape[0], generator=generator, dtype=x.dtype).view(-1, *[1] * (x.dim() - 1))
        delta = _l2_normalize(noise) * eps * r
    x_adv = (x + delta).clamp(*box)
    for _ in range(steps):
        g = _grad(model, x_adv, y)
        x_adv = x_adv + alpha * _l2_normalize(g)
        x_adv = (x + _project(x_adv - x, eps)).clamp(*box).detach()
    return x_adv
