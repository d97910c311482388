"""What the toy tasks share: the command line, saving params/metrics, and the distance metrics.

Every task module defines ``train(cfg) -> (params, curves)`` (one jitted function inside) and
``evaluate(cfg, params) -> metrics`` (figures into ``cfg.results_dir``); :func:`run_task` wires
them to ``python -m paperlab.toys.<task> [--config PRESET] [key=value ...]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from paperlab.shared.config import ConfigError, add_config_args, load_config, save_config

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


# ----------------------------------------------------------------------------- files


def save_params(params: Any, path: str | Path) -> None:
    from flax import serialization

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(serialization.to_bytes(params))


def load_params(template: Any, path: str | Path) -> Any:
    from flax import serialization

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no trained parameters at {path} (train first, without eval_only=true)")
    return serialization.from_bytes(template, path.read_bytes())


def write_json(obj: Any, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def log_curves(run_dir: str | Path, cfg: Any, curves: dict[str, np.ndarray], every: int = 1) -> None:
    """Write per-step training curves (arrays of equal length) to metrics.jsonl and TensorBoard."""
    from paperlab.shared.runlog import RunLogger

    logger = RunLogger(run_dir, cfg)
    length = len(next(iter(curves.values()))) if curves else 0
    for i in range(0, length, every):
        logger.log((i + 1), **{k: float(np.asarray(v)[i]) for k, v in curves.items()})
    logger.close()


def check_finite(name: str, values: np.ndarray) -> None:
    """Stop with the first step at which a training curve stopped being finite."""
    values = np.asarray(values)
    bad = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
    if bad.size:
        raise FloatingPointError(f"{name} became non-finite at step {int(bad[0]) + 1}")


# ----------------------------------------------------------------------------- command line


def parse_config(task: str, argv=None, description: str = ""):
    from paperlab.toys.config import Config

    parser = argparse.ArgumentParser(prog=f"python -m paperlab.toys.{task}", description=description)
    add_config_args(parser)
    args = parser.parse_args(argv)
    cfg = load_config(Config, args.config, [f"task={task}", *args.overrides])
    if args.config:  # a preset written for another task is a mistake, not something to ignore
        import yaml

        preset_task = (yaml.safe_load(Path(args.config).read_text()) or {}).get("task", task)
        if preset_task != task:
            raise ConfigError(f"{args.config} is a preset for task {preset_task!r}, not {task!r}")
    return cfg


def run_task(task: str, train: Callable, evaluate: Callable, init_params: Callable, argv=None, doc: str = "") -> dict:
    """Train (or load with eval_only=true), evaluate, and write metrics.json; returns the metrics."""
    try:
        cfg = parse_config(task, argv, doc)
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from None
    run_dir, results_dir = Path(cfg.run_dir), Path(cfg.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    params_path = run_dir / "params.msgpack"
    t0, c0 = time.time(), time.process_time()
    if cfg.eval_only:
        params = load_params(init_params(cfg), params_path)
        train_time = None
    else:
        print(f"[{task}] training (one jitted function; compiling first) ...", flush=True)
        params, curves = train(cfg)
        train_time, train_cpu = time.time() - t0, time.process_time() - c0
        for name, values in curves.items():
            check_finite(name, values)
        save_params(params, params_path)
        log_curves(run_dir, cfg, curves)
        save_config(cfg, results_dir / "config.yaml")
        print(f"[{task}] trained in {train_time:.1f} s; params in {params_path}", flush=True)
    t1 = time.time()
    metrics = evaluate(cfg, params)
    metrics = {"task": task, "seed": cfg.seed, **metrics}
    if train_time is not None:
        # compile + train: wall time on a shared machine, and the CPU time this process actually got
        metrics["train_seconds"] = round(train_time, 1)
        metrics["train_cpu_seconds"] = round(train_cpu, 1)
        metrics["eval_seconds"] = round(time.time() - t1, 1)
        write_json(metrics, results_dir / "metrics.json")
    else:
        write_json(metrics, run_dir / "evaluate.json")
    print(json.dumps(metrics, indent=2))
    return metrics
