"""The feature network behind the Fréchet distances: one small CNN trained here on both domains.

It classifies source classes and target classes together (MNIST digits 0-9 plus the 40 Olivetti people:
50 classes; offline: the 10 digits), so its 64-d penultimate features separate digits from each other,
faces from each other, and digits from faces. Inception features (FID) mean little on 28x28 grey digits
and faces; a classifier of the data itself is the usual stand-in at this scale.

    make classifier-lora LORA_DATA=mnist     # -> projects/lora/classifiers/mnist-olivetti-28.pt (+ .json)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from paperlab.lora.config import Config
from paperlab.lora.data import Split, load_source, load_target, num_source_classes, to_model_range
from paperlab.shared.checkpoint import atomic_save, atomic_write_text, load_checkpoint
from paperlab.shared.cli import run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args

FEATURE_DIM = 64
CLASSIFIERS = Path("projects/lora/classifiers")  # committed weights, relative to the repository root


def classifier_path(cfg: Config) -> Path:
    return CLASSIFIERS / f"{cfg.source}-{cfg.target}-{cfg.image_size}.pt"


class FeatureNet(nn.Module):
    """Three conv + batch-norm stages (32, 64, 128 channels), a 2x2 average pool, a 64-d feature layer."""

    def __init__(self, num_classes: int):
        super().__init__()

        def stage(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.body = nn.Sequential(
            *stage(1, 32),
            nn.MaxPool2d(2),
            *stage(32, 64),
            nn.MaxPool2d(2),
            *stage(64, 128),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(512, FEATURE_DIM),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.2), nn.Linear(FEATURE_DIM, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _target_classes(cfg: Config, split: Split, test: bool) -> torch.Tensor:
    """Class ids of the target images: the Olivetti person (K + person), or K for the offline 9s."""
    k = num_source_classes(cfg)
    n = len(split.test if test else split.train)
    if cfg.target != "olivetti":
        return torch.full((n,), k)
    per_person = 2 if test else 8  # images 8-9 / 0-7 of each of the 40 people
    return k + torch.arange(n) // per_person


def _shift(x: torch.Tensor, gen: torch.Generator, shift: int = 2) -> torch.Tensor:
    n, _, h, w = x.shape
    x = torch.where((torch.rand(n, generator=gen) < 0.5).view(-1, 1, 1, 1), x.flip(-1), x)
    padded = F.pad(x, (shift,) * 4, mode="replicate")
    dy, dx = (torch.randint(0, 2 * shift + 1, (n,), generator=gen) for _ in range(2))
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def train_classifier(cfg: Config, steps: int, seed: int = 0, log=print) -> tuple[FeatureNet, dict]:
    """Adam over the source training set; every batch also holds ``batch // 8`` target images (flipped and
    shifted), so that the few target images are seen often. Returns the net and its test accuracies."""
    src, tgt = load_source(cfg), load_target(cfg)
    y_tgt, y_tgt_test = _target_classes(cfg, tgt, False), _target_classes(cfg, tgt, True)
    n_classes = int(max(y_tgt.max(), src.train_labels.max())) + 1
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = FeatureNet(n_classes)
    batch, n_t = 112, 16
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    net.train()
    for step in range(steps):
        i = torch.randint(len(src.train), (batch,), generator=gen)
        j = torch.randint(len(tgt.train), (n_t,), generator=gen)
        x = torch.cat([to_model_range(src.train[i]), _shift(to_model_range(tgt.train[j]), gen)])
        y = torch.cat([src.train_labels[i], y_tgt[j]])
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 200 == 0:
            log(f"classifier step {step + 1}/{steps}: loss {loss.item():.3f}")
    acc = {
        "source_test_accuracy": accuracy(net, src.test, src.test_labels),
        "target_test_accuracy": accuracy(net, tgt.test, y_tgt_test),
    }
    return net, acc


@torch.no_grad()
def accuracy(net: FeatureNet, images_u8: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    pred = torch.cat([net(to_model_range(x)).argmax(1) for x in images_u8.split(1000)])
    return round(float((pred == labels).float().mean()), 4)


@torch.no_grad()
def features(net: FeatureNet, x: torch.Tensor) -> np.ndarray:
    """64-d features of images: uint8, or floats in [-1, 1]."""
    net.eval()
    out = [net.body(to_model_range(c) if c.dtype == torch.uint8 else c.float()).numpy() for c in x.split(500)]
    return np.concatenate(out).astype(np.float64)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between Gaussians fitted to two feature sets."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = np.real(linalg.sqrtm(s_a @ s_b))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * covmean))


def load_classifier(path: Path) -> tuple[FeatureNet, dict]:
    state = load_checkpoint(path, required=("model", "num_classes", "info"), kind="LoRA feature-classifier")
    net = FeatureNet(state["num_classes"])
    net.load_state_dict(state["model"])
    return net.eval(), state["info"]


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="train the Fréchet-distance feature classifier of a config")
    add_config_args(parser)
    parser.add_argument("--steps", type=int, default=600, help="batches of 112 source + 16 target images")
    parser.add_argument("--out", default=None, help="weights file (default projects/lora/classifiers/...)")
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    torch.set_num_threads(cfg.threads)
    t0 = time.time()
    net, acc = train_classifier(cfg, args.steps)
    out = Path(args.out) if args.out else classifier_path(cfg)
    info = {
        **acc,
        "steps": args.steps,
        "source": cfg.source,
        "target": cfg.target,
        "image_size": cfg.image_size,
        "train_time_s": round(time.time() - t0, 1),
        "feature_dim": FEATURE_DIM,
    }
    atomic_save({"model": net.state_dict(), "num_classes": net.head[-1].out_features, "info": info}, out)
    atomic_write_text(out.with_suffix(".json"), json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
