"""Held-out perplexity, top-1 agreement with a reference, and text generation: the same for every method."""

from __future__ import annotations

import math

import torch


def perplexity(
    model, windows: torch.Tensor, batch_size: int = 8, return_top1: bool = False, grad: bool = False
) -> dict:
    """exp(mean next-token NLL) over ``windows`` (N, L): every window predicts its tokens 2..L.

    With ``return_top1`` the greedy next-token choices (N, L-1) come back too, for agreement checks.
    ``grad=True`` runs with autograd on (bitsandbytes NF4 on CPU fails under no_grad for layers whose
    in_features is not a multiple of 64).
    """
    nll, count, top1 = 0.0, 0, []
    for i in range(0, len(windows), batch_size):
        batch = windows[i : i + batch_size]
        with torch.set_grad_enabled(grad):
            logits = model(batch[:, :-1]).logits.float().detach()
        nll += torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten(), reduction="sum").item()
        count += batch[:, 1:].numel()
        if return_top1:
            top1.append(logits.argmax(-1))
    out = {"perplexity": math.exp(nll / count), "nll": nll / count, "tokens": count}
    if return_top1:
        out["top1"] = torch.cat(top1)
    return out


def top1_agreement(top1: torch.Tensor, reference: torch.Tensor) -> float:
    """Fraction of positions where the greedy next token equals the reference model's."""
    if top1.shape != reference.shape:
        raise ValueError(f"top-1 predictions {tuple(top1.shape)} and reference {tuple(reference.shape)} differ")
    return float((top1 == reference).float().mean())


def decode(
    model, ids: torch.Tensor, new_tokens: int, sample: bool = False, seed: int = 1, grad: bool = False
) -> torch.Tensor:
    """Prefill ``ids`` (1, L) once, then ``new_tokens`` single-token steps on the KV cache.

    Greedy, or sampled at temperature 0.8 from the top 50 tokens with a generator seeded by ``seed``.
    Written out (not ``model.generate``) so that the timed loop is exactly this and so that it can run
    with autograd on (``grad``, see :func:`perplexity`).
    """
    gen = torch.Generator().manual_seed(seed)
    out_ids = [ids]
    with torch.set_grad_enabled(grad):
        out = model(ids, use_cache=True)
        for _ in range(new_tokens):
            logits = out.logits[:, -1].float().detach()
            if sample:
                top = torch.topk(logits / 0.8, 50, dim=-1)
                choice = torch.multinomial(torch.softmax(top.values, -1), 1, generator=gen)
                nxt = top.indices.gather(-1, choice)
            else:
                nxt = logits.argmax(-1, keepdim=True)
            out_ids.append(nxt)
            if len(out_ids) <= new_tokens:  # no forward for a token nobody reads
                out = model(nxt, past_key_values=out.past_key_values, use_cache=True)
    return torch.cat(out_ids, dim=1)


def generate(model, tokenizer, prompt: str, new_tokens: int, sample: bool, seed: int = 1, grad: bool = False) -> str:
    """The prompt and its continuation as text (see :func:`decode`)."""
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    return tokenizer.decode(decode(model, ids, new_tokens, sample, seed, grad)[0], skip_special_tokens=True)
