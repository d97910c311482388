"""Tests of the contract helpers: checkpoint, config_from_dict, cli, report, images."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from paperlab.shared.checkpoint import (
    LAST,
    CheckpointError,
    atomic_path,
    atomic_save,
    atomic_write_text,
    check_resumable,
    guard_run_dir,
    load_checkpoint,
    restore_rng_state,
    rng_state,
)
from paperlab.shared.cli import StopSignal, check_finite, error_line, run_command
from paperlab.shared.config import ConfigError, add_config_args, config_from_dict, load_config, parse_args
from paperlab.shared.images import grid, save_grid
from paperlab.shared.report import replace_block, update_markdown, write_headline


@dataclass
class Cfg:
    seed: int = 1
    width: int = 8
    lr: float = 1e-3

    def __post_init__(self):
        if self.width <= 0:
            raise ValueError(f"width must be positive, got {self.width}")


# ------------------------------------------------------------------------------------ checkpoint
def test_atomic_save_roundtrip_and_no_temp_left(tmp_path):
    path = tmp_path / "a" / "last.pt"
    atomic_save({"x": 1, "arr": np.arange(3)}, path)
    state = load_checkpoint(path, required=("x",))
    assert state["x"] == 1 and list(state["arr"]) == [0, 1, 2]
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_path_keeps_the_old_file_when_the_write_fails(tmp_path):
    path = tmp_path / "model.pt"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(junk)
    atomic_save({"model": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"not a DQN checkpoint \(no 'config'"):
        load_checkpoint(tmp_path / "other.pt", required=("config", "model"), kind="DQN")
    atomic_save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(tmp_path / "list.pt")


def test_rng_state_restores_every_stream():
    torch = pytest.importorskip("torch")
    gen = np.random.default_rng(3)
    random.seed(1), np.random.seed(2), torch.manual_seed(4)
    saved = rng_state(gen)
    first = (random.random(), np.random.rand(), gen.random(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    gen2 = np.random.default_rng(99)
    restore_rng_state(saved, gen2)
    assert (random.random(), np.random.rand(), gen2.random(), torch.rand(1).item()) == first
    with pytest.raises(CheckpointError, match="1 numpy generators"):
        restore_rng_state(saved)


def test_rng_state_jax_key():
    jax = pytest.importorskip("jax")
    key = jax.random.key(7)
    back = restore_rng_state(rng_state(jax_key=key))
    assert np.array_equal(jax.random.key_data(back), jax.random.key_data(key))


def test_check_resumable_names_every_changed_key():
    saved = {"seed": 1, "width": 8, "lr": 1e-3}
    check_resumable(saved, Cfg(lr=5e-4), keys=("seed", "width"))  # lr may change on resume
    with pytest.raises(ConfigError) as e:
        check_resumable(saved, Cfg(seed=2, width=16), keys=("seed", "width"))
    assert "seed: 1" in str(e.value) and "width: 8" in str(e.value) and "16 now" in str(e.value)
    # a checkpoint from before `width` existed was trained with its default: resumable at 8, not at 16
    old = {"seed": 1, "lr": 1e-3}
    check_resumable(old, Cfg(), keys=("seed", "width"))
    with pytest.raises(ConfigError, match="width: 8 in the checkpoint, 16 now"):
        check_resumable(old, Cfg(width=16), keys=("seed", "width"))


def test_guard_run_dir(tmp_path):
    assert guard_run_dir(tmp_path, resume=False) is None
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        guard_run_dir(tmp_path, resume=True)
    atomic_save({"step": 3}, tmp_path / LAST)
    with pytest.raises(ConfigError, match="already holds a run.*RESUME=1"):
        guard_run_dir(tmp_path, resume=False, resume_hint="RESUME=1")
    assert guard_run_dir(tmp_path, resume=True) == tmp_path / LAST


# ---------------------------------------------------------------------------------------- config
def test_config_from_dict_validates_like_a_preset():
    assert config_from_dict(Cfg, {"seed": 3}, ["lr=0.1"]) == Cfg(seed=3, lr=0.1)
    with pytest.raises(ConfigError, match="unknown config key 'depth' \\(from checkpoint\\)"):
        config_from_dict(Cfg, {"depth": 3})
    with pytest.raises(ConfigError, match="'width'"):
        config_from_dict(Cfg, {"width": "wide"})
    with pytest.raises(ConfigError, match="width must be positive"):
        config_from_dict(Cfg, {"width": 0})


def test_flags_may_stand_between_overrides(tmp_path):
    import argparse

    p = argparse.ArgumentParser()
    add_config_args(p, resume=True)
    a = parse_args(p, ["seed=2", "--resume", "lr=5e-4"])
    assert a.resume and a.overrides == ["seed=2", "lr=5e-4"]
    assert load_config(Cfg, None, a.overrides) == Cfg(seed=2, lr=5e-4)


# ------------------------------------------------------------------------------------------- cli
def _run(fn):
    with pytest.raises(SystemExit) as e:
        run_command(fn, [])
    return e.value.code


def test_run_command_exit_codes(capsys):
    assert run_command(lambda argv: 5, []) == 5

    def bad_config(argv):
        raise ConfigError("unknown config key 'x'")

    def missing(argv):
        raise FileNotFoundError("no MNIST in data/mnist: see projects/x/README.md")

    def nan(argv):
        check_finite(12, loss=float("nan"), grad=1.0)

    def bug(argv):
        raise RuntimeError("boom\nsecond line")

    assert _run(bad_config) == 2 and _run(missing) == 2
    assert "error: no MNIST in data/mnist" in capsys.readouterr().err
    assert _run(nan) == 1
    err = capsys.readouterr().err
    assert "non-finite loss=nan at step 12" in err and "grad" not in err and "Traceback" not in err
    assert _run(bug) == 1
    err = capsys.readouterr().err
    assert "error: boom" in err and "second line" not in err and "Traceback" not in err
    assert error_line(KeyError("config")) == "config"


def test_check_finite_passes_finite_values():
    check_finite(1, loss=0.5, kl=np.float32(2.0))
    with pytest.raises(FloatingPointError, match="kl=inf at step 3"):
        check_finite(3, loss=0.5, kl=float("inf"))


def test_sigterm_finishes_the_step_then_exits_130(tmp_path):
    """A real process: SIGTERM mid-loop -> the loop ends after a whole step, saves, and exits 130."""
    script = tmp_path / "loop.py"
    out = tmp_path / "steps.txt"
    script.write_text(
        textwrap.dedent(f"""
        import os, signal, time
        from paperlab.shared.cli import StopSignal, run_command
        def main(argv):
            step = 0
            with StopSignal() as stop:
                while step < 1000 and not stop.requested:
                    step += 1
                    if step == 5:
                        os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(0.001)
            open({str(out)!r}, "w").write(str(step))
        run_command(main)
    """)
    )
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 130, r.stderr
    assert out.read_text() == "5" and "continue with --resume" in r.stderr
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # this process is untouched
    with StopSignal() as stop:
        assert not stop.requested and signal.getsignal(signal.SIGINT) == stop._handle
    assert signal.getsignal(signal.SIGINT) != stop._handle  # the old handler is back


# ---------------------------------------------------------------------------------------- report
def test_replace_block_and_update_markdown(tmp_path):
    text = "a\n<!-- report:t -->\nold\n<!-- /report:t -->\nb\n"
    assert replace_block(text, "t", "new") == "a\n<!-- report:t -->\nnew\n<!-- /report:t -->\nb\n"
    with pytest.raises(ValueError, match="report:u"):
        replace_block(text, "u", "x")
    readme, report = tmp_path / "README.md", tmp_path / "REPORT.md"
    readme.write_text(text)
    report.write_text("<!-- report:u -->\n<!-- /report:u -->\n")
    written = update_markdown([readme, report], {"t": "T", "u": "U"})
    assert written == {str(readme): ["t"], str(report): ["u"]}
    assert "\nT\n" in readme.read_text() and "\nU\n" in report.read_text()
    with pytest.raises(ValueError, match="no markers .*: gone"):
        update_markdown([readme, report], {"t": "T2", "gone": "x"})
    assert "\nT\n" in readme.read_text()  # nothing written when a block is missing


def test_write_headline(tmp_path):
    index = tmp_path / "README.md"
    index.write_text("| dqn | <!-- headline:dqn --> old | [x](y) |\n| ppo | <!-- headline:ppo --> p | z |\n")
    write_headline(index, "dqn", "new | with pipe\nand newline")
    assert index.read_text().splitlines()[0] == "| dqn | <!-- headline:dqn --> new / with pipe and newline | [x](y) |"
    with pytest.raises(ValueError, match="0 <!-- headline:vae"):
        write_headline(index, "vae", "x")


# ---------------------------------------------------------------------------------------- images
def test_grid_layout_and_layouts_agree(tmp_path):
    x = np.zeros((5, 2, 3), dtype=np.float32)  # five 2x3 grey images
    x[1] = 1.0
    g = grid(x, nrow=3, pad=1)
    assert g.shape == (2 * 3 + 1, 3 * 4 + 1, 3) and g.dtype == np.uint8
    assert (g[1:3, 5:8] == 255).all() and (g[1:3, 1:4] == 0).all()  # tile 1 white, tile 0 black
    assert (g[0] == 255).all()  # padding
    chw = np.random.default_rng(0).random((4, 3, 5, 6))
    assert np.array_equal(grid(chw), grid(chw.transpose(0, 2, 3, 1)))
    out = save_grid(chw, tmp_path / "g.png", scale=2)
    assert Image.open(tmp_path / "g.png").size == (out.shape[1], out.shape[0])
    with pytest.raises(ValueError, match="non-empty"):
        grid(np.zeros((0, 4, 4)))


def test_machine_description_for_bench_files():
    from paperlab.shared.runlog import cpu_model, machine_load

    assert isinstance(cpu_model(), str) and cpu_model()
    load = machine_load()
    assert len(load) == 3 and all(x >= 0 for x in load)
