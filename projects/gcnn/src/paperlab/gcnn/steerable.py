"""Steerable SO(2) convolutions with a circular-harmonic filter basis (Worrall et al. 2017;
Weiler & Cesa 2019, the SO(2) case of their kernel-constraint solutions).

Feature fields. A field of angular frequency m transforms under a rotation by theta with the
irreducible representation rho_m of SO(2): rho_0(theta) = 1 (a scalar, one channel) and, for m >= 1,
rho_m(theta) = R(m theta), the 2x2 rotation by m*theta (a 2-vector, two channels). A feature map
holds ``mult[m]`` fields of each frequency m = 0..L, stored as channels (scalars first, then the
2-vectors of frequency 1, 2, ...). The group acts by  (theta . f)(p) = rho(theta) f(R_theta^-1 p).

Kernel constraint. A conv2d (cross-correlation) kernel K from frequency m to frequency n commutes
with that action iff  K(R_theta d) = rho_n(theta) K(d) rho_m(theta)^-1  for every offset d. In polar
coordinates d = (r, phi) its solutions are (J = R(pi/2), F = diag(1, -1)), times any radial profile:

    m = n = 0      : 1                                         angular frequency 0
    m = 0, n >= 1  : columns  R(n phi) e_1,  R(n phi) e_2     frequency n
    m >= 1, n = 0  : rows     e_1^T R(-m phi), e_2^T R(-m phi) frequency m
    m, n >= 1      : R((n-m) phi), R((n-m) phi) J              frequency |n - m|
                     R((n+m) phi) F, R((n+m) phi) F J          frequency n + m

Sampled on the pixel grid with Gaussian rings (radius j = 0, 1, ..., (k-1)/2, width ``sigma``) and
band-limited (angular frequency <= ``max_frequency(j)``: none but frequency 0 at the centre pixel,
where phi is undefined), the basis is equivariant up to discretisation: exactly for 90-degree steps
(the grid is symmetric under them), approximately for other angles (measured, tested).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def field_dims(mult: list[int]) -> list[tuple[int, int]]:
    """[(frequency, channels per field)] for every field of a multiplicity list, in channel order."""
    return [(m, 1 if m == 0 else 2) for m, c in enumerate(mult) for _ in range(c)]


def n_channels(mult: list[int]) -> int:
    return sum(d for _, d in field_dims(mult))


def max_frequency(ring: int) -> int:
    """Band limit of ring j: a ring of radius j has about 2*pi*j pixels, which carry angular
    frequencies up to about pi*j without aliasing; we keep well below (2j, at most 4)."""
    return 0 if ring == 0 else min(2 * ring, 4)


def _rot(t: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(t), torch.sin(t)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (..., 2, 2)


def polar_grid(kernel_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Radius and angle of every pixel offset of a k x k filter (x right, y up), float64."""
    c = (kernel_size - 1) / 2
    rows, cols = torch.meshgrid(
        torch.arange(kernel_size, dtype=torch.float64), torch.arange(kernel_size, dtype=torch.float64), indexing="ij"
    )
    x, y = cols - c, c - rows
    return torch.sqrt(x**2 + y**2), torch.atan2(y, x)


def harmonic_basis(m: int, n: int, kernel_size: int, sigma: float = 0.6) -> torch.Tensor:
    """The basis of equivariant kernels from frequency m to frequency n: (nb, d_n, d_m, k, k), float64."""
    r, phi = polar_grid(kernel_size)
    J = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    Fl = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
    angular: list[tuple[int, torch.Tensor]] = []  # (angular frequency, (d_n, d_m, k, k))
    if m == 0 and n == 0:
        angular.append((0, torch.ones(1, 1, *phi.shape, dtype=torch.float64)))
    elif m == 0:
        rot = _rot(n * phi).permute(2, 3, 0, 1)  # (2, 2, k, k)
        angular += [(n, rot[:, 0:1]), (n, rot[:, 1:2])]
    elif n == 0:
        rot = _rot(-m * phi).permute(2, 3, 0, 1)
        angular += [(m, rot[0:1, :]), (m, rot[1:2, :])]
    else:
        diff, summ = _rot((n - m) * phi), _rot((n + m) * phi)  # (k, k, 2, 2)
        for freq, mat in ((abs(n - m), diff), (abs(n - m), diff @ J), (n + m, summ @ Fl), (n + m, summ @ Fl @ J)):
            angular.append((freq, mat.permute(2, 3, 0, 1)))
    basis = []
    for ring in range((kernel_size - 1) // 2 + 1):
        radial = torch.exp(-((r - ring) ** 2) / (2 * sigma**2))
        for freq, ang in angular:
            if freq <= max_frequency(ring):
                b = ang * (radial if freq == 0 else radial * (r > 0))  # phi is undefined at the centre
                if b.norm() > 1e-8:
                    basis.append(b / b.norm())
    if not basis:
        return torch.zeros(0, 1 if n == 0 else 2, 1 if m == 0 else 2, kernel_size, kernel_size, dtype=torch.float64)
    return torch.stack(basis)


class SteerableConv(nn.Module):
    """Conv between SO(2) field types ``in_mult`` -> ``out_mult`` (multiplicity per frequency 0..L),
    filters a learned combination of :func:`harmonic_basis`; 'same' zero padding, stride 1."""

    def __init__(self, in_mult: list[int], out_mult: list[int], kernel_size: int, sigma: float = 0.6):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.in_mult, self.out_mult, self.kernel_size = list(in_mult), list(out_mult), kernel_size
        self.c_in, self.c_out = n_channels(in_mult), n_channels(out_mult)
        self.blocks: list[tuple[int, int, int, int, str]] = []  # (out start, in start, out mult, in mult, name)
        out_start = 0
        for n, cn in enumerate(out_mult):
            dn = 1 if n == 0 else 2
            in_start = 0
            for m, cm in enumerate(in_mult):
                dm = 1 if m == 0 else 2
                basis = harmonic_basis(m, n, kernel_size, sigma).float()
                if cn and cm and len(basis):
                    name = f"{m}_{n}"
                    self.register_buffer(f"basis_{name}", basis)
                    fan_in = sum(c * (1 if f == 0 else 2) for f, c in enumerate(in_mult)) * kernel_size
                    w = torch.randn(cn, cm, len(basis)) * math.sqrt(2.0 / fan_in)
                    self.register_parameter(f"weight_{name}", nn.Parameter(w))
                    self.blocks.append((out_start, in_start, cn, cm, name))
                in_start += cm * dm
            out_start += cn * dn
        # a bias only on scalar fields (a constant added to a vector field would not rotate with it)
        self.bias = nn.Parameter(torch.zeros(out_mult[0])) if out_mult[0] else None

    def kernel(self) -> torch.Tensor:
        """The full (C_out, C_in, k, k) conv2d kernel."""
        k = self.kernel_size
        ref = next(self.parameters())
        K = torch.zeros(self.c_out, self.c_in, k, k, dtype=ref.dtype, device=ref.device)
        for o0, i0, cn, cm, name in self.blocks:
            basis = getattr(self, f"basis_{name}")  # (nb, dn, dm, k, k)
            w = getattr(self, f"weight_{name}")  # (cn, cm, nb)
            blk = torch.einsum("oib,bxyhw->oxiyhw", w, basis)  # (cn, dn, cm, dm, k, k)
            dn, dm = basis.shape[1:3]
            K[o0 : o0 + cn * dn, i0 : i0 + cm * dm] = blk.reshape(cn * dn, cm * dm, k, k)
        return K

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x, self.kernel(), padding=self.kernel_size // 2)
        if self.bias is not None:
            out = torch.cat([out[:, : self.out_mult[0]] + self.bias.view(1, -1, 1, 1), out[:, self.out_mult[0] :]], 1)
        return out


def _split(x: torch.Tensor, mult: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Scalars (B, c0, H, W) and vectors (B, V, 2, H, W) of a field map."""
    c0 = mult[0]
    vec = x[:, c0:]
    return x[:, :c0], vec.reshape(x.shape[0], vec.shape[1] // 2, 2, *x.shape[-2:])


def _join(s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.cat([s, v.flatten(1, 2)], 1)


class FieldBatchNorm(nn.Module):
    """Batch norm that commutes with rotations: scalars get ordinary batch norm; each vector field is
    divided by the running root-mean-square of its norm and scaled by a learned positive factor
    (no shift, no per-component statistics: either would single out a direction)."""

    def __init__(self, mult: list[int], momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.mult, self.momentum, self.eps = list(mult), momentum, eps
        self.scalar_bn = nn.BatchNorm2d(mult[0]) if mult[0] else None
        n_vec = sum(mult[1:])
        self.log_scale = nn.Parameter(torch.zeros(n_vec))
        self.register_buffer("running_sq", torch.ones(n_vec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, v = _split(x, self.mult)
        if self.scalar_bn is not None:
            s = self.scalar_bn(s)
        if v.shape[1]:
            if self.training:
                sq = v.pow(2).sum(2).mean(dim=(0, 2, 3))
                with torch.no_grad():
                    self.running_sq.lerp_(sq.detach().float(), self.momentum)
            else:
                sq = self.running_sq
            v = v * (self.log_scale.exp() / torch.sqrt(sq + self.eps)).view(1, -1, 1, 1, 1)
        return _join(s, v)


class NormReLU(nn.Module):
    """ReLU on scalars; on each vector field v -> relu(|v| + b) v / |v| (changes only the norm, which is
    invariant, so it commutes with rotations)."""

    def __init__(self, mult: list[int], bias_init: float = -0.5):
        super().__init__()
        self.mult = list(mult)
        self.bias = nn.Parameter(torch.full((sum(mult[1:]),), bias_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, v = _split(x, self.mult)
        norm = v.pow(2).sum(2, keepdim=True).add(1e-8).sqrt()
        gain = F.relu(norm + self.bias.view(1, -1, 1, 1, 1)) / norm
        return _join(F.relu(s), v * gain)


def invariant_features(x: torch.Tensor, mult: list[int]) -> torch.Tensor:
    """(B, c0 + V, H, W): the scalars and the norms of the vector fields, all rotation invariant."""
    s, v = _split(x, mult)
    return torch.cat([s, v.pow(2).sum(2).add(1e-8).sqrt()], 1)


def rotate_fields(x: torch.Tensor, mult: list[int], angle: float) -> torch.Tensor:
    """The group action on a field map: rotate the plane and each vector field of frequency m by m*angle."""
    from paperlab.gcnn.rotate import rotate_image

    x = rotate_image(x, angle)
    parts, start = [], 0
    for m, d in field_dims(mult):
        f = x[:, start : start + d]
        if m:
            c, s = math.cos(m * angle), math.sin(m * angle)
            f = torch.stack([c * f[:, 0] - s * f[:, 1], s * f[:, 0] + c * f[:, 1]], 1)
        parts.append(f)
        start += d
    return torch.cat(parts, 1)
