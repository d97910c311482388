"""Save, load and resume PPO runs, on ``paperlab.shared.checkpoint``.

Two files per run directory:

- ``model.pt``: what ``evaluate``/``render`` need (config, sizes, actor-critic weights, observation
  statistics); read with :func:`load_policy`. ``checkpoints/last.pt`` holds the same keys, so it can
  be evaluated too.
- ``checkpoints/last.pt``: everything a resumed run needs to continue exactly: the model, Adam,
  the EWMA policy, the normalisers, the loop counters, every RNG, and the environments themselves
  (simulator state and random generators, see ``envs.get_state``) with the last observation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paperlab.ppo.agent import ActorCritic, build_agent
from paperlab.ppo.config import Config
from paperlab.ppo.core import RunningMeanStd
from paperlab.shared.checkpoint import LAST, atomic_save, check_resumable, load_checkpoint
from paperlab.shared.config import ConfigError, config_from_dict, to_dict

MODEL_KEYS = ("config", "obs_dim", "act_dim", "agent", "obs_rms")
TRAIN_KEYS = (*MODEL_KEYS, "opt", "ewma", "rew_scaler", "adv_moments", "loop", "rng", "envs", "obs")
# what a resumed run may not change (the rest, e.g. lr, total_steps or eval_every, may)
RESUME_KEYS = ("env_id", "brax_backend", "episode_length", "seed", "algo", "num_envs", "num_steps",
               "actor_hidden", "critic_hidden", "activation", "norm_obs", "norm_reward")  # fmt: skip


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / LAST


def model_state(cfg: Config, agent: ActorCritic, obs_rms: RunningMeanStd | None) -> dict[str, Any]:
    return {
        "config": to_dict(cfg),
        "obs_dim": agent.obs_dim,
        "act_dim": agent.act_dim,
        "agent": agent.state_dict(),
        "obs_rms": obs_rms.state_dict() if obs_rms is not None else None,
    }


def save_model(path: str | Path, cfg: Config, agent: ActorCritic, obs_rms: RunningMeanStd | None) -> None:
    atomic_save(model_state(cfg, agent, obs_rms), path)


def save_checkpoint(
    path: str | Path, cfg: Config, agent: ActorCritic, obs_rms: RunningMeanStd | None, **training: Any
) -> None:
    """``checkpoints/last.pt``: the model keys plus ``training`` (see ``TRAIN_KEYS``)."""
    missing = set(TRAIN_KEYS) - set(MODEL_KEYS) - set(training)
    if missing:
        raise TypeError(f"save_checkpoint: missing {sorted(missing)}")
    atomic_save({**model_state(cfg, agent, obs_rms), **training}, path)


def _config(blob: dict, path: Path) -> Config:
    return config_from_dict(Config, blob["config"], source=f"the config saved in {path}")


def load_policy(path: str | Path) -> tuple[Config, ActorCritic, RunningMeanStd | None]:
    """(config, agent in eval mode on the CPU, observation statistics) from ``model.pt`` or ``last.pt``."""
    path = Path(path)
    blob = load_checkpoint(path, required=MODEL_KEYS, kind="PPO model")
    cfg = _config(blob, path)
    cfg.device = "cpu"
    agent = build_agent(cfg, blob["obs_dim"], blob["act_dim"])
    try:
        agent.load_state_dict(blob["agent"])
    except RuntimeError as e:  # shapes that do not fit the config's network sizes
        raise ConfigError(f"{path}: the weights do not fit its config ({str(e).splitlines()[0]})") from None
    agent.eval()
    rms = None
    if blob["obs_rms"] is not None:
        rms = RunningMeanStd((blob["obs_dim"],))
        rms.load_state_dict(blob["obs_rms"])
    return cfg, agent, rms


def load_for_resume(path: str | Path, cfg: Config, obs_dim: int, act_dim: int) -> dict[str, Any]:
    """The training checkpoint, after checking that ``cfg`` (and its environment) can continue it."""
    path = Path(path)
    blob = load_checkpoint(path, required=TRAIN_KEYS, kind="PPO training")
    check_resumable(blob["config"], cfg, RESUME_KEYS, what=f"checkpoint {path}")
    if (blob["obs_dim"], blob["act_dim"]) != (obs_dim, act_dim):
        raise ConfigError(
            f"checkpoint {path} has obs {blob['obs_dim']}, actions {blob['act_dim']}; "
            f"{cfg.env_id} has obs {obs_dim}, actions {act_dim}"
        )
    return blob
