"""Checkpoints that survive a kill: atomic writes, RNG state, resume checks, a guarded run directory.

ckpt = guard_run_dir(run_dir, resume)    # None for a fresh run; refuses to overwrite a history
atomic_save({"model": ..., "rng": rng_state(gen)}, run_dir / LAST)
state = load_checkpoint(ckpt, required=("config", "model"), kind="DQN")
check_resumable(state["config"], cfg, keys=("seed", "hidden")); restore_rng_state(state["rng"], gen)
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import random
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from paperlab.shared.config import ConfigError, to_dict

LAST = Path("checkpoints") / "last.pt"  # inside a run directory


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint: corrupt, of another project or model, or missing keys."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it replaces ``path`` only if the block finishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a saved file gets the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _has_torch() -> bool:
    return "torch" in sys.modules or importlib.util.find_spec("torch") is not None


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` (pickle where torch is not installed) through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        if _has_torch():
            import torch

            torch.save(obj, tmp)
        else:
            tmp.write_bytes(pickle.dumps(obj))


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def load_checkpoint(path: str | Path, required: Sequence[str] = (), kind: str = "paperlab") -> dict:
    """Read a checkpoint written by :func:`atomic_save`; one clear error for every way it can be wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        if _has_torch():
            import torch

            state = torch.load(path, map_location="cpu", weights_only=False)
        else:
            state = pickle.loads(path.read_bytes())
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__}: {e})".split("\n")[0]) from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a {kind} checkpoint (it holds a {type(state).__name__})")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a {kind} checkpoint (no {', '.join(map(repr, missing))})")
    return state


def rng_state(*generators: np.random.Generator, jax_key: Any = None) -> dict:
    """Every RNG a run draws from: python, numpy's global RNG, ``generators``, torch CPU/CUDA, a jax key."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "generators": [g.bit_generator.state for g in generators],
    }
    if "torch" in sys.modules:
        import torch

        state["torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            state["torch_cuda"] = torch.cuda.get_rng_state_all()
    if jax_key is not None:
        import jax

        state["jax_key"] = np.asarray(jax.random.key_data(jax_key))
    return state


def restore_rng_state(state: dict, *generators: np.random.Generator) -> Any:
    """Put back what :func:`rng_state` captured (``generators`` in the same order). Returns the jax key, if any."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if len(generators) != len(state["generators"]):
        raise CheckpointError(
            f"the checkpoint holds {len(state['generators'])} numpy generators, {len(generators)} were passed"
        )
    for g, s in zip(generators, state["generators"], strict=True):
        g.bit_generator.state = s
    if "torch" in state:
        import torch

        torch.set_rng_state(state["torch"])
        if "torch_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["torch_cuda"])
    if "jax_key" in state:
        import jax

        return jax.random.wrap_key_data(state["jax_key"])
    return None


def check_resumable(saved: dict, cfg: Any, keys: Sequence[str], what: str = "the checkpoint") -> None:
    """Refuse to continue ``saved`` (a config dict) under ``cfg`` if any of ``keys`` changed; name them all.
    A key the checkpoint does not have (it was added to the config class later) counts as the class's
    default value, the behaviour the checkpoint was trained with."""
    import dataclasses

    now = cfg if isinstance(cfg, dict) else to_dict(cfg)
    defaults = {}
    if dataclasses.is_dataclass(cfg):
        for f in dataclasses.fields(cfg):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory()
    then = {k: saved[k] if k in saved else defaults.get(k) for k in keys}
    changed = [f"{k}: {then[k]!r} in {what}, {now.get(k)!r} now" for k in keys if then[k] != now.get(k)]
    if changed:
        raise ConfigError(
            f"{what} does not fit this config ({'; '.join(changed)}); "
            "use the checkpoint's values or start a new run_dir"
        )


def guard_run_dir(run_dir: str | Path, resume: bool, resume_hint: str = "--resume") -> Path | None:
    """The checkpoint to resume from, or None for a fresh run. A fresh run into a directory that holds
    ``checkpoints/last.pt`` is refused (it would delete a history), and so is a resume with nothing to
    resume; both errors say what to do."""
    ckpt = Path(run_dir) / LAST
    if resume and not ckpt.is_file():
        raise FileNotFoundError(f"nothing to resume: no {ckpt} (run without resuming to start a fresh run)")
    if not resume and ckpt.is_file():
        raise ConfigError(
            f"{run_dir} already holds a run (checkpoint {ckpt}); continue it with {resume_hint} "
            "or give a new run_dir=..."
        )
    return ckpt if resume else None
