"""The training loop's contract (resume, NaN, guards) and the properties of the models built here."""

import numpy as np
import pytest
import torch

from paperlab.shared.config import ConfigError
from paperlab.shared.runlog import read_metrics
from paperlab.toys_torch import lm
from paperlab.toys_torch.config import LMShape

SHAPE = LMShape(
    vocab_size=400,
    d_model=32,
    n_layers=2,
    n_heads=4,
    n_kv_heads=2,
    ffn=64,
    context=24,
    train_steps=6,
    batch_size=4,
    lr=3e-3,
    log_every=2,
    checkpoint_every=3,
)


@pytest.fixture(scope="module")
def tok():
    rng = np.random.default_rng(0)
    words = "love beauty time thee thou fair heart eyes sweet death day night rose youth king lord".split()
    texts = [" ".join(rng.choice(words, 12)) for _ in range(200)]
    return lm.train_tokenizer(texts, 400), texts


def stream(tok):
    t, texts = tok
    return lm.encode_docs(t, texts)


def test_tokenizer_round_trip_and_eos_between_docs(tok):
    t, texts = tok
    assert t.decode(t(texts[0], add_special_tokens=False)["input_ids"]) == texts[0]
    ids = lm.encode_docs(t, texts[:3])
    assert (ids == t.eos_token_id).sum() == 3 and ids[-1] == t.eos_token_id


def test_llama_has_llama3_choices_and_is_causal(tok):
    model = lm.build_llama(SHAPE, tok[0]).eval()
    c = model.config
    assert c.num_key_value_heads < c.num_attention_heads and c.hidden_act == "silu"
    assert type(model.model.norm).__name__ == "LlamaRMSNorm" and hasattr(model.model, "rotary_emb")
    assert model.model.layers[0].self_attn.k_proj.out_features == 2 * 32 // 4  # 2 K/V heads of 8
    emb = model.get_input_embeddings()(torch.randint(3, len(tok[0]), (1, 10))).detach().requires_grad_(True)
    out = model(inputs_embeds=emb).logits
    out[0, 4].sum().backward()  # output at t = 4 depends on inputs 0..4 only
    assert emb.grad[0, 5:].abs().max() == 0 and emb.grad[0, :5].abs().max() > 0


def _train(model, ids, stage_dir, resume, **kw):
    return lm.train_lm(model, ids, ids, SHAPE, stage_dir, seed=0, resume=resume, **kw)


def test_resume_after_a_stop_equals_an_uninterrupted_run(tok, tmp_path, monkeypatch):
    ids = stream(tok)
    torch.manual_seed(0)
    full = lm.build_llama(SHAPE, tok[0])
    torch.manual_seed(0)
    split = lm.build_llama(SHAPE, tok[0])
    init = {k: v.clone() for k, v in split.state_dict().items()}
    assert _train(full, ids, tmp_path / "full", False)["finished"]

    class StopAfter:  # a Ctrl-C after the third step
        reads = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        @property
        def requested(self):
            StopAfter.reads += 1
            return StopAfter.reads > 3

    monkeypatch.setattr(lm, "StopSignal", StopAfter)
    info = _train(split, ids, tmp_path / "split", False)
    assert not info["finished"] and info["steps"] == 3
    monkeypatch.undo()
    resumed = lm.build_llama(SHAPE, tok[0])
    resumed.load_state_dict(init)  # a fresh process: weights come from the checkpoint
    assert _train(resumed, ids, tmp_path / "split", True)["finished"]
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    rows = [r["step"] for r in read_metrics(tmp_path / "split" / "metrics.jsonl")]
    assert rows == [2, 4, 6]  # one uninterrupted history


def test_guards_and_nan(tok, tmp_path):
    ids = stream(tok)
    model = lm.build_llama(SHAPE, tok[0])
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        _train(model, ids, tmp_path / "a", True)
    _train(model, ids, tmp_path / "a", False, steps=3)
    with pytest.raises(ConfigError, match="already holds a run"):
        _train(model, ids, tmp_path / "a", False, steps=3)
    with torch.no_grad():
        model.model.norm.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="loss=nan at step 0"):
        _train(model, ids, tmp_path / "b", False)


def test_lora_merged_equals_unmerged(tok):
    from paperlab.toys_torch.config import SonnetSftConfig
    from paperlab.toys_torch.sonnet_sft import add_lora

    torch.manual_seed(0)
    model = add_lora(lm.build_llama(SHAPE, tok[0]), 4, SonnetSftConfig(lora_dropout=0.0)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)  # B starts at 0: make the adapter do something
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0 < trainable < 0.2 * sum(p.numel() for p in model.parameters())
    x = torch.randint(3, len(tok[0]), (2, 12))
    with torch.no_grad():
        before = model(input_ids=x).logits
        merged = model.merge_and_unload()(input_ids=x).logits
    assert torch.allclose(before, merged, atol=1e-5)


def test_gpt2_and_perplexity_of_a_uniform_model(tok):
    model = lm.build_gpt2(SHAPE, tok[0])
    with torch.no_grad():
        model.lm_head.weight.zero_()  # tied: zero logits, a uniform next-token distribution
    assert lm.perplexity(model, stream(tok)[:200], 24) == pytest.approx(len(tok[0]), rel=1e-4)
