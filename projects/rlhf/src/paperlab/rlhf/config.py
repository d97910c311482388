"""The typed hyperparameters of the whole RLHF pipeline. Presets live in ``configs/rlhf/*.yaml``.

One config drives every stage; each stage writes into its own folder of ``out_dir``:

    out_dir/sft/         base model (save_pretrained) + tokenizer       paperlab.rlhf.sft
    out_dir/pairs/       base-model completions labelled by the gold     paperlab.rlhf.preferences
    out_dir/rm/          proxy reward model (TRL RewardTrainer)          paperlab.rlhf.reward
    out_dir/ppo/         PPO written here (policy snapshots, ckpt)       paperlab.rlhf.ppo
    out_dir/rloo|grpo/   TRL RLOOTrainer / GRPOTrainer                   paperlab.rlhf.baselines
    out_dir/eval/        over-optimisation curves, best-of-n, samples    paperlab.rlhf.evaluate
    out_dir/hh/          reward model on Anthropic HH-RLHF (harmless)    paperlab.rlhf.hh
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KL_ESTIMATORS = ("k1", "k3")
GOLDS = ("vader", "vader-rep")  # the hidden gold scorers of paperlab.rlhf.gold (named here, never imported here)


@dataclass
class Config:
    # --- experiment ---
    experiment: str = "shakespeare"
    seed: int = 1
    out_dir: str = "runs/rlhf/${experiment}/seed${seed}"  # OmegaConf fills in the ${...}
    threads: int = 1  # torch CPU threads (tiny models on a shared machine: 1)
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda | cuda:N
    data_dir: str = "data/tinyshakespeare"  # folder with input.txt
    # --- reading the stages of another run (ablations that share one base model / one reward model) ---
    sft_dir: str = ""  # "": out_dir/sft; else the sft/ folder of another run (its model/ is the base)
    rm_dir: str = ""  # "": out_dir/rm; else the rm/ folder of another run (its model/ is the proxy RM)
    # --- base model (the SFT stage: causal-LM pre-training on the corpus) ---
    model: str = ""  # "": train the tiny GPT-2 below here; else a Hugging Face id or a local directory
    vocab_size: int = 2048  # byte-level BPE trained on the training split
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    sft_steps: int = 800
    sft_batch_size: int = 32
    sft_lr: float = 2e-3
    # --- prompts and responses ---
    prompt_min_tokens: int = 6  # prompts are the first k tokens of a held-out speech, k uniform in [min, max]
    prompt_tokens: int = 12
    response_tokens: int = 24
    # --- gold-labelled preferences (Gao et al.'s synthetic setup) ---
    gold: str = "vader"  # vader: VADER's compound score; vader-rep: minus the share of repeated words (gold.py)
    n_pairs: int = 3000
    bt_scale: float = 0.25  # P(a > b) = sigmoid((gold(a) - gold(b)) / bt_scale): noisy labels like humans'
    # --- proxy reward model (TRL RewardTrainer) ---
    rm_epochs: float = 2.0
    rm_batch_size: int = 32
    rm_lr: float = 1e-3
    rm_test_frac: float = 0.1
    # --- PPO (Huang et al. 2023, "The N implementation details of RLHF with PPO") ---
    ppo_steps: int = 150  # rollout + update iterations
    ppo_batch_size: int = 32  # rollouts per iteration
    ppo_minibatch_size: int = 8
    ppo_epochs: int = 4
    ppo_lr: float = 1e-4
    kl_coef: float = 0.02  # beta of r = score - beta * KL; the initial value when kl_target > 0
    kl_target: float = 0.0  # > 0: Ziegler et al.'s adaptive controller towards this KL (nats per sequence)
    kl_horizon: int = 10000
    kl_estimator: str = "k1"  # the per-token penalty: k1 = log pi/ref; k3 = (r - 1) - log r with r = ref/pi
    gamma: float = 1.0
    lam: float = 0.95
    cliprange: float = 0.2
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    max_grad_norm: float = 1.0
    whiten_rewards: bool = False  # whiten the per-token rewards of each batch (TRL's option)
    missing_eos_penalty: float = 0.0  # > 0: score -= penalty for responses that never emit EOS
    snapshot_every: int = 15  # save the policy (save_pretrained) every k iterations for the curves
    checkpoint_every: int = 10
    # --- RLOO / GRPO through TRL ---
    trl_steps: int = 150
    trl_prompts_per_step: int = 8
    num_generations: int = 4
    trl_lr: float = 3e-4
    rloo_beta: float = 0.02
    grpo_beta: float = 0.02
    # --- evaluation ---
    eval_prompts: int = 64  # held-out prompts for the curves
    eval_samples: int = 2  # samples per prompt per policy snapshot
    bon_max_n: int = 64
    bon_prompts: int = 48
    sample_prompts: int = 12  # base vs RLHF side by side
    # --- Anthropic HH-RLHF harmless reward model ---
    hh_data_dir: str = "data/hh-rlhf-harmless-test"
    hh_test_frac: float = 0.2
    hh_max_length: int = 64  # tokens kept from the end of each transcript (at most the model's positions)
    hh_epochs: float = 2.0
    hh_lr: float = 5e-4

    def __post_init__(self):
        self.out_dir = re.sub(r"\$\{(\w+)\}", lambda m: str(getattr(self, m.group(1))), self.out_dir)
        positive = (
            "threads", "vocab_size", "n_layer", "n_head", "n_embd", "block_size", "sft_steps", "sft_batch_size",
            "prompt_min_tokens", "prompt_tokens", "response_tokens", "n_pairs", "rm_batch_size", "ppo_steps",
            "ppo_batch_size", "ppo_minibatch_size", "ppo_epochs", "kl_horizon", "snapshot_every",
            "checkpoint_every", "trl_steps", "trl_prompts_per_step", "eval_prompts", "eval_samples", "bon_max_n",
            "bon_prompts", "sample_prompts", "hh_max_length",
        )  # fmt: skip
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("sft_lr", "rm_lr", "ppo_lr", "trl_lr", "hh_lr", "bt_scale", "rm_epochs", "hh_epochs"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("kl_coef", "kl_target", "missing_eos_penalty", "vf_coef", "rloo_beta", "grpo_beta",
                     "max_grad_norm", "cliprange", "cliprange_value"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.gold not in GOLDS:
            raise ValueError(f"gold must be one of {GOLDS}, got {self.gold!r}")
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ValueError(f"kl_estimator must be one of {KL_ESTIMATORS}, got {self.kl_estimator!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.prompt_min_tokens > self.prompt_tokens:
            raise ValueError("prompt_min_tokens must be <= prompt_tokens")
        if self.prompt_tokens + self.response_tokens > self.block_size and not self.model:
            raise ValueError("prompt_tokens + response_tokens must fit in block_size")
        if self.ppo_batch_size % self.ppo_minibatch_size:
            raise ValueError("ppo_batch_size must be a multiple of ppo_minibatch_size")
        if self.num_generations < 2:
            raise ValueError("num_generations must be >= 2 (RLOO and GRPO compare samples of one prompt)")
        if not (0 < self.gamma <= 1 and 0 <= self.lam <= 1):
            raise ValueError("need 0 < gamma <= 1 and 0 <= lam <= 1")
        for name in ("rm_test_frac", "hh_test_frac"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1)")
        if self.bon_max_n & (self.bon_max_n - 1):
            raise ValueError(f"bon_max_n must be a power of two, got {self.bon_max_n}")

    def stage_dir(self, stage: str) -> str:
        """Where a stage of this run writes."""
        return f"{self.out_dir}/{stage}"

    def input_dir(self, stage: str) -> str:
        """Where later stages read the base model ("sft") or the proxy reward model ("rm") from."""
        override = {"sft": self.sft_dir, "rm": self.rm_dir}.get(stage, "")
        return override or self.stage_dir(stage)
