"""Short end-to-end runs on a generated corpus: PPO raises a toy reward, resume equals an uninterrupted run."""

from __future__ import annotations

import json

import pytest
import torch

from paperlab.rlhf.config import Config
from paperlab.rlhf.ppo import ppo_iteration, train_ppo
from paperlab.shared.config import ConfigError
from paperlab.shared.runlog import read_metrics

from .conftest import TINY


def toy_reward(target_id: int):
    """Fraction of the response's real tokens that are ``target_id``: a reward PPO can find in a few steps."""

    def fn(p_ids, r_ids, r_mask):
        return ((r_ids == target_id) & r_mask.bool()).float().sum(1) / r_mask.sum(1).clamp_min(1)

    return fn


def _target(base_run):
    from paperlab.rlhf.model import load_tokenizer

    return load_tokenizer(str(base_run / "sft" / "model"))(" the", add_special_tokens=False)["input_ids"][0]


PPO = dict(TINY, ppo_lr=3e-3, kl_coef=0.01, ppo_epochs=4)


def test_tiny_ppo_raises_the_toy_reward(base_run, corpus, tmp_path):
    import shutil

    shutil.copytree(base_run / "sft", tmp_path / "run" / "sft")
    cfg = Config(**{**PPO, "ppo_steps": 12, "out_dir": str(tmp_path / "run")})
    summary = train_ppo(cfg, text=corpus, reward_fn=toy_reward(_target(base_run)))
    rows = read_metrics(tmp_path / "run" / "ppo" / "metrics.jsonl")
    first = sum(r["proxy_score"] for r in rows[:3]) / 3
    last = sum(r["proxy_score"] for r in rows[-3:]) / 3
    assert summary["finished"] and last > first + 0.2, (first, last)
    assert all(r["kl_k3"] >= 0 for r in rows) and rows[-1]["kl_k1"] > 0
    assert (tmp_path / "run" / "ppo" / "snapshots" / "step-00010" / "config.json").is_file()


def test_ppo_resume_equals_an_uninterrupted_run(base_run, corpus, tmp_path):
    import shutil

    for name in ("a", "b"):
        shutil.copytree(base_run / "sft", tmp_path / name / "sft")
    fn = toy_reward(_target(base_run))
    cfg_a = Config(**{**PPO, "ppo_steps": 4, "out_dir": str(tmp_path / "a")})
    cfg_b = Config(**{**PPO, "ppo_steps": 4, "out_dir": str(tmp_path / "b")})
    train_ppo(cfg_a, text=corpus, reward_fn=fn)
    part = train_ppo(cfg_b, text=corpus, reward_fn=fn, stop_after_steps=2)
    assert not part["finished"] and part["steps"] == 2
    with pytest.raises(ConfigError, match="already holds a run"):
        train_ppo(cfg_b, text=corpus, reward_fn=fn)
    with pytest.raises(ConfigError, match="seed"):
        train_ppo(Config(**{**PPO, "ppo_steps": 4, "seed": 2, "out_dir": str(tmp_path / "b")}), resume=True,
                  text=corpus, reward_fn=fn)  # fmt: skip
    train_ppo(cfg_b, resume=True, text=corpus, reward_fn=fn)
    from safetensors.torch import load_file

    wa = load_file(tmp_path / "a" / "ppo" / "model" / "model.safetensors")
    wb = load_file(tmp_path / "b" / "ppo" / "model" / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    ma = [r["proxy_score"] for r in read_metrics(tmp_path / "a" / "ppo" / "metrics.jsonl")]
    mb = [r["proxy_score"] for r in read_metrics(tmp_path / "b" / "ppo" / "metrics.jsonl")]
    assert ma == mb and len(ma) == 4
    assert json.loads((tmp_path / "b" / "ppo" / "summary.json").read_text())["finished"]


def test_nan_in_the_reward_stops_with_the_step(base_run, corpus):
    from paperlab.rlhf.model import PolicyWithValue
    from paperlab.rlhf.stages import load_base, prompt_sets

    cfg = Config(**{**PPO, "out_dir": str(base_run)})
    tok, ref = load_base(cfg)
    policy = PolicyWithValue(load_base(cfg)[1])
    prompts = prompt_sets(cfg, tok, text=corpus).eval[:4]
    nan_fn = lambda p, r, m: torch.full((len(r),), float("nan"))
    with pytest.raises(FloatingPointError, match="at step 7"):
        ppo_iteration(policy, ref, nan_fn, torch.optim.Adam(policy.parameters()), prompts, tok, cfg, 0.1,
                      (0.0, 1.0), torch.Generator().manual_seed(0), step=7)  # fmt: skip


def test_base_model_was_saved_with_its_tokenizer(base_run):
    summary = json.loads((base_run / "sft" / "summary.json").read_text())
    assert summary["finished"] and summary["val_ppl"] > 1
    assert (base_run / "sft" / "model" / "tokenizer.json").is_file()
    rows = read_metrics(base_run / "sft" / "metrics.jsonl")
    assert rows[-1]["loss"] < rows[0]["loss"]


def test_base_model_resume_equals_an_uninterrupted_run(corpus, tmp_path):
    from safetensors.torch import load_file

    from paperlab.rlhf.sft import train_sft

    cfg_a = Config(**{**TINY, "sft_steps": 12, "out_dir": str(tmp_path / "a")})
    cfg_b = Config(**{**TINY, "sft_steps": 12, "out_dir": str(tmp_path / "b")})
    train_sft(cfg_a, text=corpus)
    assert not train_sft(cfg_b, text=corpus, stop_after_steps=5)["finished"]
    train_sft(cfg_b, resume=True, text=corpus)
    wa = load_file(tmp_path / "a" / "sft" / "model" / "model.safetensors")
    wb = load_file(tmp_path / "b" / "sft" / "model" / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    la = [r["loss"] for r in read_metrics(tmp_path / "a" / "sft" / "metrics.jsonl")]
    lb = [r["loss"] for r in read_metrics(tmp_path / "b" / "sft" / "metrics.jsonl")]
    assert la == lb and len(la) == 12
