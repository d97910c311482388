"""What every stage after the base model shares: loading the saved base model, the prompt sets, batched sampling."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from paperlab.rlhf.config import Config
from paperlab.rlhf.data import make_prompts, read_shakespeare, speeches, split_text
from paperlab.rlhf.model import decode_responses, left_pad, load_causal_lm, load_tokenizer, pick_device, sample

EVAL_PROMPT_SEED = 1234  # the held-out prompts are the same for every seed and method


def base_dir(cfg: Config) -> Path:
    path = Path(cfg.input_dir("sft")) / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no base model at {path}: train it first (make train-rlhf-sft)")
    return path


def load_base(cfg: Config):
    """(tokenizer, causal LM in eval mode) of the base (SFT) model."""
    path = str(base_dir(cfg))
    tok = load_tokenizer(path)
    lm = load_causal_lm(path, tok).to(pick_device(cfg.device))
    lm.eval()
    return tok, lm


@dataclass
class Prompts:
    train_docs: list[list[int]]  # token ids of every training speech (RL prompts are drawn from these)
    eval: list[list[int]]  # fixed held-out prompts (validation speeches)


def prompt_sets(cfg: Config, tok, n_eval: int | None = None, text: str | None = None) -> Prompts:
    text = read_shakespeare(cfg.data_dir) if text is None else text
    train_text, val_text = split_text(text)
    enc = lambda docs: tok(docs, add_special_tokens=False)["input_ids"]
    train_docs, val_docs = enc(speeches(train_text)), enc(speeches(val_text))
    rng = np.random.default_rng(EVAL_PROMPT_SEED)
    n = n_eval or max(cfg.eval_prompts, cfg.bon_prompts, cfg.sample_prompts)
    return Prompts(train_docs, make_prompts(val_docs, n, cfg.prompt_min_tokens, cfg.prompt_tokens, rng))


def sample_batched(lm, tok, prompts: list[list[int]], max_new_tokens: int, gen: torch.Generator | None,
                   batch_size: int = 64, greedy: bool = False):  # fmt: skip
    """(response ids, response masks, response texts) for every prompt, in batches of left-padded prompts."""
    ids, masks, texts = [], [], []
    for i in range(0, len(prompts), batch_size):
        p_ids, p_mask = (t.to(lm.device) for t in left_pad(prompts[i : i + batch_size], tok.pad_token_id))
        r_ids, r_mask = sample(lm, p_ids, p_mask, max_new_tokens, tok.eos_token_id, tok.pad_token_id,
                               greedy=greedy, generator=gen)  # fmt: skip
        ids.append(r_ids)
        masks.append(r_mask)
        texts += decode_responses(tok, r_ids, r_mask)
    return torch.cat(ids), torch.cat(masks), texts


def decode_prompts(tok, prompts: list[list[int]]) -> list[str]:
    return [tok.decode(p, skip_special_tokens=True) for p in prompts]


def guard_trainer_dir(run_dir: Path, resume: bool) -> bool:
    """For the TRL stages: refuse a fresh run over saved ``trainer/checkpoint-*`` folders and a resume with none.

    Returns whether to pass ``resume_from_checkpoint=True`` to ``Trainer.train``."""
    ckpts = sorted((run_dir / "trainer").glob("checkpoint-*"))
    if resume and not ckpts:
        raise FileNotFoundError(f"nothing to resume: no {run_dir}/trainer/checkpoint-* (run without --resume)")
    if not resume and ckpts:
        raise ValueError(f"{run_dir} already holds a run ({ckpts[-1]}); continue it with --resume "
                         "(make ... RESUME=1) or give a new out_dir=...")  # fmt: skip
    return resume


def jsonl_log_callback(run_dir: Path, cfg, resume: bool):
    """A TrainerCallback writing the Trainer's logs to ``metrics.jsonl`` + TensorBoard through RunLogger."""
    from transformers import TrainerCallback

    from paperlab.shared.runlog import RunLogger

    class _Log(TrainerCallback):
        logger = None

        def on_train_begin(self, args, state, control, **kw):
            self.logger = RunLogger(run_dir, cfg, resume_step=state.global_step if resume else None)

        def on_log(self, args, state, control, logs=None, **kw):
            vals = {k: v for k, v in (logs or {}).items() if isinstance(v, int | float)}
            if self.logger is not None and vals:
                self.logger.log(state.global_step, **vals)

        def on_train_end(self, args, state, control, **kw):
            if self.logger is not None:
                self.logger.close()

    return _Log()


def trainer_stop_callback(stop):
    """End a Trainer's loop after the current step when ``stop.requested`` (Ctrl-C/SIGTERM); the Trainer saves."""
    from transformers import TrainerCallback

    class _Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if stop.requested:
                control.should_save = True
                control.should_training_stop = True

    return _Stop()
