"""The groups of planar rotations (and reflections) used here, as plain objects.

A group element is an integer index. ``C_n`` (rotations by multiples of 2*pi/n): element ``k`` is
the rotation r^k. ``D_n`` (rotations and reflections, order 2n): element ``f*n + k`` is r^k s^f, i.e.
first the reflection s (x -> -x) if f = 1, then the rotation r^k. Composition follows from
s r = r^-1 s:  (r^a s^f)(r^b s^g) = r^(a + (-1)^f b) s^(f+g).

Each group gives
  * ``compose``, ``inverse``, ``identity``: the group law (the axioms are tested);
  * ``matrix(g)``: its action on the plane R^2, in coordinates (x right, y up);
  * ``act_on_image(g, x)``: its action on a square image (exact pixel permutation for multiples of
    90 degrees, bilinear interpolation otherwise);
  * ``regular(g)``: the regular representation, the permutation matrix of the action
    (g . f)(h) = f(g^-1 h) on signals over the group (the fibres of a G-CNN's feature maps).
"""

from __future__ import annotations

import math

import torch

from paperlab.gcnn.rotate import rotate_image


class CyclicGroup:
    """C_n: the n rotations by 2*pi*k/n, k = 0..n-1."""

    def __init__(self, n: int):
        if n < 1:
            raise ValueError(f"C_n needs n >= 1, got {n}")
        self.n = n
        self.order = n
        self.name = f"C{n}"

    def elements(self) -> list[int]:
        return list(range(self.n))

    @property
    def identity(self) -> int:
        return 0

    def compose(self, a: int, b: int) -> int:
        return (a + b) % self.n

    def inverse(self, a: int) -> int:
        return (-a) % self.n

    def angle(self, a: int) -> float:
        return 2 * math.pi * a / self.n

    def matrix(self, a: int) -> torch.Tensor:
        c, s = math.cos(self.angle(a)), math.sin(self.angle(a))
        return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)

    def act_on_image(self, a: int, x: torch.Tensor) -> torch.Tensor:
        """Rotate the last two (square) dimensions of ``x`` counter-clockwise by ``angle(a)``."""
        return rotate_image(x, self.angle(a))

    def act_on_signal(self, a: int, f: torch.Tensor, dim: int) -> torch.Tensor:
        """(a . f)(h) = f(a^-1 h) for a signal over C_n stored along ``dim``: a cyclic shift by a."""
        return torch.roll(f, shifts=a, dims=dim)

    def regular(self, a: int) -> torch.Tensor:
        """Permutation matrix P with (P f)[h] = f[a^-1 h]."""
        p = torch.zeros(self.n, self.n, dtype=torch.float64)
        for h in range(self.n):
            p[h, self.compose(self.inverse(a), h)] = 1.0
        return p

    def __repr__(self) -> str:
        return self.name


class DihedralGroup:
    """D_n: r^k s^f, k = 0..n-1, f in {0, 1}; index f*n + k. s reflects x -> -x."""

    def __init__(self, n: int):
        if n < 1:
            raise ValueError(f"D_n needs n >= 1, got {n}")
        self.n = n
        self.order = 2 * n
        self.name = f"D{n}"

    def elements(self) -> list[int]:
        return list(range(2 * self.n))

    @property
    def identity(self) -> int:
        return 0

    def split(self, g: int) -> tuple[int, int]:
        """(f, k) with g = r^k s^f."""
        return divmod(g, self.n)

    def compose(self, a: int, b: int) -> int:
        fa, ka = self.split(a)
        fb, kb = self.split(b)
        k = (ka + (-1) ** fa * kb) % self.n
        return ((fa + fb) % 2) * self.n + k

    def inverse(self, a: int) -> int:
        f, k = self.split(a)
        return a if f else (-k) % self.n  # reflections are involutions

    def matrix(self, a: int) -> torch.Tensor:
        f, k = self.split(a)
        t = 2 * math.pi * k / self.n
        rot = torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]], dtype=torch.float64)
        flip = torch.tensor([[-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
        return rot @ flip if f else rot

    def act_on_image(self, a: int, x: torch.Tensor) -> torch.Tensor:
        f, k = self.split(a)
        if f:
            x = torch.flip(x, dims=(-1,))
        return rotate_image(x, 2 * math.pi * k / self.n)

    def regular(self, a: int) -> torch.Tensor:
        p = torch.zeros(self.order, self.order, dtype=torch.float64)
        for h in self.elements():
            p[h, self.compose(self.inverse(a), h)] = 1.0
        return p

    def __repr__(self) -> str:
        return self.name
