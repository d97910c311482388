"""Evaluation and report on a tiny run: curves start at KL 0, best-of-n's KL formula, tables from files;
the TRL stages (reward model, RLOO/GRPO) on a tiny model (slow)."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from paperlab.rlhf.config import Config
from paperlab.shared.runlog import read_metrics

from .conftest import TINY


@pytest.fixture(scope="module")
def rm_run(base_run, tmp_path_factory):
    """A copy of the base run with an untrained reward model (the base LM plus a fresh scalar head)."""
    from transformers import AutoModelForSequenceClassification

    from paperlab.rlhf.model import load_tokenizer

    out = tmp_path_factory.mktemp("eval") / "run"
    shutil.copytree(base_run / "sft", out / "sft")
    rm = AutoModelForSequenceClassification.from_pretrained(str(out / "sft" / "model"), num_labels=1)
    rm.save_pretrained(out / "rm" / "model")
    load_tokenizer(str(out / "sft" / "model")).save_pretrained(out / "rm" / "model")
    return out


def test_ppo_on_a_saved_reward_model_then_evaluate_and_report(rm_run, corpus, tmp_path):
    from paperlab.rlhf import report
    from paperlab.rlhf.evaluate import evaluate
    from paperlab.rlhf.ppo import train_ppo

    cfg = Config(**{**TINY, "ppo_steps": 2, "snapshot_every": 1, "out_dir": str(rm_run)})
    train_ppo(cfg, text=corpus)  # the default reward: the saved RM on decoded text
    result = evaluate(cfg, text=corpus)
    curve = read_metrics(rm_run / "eval" / "curve-ppo.jsonl")
    assert [r["step"] for r in curve] == [0, 1, 2] and curve[0]["kl"] == 0.0
    assert all(-1 <= r["gold"] <= 1 for r in curve)
    bon = json.loads((rm_run / "eval" / "bon.json").read_text())
    assert [r["n"] for r in bon] == [1, 2, 4]
    assert bon[0]["kl"] == 0.0 and bon[2]["kl"] == pytest.approx(math.log(4) - 0.75)
    assert bon[2]["proxy"] >= bon[0]["proxy"]  # the proxy-best of 4 scores at least the average draw
    samples = read_metrics(rm_run / "eval" / "samples.jsonl")
    assert len(samples) == TINY["sample_prompts"] and {"base", "ppo"} <= set(samples[0])
    assert result["methods"]["ppo"]["snapshots"] == 2

    results = tmp_path / "results"
    seed_dir = results / "tiny" / "seed1"
    for stage in ("sft", "eval", "ppo"):
        shutil.copytree(rm_run / stage, seed_dir / stage, ignore=shutil.ignore_patterns("model", "snapshots", "*.pt"))
    readme = tmp_path / "README.md"
    readme.write_text("".join(f"<!-- report:{n} -->\nSTALE-BLOCK\n<!-- /report:{n} -->\n"
                              for n in ("sft", "rm", "overopt", "timing", "samples", "pipeline", "matched-kl",
                                        "goodhart", "goodhart-fit")))  # fmt: skip
    report.main(["--results", str(results), "--readme", str(readme)])
    text = readme.read_text()
    assert "| PPO | tiny/seed1 | 2 |" in text and "best-of-4" in text and "STALE-BLOCK" not in text
    assert (results / "figures" / "overoptimisation-tiny.png").is_file()  # experiments other than the H200 one
    assert "no timing.json yet" in text and "√KL = 1 (KL 1)" in text

    # the same run filed as the weak proxy of the over-optimisation ablation: its own table and figure
    shutil.copytree(rm_run / "eval", results / "goodhart-weak" / "seed1" / "eval")
    report.main(["--results", str(results), "--readme", str(readme)])
    text = readme.read_text()
    assert "| weak | vader | goodhart-weak/seed1 |" in text and "| PPO | goodhart-weak" not in text  # not a main run
    assert (results / "figures" / "goodhart.png").is_file()

    # a run measured with the vader-rep gold: its own within-run figure, the gold column says which scorer
    rep = results / "goodhart-rep" / "seed1" / "eval"
    shutil.copytree(rm_run / "eval", rep)
    e = json.loads((rep / "eval.json").read_text())
    assert e["gold"] == "vader" and {"sentiment", "repeats"} <= set(e["base"])
    (rep / "eval.json").write_text(json.dumps({**e, "gold": "vader-rep"}))
    report.main(["--results", str(results), "--readme", str(readme)])
    text = readme.read_text()
    assert "| rep | vader-rep | goodhart-rep/seed1 |" in text
    assert (results / "figures" / "goodhart-rep.png").is_file()


@pytest.mark.slow
def test_trl_reward_model_and_grpo_on_a_tiny_model(base_run, corpus, tmp_path):
    from paperlab.rlhf.baselines import train_baseline
    from paperlab.rlhf.data import write_jsonl
    from paperlab.rlhf.reward import train_proxy_rm

    out = tmp_path / "run"
    shutil.copytree(base_run / "sft", out / "sft")
    # a learnable preference: answers with "love" beat answers with "hate"
    rows = [{"prompt": "ROMEO:\n", "chosen": " love " * (1 + i % 3), "rejected": " hate " * (1 + i % 2)}
            for i in range(96)]  # fmt: skip
    write_jsonl(out / "pairs" / "pairs.jsonl", rows)
    cfg = Config(**{**TINY, "out_dir": str(out), "rm_epochs": 3.0, "rm_lr": 3e-3, "trl_steps": 2,
                    "trl_prompts_per_step": 2, "snapshot_every": 1, "checkpoint_every": 2})  # fmt: skip
    result = train_proxy_rm(cfg)
    assert result["test"]["accuracy"] >= 0.8
    summary = train_baseline("grpo", cfg, text=corpus)
    assert summary["finished"] and (out / "grpo" / "snapshots" / "step-00002" / "config.json").is_file()
    with pytest.raises(ValueError, match="already holds a run"):
        train_baseline("grpo", cfg, text=corpus)


def test_gold_at_matched_kl_reads_the_first_crossing():
    from paperlab.rlhf.report import gold_at_kl

    rows = [{"kl": 0.0, "gold": 0.0, "proxy": 0.0}, {"kl": 4.0, "gold": 0.4, "proxy": 1.0},
            {"kl": 16.0, "gold": 0.8, "proxy": 2.0}, {"kl": 1.0, "gold": 0.9, "proxy": 2.5},
            {"kl": 36.0, "gold": 0.5, "proxy": 3.0}]  # fmt: skip
    gold, proxy, from_base = gold_at_kl(rows, 3.0)  # sqrt KL 2 -> 4: halfway, on the way up (not the later dip)
    assert gold == pytest.approx(0.6) and proxy == pytest.approx(1.5) and not from_base
    assert gold_at_kl(rows, 1.0)[2] and gold_at_kl(rows, 1.0)[0] == pytest.approx(0.2)  # base -> first snapshot
    assert gold_at_kl(rows, 7.0) is None  # never reached


def test_gao_rl_form_fit_recovers_a_rise_and_fall():
    from paperlab.rlhf.report import fit_gao_rl

    alpha, beta = 0.5, 0.3  # R(d) = d (alpha - beta log d): peak at d* = exp(alpha / beta - 1)
    rows = [{"kl": 0.0, "gold": 0.1}] + [
        {"kl": d * d, "gold": 0.1 + d * (alpha - beta * math.log(d))} for d in (0.5, 1.0, 2.0, 3.0, 5.0, 8.0)
    ]
    fit = fit_gao_rl(rows)
    assert fit["alpha"] == pytest.approx(alpha) and fit["beta"] == pytest.approx(beta)
    assert fit["peak_kl"] == pytest.approx(math.exp(2 * (alpha / beta - 1))) and fit["r2"] == pytest.approx(1.0)
    rising = [{"kl": 0.0, "gold": 0.0}] + [{"kl": d * d, "gold": 0.2 * d + 0.05 * d * math.log(d)} for d in (1, 2, 3)]
    assert math.isnan(fit_gao_rl(rising)["peak_kl"])  # beta < 0: the form never turns down
    assert fit_gao_rl(rows[:3]) is None  # two snapshots are too few
