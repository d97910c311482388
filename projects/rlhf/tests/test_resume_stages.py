"""The whole-pipeline runner (what `make train-rlhf` runs) and the resume of a stopped TRL stage."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from paperlab.rlhf import pipeline
from paperlab.rlhf.config import Config
from paperlab.shared.cli import StopSignal
from paperlab.shared.runlog import read_metrics

from .conftest import TINY


def fake_stages(monkeypatch, calls: list, kill: str | None = None, fail: str | None = None):
    """Replace the stage processes: each writes its 'done' file; ``kill`` leaves a checkpoint and exits 130."""

    def run(cmd, **kw):
        module, args = cmd[2], cmd[3:]
        stage = next(s for s, (m, _) in pipeline.STAGES.items() if m[0] == module and (len(m) == 1 or m[1] in args))
        out = Path(next(a for a in args if a.startswith("out_dir=")).split("=", 1)[1]) / stage
        out.mkdir(parents=True, exist_ok=True)
        calls.append((stage, "--resume" in args))
        if stage == kill:
            (out / "checkpoints").mkdir(exist_ok=True)
            (out / "checkpoints" / "last.pt").write_bytes(b"x")
            return subprocess.CompletedProcess(cmd, 130)
        if stage == fail:
            return subprocess.CompletedProcess(cmd, 1)
        (out / pipeline.STAGES[stage][1]).write_text(json.dumps({"finished": True}))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(pipeline.subprocess, "run", run)


def test_pipeline_stops_with_a_stage_and_resume_skips_what_finished(tmp_path, monkeypatch):
    out = tmp_path / "run"
    cfg = Config(out_dir=str(out))
    argv = [f"out_dir={out}"]
    calls: list = []
    fake_stages(monkeypatch, calls, kill="ppo")
    timing = pipeline.run_pipeline(cfg, argv, list(pipeline.STAGES), resume=False, stop=StopSignal())
    assert [c[0] for c in calls] == ["sft", "pairs", "rm", "ppo"]  # nothing after the stopped stage
    assert not timing["finished"] and timing["stages"]["ppo"]["rc"] == 130
    assert set(timing["stages"]["sft"]) >= {"wall_s", "load_before", "load_after"} and timing["cpu"]

    calls.clear()
    fake_stages(monkeypatch, calls)
    timing = pipeline.run_pipeline(cfg, argv, list(pipeline.STAGES), resume=True, stop=StopSignal())
    assert calls == [("ppo", True), ("rloo", False), ("grpo", False), ("eval", False)]
    assert timing["finished"] and timing["stages"]["ppo"]["runs"] == 2 and timing["stages"]["sft"]["runs"] == 1
    saved = json.loads((out / "timing.json").read_text())
    assert saved["total_s"] == pytest.approx(sum(s["wall_s"] for s in saved["stages"].values()), abs=0.2)


def test_pipeline_failing_stage_and_unknown_stage(tmp_path, monkeypatch):
    cfg = Config(out_dir=str(tmp_path / "run"))
    fake_stages(monkeypatch, [], fail="rm")
    with pytest.raises(RuntimeError, match="stage rm failed"):
        pipeline.run_pipeline(cfg, [f"out_dir={tmp_path / 'run'}"], ["sft", "pairs", "rm"], False, StopSignal())
    with pytest.raises(SystemExit) as e:
        pipeline.main(["--stages", "sft,typo", f"out_dir={tmp_path / 'x'}"])
    assert e.value.code == 2


def _stop_at_step(monkeypatch, step: int):
    """Send this process SIGTERM as the TRL trainer begins ``step`` (as the queue's timeout or Ctrl-C would)."""
    from transformers import TrainerCallback

    from paperlab.rlhf import baselines

    original = baselines.snapshot_callback

    class _Kill(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == step - 1:
                os.kill(os.getpid(), signal.SIGTERM)

    def with_kill(*a, **kw):
        cb = original(*a, **kw)
        cb.on_step_begin = _Kill().on_step_begin
        return cb

    monkeypatch.setattr(baselines, "snapshot_callback", with_kill)


@pytest.mark.slow
def test_a_stopped_grpo_stage_resumes_to_the_uninterrupted_result(base_run, corpus, tmp_path, monkeypatch):
    """GRPO (TRL) stopped by SIGTERM after step 2 of 4 saves, refuses a fresh start, resumes and ends where an
    uninterrupted run ends (same weights, same logged rewards)."""
    from safetensors.torch import load_file

    from paperlab.rlhf.baselines import train_baseline

    fn = lambda prompts, completions, **kw: [float(c.count(" the")) for c in completions]
    cfgs = {}
    for name in ("a", "b"):
        shutil.copytree(base_run / "sft", tmp_path / name / "sft")
        cfgs[name] = Config(**{**TINY, "out_dir": str(tmp_path / name), "trl_steps": 4, "trl_prompts_per_step": 2,
                               "snapshot_every": 2, "checkpoint_every": 2})  # fmt: skip
    assert train_baseline("grpo", cfgs["a"], text=corpus, reward_fn=fn)["finished"]
    with monkeypatch.context() as m:
        _stop_at_step(m, 2)
        part = train_baseline("grpo", cfgs["b"], text=corpus, reward_fn=fn)
    assert not part["finished"] and part["steps"] == 2
    assert (tmp_path / "b" / "grpo" / "trainer" / "checkpoint-2").is_dir()
    with pytest.raises(ValueError, match="already holds a run"):
        train_baseline("grpo", cfgs["b"], text=corpus, reward_fn=fn)
    assert train_baseline("grpo", cfgs["b"], resume=True, text=corpus, reward_fn=fn)["finished"]
    wa = load_file(tmp_path / "a" / "grpo" / "model" / "model.safetensors")
    wb = load_file(tmp_path / "b" / "grpo" / "model" / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    reward = lambda run: [(r["step"], r["reward"]) for r in read_metrics(tmp_path / run / "grpo" / "metrics.jsonl")
                          if "reward" in r]  # fmt: skip
    assert reward("a") == reward("b") and [s for s, _ in reward("b")] == [1, 2, 3, 4]
