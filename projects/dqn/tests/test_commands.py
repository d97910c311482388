"""The commands as a user runs them: guarded run directories, resume syntax, one-line errors, quiet output."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from paperlab.dqn import evaluate, render
from paperlab.dqn import train as train_mod
from paperlab.dqn.config import Config
from paperlab.dqn.train import train
from paperlab.shared.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[3]
TINY = [
    "total_steps=900",
    "buffer_size=2000",
    "learning_starts=200",
    "train_freq=2",
    "target_update_period=1",
    "target_tau=0.01",
    "eps_decay_steps=500",
    "hidden_sizes=[16,16]",
    "log_every=100",
    "checkpoint_every=300",
    "eval_episodes=2",
]


def _overrides(run_dir, *extra) -> list[str]:
    return [*TINY, f"run_dir={run_dir}", *extra]


def _cfg(run_dir, *extra) -> Config:
    return load_config(Config, None, _overrides(run_dir, *extra))


def _fails(main, argv, capsys, code=2) -> str:
    """Run a command's main; it must exit with ``code`` and print exactly one line on stderr."""
    capsys.readouterr()  # forget what came before
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _stopped(main, argv, capsys) -> str:
    """Run a training main that gets stopped by a signal: exit code 130, the last stderr line says so."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 130
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("trained") / "run"
    train(_cfg(run))
    return run / "model.pt"


def test_a_fresh_run_over_a_killed_run_is_refused_and_its_history_kept(tmp_path, capsys):
    run = tmp_path / "run"
    train(_cfg(run), stop_after_steps=400)  # a run that stopped after its first checkpoint
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    err = _fails(train_mod.main, _overrides(run), capsys)
    assert err.startswith("error: ") and "--resume" in err and "RESUME=1" in err and "run_dir" in err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # nothing touched
    with pytest.raises(ConfigError):
        train(_cfg(run))


def test_resume_may_stand_before_the_overrides_and_says_where_it_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    train(_cfg(run), stop_after_steps=400)
    capsys.readouterr()
    train_mod.main(["--resume", "lr=5e-4", *_overrides(run)])  # ARGS="--resume lr=5e-4" in make
    out = capsys.readouterr().out
    assert "resuming" in out and "from step 400 of 900" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["finished"] and summary["steps"] == 900
    assert yaml_lr(run) == 5e-4


def yaml_lr(run: Path) -> float:
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text())["lr"]


def test_summary_has_the_common_keys_and_the_console_gets_one_line_not_every_return(tmp_path, capsys):
    run = tmp_path / "run"
    train_mod.main(_overrides(run, "eval_epsilon=0.05", "eval_episodes=7"))  # per-episode evaluation
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 2 and "over 7 episodes" in out and "returns" not in out
    summary = json.loads((run / "summary.json").read_text())
    assert {"steps", "wall_time_s", "finished", "seed", "device"} <= summary.keys()
    assert summary["steps"] == 900 and summary["finished"] is True and summary["device"] == "cpu"
    assert len(json.loads((run / "eval.json").read_text())["returns"]) == 7  # the file keeps them all


def test_ctrl_c_finishes_the_step_saves_and_resumes_to_the_uninterrupted_result(tmp_path, capsys, monkeypatch):
    train(_cfg(tmp_path / "full"))
    original = train_mod.linear_epsilon

    def interrupt_at_step_500(t, *a):
        if t == 500:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, in the middle of step 501
        return original(t, *a)

    monkeypatch.setattr(train_mod, "linear_epsilon", interrupt_at_step_500)
    assert "stopped early" in _stopped(train_mod.main, _overrides(tmp_path / "run"), capsys)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    assert state["loop"]["step"] == 501  # the whole step, then the checkpoint
    monkeypatch.setattr(train_mod, "linear_epsilon", original)
    train(_cfg(tmp_path / "run"), resume=True)
    full = torch.load(tmp_path / "full" / "model.pt", weights_only=False)["q_net"]
    resumed = torch.load(tmp_path / "run" / "model.pt", weights_only=False)["q_net"]
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_bad_numbers_are_one_line_errors(tmp_path, capsys, model):
    assert "total_steps must be positive" in _fails(train_mod.main, _overrides(tmp_path / "r", "total_steps=0"), capsys)
    assert "at least 1" in _fails(evaluate.main, [str(model), "--episodes", "0"], capsys)  # make eval-dqn EPISODES=0
    assert "at least 1" in _fails(render.main, [str(model), "--out", str(tmp_path / "a.gif"), "--frames", "0"], capsys)


@pytest.mark.parametrize("content", ["corrupt", "tensor", "ppo", "missing"])
@pytest.mark.parametrize("command", ["evaluate", "render"])
def test_a_file_that_is_not_a_dqn_checkpoint_is_a_one_line_error(tmp_path, capsys, content, command):
    path = tmp_path / "model.pt"
    if content == "corrupt":
        path.write_bytes(b"\x80\x02not a checkpoint at all")
    elif content == "tensor":
        torch.save(torch.zeros(3), path)
    elif content == "ppo":  # what another project's checkpoint looks like
        torch.save({"config": {"env_id": "Hopper-v5"}, "model": {"w": torch.zeros(2)}, "step": 10}, path)
    main = evaluate.main if command == "evaluate" else render.main
    argv = [str(path)] + (["--out", str(tmp_path / "a.gif")] if command == "render" else [])
    err = _fails(main, argv, capsys)
    expected = {
        "corrupt": "is not a readable checkpoint",
        "tensor": "is not a paperlab DQN checkpoint",
        "ppo": "is not a paperlab DQN checkpoint (no 'meta', 'q_net')",
        "missing": "no checkpoint at",
    }
    assert err.startswith("error: ") and expected[content] in err


def test_a_checkpoint_whose_config_no_longer_validates_is_named_not_filtered(tmp_path, capsys, model):
    state = torch.load(model, weights_only=False)
    state["meta"]["config"]["learning_rate_typo"] = 1.0
    torch.save(state, tmp_path / "model.pt")
    err = _fails(evaluate.main, [str(tmp_path / "model.pt")], capsys)
    assert "learning_rate_typo" in err and "config saved in" in err


def test_render_prints_no_display_server_noise(model, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SDL_", "XDG_", "DISPLAY", "WAYLAND"))}
    proc = subprocess.run(
        [sys.executable, "-m", "paperlab.dqn.render", str(model), "--out", str(tmp_path / "a.gif"), "--frames", "5"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and "wrote" in proc.stdout


def test_the_compiled_optimizer_step_runs_without_a_profiler_warning():
    """MinAtar runs compile RMSprop's step; torch's own wrapper around ``step`` made dynamo warn
    "Profiler record function ... will be ignored" on every run. (A fresh process: torch warns once.)"""
    code = (
        "import torch; from paperlab.dqn.train import compiled_step\n"
        "net = torch.nn.Linear(4, 2); opt = torch.optim.RMSprop(net.parameters(), centered=True)\n"
        "step = compiled_step(opt)\n"
        "for _ in range(2):\n    opt.zero_grad(); net(torch.ones(3, 4)).sum().backward(); step()\n"
        "print(int(opt.state[net.weight]['step']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "2", proc.stderr
    assert "Profiler" not in proc.stderr and "will be ignored" not in proc.stderr, proc.stderr


def test_every_preset_checkpoints_well_before_its_runs_end():
    for preset in sorted((ROOT / "configs" / "dqn").glob("*.yaml")):
        cfg = load_config(Config, preset)
        assert cfg.checkpoint_every * 4 <= cfg.total_steps, preset.name
    # CartPole runs stop when solved: the earliest committed stop must come after a few checkpoints
    cartpole = load_config(Config, ROOT / "configs" / "dqn" / "cartpole.yaml")
    runs = (ROOT / "projects" / "dqn" / "results" / "cartpole").glob("*/summary.json")
    solved = [json.loads(p.read_text())["solved"] for p in runs]
    assert solved and min(s["step"] for s in solved if s) >= 3 * cartpole.checkpoint_every


def test_the_documented_eval_epsilon_is_the_presets():
    presets = {load_config(Config, p).eval_epsilon for p in (ROOT / "configs" / "dqn").glob("*.yaml")}
    texts = [(ROOT / "projects/dqn" / name).read_text() for name in ("README.md", "project.mk")]
    documented = {float(x) for t in texts for x in re.findall(r"EPSILON=([0-9.]+)", t)}
    assert presets == {0.0} and documented <= presets, documented
