"""Real human preferences: a reward model on Anthropic HH-RLHF (harmless-base, the 2,312-pair test file).

    python -m paperlab.rlhf.hh --config configs/rlhf/shakespeare.yaml [--resume]

Only the test split of harmless-base is on this machine, so it is split again here: a seeded
``1 - hh_test_frac`` trains TRL's ``RewardTrainer`` (initialised from the base model, whose byte-level BPE
was trained on Shakespeare: modern dialogue costs more tokens, nothing is out of vocabulary) and the rest
measures the accuracy. Each transcript keeps its last ``hh_max_length`` tokens (the final answers differ;
the shared dialogue before them is cut from the left). A length heuristic ("the shorter final answer is
the harmless one") is measured on the same held-out pairs. Writes ``out_dir/hh/eval.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from paperlab.rlhf.config import Config
from paperlab.rlhf.data import read_hh, split_rows
from paperlab.rlhf.model import load_tokenizer
from paperlab.rlhf.reward import train_reward_model
from paperlab.rlhf.stages import base_dir
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.seeding import seed_everything

ASSISTANT = "\n\nAssistant:"


def final_answer(transcript: str) -> str:
    return transcript.rsplit(ASSISTANT, 1)[-1]


def length_baseline(rows: list[dict]) -> float:
    """Accuracy of 'the shorter final answer is chosen' (ties: 1/2)."""
    d = np.array([len(final_answer(r["rejected"])) - len(final_answer(r["chosen"])) for r in rows])
    return float(np.mean(np.where(d == 0, 0.5, d > 0)))


def train_hh(cfg: Config, resume: bool = False) -> dict:
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    rows = read_hh(cfg.hh_data_dir)
    train_rows, test_rows = split_rows(rows, cfg.hh_test_frac, cfg.seed)
    init = str(base_dir(cfg))
    tok = load_tokenizer(init)
    from transformers import AutoConfig

    positions = getattr(AutoConfig.from_pretrained(init), "n_positions", None) or 10**9
    if cfg.hh_max_length > positions:
        raise ValueError(f"hh_max_length={cfg.hh_max_length} exceeds the base model's {positions} positions")
    eos = tok.eos_token

    def encode(part: list[dict]) -> list[dict]:
        out = []
        for r in part:
            c, j = tok([r["chosen"] + eos, r["rejected"] + eos], add_special_tokens=False)["input_ids"]
            out.append({"chosen_ids": c[-cfg.hh_max_length :], "rejected_ids": j[-cfg.hh_max_length :]})
        return out

    run_dir = Path(cfg.stage_dir("hh"))
    result = train_reward_model({"epochs": cfg.hh_epochs, "lr": cfg.hh_lr, "batch_size": cfg.rm_batch_size},
                                encode(train_rows), encode(test_rows), init, run_dir, cfg, resume,
                                max_length=cfg.hh_max_length, pretokenized=True)  # fmt: skip
    if not result["finished"]:
        return result
    result["test"]["length_baseline_accuracy"] = length_baseline(test_rows)
    result["max_length_tokens"] = cfg.hh_max_length
    result["pairs_total"] = len(rows)
    atomic_write_text(run_dir / "eval.json", json.dumps(result, indent=2) + "\n")
    return result


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    result = train_hh(config_from_args(Config, args), resume=args.resume)
    print(json.dumps({k: v for k, v in result.get("test", result).items() if k != "calibration"}, indent=2))


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
