"""Save, load and resume the toy tasks, built on :mod:`paperlab.shared.checkpoint`.

A run directory ``runs/toys/<task>/seed<seed>/`` holds

    checkpoints/last.pt   the whole training state after the last chunk of steps (parameters, optimiser
                          state; for h-DQN also the agents' environments, epsilon clocks and replay
                          memories), the step, and the curves so far: a resumed run continues exactly
    model.pt              the trained parameters with the task name and the config that made them

Randomness needs no saved key: every step draws from ``fold_in(key(seed), step)``, so the step
number and the seed (checked on resume) determine it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np

from paperlab.shared.checkpoint import LAST, CheckpointError, atomic_save, check_resumable, load_checkpoint
from paperlab.shared.config import config_from_dict, to_dict

KIND = "paperlab.toys"
MODEL = "model.pt"


def _numpy(tree: Any) -> Any:
    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


def match_tree(template: Any, leaves: list, what: str) -> Any:
    """Rebuild a pytree shaped like ``template`` from saved leaves; a saved tree of another shape is refused."""
    t_leaves, treedef = jax.tree_util.tree_flatten(template)
    if len(leaves) != len(t_leaves):
        raise CheckpointError(f"{what} holds {len(leaves)} arrays where this config needs {len(t_leaves)}")
    for i, (t, x) in enumerate(zip(t_leaves, leaves)):
        if tuple(np.shape(x)) != tuple(t.shape) or np.asarray(x).dtype != t.dtype:
            raise CheckpointError(
                f"{what}: array {i} is {np.asarray(x).dtype}{list(np.shape(x))}, this config needs "
                f"{t.dtype}{list(t.shape)} (a model of another size: use the config it was trained with)"
            )
    return jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(x) for x in leaves])


def _check_task(state: dict, task: str, path: Path, what: str) -> None:
    if state.get("kind") != KIND:
        raise CheckpointError(f"{path} is not a toys {what} (kind {state.get('kind')!r})")
    if state["task"] != task:
        raise CheckpointError(
            f"{path} holds a {state['task']} {what}, not a {task} one (evaluate it with "
            f"python -m paperlab.toys.{state['task']}, or give the run_dir of a {task} run)"
        )


def _flat(cfg_dict: dict, task: str) -> dict:
    return {"seed": cfg_dict["seed"], **{f"{task}.{k}": v for k, v in cfg_dict[task].items()}}


def save_state(run_dir: str | Path, cfg, step: int, state: Any, curves: dict, times: dict) -> None:
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.device_get(state))]
    atomic_save(
        {
            "kind": KIND,
            "task": cfg.task,
            "config": to_dict(cfg),
            "step": step,
            "leaves": leaves,
            "curves": curves,
            "times": times,
        },
        Path(run_dir) / LAST,
    )


def load_state(path: str | Path, cfg, template: Any) -> tuple[int, Any, dict, dict]:
    """(step, state, curves, times) of a training checkpoint of this task and config."""
    path = Path(path)
    ck = load_checkpoint(path, required=("kind", "task", "config", "step", "leaves"), kind="toys training")
    _check_task(ck, cfg.task, path, "training checkpoint")
    check_resumable(_flat(ck["config"], cfg.task), _flat(to_dict(cfg), cfg.task), list(_flat(to_dict(cfg), cfg.task)))
    state = match_tree(template, ck["leaves"], str(path))
    return int(ck["step"]), state, ck.get("curves", {}), ck.get("times", {})


def save_model(run_dir: str | Path, cfg, params: Any, step: int) -> Path:
    path = Path(run_dir) / MODEL
    atomic_save({"kind": KIND, "task": cfg.task, "config": to_dict(cfg), "step": step, "params": _numpy(params)}, path)
    return path


def load_model(path: str | Path, task: str, overrides=()) -> tuple[Any, Any, int]:
    """(config, params as saved, step) of a trained ``task`` model; ``overrides`` apply to the saved config.

    Missing file: FileNotFoundError; another task's model or a file that is no model: CheckpointError.
    The caller checks the parameters' shapes against its config with :func:`match_tree`.
    """
    from paperlab.toys.config import Config

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no trained {task} model at {path} (train it first with make toy-{task}, "
            "or give the run_dir=... of a finished run)"
        )
    ck = load_checkpoint(path, required=("kind", "task", "config", "params"), kind="toys model")
    _check_task(ck, task, path, "model")
    cfg = config_from_dict(Config, ck["config"], overrides, source=str(path))
    return cfg, ck["params"], int(ck.get("step", 0))
