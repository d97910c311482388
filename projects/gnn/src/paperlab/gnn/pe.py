"""Positional and structural encodings of graph nodes: Laplacian eigenvectors and random-walk returns.

Laplacian PE (Dwivedi & Bresson 2020): the eigenvectors of the symmetric normalised Laplacian
L = I - D^{-1/2} A D^{-1/2} with the k smallest non-trivial eigenvalues, the graph analogue of the sine
and cosine positions of a sequence transformer. Each eigenvector is defined only up to sign (and up to a
rotation within a repeated eigenvalue), so training flips the signs at random and the network learns to
not depend on them. RWSE (Dwivedi et al. 2022, used by GPS): p_i^(t) = [(D^{-1} A)^t]_ii, t = 1..k, the
probability that a random walk from node i is back at i after t steps; it has no sign ambiguity.
"""

from __future__ import annotations

import numpy as np
import torch


def dense_adjacency(edge_index: torch.Tensor, num_nodes: int) -> np.ndarray:
    A = np.zeros((num_nodes, num_nodes))
    A[edge_index[0].numpy(), edge_index[1].numpy()] = 1.0
    return A


def laplacian(edge_index: torch.Tensor, num_nodes: int) -> np.ndarray:
    """L = I - D^{-1/2} A D^{-1/2} (an isolated node gets L_ii = 1)."""
    A = dense_adjacency(edge_index, num_nodes)
    deg = A.sum(1)
    inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    return np.eye(num_nodes) - inv_sqrt[:, None] * A * inv_sqrt[None, :]


def laplacian_pe(edge_index: torch.Tensor, num_nodes: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(eigvecs [N, k], eigvals [k]): the k eigenvectors after the first (smallest eigenvalue), zero-padded
    when the graph has fewer than k + 1 nodes. Signs are made deterministic (largest |entry| positive) so that
    the stored PE is reproducible; training flips them at random anyway."""
    vals, vecs = np.linalg.eigh(laplacian(edge_index, num_nodes))
    vals, vecs = vals[1 : k + 1], vecs[:, 1 : k + 1]
    flip = np.sign(vecs[np.abs(vecs).argmax(0), np.arange(vecs.shape[1])])
    vecs = vecs * np.where(flip == 0, 1.0, flip)
    pe = np.zeros((num_nodes, k))
    pe[:, : vecs.shape[1]] = vecs
    ev = np.zeros(k)
    ev[: vals.shape[0]] = vals
    return torch.tensor(pe, dtype=torch.float), torch.tensor(ev, dtype=torch.float)


def rwse(edge_index: torch.Tensor, num_nodes: int, k: int) -> torch.Tensor:
    """[N, k]: the return probabilities [(D^{-1} A)^t]_ii for t = 1..k."""
    A = dense_adjacency(edge_index, num_nodes)
    deg = A.sum(1, keepdims=True)
    P = np.divide(A, deg, out=np.zeros_like(A), where=deg > 0)
    out, Pt = [], np.eye(num_nodes)
    for _ in range(k):
        Pt = Pt @ P
        out.append(np.diag(Pt).copy())
    return torch.tensor(np.stack(out, 1), dtype=torch.float)


def add_lap_pe(graphs: list, k: int) -> list:
    """Store ``pe`` [N, k] on every graph (in place; returns the list)."""
    for d in graphs:
        d.pe = laplacian_pe(d.edge_index, d.num_nodes, k)[0]
    return graphs


def add_rwse(graphs: list, k: int) -> list:
    """Store ``pe`` = RWSE [N, k] on every graph (in place; returns the list)."""
    for d in graphs:
        d.pe = rwse(d.edge_index, d.num_nodes, k)
    return graphs


def random_sign_flip(pe: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """Multiply each graph's each eigenvector by an independent random sign (torch's global RNG)."""
    signs = torch.randint(0, 2, (num_graphs, pe.size(1))).float() * 2 - 1
    return pe * signs[batch]
