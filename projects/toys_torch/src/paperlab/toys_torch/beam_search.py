"""Task 8: beam search (``beam.py``) on a small LM: n-best lists, score and diversity against width, speed.

The LM is ``beam_search.model_dir`` if given, else task 7's base model
(``runs/toys_torch/sonnet_sft/seed<seed>/base``) when that run exists, else a small Llama trained
here on the plays (stage ``lm/``). For every width the same contexts are decoded in one batch; the
result is checked against ``transformers``' ``generate(num_beams=...)`` on this model too.

    python -m paperlab.toys_torch.beam_search [beam_search.widths=[1,5,10]] [--resume]
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from paperlab.shared.cli import run_command
from paperlab.shared.seeding import seed_everything
from paperlab.toys_torch.beam import HFStepper, beam_search, greedy
from paperlab.toys_torch.common import (
    machine,
    parse_task_config,
    run_key,
    stage_resume,
    start_run,
    write_json,
    write_summary,
)
from paperlab.toys_torch.data import load_plays
from paperlab.toys_torch.lm import build_llama, encode_docs, load_saved, set_threads, train_lm, train_tokenizer


def get_model(cfg, run_dir: Path, resume: bool):
    """(model, tokenizer, where it came from)."""
    bc = cfg.beam_search
    if bc.model_dir:
        return (*load_saved(bc.model_dir, "beam_search.model_dir"), bc.model_dir)
    task7 = Path(f"runs/toys_torch/sonnet_sft/seed{cfg.seed}/base")
    if (task7 / "config.json").is_file():
        return (*load_saved(task7, "task 7's base model"), str(task7))
    own = run_dir / "model"
    if not (own / "config.json").is_file():
        plays = load_plays(bc.plays_path)
        n_val = int(len(plays) * bc.lm.val_frac)
        tok = train_tokenizer(plays[:-n_val], bc.lm.vocab_size)
        torch.manual_seed(cfg.seed)
        model = build_llama(bc.lm, tok)
        info = train_lm(
            model,
            encode_docs(tok, plays[:-n_val]),
            encode_docs(tok, plays[-n_val:]),
            bc.lm,
            run_dir / "lm",
            cfg.seed,
            stage_resume(run_dir / "lm", resume),
            saved_config=run_key(cfg),
        )
        if not info["finished"]:
            return None, None, None
        model.save_pretrained(own)
        tok.save_pretrained(own)
    return (*load_saved(own, "the beam-search LM"), str(own))


def distinct_n(seqs: list[list[int]], n: int) -> float:
    """Distinct n-grams / all n-grams over a list of token sequences (1.0: no n-gram repeats)."""
    grams = [tuple(s[i : i + n]) for s in seqs for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def check_against_hf(model, ids, mask, width: int, bc, eos: int, pad: int) -> dict:
    """Our beam search vs ``generate(num_beams=width)`` on the same batch: equal tokens, score gap."""
    es = {"true": True, "false": False, "never": "never"}[bc.early_stopping]
    ref = model.generate(
        input_ids=ids,
        attention_mask=mask,
        num_beams=width,
        num_return_sequences=width,
        length_penalty=bc.length_penalty,
        early_stopping=es,
        max_new_tokens=bc.max_new_tokens,
        do_sample=False,
        eos_token_id=eos,
        pad_token_id=pad,
        output_scores=True,
        return_dict_in_generate=True,
    )
    ours = beam_search(
        HFStepper(model),
        ids,
        mask,
        num_beams=width,
        max_new_tokens=bc.max_new_tokens,
        eos_id=eos,
        pad_id=pad,
        length_penalty=bc.length_penalty,
        early_stopping=bc.early_stopping,
    )
    B = ids.shape[0]
    ref_tok = ref.sequences[:, ids.shape[1] :].view(B, width, -1)
    same = all(
        torch.equal(ref_tok[b, r, : ours.lengths_BxR[b, r]], ours.tokens_BxRxT[b, r, : ours.lengths_BxR[b, r]])
        for b in range(B)
        for r in range(width)
    )
    gap = (ref.sequences_scores.view(B, width) - ours.scores_BxR).abs().max() if width > 1 else torch.tensor(0.0)
    return {"width": width, "sequences_equal": bool(same), "max_score_diff": float(gap)}


def _main(argv=None):
    cfg, resume = parse_task_config("beam_search", argv, __doc__)
    bc = cfg.beam_search
    set_threads(cfg.threads)
    seed_everything(cfg.seed)
    t0 = time.time()
    run_dir = start_run(cfg, resume, ["lm"])
    model, tok, source = get_model(cfg, run_dir, resume)
    if model is None:
        return
    eos, pad = tok.eos_token_id, tok.pad_token_id
    tok.padding_side = "left"
    enc = tok(list(bc.contexts), return_tensors="pt", padding=True, add_special_tokens=False)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    B = ids.shape[0]

    def decode(tokens, length):
        return tok.decode(tokens[:length].tolist(), skip_special_tokens=True)

    g_tok, g_len = greedy(HFStepper(model), ids, mask, max_new_tokens=bc.max_new_tokens, eos_id=eos, pad_id=pad)
    rows, nbest = [], {}
    for width in bc.widths:
        best = None
        for _ in range(bc.timing_repeats):
            t = time.perf_counter()
            out = beam_search(
                HFStepper(model),
                ids,
                mask,
                num_beams=width,
                max_new_tokens=bc.max_new_tokens,
                eos_id=eos,
                pad_id=pad,
                length_penalty=bc.length_penalty,
                early_stopping=bc.early_stopping,
            )
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        seqs = [[out.tokens_BxRxT[b, r, : out.lengths_BxR[b, r]].tolist() for r in range(width)] for b in range(B)]
        top_logp = [float(out.scores_BxR[b, 0]) * float(out.lengths_BxR[b, 0]) ** bc.length_penalty for b in range(B)]
        row = {
            "width": width,
            "top1_score_mean": float(out.scores_BxR[:, 0].mean()),
            "top1_logprob_mean": sum(top_logp) / B,
            "top1_length_mean": float(out.lengths_BxR[:, 0].float().mean()),
            "top1_ends_eos_share": float(sum(s[0][-1] == eos for s in seqs) / B),
            "nbest_score_spread": float((out.scores_BxR[:, 0] - out.scores_BxR[:, -1]).mean()),
            "distinct2_nbest": sum(distinct_n(s, 2) for s in seqs) / B,
            "unique_hypotheses_share": sum(len({tuple(x) for x in s}) / width for s in seqs) / B,
            "top1_equals_greedy_share": float(
                sum(s[0] == g_tok[b, : g_len[b]].tolist() for b, s in enumerate(seqs)) / B
            ),
            "steps": out.steps,
            "seconds": round(best, 4),
            "ms_per_step": round(1000 * best / out.steps, 2),  # one decoding step = B * width new tokens
            "ms_per_beam_token": round(1000 * best / (out.steps * B * width), 3),
        }
        rows.append(row)
        print(
            f"width {width:3d}: top-1 score {row['top1_score_mean']:.3f}  distinct-2 {row['distinct2_nbest']:.2f}"
            f"  {row['ms_per_step']:.1f} ms/step"
        )
        if width == bc.shown_width or width == max(bc.widths):
            nbest[str(width)] = [
                {
                    "context": bc.contexts[b],
                    "hypotheses": [
                        {
                            "text": decode(out.tokens_BxRxT[b, r], int(out.lengths_BxR[b, r])),
                            "score": round(float(out.scores_BxR[b, r]), 4),
                            "tokens": int(out.lengths_BxR[b, r]),
                        }
                        for r in range(width)
                    ],
                }
                for b in range(B)
            ]
    checks = [check_against_hf(model, ids, mask, w, bc, eos, pad) for w in sorted({min(bc.widths), bc.shown_width})]
    n_params = sum(p.numel() for p in model.parameters())
    write_json(
        {
            "model": source,
            "n_params": n_params,
            "contexts": list(bc.contexts),
            "rows": rows,
            "hf_check": checks,
            "length_penalty": bc.length_penalty,
            "early_stopping": bc.early_stopping,
            "max_new_tokens": bc.max_new_tokens,
            **machine(),
        },
        run_dir / "eval.json",
    )
    write_json(nbest, run_dir / "nbest.json")
    write_summary(run_dir, cfg, t0, model=source)
    print(f"beam_search: wrote {run_dir}/eval.json and nbest.json (checks vs transformers: {checks})")


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
