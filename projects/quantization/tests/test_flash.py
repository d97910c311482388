"""Tiled online-softmax attention equals SDPA (and the naive formula) with and without a causal mask."""

from __future__ import annotations

import pytest
import torch
from torch.nn.functional import scaled_dot_product_attention as sdpa

from paperlab.quantization.flash import naive_attention, tiled_attention


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(
    "tq,tk,bq,bk",
    [(1, 1, 64, 64), (37, 37, 8, 16), (129, 129, 32, 32), (50, 77, 16, 10), (77, 50, 10, 16), (100, 100, 100, 7)],
)
def test_tiled_attention_equals_sdpa(causal, tq, tk, bq, bk):
    torch.manual_seed(tq * 1000 + tk)
    q = torch.randn(2, 3, tq, 16)
    k, v = torch.randn(2, 3, tk, 16), torch.randn(2, 3, tk, 24)
    ref = sdpa(q, k, v, is_causal=causal)
    torch.testing.assert_close(tiled_attention(q, k, v, causal, block_q=bq, block_k=bk), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(naive_attention(q, k, v, causal), ref, rtol=1e-5, atol=1e-5)


def test_tiled_attention_is_causal():
    """Changing a future key/value leaves every earlier output unchanged."""
    q, k, v = torch.randn(1, 1, 40, 8), torch.randn(1, 1, 40, 8), torch.randn(1, 1, 40, 8)
    out = tiled_attention(q, k, v, causal=True, block_q=16, block_k=16)
    k2, v2 = k.clone(), v.clone()
    k2[..., 30, :] += 5
    v2[..., 30, :] += 5
    out2 = tiled_attention(q, k2, v2, causal=True, block_q=16, block_k=16)
    assert torch.equal(out[..., :30, :], out2[..., :30, :])
    assert not torch.allclose(out[..., 30:, :], out2[..., 30:, :])


def test_bad_block_size_is_refused():
    x = torch.randn(1, 4, 2)
    with pytest.raises(ValueError, match="block"):
        tiled_attention(x, x, x, block_q=0)
