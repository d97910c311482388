"""Spectral normalisation vs Björck: the cost of a training step and how close each trained layer is to
orthogonal (its singular values).

    python -m paperlab.lipschitz.analysis --runs runs/lipschitz/cifar10 --out runs/lipschitz/analysis

Writes ``step_cost.json`` (seconds per training step and per weight normalisation, with the machine and
its load) and ``spectra.json`` (per layer of each trained model: a histogram of the singular values
and summary numbers). Convolutions: all singular values of the *circular* convolution on the layer's
input size by the FFT method (Sedghi et al. 2019), an approximation of the zero-padded operator that
the network uses; dense layers: the exact SVD of the normalised weight.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from paperlab.lipschitz.checkpoint import load_model
from paperlab.lipschitz.config import Config
from paperlab.lipschitz.layers import _OperatorNormConv, conv_singular_values_fft
from paperlab.lipschitz.losses import loss_fn
from paperlab.lipschitz.model import build_model
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.runlog import cpu_model, machine_load

BINS = np.linspace(0.0, 1.2, 49)


def _normalized_weights(model: nn.Module) -> None:
    """Compute every normalised weight once (the constraint's own cost, without the data)."""
    for m in model.modules():
        if isinstance(m, _OperatorNormConv):
            m.normalized_kernel().sum().backward()
        elif hasattr(m, "normalized_weight"):
            m.normalized_weight().sum().backward()
        elif hasattr(m, "parametrizations"):  # deel-torchlip
            m.weight.sum().backward()


def step_cost(kinds=("baseline", "spectral", "bjorck", "torchlip"), batch: int = 256, steps: int = 5) -> dict:
    cfg0 = Config()
    out = {
        "batch_size": batch,
        "steps_timed": steps,
        "widths": cfg0.widths,
        "dense": cfg0.dense,
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "models": {},
    }
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(batch, 3, 32, 32, generator=g), torch.randint(0, 10, (batch,), generator=g)
    for kind in kinds:
        cfg = Config(model=kind, loss="ce" if kind == "baseline" else "hkr")
        torch.manual_seed(0)
        model = build_model(cfg).train()
        opt = torch.optim.Adam(model.parameters(), 1e-3)

        t = time.perf_counter()
        for i in range(steps + 1):
            if i == 1:  # the first step warms up
                t = time.perf_counter()
            loss = loss_fn(cfg.loss, model(x), y, cfg.temperature, cfg.margin, cfg.alpha, cfg.offset)
            opt.zero_grad()
            loss.backward()
            opt.step()
        per_step = (time.perf_counter() - t) / steps
        t = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad()
            _normalized_weights(model)
        per_norm = (time.perf_counter() - t) / steps if kind != "baseline" else 0.0
        out["models"][kind] = {"step_s": round(per_step, 4), "normalisation_s": round(per_norm, 4)}
        print(kind, out["models"][kind], flush=True)
    out["load"] = machine_load()
    return out


def _conv_layers(model: nn.Module):
    """(name, effective kernel, input size) of each conv, following the spatial size through the pools."""
    size = 32
    for i, m in enumerate(model):
        if isinstance(m, nn.Conv2d | _OperatorNormConv):
            kernel = m.normalized_kernel() if isinstance(m, _OperatorNormConv) else m.weight
            yield f"{i}:{type(m).__name__}", kernel.detach(), size
        elif "Pool" in type(m).__name__:
            size //= 2


def _dense_layers(model: nn.Module):
    for i, m in enumerate(model):
        if isinstance(m, nn.Linear) or hasattr(m, "normalized_weight"):
            w = m.normalized_weight() if hasattr(m, "normalized_weight") else m.weight
            yield f"{i}:{type(m).__name__}", w.detach()


def spectra(run_dir: Path) -> dict:
    model, cfg, _ = load_model(run_dir / "model.pt")
    layers = {}
    with torch.no_grad():
        for name, kernel, size in _conv_layers(model):
            layers[name] = conv_singular_values_fft(kernel.double(), size).numpy()
            reshaped = kernel.reshape(kernel.shape[0], -1).double()
            layers[name + " (reshaped kernel)"] = torch.linalg.svdvals(reshaped).numpy()
        for name, w in _dense_layers(model):
            layers[name] = torch.linalg.svdvals(w.double()).numpy()
    out = {}
    for name, s in layers.items():
        hist, _ = np.histogram(np.clip(s, 0, BINS[-1] - 1e-9), BINS)
        out[name] = {
            "n": int(s.size),
            "max": float(s.max()),
            "median": float(np.median(s)),
            "min": float(s.min()),
            "frac_above_0.9": float((s > 0.9).mean()),
            "hist": hist.tolist(),
        }
    return {"model": cfg.model, "bins": BINS.tolist(), "layers": out}


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs/lipschitz/cifar10", help="folder with <model>-seed1/model.pt")
    parser.add_argument("--out", default="runs/lipschitz/analysis")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Sequential model contains a layer which is not a Lipschitz layer")
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.skip_timing:
        atomic_write_text(out / "step_cost.json", json.dumps(step_cost(), indent=2) + "\n")
    found = {}
    for kind in ("spectral", "bjorck", "torchlip"):
        run = Path(args.runs) / f"{kind}-seed{args.seed}"
        if (run / "model.pt").is_file():
            found[kind] = spectra(run)
    if not found:
        raise FileNotFoundError(f"no trained model.pt under {args.runs}/<model>-seed{args.seed} (train them first)")
    atomic_write_text(out / "spectra.json", json.dumps(found) + "\n")
    written = "spectra.json" if args.skip_timing else "step_cost.json and spectra.json"
    print(f"wrote {written} in {out} ({', '.join(found)})")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
