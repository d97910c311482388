"""The feature classifiers behind the Fréchet distances: a small CNN per dataset, trained once and committed.

    make classifier-ddpm DDPM_PRESET=mnist          # -> projects/ddpm/classifiers/mnist-28.pt (+ .json)
    python -m paperlab.ddpm.classifier --config configs/ddpm/olivetti.yaml --epochs 300 --augment

The weights file holds the network, the dataset and image size it fits and its test accuracy; the JSON
beside it records the accuracy, the training time and the command. ``evaluate`` uses the committed file
for its dataset and size when there is one. A classifier below ``REQUIRED_ACCURACY`` is warned about:
its features then measure what it has not learnt (brightness, noise) rather than the data.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from paperlab.ddpm.config import Config
from paperlab.ddpm.data import ImageData, load_data, to_model_range
from paperlab.shared.checkpoint import atomic_save, atomic_write_text, load_checkpoint
from paperlab.shared.cli import run_command
from paperlab.shared.config import ConfigError, add_config_args, config_from_args, parse_args

FEATURE_DIM = 64
CLASSIFIERS = Path("projects/ddpm/classifiers")  # the committed weights, relative to the repository root
# The test accuracy a feature classifier needs before its Fréchet distances are worth reading.
REQUIRED_ACCURACY = {"digits": 0.95, "mnist": 0.99, "olivetti": 0.90, "cifar10": 0.80, "celeba": 0.95}


def rotation_task(data: ImageData) -> ImageData:
    """Self-supervised labels for a dataset without classes (CelebA here): every image at 0, 90, 180 and
    270 degrees, labelled 0..3 (Gidaris, Singh & Komodakis 2018, "Unsupervised Representation Learning by
    Predicting Image Rotations"). To tell which way is up the network has to find the eyes, mouth, chin
    and hair line, so its features describe face layout; the Fréchet distance uses them on upright images."""

    def rotate(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([torch.rot90(x, k, (2, 3)) for k in range(4)]), torch.arange(4).repeat_interleave(len(x))

    return ImageData(data.name, *rotate(data.train), *rotate(data.test), 4)


def is_rotation_task(data: ImageData) -> bool:
    """Datasets without class labels get the rotation task's features."""
    return data.train_labels is None


def classifier_warning(dataset: str, accuracy: float) -> str | None:
    """The warning an evaluation prints when its feature classifier is below the accuracy it needs."""
    need = REQUIRED_ACCURACY.get(dataset)
    if need is None or accuracy >= need:
        return None
    return (
        f"warning: the {dataset} feature classifier has test accuracy {100 * accuracy:.1f}%, below the "
        f"{100 * need:.0f}% it needs: its Fréchet distances are coarse (they can rank by brightness or noise "
        "rather than by content); train a better one (make classifier-ddpm)"
    )


def default_classifier_path(dataset: str, image_size: int) -> Path:
    return CLASSIFIERS / f"{dataset}-{image_size}.pt"


class FeatureNet(nn.Module):
    """A small CNN classifier (three conv + batch-norm stages, a 4x4 average pool that keeps the coarse layout);
    ``features`` is its 64-d penultimate layer (before the ReLU)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()

        def stage(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.body = nn.Sequential(
            *stage(channels, 32),
            nn.MaxPool2d(2),
            *stage(32, 64),
            nn.MaxPool2d(2),
            *stage(64, 128),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(128 * 16, FEATURE_DIM),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.2), nn.Linear(FEATURE_DIM, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def augment(x: torch.Tensor, gen: torch.Generator, shift: int = 2) -> torch.Tensor:
    """Random horizontal flips and translations by up to ``shift`` pixels (edge-padded) of a float batch."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    padded = F.pad(x, (shift,) * 4, mode="replicate")
    dy, dx = (torch.randint(0, 2 * shift + 1, (n,), generator=gen) for _ in range(2))
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def train_classifier(
    data: ImageData,
    epochs: int = 2,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    log=print,
    weight_decay: float = 0.0,
    augment_shift: int = 0,
) -> tuple[FeatureNet, float]:
    """Train the feature network on the training split (Adam, cosine-decayed lr; flips and shifts when
    ``augment_shift`` > 0); returns it and its test accuracy. A dataset without labels is trained on the
    rotation task (:func:`rotation_task`; no flips then: a flip turns a 90-degree rotation into a 270)."""
    task = "rotation" if is_rotation_task(data) else "classes"
    if task == "rotation":
        data, augment_shift = rotation_task(data), 0
    if data.num_classes < 2:
        raise ValueError(f"{data.name} has fewer than two classes: the classifier features need them")
    torch.manual_seed(seed)
    net = FeatureNet(data.channels, data.num_classes)
    net.task = task
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    n = len(data.train)
    batches = epochs * -(-n // batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + np.cos(np.pi * min(k, batches) / batches)))
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        net.train()
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            x = to_model_range(data.train[idx])
            if augment_shift:
                x = augment(x, gen, augment_shift)
            loss = F.cross_entropy(net(x), data.train_labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if (epoch + 1) % max(1, epochs // 10) == 0 or epoch + 1 == epochs:
            log(f"classifier epoch {epoch + 1}/{epochs}: last batch loss {loss.item():.3f}")
    acc = classifier_accuracy(net, data.test, data.test_labels)
    return net, acc


@torch.no_grad()
def classifier_accuracy(net: FeatureNet, images_u8: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    correct = sum(
        (net(to_model_range(x)).argmax(1) == y).sum().item() for x, y in zip(images_u8.split(1000), labels.split(1000))
    )
    return correct / len(labels)


@torch.no_grad()
def features_of(net: FeatureNet, x_model_range: torch.Tensor) -> np.ndarray:
    """Features of images in [-1, 1] (float) or uint8."""
    net.eval()
    out = []
    for chunk in x_model_range.split(500):
        if chunk.dtype == torch.uint8:
            chunk = to_model_range(chunk)
        out.append(net.features(chunk.float()).numpy())
    return np.concatenate(out)


def load_or_train_classifier(path: Path, data: ImageData, epochs: int) -> tuple[FeatureNet, float]:
    if path.is_file():
        state = load_checkpoint(
            path,
            required=("model", "dataset", "image_size", "channels", "num_classes", "test_accuracy"),
            kind="DDPM feature-classifier",
        )
        if (state["dataset"], state["image_size"], state["channels"]) != (data.name, data.image_size, data.channels):
            raise ConfigError(
                f"{path} is a classifier for {state['dataset']} {state['image_size']}px, not "
                f"{data.name} {data.image_size}px; delete it or pass --classifier elsewhere"
            )
        net = FeatureNet(state["channels"], state["num_classes"])
        net.task = state.get("task", "classes")
        net.load_state_dict(state["model"])
        return net, state["test_accuracy"]
    t0 = time.time()
    net, acc = train_classifier(data, epochs, log=lambda s: print(s, file=sys.stderr))
    atomic_save(
        {
            "task": "rotation" if is_rotation_task(data) else "classes",
            "model": net.state_dict(),
            "dataset": data.name,
            "image_size": data.image_size,
            "channels": data.channels,
            "num_classes": 4 if is_rotation_task(data) else data.num_classes,
            "test_accuracy": acc,
            "epochs": epochs,
            "train_time_s": time.time() - t0,
        },
        path,
    )
    print(f"classifier: test accuracy {acc:.4f} ({time.time() - t0:.0f}s), saved to {path}", file=sys.stderr)
    return net, acc


def _main(argv=None) -> dict:
    p = argparse.ArgumentParser(description="Train the feature classifier of a dataset (for the Fréchet distances).")
    add_config_args(p)  # the dataset, data_dir and image_size of a DDPM preset
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--augment", type=int, default=0, metavar="SHIFT", help="flips and shifts up to SHIFT pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="default: projects/ddpm/classifiers/<dataset>-<size>.pt")
    a = parse_args(p, argv)
    if a.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {a.epochs}")
    torch.set_num_threads(a.threads)
    cfg: Config = config_from_args(Config, a)
    data = load_data(cfg)
    out = a.out or default_classifier_path(data.name, data.image_size)
    t0 = time.time()
    net, acc = train_classifier(
        data, a.epochs, a.batch_size, a.lr, a.seed, lambda s: print(s, file=sys.stderr), a.weight_decay, a.augment
    )
    info = {
        "dataset": data.name,
        "task": "rotation" if is_rotation_task(data) else "classes",
        "image_size": data.image_size,
        "test_accuracy": acc,
        "required_accuracy": REQUIRED_ACCURACY.get(data.name),
        "test_images": len(data.test),
        "train_images": len(data.train),
        "epochs": a.epochs,
        "train_time_s": round(time.time() - t0, 1),
        "threads": a.threads,
        "command": "python -m paperlab.ddpm.classifier " + shlex.join(sys.argv[1:] if argv is None else argv),
    }
    n_classes = 4 if is_rotation_task(data) else data.num_classes
    atomic_save({"model": net.state_dict(), "channels": data.channels, "num_classes": n_classes, **info}, out)
    atomic_write_text(out.with_suffix(".json"), json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    warning = classifier_warning(data.name, acc)
    if warning:
        print(warning, file=sys.stderr)
    return info


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
