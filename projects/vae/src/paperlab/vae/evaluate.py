"""Test-set metrics and figures of a trained run, separate from training.

    python -m paperlab.vae.evaluate runs/vae/mnist/vae-seed1 [data_dir=...] [--iw-samples 100]

Writes ``eval.json`` and ``recon.png`` / ``samples.png`` (/ ``interpolation.png`` for the VAE) into
the run directory. Numbers:

- VAE: the test negative ELBO (one posterior sample per image, fixed seed) and its two terms, in nats
  and bits/dim; an importance-weighted estimate of -log p(x) (k samples; a tighter bound).
- VQ-VAE: the reconstruction term -log p(x|z_q(x)), and, with the code prior of ``prior.pt``, the bound
  -log p(x) <= -log p(x|z_q) - log p_prior(z_q) (q(z|x) is one-hot, so its entropy is 0), next to the
  same bound with the uniform prior of the paper's training (-log p(z) = L log K).
- For the Gaussian likelihood the density is turned into an 8-bit probability by adding D log 256 (the
  data are dequantised (k + u) / 256 at training and test time).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import parse_args
from paperlab.shared.images import save_grid
from paperlab.vae.checkpoint import load_run, n_params
from paperlab.vae.config import Config
from paperlab.vae.data import ImageData, discrete_offset_nats, fixed_test_inputs, load_data
from paperlab.vae.model import decoder_mean


@torch.no_grad()
def test_metrics(model, data: ImageData, cfg: Config, max_images: int = 0, prior=None) -> dict:
    """Means over the test set (the first ``max_images``, 0: all) of the loss terms, in nats per image,
    plus bits/dim of the bound. Runs with its own seed: it does not move the training RNG."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    n = 0
    with torch.random.fork_rng():
        torch.manual_seed(4321)
        device = next(model.parameters()).device
        for _, x in fixed_test_inputs(data, cfg, max_images):
            x = x.to(device)
            out = model(x)
            terms = {"recon": out["recon"]}
            if cfg.model == "vae":
                terms["kl"] = out["kl"]
                terms["nelbo"] = out["recon"] + out["kl"]
            elif cfg.model == "vqvae":
                terms["perplexity"] = out["perplexity"].expand(len(x))
                terms["code_usage"] = out["used"].expand(len(x))
                if prior is not None:
                    terms["prior_nll"] = prior.nll(out["idx"].flatten(1))
                    terms["nll_bound"] = out["recon"] + terms["prior_nll"]
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v.sum().item()
            n += len(x)
    model.train(was_training)
    res = {k: v / n for k, v in sums.items()}
    n_dims = math.prod(cfg.image_shape)
    offset = discrete_offset_nats(cfg, n_dims)
    bound = res.get("nelbo", res.get("nll_bound"))
    if bound is not None:
        res["bits_per_dim"] = (bound + offset) / (n_dims * math.log(2))
    if offset:
        res["discrete_offset_nats"] = offset
    return res


# ------------------------------------------------------------------------------------------- figures
def _save_grid(images: torch.Tensor, path: Path, nrow: int, scale: int = 1) -> None:
    """Images (N, C, H, W) in [0, 1] as a PNG grid of ``nrow`` images per row."""
    save_grid(images.detach().clamp(0, 1).cpu().numpy(), path, nrow=nrow, pad=2, scale=scale)


def _display(x_u8: torch.Tensor) -> torch.Tensor:
    return x_u8.float() / 255.0


@torch.no_grad()
def make_figures(model, data: ImageData, cfg: Config, out_dir: Path, prior=None, n: int = 8, seed: int = 0) -> dict:
    """recon.png (rows: test images, reconstructions), samples.png, interpolation.png (VAE)."""
    model.eval()
    scale = max(1, 96 // cfg.size)
    gen = torch.Generator().manual_seed(seed)
    written = {}
    idx = torch.arange(min(2 * n, len(data.test)))
    x_u8 = data.test.get(idx)
    x = next(iter(fixed_test_inputs(data, cfg, len(idx))))[1]
    out = model(x)
    rec = decoder_mean(out["out"], cfg.likelihood)
    shown = x if cfg.likelihood == "bernoulli" else _display(x_u8)  # what the model was asked to reconstruct
    rows = []
    for half in range(0, len(idx), n):
        rows += [shown[half : half + n], rec[half : half + n]]
    _save_grid(torch.cat(rows), out_dir / "recon.png", nrow=n, scale=scale)
    written["recon"] = "recon.png"

    n_samples = n * n
    if cfg.model == "vqvae":
        if prior is not None:
            codes = prior.sample(n_samples, generator=gen).view(n_samples, *model.grid)
            _save_grid(decoder_mean(model.decode_codes(codes), cfg.likelihood), out_dir / "samples.png", n, scale)
            written["samples"] = "samples.png"
    else:
        z = torch.randn(n_samples, model.latent_dim, generator=gen)
        _save_grid(decoder_mean(model.decode(z), cfg.likelihood), out_dir / "samples.png", n, scale)
        written["samples"] = "samples.png"
        # the same draws at temperature 0.7 (z ~ N(0, 0.49 I)): NOT samples of the model, a diagnostic of
        # how much of the prior's mass decodes to data-like images (the "holes" between posteriors)
        _save_grid(decoder_mean(model.decode(0.7 * z), cfg.likelihood), out_dir / "samples-t0.7.png", n, scale)
        written["samples_t0.7"] = "samples-t0.7.png"
        # latent interpolation between the posterior means of pairs of test images
        mu, _ = model.encode(x)
        steps = torch.linspace(0, 1, 10)
        lines = []
        for a, b in zip(range(0, 2 * n, 2), range(1, 2 * n, 2)):
            if b >= len(mu):
                break
            z_line = mu[a][None] * (1 - steps[:, None]) + mu[b][None] * steps[:, None]
            lines.append(decoder_mean(model.decode(z_line), cfg.likelihood))
        _save_grid(torch.cat(lines), out_dir / "interpolation.png", nrow=10, scale=scale)
        written["interpolation"] = "interpolation.png"
    return written


# ---------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def importance_nll(model, data: ImageData, cfg: Config, k: int, max_images: int) -> float:
    """-log p(x) estimated with k importance samples, mean over the first ``max_images`` test images."""
    total, n = 0.0, 0
    with torch.random.fork_rng():
        torch.manual_seed(999)
        for _, x in fixed_test_inputs(data, cfg, max_images):
            for chunk in x.split(100):
                total += -model.importance_log_likelihood(chunk, k).sum().item()
                n += len(chunk)
    return total / n


def evaluate(run: str | Path, overrides=(), iw_samples: int = 100, iw_images: int = 1000) -> dict:
    model, cfg, meta, prior = load_run(run, overrides)
    torch.set_num_threads(cfg.threads)
    run_dir = Path(run) if Path(run).is_dir() else Path(run).parent
    data = load_data(cfg)
    res = {
        "model": cfg.model,
        "dataset": cfg.dataset,
        "image_shape": list(cfg.image_shape),
        "likelihood": cfg.likelihood,
        "beta": cfg.beta,
        "plain_elbo": cfg.is_plain_elbo,
        "n_params": n_params(model),
        "n_test": len(data.test),
        "test": test_metrics(model, data, cfg, 0, prior),
    }
    n_dims = math.prod(cfg.image_shape)
    offset = discrete_offset_nats(cfg, n_dims)
    if cfg.model == "vae" and iw_samples > 1:
        nll = importance_nll(model, data, cfg, iw_samples, iw_images)
        same = test_metrics(model, data, cfg, iw_images)  # the ELBO on the same images, to compare
        res["importance"] = {
            "k": iw_samples,
            "n_images": min(iw_images, len(data.test)),
            "nll": nll,
            "nelbo_same_images": same["nelbo"],
            "bits_per_dim": (nll + offset) / (n_dims * math.log(2)),
        }
    if cfg.model == "vqvae":
        n_codes = math.prod(model.grid)
        uniform = res["test"]["recon"] + n_codes * math.log(model.quantizer.size)
        res["uniform_prior_bound"] = {"nll": uniform, "bits_per_dim": (uniform + offset) / (n_dims * math.log(2))}
        res["code_grid"] = list(model.grid)
        res["prior_params"] = n_params(prior) if prior is not None else None
    res["figures"] = make_figures(model, data, cfg, run_dir, prior)
    atomic_write_text(run_dir / "eval.json", json.dumps(res, indent=2) + "\n")
    return res


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run directory (or its model.pt)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. data_dir=/path (key=value)")
    parser.add_argument("--iw-samples", type=int, default=100, help="importance samples for -log p(x) (VAE)")
    parser.add_argument("--iw-images", type=int, default=1000, help="test images for the importance estimate")
    args = parse_args(parser, argv)
    if args.iw_samples < 0 or args.iw_images <= 0:
        raise ValueError(f"--iw-samples must be >= 0 and --iw-images > 0, got {args.iw_samples} and {args.iw_images}")
    res = evaluate(args.run, args.overrides, args.iw_samples, args.iw_images)
    print(json.dumps(res, indent=2))


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
