"""Training of a VAE, plain autoencoder or VQ-VAE, with checkpoints and exact resume.

    python -m paperlab.vae.train --config configs/vae/mnist.yaml data_dir=/path/to/mnist seed=2
    python -m paperlab.vae.train --config configs/vae/mnist.yaml data_dir=... --resume   # continue a killed run

A run directory holds ``config.yaml``, ``metrics.jsonl`` (every step: the loss and, for the VAE, its
reconstruction and KL terms; test-set values every ``eval_every`` steps), TensorBoard events,
``checkpoints/last.pt`` and at the end ``model.pt`` and ``summary.json``. The VQ-VAE's code prior is
trained afterwards by :mod:`paperlab.vae.prior`; figures and test metrics come from :mod:`paperlab.vae.evaluate`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

from paperlab.shared.config import ConfigError, add_config_args, config_from_args, to_dict
from paperlab.shared.runlog import RunLogger
from paperlab.shared.seeding import seed_everything
from paperlab.vae.config import Config
from paperlab.vae.data import DatasetError, ImageData, load_data, to_model_input
from paperlab.vae.evaluate import test_metrics
from paperlab.vae.model import build_model

CHECKPOINT_VERSION = 1
# settings a resumed run must share with its checkpoint: they shape the networks, the data or the RNG
FIXED_ON_RESUME = (
    "model",
    "dataset",
    "seed",
    "channels",
    "latent_dim",
    "codebook_size",
    "code_dim",
    "likelihood",
    "binarize",
    "batch_size",
)


class NaNLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class CheckpointMismatchError(ValueError):
    """A checkpoint made for other images (size, channels) or another model than asked for."""


def check_image_shape(meta: dict, image_shape, what: str = "checkpoint") -> None:
    if tuple(meta["image_shape"]) != tuple(image_shape):
        c, h, w = meta["image_shape"]
        c2, h2, w2 = image_shape
        raise CheckpointMismatchError(
            f"{what} was trained on {c}x{h}x{w} images ({meta['dataset']}) and cannot be used on {c2}x{h2}x{w2} "
            "images: use the image_size (and dataset) it was trained with"
        )


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_model(path: str | Path, image_shape=None):
    """Load ``model.pt`` (or a training checkpoint) as (model, meta); refuses other image shapes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or "meta" not in ckpt or "model" not in ckpt:
        raise ValueError(f"{path} is not a paperlab VAE checkpoint")
    meta = ckpt["meta"]
    if image_shape is not None:
        check_image_shape(meta, image_shape, what=f"checkpoint {path}")
    cfg = Config(**{k: v for k, v in meta["config"].items() if k in Config.__dataclass_fields__})
    model = build_model(cfg, meta["image_shape"])
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, meta


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train_step(model, optimizer, x: torch.Tensor, cfg: Config, step: int) -> dict:
    """One gradient step; returns the batch means of the logged terms (floats)."""
    out = model(x, beta=cfg.beta)
    loss = out["loss"]
    if not math.isfinite(loss.item()):
        raise NaNLossError(f"loss is {loss.item()} at step {step}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    logs = {"loss": loss.item(), "recon": out["recon"].mean().item()}
    if cfg.model == "vae":
        logs["kl"] = out["kl"].mean().item()
        logs["nelbo"] = logs["recon"] + logs["kl"]
    elif cfg.model == "vqvae":
        for key in ("codebook_loss", "commit_loss"):
            logs[key] = out[key].mean().item()
        logs["perplexity"] = out["perplexity"].item()
        logs["code_usage"] = out["used"].item()
        logs["_z_e"] = out["z_e"].detach()
    return logs


def train(
    cfg: Config, resume: bool = False, stop_after_steps: int | None = None, data: ImageData | None = None
) -> dict:
    """Train for ``cfg.total_steps``; returns the summary (also written to ``summary.json``).

    ``resume=True`` continues from ``run_dir/checkpoints/last.pt``; ``stop_after_steps`` ends the call
    early after saving a checkpoint (as an interrupted run would)."""
    torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)
    run_dir = Path(cfg.run_dir)
    ckpt_path = run_dir / "checkpoints" / "last.pt"
    if resume and not ckpt_path.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path} (wrong run_dir or seed?)")

    seed_everything(cfg.seed)
    data = data or load_data(cfg)
    model = build_model(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)  # the order of the training images
    meta = {
        "version": CHECKPOINT_VERSION,
        "model": cfg.model,
        "dataset": cfg.dataset,
        "image_shape": list(cfg.image_shape),
        "config": to_dict(cfg),
        "n_params": n_params(model),
    }
    step, elapsed, perm, pos = 0, 0.0, torch.randperm(len(data.train), generator=gen), 0
    if resume:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        check_image_shape(ckpt["meta"], cfg.image_shape, what=f"checkpoint {ckpt_path}")
        saved = ckpt["meta"]["config"]
        changed = [
            f"{k}: {saved[k]!r} -> {getattr(cfg, k)!r}"
            for k in FIXED_ON_RESUME
            if k in saved and saved[k] != getattr(cfg, k)
        ]
        if changed:
            raise CheckpointMismatchError("cannot resume with a different " + "; ".join(changed))
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr
        s = ckpt["loop"]
        step, elapsed, perm, pos = s["step"], s["elapsed"], s["perm"], s["pos"]
        gen.set_state(s["gen"])
        torch.set_rng_state(s["torch_rng"])
        print(f"resuming {run_dir} from step {step}")

    def save_checkpoint() -> None:
        _atomic_save(
            {
                "meta": meta,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "loop": {
                    "step": step,
                    "elapsed": elapsed + time.time() - t_start,
                    "perm": perm,
                    "pos": pos,
                    "gen": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                },
            },
            ckpt_path,
        )

    logger = RunLogger(run_dir, cfg, resume_step=step if resume else None)
    desc = f"{cfg.model} {cfg.dataset}" + ("" if cfg.is_plain_elbo or cfg.model != "vae" else f" beta={cfg.beta}")
    bar = logger.progress(cfg.total_steps, initial=step, desc=desc)
    end_step = cfg.total_steps if stop_after_steps is None else min(cfg.total_steps, step + stop_after_steps)
    t_start = time.time()
    try:
        while step < end_step:
            if pos + cfg.batch_size > len(perm):  # a new epoch (the incomplete last batch is dropped)
                perm, pos = torch.randperm(len(data.train), generator=gen), 0
            idx = perm[pos : pos + cfg.batch_size]
            pos += cfg.batch_size
            model.train()
            x = to_model_input(data.train.get(idx), cfg)
            try:
                logs = train_step(model, optimizer, x, cfg, step + 1)
            except NaNLossError as e:
                where = (
                    f"the last good checkpoint is {ckpt_path} (resume with --resume and a lower lr or grad_clip > 0)"
                    if ckpt_path.exists()
                    else "no checkpoint was written yet"
                )
                raise NaNLossError(f"{e}; {where}") from None
            step += 1
            z_e = logs.pop("_z_e", None)
            if cfg.model == "vqvae" and cfg.dead_code_every and step % cfg.dead_code_every == 0:
                logs["dead_codes_reset"] = model.quantizer.reset_dead_codes(z_e, gen)
            if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.total_steps:
                logs.update({f"test_{k}": v for k, v in test_metrics(model, data, cfg, cfg.eval_max_images).items()})
            if step % cfg.log_every == 0 or "test_recon" in logs:
                logger.log(step, **logs)
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{logs['loss']:.2f}")
            if step % cfg.checkpoint_every == 0 or step == end_step:
                save_checkpoint()
    except KeyboardInterrupt:
        save_checkpoint()
        print(f"\ninterrupted at step {step}; checkpoint saved, continue with --resume", file=sys.stderr)
        raise
    finally:
        bar.close()

    if step < cfg.total_steps:  # stopped early on purpose
        logger.close()
        return {"step": step, "finished": False}
    final = test_metrics(model, data, cfg, 0)
    logger.log(step, **{f"test_{k}": v for k, v in final.items()})
    logger.close()
    _atomic_save({"meta": meta, "model": model.state_dict()}, run_dir / "model.pt")
    summary = {
        "step": step,
        "finished": True,
        "model": cfg.model,
        "dataset": cfg.dataset,
        "plain_elbo": cfg.is_plain_elbo,
        "beta": cfg.beta,
        "n_params": meta["n_params"],
        "train_seconds": round(elapsed + time.time() - t_start, 1),
        "test": final,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.add_argument("--resume", action="store_true", help="continue from run_dir/checkpoints/last.pt")
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(Config, args)
        summary = train(cfg, resume=args.resume)
    except (ConfigError, DatasetError, CheckpointMismatchError, NaNLossError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None
    print(json.dumps(summary["test"], indent=2))
    print(f"run: {cfg.run_dir}")


if __name__ == "__main__":
    main()
