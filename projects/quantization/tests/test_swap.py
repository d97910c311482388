"""The nn.Linear swap on Hugging Face models: what it replaces, what it refuses, and how memory is counted."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperlab.quantization.int8 import (
    Int8Embedding,
    Int8Linear,
    check_not_quantized,
    swap_linear,
    swap_whole_model,
    weight_bytes,
)


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(cfg).eval()


def test_swap_replaces_every_block_linear_and_nothing_else():
    model = tiny_llama()
    linears = {n for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    others = {n: type(m) for n, m in model.named_modules() if not isinstance(m, nn.Linear)}
    swapped = swap_linear(model, mode="llm-int8")
    assert set(swapped) == linears - {"lm_head"} and len(swapped) == 2 * 7  # q k v o gate up down per layer
    for name in swapped:
        assert isinstance(model.get_submodule(name), Int8Linear)
    assert type(model.lm_head) is nn.Linear  # the head stays in floating point, as in bitsandbytes
    assert {n: type(m) for n, m in model.named_modules() if n in others} == others  # norms, embeddings untouched
    assert model(torch.randint(0, 100, (1, 9))).logits.shape == (1, 9, 100)


def test_int8_weights_count_one_byte_each():
    lin = nn.Linear(64, 48, bias=True)
    q = Int8Linear.from_linear(lin)
    assert weight_bytes(lin) == (64 * 48 + 48) * 4
    assert weight_bytes(q) == 64 * 48 * 1 + 48 * 4 + 48 * 4  # int8 weights + fp32 row absmax + fp32 bias
    model = tiny_llama()
    before = weight_bytes(model)
    swap_linear(model)
    block = sum(m.weight_int8.numel() for m in model.modules() if isinstance(m, Int8Linear))
    scales = sum(m.weight_absmax.numel() for m in model.modules() if isinstance(m, Int8Linear))
    assert before - weight_bytes(model) == block * 3 - scales * 4  # each block weight 4 bytes -> 1, plus scales


def test_torchao_and_torch_ao_weights_are_counted_at_one_byte():
    from paperlab.quantization.methods import _block_linears

    model = tiny_llama()
    n_block = sum(model.get_submodule(n).weight.numel() for n in _block_linears(model))
    fp = weight_bytes(model)
    spec = {n: torch.ao.quantization.default_dynamic_qconfig for n in _block_linears(model)}
    dyn = torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8)
    # every block weight from 4 bytes to 1 (+ one 8-byte scale/zero point per tensor): no more, no less
    assert fp - weight_bytes(dyn) == 3 * n_block - 8 * len(_block_linears(model))


def test_already_quantized_model_is_refused_naming_the_module():
    model = tiny_llama()
    swap_linear(model)
    with pytest.raises(ValueError, match=r"model\.layers\.0\.self_attn\.q_proj is already quantized"):
        swap_linear(model)
    with pytest.raises(ValueError, match="already quantized"):
        check_not_quantized(model)


def test_unsupported_layer_type_is_refused_naming_the_module():
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=50, n_positions=16))
    with pytest.raises(ValueError, match=r"transformer\.h\.0\.attn\.c_attn \(Conv1D\)"):
        swap_linear(gpt2)


@pytest.mark.parametrize("threshold", [0.0, -1.0])
def test_threshold_must_be_positive(threshold):
    with pytest.raises(ValueError, match="threshold must be > 0"):
        swap_linear(tiny_llama(), threshold=threshold)
    with pytest.raises(ValueError, match="threshold must be > 0"):
        Int8Linear(4, 4, bias=False, threshold=threshold)


def test_int8_embedding_round_trip_within_the_row_absmax_bound():
    torch.manual_seed(1)
    emb = nn.Embedding(50, 24)
    emb.weight.data[7] *= 40  # one large row: row-wise scales keep the other rows' error small
    q = Int8Embedding.from_embedding(emb)
    ids = torch.randint(0, 50, (3, 11))
    ids[0, 0] = 7
    out, ref = q(ids), emb(ids)
    row_amax = emb.weight.abs().amax(dim=1)[ids].unsqueeze(-1)
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert ((out - ref).abs() <= row_amax / 254 * (1 + 1e-5)).all()  # half a step of each row's max / 127
    assert weight_bytes(q) == 50 * 24 * 1 + 50 * 4  # int8 rows + one fp32 absmax per row


@pytest.mark.parametrize("tied", [False, True])
def test_whole_model_swap_quantizes_head_and_embeddings_below_0_3x(tied):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=200,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            tie_word_embeddings=tied,
        )
    ).eval()
    ids = torch.randint(0, 200, (2, 16))
    ref, fp_bytes = model(ids).logits, weight_bytes(model)
    swapped = swap_whole_model(model, mode="vectorwise")
    assert set(swapped) == {n for n, m in model.named_modules() if isinstance(m, (Int8Linear, Int8Embedding))}
    assert "lm_head" in swapped and "model.embed_tokens" in swapped and len(swapped) == 2 * 7 + 2
    assert not any(isinstance(m, (nn.Linear, nn.Embedding)) for m in model.modules())
    if tied:  # one copy of the int8 rows, read by both (fp32 shared one tensor too)
        assert model.model.embed_tokens.weight_int8 is model.lm_head.weight_int8
    assert weight_bytes(model) <= 0.3 * fp_bytes
    out = model(ids).logits
    assert (out.argmax(-1) == ref.argmax(-1)).float().mean() >= 0.95
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()
