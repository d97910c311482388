"""Stage two of the VQ-VAE: an autoregressive prior over the code grids of the training images.

    python -m paperlab.vae.prior runs/vae/mnist/vqvae-seed1 [prior_steps=3000 ...] [--resume]

The trained VQ-VAE encodes every training (and test) image to its grid of code indices (one fixed
binarisation / dequantisation); a small causal transformer (:class:`paperlab.vae.model.CodePrior`)
learns p(z) = prod_i p(z_i | z_<i) on them by maximum likelihood. Writes ``prior.pt`` and ``prior/``
into the run: ``config.yaml`` (the settings the prior ran with), ``metrics.jsonl`` (train NLL every
step, test NLL every ``eval_every`` steps), ``checkpoints/last.pt`` (every ``checkpoint_every`` steps
and on Ctrl-C/SIGTERM; ``--resume`` continues it) and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from paperlab.shared.checkpoint import LAST, atomic_write_text, guard_run_dir
from paperlab.shared.cli import StopSignal, check_finite, run_command
from paperlab.shared.config import ConfigError, parse_args
from paperlab.shared.runlog import RunLogger
from paperlab.vae.checkpoint import load_run, resume_prior, save_prior, save_prior_training
from paperlab.vae.config import Config
from paperlab.vae.data import ImageData, fixed_test_inputs, load_data, to_model_input
from paperlab.vae.model import VQVAE, CodePrior, build_prior

RESUME_HINT = "--resume (make train-vqvae-prior ... RESUME=1)"


@torch.no_grad()
def encode_codes(model: VQVAE, data: ImageData, cfg: Config, split: str) -> torch.Tensor:
    """Code indices (N, h*w) of a split, with a fixed binarisation / dequantisation."""
    model.eval()
    out = []
    if split == "test":
        for _, x in fixed_test_inputs(data, cfg):
            out.append(model.quantizer.codes(model.encode(x)).flatten(1))
    else:
        gen = torch.Generator().manual_seed(777)
        n = len(data.train) if cfg.prior_max_train <= 0 else min(cfg.prior_max_train, len(data.train))
        for start in range(0, n, 500):
            idx = torch.arange(start, min(n, start + 500))
            x = to_model_input(data.train.get(idx), cfg, gen)
            out.append(model.quantizer.codes(model.encode(x)).flatten(1))
    return torch.cat(out)


@torch.no_grad()
def mean_nll(prior: CodePrior, codes: torch.Tensor) -> float:
    was = prior.training
    prior.eval()
    nll = torch.cat([prior.nll(c) for c in codes.split(500)]).mean().item()
    prior.train(was)
    return nll


def train_prior(
    run: str | Path,
    overrides=(),
    data: ImageData | None = None,
    resume: bool = False,
    stop_after_steps: int | None = None,
) -> dict:
    """Train the code prior of the finished VQ-VAE run ``run`` into ``run/prior`` and ``run/prior.pt``.

    ``overrides`` change the prior's settings (``prior_steps=...``); what the prior actually ran with
    is recorded in ``run/prior/config.yaml`` and ``run/prior/summary.json``."""
    model, cfg, _, _ = load_run(run, overrides)
    if cfg.model != "vqvae":
        raise ValueError(f"{run} is a {cfg.model} run; the code prior is for a vqvae run")
    run_dir = Path(run) if Path(run).is_dir() else Path(run).parent
    prior_dir = run_dir / "prior"
    if not resume and (prior_dir / LAST).is_file():
        raise ConfigError(
            f"{run_dir} already has a code prior (checkpoint {prior_dir / LAST}); continue it with "
            f"{RESUME_HINT}, or delete {prior_dir} and {run_dir / 'prior.pt'} to train a new one"
        )
    resume_from = guard_run_dir(prior_dir, resume, RESUME_HINT)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    data = data or load_data(cfg)
    train_codes, test_codes = encode_codes(model, data, cfg, "train"), encode_codes(model, data, cfg, "test")
    prior = build_prior(cfg, model)
    opt = torch.optim.AdamW(prior.parameters(), lr=cfg.prior_lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.prior_steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    step, elapsed, best_nll, best_step = 0, 0.0, math.inf, 0
    if resume_from is not None:
        loop = resume_prior(resume_from, cfg, prior, opt, sched, gen)
        step, elapsed, best_nll, best_step = loop["step"], loop["elapsed"], loop["best_nll"], loop["best_step"]
        print(f"resuming the code prior of {run_dir} from step {step}", flush=True)
        done = prior_dir / "summary.json"
        if step >= cfg.prior_steps and done.is_file() and (run_dir / "prior.pt").is_file():
            print(f"the code prior already finished at step {step}", flush=True)
            return json.loads(done.read_text())
    t0 = time.time()

    def save_checkpoint() -> None:
        loop = {"step": step, "elapsed": elapsed + time.time() - t0, "best_nll": best_nll, "best_step": best_step}
        save_prior_training(prior_dir / LAST, cfg, prior, opt, sched, loop, gen)

    logger = RunLogger(prior_dir, cfg, resume_step=step if resume_from is not None else None)
    bar = logger.progress(cfg.prior_steps, initial=step, desc="code prior")
    end_step = cfg.prior_steps if stop_after_steps is None else min(cfg.prior_steps, step + stop_after_steps)
    saved_at = step if resume_from is not None else -1
    with StopSignal() as stop:
        try:
            while step < end_step and not stop.requested:
                prior.train()
                batch = train_codes[torch.randint(len(train_codes), (cfg.prior_batch_size,), generator=gen)]
                loss = prior.nll(batch).mean()
                check_finite(step + 1, prior_nll=loss.item())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(prior.parameters(), 1.0)
                opt.step()
                sched.step()
                step += 1
                logs = {"prior_nll": loss.item()}
                if step % max(1, cfg.eval_every) == 0 or step == cfg.prior_steps:
                    logs["test_prior_nll"] = mean_nll(prior, test_codes)
                    if logs["test_prior_nll"] < best_nll:  # only recorded: stopping on the test NLL would leak
                        best_nll, best_step = logs["test_prior_nll"], step
                logger.log(step, **logs)
                bar.update(1)
                if step % cfg.checkpoint_every == 0 or step == end_step:
                    save_checkpoint()
                    saved_at = step
        finally:
            bar.close()
    if saved_at != step:  # stopped by a signal between two checkpoints
        save_checkpoint()
    logger.close()
    summary = {
        "steps": step,
        "wall_time_s": round(elapsed + time.time() - t0, 1),
        "finished": step >= cfg.prior_steps,
        "seed": cfg.seed,
        "device": "cpu",
        "prior_steps": cfg.prior_steps,
    }
    if step < cfg.prior_steps:
        atomic_write_text(prior_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary
    save_prior(run_dir / "prior.pt", cfg, prior)
    summary.update(
        {
            "train_nll": mean_nll(prior, train_codes),
            "test_nll": mean_nll(prior, test_codes),
            "best_test_nll": best_nll,
            "best_test_step": best_step,
            "uniform_nll": prior.length * math.log(prior.codebook_size),
            "n_train": len(train_codes),
            "n_test": len(test_codes),
        }
    )
    atomic_write_text(prior_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a finished vqvae run directory")
    parser.add_argument("overrides", nargs="*", help="config overrides (prior_steps=..., data_dir=...)")
    parser.add_argument("--resume", action="store_true", help="continue the prior from run/prior/checkpoints/last.pt")
    args = parse_args(parser, argv)
    print(json.dumps(train_prior(args.run, args.overrides, resume=args.resume), indent=2))


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
