"""Test accuracy on rotated test sets, per-layer equivariance error and end-to-end invariance error.

    python -m paperlab.gcnn.evaluate runs/gcnn/eurosat/c4-seed1 [data_dir=...]

writes ``eval.json`` into the run directory:
  * ``accuracy``: test accuracy per rotation angle of the test images (``test_angles``; 90-degree
    multiples are exact pixel permutations, other angles bilinear with ``rotate_padding`` fill);
  * ``equivariance``: for every layer l and angle a in the model's group, the relative error
        ||f_l(a . x) - a . f_l(x)|| / ||f_l(x)||
    on the central disc of the maps, where a . acts on the layer's feature type (spatial rotation
    for the plain CNN, which has no rotation action on its channels; rotation + cyclic shift of the
    rotation axis for C_n; rotation + rho_m on frequency-m fields for the steerable net);
  * ``invariance``: relative change of the logits ||y(a . x) - y(x)|| / ||y(x)|| and the fraction of
    unchanged predictions, for angles 0..360, on disc-masked test images (so that the corners that a
    square loses under rotation do not count against the network).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from paperlab.gcnn.checkpoint import load_model
from paperlab.gcnn.config import DIHEDRAL, GROUP_ORDER, Config
from paperlab.gcnn.data import Splits, load_data, to_input
from paperlab.gcnn.dihedral import act_on_group_map
from paperlab.gcnn.groups import DihedralGroup
from paperlab.gcnn.rotate import disk_mask, rotate_image
from paperlab.gcnn.steerable import rotate_fields
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import config_from_dict

INVARIANCE_ANGLES = [float(a) for a in range(0, 361, 15)]
REFLECTION = "reflection"  # the equivariance key of the mirror image x -> -x (D_n models)


@torch.no_grad()
def accuracy(
    model, x_uint8, y, data: Splits, angle: float = 0.0, padding: str = "zeros", batch: int = 500, amp: bool = False
) -> float:
    """Top-1 accuracy of ``model`` on the images rotated by ``angle`` degrees."""
    model.eval()
    correct = 0
    for i in range(0, len(y), batch):
        x = to_input(x_uint8[i : i + batch], data.mean, data.std, angle, padding)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp and x.device.type == "cuda"):
            logits = model(x)
        correct += (logits.argmax(1) == y[i : i + batch]).sum().item()
    return correct / max(1, len(y))


def group_angles(model_name: str) -> list:
    """Angles (degrees) at which a layer's equivariance is defined for ``model_name`` (D_n: also the
    reflection, key ``REFLECTION``)."""
    if model_name in DIHEDRAL:
        return [360.0 / DIHEDRAL[model_name], REFLECTION]
    n = GROUP_ORDER[model_name]
    candidates = [22.5, 45.0, 90.0]
    if n in (0, 1):  # steerable: any angle; plain CNN: measured against the plain spatial rotation
        return [10.0, 22.5, 45.0, 90.0]
    return [a for a in candidates if abs((a * n / 360.0) - round(a * n / 360.0)) < 1e-9]


def transform_input(x: torch.Tensor, angle) -> torch.Tensor:
    """Rotate ``x`` by ``angle`` degrees, or mirror it (x -> -x) for ``angle == REFLECTION``."""
    return torch.flip(x, dims=(-1,)) if angle == REFLECTION else rotate_image(x, math.radians(angle))


def act(feature: torch.Tensor, model, model_name: str, layer: int, angle) -> torch.Tensor:
    """The group element 'rotation by angle (degrees)' (or the reflection) acting on a layer's feature map."""
    if model_name in DIHEDRAL:
        n = DIHEDRAL[model_name]
        g = n if angle == REFLECTION else round(angle * n / 360.0) % n  # element f*n + k = r^k s^f
        return act_on_group_map(DihedralGroup(n), g, feature)
    if angle == REFLECTION:
        return torch.flip(feature, dims=(-1,))  # the plain mirror image (no action on the channels)
    rad = math.radians(angle)
    if model_name == "so2":
        return rotate_fields(feature, model.mults[layer + 1], rad)
    out = rotate_image(feature, rad)
    n = GROUP_ORDER[model_name]
    if n > 1:
        out = torch.roll(out, shifts=round(angle * n / 360.0) % n, dims=2)
    return out


def _disc(t: torch.Tensor) -> torch.Tensor:
    return t * disk_mask(t.shape[-1], t.device, t.dtype)


@torch.no_grad()
def equivariance_errors(model, model_name: str, x: torch.Tensor, angles: list[float] | None = None) -> dict:
    """{angle: [relative error of layer 1, ..., layer L]} on the central disc (float64 results)."""
    model.eval()
    angles = angles if angles is not None else group_angles(model_name)
    base = model.features(x)
    out = {}
    for a in angles:
        rotated = model.features(transform_input(x, a))
        errs = []
        for layer, (f, fr) in enumerate(zip(base, rotated)):
            target = _disc(act(f, model, model_name, layer, a))
            errs.append(((_disc(fr) - target).norm() / _disc(f).norm().clamp_min(1e-12)).item())
        out[str(a)] = errs
    return out


@torch.no_grad()
def invariance_errors(model, x: torch.Tensor, angles: list[float] = INVARIANCE_ANGLES) -> dict:
    """{angle: {"logit_rel_err", "same_prediction"}} for disc-masked inputs ``x``."""
    model.eval()
    x = _disc(x)
    y = model(x)
    pred = y.argmax(1)
    out = {}
    for a in angles:
        ya = model(_disc(rotate_image(x, math.radians(a))))
        out[str(a)] = {
            "logit_rel_err": ((ya - y).norm(dim=1) / y.norm(dim=1).clamp_min(1e-12)).mean().item(),
            "same_prediction": (ya.argmax(1) == pred).float().mean().item(),
        }
    return out


def evaluate_model(model, cfg: Config, data: Splits, n_probe: int = 64, amp: bool = False) -> dict:
    """All of the evaluations of the module docstring, as one dict."""
    acc = {
        str(a): accuracy(model, data.test_x, data.test_y, data, a, cfg.rotate_padding, amp=amp) for a in cfg.test_angles
    }
    probe = to_input(data.test_x[:n_probe], data.mean, data.std)
    if not hasattr(model, "features"):  # the peer (e2cnn): no per-layer features, and float32 only
        eq, inv = {}, invariance_errors(model, probe)
    else:
        was_float = next(model.parameters()).dtype
        model.double()  # equivariance errors in float64: what is left is the method's, not rounding's
        try:
            eq = equivariance_errors(model, cfg.model, probe.double())
            inv = invariance_errors(model, probe.double())
        finally:
            model.to(was_float)
    return {"accuracy": acc, "equivariance": eq, "invariance": inv, "n_test": len(data.test_y), "n_probe": n_probe}


def evaluate_run(run_dir: str | Path, overrides=(), device: str = "cpu") -> dict:
    run_dir = Path(run_dir)
    model, cfg, meta = load_model(run_dir / "model.pt", device=device)
    if overrides:
        from paperlab.shared.config import to_dict

        cfg = config_from_dict(Config, to_dict(cfg), overrides=list(overrides), source=str(run_dir))
    data = load_data(cfg).to(device)
    result = {
        "model": cfg.model,
        "dataset": cfg.dataset,
        "seed": cfg.seed,
        "n_params": meta["n_params"],
        **evaluate_model(model, cfg, data),
    }
    atomic_write_text(run_dir / "eval.json", json.dumps(result, indent=2) + "\n")
    return result


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides (e.g. data_dir=...)")
    args = parser.parse_args(argv)
    result = evaluate_run(args.run_dir, args.overrides)
    print(json.dumps(result["accuracy"], indent=2))


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
