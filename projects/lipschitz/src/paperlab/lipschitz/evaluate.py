"""Evaluate a trained model: clean accuracy, certified accuracy at l2 radii (from a *measured* bound),
empirical accuracy under l2 PGD / FGSM at the same radii, and the Lipschitz constant bracketed by a
lower bound (Jacobian norms at test points) and the certified upper bound (product of layer norms).

    python -m paperlab.lipschitz.evaluate runs/lipschitz/cifar10/bjorck-seed1 [pgd_images=500 ...]

Writes run_dir/eval.json. The certificate uses the upper bound measured here (each affine layer's
operator norm by autograd power iteration on the layer's function), not the layers' own claim; for a
linear head the pairwise form min_j (f_y - f_j) / (L_features ||w_y - w_j||) is used (equal to the
margin / sqrt(2) formula for an orthonormal head, never smaller than it).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch

from paperlab.lipschitz.attacks import fgsm_l2, pgd_l2
from paperlab.lipschitz.bounds import jacobian_lower_bound, upper_bound
from paperlab.lipschitz.checkpoint import load_model
from paperlab.lipschitz.config import Config
from paperlab.lipschitz.data import load
from paperlab.lipschitz.losses import certified_accuracy, pairwise_certified_radius
from paperlab.lipschitz.model import head_weight
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import config_from_dict, to_dict
from paperlab.shared.runlog import cpu_model, machine_load

CURVE_RADII_255 = list(range(0, 161, 4))


@torch.no_grad()
def predict(model, x: torch.Tensor, chunk: int = 500) -> torch.Tensor:
    return torch.cat([model(x[i : i + chunk]) for i in range(0, len(x), chunk)])


def evaluate(model, cfg: Config, test, summary: dict | None = None) -> dict:
    t0 = time.time()
    model.eval()
    x, y = test.batch(torch.arange(len(test)))
    logits = predict(model, x)
    correct = logits.argmax(1) == y
    bound, feature_bound, norms = upper_bound(model)
    radius = pairwise_certified_radius(logits, y, head_weight(model), feature_bound)
    out = {
        "model": cfg.model,
        "loss": cfg.loss,
        "n_test": len(test),
        "clean_acc": correct.float().mean().item(),
        "certified": {str(r): certified_accuracy(radius, correct, r / 255) for r in cfg.radii_255},
        "lipschitz_upper": bound,
        "lipschitz_upper_features": feature_bound,
        "layer_norms": {name: round(v, 6) for name, v in norms if v != 1.0 or "Conv" in name or "Linear" in name},
        "curve": {
            "radius_255": CURVE_RADII_255,
            "certified": [certified_accuracy(radius, correct, r / 255) for r in CURVE_RADII_255],
        },
        "median_radius_255": (radius[correct].median().item() * 255) if correct.any() else 0.0,
    }
    n_lb = min(cfg.lower_bound_images, len(test))
    out["lipschitz_lower"] = jacobian_lower_bound(model, x[:n_lb]) if n_lb else None
    n = min(cfg.pgd_images, len(test))
    xs, ys = x[:n], y[:n]
    cert_sub, correct_sub = radius[:n], correct[:n]
    pgd, fgsm, flips = {}, {}, 0
    gen = torch.Generator().manual_seed(cfg.seed)
    for r in cfg.radii_255:
        eps = r / 255
        adv_pgd = torch.cat(
            [
                pgd_l2(model, xs[i : i + 250], ys[i : i + 250], eps, steps=cfg.pgd_steps, generator=gen)
                for i in range(0, n, 250)
            ]
        )
        adv_fgsm = torch.cat([fgsm_l2(model, xs[i : i + 250], ys[i : i + 250], eps) for i in range(0, n, 250)])
        ok_pgd = predict(model, adv_pgd).argmax(1) == ys
        ok_fgsm = predict(model, adv_fgsm).argmax(1) == ys
        # the check of the certificate: a point certified at a radius > eps cannot be flipped within eps
        flips += int((correct_sub & (cert_sub > eps) & ~ok_pgd).sum())
        pgd[str(r)] = (ok_pgd & correct_sub).float().mean().item()
        fgsm[str(r)] = (ok_fgsm & correct_sub).float().mean().item()
    out.update(
        {
            "pgd": pgd,
            "fgsm": fgsm,
            "pgd_images": n,
            "pgd_steps": cfg.pgd_steps,
            "certified_on_pgd_subset": {
                str(r): certified_accuracy(cert_sub, correct_sub, r / 255) for r in cfg.radii_255
            },
            "certified_points_flipped_by_pgd": flips,
            "eval_time_s": round(time.time() - t0, 1),
            "cpu": cpu_model(),
            "load": machine_load(),
        }
    )
    if summary:
        times = summary.get("epoch_times_s", [])
        out.update(
            {
                "epochs": summary.get("epochs_done"),
                "epoch_time_s": sum(times) / len(times) if times else None,
                "train_wall_time_s": summary.get("wall_time_s"),
                "n_params": summary.get("n_params"),
            }
        )
    return out


def evaluate_run(run_dir: str | Path, overrides=()) -> dict:
    """Evaluate ``run_dir/model.pt`` and write ``run_dir/eval.json``."""
    warnings.filterwarnings("ignore", message="Sequential model contains a layer which is not a Lipschitz layer")
    run_dir = Path(run_dir)
    model, cfg, _ = load_model(run_dir / "model.pt")
    cfg = config_from_dict(Config, to_dict(cfg), overrides=overrides, source=str(run_dir / "model.pt"))
    torch.set_num_threads(cfg.threads)
    _, test, _ = load(cfg)
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    out = evaluate(model, cfg, test, summary)
    atomic_write_text(run_dir / "eval.json", json.dumps(out, indent=2) + "\n")
    keys = ("clean_acc", "certified", "pgd", "lipschitz_lower", "lipschitz_upper", "certified_points_flipped_by_pgd")
    print(json.dumps({k: out[k] for k in keys}, indent=2))
    return out


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("overrides", nargs="*", help="evaluation settings, key=value (pgd_images=..., data_dir=...)")
    args = parser.parse_intermixed_args(argv)
    evaluate_run(args.run_dir, args.overrides)


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
