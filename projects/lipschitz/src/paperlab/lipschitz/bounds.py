"""Measuring Lipschitz constants of trained networks, independently of how the layers normalise.

- Upper bound: the product over layers of each layer's l2 operator norm. An affine layer g(x) = Ax + b
  is measured by power iteration on its *function* with autograd (A v = g(v) - g(0), A^T u = the
  gradient of <g(x), u>), so nothing of the layer's own normalisation code is trusted. Activations
  and pools count 1 only when they are known 1-Lipschitz maps; anything else is refused.
- Lower bound: ``max_x ||J_f(x)||_2`` over test points (exact per point, from the full 10 x d Jacobian):
  the constant can be no smaller than any local slope.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from paperlab.lipschitz.layers import CenterInput, Flatten, FullSort, GroupSort, L2NormPool2d, ScaledAvgPool2d

ONE_LIPSCHITZ = (CenterInput, Flatten, GroupSort, FullSort, L2NormPool2d, ScaledAvgPool2d, nn.ReLU, nn.Flatten)


def _peer_one_lipschitz() -> tuple[type, ...]:
    try:
        from deel import torchlip
    except ImportError:
        return ()
    return (
        torchlip.GroupSort,
        torchlip.GroupSort2,
        torchlip.FullSort,
        torchlip.ScaledL2NormPool2d,
        torchlip.ScaledAvgPool2d,
    )


def autograd_operator_norm(fn, in_shape: tuple[int, ...], n_iter: int = 300, seed: int = 0, tol: float = 1e-7) -> float:
    """||A||_2 of the affine map fn(x) = A x + b on inputs of shape in_shape (without batch), by power
    iteration on A^T A through autograd."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(1, *in_shape, generator=g)
    v = v / v.norm()
    with torch.no_grad():
        zero = fn(torch.zeros(1, *in_shape))
    sigma = 0.0
    for _ in range(n_iter):
        x = v.clone().requires_grad_(True)
        out = fn(x) - zero  # A v
        new_sigma = out.norm().item()
        (w,) = torch.autograd.grad(out, x, grad_outputs=out)  # A^T A v
        v = (w / w.norm().clamp_min(1e-30)).detach()
        if abs(new_sigma - sigma) <= tol * max(new_sigma, 1e-12):
            sigma = new_sigma
            break
        sigma = new_sigma
    return sigma


def layer_norms(model: nn.Sequential, in_shape=(3, 32, 32), n_iter: int = 300) -> list[tuple[str, float]]:
    """(layer name, operator-norm bound) for every layer of a sequential model, in eval mode."""
    model.eval()
    shapes: list[tuple[int, ...]] = []
    hooks = [m.register_forward_pre_hook(lambda m, a: shapes.append(tuple(a[0].shape[1:]))) for m in model]
    with torch.no_grad():
        model(torch.zeros(1, *in_shape))
    for h in hooks:
        h.remove()
    known = ONE_LIPSCHITZ + _peer_one_lipschitz()
    out = []
    for (i, layer), shape in zip(enumerate(model), shapes, strict=True):
        name = f"{i}:{type(layer).__name__}"
        if isinstance(layer, known) or type(layer).__name__ == "_Center":
            out.append((name, 1.0))
        elif isinstance(layer, nn.Conv2d | nn.Linear) or hasattr(layer, "weight"):
            out.append((name, autograd_operator_norm(layer, shape, n_iter=n_iter)))
        else:
            raise ValueError(f"layer {name} has no known Lipschitz bound")
    return out


def upper_bound(model: nn.Sequential, in_shape=(3, 32, 32)) -> tuple[float, float, list[tuple[str, float]]]:
    """(bound of the whole net, bound of the net without its last layer, per-layer norms)."""
    norms = layer_norms(model, in_shape)
    total = math.prod(v for _, v in norms)
    features = math.prod(v for _, v in norms[:-1])
    return total, features, norms


def jacobian_lower_bound(model: nn.Module, x: torch.Tensor, chunk: int = 50) -> float:
    """max over the rows of x of the spectral norm of the Jacobian of the logits (10 x d, exact SVD)."""
    model.eval()
    best = 0.0
    for start in range(0, len(x), chunk):
        xb = x[start : start + chunk].clone().requires_grad_(True)
        logits = model(xb)
        rows = []
        for k in range(logits.shape[1]):
            (g,) = torch.autograd.grad(logits[:, k].sum(), xb, retain_graph=True)
            rows.append(g.flatten(1))
        jac = torch.stack(rows, dim=1)  # (B, 10, d)
        best = max(best, torch.linalg.matrix_norm(jac, ord=2).max().item())
    return best
