"""Training of a VAE, plain autoencoder or VQ-VAE, with checkpoints and exact resume.

    python -m paperlab.vae.train --config configs/vae/mnist.yaml data_dir=/path/to/mnist seed=2
    python -m paperlab.vae.train --config configs/vae/mnist.yaml --resume data_dir=...   # continue a killed run

A run directory holds ``config.yaml``, ``metrics.jsonl`` (every step: the loss and, for the VAE, its
reconstruction and KL terms; test-set values every ``eval_every`` steps), TensorBoard events,
``checkpoints/last.pt`` (every ``checkpoint_every`` steps and on Ctrl-C/SIGTERM), at the end ``model.pt``,
and ``summary.json``. A fresh run into a directory that holds a checkpoint is refused; ``--resume``
(anywhere on the command line) continues it. The VQ-VAE's code prior is
trained afterwards by :mod:`paperlab.vae.prior`; figures and test metrics come from :mod:`paperlab.vae.evaluate`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from paperlab.shared.checkpoint import LAST, atomic_write_text, guard_run_dir
from paperlab.shared.cli import StopSignal, check_finite, run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.runlog import RunLogger
from paperlab.shared.seeding import seed_everything
from paperlab.vae.checkpoint import make_meta, resume_training, save_model, save_training
from paperlab.vae.config import Config
from paperlab.vae.data import ImageData, load_data, to_model_input
from paperlab.vae.evaluate import test_metrics
from paperlab.vae.model import build_model

RESUME_HINT = "--resume (make train-vae/train-vqvae ... RESUME=1)"


def train_step(model, optimizer, x: torch.Tensor, cfg: Config, step: int) -> dict:
    """One gradient step; returns the batch means of the logged terms (floats)."""
    out = model(x, beta=cfg.beta)
    loss = out["loss"]
    check_finite(step, loss=loss.item())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    logs = {"loss": loss.item(), "recon": out["recon"].mean().item()}
    if getattr(model, "learn_sigma", False):
        logs["sigma"] = model.sigma.item()
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

    ``resume=True`` continues from ``run_dir/checkpoints/last.pt``; a fresh run into a directory that
    holds one is refused. ``stop_after_steps`` ends the call early after saving a checkpoint, as a
    run stopped by Ctrl-C/SIGTERM would (both write ``summary.json`` with ``finished: false``)."""
    torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)
    run_dir = Path(cfg.run_dir)
    resume_from = guard_run_dir(run_dir, resume, RESUME_HINT)
    ckpt_path = run_dir / LAST

    seed_everything(cfg.seed)
    data = data or load_data(cfg)
    device = torch.device(
        "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"
    )
    model = build_model(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)  # the order of the training images
    meta = make_meta(cfg, model)
    step, elapsed, perm, pos = 0, 0.0, torch.randperm(len(data.train), generator=gen), 0
    if resume_from is not None:
        loop = resume_training(resume_from, cfg, model, optimizer, gen)
        step, elapsed, perm, pos = loop["step"], loop["elapsed"], loop["perm"], loop["pos"]
        print(f"resuming {run_dir} from step {step}", flush=True)
        done = _finished_summary(run_dir, step)
        if step >= cfg.total_steps and done is not None:
            print(f"{run_dir} already finished at step {step} (raise total_steps to train on)", flush=True)
            return done

    t_start = time.time()

    def wall() -> float:
        return round(elapsed + time.time() - t_start, 1)

    def save_checkpoint() -> None:
        save_training(
            ckpt_path,
            meta,
            model,
            optimizer,
            {"step": step, "elapsed": elapsed + time.time() - t_start, "perm": perm, "pos": pos},
            gen,
        )

    logger = RunLogger(run_dir, cfg, resume_step=step if resume_from is not None else None)
    desc = f"{cfg.model} {cfg.dataset}" + ("" if cfg.is_plain_elbo or cfg.model != "vae" else f" beta={cfg.beta}")
    bar = logger.progress(cfg.total_steps, initial=step, desc=desc)
    end_step = cfg.total_steps if stop_after_steps is None else min(cfg.total_steps, step + stop_after_steps)
    saved_at = step if resume_from is not None else -1
    with StopSignal() as stop:
        try:
            while step < end_step and not stop.requested:
                if pos + cfg.batch_size > len(perm):  # a new epoch (the incomplete last batch is dropped)
                    perm, pos = torch.randperm(len(data.train), generator=gen), 0
                idx = perm[pos : pos + cfg.batch_size]
                pos += cfg.batch_size
                model.train()
                x = to_model_input(data.train.get(idx), cfg).to(device)
                try:
                    logs = train_step(model, optimizer, x, cfg, step + 1)
                except FloatingPointError as e:
                    where = (
                        f"the last good checkpoint is {ckpt_path} (resume with --resume and a lower lr "
                        "or grad_clip > 0)"
                        if ckpt_path.exists()
                        else "no checkpoint was written yet"
                    )
                    raise FloatingPointError(f"{e}; {where}") from None
                step += 1
                z_e = logs.pop("_z_e", None)
                if cfg.model == "vqvae" and cfg.dead_code_every and step % cfg.dead_code_every == 0:
                    logs["dead_codes_reset"] = model.quantizer.reset_dead_codes(z_e, gen)
                if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.total_steps:
                    test = test_metrics(model, data, cfg, cfg.eval_max_images)
                    logs.update({f"test_{k}": v for k, v in test.items()})
                if step % cfg.log_every == 0 or "test_recon" in logs:
                    logger.log(step, **logs)
                bar.update(1)
                if step % 50 == 0:
                    bar.set_postfix(loss=f"{logs['loss']:.2f}")
                if step % cfg.checkpoint_every == 0 or step == end_step:
                    save_checkpoint()
                    saved_at = step
        finally:
            bar.close()
    if saved_at != step:  # stopped by a signal between two checkpoints
        save_checkpoint()

    summary = {
        "steps": step,
        "wall_time_s": wall(),
        "finished": step >= cfg.total_steps,
        "seed": cfg.seed,
        "device": device.type,
        "model": cfg.model,
        "dataset": cfg.dataset,
        "plain_elbo": cfg.is_plain_elbo,
        "beta": cfg.beta,
        "n_params": meta["n_params"],
    }
    if step < cfg.total_steps:  # stopped early: the checkpoint is the way on
        logger.close()
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        print(f"stopped at step {step}; continue with {RESUME_HINT}", file=sys.stderr)
        return summary
    final = test_metrics(model, data, cfg, 0)
    logger.log(step, **{f"test_{k}": v for k, v in final.items()})
    logger.close()
    save_model(run_dir / "model.pt", meta, model)
    summary = {**summary, "wall_time_s": wall(), "test": final}
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _finished_summary(run_dir: Path, step: int) -> dict | None:
    """The summary of a run that already finished at ``step`` (so that resuming it is a no-op)."""
    path = run_dir / "summary.json"
    if not path.is_file() or not (run_dir / "model.pt").is_file():
        return None
    summary = json.loads(path.read_text())
    return summary if summary.get("finished") and summary.get("steps") == step else None


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    summary = train(cfg, resume=args.resume)
    if "test" in summary:
        print(json.dumps(summary["test"], indent=2))
    print(f"run: {cfg.run_dir}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
