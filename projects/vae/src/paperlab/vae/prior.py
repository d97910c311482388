"""Stage two of the VQ-VAE: an autoregressive prior over the code grids of the training images.

    python -m paperlab.vae.prior runs/vae/mnist/vqvae-seed1 [prior_steps=3000 ...]

The trained VQ-VAE encodes every training (and test) image to its grid of code indices (one fixed
binarisation / dequantisation); a small causal transformer (:class:`paperlab.vae.model.CodePrior`)
learns p(z) = prod_i p(z_i | z_<i) on them by maximum likelihood. Writes ``prior.pt`` and
``prior/metrics.jsonl`` (train NLL every step, test NLL every ``eval_every`` steps) into the run.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from paperlab.shared.runlog import RunLogger
from paperlab.vae.config import Config
from paperlab.vae.data import ImageData, fixed_test_inputs, to_model_input
from paperlab.vae.model import VQVAE, CodePrior


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


def build_prior(cfg: Config, model: VQVAE) -> CodePrior:
    return CodePrior(
        model.quantizer.size, math.prod(model.grid), cfg.prior_dim, cfg.prior_layers, cfg.prior_heads, cfg.prior_dropout
    )


def load_prior(path: str | Path, model: VQVAE) -> CodePrior:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    cfg = Config(**{k: v for k, v in ckpt["config"].items() if k in Config.__dataclass_fields__})
    prior = build_prior(cfg, model)
    if prior.codebook_size != ckpt["codebook_size"] or prior.length != ckpt["length"]:
        raise ValueError(f"{path} was trained for another codebook or code grid than this VQ-VAE")
    prior.load_state_dict(ckpt["prior"])
    prior.eval()
    return prior


@torch.no_grad()
def mean_nll(prior: CodePrior, codes: torch.Tensor) -> float:
    was = prior.training
    prior.eval()
    nll = torch.cat([prior.nll(c) for c in codes.split(500)]).mean().item()
    prior.train(was)
    return nll


def train_prior(run: str | Path, overrides=(), data: ImageData | None = None) -> dict:
    from paperlab.shared.config import to_dict
    from paperlab.vae.data import load_data
    from paperlab.vae.evaluate import load_run

    model, cfg, _, _ = load_run(run, overrides)
    if cfg.model != "vqvae":
        raise ValueError(f"{run} is a {cfg.model} run; the code prior is for a vqvae run")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    run_dir = Path(run) if Path(run).is_dir() else Path(run).parent
    data = data or load_data(cfg)
    train_codes, test_codes = encode_codes(model, data, cfg, "train"), encode_codes(model, data, cfg, "test")
    prior = build_prior(cfg, model)
    opt = torch.optim.AdamW(prior.parameters(), lr=cfg.prior_lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.prior_steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    logger = RunLogger(run_dir / "prior", cfg)
    bar = logger.progress(cfg.prior_steps, desc="code prior")
    t0 = time.time()
    best_nll, best_step = math.inf, 0
    for step in range(1, cfg.prior_steps + 1):
        prior.train()
        batch = train_codes[torch.randint(len(train_codes), (cfg.prior_batch_size,), generator=gen)]
        loss = prior.nll(batch).mean()
        if not math.isfinite(loss.item()):
            raise RuntimeError(f"code prior loss is {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(prior.parameters(), 1.0)
        opt.step()
        sched.step()
        logs = {"prior_nll": loss.item()}
        if step % max(1, cfg.eval_every) == 0 or step == cfg.prior_steps:
            logs["test_prior_nll"] = mean_nll(prior, test_codes)
            if logs["test_prior_nll"] < best_nll:  # only recorded: stopping on the test NLL would leak
                best_nll, best_step = logs["test_prior_nll"], step
        logger.log(step, **logs)
        bar.update(1)
    bar.close()
    logger.close()
    torch.save(
        {
            "prior": prior.state_dict(),
            "config": to_dict(cfg),
            "codebook_size": prior.codebook_size,
            "length": prior.length,
        },
        run_dir / "prior.pt",
    )
    summary = {
        "steps": cfg.prior_steps,
        "train_nll": mean_nll(prior, train_codes),
        "test_nll": mean_nll(prior, test_codes),
        "best_test_nll": best_nll,
        "best_test_step": best_step,
        "uniform_nll": prior.length * math.log(prior.codebook_size),
        "train_seconds": round(time.time() - t0, 1),
        "n_train": len(train_codes),
        "n_test": len(test_codes),
    }
    (run_dir / "prior" / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv=None) -> None:
    from paperlab.shared.config import ConfigError
    from paperlab.vae.data import DatasetError
    from paperlab.vae.train import CheckpointMismatchError

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a finished vqvae run directory")
    parser.add_argument("overrides", nargs="*", help="config overrides (prior_steps=..., data_dir=...)")
    args = parser.parse_args(argv)
    try:
        summary = train_prior(args.run, args.overrides)
    except (ConfigError, DatasetError, CheckpointMismatchError, FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
