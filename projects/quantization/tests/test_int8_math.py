"""The number formats and the int8 matmuls against direct computations and their analytic error bounds."""

from __future__ import annotations

import pytest
import torch

from paperlab.quantization.int8 import (
    absmax_dequantize,
    absmax_quantize,
    int8_matmul,
    llm_int8_matmul,
    outlier_columns,
    quantize_weight,
    vectorwise_matmul,
    zeropoint_dequantize,
    zeropoint_quantize,
)


@pytest.mark.parametrize("dim", [None, 1])
def test_absmax_round_trip_within_half_a_step(dim):
    x = torch.randn(64, 37) * 3
    q, scale = absmax_quantize(x, dim)
    assert q.dtype == torch.int8 and q.abs().max() == 127  # the absmax lands exactly on the grid's end
    err = (absmax_dequantize(q, scale) - x).abs()
    amax = x.abs().amax() if dim is None else x.abs().amax(dim=1, keepdim=True)
    assert (err <= amax / 254 * (1 + 1e-5)).all()  # half a step of max|x| / 127


def test_zeropoint_round_trip_and_uses_the_whole_grid_for_one_signed_data():
    x = torch.rand(1000) * 5 + 1  # all positive: absmax would leave the negative half of the grid unused
    q, nd, zp = zeropoint_quantize(x)
    err = (zeropoint_dequantize(q, nd, zp) - x).abs()
    assert err.max() <= (x.max() - x.min()) / 510 * (1 + 1e-4)
    assert q.min() == -128 and q.max() == 127
    qa, sa = absmax_quantize(x)
    assert err.max() < (absmax_dequantize(qa, sa) - x).abs().max()  # finer than absmax on one-signed data


def test_int8_matmul_is_exact_integer_arithmetic_for_odd_shapes():
    for m, k, n in [(1, 5, 3), (17, 33, 7), (3, 64, 129), (17, 1, 64), (1, 1, 2)]:  # K = 1: a torch CPU bug
        a = torch.randint(-127, 128, (m, k), dtype=torch.int8)
        b = torch.randint(-127, 128, (n, k), dtype=torch.int8)
        out = int8_matmul(a, b.t())
        assert out.dtype == torch.int32 and torch.equal(out, a.int() @ b.int().t())


def test_vectorwise_matmul_within_the_analytic_bound():
    torch.manual_seed(0)
    x, w = torch.randn(20, 96), torch.randn(48, 96) * 0.1
    w_int8, c_w = quantize_weight(w)
    y, exact = vectorwise_matmul(x, w_int8, c_w), x @ w.t()
    # |x - x^| <= c_x / 254 and |w - w^| <= c_w / 254 per element, so per output
    # |y - y^| <= (||x_t||_1 c_w[n] + ||w^_n||_1 c_x[t]) / 254
    c_x = x.abs().amax(1, keepdim=True)
    w_hat = w_int8.float() * c_w[:, None] / 127
    bound = (x.abs().sum(1, keepdim=True) * c_w[None, :] + w_hat.abs().sum(1)[None, :] * c_x) / 254
    err = (y - exact).abs()
    assert (err <= bound * (1 + 1e-4) + 1e-6).all()
    assert err.max() > 0  # it is quantized, not secretly exact


def test_decomposition_is_exact_on_outlier_columns():
    torch.manual_seed(1)
    x, w = torch.randn(16, 40), torch.randn(24, 40)
    x[3, [5, 17]] = torch.tensor([30.0, -12.0])  # two outlier feature dimensions
    w_int8, c_w = quantize_weight(w)
    w_hat = w_int8.float() * c_w[:, None] / 127
    mask = outlier_columns(x, 6.0)
    assert mask.nonzero().flatten().tolist() == [5, 17]
    y, n = llm_int8_matmul(x, w_int8, c_w, threshold=6.0)
    assert n == 2
    # the outlier columns go through unquantized activations: y minus the int8 part is their exact product
    rest = vectorwise_matmul(x[:, ~mask], w_int8[:, ~mask], c_w)
    torch.testing.assert_close(y - rest, x[:, mask] @ w_hat[:, mask].t(), rtol=1e-5, atol=1e-5)
    # and the decomposition is what rescues the other rows: plain vector-wise int8 is much worse
    err_mixed = (y - x @ w_hat.t()).abs().max()
    err_plain = (vectorwise_matmul(x, w_int8, c_w) - x @ w_hat.t()).abs().max()
    assert err_mixed < err_plain / 4
    # a threshold below every |x| sends everything through floating point: exact
    y_all, n_all = llm_int8_matmul(x, w_int8, c_w, threshold=1e-9)
    assert n_all == 40
    torch.testing.assert_close(y_all, x @ w_hat.t(), rtol=1e-5, atol=1e-5)


def test_decomposition_with_a_single_int8_column_left():
    """Almost every column above the threshold: the int8 part is a K = 1 product (once wrong in torch's CPU kernel)."""
    torch.manual_seed(2)
    x, w = torch.randn(32, 16) * 3, torch.randn(24, 16)
    x[:, 7] = 0.01  # the only column below the threshold
    w_int8, c_w = quantize_weight(w)
    y, n = llm_int8_matmul(x, w_int8.t().contiguous().t(), c_w, threshold=0.5)
    assert n == 15
    w_hat = w_int8.float() * c_w[:, None] / 127
    torch.testing.assert_close(y, x @ w_hat.t(), rtol=1e-3, atol=1e-3)
