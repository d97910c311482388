"""Sample quality: a Fréchet distance in the feature space of a small classifier trained on the same dataset.

This is NOT the FID. FID (Heusel et al. 2017) uses the 2048-d pool features of one fixed ImageNet
Inception-v3; the numbers here use the 64-d penultimate layer of a small CNN trained on the dataset itself
(call it FD-classifier), so they rank samplers and checkpoints of this project against each other but
are not comparable with published FIDs. The real FID is computed too when ``--fid-weights`` points at
the FID Inception weights file and torchmetrics (+ torch-fidelity) is installed.

    python -m paperlab.ddpm.evaluate runs/ddpm/mnist/checkpoints/last.pt --n 500 \
        --rows ddim:10 ddim:20 ddim:50 ddim:100 ddim:100:1 ddpm:1000 --ema both --out runs/ddpm/mnist/eval.json

A row is ``SAMPLER:STEPS[:ETA]``; every row starts from the same x_T (same seed), so rows differ only in
the sampler. Finished rows are kept in the output file, so a stopped evaluation continues where it was.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from paperlab.ddpm.checkpoint import config_of, load_for_sampling, read_checkpoint
from paperlab.ddpm.classifier import (
    FEATURE_DIM,
    REQUIRED_ACCURACY,
    classifier_warning,
    default_classifier_path,
    features_of,
    load_or_train_classifier,
)
from paperlab.ddpm.data import load_data
from paperlab.ddpm.images import save_grid
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command


# ---------------------------------------------------------------------------------------- Fréchet distance
def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need a (N >= 2, D) feature array, got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2): the Fréchet (2-Wasserstein)^2 distance between
    N(mu1, C1) and N(mu2, C2). tr((C1 C2)^1/2) = tr((C1^1/2 C2 C1^1/2)^1/2), a symmetric PSD square root."""
    s1 = _sqrtm_psd(cov1)
    covmean_trace = np.sqrt(np.clip(np.linalg.eigvalsh(s1 @ cov2 @ s1), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * covmean_trace)


# ---------------------------------------------------------------------------------------- real FID (optional)
def inception_fid(real_u8: torch.Tensor, fake_u8: torch.Tensor, weights: str | Path) -> float:
    """FID with torchmetrics' Inception-v3 loaded from a local weights file (no download).

    ``weights``: the FID Inception weights (pt_inception-2015-12-05-6726825d.pth, from the pytorch-fid
    release "fid_weights"). Needs ``pip install torchmetrics torch-fidelity`` (``paperlab-ddpm[fid]``).
    """
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(
            f"FID: Inception weights file not found: {weights} (the FID Inception-v3 weights, "
            "pt_inception-2015-12-05-6726825d.pth, from github.com/mseitzer/pytorch-fid releases)"
        )
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as e:
        raise RuntimeError(
            "FID needs torchmetrics and torch-fidelity, which are not installed: "
            "pip install torchmetrics torch-fidelity  (or pip install -e 'projects/ddpm[fid]')"
        ) from e
    fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(weights))

    def rgb(x: torch.Tensor) -> torch.Tensor:
        return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x

    for chunk in real_u8.split(200):
        fid.update(rgb(chunk), real=True)
    for chunk in fake_u8.split(200):
        fid.update(rgb(chunk), real=False)
    return float(fid.compute())


# ---------------------------------------------------------------------------------------- evaluation
def parse_row(spec: str) -> tuple[str, int, float]:
    parts = spec.split(":")
    try:
        sampler, steps, eta = parts[0], int(parts[1]), float(parts[2]) if len(parts) > 2 else 0.0
    except (IndexError, ValueError):
        raise ValueError(f"bad row {spec!r}: expected SAMPLER:STEPS[:ETA], e.g. ddim:50, ddim:50:1") from None
    if sampler not in ("ddpm", "ddim") or len(parts) > 3:
        raise ValueError(f"bad row {spec!r}: the sampler is ddpm or ddim")
    return sampler, steps, eta


def row_name(sampler: str, steps: int, eta: float, ema: bool) -> str:
    return f"{sampler}{steps}{f'-eta{eta:g}' if sampler == 'ddim' and eta else ''}-{'ema' if ema else 'raw'}"


def to_u8(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def evaluate(
    ckpt: Path,
    rows: list[str],
    ema_modes: list[bool],
    n: int,
    out: Path,
    data_dir: str | None = None,
    classifier: Path | None = None,
    classifier_epochs: int = 2,
    batch: int = 250,
    seed: int = 0,
    fid_weights: str | None = None,
    threads: int = 1,
) -> dict:
    torch.set_num_threads(threads)
    specs = [parse_row(r) for r in rows]  # bad rows fail before any work
    state = read_checkpoint(ckpt)
    overrides = [f"data_dir={data_dir}"] if data_dir else []
    cfg = config_of(state, overrides)
    data = load_data(cfg)
    if classifier is None:  # the committed classifier of this dataset and size, else one trained for this run
        committed = default_classifier_path(cfg.dataset, cfg.image_size)
        classifier = committed if committed.is_file() else ckpt.parent.parent / "classifier.pt"
    net, acc = load_or_train_classifier(classifier, data, classifier_epochs)
    warning = classifier_warning(cfg.dataset, acc)
    if warning:
        print(warning, file=sys.stderr)
    real = data.test
    mu_r, cov_r = gaussian_stats(features_of(net, real))
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(data.train), generator=gen)
    floor = frechet_distance(*gaussian_stats(features_of(net, data.train[perm[:n]])), mu_r, cov_r)
    # the sampling error of an FD at this sample size: two disjoint sets of real images against each other
    half = min(n, len(data.train) // 2)
    halves = frechet_distance(
        *gaussian_stats(features_of(net, data.train[perm[:half]])),
        *gaussian_stats(features_of(net, data.train[perm[half : 2 * half]])),
    )
    result = {
        "checkpoint": str(ckpt),
        "step": state["step"],
        "dataset": cfg.dataset,
        "image_size": cfg.image_size,
        "n_samples": n,
        "n_real": len(real),
        "feature": f"{'rotation-' if getattr(net, 'task', 'classes') == 'rotation' else ''}classifier-{FEATURE_DIM}d",
        "classifier": str(classifier),
        "classifier_test_accuracy": acc,
        "classifier_required_accuracy": REQUIRED_ACCURACY.get(cfg.dataset),
        "fd_train_subset_vs_test": floor,
        "n_floor": min(n, len(data.train)),
        "fd_real_halves": halves,
        "n_real_halves": half,
        "real_mean_grey": float(real.float().mean()),
        "rows": [],
    }
    if out.is_file():
        old = json.loads(out.read_text())
        if old.get("step") == state["step"] and old.get("n_samples") == n:
            result["rows"] = old["rows"]
    done = {(r["sampler"], r["steps"], r["eta"], r["ema"]) for r in result["rows"]}
    grids = out.parent / "eval_samples"
    for use_ema in ema_modes:
        model, diffusion, _, _ = load_for_sampling(ckpt, ema=use_ema)
        for sampler, steps, eta in specs:
            if (sampler, steps, eta, use_ema) in done:
                continue
            t0 = time.time()
            xs = []
            g = torch.Generator().manual_seed(seed)  # the same x_T for every row
            for i in range(0, n, batch):
                b = min(batch, n - i)
                shape = (b, state["channels"], cfg.image_size, cfg.image_size)
                x, _ = diffusion.sample(model, shape, sampler, steps, eta, generator=g)
                xs.append(x)
            x = torch.cat(xs)
            fd = frechet_distance(*gaussian_stats(features_of(net, x)), mu_r, cov_r)
            preds = net.eval()(x[:1000]).argmax(1)  # rotation task: the share of samples seen as upright
            row = {
                "sampler": sampler,
                "steps": steps,
                "eta": eta,
                "ema": use_ema,
                "fd_classifier": fd,
                "seconds": round(time.time() - t0, 1),
                "network_evals_per_sample": steps,
                "class_histogram": torch.bincount(preds, minlength=net.head[-1].out_features).tolist(),
                "mean_grey": float(to_u8(x).float().mean()),
            }
            if fid_weights:
                row["fid"] = inception_fid(real, to_u8(x), fid_weights)
            name = row_name(sampler, steps, eta, use_ema)
            save_grid(x[:64], grids / f"{name}.png", scale=2 if cfg.image_size <= 32 else 1)
            result["rows"].append(row)
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out, json.dumps(result, indent=2))
            print(f"{name}: FD-classifier {fd:.3f} ({row['seconds']}s)", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=2))
    if warning:
        print(warning, file=sys.stderr)  # again at the end, where the table is read
    return result


def _main(argv=None) -> dict:
    p = argparse.ArgumentParser(description="FD in a trained classifier's feature space (and FID with weights).")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--rows", nargs="+", default=["ddim:10", "ddim:20", "ddim:50", "ddim:100", "ddpm:1000"])
    p.add_argument("--ema", choices=("ema", "raw", "both"), default="both")
    p.add_argument("--n", type=int, default=500, help="generated samples per row")
    p.add_argument("--out", type=Path, default=None, help="default: <run_dir>/eval.json")
    p.add_argument("--data-dir", default=None, help="override the checkpoint's data_dir")
    p.add_argument(
        "--classifier",
        type=Path,
        default=None,
        help="default: projects/ddpm/classifiers/<dataset>-<size>.pt if committed, "
        "else <run_dir>/classifier.pt (trained if absent)",
    )
    p.add_argument("--classifier-epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--fid-weights", default=None, help="FID Inception-v3 weights file: also compute the real FID")
    a = p.parse_args(argv)
    modes = {"ema": [True], "raw": [False], "both": [True, False]}[a.ema]
    out = a.out or a.checkpoint.parent.parent / "eval.json"
    if a.n < 2:
        raise ValueError("--n must be at least 2")
    res = evaluate(
        a.checkpoint,
        a.rows,
        modes,
        a.n,
        out,
        a.data_dir,
        a.classifier,
        a.classifier_epochs,
        a.batch,
        a.seed,
        a.fid_weights,
        a.threads,
    )
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}, indent=2))
    return res


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
