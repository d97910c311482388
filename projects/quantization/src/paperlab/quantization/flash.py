"""Attention three ways: naive (materialises the T x T scores), tiled with the online softmax
(FlashAttention's recurrence, in plain torch), and ``torch.nn.functional.scaled_dot_product_attention``.

Online softmax (Milakov & Gimelshein 2018; FlashAttention, Dao et al. 2022): for each block of queries,
walk over blocks of keys j keeping, per query row, the running max m, the running sum l of exp(s - m)
and the unnormalised output o:

    s_j   = q k_j^T / sqrt(d)                       (B_q x B_k scores of one tile; never the whole T x T)
    m'    = max(m, rowmax(s_j))
    p_j   = exp(s_j - m')
    l'    = exp(m - m') l + rowsum(p_j)
    o'    = exp(m - m') o + p_j v_j
    out   = o / l                                    (after the last key block: one division, v2-style)

The result is the exact softmax attention (no approximation); only the order of the sums changes.
"""

from __future__ import annotations

import math

import torch


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) [+ causal mask]) v with the full (..., Tq, Tk) score matrix in memory."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        tq, tk = scores.shape[-2:]
        mask = torch.ones(tq, tk, dtype=torch.bool, device=q.device).tril()  # top-left, as SDPA
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def tiled_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, block_q: int = 64, block_k: int = 64
) -> torch.Tensor:
    """Exact attention over (..., T, d) tensors in (block_q x block_k) tiles with the online softmax.

    Peak extra memory is O(block_q * block_k) per batch-head instead of O(Tq * Tk). With ``causal``,
    query i sees keys j <= i (top-left alignment, as SDPA's ``is_causal``), and key blocks that lie
    entirely in the future of a query block are skipped (FlashAttention-2's causal saving).
    """
    if block_q <= 0 or block_k <= 0:
        raise ValueError(f"block sizes must be > 0, got {block_q}, {block_k}")
    *batch, tq, d = q.shape
    tk = k.shape[-2]
    scale = 1.0 / math.sqrt(d)
    out = torch.empty(*batch, tq, v.shape[-1], dtype=q.dtype, device=q.device)
    for qs in range(0, tq, block_q):
        qe = min(qs + block_q, tq)
        q_blk = q[..., qs:qe, :] * scale
        m = torch.full((*batch, qe - qs, 1), float("-inf"), dtype=q.dtype, device=q.device)
        row_sum = torch.zeros((*batch, qe - qs, 1), dtype=q.dtype, device=q.device)
        o = torch.zeros((*batch, qe - qs, v.shape[-1]), dtype=q.dtype, device=q.device)
        k_end = min(tk, qe) if causal else tk  # keys after the block's last query: all masked
        for ks in range(0, max(k_end, 0), block_k):
            ke = min(ks + block_k, k_end)
            s = q_blk @ k[..., ks:ke, :].transpose(-2, -1)
            if causal and ke - 1 > qs:  # the tile crosses the diagonal: mask inside it
                rows = torch.arange(qs, qe, device=q.device)[:, None]
                cols = torch.arange(ks, ke, device=q.device)[None, :]
                s = s.masked_fill(cols > rows, float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
            # rows that have seen only masked keys so far keep m = -inf: shift by 0 there, not by inf - inf
            shift = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
            p = torch.exp(s - shift)
            alpha = torch.exp(m - shift)
            row_sum = alpha * row_sum + p.sum(dim=-1, keepdim=True)
            o = alpha * o + p @ v[..., ks:ke, :]
            m = m_new
        out[..., qs:qe, :] = o / row_sum
    return out
