"""What DDPM on two moons needs to reach flow matching's sample quality: a small sweep, no figures.

    make toys-ddpm-sweep      # writes runs/toys/diffusion_sweep.json; publish: copy it to results/
    python -m paperlab.toys.ddpm_sweep --out runs/toys/diffusion_sweep.json [SPEC ...]

A SPEC is comma-separated overrides of ``configs/toys/diffusion.yaml`` (e.g.
``diffusion.schedule=cosine,diffusion.train_steps=20000``); each is trained from seed 0 and scored as
``make toy-diffusion`` scores it (energy distance and MMD^2 of 2000 samples, against their floors).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from paperlab.shared.cli import run_command

SPECS = (
    "",
    "diffusion.train_steps=20000",
    "diffusion.schedule=cosine",
    "diffusion.schedule=cosine,diffusion.train_steps=20000,diffusion.lr_end=0.01",
    "diffusion.n_timesteps=1000,diffusion.beta_end=0.02,diffusion.train_steps=20000",
    "diffusion.n_timesteps=1000,diffusion.schedule=cosine,diffusion.train_steps=20000",
)


def score(spec: str, preset: str = "configs/toys/diffusion.yaml") -> dict:
    import jax
    import numpy as np

    from paperlab.shared.config import load_config
    from paperlab.toys import diffusion
    from paperlab.toys.common import train_all
    from paperlab.toys.config import Config
    from paperlab.toys.moons import quality

    cfg = load_config(Config, preset, ["task=diffusion", *[s for s in spec.split(",") if s]])
    dc = cfg.diffusion
    c0 = time.process_time()
    params, curves = train_all(diffusion.make_trainer(cfg), dc.train_steps)
    cpu = time.process_time() - c0
    traj = diffusion.sample(diffusion.make_model(dc), params, dc, jax.random.key(cfg.seed + 1), dc.n_samples)
    q = quality(traj[-1], dc.moons_noise, cfg.seed)
    return {
        "overrides": spec or "(the preset)",
        "schedule": dc.schedule,
        "n_timesteps": dc.n_timesteps,
        "train_steps": dc.train_steps,
        **q,
        "energy_distance_over_floor": q["energy_distance"] / q["energy_distance_real_vs_real"],
        "mmd_rbf_over_floor": q["mmd_rbf"] / q["mmd_rbf_real_vs_real"],
        "final_loss_mean_last_100": float(np.mean(curves["loss"][-100:])),
        "train_cpu_seconds": round(cpu, 1),
    }


def _main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m paperlab.toys.ddpm_sweep", description=__doc__.split("\n")[0])
    p.add_argument("specs", nargs="*", default=list(SPECS))
    p.add_argument("--out", default="runs/toys/diffusion_sweep.json")
    args = p.parse_args(argv)
    from paperlab.toys.common import write_json

    rows = []
    for spec in args.specs:
        rows.append(score(spec))
        print(json.dumps(rows[-1]), flush=True)
        write_json({"seed": 0, "rows": rows}, Path(args.out))  # after every row: a stopped sweep keeps its rows


def main(argv=None):
    return run_command(_main, argv)


if __name__ == "__main__":
    main()
