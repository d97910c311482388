"""Save, load and resume cross-validation runs, on :mod:`paperlab.shared.checkpoint`.

run_dir/checkpoints/last.pt   the fold in progress (model, optimiser, every RNG) and the finished folds
run_dir/fold<k>.pt            each fold's final model with its normalisation and feature parameters
"""

from __future__ import annotations

from pathlib import Path

import torch

from paperlab.shared.checkpoint import (
    CheckpointError,
    atomic_save,
    check_resumable,
    load_checkpoint,
    restore_rng_state,
    rng_state,
)
from paperlab.shared.config import config_from_dict, to_dict
from paperlab.speech.config import Config
from paperlab.speech.features import check_feature_params
from paperlab.speech.model import build_model

VERSION = 1
# what a resumed run must share with its checkpoint: the data, the folds, the networks, the RNG streams
FIXED_ON_RESUME = (
    "dataset",
    "emotions",
    "test_dataset",
    "seed",
    "sample_rate",
    "top_db",
    "target_rms_db",
    "n_mels",
    "n_fft",
    "hop_length",
    "fmin",
    "fmax",
    "speaker_norm",
    "folds",
    "n_folds",
    "only_folds",
    "model",
    "channels",
    "rnn_hidden",
    "crop_seconds",
    "epochs",
    "batch_size",
    "speaker_batches",
    "init_from",
)
# what a transfer source (init_from) must share with the run it initialises
FIXED_ON_TRANSFER = ("model", "channels", "rnn_hidden", "speaker_norm")


def make_meta(cfg: Config, emotions) -> dict:
    return {
        "version": VERSION,
        "config": to_dict(cfg),
        "feature_params": cfg.feature_params(),
        "emotions": list(emotions),
    }


def save_training(
    path: Path, meta: dict, fold: int, epoch: int, done: list, model=None, optimizer=None, rng=None
) -> None:
    """``fold``/``epoch``: where to continue; ``done``: the finished folds' results."""
    state = {
        "meta": meta,
        "fold": fold,
        "epoch": epoch,
        "done": done,
        "model": None if model is None else model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "rng": rng_state(*([rng] if rng is not None else [])),
    }
    atomic_save(state, path)


def load_training(path: Path, cfg: Config) -> dict:
    state = load_checkpoint(
        path, required=("meta", "fold", "epoch", "done", "model", "optimizer", "rng"), kind="speech training"
    )
    check_resumable(state["meta"]["config"], cfg, FIXED_ON_RESUME, what=f"checkpoint {path}")
    return state


def restore_fold(state: dict, model, optimizer, rng) -> None:
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"the checkpoint's weights do not fit this model ({str(e).splitlines()[0]})") from e
    optimizer.load_state_dict(state["optimizer"])
    restore_rng_state(state["rng"], rng)


def save_fold_model(path: Path, meta: dict, model, mu: torch.Tensor, sd: torch.Tensor) -> None:
    atomic_save({"meta": meta, "model": model.state_dict(), "mu": mu.cpu(), "sd": sd.cpu()}, path)


def load_fold_model(path: Path, feature_params: dict | None = None):
    """(model in eval mode, mu, sd, meta). Features computed with other parameters (a sample rate, n_mels,
    hop ... that differ from the checkpoint's) are refused."""
    state = load_checkpoint(path, required=("meta", "model", "mu", "sd"), kind="speech fold model")
    meta = state["meta"]
    if feature_params is not None:
        check_feature_params(meta["feature_params"], feature_params, what=f"checkpoint {path}")
    cfg = config_from_dict(Config, meta["config"], source=f"checkpoint {path}")
    model = build_model(cfg, len(meta["emotions"]))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: the weights do not fit the saved config ({str(e).splitlines()[0]})") from e
    return model.eval(), state["mu"], state["sd"], meta


def load_init(source: str, cfg: Config, emotions) -> dict:
    """The weights every fold of a transfer run starts from: ``source`` is a fold model file or a run
    directory (its ``fold0.pt``). Refused with one line: a source trained on the target corpus itself (its
    training speakers include the held-out ones, so the folds would no longer be speaker-independent),
    other features (sample rate, mels, hop ...), another network, or other classes (the head)."""
    path = Path(source)
    if path.is_dir():
        path = path / "fold0.pt"
    if not path.is_file():
        raise FileNotFoundError(f"init_from: no {path} (train the source run first, e.g. the grid's cross group)")
    state = load_checkpoint(path, required=("meta", "model", "mu", "sd"), kind="speech fold model")
    meta, what = state["meta"], f"init_from {path}"
    src = meta["config"]
    if src["dataset"] == cfg.dataset:
        raise ValueError(
            f"{what} was trained on {cfg.dataset} itself: its weights have heard the held-out speakers "
            "(pretrain on another corpus)"
        )
    check_feature_params(meta["feature_params"], cfg.feature_params(), what=what)
    for key in FIXED_ON_TRANSFER:
        theirs = src.get(key, "none")  # (models from before speaker_norm existed: none)
        if theirs != getattr(cfg, key):
            raise ValueError(f"{what} differs: {key}={theirs} there, {getattr(cfg, key)} here")
    if list(meta["emotions"]) != list(emotions):
        raise ValueError(f"{what} classifies {list(meta['emotions'])}, this run {list(emotions)} (other head)")
    return state["model"]


def run_config(run_dir: Path, overrides=()) -> Config:
    """The config a run directory was trained with (``config.yaml``), with ``overrides`` applied."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no {path}: not a speech run directory")
    return config_from_dict(Config, yaml.safe_load(path.read_text()), list(overrides), source=str(path))
