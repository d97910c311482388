"""The typed hyperparameters of a PPO / PPO-EWMA run. Presets live in ``configs/ppo/*.yaml``.

The defaults follow CleanRL's ``ppo_continuous_action.py`` where they apply (64-64 tanh networks,
GAE(0.95), clip 0.2, value clipping, observation and reward normalisation, Adam 3e-4 annealed to 0,
gradient norm 0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

ALGOS = ("ppo", "ppo-ewma")
ACTIVATIONS = ("tanh", "relu", "silu")
ADV_NORMS = ("minibatch", "batch", "none")
BRAX_PREFIX = "brax/"


@dataclass
class Config:
    # --- experiment ---
    env_id: str = "InvertedPendulum-v5"  # a gymnasium id with a Box action space, or brax/<name> (brax/ant, ...)
    algo: str = "ppo"  # "ppo" or "ppo-ewma"
    seed: int = 1
    total_steps: int = 1_000_000  # environment steps (summed over the parallel envs)
    run_dir: str = "runs/ppo/${env_id}/${algo}-seed${seed}"
    threads: int = 1  # torch intra-op threads
    device: str = "cpu"  # torch device of the networks (and of Brax's arrays after DLPack)

    # --- environments ---
    num_envs: int = 8  # parallel environments (gymnasium's synchronous vector env, or one batched Brax env)
    brax_backend: str = "mjx"  # brax physics: mjx, generalized, positional, spring
    episode_length: int = 1000  # brax only (gymnasium envs have their own TimeLimit)

    # --- rollout and advantage ---
    num_steps: int = 256  # steps per env per iteration: batch = num_envs * num_steps
    gamma: float = 0.99
    gae_lambda: float = 0.95
    norm_obs: bool = True  # running mean/std of observations (then clipped to +-obs_clip)
    norm_reward: bool = True  # rewards divided by the running std of the discounted return
    obs_clip: float = 10.0
    reward_clip: float = 10.0

    # --- optimisation ---
    update_epochs: int = 10
    num_minibatches: int = 32
    lr: float = 3e-4
    anneal_lr: bool = True  # linear decay to 0 over total_steps
    adam_eps: float = 1e-5
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    max_grad_norm: float = 0.5  # 0 disables clipping
    target_kl: float | None = None  # stop an iteration's epochs early once approx-KL exceeds this

    # --- PPO loss ---
    clip_coef: float = 0.2
    clip_vloss: bool = True
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    adv_norm: str = "minibatch"  # "minibatch" (CleanRL), "batch" (whole rollout, optionally EWMA'd), "none"
    adv_ewma_decay: float = 0.0  # with adv_norm=batch: EWMA of the advantage moments across iterations (0: off)

    # --- PPO-EWMA (Hilton et al. 2021): proximal policy = EWMA of the policy weights ---
    ewma_decay: float = 0.9  # per optimizer step; the proximal policy's age is decay / (1 - decay) steps
    imp_samp_max: float = 100.0  # cap of the importance ratio pi / pi_behav in the unclipped term (0: off)

    # --- batch-size invariance (Hilton et al. 2021, sec. 3): 0 disables ---
    # With ref_num_envs > 0 the hyperparameters above are the ones tuned at num_envs = ref_num_envs,
    # and they are rescaled for c = num_envs / ref_num_envs: lr * c, and every per-step decay
    # (Adam's betas, ewma_decay, adv_ewma_decay) raised to the power c.
    ref_num_envs: int = 0

    # --- networks ---
    actor_hidden: list[int] = field(default_factory=lambda: [64, 64])
    critic_hidden: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "tanh"
    init_log_std: float = 0.0

    # --- logging, evaluation, checkpoints ---
    log_every: int = 1  # iterations between metric rows
    eval_every: int = 10_000  # env steps between deterministic evaluations (0: off)
    eval_episodes: int = 10
    stop_return: float | None = None  # stop once an evaluation's mean return reaches this
    checkpoint_every: int = 100_000  # env steps between checkpoints/last.pt (and one at the end, or on Ctrl-C)
    checkpoint_minutes: float = 10.0  # also one at least this often (0: off), so a long run always has one

    # --- Brax's own JAX PPO (paperlab.ppo.brax_ppo) run from the same config ---
    brax_unroll_length: int = 10
    brax_reward_scaling: float = 1.0
    brax_num_evals: int = 20

    def __post_init__(self):
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {ALGOS}, got {self.algo!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.adv_norm not in ADV_NORMS:
            raise ValueError(f"adv_norm must be one of {ADV_NORMS}, got {self.adv_norm!r}")
        for name in (
            "num_envs",
            "num_steps",
            "update_epochs",
            "num_minibatches",
            "total_steps",
            "eval_episodes",
            "checkpoint_every",
            "log_every",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_envs * num_steps = {self.batch_size} is not divisible by num_minibatches = {self.num_minibatches}"
            )
        for name in ("ewma_decay", "adv_ewma_decay", "adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 < self.clip_coef < 1.0:
            raise ValueError(f"clip_coef must be in (0, 1), got {self.clip_coef}")
        if not (0.0 <= self.gamma <= 1.0 and 0.0 <= self.gae_lambda <= 1.0):
            raise ValueError("gamma and gae_lambda must be in [0, 1]")
        if self.eval_every < 0 or self.checkpoint_minutes < 0:
            raise ValueError("eval_every and checkpoint_minutes must be >= 0")
        if self.ref_num_envs < 0:
            raise ValueError(f"ref_num_envs must be >= 0, got {self.ref_num_envs}")
        if not self.actor_hidden or not self.critic_hidden:
            raise ValueError("actor_hidden and critic_hidden need at least one layer")

    # --- derived quantities ---
    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def is_brax(self) -> bool:
        return self.env_id.startswith(BRAX_PREFIX)

    @property
    def num_iterations(self) -> int:
        return math.ceil(self.total_steps / self.batch_size)


@dataclass(frozen=True)
class Scaled:
    """Optimiser quantities after the batch-size rule (equal to the config's when ref_num_envs == 0)."""

    lr: float
    adam_beta1: float
    adam_beta2: float
    ewma_decay: float
    adv_ewma_decay: float
    c: float  # batch-size ratio num_envs / ref_num_envs


def scaled_hparams(cfg: Config) -> Scaled:
    """Hilton et al.'s batch-size-invariance rule.

    Changing the batch size by a factor c (here through the number of parallel envs, so minibatches
    shrink or grow with it and an optimizer step sees c times the examples) keeps training the same
    as a function of *examples* when the Adam step size is scaled by c and every EWMA that ticks once
    per optimizer step keeps its age in examples: a decay beta becomes beta ** c (for c = 1/2 an
    EWMA of age beta / (1 - beta) steps becomes one of about twice as many, half-size, steps).
    """
    c = cfg.num_envs / cfg.ref_num_envs if cfg.ref_num_envs else 1.0
    return Scaled(
        lr=cfg.lr * c,
        adam_beta1=cfg.adam_beta1**c,
        adam_beta2=cfg.adam_beta2**c,
        ewma_decay=cfg.ewma_decay**c,
        adv_ewma_decay=cfg.adv_ewma_decay**c,
        c=c,
    )
