"""Stage 4, PPO for the language model, written here (TRL's PPOTrainer was removed after trl 1.12).

    python -m paperlab.rlhf.ppo --config configs/rlhf/shakespeare.yaml [kl_coef=0.05] [--resume]

The recipe of Huang et al. (2023), "The N implementation details of RLHF with PPO", one iteration:
 1. draw ``ppo_batch_size`` prompts (the first k tokens of training speeches), LEFT-pad them, sample a response
    of up to ``response_tokens`` tokens at temperature 1, no top-k/top-p, stopping at EOS (padding after it);
 2. score prompt + response with the proxy reward model (on the last token, as it was trained), normalised
    by the mean/std of the base model's scores (measured once at the start);
 3. per-token rewards r_t = -beta * KL_t (k1 or k3 against the frozen reference = the base model), plus the
    score on the last real token (EOS, or the last token of a truncated response);
 4. GAE over tokens with the value head (gamma, lambda), whitened advantages;
 5. ``ppo_epochs`` passes of minibatches: clipped policy loss + vf_coef * clipped value loss, grad-norm clip.
Both KL estimators, the entropy, the response length and the proxy score are logged every iteration.
The policy is saved with ``save_pretrained`` every ``snapshot_every`` iterations (the over-optimisation
curve is measured on these snapshots by :mod:`paperlab.rlhf.evaluate`), and the training state in
``checkpoints/last.pt`` every ``checkpoint_every`` iterations and on Ctrl-C/SIGTERM (``--resume`` continues).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from paperlab.rlhf.checkpoint import resume_training, save_training
from paperlab.rlhf.config import Config
from paperlab.rlhf.core import (
    AdaptiveKLController,
    entropy_of,
    gae,
    kl_per_token,
    logprobs_of,
    masked_mean,
    policy_loss,
    token_rewards,
    value_loss,
    whiten,
)
from paperlab.rlhf.data import make_prompts
from paperlab.rlhf.model import (
    PolicyWithValue,
    decode_responses,
    ended_with_eos,
    left_pad,
    pick_device,
    response_forward,
    sample,
)
from paperlab.rlhf.reward import RewardScorer
from paperlab.rlhf.stages import load_base, prompt_sets
from paperlab.shared.checkpoint import LAST, atomic_write_text, guard_run_dir
from paperlab.shared.cli import StopSignal, check_finite, run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.runlog import RunLogger
from paperlab.shared.seeding import seed_everything

RESUME_HINT = "--resume (make train-rlhf-ppo RESUME=1)"


def ppo_iteration(policy, ref_lm, reward_fn, optimizer, prompts, tok, cfg: Config, kl_coef: float,
                  score_norm: tuple[float, float], gen: torch.Generator, step: int) -> dict:  # fmt: skip
    """One rollout + PPO update. ``reward_fn(prompt_ids, resp_ids, resp_mask) -> raw scores (B,)``."""
    dev = next(policy.parameters()).device
    p_ids, p_mask = (t.to(dev) for t in left_pad(prompts, tok.pad_token_id))
    policy.eval()
    r_ids, r_mask = sample(policy.lm, p_ids, p_mask, cfg.response_tokens, tok.eos_token_id, tok.pad_token_id,
                           generator=gen)  # fmt: skip
    mask = r_mask.float()
    with torch.no_grad():
        logits, values = response_forward(policy, p_ids, p_mask, r_ids, r_mask, with_values=True)
        logp, ent = logprobs_of(logits, r_ids), entropy_of(logits)
        ref_logp = logprobs_of(response_forward(ref_lm, p_ids, p_mask, r_ids, r_mask), r_ids)
        raw = reward_fn(p_ids, r_ids, r_mask).float().to(dev)
        score = (raw - score_norm[0]) / score_norm[1]
        eos = ended_with_eos(r_ids, r_mask, tok.eos_token_id)
        if cfg.missing_eos_penalty > 0:
            score = score - cfg.missing_eos_penalty * (~eos).float()
        kl = kl_per_token(logp, ref_logp, cfg.kl_estimator) * mask
        rewards, non_score = token_rewards(score, kl, mask, kl_coef)
        if cfg.whiten_rewards:
            rewards = whiten(rewards, mask, shift_mean=False)
        adv, returns = gae(rewards, values, mask, cfg.gamma, cfg.lam)
        kl_k1 = (kl_per_token(logp, ref_logp, "k1") * mask).sum(1).mean().item()
        kl_k3 = (kl_per_token(logp, ref_logp, "k3") * mask).sum(1).mean().item()
        check_finite(step, kl_k1=kl_k1, kl_k3=kl_k3, advantages=adv.sum().item(), score=score.sum().item())
        adv = whiten(adv, mask)

    policy.train()
    B, mb = len(prompts), cfg.ppo_minibatch_size
    stats = {"pg_loss": [], "vf_loss": [], "clipfrac": [], "vf_clipfrac": [], "approx_kl": []}
    for _ in range(cfg.ppo_epochs):
        perm = torch.randperm(B, generator=gen)
        for i in range(0, B, mb):
            idx = perm[i : i + mb].to(dev)
            new_logits, new_values = response_forward(policy, p_ids[idx], p_mask[idx], r_ids[idx], r_mask[idx],
                                                      with_values=True)  # fmt: skip
            new_logp = logprobs_of(new_logits, r_ids[idx])
            pg, clipfrac, approx_kl = policy_loss(new_logp, logp[idx], adv[idx], mask[idx], cfg.cliprange)
            vf, vf_clipfrac = value_loss(new_values, values[idx], returns[idx], mask[idx], cfg.cliprange_value)
            loss = pg + cfg.vf_coef * vf
            check_finite(step, loss=loss.item())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
            optimizer.step()
            for k, v in zip(stats, (pg, vf, clipfrac, vf_clipfrac, approx_kl)):
                stats[k].append(v.item())
    return {
        "proxy_score": raw.mean().item(), "score_norm": score.mean().item(),
        "kl_k1": kl_k1, "kl_k3": kl_k3, "kl_coef": kl_coef,
        "non_score_reward": non_score.sum(1).mean().item(),
        "entropy": masked_mean(ent, mask).item(), "response_len": mask.sum(1).mean().item(),
        "eos_frac": eos.float().mean().item(), "value_mean": masked_mean(values, mask).item(),
        "tokens": int(mask.sum().item()),
        **{k: float(np.mean(v)) for k, v in stats.items()},
    }  # fmt: skip


def text_reward_fn(scorer: RewardScorer, tok):
    """reward_fn for :func:`ppo_iteration` from a saved reward model: decode, then score the text."""

    def fn(p_ids, r_ids, r_mask):
        prompts = [tok.decode(p, skip_special_tokens=True) for p in p_ids.tolist()]
        return scorer.score(prompts, decode_responses(tok, r_ids, r_mask))

    return fn


def train_ppo(cfg: Config, resume: bool = False, stop_after_steps: int | None = None, text: str | None = None,
              reward_fn=None) -> dict:  # fmt: skip
    """PPO for ``cfg.ppo_steps`` iterations. ``reward_fn`` (tests: a toy RM) replaces the saved proxy RM."""
    torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.stage_dir("ppo"))
    resume_from = guard_run_dir(run_dir, resume, RESUME_HINT)
    seed_everything(cfg.seed)
    tok, ref_lm = load_base(cfg)
    for p in ref_lm.parameters():
        p.requires_grad_(False)
    _, lm = load_base(cfg)
    dev = pick_device(cfg.device)
    policy = PolicyWithValue(lm).to(dev)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.ppo_lr, eps=1e-5)
    if reward_fn is None:
        reward_fn = text_reward_fn(RewardScorer(Path(cfg.input_dir("rm")) / "model", device=cfg.device), tok)
    train_docs = prompt_sets(cfg, tok, n_eval=1, text=text).train_docs
    draw = lambda s, n: make_prompts(train_docs, n, cfg.prompt_min_tokens, cfg.prompt_tokens,
                                     np.random.default_rng([cfg.seed, s + 1]))  # fmt: skip
    gen = torch.Generator().manual_seed(cfg.seed)
    kl_ctl = AdaptiveKLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon)
    step, elapsed, tokens = 0, 0.0, 0
    if resume_from is not None:
        loop = resume_training(resume_from, "ppo", cfg, {"policy": policy}, optimizer, gen)
        step, elapsed, tokens, kl_ctl.value = loop["step"], loop["elapsed"], loop["tokens"], loop["kl_coef"]
        score_norm = tuple(loop["score_norm"])
        print(f"resuming {run_dir} from iteration {step}", flush=True)
    else:  # reward normalisation: the base model's scores on a batch of prompts get mean 0, std 1
        with torch.no_grad():
            prompts = draw(-1, 2 * cfg.ppo_batch_size)
            p_ids, p_mask = (t.to(dev) for t in left_pad(prompts, tok.pad_token_id))
            r_ids, r_mask = sample(ref_lm, p_ids, p_mask, cfg.response_tokens, tok.eos_token_id, tok.pad_token_id,
                                   generator=torch.Generator().manual_seed(cfg.seed + 10**6))  # fmt: skip
            raw = reward_fn(p_ids, r_ids, r_mask).float()
        score_norm = (raw.mean().item(), max(raw.std().item(), 1e-6))
    t0 = time.time()
    snapshots = run_dir / "snapshots"

    def save():
        save_training(run_dir / LAST, "ppo", cfg, {"policy": policy}, optimizer,
                      {"step": step, "elapsed": elapsed + time.time() - t0, "tokens": tokens,
                       "kl_coef": kl_ctl.value, "score_norm": list(score_norm)}, gen)  # fmt: skip

    logger = RunLogger(run_dir, cfg, resume_step=step if resume_from is not None else None)
    bar = logger.progress(cfg.ppo_steps, initial=step, desc="ppo")
    end = cfg.ppo_steps if stop_after_steps is None else min(cfg.ppo_steps, step + stop_after_steps)
    with StopSignal() as stop:
        while step < end and not stop.requested:
            stats = ppo_iteration(policy, ref_lm, reward_fn, optimizer, draw(step, cfg.ppo_batch_size), tok, cfg,
                                  kl_ctl.value, score_norm, gen, step + 1)  # fmt: skip
            kl_ctl.update(stats["kl_k1"], cfg.ppo_batch_size)
            step += 1
            tokens += stats.pop("tokens")
            wall = elapsed + time.time() - t0
            logger.log(step, **stats, tokens_per_s=tokens / max(wall, 1e-9))
            bar.update(1)
            bar.set_postfix(score=f"{stats['proxy_score']:.2f}", kl=f"{stats['kl_k1']:.2f}")
            if step % cfg.snapshot_every == 0 or step == cfg.ppo_steps:
                policy.lm.save_pretrained(snapshots / f"step-{step:05d}")
            if step % cfg.checkpoint_every == 0 or step == end:
                save()
        bar.close()
    if step < end:
        save()
    logger.close()
    wall = round(elapsed + time.time() - t0, 1)
    summary = {"steps": step, "wall_time_s": wall, "finished": step >= cfg.ppo_steps, "seed": cfg.seed,
               "device": str(dev), "method": "ppo", "generated_tokens": tokens,
               "tokens_per_s": round(tokens / max(wall, 1e-9), 1), "score_norm": list(score_norm),
               "final_kl_coef": kl_ctl.value}  # fmt: skip
    if step >= cfg.ppo_steps:
        policy.lm.save_pretrained(run_dir / "model")
        tok.save_pretrained(run_dir / "model")
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    print(json.dumps(train_ppo(cfg, resume=args.resume), indent=2))


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
