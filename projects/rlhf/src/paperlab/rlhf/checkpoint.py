"""Training checkpoints of the loops written here (base-model pre-training and PPO), on paperlab.shared.

    <stage dir>/checkpoints/last.pt   {"stage", "config", "modules": {name: state_dict}, "optimizer", "loop", "rng"}

Hugging Face models are also written with ``save_pretrained`` (the stage's ``model/`` folder), which is what
later stages and other tools load. The TRL stages (reward model, RLOO, GRPO) use the Trainer's own
``checkpoint-*`` folders and ``resume_from_checkpoint``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from paperlab.shared.checkpoint import (
    CheckpointError,
    atomic_save,
    check_resumable,
    load_checkpoint,
    restore_rng_state,
    rng_state,
)
from paperlab.shared.config import to_dict

# settings a resumed stage must share with its checkpoint (shapes, data, RNG streams)
FIXED_ON_RESUME = {
    "sft": ("seed", "model", "vocab_size", "n_layer", "n_head", "n_embd", "block_size", "sft_batch_size",
            "data_dir"),
    "ppo": ("seed", "ppo_batch_size", "ppo_minibatch_size", "prompt_tokens", "prompt_min_tokens",
            "response_tokens", "kl_estimator"),
}  # fmt: skip


def save_training(path: Path, stage: str, cfg, modules: dict, optimizer, loop: dict, gen: torch.Generator) -> None:
    state = {
        "stage": stage,
        "config": to_dict(cfg),
        "modules": {k: m.state_dict() for k, m in modules.items()},
        "optimizer": optimizer.state_dict(),
        "loop": {**loop, "gen": gen.get_state()},
        "rng": rng_state(),
    }
    atomic_save(state, path)


def resume_training(path: Path, stage: str, cfg, modules: dict, optimizer, gen: torch.Generator) -> dict:
    """Load ``path`` into ``modules``, ``optimizer``, ``gen`` and the global RNGs; returns the loop state."""
    state = load_checkpoint(path, required=("stage", "config", "modules", "optimizer", "loop", "rng"),
                            kind=f"rlhf {stage}")  # fmt: skip
    if state["stage"] != stage:
        raise CheckpointError(f"{path} is a {state['stage']} checkpoint, not a {stage} one")
    check_resumable(state["config"], cfg, FIXED_ON_RESUME[stage], what=f"checkpoint {path}")
    for name, module in modules.items():
        try:
            module.load_state_dict(state["modules"][name])
        except (KeyError, RuntimeError) as e:
            raise CheckpointError(f"{path}: the {name} weights do not fit ({str(e).splitlines()[0]})") from e
    optimizer.load_state_dict(state["optimizer"])
    gen.set_state(state["loop"]["gen"])
    restore_rng_state(state["rng"])
    return state["loop"]
