"""Left padding done right: batched == alone for sampling and for the per-token log-probabilities."""

from __future__ import annotations

import pytest
import torch

from paperlab.rlhf.core import logprobs_of
from paperlab.rlhf.model import (
    build_gpt2,
    check_vocab,
    decode_responses,
    left_pad,
    load_causal_lm,
    response_forward,
    sample,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def tiny(corpus):
    tok = train_tokenizer(corpus.split("\n\n"), 300)
    lm = build_gpt2(tok, n_layer=2, n_head=2, n_embd=32, block_size=64, seed=0).eval()
    return tok, lm


def test_tokenizer_has_distinct_eos_and_pad_and_left_padding(tiny):
    tok, _ = tiny
    assert tok.eos_token_id != tok.pad_token_id and tok.padding_side == "left"
    ids, mask = left_pad([[5, 6, 7], [8]], tok.pad_token_id)
    assert ids.tolist() == [[5, 6, 7], [tok.pad_token_id] * 2 + [8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_batched_generation_equals_alone_with_left_padding(tiny):
    tok, lm = tiny
    prompts = [tok("ROMEO:\ngood love")["input_ids"], tok("KING:")["input_ids"], tok("the")["input_ids"]]
    assert len({len(p) for p in prompts}) == 3  # different lengths: real left padding
    p_ids, p_mask = left_pad(prompts, tok.pad_token_id)
    batched, b_mask = sample(lm, p_ids, p_mask, 10, tok.eos_token_id, tok.pad_token_id, greedy=True)
    for i, p in enumerate(prompts):
        alone, a_mask = sample(lm, *left_pad([p], tok.pad_token_id), 10, tok.eos_token_id, tok.pad_token_id,
                               greedy=True)  # fmt: skip
        assert batched[i].tolist() == alone[0].tolist() and b_mask[i].tolist() == a_mask[0].tolist()
        # the log-probabilities of the response: same in the padded batch and alone
        lp_b = logprobs_of(response_forward(lm, p_ids[i : i + 1], p_mask[i : i + 1], batched[i : i + 1],
                                            b_mask[i : i + 1]), batched[i : i + 1])  # fmt: skip
        lp_a = logprobs_of(response_forward(lm, *left_pad([p], tok.pad_token_id), alone, a_mask), alone)
        assert torch.allclose(lp_b, lp_a, atol=1e-5)
    # and the batched forward over all rows agrees with row-by-row on the real tokens
    lp_all = logprobs_of(response_forward(lm, p_ids, p_mask, batched, b_mask), batched)
    for i, p in enumerate(prompts):
        lp_i = logprobs_of(response_forward(lm, *left_pad([p], tok.pad_token_id), batched[i : i + 1],
                                            b_mask[i : i + 1]), batched[i : i + 1])  # fmt: skip
        m = b_mask[i].bool()
        assert torch.allclose(lp_all[i][m], lp_i[0][m], atol=1e-5)


def test_sampling_stops_at_eos_and_pads_after_it(tiny):
    tok, lm = tiny
    with torch.no_grad():  # make EOS certain after the first token
        lm.lm_head.weight.data[tok.eos_token_id] += 0.0
        bias = torch.zeros(len(tok))
        bias[tok.eos_token_id] = 1e4
    hook = lm.lm_head.register_forward_hook(lambda m, i, o: o + bias)
    try:
        p_ids, p_mask = left_pad([[5, 6], [7]], tok.pad_token_id)
        r, m = sample(lm, p_ids, p_mask, 6, tok.eos_token_id, tok.pad_token_id, generator=torch.Generator())
    finally:
        hook.remove()
    assert (r[:, 0] == tok.eos_token_id).all() and m.tolist() == [[1, 0, 0, 0, 0, 0]] * 2
    assert (r[:, 1:] == tok.pad_token_id).all()
    assert decode_responses(tok, r, m) == ["", ""]


def test_vocab_mismatch_and_unknown_model_are_refused(tiny, tmp_path):
    tok, _ = tiny
    small = build_gpt2(train_tokenizer(["a b c"] * 10, 260), 1, 1, 8, 16, 0)
    with pytest.raises(ValueError, match="tokenizer has .* tokens but"):
        check_vocab(tok, small)
    with pytest.raises(ValueError, match="local dir"):
        load_causal_lm(str(tmp_path / "no-such-model"))
    with pytest.raises(ValueError, match="cannot load model 'surely-not/a-model-id-here'"):
        load_causal_lm("surely-not/a-model-id-here")


def test_a_real_checkpoint_by_directory_becomes_the_base_model(tiny, tmp_path):
    """model=<dir> (a GPT-2-like checkpoint whose tokenizer has no pad token): loaded, pad added, saved."""
    from transformers import PreTrainedTokenizerFast

    from paperlab.rlhf.config import Config
    from paperlab.rlhf.sft import train_sft

    tok, _ = tiny
    no_pad = PreTrainedTokenizerFast(tokenizer_object=tok.backend_tokenizer, eos_token="<|endoftext|>")
    lm = build_gpt2(tok, n_layer=1, n_head=2, n_embd=16, block_size=64, seed=0)
    lm.resize_token_embeddings(len(tok) - 1)  # as GPT-2: the vocabulary without a pad token
    lm.save_pretrained(tmp_path / "real")
    no_pad.save_pretrained(tmp_path / "real")
    summary = train_sft(Config(model=str(tmp_path / "real"), out_dir=str(tmp_path / "run"), device="cpu"))
    assert summary["finished"] and summary["steps"] == 0
    from paperlab.rlhf.model import load_tokenizer

    saved = tmp_path / "run" / "sft" / "model"
    tok2, lm2 = load_tokenizer(str(saved)), load_causal_lm(str(saved))
    check_vocab(tok2, lm2)
    assert tok2.pad_token_id == lm2.config.pad_token_id and tok2.pad_token_id != tok2.eos_token_id
