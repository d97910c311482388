"""Training end to end on tiny images: the loss falls, resume is exact, bad input stops clearly."""

import json

import pytest
import torch

from paperlab.ddpm import train as train_mod
from paperlab.ddpm.checkpoint import load_for_sampling, read_checkpoint
from paperlab.ddpm.config import Config
from paperlab.ddpm.data import ImageData, load_digits_data, to_model_range
from paperlab.ddpm.diffusion import GaussianDiffusion
from paperlab.ddpm.unet import build_unet
from paperlab.shared.config import ConfigError, load_config
from paperlab.shared.seeding import seed_everything

torch.set_num_threads(1)
TINY = [
    "image_size=8",
    "base_channels=8",
    "channel_mults=[1,2]",
    "attn_resolutions=[4]",
    "groups=4",
    "batch_size=32",
    "timesteps=100",
    "lr=2e-3",
    "warmup_steps=5",
    "log_every=5",
    "checkpoint_every=10",
    "num_samples=4",
    "sample_steps=5",
    "ema_decay=0.9",
]


@pytest.fixture(scope="module")
def digits8():
    return load_digits_data(8)


def _cfg(tmp_path, *extra):
    return load_config(Config, None, TINY + [f"run_dir={tmp_path}"] + list(extra))


def _fixed_loss(model, cfg, data):
    d = GaussianDiffusion.from_config(cfg)
    x0 = to_model_range(data.test[:128])
    with torch.no_grad():
        return d.loss(model, x0, torch.Generator().manual_seed(123)).item()


def test_a_few_steps_lower_the_loss(tmp_path, digits8):
    cfg = _cfg(tmp_path, "total_steps=30")
    summary = train_mod.train(cfg, data=digits8)
    seed_everything(cfg.seed)
    init = build_unet(cfg, 1)
    trained, _, _, _ = load_for_sampling(tmp_path / "checkpoints" / "last.pt", ema=False)
    before, after = _fixed_loss(init, cfg, digits8), _fixed_loss(trained, cfg, digits8)
    assert before == pytest.approx(1.0, abs=0.15)  # the untrained net predicts eps = 0
    assert after < 0.75 * before
    assert summary["steps"] == 30 and (tmp_path / "samples" / "step0000030.png").is_file()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(5, 31, 5)) and "loss_t0-24" in rows[-1]


def test_resume_continues_exactly(tmp_path, digits8):
    straight = _cfg(tmp_path / "a", "total_steps=12")
    train_mod.train(straight, data=digits8)
    split = _cfg(tmp_path / "b", "total_steps=12")
    out = train_mod.train(split, data=digits8, stop_after_steps=7)
    assert not out["finished"] and read_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["step"] == 7
    train_mod.train(split, resume=True, data=digits8)
    a = read_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")
    b = read_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    for k in a["model"]:
        assert torch.allclose(a["model"][k], b["model"][k], atol=1e-6), k
        assert torch.allclose(a["ema"]["model"][k], b["ema"]["model"][k], atol=1e-6), k
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 12]


def test_checkpoint_refuses_another_image_size(tmp_path, digits8):
    cfg = _cfg(tmp_path, "total_steps=2")
    train_mod.train(cfg, data=digits8, stop_after_steps=1)
    with pytest.raises(ConfigError, match=r"trained on 8x8x1 images.*image_size: 8 in this checkpoint.*16 now"):
        train_mod.train(_cfg(tmp_path, "total_steps=2", "image_size=16"), resume=True, data=load_digits_data(16))
    with pytest.raises(ConfigError, match="trained on 8x8 images; it cannot sample or be evaluated at 16x16"):
        load_for_sampling(tmp_path / "checkpoints" / "last.pt", image_size=16)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train_mod.train(_cfg(tmp_path / "none", "total_steps=2"), resume=True, data=digits8)
    with pytest.raises(ConfigError, match="data is 16x16"):
        train_mod.train(_cfg(tmp_path / "x", "total_steps=2"), data=load_digits_data(16))


class Hooked(torch.nn.Module):
    """The U-Net with ``hook(call_number, output)`` run on every forward call (to poison or interrupt a step)."""

    def __init__(self, inner, hook):
        super().__init__()
        self.inner, self.hook, self.calls = inner, hook, 0

    def forward(self, x, t):
        self.calls += 1
        return self.hook(self.calls, self.inner(x, t))


def _hook_unet(monkeypatch, hook):
    real_build = train_mod.build_unet
    monkeypatch.setattr(train_mod, "build_unet", lambda cfg, ch: Hooked(real_build(cfg, ch), hook))


def test_nan_loss_stops_with_the_step(tmp_path, digits8, monkeypatch):
    _hook_unet(monkeypatch, lambda call, out: out * float("nan") if call == 4 else out)
    with pytest.raises(FloatingPointError, match="non-finite loss=nan at step 4"):
        train_mod.train(_cfg(tmp_path, "total_steps=10"), data=digits8)


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        train_mod.main(["dataset=mnist", f"data_dir={tmp_path}", f"run_dir={tmp_path / 'run'}", "image_size=28"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: MNIST: missing") and "train-images-idx3-ubyte.gz" in err


def test_labels_free_data_is_accepted_for_training(tmp_path):
    imgs = (torch.rand(40, 3, 8, 8) * 255).to(torch.uint8)
    data = ImageData("celeba", imgs, None, imgs[:4], None, 0)
    out = train_mod.train(_cfg(tmp_path, "total_steps=3", "random_flip=true"), data=data)
    assert out["channels"] == 3 and (tmp_path / "summary.json").is_file()


def test_summary_has_the_common_keys(tmp_path, digits8):
    train_mod.train(_cfg(tmp_path, "total_steps=3"), data=digits8)
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["steps"] == 3 and s["finished"] is True and s["seed"] == 1 and s["device"] == "cpu"
    assert s["wall_time_s"] >= 0 and "train_time_s" not in s and "stopped_early" not in s


def test_a_fresh_run_over_a_killed_run_is_refused_and_deletes_nothing(tmp_path, digits8):
    cfg = _cfg(tmp_path, "total_steps=20")
    train_mod.train(cfg, data=digits8, stop_after_steps=10)  # "killed" after the step-10 checkpoint
    ckpt, metrics = tmp_path / "checkpoints" / "last.pt", tmp_path / "metrics.jsonl"
    before = (ckpt.read_bytes(), metrics.read_text(), sorted(p.name for p in tmp_path.glob("events.*")))
    with pytest.raises(ConfigError, match="already holds a run.*--resume.*or give a new run_dir"):
        train_mod.train(cfg, data=digits8)
    assert (ckpt.read_bytes(), metrics.read_text(), sorted(p.name for p in tmp_path.glob("events.*"))) == before
    out = train_mod.train(cfg, resume=True, data=digits8)
    assert out["finished"] and out["steps"] == 20


def test_resume_refuses_another_seed(tmp_path, digits8):
    train_mod.train(_cfg(tmp_path, "total_steps=4"), data=digits8, stop_after_steps=2)
    with pytest.raises(ConfigError, match="seed: 1 in this checkpoint.*2 now"):
        train_mod.train(_cfg(tmp_path, "total_steps=4", "seed=2"), resume=True, data=digits8)


def _tiny_argv(run_dir):
    return [f"{o}" for o in TINY] + ["dataset=digits", f"run_dir={run_dir}"]


def test_cli_resume_flag_anywhere_and_resuming_line(tmp_path, capsys):
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as e:  # a fresh run over nothing with --resume: nothing to resume
        train_mod.main(["--resume", *_tiny_argv(run), "total_steps=4"])
    assert e.value.code == 2 and "nothing to resume" in capsys.readouterr().err
    train_mod.main([*_tiny_argv(run), "total_steps=4", "checkpoint_every=2"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:  # again without --resume: refused, one line, exit 2
        train_mod.main([*_tiny_argv(run), "total_steps=6"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "already holds a run" in err
    train_mod.main(["--resume", *_tiny_argv(run), "total_steps=6"])  # --resume before the overrides
    assert "resuming from step 4" in capsys.readouterr().err
    assert json.loads((run / "summary.json").read_text())["steps"] == 6


def test_sigterm_finishes_the_step_saves_and_exits_130(tmp_path, capsys, monkeypatch):
    import os
    import signal

    def kill_in_step_3(call, out):  # one forward call per training step (sampling grids are not reached)
        if call == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    _hook_unet(monkeypatch, kill_in_step_3)
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        train_mod.main([*_tiny_argv(run), "total_steps=50"])
    assert e.value.code == 130
    assert read_checkpoint(run / "checkpoints" / "last.pt")["step"] == 3  # the whole step 3, then saved
    s = json.loads((run / "summary.json").read_text())
    assert s["steps"] == 3 and s["finished"] is False
    assert "continue with --resume" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"not a checkpoint", None])
def test_foreign_or_corrupt_checkpoint_is_one_line_exit_2(tmp_path, capsys, content):
    from paperlab.ddpm import evaluate, sample

    bad = tmp_path / "bad.pt"
    if content is None:
        torch.save({"config": {}, "q_net": {}}, bad)  # another project's checkpoint
    else:
        bad.write_bytes(content)
    for main in (sample.main, evaluate.main):
        with pytest.raises(SystemExit) as e:
            main([str(bad)])
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
        assert ("not a readable checkpoint" if content else "is not a paperlab DDPM checkpoint") in err


def test_presets_use_the_repository_data_folder():
    from pathlib import Path

    import yaml

    presets = sorted((Path(__file__).parents[3] / "configs" / "ddpm").glob("*.yaml"))
    assert presets
    for p in presets:
        text = p.read_text()
        assert "/path/to" not in text and "train-ddpm-" not in text, p.name
        data_dir = yaml.safe_load(text).get("data_dir")
        assert data_dir is None or data_dir.startswith("data/"), p.name
