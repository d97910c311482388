"""Stage 6, measurement: the over-optimisation curves, best-of-n, base-vs-RLHF samples (gold and proxy scores).

    python -m paperlab.rlhf.evaluate --config configs/rlhf/shakespeare.yaml

For every saved policy snapshot of PPO, RLOO and GRPO (and the base model at step 0), on the same held-out
prompts (validation speeches) and the same sampling seed: sample ``eval_samples`` responses per prompt at
temperature 1, then measure
  KL(pi || base)  = E_{y ~ pi} sum_t [log pi(y_t | .) - log base(y_t | .)]   (k1, per sequence, in nats)
  proxy           = the reward model's score (what the policy was trained on)
  gold            = the hidden gold score (what we wanted): VADER, or VADER minus repeated words (``gold``)
  sentiment, repeats  the two parts of the vader-rep gold score, recorded for every gold scorer
Best-of-n samples ``bon_max_n`` responses per prompt from the base model, keeps the one with the highest
proxy score among n, and reports its gold and proxy scores at KL = log n - (n - 1)/n (Stiennon et al.).
Writes ``out_dir/eval/`` : ``curve-<method>.jsonl``, ``bon.json``, ``samples.jsonl``, ``eval.json``.
This is the only place besides the labelling of the pairs where the gold scorer is used.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from paperlab.rlhf.config import Config
from paperlab.rlhf.core import best_of_n_kl, logprobs_of
from paperlab.rlhf.data import write_jsonl
from paperlab.rlhf.gold import gold_scores, repeats, sentiment
from paperlab.rlhf.model import left_pad, load_causal_lm, pick_device, response_forward
from paperlab.rlhf.reward import RewardScorer
from paperlab.rlhf.stages import decode_prompts, load_base, prompt_sets, sample_batched
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.seeding import seed_everything

METHODS = ("ppo", "rloo", "grpo")
EVAL_SEED = 4321  # the sampling seed of every measurement (same draws for every snapshot)


@torch.no_grad()
def sequence_logprobs(lm, tok, prompts, r_ids, r_mask, batch_size: int = 64) -> torch.Tensor:
    """sum_t log lm(y_t | prompt, y_<t) over each response's real tokens."""
    out = []
    for i in range(0, len(prompts), batch_size):
        p_ids, p_mask = (t.to(lm.device) for t in left_pad(prompts[i : i + batch_size], tok.pad_token_id))
        r, m = r_ids[i : i + batch_size], r_mask[i : i + batch_size]
        out.append((logprobs_of(response_forward(lm, p_ids, p_mask, r, m), r) * m).sum(1))
    return torch.cat(out)


def measure(lm, ref_lm, tok, scorer: RewardScorer, prompts: list[list[int]], cfg: Config) -> dict:
    """KL to the base, proxy and gold scores of ``lm``'s samples on ``prompts`` (each ``eval_samples`` times)."""
    lm.eval()
    reps = [p for p in prompts for _ in range(cfg.eval_samples)]
    r_ids, r_mask, texts = sample_batched(lm, tok, reps, cfg.response_tokens, torch.Generator().manual_seed(EVAL_SEED))
    kl = sequence_logprobs(lm, tok, reps, r_ids, r_mask) - sequence_logprobs(ref_lm, tok, reps, r_ids, r_mask)
    proxy = scorer.score(decode_prompts(tok, reps), texts)
    gold = torch.tensor(gold_scores(texts, cfg.gold))
    n = len(reps)
    kl = kl.cpu()
    return {"kl": kl.mean().item(), "kl_se": kl.std().item() / math.sqrt(n), "proxy": proxy.mean().item(),
            "proxy_se": proxy.std().item() / math.sqrt(n), "gold": gold.mean().item(),
            "gold_se": gold.std().item() / math.sqrt(n), "sentiment": float(np.mean([sentiment(t) for t in texts])),
            "repeats": float(np.mean([repeats(t) for t in texts])), "response_len": r_mask.sum(1).float().mean().item(),
            "samples": n}  # fmt: skip


def snapshots(run_dir: Path) -> list[tuple[int, Path]]:
    return sorted((int(p.name.split("-")[1]), p) for p in (run_dir / "snapshots").glob("step-*")
                  if (p / "config.json").is_file())  # fmt: skip


def best_of_n(lm, tok, scorer, prompts, cfg: Config) -> list[dict]:
    """For n = 1, 2, 4, ..., bon_max_n: mean gold / proxy of the proxy-best of n base samples."""
    N = cfg.bon_max_n
    reps = [p for p in prompts for _ in range(N)]
    _, _, texts = sample_batched(lm, tok, reps, cfg.response_tokens, torch.Generator().manual_seed(EVAL_SEED + 1))
    proxy = scorer.score(decode_prompts(tok, reps), texts).numpy().reshape(len(prompts), N)
    gold = np.array(gold_scores(texts, cfg.gold)).reshape(len(prompts), N)
    rows, n = [], 1
    while n <= N:  # N / n disjoint groups of n samples per prompt: an unbiased average over groups
        g_p, g_g = proxy.reshape(len(prompts), N // n, n), gold.reshape(len(prompts), N // n, n)
        pick = g_p.argmax(-1)[..., None]
        sel_g, sel_p = np.take_along_axis(g_g, pick, -1), np.take_along_axis(g_p, pick, -1)
        rows.append({"n": n, "kl": best_of_n_kl(n), "gold": float(sel_g.mean()), "proxy": float(sel_p.mean()),
                     "gold_se": float(sel_g.std() / math.sqrt(sel_g.size)), "groups": int(sel_g.size)})  # fmt: skip
        n *= 2
    return rows


def side_by_side(models: dict, tok, scorer, prompts, cfg: Config) -> list[dict]:
    """One sample of each model on each prompt (same seed per model), with the gold and proxy scores."""
    rows = [{"prompt": t} for t in decode_prompts(tok, prompts)]
    for name, lm in models.items():
        _, _, texts = sample_batched(
            lm, tok, prompts, cfg.response_tokens, torch.Generator().manual_seed(EVAL_SEED + 2)
        )
        proxy = scorer.score([r["prompt"] for r in rows], texts).tolist()
        for r, t, g, p in zip(rows, texts, gold_scores(texts, cfg.gold), proxy):
            r[name] = {"text": t, "gold": g, "proxy": p}
    return rows


def evaluate(cfg: Config, text: str | None = None) -> dict:
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    t0 = time.time()
    out = Path(cfg.stage_dir("eval"))
    tok, ref = load_base(cfg)
    scorer = RewardScorer(Path(cfg.input_dir("rm")) / "model", device=cfg.device)
    dev = pick_device(cfg.device)
    sets = prompt_sets(cfg, tok, text=text)
    prompts = sets.eval[: cfg.eval_prompts]
    base_row = {"step": 0, **measure(ref, ref, tok, scorer, prompts, cfg)}
    result = {"seed": cfg.seed, "gold": cfg.gold, "eval_prompts": len(prompts), "eval_samples": cfg.eval_samples,
              "base": base_row, "methods": {}}  # fmt: skip
    finals = {"base": ref}
    for method in METHODS:
        run_dir = Path(cfg.stage_dir(method))
        snaps = snapshots(run_dir)
        if not snaps:
            continue
        rows = [base_row]
        for step, path in snaps:
            rows.append(
                {"step": step, **measure(load_causal_lm(str(path), tok).to(dev), ref, tok, scorer, prompts, cfg)}
            )
            print(f"{method} step {step}: kl {rows[-1]['kl']:.2f} proxy {rows[-1]['proxy']:.3f} "
                  f"gold {rows[-1]['gold']:.3f}", flush=True)  # fmt: skip
        write_jsonl(out / f"curve-{method}.jsonl", rows)
        peak = max(rows, key=lambda r: r["gold"])
        result["methods"][method] = {"final": rows[-1], "peak_gold": peak["gold"], "peak_gold_step": peak["step"],
                                     "peak_gold_kl": peak["kl"], "snapshots": len(snaps)}  # fmt: skip
        final_dir = run_dir / "model" if (run_dir / "model" / "config.json").is_file() else snaps[-1][1]
        finals[method] = load_causal_lm(str(final_dir), tok).to(dev).eval()
    bon = best_of_n(ref, tok, scorer, sets.eval[: cfg.bon_prompts], cfg)
    atomic_write_text(out / "bon.json", json.dumps(bon, indent=2) + "\n")
    result["best_of_n"] = bon[-1]
    write_jsonl(out / "samples.jsonl", side_by_side(finals, tok, scorer, sets.eval[: cfg.sample_prompts], cfg))
    result["wall_time_s"] = round(time.time() - t0, 1)
    atomic_write_text(out / "eval.json", json.dumps(result, indent=2) + "\n")
    return result


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    cfg = config_from_args(Config, parse_args(parser, argv))
    result = evaluate(cfg)
    print(json.dumps({k: v for k, v in result.items() if k != "methods"}, indent=2))


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
