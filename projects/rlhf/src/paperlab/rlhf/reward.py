"""Stage 3, the proxy reward model: TRL's ``RewardTrainer`` on the gold-labelled pairs (Bradley-Terry loss).

    python -m paperlab.rlhf.reward --config configs/rlhf/shakespeare.yaml [--resume]

The model is the base LM with a sequence-classification head (``AutoModelForSequenceClassification``,
``num_labels=1``): r(x, y) is the head's output on the last token of prompt + response + EOS. Loss:
-log sigmoid(r(x, y_chosen) - r(x, y_rejected)). A seeded ``rm_test_frac`` of the pairs is held out for the
accuracy, the BT loss and the calibration. Writes ``out_dir/rm/model`` (save_pretrained), ``eval.json``.
:class:`RewardScorer` is how every later stage reads the proxy reward.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from paperlab.rlhf.config import Config
from paperlab.rlhf.core import bt_accuracy, bt_loss
from paperlab.rlhf.data import read_preferences, split_rows
from paperlab.rlhf.model import check_vocab, load_tokenizer, pick_device, positions
from paperlab.rlhf.stages import base_dir, guard_trainer_dir, jsonl_log_callback, trainer_stop_callback
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import StopSignal, run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.seeding import seed_everything


class RewardScorer:
    """r(prompt, response) of a saved reward model (a ``save_pretrained`` folder with its tokenizer)."""

    def __init__(self, path: str | Path, max_length: int | None = None, device: str = "cpu"):
        from transformers import AutoModelForSequenceClassification

        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no reward model at {path}: train it first (make train-rlhf-rm)")
        self.tok = load_tokenizer(str(path))
        self.device = pick_device(device)
        self.model = AutoModelForSequenceClassification.from_pretrained(str(path)).eval().to(self.device)
        check_vocab(self.tok, self.model, str(path))
        self.max_length = max_length

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of text + EOS (as RewardTrainer saw them), keeping the last ``max_length`` tokens."""
        eos = self.tok.eos_token
        ids = self.tok([t if t.endswith(eos) else t + eos for t in texts], add_special_tokens=False)["input_ids"]
        return [i[-self.max_length :] for i in ids] if self.max_length else ids

    @torch.no_grad()
    def score_ids(self, ids: list[list[int]], batch_size: int = 128) -> torch.Tensor:
        out = []
        for i in range(0, len(ids), batch_size):
            chunk = ids[i : i + batch_size]
            L = max(len(c) for c in chunk)
            x = torch.full((len(chunk), L), self.tok.pad_token_id, dtype=torch.long)
            m = torch.zeros((len(chunk), L), dtype=torch.long)
            for j, c in enumerate(chunk):  # right padding, as TRL's preference collator
                x[j, : len(c)] = torch.tensor(c)
                m[j, : len(c)] = 1
            x, m = x.to(self.device), m.to(self.device)
            out.append(self.model(input_ids=x, attention_mask=m, position_ids=positions(m)).logits[:, 0].float().cpu())
        return torch.cat(out) if out else torch.zeros(0)

    def score(self, prompts: list[str], responses: list[str]) -> torch.Tensor:
        return self.score_ids(self.encode([p + r for p, r in zip(prompts, responses)]))


def pair_metrics(r_chosen: torch.Tensor, r_rejected: torch.Tensor, n_bins: int = 10) -> dict:
    """Accuracy, BT loss and calibration: predicted P(a > b) against the observed frequency, both orders."""
    p = torch.sigmoid(r_chosen - r_rejected).numpy()
    pred = np.concatenate([p, 1 - p])
    label = np.concatenate([np.ones_like(p), np.zeros_like(p)])
    bins = np.minimum((pred * n_bins).astype(int), n_bins - 1)
    calib = [{"bin": b, "n": int((bins == b).sum()), "predicted": float(pred[bins == b].mean()),
              "observed": float(label[bins == b].mean())} for b in range(n_bins) if (bins == b).any()]  # fmt: skip
    ece = sum(c["n"] * abs(c["predicted"] - c["observed"]) for c in calib) / len(pred)
    return {"accuracy": bt_accuracy(r_chosen, r_rejected), "bt_loss": bt_loss(r_chosen, r_rejected).item(),
            "pairs": len(p), "ece": float(ece), "calibration": calib}  # fmt: skip


def train_reward_model(cfg_rm: dict, train_rows: list[dict], test_rows: list[dict], init_dir: str, run_dir: Path,
                       cfg: Config, resume: bool = False, max_length: int | None = None,
                       pretokenized: bool = False) -> dict:  # fmt: skip
    """RewardTrainer on ``train_rows`` from the LM in ``init_dir``; returns the held-out metrics (eval.json).

    ``cfg_rm``: epochs, lr, batch_size. ``pretokenized``: rows carry ``chosen_ids``/``rejected_ids``."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    resume_arg = guard_trainer_dir(run_dir, resume)
    t0 = time.time()
    tok = load_tokenizer(init_dir)
    model = AutoModelForSequenceClassification.from_pretrained(init_dir, num_labels=1)
    model.config.pad_token_id = tok.pad_token_id
    check_vocab(tok, model, init_dir)
    keys = ("chosen_ids", "rejected_ids") if pretokenized else ("prompt", "chosen", "rejected")
    data = Dataset.from_list([{k: r[k] for k in keys} for r in train_rows])
    steps_per_epoch = max(1, len(train_rows) // cfg_rm["batch_size"])
    dev = pick_device(cfg.device)
    on_cpu = dev.type == "cpu"
    args = RewardConfig(
        output_dir=str(run_dir / "trainer"), per_device_train_batch_size=cfg_rm["batch_size"],
        num_train_epochs=cfg_rm["epochs"], learning_rate=cfg_rm["lr"], lr_scheduler_type="cosine",
        warmup_steps=max(1, steps_per_epoch // 10), weight_decay=0.0, use_cpu=on_cpu, bf16=False,
        logging_steps=max(1, steps_per_epoch // 5), save_strategy="steps", save_steps=max(10, steps_per_epoch // 2),
        save_total_limit=1, report_to="none", seed=cfg.seed, max_length=None, disable_tqdm=True,
        dataloader_num_workers=0,
    )  # fmt: skip
    with StopSignal() as stop:
        trainer = RewardTrainer(
            model=model,
            args=args,
            train_dataset=data,
            processing_class=tok,
            callbacks=[jsonl_log_callback(run_dir, cfg, resume), trainer_stop_callback(stop)],
        )
        trainer.train(resume_from_checkpoint=resume_arg or None)
        if stop.requested:
            return {"finished": False}
    model.eval()
    out = run_dir / "model"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    scorer = RewardScorer(out, max_length=max_length, device=cfg.device)
    if pretokenized:
        rc, rr = (
            scorer.score_ids([r["chosen_ids"] for r in test_rows]),
            scorer.score_ids([r["rejected_ids"] for r in test_rows]),
        )
        tc, tr = (
            scorer.score_ids([r["chosen_ids"] for r in train_rows]),
            scorer.score_ids([r["rejected_ids"] for r in train_rows]),
        )
    else:
        rc = scorer.score([r["prompt"] for r in test_rows], [r["chosen"] for r in test_rows])
        rr = scorer.score([r["prompt"] for r in test_rows], [r["rejected"] for r in test_rows])
        tc = scorer.score([r["prompt"] for r in train_rows], [r["chosen"] for r in train_rows])
        tr = scorer.score([r["prompt"] for r in train_rows], [r["rejected"] for r in train_rows])
    result = {"test": pair_metrics(rc, rr), "train": {k: v for k, v in pair_metrics(tc, tr).items()
                                                       if k != "calibration"},
              "train_pairs": len(train_rows), "test_pairs": len(test_rows), "seed": cfg.seed,
              "steps": trainer.state.global_step, "wall_time_s": round(time.time() - t0, 1), "finished": True,
              "device": str(dev), "rewards_test": {"chosen": rc.tolist(), "rejected": rr.tolist()}}  # fmt: skip
    return result


def train_proxy_rm(cfg: Config, resume: bool = False) -> dict:
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    rows = read_preferences(Path(cfg.stage_dir("pairs")) / "pairs.jsonl")
    train_rows, test_rows = split_rows(rows, cfg.rm_test_frac, cfg.seed)
    run_dir = Path(cfg.stage_dir("rm"))
    result = train_reward_model({"epochs": cfg.rm_epochs, "lr": cfg.rm_lr, "batch_size": cfg.rm_batch_size},
                                train_rows, test_rows, str(base_dir(cfg)), run_dir, cfg, resume)  # fmt: skip
    if not result["finished"]:
        return result
    # the label-noise ceiling: how often the gold score itself ranks the held-out labels right (ties: 1/2).
    # Read from the analysis columns of the pairs file; the reward model never saw them.
    if all("gold_chosen" in r for r in test_rows):
        d = np.array([r["gold_chosen"] - r["gold_rejected"] for r in test_rows])
        result["test"]["gold_accuracy"] = float(np.mean(np.where(d == 0, 0.5, d > 0)))
    atomic_write_text(run_dir / "eval.json", json.dumps(result, indent=2) + "\n")
    return result


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    result = train_proxy_rm(cfg, resume=args.resume)
    print(json.dumps({k: v for k, v in result.get("test", result).items() if k != "calibration"}, indent=2))


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
