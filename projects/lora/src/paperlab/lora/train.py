"""Train a base diffusion U-Net on the source domain, or adapt one to the target with LoRA or full fine-tuning.

    python -m paperlab.lora.train --config configs/lora/mnist-base.yaml            # the base model
    python -m paperlab.lora.train --config configs/lora/olivetti-lora.yaml rank=16 # an adapter
    torchrun --nproc_per_node 2 -m paperlab.lora.train --config ... device=cpu      # 2 processes (gloo)

The loop follows diffusers' examples under Hugging Face Accelerate: ``accelerator.prepare`` wraps the model
(DistributedDataParallel under torchrun) and the optimizer, ``accelerator.backward`` and
``clip_grad_norm_`` do the rest. Every process draws the same global batch (indices, noise, timesteps)
from one seeded generator and trains on its slice, so a run's trajectory is a function of the global batch
only, whatever the number of processes; the batch generator is saved in the checkpoint (bit-exact resume).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch

from paperlab.lora.checkpoint import ADAPTER, load_run, save_run
from paperlab.lora.config import Config, module_patterns
from paperlab.lora.data import load_source, load_target, num_source_classes, to_model_range, to_unit_range
from paperlab.lora.lora import inject_lora, inject_peft, save_adapter
from paperlab.lora.model import build_unet, ddim_sample, diffusion_loss, load_base_unet, noise_scheduler
from paperlab.shared.checkpoint import LAST, guard_run_dir, restore_rng_state, rng_state
from paperlab.shared.cli import StopSignal, check_finite, run_command
from paperlab.shared.config import ConfigError, add_config_args, config_from_args, parse_args
from paperlab.shared.images import save_grid
from paperlab.shared.runlog import RunLogger, cpu_model, machine_load
from paperlab.shared.seeding import seed_everything


def prepare_model(cfg: Config):
    """The model of a run with only the parameters it trains left trainable; returns (unet, adapted names)."""
    k = num_source_classes(cfg) + 1
    if cfg.mode == "base":
        return build_unet(cfg, k), []
    unet = load_base_unet(cfg.base_model)
    got = (unet.config.sample_size, unet.config.num_class_embeds, unet.config.in_channels)
    if got != (cfg.image_size, k, 1):
        raise ConfigError(
            f"base_model {cfg.base_model} is a {got[0]}px model with {got[1]} classes and {got[2]} "
            f"channels; this run needs {cfg.image_size}px, {k} classes (source {cfg.source} + "
            "target) and 1 channel"
        )
    if cfg.mode == "full":
        unet.requires_grad_(True)
        return unet, []
    patterns = module_patterns(cfg.modules)
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.lora_backend == "peft":
        unet = inject_peft(unet, patterns, cfg.rank, cfg.alpha, cfg.lora_init)
        names = sorted({n.rsplit(".lora_", 1)[0] for n, p in unet.named_parameters() if p.requires_grad})
        return unet, names
    return unet, inject_lora(unet, patterns, cfg.rank, cfg.alpha, cfg.lora_init, gen)


def _peft_adapter(unet) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return {k: v.contiguous() for k, v in get_peft_model_state_dict(unet).items()}


def save_final(unet, cfg: Config, run_dir: Path, suffix: str = "") -> int:
    """Write the finished model; returns its size in bytes (the adapter, or the whole U-Net)."""
    if cfg.mode != "lora":
        unet.save_pretrained(run_dir / "unet")
        return sum(f.stat().st_size for f in (run_dir / "unet").glob("*.safetensors"))
    path = run_dir / (ADAPTER if not suffix else ADAPTER.replace(".safetensors", f"{suffix}.safetensors"))
    if cfg.lora_backend == "peft":
        import json as _json

        from safetensors.torch import save_file

        from paperlab.lora.lora import ADAPTER_FORMAT
        from paperlab.shared.checkpoint import atomic_path

        tensors = _peft_adapter(unet)
        mods = sorted({k.rsplit(".lora_", 1)[0] for k in tensors})
        meta = {
            "format": ADAPTER_FORMAT,
            "rank": str(cfg.rank),
            "alpha": str(float(cfg.alpha)),
            "modules": _json.dumps(mods),
            "backend": "peft",
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return path.stat().st_size
    return save_adapter(unet, path, extra={"base_model": cfg.base_model, "modules_pattern": cfg.modules})


def train(cfg: Config, resume: bool = False, log=print) -> dict:
    from accelerate import Accelerator

    torch.set_num_threads(cfg.threads)
    cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
    acc = Accelerator(cpu=cpu)
    world, rank, main = acc.num_processes, acc.process_index, acc.is_main_process
    if cfg.batch_size % world:
        raise ConfigError(f"batch_size {cfg.batch_size} does not split evenly over {world} processes")
    local = cfg.batch_size // world
    run_dir = Path(cfg.run_dir)
    ckpt = guard_run_dir(run_dir, resume, "RESUME=1 (or --resume)")
    seed_everything(cfg.seed)

    data = load_source(cfg) if cfg.mode == "base" else load_target(cfg)
    unet, adapted = prepare_model(cfg)
    sched = noise_scheduler(cfg)
    params = [p for p in unet.parameters() if p.requires_grad]
    names = [n for n, p in unet.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup_steps)))
    ema = None
    if cfg.ema_decay > 0:
        from diffusers.training_utils import EMAModel

        ema = EMAModel(params, decay=cfg.ema_decay, use_ema_warmup=True, inv_gamma=1.0, power=0.75)
    gen = torch.Generator().manual_seed(cfg.seed)  # the global batch: identical on every process
    step = 0
    if ckpt is not None:
        state = load_run(ckpt, cfg)
        if state["step"] >= cfg.total_steps:
            raise ConfigError(f"{run_dir} finished at step {state['step']}; give total_steps=<more> to continue it")
        with torch.no_grad():
            for n, p in zip(names, params):
                p.copy_(state["trainable"][n])
        opt.load_state_dict(state["optimizer"])
        lr_sched.load_state_dict(state["lr_scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        gen.set_state(state["generator"])
        restore_rng_state(state["rng"])
        step = state["step"]
        log(f"resuming {run_dir} at step {step}")
    unet, opt = acc.prepare(unet, opt)
    n_train, shape = len(data.train), data.train.shape[1:]
    trainable = sum(p.numel() for p in params)
    total = sum(p.numel() for p in acc.unwrap_model(unet).parameters())
    if main:
        log(
            f"{cfg.mode}: {len(data.train)} images, {trainable:,} of {total:,} parameters train "
            f"({len(adapted)} adapted modules), {world} process(es), global batch {cfg.batch_size}"
        )

    logger = RunLogger(run_dir, cfg, resume_step=step if ckpt is not None else None) if main else None
    t_start, step_times = time.time(), []

    def checkpoint() -> None:
        if main:
            unwrapped = acc.unwrap_model(unet)
            tensors = {n: p.detach().cpu().clone() for n, p in unwrapped.named_parameters() if p.requires_grad}
            save_run(run_dir / LAST, cfg, step, tensors, opt.optimizer, lr_sched, gen, rng_state(), ema)
        acc.wait_for_everyone()

    unet.train()
    with StopSignal() as stop:
        bar = logger.progress(cfg.total_steps, initial=step, desc=f"{cfg.mode}") if main else None
        while step < cfg.total_steps:
            stop_now = torch.tensor(float(stop.requested), device=acc.device)
            if world > 1:  # every process stops at the same step, or DDP would hang
                stop_now = acc.reduce(stop_now, "sum")
            if stop_now.item() > 0:
                break
            t0 = time.perf_counter()
            idx = torch.randint(n_train, (cfg.batch_size,), generator=gen)
            noise = torch.randn((cfg.batch_size, *shape), generator=gen)
            t = torch.randint(0, cfg.timesteps, (cfg.batch_size,), generator=gen)
            mine = slice(rank * local, (rank + 1) * local)
            x0 = to_model_range(data.train[idx[mine]]).to(acc.device)
            y = data.train_labels[idx[mine]].to(acc.device)
            loss = diffusion_loss(unet, sched, x0, y, noise[mine].to(acc.device), t[mine].to(acc.device))
            acc.backward(loss)
            grad_norm = acc.clip_grad_norm_(params, cfg.grad_clip) if cfg.grad_clip > 0 else torch.tensor(0.0)
            opt.step()
            lr_sched.step()
            opt.zero_grad(set_to_none=True)
            if ema is not None:
                ema.step(params)
            step += 1
            mean_loss = acc.reduce(loss.detach(), "mean").item()
            check_finite(step, loss=mean_loss)
            step_times.append(time.perf_counter() - t0)
            if main:
                bar.update(1)
                if step % cfg.log_every == 0 or step == cfg.total_steps:
                    logger.log(step, loss=mean_loss, grad_norm=float(grad_norm), lr=lr_sched.get_last_lr()[0])
                    bar.set_postfix(loss=f"{mean_loss:.4f}")
            if step % cfg.checkpoint_every == 0 or step == cfg.total_steps:
                checkpoint()
        if step < cfg.total_steps:  # stopped by a signal: keep the last whole step
            checkpoint()
        if main:
            bar.close()
    finished = step >= cfg.total_steps
    final = acc.unwrap_model(unet)
    if finished and cfg.save_rank_adapters:
        save_final(final, cfg, run_dir, suffix=f"-rank{rank}")
    acc.wait_for_everyone()
    summary: dict = {}
    if main:
        logger.close()
        if finished:
            if ema is not None:
                ema.copy_to(params)  # the base is sampled (and adapted) from its EMA weights
            size = save_final(final, cfg, run_dir)
            timed = step_times[10:] or step_times
            summary = {
                "steps": step,
                "finished": True,
                "seed": cfg.seed,
                "device": str(acc.device),
                "processes": world,
                "wall_time_s": round(time.time() - t_start, 1),
                "mode": cfg.mode,
                "rank": cfg.rank,
                "modules": cfg.modules,
                "adapted_modules": len(adapted),
                "trainable_params": trainable,
                "total_params": total,
                "saved_bytes": size,
                "step_time_s": round(sum(timed) / max(1, len(timed)), 4),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                # gradient + two AdamW moments of every trainable parameter (fp32): what LoRA saves in training
                "train_state_mb": round(trainable * 4 * 3 / 2**20, 3),
                "final_loss": mean_loss if step_times else None,
                "cpu": cpu_model(),
                "load": machine_load(),
            }
            if torch.cuda.is_available() and not cpu:
                summary["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            _sample_grid(final, cfg, run_dir)
            log(f"done: {step} steps, {summary['step_time_s']} s/step, saved {size:,} bytes -> {run_dir}")
    acc.wait_for_everyone()
    return summary


def _sample_grid(unet, cfg: Config, run_dir: Path) -> None:
    k = num_source_classes(cfg)
    n = cfg.num_samples
    labels = torch.arange(n) % k if cfg.mode == "base" else torch.full((n,), k)
    noise = torch.randn((n, 1, cfg.image_size, cfg.image_size), generator=torch.Generator().manual_seed(0))
    x = ddim_sample(unet, cfg, noise, labels, cfg.sample_steps)
    save_grid(to_unit_range(x).numpy(), run_dir / "samples.png", scale=2)


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    train(cfg, resume=args.resume)


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
