"""Save, load and resume DQN runs, on the shared checkpoint helpers.

A run directory holds ``checkpoints/last.pt`` (networks, optimiser, loop state, RNG states) next to
``checkpoints/replay-<step>.npz`` (the replay buffer, which last.pt names), and at the end
``model.pt`` (the Q-network and what is needed to rebuild it). ``load_model`` reads either file
for evaluation and rendering; it never needs the training code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from paperlab.dqn.config import Config
from paperlab.dqn.networks import make_q_network
from paperlab.shared.checkpoint import LAST, CheckpointError, atomic_path, atomic_save, check_resumable, load_checkpoint
from paperlab.shared.config import config_from_dict, to_dict

CHECKPOINT_VERSION = 1  # of model.pt's meta (unchanged since the first runs)
TRAINING_FORMAT = 2  # of checkpoints/last.pt: 2 = RNG states through paperlab.shared.checkpoint.rng_state
KIND = "paperlab DQN"
# settings a resumed run must share with its checkpoint: they define the task, shape the networks,
# the data or the RNG streams (lr, schedules, total_steps, ... may change)
FIXED_ON_RESUME = (
    "env_id",
    "agent",
    "seed",
    "optimizer",
    "hidden_sizes",
    "conv_channels",
    "conv_hidden",
    "buffer_size",
    "sticky_action_prob",
    "difficulty_ramping",
)


def model_meta(cfg: Config, obs_shape, n_actions: int) -> dict:
    """What a saved network needs besides its weights: the task it was trained on and its config."""
    return {
        "version": CHECKPOINT_VERSION,
        "env_id": cfg.env_id,
        "agent": cfg.agent,
        "obs_shape": list(obs_shape),
        "n_actions": int(n_actions),
        "config": to_dict(cfg),
    }


def check_compatible(meta: dict, env_id: str, what: str = "checkpoint") -> None:
    """Refuse a network trained on another environment."""
    if meta["env_id"] != env_id:
        raise CheckpointError(
            f"{what} was trained on {meta['env_id']!r} (agent {meta['agent']!r}) and cannot "
            f"be used on {env_id!r}, another environment"
        )


def _read(path: str | Path, required: tuple[str, ...]) -> dict:
    state = load_checkpoint(path, required=("meta", *required), kind=KIND)
    meta = state["meta"]
    if not isinstance(meta, dict) or meta.get("version") != CHECKPOINT_VERSION:
        version = meta.get("version") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path} is not a {KIND} checkpoint of version {CHECKPOINT_VERSION} (version {version})")
    return state


# ------------------------------------------------------------------------------------- the final model
def save_model(path: str | Path, meta: dict, q_net: torch.nn.Module) -> None:
    atomic_save({"meta": meta, "q_net": q_net.state_dict()}, path)


def load_model(path: str | Path, env_id: str | None = None):
    """Load ``model.pt`` or a training checkpoint as (q_network in eval mode, meta). Refuses another env."""
    state = _read(path, ("q_net",))
    meta = state["meta"]
    if env_id is not None:
        check_compatible(meta, env_id, what=str(path))
    cfg = config_from_dict(Config, meta["config"], source=f"the config saved in {path}")
    q_net = make_q_network(tuple(meta["obs_shape"]), meta["n_actions"], cfg)
    try:
        q_net.load_state_dict(state["q_net"])
    except RuntimeError as e:
        raise CheckpointError(
            f"{path}: the saved weights do not fit the network its config describes ({str(e).splitlines()[0]})"
        ) from e
    q_net.eval()
    return q_net, meta


# ----------------------------------------------------------------------------------- training checkpoint
def _pack_replay(state: dict) -> dict:
    out = dict(state)
    for key in ("obs", "next_obs"):
        x = state[key]
        if x.dtype == np.uint8 and x.size and x.max() <= 1:  # MinAtar 0/1 planes: 8x smaller as bits
            out[key] = np.packbits(x.reshape(len(x), -1) != 0, axis=1)
            out[key + "_shape"] = np.array(x.shape)
    return out


def _unpack_replay(state: dict) -> dict:
    out = {k: v for k, v in state.items() if not k.endswith("_shape")}
    for key in ("obs", "next_obs"):
        if key + "_shape" in state:
            shape = tuple(state[key + "_shape"])
            n_bits = int(np.prod(shape[1:]))
            out[key] = np.unpackbits(state[key], axis=1, count=n_bits).reshape(shape)
    return out


def save_training(run_dir: str | Path, state: dict, replay: dict) -> None:
    """Write ``checkpoints/last.pt`` (``state`` with ``state["loop"]["step"]``) and its replay buffer.

    The replay goes to its own file named by step, written before last.pt points to it: whenever
    the run dies, last.pt and the replay it names belong together. Older replay files are removed.
    """
    ckpt = Path(run_dir) / LAST
    replay_file = f"replay-{state['loop']['step']}.npz"
    with atomic_path(ckpt.parent / replay_file) as tmp, open(tmp, "wb") as f:
        np.savez(f, **_pack_replay(replay))
    state["loop"]["replay_file"] = replay_file
    atomic_save({**state, "training_format": TRAINING_FORMAT}, ckpt)
    for old in ckpt.parent.glob("replay*.npz"):
        if old.name != replay_file:
            old.unlink()


def load_training(ckpt: str | Path, cfg: Config) -> tuple[dict, dict]:
    """(state, replay buffer state) of a training checkpoint, refused if it does not fit ``cfg``."""
    ckpt = Path(ckpt)
    state = _read(ckpt, ("q_net", "target_net", "optimizer", "loop"))
    if state.get("training_format") != TRAINING_FORMAT:
        raise CheckpointError(
            f"{ckpt} was written by an older version of paperlab.dqn and cannot be resumed "
            "by this one (its model can still be evaluated); start a new run_dir"
        )
    check_resumable(state["meta"]["config"], cfg, FIXED_ON_RESUME, what=f"checkpoint {ckpt}")
    saved_seeds = state["meta"]["config"].get("num_seeds", 1)  # runs before the batched trainer: 1
    if saved_seeds != cfg.num_seeds:
        raise CheckpointError(
            f"checkpoint {ckpt} holds {saved_seeds} agent(s) and this run has num_seeds="
            f"{cfg.num_seeds}; resume it with the trainer and num_seeds that wrote it"
        )
    replay_path = ckpt.parent / state["loop"]["replay_file"]
    if not replay_path.is_file():
        raise FileNotFoundError(f"{ckpt} needs its replay buffer {replay_path}, which is missing")
    with np.load(replay_path) as z:
        replay = _unpack_replay(dict(z))
    return state, replay
