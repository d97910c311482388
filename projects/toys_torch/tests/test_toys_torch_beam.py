"""Beam search (task 8): equal to transformers' generate, exact on a brute-forced case, greedy at width 1."""

import itertools

import pytest
import torch

from paperlab.toys_torch.beam import HFStepper, beam_search, greedy

EOS, PAD, V = 2, 0, 48


def tiny_lm(arch="llama", vocab=V, sharpen=25.0, seed=0):
    """A random model whose logits are scaled up, so that EOS wins on some beams and not on others."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    if arch == "llama":
        cfg = LlamaConfig(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            bos_token_id=1,
            eos_token_id=EOS,
            pad_token_id=PAD,
        )
        model = LlamaForCausalLM(cfg)
    else:
        cfg = GPT2Config(
            vocab_size=vocab,
            n_positions=64,
            n_embd=32,
            n_layer=2,
            n_head=4,
            bos_token_id=1,
            eos_token_id=EOS,
            pad_token_id=PAD,
        )
        model = GPT2LMHeadModel(cfg)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(sharpen)
    return model.eval()


def run(model, ids, mask=None, **kw):
    kw = {"max_new_tokens": 10, "eos_id": EOS, "pad_id": PAD, **kw}
    return beam_search(HFStepper(model), ids, mask, **kw)


CASES = [  # (arch, width, length_penalty, early_stopping)
    ("llama", 4, 1.0, "false"),
    ("llama", 5, 0.5, "true"),
    ("llama", 3, 2.0, "never"),
    ("llama", 10, 1.0, "false"),
    ("llama", 6, -1.0, "false"),
    ("gpt2", 5, 1.0, "false"),
    ("gpt2", 8, 0.0, "never"),
]


def test_equals_transformers_generate():
    saw_eos = saw_max_len = False
    for arch, width, lp, es in CASES:
        model = tiny_lm(arch)
        ids = torch.randint(3, V, (3, 5), generator=torch.Generator().manual_seed(width))
        mask = torch.ones_like(ids)
        ref = model.generate(
            input_ids=ids,
            attention_mask=mask,
            num_beams=width,
            num_return_sequences=width,
            length_penalty=lp,
            early_stopping={"true": True, "false": False}.get(es, es),
            max_new_tokens=10,
            do_sample=False,
            eos_token_id=EOS,
            pad_token_id=PAD,
            output_scores=True,
            return_dict_in_generate=True,
        )
        out = run(model, ids, mask, num_beams=width, length_penalty=lp, early_stopping=es)
        ref_tok = ref.sequences[:, 5:].view(3, width, -1)
        for b, r in itertools.product(range(3), range(width)):
            n = int(out.lengths_BxR[b, r])
            assert torch.equal(ref_tok[b, r, :n], out.tokens_BxRxT[b, r, :n]), (arch, width, lp, es, b, r)
            # HF fills the rest with EOS when pad_token_id is 0 (``pad or eos``); nothing else may follow
            assert set(ref_tok[b, r, n:].tolist()) <= {EOS, PAD}
            saw_eos |= bool(out.tokens_BxRxT[b, r, n - 1] == EOS)
            saw_max_len |= n == 10
        assert torch.equal(ref.sequences_scores.view(3, width), out.scores_BxR), (arch, width, lp, es)
    assert saw_eos and saw_max_len  # the cases exercise both ways a hypothesis can finish


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_width_one_is_greedy(arch):
    model = tiny_lm(arch)
    ids = torch.randint(3, V, (4, 6), generator=torch.Generator().manual_seed(1))
    g_tok, g_len = greedy(HFStepper(model), ids, max_new_tokens=12, eos_id=EOS, pad_id=PAD)
    ref = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        num_beams=1,
        max_new_tokens=12,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )
    for lp, es in [(1.0, "true"), (0.0, "false")]:
        out = run(model, ids, num_beams=1, max_new_tokens=12, length_penalty=lp, early_stopping=es)
        for b in range(4):
            n = int(g_len[b])
            assert int(out.lengths_BxR[b, 0]) == n
            assert torch.equal(out.tokens_BxRxT[b, 0, :n], g_tok[b, :n])
            assert torch.equal(ref[b, 6 : 6 + n], g_tok[b, :n])


@torch.no_grad()
def test_beams_sorted_distinct_and_scored_by_a_full_forward_pass():
    model = tiny_lm(sharpen=10.0)
    ids = torch.randint(3, V, (2, 4), generator=torch.Generator().manual_seed(2))
    lp = 0.7
    out = run(model, ids, num_beams=6, length_penalty=lp)
    assert (out.scores_BxR[:, :-1] >= out.scores_BxR[:, 1:]).all()
    for b in range(2):
        hyps = [tuple(out.tokens_BxRxT[b, r, : out.lengths_BxR[b, r]].tolist()) for r in range(6)]
        assert len(set(hyps)) == 6
        for r, h in enumerate(hyps):  # score = sum log p(y_t | x, y_<t) / |y|^lp, recomputed without a cache
            seq = torch.cat([ids[b], torch.tensor(h)])[None]
            logp = torch.log_softmax(model(input_ids=seq).logits[0, :-1].float(), -1)
            total = logp[torch.arange(3, seq.shape[1] - 1), seq[0, 4:]].sum()
            assert abs(float(total) / len(h) ** lp - float(out.scores_BxR[b, r])) < 1e-4


@torch.no_grad()
def test_exhaustive_width_finds_the_best_sequence():
    """Width >= V^(T-1) keeps every prefix, so the best hypothesis is the best of all sequences."""
    vocab, T = 5, 3
    model = tiny_lm(vocab=vocab, sharpen=3.0, seed=3)
    ids = torch.tensor([[1, 3, 4]])
    out = run(model, ids, num_beams=vocab ** (T - 1), max_new_tokens=T, length_penalty=0.0, early_stopping="never")
    best = -float("inf")
    for seq in itertools.product(range(vocab), repeat=T):
        seq = seq[: seq.index(EOS) + 1] if EOS in seq else seq  # a sequence ends at its first EOS
        full = torch.cat([ids[0], torch.tensor(seq)])[None]
        logp = torch.log_softmax(model(input_ids=full).logits[0, :-1].float(), -1)
        best = max(best, float(logp[torch.arange(2, full.shape[1] - 1), full[0, 3:]].sum()))
    assert abs(float(out.scores_BxR[0, 0]) - best) < 1e-5


def test_left_padded_batch_equals_one_context_at_a_time():
    model = tiny_lm(sharpen=10.0)
    a, b = torch.tensor([5, 9, 11, 7, 20]), torch.tensor([30, 4])
    ids = torch.stack([a, torch.cat([torch.full((3,), PAD), b])])
    mask = torch.tensor([[1] * 5, [0, 0, 0, 1, 1]])
    batched = run(model, ids, mask, num_beams=4)
    for row, ctx in enumerate([a, b]):
        alone = run(model, ctx[None], num_beams=4)
        for r in range(4):
            n = int(alone.lengths_BxR[0, r])
            assert int(batched.lengths_BxR[row, r]) == n
            assert torch.equal(batched.tokens_BxRxT[row, r, :n], alone.tokens_BxRxT[0, r, :n])
        assert torch.allclose(batched.scores_BxR[row], alone.scores_BxR[0], atol=1e-4)


def test_bad_arguments_raise_one_clear_error():
    model = tiny_lm()
    ids = torch.tensor([[3, 4]])
    for kw, msg in [
        ({"num_beams": 0}, "num_beams"),
        ({"num_beams": 2, "early_stopping": "yes"}, "early_stopping"),
        ({"num_beams": 2, "num_return": 3}, "num_return"),
    ]:
        with pytest.raises(ValueError, match=msg):
            run(model, ids, **kw)
