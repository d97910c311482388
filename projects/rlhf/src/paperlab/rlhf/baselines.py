"""Stage 5, PPO without a critic on the same proxy reward model: TRL's ``RLOOTrainer`` and ``GRPOTrainer``.

    python -m paperlab.rlhf.baselines rloo --config configs/rlhf/shakespeare.yaml [--resume]
    python -m paperlab.rlhf.baselines grpo --config configs/rlhf/shakespeare.yaml [--resume]

Both sample ``num_generations`` responses per prompt (temperature 1, no top-k) and replace the value
function by the other samples of the same prompt: RLOO's baseline is the mean reward of the k-1 others
(Ahmadian et al. 2024), GRPO's advantage is the reward standardised within the group (Shao et al. 2024).
The model is passed as the saved base-model directory: with beta > 0 TRL rebuilds the reference from
``config._name_or_path``. The reward function is the proxy reward model only. The policy is saved every
``snapshot_every`` steps for the over-optimisation curve; TRL's own checkpoints make ``--resume`` work.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from paperlab.rlhf.config import Config
from paperlab.rlhf.data import make_prompts
from paperlab.rlhf.model import load_tokenizer, pick_device
from paperlab.rlhf.reward import RewardScorer
from paperlab.rlhf.stages import (
    base_dir,
    decode_prompts,
    guard_trainer_dir,
    jsonl_log_callback,
    prompt_sets,
    trainer_stop_callback,
)
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import StopSignal, run_command
from paperlab.shared.config import add_config_args, parse_args
from paperlab.shared.seeding import seed_everything

METHODS = ("rloo", "grpo")


def snapshot_callback(snapshots: Path, every: int, total: int):
    from transformers import TrainerCallback

    class _Snap(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            step = state.global_step
            if model is not None and (step % every == 0 or step == total):
                model.save_pretrained(snapshots / f"step-{step:05d}")

    return _Snap()


def proxy_reward_fn(scorer: RewardScorer):
    def proxy_rm(prompts, completions, **kwargs) -> list[float]:
        return scorer.score(list(prompts), list(completions)).tolist()

    return proxy_rm


def train_baseline(method: str, cfg: Config, resume: bool = False, text: str | None = None,
                   reward_fn=None) -> dict:  # fmt: skip
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; one of {METHODS}")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    run_dir = Path(cfg.stage_dir(method))
    resume_arg = guard_trainer_dir(run_dir, resume)
    init = str(base_dir(cfg))
    tok = load_tokenizer(init)
    train_docs = prompt_sets(cfg, tok, n_eval=1, text=text).train_docs
    n_prompts = cfg.trl_steps * cfg.trl_prompts_per_step
    prompts = make_prompts(train_docs, n_prompts, cfg.prompt_min_tokens, cfg.prompt_tokens,
                           np.random.default_rng([cfg.seed, 7]))  # fmt: skip
    data = Dataset.from_list([{"prompt": p} for p in decode_prompts(tok, prompts)])
    if reward_fn is None:
        reward_fn = proxy_reward_fn(RewardScorer(Path(cfg.input_dir("rm")) / "model", device=cfg.device))
    dev = pick_device(cfg.device)
    on_cpu = dev.type == "cpu"
    common = dict(
        output_dir=str(run_dir / "trainer"), per_device_train_batch_size=cfg.trl_prompts_per_step * cfg.num_generations,
        num_generations=cfg.num_generations, max_completion_length=cfg.response_tokens, temperature=1.0, top_p=1.0,
        top_k=0, learning_rate=cfg.trl_lr, max_steps=cfg.trl_steps, logging_steps=1, save_strategy="steps",
        save_steps=cfg.checkpoint_every, save_total_limit=1, use_cpu=on_cpu, bf16=False, report_to="none",
        seed=cfg.seed, disable_tqdm=True, dataloader_num_workers=0, lr_scheduler_type="constant",
    )  # fmt: skip
    if method == "rloo":
        args, Trainer = RLOOConfig(**common, beta=cfg.rloo_beta), RLOOTrainer
    else:
        args, Trainer = GRPOConfig(**common, beta=cfg.grpo_beta), GRPOTrainer
    t0 = time.time()
    with StopSignal() as stop:
        trainer = Trainer(
            model=init,
            reward_funcs=reward_fn,
            args=args,
            train_dataset=data,
            processing_class=tok,
            callbacks=[
                jsonl_log_callback(run_dir, cfg, resume),
                trainer_stop_callback(stop),
                snapshot_callback(run_dir / "snapshots", cfg.snapshot_every, cfg.trl_steps),
            ],
        )
        trainer.train(resume_from_checkpoint=resume_arg or None)
    step = trainer.state.global_step
    wall = round(time.time() - t0, 1)
    tokens = max((float(h.get("num_tokens", 0)) for h in trainer.state.log_history), default=0.0)  # prompt+completion
    summary = {"steps": step, "wall_time_s": wall, "finished": step >= cfg.trl_steps, "seed": cfg.seed,
               "device": str(dev), "method": method, "beta": args.beta, "num_generations": cfg.num_generations,
               "tokens_processed": tokens, "tokens_per_s": round(tokens / max(wall, 1e-9), 1),
               "note": "wall time and tokens/s of this process only (a resumed run: its last part)"}  # fmt: skip
    if summary["finished"]:
        trainer.model.save_pretrained(run_dir / "model")
        tok.save_pretrained(run_dir / "model")
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _main(argv=None) -> None:
    from paperlab.shared.config import config_from_args

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method", choices=METHODS)
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    print(json.dumps(train_baseline(args.method, cfg, resume=args.resume), indent=2))


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
