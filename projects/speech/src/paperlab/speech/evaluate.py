"""Predictions of a trained fold model, per-fold and pooled metrics, and re-evaluation of a finished run.

    python -m paperlab.speech.evaluate runs/speech/aesdd/cnn-seed1 [data_dir=...]   # rewrites eval.json

A clip is classified by averaging the softmax over windows of ``crop_seconds`` (hop: half a window)
that cover it; a clip shorter than one window is one padded, masked window.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from paperlab.speech.augment import crop_batch
from paperlab.speech.config import Config
from paperlab.speech.features import Features
from paperlab.speech.metrics import scores


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda but torch sees no GPU; use device=auto or device=cpu")
    return torch.device(name)


def window_starts(length: int, T: int) -> list[int]:
    if length <= T:
        return [0]
    starts = list(range(0, length - T + 1, max(1, T // 2)))
    if starts[-1] != length - T:
        starts.append(length - T)
    return starts


def _windows(feats: Features, idx, T: int) -> tuple[list[int], list, list, list[int]]:
    """(owner position in idx, offset, length, start) of every evaluation window of the clips ``idx``."""
    owner, offs, lens, starts = [], [], [], []
    for j, i in enumerate(idx):
        for s in window_starts(int(feats.lengths[i]), T):
            owner.append(j)
            offs.append(feats.offsets[i])
            lens.append(feats.lengths[i])
            starts.append(s)
    return owner, offs, lens, starts


@torch.no_grad()
def adapt_batchnorm(model, frames: torch.Tensor, feats: Features, idx, mu, sd, T: int):
    """A copy of ``model`` whose BatchNorm statistics are re-estimated on the evaluation windows of the
    clips ``idx`` (AdaBN, Li et al. 2016: test-time adaptation to a new domain, here one new speaker).
    Labels are not read; weights, biases and the input normalisation stay as trained; every window of
    the clips enters one batch, so each layer's running mean and variance become exactly the statistics
    of its input over those windows."""
    import copy

    adapted = copy.deepcopy(model).eval()
    norms = [m for m in adapted.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        raise ValueError("adapt_bn: the model has no BatchNorm layer to adapt")
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one batch -> exactly its statistics
        m.train()
    _, offs, lens, starts = _windows(feats, idx, T)
    x, mask = crop_batch(frames, offs, lens, T, starts)
    adapted((x - mu[None, :, None]) / sd[None, :, None] * mask[:, None, :], mask)
    return adapted.eval()


@torch.no_grad()
def predict_clips(
    model,
    frames: torch.Tensor,
    feats: Features,
    idx: np.ndarray,
    mu: torch.Tensor,
    sd: torch.Tensor,
    T: int,
    batch: int = 256,
) -> np.ndarray:
    """(len(idx), K) class probabilities, each the mean over the clip's windows."""
    model.eval()
    owner, offs, lens, starts = _windows(feats, idx, T)
    probs = []
    for a in range(0, len(owner), batch):
        sl = slice(a, a + batch)
        x, mask = crop_batch(frames, offs[sl], lens[sl], T, starts[sl])
        x = ((x - mu[None, :, None]) / sd[None, :, None]) * mask[:, None, :]
        probs.append(torch.softmax(model(x, mask).float(), dim=1).cpu())
    probs = torch.cat(probs).numpy()
    out = np.zeros((len(idx), probs.shape[1]))
    np.add.at(out, np.asarray(owner), probs)
    return out / np.bincount(owner, minlength=len(idx))[:, None]


def fold_result(name: str, feats: Features, idx: np.ndarray, probs: np.ndarray, test_speakers) -> dict:
    y_true, y_pred = feats.labels[idx], probs.argmax(axis=1)
    return {
        "fold": name,
        "test_speakers": [int(s) for s in test_speakers],
        **scores(y_true, y_pred, len(feats.emotions)),
        "clips": [feats.names[i] for i in idx],
        "y_true": y_true.tolist(),
        "y_pred": y_pred.tolist(),
        "p_pred": np.round(probs.max(axis=1), 4).tolist(),
    }


def summarize(folds: list[dict], emotions) -> dict:
    """Mean and std over folds, and the pooled scores of every test clip (each clip is tested once)."""
    y_true = np.concatenate([f["y_true"] for f in folds]).astype(int)
    y_pred = np.concatenate([f["y_pred"] for f in folds]).astype(int)
    out = {"emotions": list(emotions), "n_folds": len(folds), "n_test_clips": int(len(y_true))}
    for key in ("accuracy", "uar", "macro_f1"):
        vals = np.array([f[key] for f in folds])
        out[f"{key}_mean"] = float(vals.mean())
        out[f"{key}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    out["pooled"] = scores(y_true, y_pred, len(emotions))
    return out


def write_eval(run_dir: Path, cfg: Config, folds: list[dict], emotions) -> dict:
    from paperlab.shared.checkpoint import atomic_write_text
    from paperlab.shared.config import to_dict

    ev = {
        "dataset": cfg.dataset,
        "test_dataset": cfg.test_dataset or cfg.dataset,
        "model": cfg.model,
        "seed": cfg.seed,
        "config": to_dict(cfg),
        **summarize(folds, emotions),
        "folds": folds,
    }
    atomic_write_text(run_dir / "eval.json", json.dumps(ev, indent=1))
    return ev


def predict_fold(
    model, frames, feats: Features, idx, mu, sd, T: int, adapt_bn: bool = False, source: str = "speaker", train=None
) -> np.ndarray:
    """``predict_clips`` of a fold's test clips; with ``adapt_bn`` each test speaker is classified by a copy
    of the model adapted to that speaker's own clips (``adapt_batchnorm``), one speaker at a time; with
    ``source="train"`` (the control) by one copy adapted to the fold's training clips, ``train`` =
    (frames, features, clip indices) of the training corpus."""
    if not adapt_bn:
        return predict_clips(model, frames, feats, idx, mu, sd, T)
    if source == "train":
        train_frames, train_feats, train_idx = train
        adapted = adapt_batchnorm(model, train_frames, train_feats, train_idx, mu, sd, T)
        return predict_clips(adapted, frames, feats, idx, mu, sd, T)
    idx = np.asarray(idx)
    out = None
    for s in np.unique(feats.speakers[idx]):
        pos = np.flatnonzero(feats.speakers[idx] == s)
        p = predict_clips(
            adapt_batchnorm(model, frames, feats, idx[pos], mu, sd, T), frames, feats, idx[pos], mu, sd, T
        )
        out = np.zeros((len(idx), p.shape[1])) if out is None else out
        out[pos] = p
    return out


def run_probs(run_dir: Path, overrides=()) -> tuple[Config, Features, list, list[np.ndarray]]:
    """(config, test corpus, folds, per fold the (n_test, K) probabilities of its saved model) of a finished run."""
    from paperlab.speech.checkpoint import load_fold_model, run_config
    from paperlab.speech.protocol import fold_plan, load_corpora

    cfg = run_config(run_dir, overrides)
    if cfg.model == "svm":
        raise ValueError(f"{run_dir} is an svm run: it keeps no model to re-evaluate (its eval.json is final)")
    device = pick_device(cfg.device)
    feats, test = load_corpora(cfg)
    folds = fold_plan(cfg, feats, test)
    frames = torch.as_tensor(test.frames, dtype=torch.float32, device=device)
    train_frames = frames if feats is test else torch.as_tensor(feats.frames, dtype=torch.float32, device=device)
    out = []
    for k, fold in enumerate(folds):
        path = run_dir / f"fold{k}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"no {path}: the run has not finished fold {k} (continue it with --resume)")
        model, mu, sd, meta = load_fold_model(path, cfg.feature_params())
        if meta["emotions"] != list(test.emotions):
            raise ValueError(f"{path} classifies {meta['emotions']}, the test corpus has {list(test.emotions)}")
        model, mu, sd = model.to(device), mu.to(device), sd.to(device)
        train = (train_frames, feats, fold.train)
        out.append(
            predict_fold(
                model, frames, test, fold.test, mu, sd, cfg.crop_frames, cfg.adapt_bn, cfg.adapt_bn_source, train
            )
        )
    return cfg, test, folds, out


def _main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", help="a finished run directory (runs/speech/<dataset>/<model>-seed<s>)")
    parser.add_argument("overrides", nargs="*", help="key=value applied to the run's config (e.g. data_dir=...)")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    cfg, test, folds, probs = run_probs(run_dir, args.overrides)
    results = [fold_result(f.name, test, f.test, p, f.test_speakers) for f, p in zip(folds, probs, strict=True)]
    ev = write_eval(run_dir, cfg, results, test.emotions)
    print(
        f"{run_dir}: accuracy {ev['accuracy_mean']:.3f} +- {ev['accuracy_std']:.3f}, UAR {ev['uar_mean']:.3f} "
        f"over {len(results)} folds -> {run_dir / 'eval.json'}"
    )
    return ev


def main(argv=None):
    from paperlab.shared.cli import run_command

    run_command(_main, argv)


if __name__ == "__main__":
    main()
