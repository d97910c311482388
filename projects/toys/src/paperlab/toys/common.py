"""What the toy tasks share: the distance metrics, and the command that trains, checkpoints and evaluates.

Every task module defines ``make_trainer(cfg) -> Trainer`` (an initial state and one jitted
``lax.scan`` over a chunk of training steps) and ``evaluate(cfg, params) -> metrics`` (figures into
``cfg.run_dir``); :func:`run_task` wires them to ``python -m paperlab.toys.<task> [--config PRESET]
[key=value ...] [--resume]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from paperlab.shared.config import ConfigError, add_config_args, load_config, parse_args

# ----------------------------------------------------------------------------- distances


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """TV(p, q) = 1/2 sum |p - q| for two probability vectors on the same support."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {p.shape} and {q.shape}")
    return float(0.5 * np.abs(p - q).sum())


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-12) -> float:
    """KL(p || q) = sum p log(p / q) in nats (terms with p = 0 contribute 0; q is floored at eps)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {p.shape} and {q.shape}")
    mask = p > 0
    return float(np.sum(p[mask] * (np.log(p[mask]) - np.log(np.maximum(q[mask], eps)))))


def empirical(samples: np.ndarray, n_values: int) -> np.ndarray:
    """Histogram of integer samples in 0..n_values-1, normalised."""
    return np.bincount(np.asarray(samples).ravel(), minlength=n_values)[:n_values] / np.asarray(samples).size


def sampling_floor(p: np.ndarray, n: int, rng: np.random.Generator, reps: int = 20) -> dict[str, float]:
    """TV and KL(p || empirical) of ``n`` exact samples of ``p``: the noise floor of a model measured on n samples.

    KL(p || q_hat) is infinite whenever a value of p's support was not drawn, so the empirical
    distribution is smoothed with add-one (Laplace) counts, the same smoothing :func:`sample_distances` uses.
    """
    tvs, kls = [], []
    for _ in range(reps):
        counts = np.bincount(rng.choice(len(p), size=n, p=p), minlength=len(p))
        tvs.append(total_variation(p, counts / n))
        kls.append(kl_divergence(p, (counts + 1) / (n + len(p))))
    return {
        "tv_mean": float(np.mean(tvs)),
        "tv_std": float(np.std(tvs)),
        "kl_mean": float(np.mean(kls)),
        "kl_std": float(np.std(kls)),
    }


def sample_distances(p: np.ndarray, samples: np.ndarray) -> dict[str, float]:
    """TV(p, empirical) and KL(p || add-one smoothed empirical) of integer samples."""
    counts = np.bincount(np.asarray(samples).ravel(), minlength=len(p))[: len(p)]
    n = counts.sum()
    return {"tv": total_variation(p, counts / n), "kl": kl_divergence(p, (counts + 1) / (n + len(p)))}


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Energy distance 2 E|X-Y| - E|X-X'| - E|Y-Y'| between two point clouds (V-statistic, >= 0).

    It is zero iff the distributions agree (Szekely & Rizzo); on n samples of the same distribution
    it is of order 1/n, which is why results report it next to the value for two real draws.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be (n, d) and (m, d) arrays, got {x.shape} and {y.shape}")

    def mean_dist(a, b):
        return float(np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0)).mean())

    return 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)


def mmd_rbf(x: np.ndarray, y: np.ndarray, bandwidth: float = 0.2) -> float:
    """Squared maximum mean discrepancy with a Gaussian kernel exp(-|a-b|^2 / (2 h^2)) (V-statistic)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)

    def k(a, b):
        return np.exp(-((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / (2 * bandwidth**2)).mean()

    return float(k(x, x) + k(y, y) - 2 * k(x, y))


# ----------------------------------------------------------------------------- training in checkpointed chunks


class Trainer(NamedTuple):
    """``init()`` -> the training state; ``run(state, start, n)`` -> (state after steps start..start+n-1,
    curves: arrays with one row per logged point; an optional ``"step"`` array numbers the rows, else
    one row per step); ``params(state)`` -> what ``evaluate`` needs. ``multiple``: chunk lengths are
    multiples of it (h-DQN logs one row per bin of steps)."""

    init: Callable[[], Any]
    run: Callable[[Any, int, int], tuple[Any, dict]]
    params: Callable[[Any], Any]
    multiple: int = 1


def scan_trainer(init: Callable[[], Any], step: Callable, params: Callable = lambda s: s[0]) -> Trainer:
    """A :class:`Trainer` whose chunk is ``lax.scan(step, state, start + arange(n))``, jitted once per chunk length."""
    import jax
    import jax.numpy as jnp

    @partial(jax.jit, static_argnums=2)
    def run(state, start, n):
        return jax.lax.scan(step, state, start + jnp.arange(n))

    return Trainer(jax.jit(init), run, params)


def train_all(trainer: Trainer, steps: int) -> tuple[Any, dict[str, np.ndarray]]:
    """All steps in one chunk, nothing written: (params, curves). For tests and notebooks."""
    state, curves = trainer.run(trainer.init(), 0, steps)
    return trainer.params(state), {k: np.asarray(v) for k, v in curves.items()}


def chunk_length(cfg, total: int, multiple: int) -> int:
    n = cfg.checkpoint_every or -(-total // 4)  # default: four chunks, so every run reaches a checkpoint
    return max(multiple, -(-n // multiple) * multiple)


def _check_finite(rows: np.ndarray, curves: dict[str, np.ndarray]) -> None:
    """FloatingPointError (via the shared check_finite) at the first logged step where a curve is NaN/inf."""
    from paperlab.shared.cli import check_finite

    for name, values in curves.items():
        bad = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
        if bad.size:
            v = values.reshape(len(values), -1)[bad[0]]
            check_finite(int(rows[bad[0]]), **{name: v[~np.isfinite(v)][0]})


def write_json(obj: Any, path: str | Path) -> None:
    from paperlab.shared.checkpoint import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def _parse(task: str, argv, doc: str):
    from paperlab.toys.config import Config

    parser = argparse.ArgumentParser(prog=f"python -m paperlab.toys.{task}", description=(doc or "").split("\n")[0])
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = load_config(Config, args.config, [f"task={task}", *args.overrides])
    if args.config:  # a preset written for another task is a mistake, not something to ignore
        import yaml

        preset_task = (yaml.safe_load(Path(args.config).read_text()) or {}).get("task", task)
        if preset_task != task:
            raise ConfigError(f"{args.config} is a preset for task {preset_task!r}, not {task!r}")
    return cfg, args


def _train(task: str, cfg, trainer: Trainer, resume: bool) -> tuple[Any, int] | None:
    """Train in chunks with a checkpoint after each; (params, steps), or None when stopped by a signal."""
    import jax

    from paperlab.shared.checkpoint import guard_run_dir
    from paperlab.shared.cli import StopSignal
    from paperlab.shared.runlog import RunLogger
    from paperlab.toys import checkpoint

    run_dir = Path(cfg.run_dir)
    hint = f"--resume (make toy-{task} RESUME=1)"
    ckpt = guard_run_dir(run_dir, resume, resume_hint=hint)
    if ckpt is None and any((run_dir / f).exists() for f in (checkpoint.MODEL, "eval.json")):
        raise ConfigError(
            f"{run_dir} already holds a trained model; give a new run_dir=... (runs are never "
            "overwritten) or evaluate it with eval_only=true"
        )
    total = cfg.section.train_steps
    chunk = chunk_length(cfg, total, trainer.multiple)
    t0, c0 = time.time(), time.process_time()
    if ckpt is not None:
        step, state, curves, times = checkpoint.load_state(ckpt, cfg, jax.eval_shape(trainer.init))
        print(f"[{task}] resuming from step {step} of {total} ({ckpt})", flush=True)
    else:
        step, state, curves, times = 0, trainer.init(), {}, {}
    logger = RunLogger(run_dir, cfg, resume_step=step if ckpt is not None else None)
    print(f"[{task}] training {total} steps in jitted chunks of {chunk} (each compiles once) ...", flush=True)
    with StopSignal() as stop:
        while step < total and not stop.requested:
            n = min(chunk, total - step)
            state, out = trainer.run(state, step, n)
            out = {k: np.asarray(v) for k, v in out.items()}
            rows = out.pop("step", step + 1 + np.arange(n))
            _check_finite(rows, out)
            for i, s in enumerate(rows):
                logger.log(int(s), **{k: float(v[i]) for k, v in out.items() if v.ndim == 1})
            curves = {k: np.concatenate([curves[k], v]) if k in curves else v for k, v in out.items()}
            step += n
            times = {
                "wall_time_s": times.get("wall_time_s", 0.0) + time.time() - t0,
                "cpu_time_s": times.get("cpu_time_s", 0.0) + time.process_time() - c0,
            }
            t0, c0 = time.time(), time.process_time()
            checkpoint.save_state(run_dir, cfg, step, state, curves, times)
            print(f"[{task}] step {step}/{total}: checkpoint saved ({times['cpu_time_s']:.0f} CPU s)", flush=True)
    logger.close()
    summary = {
        "task": task,
        "steps": step,
        "wall_time_s": round(times.get("wall_time_s", 0.0), 1),  # compile + training, over every resume
        "cpu_time_s": round(times.get("cpu_time_s", 0.0), 1),  # the CPU time these processes got
        "finished": step >= total,
        "seed": cfg.seed,
        "device": jax.default_backend(),
        "jax": jax.__version__,
    }
    write_json(summary, run_dir / "summary.json")
    if step < total:
        return None
    wide = {k: np.round(v, 5).tolist() for k, v in curves.items() if v.ndim > 1}
    if wide:  # per-seed curves (h-DQN) for the figures; the 1-D ones are in metrics.jsonl
        write_json(wide, run_dir / "curves.json")
    params = trainer.params(state)
    path = checkpoint.save_model(run_dir, cfg, params, step)
    print(
        f"[{task}] trained in {summary['cpu_time_s']:.0f} CPU s ({summary['wall_time_s']:.0f} s wall); {path}",
        flush=True,
    )
    return params, step


def run_task(task: str, make_trainer: Callable, evaluate: Callable, argv=None, doc: str = "") -> dict | None:
    """Train (or, with eval_only=true, load run_dir/model.pt), evaluate, write eval.json; returns its content."""
    import jax

    from paperlab.toys import checkpoint

    cfg, args = _parse(task, argv, doc)
    if cfg.eval_only:
        if args.resume:
            raise ConfigError("--resume and eval_only=true exclude each other")
        path = Path(cfg.run_dir) / checkpoint.MODEL
        cfg, saved, steps = checkpoint.load_model(path, task, [f"task={task}", *args.overrides])
        trainer = make_trainer(cfg)
        params = checkpoint.match_tree(
            trainer.params(jax.eval_shape(trainer.init)), jax.tree_util.tree_leaves(saved), str(path)
        )
    else:
        trained = _train(task, cfg, make_trainer(cfg), args.resume)
        if trained is None:
            return None  # stopped by Ctrl-C/SIGTERM after its checkpoint; run_command exits 130
        params, steps = trained
    t1 = time.time()
    metrics = {"task": task, "seed": cfg.seed, **evaluate(cfg, params), "eval_seconds": 0.0}
    metrics["eval_seconds"] = round(time.time() - t1, 1)
    write_json(metrics, Path(cfg.run_dir) / "eval.json")
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list)}, indent=2))
    return metrics
