"""1-Lipschitz building blocks, written here (deel-torchlip is only the peer).

Every layer answers ``lipschitz_bound()``: an upper bound of its l2 operator norm (its Lipschitz
constant), so that the network's bound is the product of its layers' bounds
(``Lip(f o g) <= Lip(f) Lip(g)``). The bound of a linear map x -> Wx is its largest singular value
``sigma_max(W) = ||W||_2``.

- Spectral normalisation (Miyato et al. 2018): ``W / sigma(W)``; sigma by power iteration with a
  persistent vector, ``n_power`` iterations per training step, run to convergence in eval mode.
  A convolution is normalised **as an operator**: the power iteration goes through ``conv2d`` and
  its adjoint ``conv_transpose2d`` with the layer's own stride and padding on the layer's input
  size. The norm of the reshaped kernel ``W.reshape(c_out, -1)`` is not a bound: each input pixel
  is read by up to ``ceil(k/s)^2`` patches, so ``||conv||_2`` can reach ``ceil(k/s) ||W_mat||_2``.
- Björck orthogonalisation (Björck & Bowie 1971, Anil et al. 2019): scale W by (an estimate of) its
  spectral norm, then ``W <- W (1.5 I - 0.5 W^T W)`` drives every singular value to 1. For a
  convolution the reshaped kernel is orthogonalised (every patch map is an isometry, so all
  singular values of the patch map are 1), then the conv operator is divided by its operator norm
  (power iteration as above): the result is exactly 1-Lipschitz.
- GroupSort / FullSort (Anil et al. 2019): sort within groups; a permutation of the input, so the
  Jacobian is a permutation matrix: 1-Lipschitz and gradient-norm preserving.
- l2-norm pooling (non-overlapping windows) and scaled average pooling ``k * avgpool_k`` (the
  average of k^2 numbers has norm 1/k).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- operator norms (pure functions)


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm().clamp_min(1e-12)


def dense_power_iteration(weight: torch.Tensor, u: torch.Tensor, n_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_iter`` steps of u <- W W^T u (normalised); returns (sigma, u) with sigma = ||W^T u|| (a lower
    bound of ||W||_2 that converges to it). ``u`` has shape (out,)."""
    with torch.no_grad():
        for _ in range(n_iter):
            u = _normalize(weight @ _normalize(weight.t() @ u))
    v = _normalize(weight.t() @ u).detach()
    sigma = torch.dot(u.detach(), weight @ v)  # differentiable in weight, as in Miyato et al.
    return sigma, u.detach()


def conv_power_iteration(
    weight: torch.Tensor, v: torch.Tensor, stride: int, padding: int, n_iter: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Power iteration on the convolution **operator** A: x -> conv2d(x, W) with the layer's stride and
    zero padding; ``v`` is an input-shaped tensor (1, C_in, H, W). The adjoint A^T is conv_transpose2d
    (with ``output_padding`` so that it lands back on the input shape). Returns (sigma, v)."""

    def adjoint(y: torch.Tensor) -> torch.Tensor:
        out = F.conv_transpose2d(y, weight, stride=stride, padding=padding)
        dh, dw = v.shape[-2] - out.shape[-2], v.shape[-1] - out.shape[-1]
        if dh or dw:  # stride > 1 drops the last rows/columns: output_padding restores them
            out = F.conv_transpose2d(y, weight, stride=stride, padding=padding, output_padding=(dh, dw))
        return out

    with torch.no_grad():
        for _ in range(n_iter):
            v = _normalize(adjoint(F.conv2d(v, weight, stride=stride, padding=padding)))
    u = _normalize(F.conv2d(v, weight, stride=stride, padding=padding)).detach()
    sigma = (u * F.conv2d(v.detach(), weight, stride=stride, padding=padding)).sum()
    return sigma, v.detach()


def conv_operator_matrix(
    weight: torch.Tensor, in_shape: tuple[int, int, int], stride: int, padding: int
) -> torch.Tensor:
    """The convolution as an explicit matrix (out_dim, in_dim), by applying it to the basis: the exact
    reference for small inputs (its SVD gives every singular value of the zero-padded operator)."""
    n = math.prod(in_shape)
    basis = torch.eye(n, dtype=weight.dtype).reshape(n, *in_shape)
    with torch.no_grad():
        return F.conv2d(basis, weight, stride=stride, padding=padding).reshape(n, -1).t()


def conv_singular_values_fft(weight: torch.Tensor, n: int) -> torch.Tensor:
    """All singular values of the *circular* stride-1 convolution on n x n inputs (Sedghi et al. 2019):
    the 2-D DFT block-diagonalises it into n^2 matrices P(k) = sum_{a,b} W[:, :, a, b] e^{-2 pi i (k.(a,b))/n}
    of size (c_out, c_in). (conv2d is a cross-correlation; the sign of the exponent does not change the
    singular values.) Returns a flat tensor of n^2 * min(c_out, c_in) values."""
    c_out, c_in, kh, kw = weight.shape
    padded = torch.zeros(c_out, c_in, n, n, dtype=weight.dtype)
    padded[:, :, :kh, :kw] = weight.detach()
    transfer = torch.fft.fft2(padded)  # (c_out, c_in, n, n)
    blocks = transfer.permute(2, 3, 0, 1).reshape(n * n, c_out, c_in)
    return torch.linalg.svdvals(blocks).flatten()


def bjorck(weight: torch.Tensor, n_iter: int, order_scale: torch.Tensor | None = None) -> torch.Tensor:
    """Björck orthogonalisation of a (rows, cols) matrix: W <- W (1.5 I - 0.5 W^T W), after dividing by
    ``order_scale`` (an estimate of ||W||_2; converges for ||W||_2 < sqrt(3)). Uses the smaller Gram
    matrix: for a wide W the same iteration reads W <- (1.5 I - 0.5 W W^T) W."""
    w = weight if order_scale is None else weight / order_scale
    wide = w.shape[0] < w.shape[1]
    eye = torch.eye(min(w.shape), dtype=w.dtype, device=w.device)
    for _ in range(n_iter):
        if wide:
            w = (1.5 * eye - 0.5 * (w @ w.t())) @ w
        else:
            w = w @ (1.5 * eye - 0.5 * (w.t() @ w))
    return w


# ---------------------------------------------------------------- constrained layers


class LipschitzLayer(nn.Module):
    """A layer that knows an upper bound of its Lipschitz constant (l2 -> l2)."""

    def lipschitz_bound(self) -> float:  # pragma: no cover - interface
        raise NotImplementedError


class SpectralLinear(LipschitzLayer):
    """Dense layer ``x -> (W / sigma(W)) x + b``; sigma by power iteration (``n_power`` per training
    step from a persistent vector, to convergence in eval mode)."""

    def __init__(self, d_in: int, d_out: int, n_power: int = 1, eval_iters: int = 200, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in))
        nn.init.orthogonal_(self.weight)
        self.bias = nn.Parameter(torch.zeros(d_out)) if bias else None
        self.n_power, self.eval_iters = n_power, eval_iters
        self.register_buffer("u", _normalize(torch.randn(d_out)))
        self._eval_cache: tuple[int, torch.Tensor] | None = None

    def normalized_weight(self) -> torch.Tensor:
        if self.training:
            self._eval_cache = None
            sigma, u = dense_power_iteration(self.weight, self.u, self.n_power)
            self.u.copy_(u)
            return self.weight / sigma
        key = self.weight._version
        if self._eval_cache is None or self._eval_cache[0] != key:
            with torch.no_grad():
                sigma, u = dense_power_iteration(self.weight, self.u, self.eval_iters)
                self.u.copy_(u)
            self._eval_cache = (key, (self.weight / sigma).detach())
        return self._eval_cache[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.normalized_weight(), self.bias)

    def lipschitz_bound(self) -> float:
        return 1.0


class BjorckLinear(LipschitzLayer):
    """Dense layer with an orthogonalised weight: scale by sigma (power iteration), then ``n_bjorck``
    Björck steps (back-propagated through); all singular values -> 1, so the layer preserves the
    gradient norm (for out >= in) and is 1-Lipschitz. Eval mode runs more steps and caches."""

    def __init__(self, d_in: int, d_out: int, n_bjorck: int = 15, eval_bjorck: int = 50, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in))
        nn.init.orthogonal_(self.weight)
        self.bias = nn.Parameter(torch.zeros(d_out)) if bias else None
        self.n_bjorck, self.eval_bjorck = n_bjorck, eval_bjorck
        self.register_buffer("u", _normalize(torch.randn(d_out)))
        self._eval_cache: tuple[int, torch.Tensor] | None = None

    def _orthogonal(self, n_power: int, n_bjorck: int) -> torch.Tensor:
        sigma, u = dense_power_iteration(self.weight, self.u, n_power)
        self.u.copy_(u)
        return bjorck(self.weight, n_bjorck, order_scale=sigma.detach() * 1.01)  # 1.01: stay below the top

    def normalized_weight(self) -> torch.Tensor:
        if self.training:
            self._eval_cache = None
            return self._orthogonal(1, self.n_bjorck)
        key = self.weight._version
        if self._eval_cache is None or self._eval_cache[0] != key:
            with torch.no_grad():
                self._eval_cache = (key, self._orthogonal(50, self.eval_bjorck).detach())
        return self._eval_cache[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.normalized_weight(), self.bias)

    def lipschitz_bound(self) -> float:
        return 1.0


class _OperatorNormConv(LipschitzLayer):
    """A conv2d (zero padding) divided by its **operator** norm, estimated by power iteration through
    conv2d / conv_transpose2d on the layer's input size (learnt at the first forward pass)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        in_size: int,
        kernel_size: int = 3,
        stride: int = 1,
        n_power: int = 1,
        eval_iters: int = 40,
        bias: bool = True,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(c_out, c_in, kernel_size, kernel_size))
        nn.init.orthogonal_(self.weight.view(c_out, -1))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.stride, self.padding = stride, kernel_size // 2
        self.n_power, self.eval_iters = n_power, eval_iters
        # the persistent power-iteration vector lives in the layer's input space (1, c_in, H, W)
        self.register_buffer("v", _normalize(torch.randn(1, c_in, in_size, in_size)))
        self._eval_cache: tuple[int, torch.Tensor] | None = None

    def kernel(self) -> torch.Tensor:
        """The kernel before the operator normalisation (overridden by the Björck conv)."""
        return self.weight

    def normalized_kernel(self) -> torch.Tensor:
        if self.training:
            self._eval_cache = None
            k = self.kernel()
            sigma, v = conv_power_iteration(k, self.v, self.stride, self.padding, self.n_power)
            self.v = v
            return k / sigma
        key = self.weight._version
        if self._eval_cache is None or self._eval_cache[0] != key:
            with torch.no_grad():
                k = self.kernel()
                sigma, prev = None, 0.0
                for _ in range(self.eval_iters):  # blocks of 50 iterations until sigma settles (1e-7)
                    sigma, self.v = conv_power_iteration(k, self.v, self.stride, self.padding, 50)
                    if abs(sigma.item() - prev) <= 1e-7 * sigma.item():
                        break
                    prev = sigma.item()
            self._eval_cache = (key, (k / sigma).detach())
        return self._eval_cache[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != self.v.shape[1:]:
            raise ValueError(
                f"{type(self).__name__} was built for inputs {tuple(self.v.shape[1:])}, got {tuple(x.shape[1:])}"
            )
        return F.conv2d(x, self.normalized_kernel(), self.bias, stride=self.stride, padding=self.padding)

    def lipschitz_bound(self) -> float:
        return 1.0


class SpectralConv2d(_OperatorNormConv):
    """Spectral normalisation of a convolution as an operator (not of its reshaped kernel)."""


class BjorckConv2d(_OperatorNormConv):
    """Björck-orthogonalised reshaped kernel (c_out, c_in k^2), then divided by the conv operator norm.

    Why both: an orthogonal reshaped kernel makes every *patch* map an isometry, but patches overlap,
    so the operator norm lies between 1 and ceil(k/s) (the overlap factor); the operator
    normalisation brings it to exactly 1 (the rigorous a-priori alternative is to divide by ceil(k/s),
    which is what deel-torchlip's coefficient does when it is not given the input size)."""

    def __init__(self, *args, n_bjorck: int = 15, eval_bjorck: int = 50, **kwargs):
        super().__init__(*args, **kwargs)
        self.n_bjorck, self.eval_bjorck = n_bjorck, eval_bjorck
        self.register_buffer("u_mat", _normalize(torch.randn(self.weight.shape[0])))

    def kernel(self) -> torch.Tensor:
        w_mat = self.weight.reshape(self.weight.shape[0], -1)
        n_iter = self.n_bjorck if self.training else self.eval_bjorck
        sigma, u = dense_power_iteration(w_mat, self.u_mat, 1 if self.training else 50)
        self.u_mat.copy_(u)
        return bjorck(w_mat, n_iter, order_scale=sigma.detach() * 1.01).reshape(self.weight.shape)


class GroupSort(LipschitzLayer):
    """Sort each group of ``group_size`` consecutive channels (dim 1). group_size=2 is MaxMin; a
    group of all channels is FullSort. A permutation: 1-Lipschitz, gradient-norm preserving."""

    def __init__(self, group_size: int = 2):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        g = c if self.group_size == 0 else self.group_size
        if c % g:
            raise ValueError(f"GroupSort: {c} channels are not divisible by group_size={g}")
        if g == 2:  # MaxMin as (a + b)/2 +- |a - b|/2: the same values, 3x faster backward than max/min on CPU
            a, b = x.unflatten(1, (c // 2, 2)).unbind(2)
            mid, half_gap = (a + b) * 0.5, (a - b).abs() * 0.5
            return torch.stack((mid + half_gap, mid - half_gap), dim=2).flatten(1, 2)
        return x.unflatten(1, (c // g, g)).sort(dim=2, descending=True).values.flatten(1, 2)

    def lipschitz_bound(self) -> float:
        return 1.0


class FullSort(GroupSort):
    def __init__(self):
        super().__init__(group_size=0)


class L2NormPool2d(LipschitzLayer):
    """``sqrt(sum of squares)`` over non-overlapping k x k windows: 1-Lipschitz (|‖a‖ - ‖b‖| <= ‖a - b‖
    per window), and its gradient is a unit vector per window."""

    def __init__(self, kernel_size: int = 2, eps: float = 1e-8):
        super().__init__()
        self.k, self.eps = kernel_size, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(F.avg_pool2d(x * x, self.k) * (self.k * self.k) + self.eps)

    def lipschitz_bound(self) -> float:
        return 1.0


class ScaledAvgPool2d(LipschitzLayer):
    """``k * avgpool_k`` (non-overlapping): the mean of k^2 inputs has norm 1/k, so the scale k makes it
    exactly 1-Lipschitz."""

    def __init__(self, kernel_size: int = 2):
        super().__init__()
        self.k = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.k) * self.k

    def lipschitz_bound(self) -> float:
        return 1.0


class Flatten(LipschitzLayer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def lipschitz_bound(self) -> float:
        return 1.0


class CenterInput(LipschitzLayer):
    """``x - mean`` (a translation: 1-Lipschitz). No division by the std, which would multiply the
    constant by 1/std and change the radius units."""

    def __init__(self, mean: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.mean

    def lipschitz_bound(self) -> float:
        return 1.0
