"""Evaluate finished runs: Fréchet distances on the target and the source, denoising losses, merged == unmerged.

    python -m paperlab.lora.evaluate runs/lora/mnist/base runs/lora/mnist/lora-r4-seed1 ... --n 1000 --steps 10
    python -m paperlab.lora.evaluate --floor runs/lora/mnist/base        # real-vs-real noise floors

Every model samples from the same noise (seeded), DDIM with ``--steps`` steps: ``n`` images with the target
label (compared with the target's training images) and ``n`` with the source labels 0..K-1 in turn
(compared with the source test set; for an adapted model this is what it forgot). Features come from the
committed classifier of :mod:`paperlab.lora.classifier`. Each run gets ``eval.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from paperlab.lora.checkpoint import load_model, run_config
from paperlab.lora.classifier import classifier_path, features, frechet_distance, load_classifier
from paperlab.lora.data import load_source, load_target, num_source_classes, to_model_range
from paperlab.lora.lora import lora_modules, merge_lora
from paperlab.lora.model import ddim_sample, noise_scheduler
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.runlog import cpu_model, machine_load

TARGET_SEED, SOURCE_SEED, LOSS_SEED = 1000, 2000, 3000


def fixed_noise(n: int, size: int, seed: int) -> torch.Tensor:
    return torch.randn((n, 1, size, size), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def eps_loss(unet, cfg, images_u8: torch.Tensor, labels: torch.Tensor, seed: int = LOSS_SEED) -> float:
    """The diffusion loss on held-out images at fixed noise and timesteps (lower: the model fits them better)."""
    from paperlab.lora.model import diffusion_loss

    unet.eval()
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(images_u8.shape, generator=g)
    t = torch.randint(0, cfg.timesteps, (len(images_u8),), generator=g)
    sched = noise_scheduler(cfg)
    total = 0.0
    for sl in torch.arange(len(images_u8)).split(500):
        total += diffusion_loss(unet, sched, to_model_range(images_u8[sl]), labels[sl], noise[sl], t[sl]).item() * len(
            sl
        )
    return total / len(images_u8)


def evaluate_run(run_dir: Path, n: int, steps: int, log=print) -> dict:
    unet, cfg = load_model(run_dir)
    unet.eval()
    net, clf_info = load_classifier(classifier_path(cfg))
    src, tgt = load_source(cfg), load_target(cfg)
    k = num_source_classes(cfg)
    size = cfg.image_size
    t0 = time.perf_counter()
    x_tgt = ddim_sample(unet, cfg, fixed_noise(n, size, TARGET_SEED), torch.full((n,), k), steps)
    t_tgt = time.perf_counter() - t0
    x_src = ddim_sample(unet, cfg, fixed_noise(n, size, SOURCE_SEED), torch.arange(n) % k, steps)
    out = {
        "run": str(run_dir),
        "mode": cfg.mode,
        "rank": cfg.rank if cfg.mode == "lora" else None,
        "modules": cfg.modules if cfg.mode == "lora" else None,
        "seed": cfg.seed,
        "n": n,
        "ddim_steps": steps,
        "fd_target": frechet_distance(features(net, x_tgt), features(net, tgt.train)),
        "fd_source": frechet_distance(features(net, x_src), features(net, src.test)),
        "eps_loss_target_test": eps_loss(unet, cfg, tgt.test, tgt.test_labels),
        "eps_loss_source_test": eps_loss(unet, cfg, src.test[:2000], src.test_labels[:2000]),
        "sample_ms_per_image": round(1000 * t_tgt / n, 3),
        "classifier": {k_: clf_info[k_] for k_ in ("source_test_accuracy", "target_test_accuracy")},
        "cpu": cpu_model(),
        "load": machine_load(),
        "threads": torch.get_num_threads(),
    }
    if lora_modules(unet):  # the merged model: same samples, the base's cost per step
        m = min(n, 200)
        merge_lora(unet)
        t0 = time.perf_counter()
        x_merged = ddim_sample(unet, cfg, fixed_noise(n, size, TARGET_SEED)[:m], torch.full((m,), k), steps)
        out["merged_sample_ms_per_image"] = round(1000 * (time.perf_counter() - t0) / m, 3)
        out["merged_vs_unmerged_max_abs"] = float((x_merged - x_tgt[:m]).abs().max())
    atomic_write_text(run_dir / "eval.json", json.dumps(out, indent=2) + "\n")
    torch.save({"target": x_tgt[:64].clone(), "source": x_src[:64].clone()}, run_dir / "eval_samples.pt")
    out = add_class_rates(run_dir)
    log(
        f"{run_dir}: FD target {out['fd_target']:.2f}, FD source {out['fd_source']:.2f}, "
        f"eps target {out['eps_loss_target_test']:.4f}, eps source {out['eps_loss_source_test']:.4f}"
    )
    return out


@torch.no_grad()
def class_rates(run_dir: Path) -> dict:
    """What the feature classifier calls the first 64 samples of each domain (saved by :func:`evaluate_run`):
    the share of target samples it assigns to a target class (a face, not a digit), and the share of source
    samples it assigns to the digit they were drawn for. Coarse (64 images), but it reads the content, where
    the FD in a 64-d space fitted to 320 faces can rank textures near faces."""
    cfg = run_config(run_dir)
    net, _ = load_classifier(classifier_path(cfg))
    k = num_source_classes(cfg)
    saved = torch.load(run_dir / "eval_samples.pt")
    pred_t = net(saved["target"]).argmax(1)
    pred_s = net(saved["source"]).argmax(1)
    labels = torch.arange(len(pred_s)) % k
    return {
        "target_class_rate_64": float((pred_t >= k).float().mean()),
        "source_label_accuracy_64": float((pred_s == labels).float().mean()),
    }


def add_class_rates(run_dir: Path) -> dict:
    path = run_dir / "eval.json"
    out = {**json.loads(path.read_text()), **class_rates(run_dir)}
    atomic_write_text(path, json.dumps(out, indent=2) + "\n")
    return out


def noise_floor(base_run: Path, n: int, seed: int = 0) -> dict:
    """FD between real sets, the floor below which no model's row can be read."""
    cfg = run_config(base_run)
    net, _ = load_classifier(classifier_path(cfg))
    src, tgt = load_source(cfg), load_target(cfg)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(src.train), generator=g)[:n]
    return {
        "target_test_vs_train": frechet_distance(features(net, tgt.test), features(net, tgt.train)),
        "target_test_n": len(tgt.test),
        "target_train_n": len(tgt.train),
        "source_train_vs_test": frechet_distance(features(net, src.train[idx]), features(net, src.test)),
        "source_n": n,
        "source_test_n": len(src.test),
    }


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="finished run directories")
    parser.add_argument("--n", type=int, default=1000, help="samples per row and domain")
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--floor", default=None, help="also write the real-vs-real floors to this JSON file")
    parser.add_argument("--rates-only", action="store_true", help="only add the class rates to existing eval.json")
    args = parser.parse_args(argv)
    if args.n < 2 or args.steps < 1:
        raise ValueError("--n must be at least 2 and --steps at least 1")
    torch.set_num_threads(args.threads)
    if args.floor:
        floor = noise_floor(Path(args.runs[0]), args.n)
        atomic_write_text(Path(args.floor), json.dumps(floor, indent=2) + "\n")
        print(json.dumps(floor))
        return
    for run in args.runs:
        if args.rates_only:
            out = add_class_rates(Path(run))
            print(run, out["target_class_rate_64"], out["source_label_accuracy_64"])
            continue
        evaluate_run(Path(run), args.n, args.steps)


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
