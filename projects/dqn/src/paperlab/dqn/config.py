"""The typed hyperparameters of a DQN / M-DQN run. Presets live in ``configs/dqn/*.yaml``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

AGENTS = ("dqn", "mdqn")
LOSSES = ("huber", "mse")
OPTIMIZERS = ("adam", "rmsprop")


@dataclass
class Config:
    # --- experiment ---
    env_id: str = "CartPole-v1"  # CartPole-v1 or MinAtar/<Game>-v0 (6 actions) / -v1 (minimal set)
    agent: str = "dqn"  # "dqn" or "mdqn" (Munchausen)
    seed: int = 1
    num_seeds: int = 1  # train_batched: agents with seeds seed, seed+1, ..., trained side by side in one process
    total_steps: int = 100_000  # environment steps (= frames; MinAtar has no frame skip)
    run_dir: str = "runs/dqn/${env_id}/${agent}-seed${seed}"  # OmegaConf fills in the ${...}
    torch_threads: int = 1  # small nets: one thread is fastest on CPU
    deterministic: bool = False

    # --- Q-network ---
    hidden_sizes: list[int] = field(default_factory=lambda: [128, 128])  # MLP (vector observations)
    conv_channels: int = 16  # MinAtar network: one 3x3 conv ...
    conv_hidden: int = 128  # ... then one hidden layer

    # --- replay and updates ---
    buffer_size: int = 100_000
    batch_size: int = 32
    learning_starts: int = 5_000  # steps of experience before the first update
    train_freq: int = 1  # a round of updates every `train_freq` env steps ...
    gradient_steps: int = 1  # ... of this many gradient steps

    # --- optimisation ---
    optimizer: str = "adam"
    lr: float = 1e-3
    adam_eps: float = 1e-8
    rmsprop_alpha: float = 0.95  # squared-gradient momentum (MinAtar paper)
    rmsprop_eps: float = 0.01  # minimum squared gradient (MinAtar paper)
    rmsprop_centered: bool = True
    max_grad_norm: float = 0.0  # 0 disables clipping
    gamma: float = 0.99
    loss: str = "huber"
    double_dqn: bool = False
    compile_optimizer: bool = False  # torch.compile the optimizer step (fuses RMSprop: ~3x faster on CPU)

    # --- target network ---
    target_update_period: int = 1_000  # steps between target updates
    target_tau: float = 1.0  # 1.0: hard copy; < 1: Polyak averaging at every target update

    # --- epsilon-greedy ---
    eps_start: float = 1.0
    eps_end: float = 0.1
    eps_decay_steps: int = 100_000
    eps_decay_start: int = 0  # epsilon stays at eps_start until this step (MinAtar's code: the replay start)

    # --- Munchausen (Vieillard et al. 2020; used when agent == "mdqn") ---
    m_alpha: float = 0.9  # scale of the log-policy bonus
    m_tau: float = 0.03  # entropy temperature of the soft-max policy
    m_l0: float = -1.0  # lower clip of tau * log pi

    # --- MinAtar ---
    sticky_action_prob: float = 0.1
    difficulty_ramping: bool = True

    # --- logging, stopping, checkpoints, evaluation ---
    log_every: int = 1_000
    return_window: int = 100  # trailing window of training episodes for the running mean return
    eval_every: int = 0  # steps between evaluations of eval_episodes greedy episodes during training (0: off)
    stop_return: float | None = None  # stop once such an evaluation's mean return reaches this (CartPole: 475)
    checkpoint_every: int = 50_000
    eval_episodes: int = 100
    eval_epsilon: float = 0.0
    eval_max_steps: int = 100_000  # an evaluation episode is cut here (a greedy agent can stall forever)

    def __post_init__(self):
        from paperlab.dqn.envs import check_env_id

        # load_config resolves ${...} through OmegaConf; this covers Config(...) built in Python
        self.run_dir = re.sub(r"\$\{(\w+)\}", lambda m: str(getattr(self, m.group(1))), self.run_dir)

        check_env_id(self.env_id)
        if self.agent not in AGENTS:
            raise ValueError(f"agent must be one of {AGENTS}, got {self.agent!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.eval_every < 0:
            raise ValueError("eval_every must be >= 0 (0 disables evaluation during training)")
        if self.stop_return is not None and self.eval_every == 0:
            raise ValueError("stop_return needs eval_every > 0: the stop is decided by evaluations")
        positive = (
            "total_steps",
            "buffer_size",
            "batch_size",
            "train_freq",
            "gradient_steps",
            "target_update_period",
            "log_every",
            "return_window",
            "checkpoint_every",
            "eval_episodes",
            "torch_threads",
            "num_seeds",
            "eval_max_steps",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 < self.target_tau <= 1.0:
            raise ValueError(f"target_tau must be in (0, 1], got {self.target_tau}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.agent == "mdqn" and self.double_dqn:
            raise ValueError("double_dqn applies to agent=dqn; the Munchausen target has no max to decouple")
        if self.m_tau <= 0 or self.m_l0 >= 0:
            raise ValueError("Munchausen needs m_tau > 0 and m_l0 < 0")
        if self.batch_size > self.buffer_size:
            raise ValueError("batch_size cannot exceed buffer_size")
        for name in ("eps_start", "eps_end", "eval_epsilon", "sticky_action_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
