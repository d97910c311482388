"""The causal LM: a byte-level BPE trained here, a GPT-2-architecture model from a ``GPT2Config`` (or any
``AutoModelForCausalLM`` by name or directory), a policy with a value head, left-padded sampling.

Padding convention: prompts are LEFT-padded (so that every row's next token is in the last column) and
responses RIGHT-padded after EOS. Position ids are ``cumsum(attention_mask) - 1``, so a left-padded row
sees exactly the positions it would see alone.
"""

from __future__ import annotations

import torch
from torch import nn

EOS = "<|endoftext|>"
PAD = "<|pad|>"


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE (GPT-2's scheme) trained on ``texts``, wrapped as a Hugging Face fast tokenizer."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS, PAD],
                            show_progress=False)  # fmt: skip
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=EOS, bos_token=EOS, pad_token=PAD)
    tok.padding_side = "left"
    return tok


def build_gpt2(tokenizer, n_layer: int, n_head: int, n_embd: int, block_size: int, seed: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=block_size, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,  # no dropout: RL needs pi_old == pi at step 0
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    return GPT2LMHeadModel(config)


def _offline_error(name: str, e: Exception) -> ValueError:
    return ValueError(
        f"cannot load model {name!r} ({type(e).__name__}); offline, point model=<local dir> at a folder written "
        "by save_pretrained (config.json, weights, tokenizer files), e.g. runs/rlhf/.../sft/model"
    )


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise _offline_error(name, e) from None
    if tok.pad_token is None:  # GPT-2 has none: a distinct pad keeps a final EOS visible to the RM
        tok.add_special_tokens({"pad_token": PAD})
    tok.padding_side = "left"
    return tok


def load_causal_lm(name: str, tokenizer=None):
    """``AutoModelForCausalLM`` from a Hugging Face id or a local directory, with a clear error offline."""
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise _offline_error(name, e) from None
    if tokenizer is not None:
        check_vocab(tokenizer, model, name)
    return model


def check_vocab(tokenizer, model, name: str = "the model") -> None:
    """Refuse a tokenizer whose ids do not all index the model's embedding table."""
    n_emb = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > n_emb:
        raise ValueError(
            f"tokenizer has {len(tokenizer)} tokens but {name} embeds only {n_emb}: use the tokenizer saved "
            "with the model (same directory)"
        )


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that ignore left padding: cumsum(mask) - 1, clamped at 0."""
    return (mask.long().cumsum(-1) - 1).clamp_min(0)


def left_pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids B x P, mask B x P), left-padded to the longest sequence."""
    P = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), P), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), P), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, P - len(s) :] = torch.tensor(s)
            mask[i, P - len(s) :] = 1
    return ids, mask


class PolicyWithValue(nn.Module):
    """The causal LM plus a scalar value head on its last hidden state (V(s_t) before token t+1)."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm
        hidden = lm.config.get_text_config().hidden_size
        self.v_head = nn.Linear(hidden, 1)
        nn.init.normal_(self.v_head.weight, std=1.0 / (hidden + 1) ** 0.5)
        nn.init.zeros_(self.v_head.bias)

    def forward(self, input_ids, attention_mask):
        out = self.lm(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions(attention_mask),
                      output_hidden_states=True, use_cache=False)  # fmt: skip
        return out.logits, self.v_head(out.hidden_states[-1]).squeeze(-1)


def response_forward(model, prompt_ids, prompt_mask, resp_ids, resp_mask, with_values: bool = False):
    """Logits (B x T x V) that predicted each response token (and V(s_t) if ``with_values``).

    The sequence is [left-padded prompt | right-padded response]; column P - 1 + t predicts response token t."""
    ids = torch.cat([prompt_ids, resp_ids], 1)
    mask = torch.cat([prompt_mask, resp_mask], 1)
    P, T = prompt_ids.shape[1], resp_ids.shape[1]
    if with_values:
        logits, values = model(ids, mask)
        return logits[:, P - 1 : P + T - 1], values[:, P - 1 : P + T - 1]
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask), use_cache=False).logits
    return logits[:, P - 1 : P + T - 1]


@torch.no_grad()
def sample(lm, prompt_ids, prompt_mask, max_new_tokens: int, eos_id: int, pad_id: int,
           temperature: float = 1.0, greedy: bool = False, generator: torch.Generator | None = None):  # fmt: skip
    """Sample responses from left-padded prompts: temperature 1, no top-k/top-p (the rollout of RLHF).

    Returns (response ids B x T, mask B x T) with T = max_new_tokens: each row ends at its first EOS (kept,
    mask 1) and is padded after it (mask 0)."""
    B, dev = prompt_ids.shape[0], prompt_ids.device
    mask = prompt_mask.clone()
    pos = positions(mask)
    out = lm(input_ids=prompt_ids, attention_mask=mask, position_ids=pos, use_cache=True)
    cache, logits, last_pos = out.cache, out.logits[:, -1], pos[:, -1]
    done = torch.zeros(B, dtype=torch.bool, device=dev)
    tokens, keep = [], []
    for t in range(max_new_tokens):
        if greedy:
            tok = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.float() / temperature, -1)
            if generator is not None and generator.device != probs.device:  # a CPU generator: draw on the CPU
                probs = probs.cpu()
            tok = torch.multinomial(probs, 1, generator=generator).squeeze(-1).to(dev)
        tok = torch.where(done, torch.full_like(tok, pad_id), tok)
        tokens.append(tok)
        keep.append(~done)
        done = done | (tok == eos_id)
        if done.all() or t == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones(B, 1, dtype=mask.dtype, device=dev)], 1)
        last_pos = last_pos + 1
        out = lm(input_ids=tok[:, None], attention_mask=mask, position_ids=last_pos[:, None], cache=cache,
                 use_cache=True)  # fmt: skip
        cache, logits = out.cache, out.logits[:, -1]
    resp = torch.full((B, max_new_tokens), pad_id, dtype=torch.long, device=dev)
    resp_mask = torch.zeros((B, max_new_tokens), dtype=torch.long, device=dev)
    resp[:, : len(tokens)] = torch.stack(tokens, 1)
    resp_mask[:, : len(keep)] = torch.stack(keep, 1).long()
    return resp, resp_mask


def decode_responses(tokenizer, resp_ids, resp_mask) -> list[str]:
    """Response texts without EOS/padding (what a reader, the gold scorer and the reward model see)."""
    return [tokenizer.decode(r[m.bool()].tolist(), skip_special_tokens=True) for r, m in zip(resp_ids, resp_mask)]


def ended_with_eos(resp_ids, resp_mask, eos_id: int) -> torch.Tensor:
    from paperlab.rlhf.core import last_token_index

    rows = torch.arange(len(resp_ids), device=resp_ids.device)
    return (resp_ids[rows, last_token_index(resp_mask)] == eos_id) & (resp_mask.sum(-1) > 0)


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())
