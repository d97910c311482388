"""One call that makes a run repeatable: python, numpy, torch (when installed) and a jax key."""

from __future__ import annotations

import importlib.util
import os
import random

import numpy as np


def seed_everything(seed: int, deterministic: bool = False) -> np.random.Generator:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and CUDA) when torch is installed.

    ``deterministic=True`` also asks torch for deterministic kernels (slower on GPU; on CPU the
    default kernels are already deterministic for the same thread count). Returns a fresh numpy
    ``Generator`` seeded with ``seed`` for code that prefers explicit generators.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.manual_seed(seed)
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
    return np.random.default_rng(seed)


def jax_key(seed: int):
    """A ``jax.random`` key for ``seed`` (jax has no global RNG to seed)."""
    import jax

    return jax.random.key(seed)


def seed_env(env, seed: int) -> None:
    """Seed a gymnasium env (or vector env): its reset RNG and its action space's sampler."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
