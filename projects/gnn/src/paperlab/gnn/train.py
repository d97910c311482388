"""Training of a GNN on ZINC-12k (or the synthetic offline default), with checkpoints and exact resume.

    python -m paperlab.gnn.train --config configs/gnn/zinc-gine.yaml seed=2
    python -m paperlab.gnn.train --config configs/gnn/zinc-gine.yaml seed=2 --resume   # continue a killed run

L1 loss (= MAE), Adam, cosine learning-rate decay over all steps. A run directory holds ``config.yaml``,
``metrics.jsonl`` (per epoch: train MAE, val MAE, learning rate, seconds per epoch, graphs/s), TensorBoard
events, ``checkpoints/last.pt`` (every ``checkpoint_every`` steps, at each epoch end and on Ctrl-C/SIGTERM),
at the end ``model.pt``, ``eval.json`` (test MAE and predictions) and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from paperlab.gnn.checkpoint import make_meta, resume_training, save_model, save_training
from paperlab.gnn.config import Config
from paperlab.gnn.data import Splits, load_data
from paperlab.gnn.evaluate import batches, mae, predict, prepare
from paperlab.gnn.model import GTN, build_model, metapaths
from paperlab.shared.checkpoint import LAST, atomic_write_text, guard_run_dir
from paperlab.shared.cli import StopSignal, check_finite, run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.runlog import RunLogger
from paperlab.shared.seeding import seed_everything

RESUME_HINT = "--resume (make train-gnn ... RESUME=1)"


def lr_at(step: int, total: int, cfg: Config) -> float:
    """Cosine decay from ``lr`` to ``min_lr`` over ``total`` steps."""
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(step, total) / total))


def train(cfg: Config, resume: bool = False, stop_after_steps: int | None = None, data: Splits | None = None) -> dict:
    """Train for ``cfg.epochs``; returns the summary (also written to ``summary.json``).

    ``stop_after_steps`` ends the call early after saving a checkpoint, as Ctrl-C/SIGTERM would."""
    torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.run_dir)
    resume_from = guard_run_dir(run_dir, resume, RESUME_HINT)
    ckpt_path = run_dir / LAST

    seed_everything(cfg.seed)
    data = data or load_data(cfg)
    for split in (data.train, data.val, data.test):
        prepare(split, cfg)
    model = build_model(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)  # the order of the training graphs
    meta = make_meta(cfg, model)
    n_train = len(data.train)
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    loop = {
        "step": 0,
        "elapsed": 0.0,
        "perm": torch.randperm(n_train, generator=gen),
        "pos": 0,
        "epoch_loss": 0.0,
        "epoch_graphs": 0,
        "epoch_time": 0.0,
    }
    if resume_from is not None:
        loop = resume_training(resume_from, cfg, model, optimizer, gen)
        print(f"resuming {run_dir} from step {loop['step']}", flush=True)
        done = run_dir / "summary.json"
        if loop["step"] >= total and done.is_file() and (run_dir / "model.pt").is_file():
            print(f"{run_dir} already finished at step {loop['step']}", flush=True)
            return json.loads(done.read_text())

    t_start = time.time()
    t_mark = time.time()  # start of the time counted into the current epoch

    def save_checkpoint() -> None:
        nonlocal t_mark
        now = time.time()
        loop["epoch_time"] += now - t_mark
        t_mark = now
        save_training(ckpt_path, meta, model, optimizer, {**loop, "elapsed": loop["elapsed"] + now - t_start}, gen)

    logger = RunLogger(run_dir, cfg, resume_step=loop["step"] if resume_from is not None else None)
    bar = logger.progress(total, initial=loop["step"], desc=f"{cfg.model} {cfg.dataset}")
    end_step = total if stop_after_steps is None else min(total, loop["step"] + stop_after_steps)
    saved_at = loop["step"] if resume_from is not None else -1
    model.train()
    with StopSignal() as stop:
        try:
            while loop["step"] < end_step and not stop.requested:
                idx = loop["perm"][loop["pos"] : loop["pos"] + cfg.batch_size]
                batch = next(batches(data.train, cfg.batch_size, idx))
                for g in optimizer.param_groups:
                    g["lr"] = lr_at(loop["step"], total, cfg)
                pred = model(batch)
                loss = (pred - batch.y.view(-1)).abs().mean()
                check_finite(loop["step"] + 1, loss=loss.item())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loop["step"] += 1
                loop["pos"] += len(idx)
                loop["epoch_loss"] += loss.item() * len(idx)
                loop["epoch_graphs"] += len(idx)
                bar.update(1)
                if loop["pos"] >= n_train:  # end of an epoch: validate, log, new order
                    loop["epoch_time"] += time.time() - t_mark
                    epoch = loop["step"] // steps_per_epoch
                    val_pred, val_y = predict(model, data.val)
                    logs = {
                        "epoch": epoch,
                        "train_mae": loop["epoch_loss"] / loop["epoch_graphs"],
                        "val_mae": mae(val_pred, val_y),
                        "lr": optimizer.param_groups[0]["lr"],
                        "epoch_s": loop["epoch_time"],
                        "graphs_per_s": loop["epoch_graphs"] / loop["epoch_time"],
                    }
                    logger.log(loop["step"], **logs)
                    bar.set_postfix(epoch=epoch, train=f"{logs['train_mae']:.3f}", val=f"{logs['val_mae']:.3f}")
                    loop.update(
                        perm=torch.randperm(n_train, generator=gen),
                        pos=0,
                        epoch_loss=0.0,
                        epoch_graphs=0,
                        epoch_time=0.0,
                    )
                    t_mark = time.time()
                    save_checkpoint()
                    saved_at = loop["step"]
                elif loop["step"] % cfg.checkpoint_every == 0 or loop["step"] == end_step:
                    save_checkpoint()
                    saved_at = loop["step"]
        finally:
            bar.close()
    if saved_at != loop["step"]:
        save_checkpoint()
    wall = round(loop["elapsed"] + time.time() - t_start, 1)
    summary = {
        "steps": loop["step"],
        "epochs": loop["step"] / steps_per_epoch,
        "wall_time_s": wall,
        "finished": loop["step"] >= total,
        "seed": cfg.seed,
        "device": "cpu",
        "threads": cfg.threads,
        "model": cfg.model,
        "dataset": cfg.dataset,
        "n_params": meta["n_params"],
        "train_graphs": n_train,
    }
    if loop["step"] < total:
        logger.close()
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        print(f"stopped at step {loop['step']}; continue with {RESUME_HINT}", file=sys.stderr)
        return summary
    val_pred, val_y = predict(model, data.val)
    test_pred, test_y = predict(model, data.test)
    train_mean = torch.cat([d.y for d in data.train]).mean()
    final = {
        "val_mae": mae(val_pred, val_y),
        "test_mae": mae(test_pred, test_y),
        "test_mae_predict_train_mean": mae(train_mean.expand_as(test_y), test_y),
    }
    logger.log(loop["step"], **final)
    logger.close()
    save_model(run_dir / "model.pt", meta, model)
    ev = {
        "split": "test",
        "dataset": cfg.dataset,
        "model": cfg.model,
        "graphs": len(test_y),
        "mae": final["test_mae"],
        "pred": [round(p, 4) for p in test_pred.tolist()],
        "target": [round(t, 4) for t in test_y.tolist()],
    }
    if isinstance(model, GTN):
        ev["metapaths"] = metapaths(model)
        ev["selection_weights"] = model.selection_weights().detach().tolist()
    atomic_write_text(run_dir / "eval.json", json.dumps(ev) + "\n")
    summary = {**summary, **final}
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    summary = train(cfg, resume=args.resume)
    print(
        json.dumps(
            {k: summary[k] for k in ("steps", "wall_time_s", "n_params") if k in summary}
            | {k: round(v, 4) for k, v in summary.items() if k.endswith("_mae")}
        )
    )
    print(f"run: {cfg.run_dir}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
