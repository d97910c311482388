"""Stage 2, the preference pairs: two completions of the base model per prompt, labelled by the gold scorer
through a Bradley-Terry draw (Gao et al. 2022's synthetic setup; the labels are noisy like human ones).

    python -m paperlab.rlhf.preferences --config configs/rlhf/shakespeare.yaml

P(a preferred over b) = sigmoid((gold(a) - gold(b)) / bt_scale); the label is one draw from it. Writes
``out_dir/pairs/pairs.jsonl`` (prompt, chosen, rejected, and the gold scores for analysis only: the
reward model reads prompt/chosen/rejected) and ``summary.json``.
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
from paperlab.rlhf.data import make_prompts, write_jsonl
from paperlab.rlhf.gold import gold_scores
from paperlab.rlhf.stages import decode_prompts, load_base, prompt_sets, sample_batched
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.seeding import seed_everything


def label_pairs(gold_a: np.ndarray, gold_b: np.ndarray, bt_scale: float, rng: np.random.Generator) -> np.ndarray:
    """True where a is the chosen answer: one Bernoulli draw of sigmoid((gold_a - gold_b) / bt_scale) per pair."""
    p = 1.0 / (1.0 + np.exp(-(gold_a - gold_b) / bt_scale))
    return rng.random(len(p)) < p


def make_pairs(cfg: Config, text: str | None = None) -> dict:
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    t0 = time.time()
    tok, lm = load_base(cfg)
    rng = np.random.default_rng(cfg.seed)
    prompts = make_prompts(prompt_sets(cfg, tok, text=text).train_docs, cfg.n_pairs, cfg.prompt_min_tokens,
                           cfg.prompt_tokens, rng)  # fmt: skip
    gen = torch.Generator().manual_seed(cfg.seed)
    _, _, texts_a = sample_batched(lm, tok, prompts, cfg.response_tokens, gen)
    _, _, texts_b = sample_batched(lm, tok, prompts, cfg.response_tokens, gen)
    ga, gb = np.array(gold_scores(texts_a, cfg.gold)), np.array(gold_scores(texts_b, cfg.gold))
    a_wins = label_pairs(ga, gb, cfg.bt_scale, rng)
    rows = []
    for p, ta, tb, sa, sb, w in zip(decode_prompts(tok, prompts), texts_a, texts_b, ga, gb, a_wins):
        (c, sc), (r, sr) = ((ta, sa), (tb, sb)) if w else ((tb, sb), (ta, sa))
        rows.append({"prompt": p, "chosen": c, "rejected": r, "gold_chosen": sc, "gold_rejected": sr})
    out = Path(cfg.stage_dir("pairs"))
    write_jsonl(out / "pairs.jsonl", rows)
    diff = np.array([r["gold_chosen"] - r["gold_rejected"] for r in rows])
    decided = diff != 0
    summary = {
        "pairs": len(rows), "seed": cfg.seed, "gold": cfg.gold, "bt_scale": cfg.bt_scale,
        "wall_time_s": round(time.time() - t0, 1),
        "gold_ties": float(np.mean(~decided)),  # both completions equally scored (mostly both neutral): coin flips
        "label_agrees_with_gold": float(np.mean(diff[decided] > 0)) if decided.any() else math.nan,
        "gold_mean": float(np.mean(np.concatenate([ga, gb]))), "gold_std": float(np.std(np.concatenate([ga, gb]))),
        "gold_nonzero": float(np.mean(np.concatenate([ga, gb]) != 0)),
    }  # fmt: skip
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    cfg = config_from_args(Config, parse_args(parser, argv))
    print(json.dumps(make_pairs(cfg), indent=2))


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
