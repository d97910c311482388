"""One typed schema for every toy task. Presets live in ``configs/toys/<task>.yaml``.

A preset names its ``task`` and sets fields of that task's section; the sections of the other
tasks keep their defaults. Overrides use dotted keys: ``python -m paperlab.toys.flow_matching
flow_matching.train_steps=2000 seed=1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TASKS = (
    "rand_transformer",
    "cot",
    "reverse_digits",
    "flow_matching",
    "diffusion",
    "hdqn",
    "optimizers",
    "deep_dream",
    "scaling_laws",
    "bmg",
    "ppo_verse",
)


@dataclass
class RandTransformerConfig:
    """Task 1: a shallow causal transformer that writes sequences of random numbers in 0..100."""

    target: str = "bimodal"  # "bimodal" (two bumps on a floor) or "uniform"
    seq_len: int = 16  # numbers per training sequence (after a BOS token)
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    train_steps: int = 2000
    batch_size: int = 64
    lr: float = 3e-3
    n_samples: int = 4096  # numbers generated for the evaluation (and for the noise floor)


@dataclass
class CotConfig:
    """Task 2: "a random number between 0 and a+b", written directly or after the sum a+b."""

    max_addend: int = 50  # a, b in 0..max_addend, so a + b <= 100
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    train_steps: int = 3000
    batch_size: int = 128
    lr: float = 3e-3
    n_samples: int = 2000  # samples per shown prompt in the histograms


@dataclass
class ReverseDigitsConfig:
    """Task 3: a from-scratch decoder-only transformer that reverses random token sequences."""

    vocab: int = 10  # random tokens 0..vocab-1 (plus a separator)
    length: int = 8  # tokens to reverse
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 1
    train_steps: int = 500
    batch_size: int = 128
    lr: float = 3e-3
    n_test: int = 2000  # held-out sequences (never seen in training) for exact-sequence accuracy


@dataclass
class FlowMatchingConfig:
    """Task 4: conditional flow matching (OT path) on two moons."""

    hidden: int = 128  # MLP width
    layers: int = 3  # hidden layers
    train_steps: int = 6000
    batch_size: int = 256
    lr: float = 2e-3
    moons_noise: float = 0.05
    sigma_min: float = 0.0  # width of the conditional path at t=1 (0: the straight OT path)
    sample_steps: int = 100  # Euler steps of the ODE
    n_samples: int = 2000  # generated points, compared with as many held-out points


@dataclass
class DiffusionConfig:
    """Task 5: DDPM on two moons with the same network size and number of sampling steps."""

    hidden: int = 128
    layers: int = 3
    train_steps: int = 6000
    batch_size: int = 256
    lr: float = 2e-3
    lr_end: float = 0.05  # the cosine learning-rate decay ends at lr_end * lr
    moons_noise: float = 0.05
    n_timesteps: int = 100  # T: diffusion steps = sampling steps
    schedule: str = "linear"  # "linear" (beta_start..beta_end) or "cosine" (Nichol & Dhariwal 2021)
    beta_start: float = 1e-4
    beta_end: float = 0.2
    n_samples: int = 2000


@dataclass
class HdqnConfig:
    """Task 6: h-DQN vs flat Q-learning on Kulkarni et al.'s stochastic decision process.

    Four agents on the same MDP and epsilon schedules: tabular Q-learning and tabular h-DQN (the
    check against value iteration), and the paper's networks: flat DQN and h-DQN (MLPs on one-hot
    states/goals, replay memories, target networks).
    """

    n_states: int = 6
    p_right: float = 0.5  # "right" succeeds with this probability, otherwise the agent moves left
    train_steps: int = 200_000  # environment steps per agent
    n_seeds: int = 10  # independent agents of each kind, trained at once (vmap)
    max_episode_steps: int = 100  # an episode cut here ends with reward 0
    lr: float = 0.1  # step size of the tabular Q updates
    gamma: float = 0.99  # discount of the meta-controller and of flat Q-learning
    gamma_controller: float = 0.9
    eps_start: float = 1.0
    eps_end: float = 0.1  # meta-controller and flat Q-learning
    controller_eps_end: float = 0.05
    eps_decay_steps: int = 100_000  # linear decay of every epsilon
    bin_steps: int = 5000  # environment steps per point of the curves
    networks: bool = True  # also train the network agents (flat DQN and h-DQN)
    net_hidden: int = 64  # width of the one hidden layer of every Q-network
    net_lr: float = 1e-3  # Adam step size of the Q-networks
    batch_size: int = 32  # replay minibatch of each network update
    replay_controller: int = 20_000  # capacity of the controller's (and flat DQN's) replay memory
    replay_meta: int = 5_000  # capacity of the meta-controller's replay memory
    target_every: int = 1000  # environment steps between copies into the target networks


@dataclass
class OptimizersConfig:
    """Task 11: SGD (momentum, Nesterov), Adam and AdamW by hand against optax, on one MNIST CNN."""

    mnist_dir: str = "data/mnist"
    width: int = 8  # conv channels (width, 2 width), each followed by 2x2 max-pooling, then the logits
    train_steps: int = 800
    batch_size: int = 64
    n_seeds: int = 3  # models per optimiser (vmap); seed s: same init and batches for every optimiser
    sgd_lr: float = 0.05
    momentum: float = 0.9
    adam_lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.01  # AdamW's decoupled decay


@dataclass
class DeepDreamConfig:
    """Task 12: a CNN trained on MNIST (>= 99% test accuracy), then gradient ascent on its input."""

    mnist_dir: str = "data/mnist"
    width: int = 12  # conv channels (width, 2 width, 4 width); max-pooling after the first two
    hidden: int = 128  # dense ReLU layer before the logits
    train_steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-3  # Adam, cosine decay to 5%
    n_models: int = 2  # trained at once (vmap); model 0 dreams, model 1 judges the dreams (transfer)
    dream_steps: int = 64  # gradient-ascent steps per octave
    dream_lr: float = 0.05  # step on the input, per unit of normalised gradient
    octaves: int = 3  # optimise at 28 / 2^(octaves-1) px first, then upsample (multi-scale)
    jitter: int = 2  # random shift of up to this many pixels before each step
    l2: float = 0.05  # weight of the |x|^2 penalty (per pixel)
    tv: float = 0.05  # weight of the total-variation penalty (per pixel)
    blur_every: int = 4  # Gaussian blur of the image every this many steps (0: never)
    blur_sigma: float = 0.5
    n_channels: int = 8  # channels dreamed per convolutional layer


@dataclass
class ScalingLawsConfig:
    """Task 10: validation loss of a CNN on 14x14 MNIST against its width and its training-set size."""

    mnist_dir: str = "data/mnist"
    widths: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32])  # conv channels (w, 2w), all data
    data_widths: list[int] = field(default_factory=lambda: [2, 8])  # widths of the training-set-size sweep
    data_fracs: int = 7  # training-set sizes D_max, D_max/2, ..., D_max/2^(data_fracs-1)
    train_size: int = 55_000  # D_max: the first train_size training images are the largest training set
    n_val: int = 5000  # the last n_val training images are the validation set
    n_seeds: int = 3
    train_steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3  # Adam, cosine decay to 5%
    eval_every: int = 250  # validation loss every this many steps; a run's loss is its minimum (early stopping)
    n_bootstrap: int = 500  # resamples of the seeds for the intervals of the fitted exponents


@dataclass
class BmgConfig:
    """Task 14: BMG vs the standard meta-gradient vs fixed values of A2C's entropy weight, two-colour grid."""

    hidden: int = 32  # MLP width of the A2C agent (one-hot positions -> policy and value heads)
    n_envs: int = 16
    rollout_steps: int = 8  # T: steps per batch in each environment
    inner_K: int = 1  # differentiable inner updates per meta-step
    bmg_L: int = 2  # BMG target: L - 1 inner updates, then one step on the meta-objective
    lr: float = 1.0  # inner SGD step size
    gamma: float = 0.9
    value_coef: float = 0.5
    meta_lr: float = 0.03  # Adam on eta = log(eps)
    eps_init: float = 0.01  # the meta-learners' starting entropy weight
    fixed_eps: list[float] = field(default_factory=lambda: [0.0, 0.003, 0.01, 0.03, 0.1])  # the fixed sweep
    n_seeds: int = 5
    train_steps: int = 4000  # meta-steps (each (inner_K + 1) * rollout_steps environment steps per environment)
    flip_every: int = 1000  # meta-steps between switches of the rewarding colour
    log_every: int = 50  # meta-steps per point of the curves


@dataclass
class PpoVerseConfig:
    """Task 2: a word-level policy over the sonnets, MLE then PPO on an LM + metre + rhyme - repetition reward."""

    data_dir: str = "data/shakespeare-sonnets"
    min_count: int = 2  # words seen fewer times are <unk> (never sampled)
    max_len: int = 24  # tokens after BOS: line / line EOS (longer couplets are dropped)
    d_model: int = 64  # policy, reward LM: the same causal transformer shape
    n_heads: int = 4
    n_layers: int = 2
    value_stop_gradient: bool = True  # the value loss trains only the value head (False: the shared layers too)
    mle_steps: int = 200  # maximum-likelihood steps of the policy (split A) and of the reward LM (split B)
    mle_batch: int = 32
    mle_lr: float = 3e-3  # AdamW (weight decay 0.1), warm-up then cosine decay
    train_steps: int = 150  # PPO iterations
    rollout_batch: int = 64  # couplets sampled per iteration
    ppo_epochs: int = 4
    minibatches: int = 4  # per epoch
    lr: float = 1e-4  # Adam, gradients clipped at global norm 1
    clip: float = 0.2
    gamma: float = 1.0
    lam: float = 0.95
    value_coef: float = 0.5
    kl_coef: float = 0.1  # beta: per-token penalty on log pi - log pi_MLE
    lm_coef: float = 1.0  # the reward's terms (see ppo_verse.py)
    metre_coef: float = 5.0
    rhyme_coef: float = 1.0
    rep_coef: float = 2.0  # the repetition penalty
    form_coef: float = 1.0
    min_words: int = 1  # a line with fewer words makes the couplet malformed (0: an empty line is allowed)
    ablate_penalty: bool = True  # also train a policy with rep_coef = 0 from the same start
    n_eval: int = 500  # couplets sampled from each policy for the measures


@dataclass
class Config:
    task: str = "reverse_digits"
    seed: int = 0
    # everything a run writes: config.yaml, metrics.jsonl + TensorBoard, checkpoints/last.pt, model.pt,
    # eval.json, summary.json, figures. projects/toys/results/ changes only through `make toys-publish`.
    run_dir: str = "runs/toys/${task}/seed${seed}"
    eval_only: bool = False  # evaluate run_dir/model.pt (of this task) instead of training
    checkpoint_every: int = 0  # steps per jitted chunk, each followed by checkpoints/last.pt; 0: a quarter of the run
    rand_transformer: RandTransformerConfig = field(default_factory=RandTransformerConfig)
    cot: CotConfig = field(default_factory=CotConfig)
    reverse_digits: ReverseDigitsConfig = field(default_factory=ReverseDigitsConfig)
    flow_matching: FlowMatchingConfig = field(default_factory=FlowMatchingConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    hdqn: HdqnConfig = field(default_factory=HdqnConfig)
    optimizers: OptimizersConfig = field(default_factory=OptimizersConfig)
    deep_dream: DeepDreamConfig = field(default_factory=DeepDreamConfig)
    scaling_laws: ScalingLawsConfig = field(default_factory=ScalingLawsConfig)
    bmg: BmgConfig = field(default_factory=BmgConfig)
    ppo_verse: PpoVerseConfig = field(default_factory=PpoVerseConfig)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        # load_config resolves ${...}; this covers Config(...) in Python
        self.run_dir = re.sub(r"\$\{(\w+)\}", lambda m: str(getattr(self, m.group(1))), self.run_dir)
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        for section in TASKS:
            sub = getattr(self, section)
            for key, value in vars(sub).items():
                if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                    raise ValueError(f"{section}.{key} must be >= 0, got {value}")
        for section in ("rand_transformer", "cot", "reverse_digits"):
            sub = getattr(self, section)
            if sub.d_model % sub.n_heads:
                raise ValueError(f"{section}.d_model ({sub.d_model}) must be divisible by n_heads ({sub.n_heads})")
        if self.rand_transformer.target not in ("bimodal", "uniform"):
            raise ValueError(
                f"rand_transformer.target must be 'bimodal' or 'uniform', got {self.rand_transformer.target!r}"
            )
        if not 0 < self.cot.max_addend <= 50:
            raise ValueError("cot.max_addend must be in 1..50 (a + b must stay within 0..100)")
        if not 0.0 <= self.hdqn.p_right <= 1.0:
            raise ValueError(f"hdqn.p_right must be in [0, 1], got {self.hdqn.p_right}")
        if self.hdqn.n_states < 3:
            raise ValueError("hdqn.n_states must be >= 3")
        if not 0.0 < self.diffusion.beta_start < self.diffusion.beta_end < 1.0:
            raise ValueError("diffusion needs 0 < beta_start < beta_end < 1")
        if self.diffusion.schedule not in ("linear", "cosine"):
            raise ValueError(f"diffusion.schedule must be 'linear' or 'cosine', got {self.diffusion.schedule!r}")
        if self.hdqn.bin_steps < 1 or self.hdqn.train_steps % self.hdqn.bin_steps:
            raise ValueError(
                f"hdqn.train_steps ({self.hdqn.train_steps}) must be a multiple of "
                f"hdqn.bin_steps ({self.hdqn.bin_steps})"
            )
        if self.deep_dream.octaves < 1 or self.deep_dream.n_models < 1:
            raise ValueError("deep_dream.octaves and deep_dream.n_models must be >= 1")
        sl = self.scaling_laws
        if not sl.widths or min(sl.widths) < 1 or sl.data_fracs < 2 or sl.n_seeds < 1:
            raise ValueError("scaling_laws needs widths >= 1, data_fracs >= 2 and n_seeds >= 1")
        bad_eval = sl.eval_every < 1 or sl.train_steps % sl.eval_every
        if sl.n_val < 1 or sl.train_size < 2 ** (sl.data_fracs - 1) or bad_eval:
            raise ValueError(
                "scaling_laws: n_val >= 1, train_size >= 2^(data_fracs-1), train_steps a multiple of eval_every"
            )
        bc = self.bmg
        if bc.inner_K < 1 or bc.bmg_L < 1 or bc.n_seeds < 1 or bc.log_every < 1 or bc.train_steps % bc.log_every:
            raise ValueError("bmg: inner_K, bmg_L, n_seeds >= 1 and train_steps a multiple of log_every")
        if bc.flip_every < 1 or not bc.fixed_eps or min(bc.fixed_eps) < 0 or not 0 < bc.eps_init <= 1:
            raise ValueError("bmg: flip_every >= 1, fixed_eps >= 0 (at least one) and 0 < eps_init <= 1")
        pv = self.ppo_verse
        if pv.max_len < 4 or pv.rollout_batch % max(pv.minibatches, 1) or pv.minibatches < 1 or pv.n_eval < 1:
            raise ValueError("ppo_verse: max_len >= 4, minibatches >= 1 dividing rollout_batch, n_eval >= 1")
        if pv.mle_steps < 1 or pv.ppo_epochs < 1 or pv.min_count < 1 or not 0 < pv.lam <= 1 or not 0 < pv.gamma <= 1:
            raise ValueError("ppo_verse: mle_steps, ppo_epochs, min_count >= 1 and gamma, lam in (0, 1]")
        if pv.d_model % pv.n_heads:
            raise ValueError(f"ppo_verse.d_model ({pv.d_model}) must be divisible by n_heads ({pv.n_heads})")
        if self.optimizers.n_seeds < 1 or self.optimizers.width < 1:
            raise ValueError("optimizers.n_seeds and optimizers.width must be >= 1")
        for section in TASKS:
            steps_key = "train_steps"
            if getattr(getattr(self, section), steps_key) < 1:
                raise ValueError(f"{section}.{steps_key} must be >= 1")

    @property
    def section(self):
        """The config section of this run's task."""
        return getattr(self, self.task)
