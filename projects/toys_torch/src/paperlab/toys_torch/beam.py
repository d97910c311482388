"""Batched beam search for a causal LM, written out: any width, EOS, length penalty, n-best lists.

The semantics are those of Hugging Face ``generate(num_beams=K, length_penalty=a,
early_stopping=...)`` (the vectorised rewrite in recent transformers; checked against 5.24), so that the two can be
compared token for token and score for score (``tests/test_toys_torch_beam.py``):

- every step each of the K running beams is extended by every token; the 2K best candidates by the
  summed log-probability ``s(y) = sum_t log p(y_t | x, y_<t)`` are kept;
- a candidate that ends in EOS (or reaches ``max_new_tokens``) is *finished* when it is among the
  first K of those 2K; it enters the n-best pool (K slots) with the normalised score
  ``s(y) / |y|^a`` (``|y|``: generated tokens, EOS included; ``a`` = ``length_penalty``);
- the next running beams are the K best unfinished candidates (raw ``s``, no penalty);
- a context is done when (``early_stopping="true"``) its pool holds K hypotheses, or
  (``"false"``, the default) the pool is full and the best running beam, normalised at its
  current length, cannot beat the worst hypothesis in the pool (a heuristic when a > 0), or
  (``"never"``) the same with the best running beam normalised at ``max_new_tokens`` when a > 0
  (a true bound, since summed log-probabilities only decrease).

Width 1 with ``early_stopping="true"`` (or ``length_penalty=0``) is greedy decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NEG = -1.0e9  # the "impossible" score HF uses; float32 keeps it finite


@dataclass
class BeamOutput:
    """``tokens_BxRxT``: the R best generated continuations per context (EOS kept, then ``pad_id``);
    ``scores_BxR``: their normalised scores, best first; ``lengths_BxR``: generated tokens (EOS
    included); ``steps``: decoding steps run (= model calls after the prompt)."""

    tokens_BxRxT: torch.Tensor
    scores_BxR: torch.Tensor
    lengths_BxR: torch.Tensor
    steps: int


class HFStepper:
    """A Hugging Face causal LM with its KV cache: ``start`` runs the prompt, ``step`` one token per row.

    Left-padded prompts work: positions are ``cumsum(attention_mask) - 1`` and the mask grows by
    one column per step, as in ``generate``.
    """

    def __init__(self, model):
        self.model = model
        self.cache = None
        self.mask_NxT = None

    @torch.no_grad()
    def start(self, ids_NxL: torch.Tensor, mask_NxL: torch.Tensor) -> torch.Tensor:
        from transformers import DynamicCache

        self.cache = DynamicCache(config=self.model.config)
        self.mask_NxT = mask_NxL.long()
        pos_NxL = (self.mask_NxT.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=ids_NxL, attention_mask=self.mask_NxT, position_ids=pos_NxL, cache=self.cache, use_cache=True
        )
        return out.logits[:, -1, :].float()

    @torch.no_grad()
    def step(self, tok_N: torch.Tensor, rows_N: torch.Tensor) -> torch.Tensor:
        """Reorder the cache to ``rows_N`` (the parent of each new beam), then feed ``tok_N``."""
        self.cache.reorder_cache(rows_N)
        self.mask_NxT = torch.cat([self.mask_NxT[rows_N], self.mask_NxT.new_ones(len(rows_N), 1)], dim=1)
        pos_Nx1 = self.mask_NxT.sum(-1, keepdim=True) - 1
        out = self.model(
            input_ids=tok_N[:, None],
            attention_mask=self.mask_NxT,
            position_ids=pos_Nx1,
            cache=self.cache,
            use_cache=True,
        )
        return out.logits[:, -1, :].float()


@torch.no_grad()
def beam_search(
    stepper,
    ids_BxL: torch.Tensor,
    mask_BxL: torch.Tensor | None = None,
    *,
    num_beams: int,
    max_new_tokens: int,
    eos_id: int | None,
    pad_id: int = 0,
    length_penalty: float = 1.0,
    early_stopping: str = "false",
    num_return: int | None = None,
) -> BeamOutput:
    """Beam search of width ``num_beams`` from each (left-padded) context in ``ids_BxL``.

    ``stepper``: ``start(ids_NxL, mask_NxL) -> logits_NxV`` and ``step(tok_N, parent_rows_N) ->
    logits_NxV`` with N = B * K rows (beam k of context b is row b * K + k), e.g. :class:`HFStepper`.
    Returns the ``num_return`` (default K) best finished hypotheses per context.
    """
    if num_beams < 1 or max_new_tokens < 1:
        raise ValueError(f"num_beams and max_new_tokens must be >= 1, got {num_beams}, {max_new_tokens}")
    if early_stopping not in ("true", "false", "never"):
        raise ValueError(f"early_stopping must be 'true', 'false' or 'never', got {early_stopping!r}")
    R = num_beams if num_return is None else num_return
    if not 1 <= R <= num_beams:
        raise ValueError(f"num_return must be in 1..num_beams={num_beams}, got {R}")
    B, L = ids_BxL.shape
    K, T = num_beams, max_new_tokens
    dev = ids_BxL.device
    if mask_BxL is None:
        mask_BxL = torch.ones_like(ids_BxL)
    # every beam starts from the context; only beam 0 is live, so step 1 does not pick K copies
    logits_NxV = stepper.start(ids_BxL.repeat_interleave(K, 0), mask_BxL.repeat_interleave(K, 0))
    V = logits_NxV.shape[-1]
    run_scores_BxK = torch.full((B, K), NEG, device=dev)
    run_scores_BxK[:, 0] = 0.0
    run_tokens_BxKxT = torch.full((B, K, T), pad_id, dtype=torch.long, device=dev)
    pool_scores_BxK = torch.full((B, K), NEG, device=dev)  # the n-best pool: finished hypotheses
    pool_tokens_BxKxT = torch.full((B, K, T), pad_id, dtype=torch.long, device=dev)
    pool_len_BxK = torch.zeros((B, K), dtype=torch.long, device=dev)
    pool_full_BxK = torch.zeros((B, K), dtype=torch.bool, device=dev)
    open_Bx1 = torch.ones((B, 1), dtype=torch.bool, device=dev)  # False: this context can stop
    batch_B = torch.arange(B, device=dev)[:, None]
    first_K = torch.arange(2 * K, device=dev) < K  # candidate ranks that may finish

    for t in range(T):
        n_gen = t + 1  # generated tokens after this step
        logp_BxKxV = torch.log_softmax(logits_NxV, dim=-1).view(B, K, V) + run_scores_BxK[:, :, None]
        cand_scores_Bx2K, cand_idx_Bx2K = torch.topk(logp_BxKxV.view(B, K * V), 2 * K)
        parent_Bx2K, tok_Bx2K = cand_idx_Bx2K // V, cand_idx_Bx2K % V
        cand_tokens_Bx2KxT = run_tokens_BxKxT[batch_B, parent_Bx2K].clone()
        cand_tokens_Bx2KxT[:, :, t] = tok_Bx2K
        ends_Bx2K = (tok_Bx2K == eos_id) if eos_id is not None else torch.zeros_like(tok_Bx2K, dtype=torch.bool)
        if n_gen == T:
            ends_Bx2K = torch.ones_like(ends_Bx2K)

        # the K best candidates that go on (a finished one can never be picked: -1e9)
        keep_Bx2K = cand_scores_Bx2K + ends_Bx2K.float() * NEG
        run_scores_BxK, pick_BxK = torch.topk(keep_Bx2K, K)
        run_tokens_BxKxT = cand_tokens_Bx2KxT[batch_B, pick_BxK]
        parent_BxK = parent_Bx2K.gather(1, pick_BxK)

        # finished candidates among the first K enter the pool with the length penalty
        new_Bx2K = ends_Bx2K & first_K[None, :]
        normed_Bx2K = cand_scores_Bx2K / (n_gen**length_penalty)
        accept_Bx1 = open_Bx1 & ~(pool_full_BxK.all(-1, keepdim=True) & (early_stopping == "true"))
        normed_Bx2K = normed_Bx2K + (~accept_Bx1).float() * NEG + (~new_Bx2K).float() * NEG
        all_scores = torch.cat([pool_scores_BxK, normed_Bx2K], 1)
        all_tokens = torch.cat([pool_tokens_BxKxT, cand_tokens_Bx2KxT], 1)
        all_len = torch.cat([pool_len_BxK, torch.full_like(tok_Bx2K, n_gen)], 1)
        all_full = torch.cat([pool_full_BxK, new_Bx2K], 1)
        pool_scores_BxK, best_BxK = torch.topk(all_scores, K)
        pool_tokens_BxKxT = all_tokens[batch_B, best_BxK]
        pool_len_BxK = all_len.gather(1, best_BxK)
        pool_full_BxK = all_full.gather(1, best_BxK)

        # can the best running beam still beat the worst hypothesis in the pool?
        horizon = T if (early_stopping == "never" and length_penalty > 0) else n_gen
        best_running_Bx1 = run_scores_BxK[:, :1] / (horizon**length_penalty)
        worst_pool_BxK = torch.where(pool_full_BxK, pool_scores_BxK.min(-1, keepdim=True).values, NEG)
        open_Bx1 = open_Bx1 & (best_running_Bx1 > worst_pool_BxK).any(-1, keepdim=True)
        all_full_now = bool(pool_full_BxK.all()) and early_stopping == "true"
        if n_gen == T or not bool(open_Bx1.any()) or all_full_now:
            break
        rows_N = (parent_BxK + torch.arange(B, device=dev)[:, None] * K).reshape(-1)
        logits_NxV = stepper.step(run_tokens_BxKxT[:, :, t].reshape(-1), rows_N)

    n_tok = int(pool_len_BxK[:, :R].max())
    return BeamOutput(pool_tokens_BxKxT[:, :R, :n_tok], pool_scores_BxK[:, :R], pool_len_BxK[:, :R], t + 1)


@torch.no_grad()
def greedy(stepper, ids_BxL, mask_BxL=None, *, max_new_tokens: int, eos_id: int | None, pad_id: int = 0):
    """Argmax decoding, stopping each row at EOS: ``(tokens_BxT, lengths_B)``."""
    B = ids_BxL.shape[0]
    if mask_BxL is None:
        mask_BxL = torch.ones_like(ids_BxL)
    logits = stepper.start(ids_BxL, mask_BxL)
    out = torch.full((B, max_new_tokens), pad_id, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    lengths = torch.zeros(B, dtype=torch.long)
    for t in range(max_new_tokens):
        tok = logits.argmax(-1)
        tok = torch.where(done, torch.full_like(tok, pad_id), tok)
        out[:, t] = tok
        lengths += (~done).long()
        done |= tok == eos_id if eos_id is not None else torch.zeros_like(done)
        if bool(done.all()) or t + 1 == max_new_tokens:
            break
        logits = stepper.step(tok, torch.arange(B))
    return out[:, : int(lengths.max())], lengths
