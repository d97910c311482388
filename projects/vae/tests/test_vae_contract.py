"""The run contract: guarded run directories, resume from anywhere on the command line, one-line errors,
Ctrl-C/SIGTERM, the code prior's checkpoints, and the report's checks of what was recorded."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch
import yaml

from paperlab.shared.checkpoint import CheckpointError
from paperlab.shared.config import ConfigError, load_config
from paperlab.vae import evaluate as evaluate_mod
from paperlab.vae import report
from paperlab.vae import train as train_mod
from paperlab.vae.config import Config
from paperlab.vae.data import load_digits_data
from paperlab.vae.prior import train_prior
from paperlab.vae.train import train

TINY = dict(
    dataset="digits",
    channels=[16, 16],
    latent_dim=4,
    codebook_size=16,
    code_dim=4,
    batch_size=32,
    total_steps=30,
    eval_every=15,
    eval_max_images=100,
    checkpoint_every=10,
    lr=2e-3,
    prior_steps=30,
    prior_dim=16,
    prior_layers=1,
    prior_heads=2,
    prior_batch_size=32,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits_data(16)


def _cfg(tmp_path, name="run", **kw) -> Config:
    return Config(**{**TINY, "run_dir": str(tmp_path / name), **kw})


def _argv(tmp_path, name="run", **kw) -> list[str]:
    def fmt(v):
        return "[" + ",".join(map(str, v)) + "]" if isinstance(v, list) else str(v)

    return [f"{k}={fmt(v)}" for k, v in {**TINY, "run_dir": str(tmp_path / name), **kw}.items()]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _weights(path: Path) -> dict:
    return torch.load(path, weights_only=False)["model" if path.name == "model.pt" else "prior"]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_fresh_run_over_a_checkpoint_is_refused_and_keeps_its_history(tmp_path, digits):
    cfg = _cfg(tmp_path)
    train(cfg, stop_after_steps=20, data=digits)
    before = (tmp_path / "run" / "metrics.jsonl").read_text()
    with pytest.raises(ConfigError, match="already holds a run .*--resume"):
        train(cfg, data=digits)
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == before
    # resuming a finished run is a no-op that returns its summary and leaves its files alone
    done = train(cfg, resume=True, data=digits)
    assert done["finished"] and done["steps"] == 30
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert train(cfg, resume=True, data=digits) == done
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == metrics


def test_sigterm_saves_a_whole_step_and_resume_before_the_overrides_ends_like_a_whole_run(
    tmp_path, digits, monkeypatch, capsys
):
    train(_cfg(tmp_path, "full"), data=digits)
    real = train_mod.train_step

    def killed_during_step_13(model, optimizer, x, cfg, step):
        if step == 13:
            os.kill(os.getpid(), signal.SIGTERM)  # the loop finishes this step, saves and returns
        return real(model, optimizer, x, cfg, step)

    monkeypatch.setattr(train_mod, "train_step", killed_during_step_13)
    monkeypatch.setattr(train_mod, "load_data", lambda cfg: digits)
    argv = _argv(tmp_path, "part")
    with pytest.raises(SystemExit) as e:
        train_mod.main(argv)
    assert e.value.code == 130
    state = torch.load(tmp_path / "part" / "checkpoints" / "last.pt", weights_only=False)
    assert state["loop"]["step"] == 13  # between two scheduled checkpoints (10, 20)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:  # a fresh run over it: one line, exit 2
        train_mod.main(argv)
    assert e.value.code == 2 and "already holds a run" in _error_line(capsys)
    monkeypatch.setattr(train_mod, "train_step", real)
    train_mod.main(["--resume", *argv])  # --resume before the key=value overrides
    assert f"resuming {tmp_path / 'part'} from step 13" in capsys.readouterr().out
    assert _same(_weights(tmp_path / "full" / "model.pt"), _weights(tmp_path / "part" / "model.pt"))


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    for argv, expect in (
        (["total_steps=0"], "total_steps must be positive, got 0"),
        (["latent_dims=3"], "unknown config key 'latent_dims'"),
        (["--resume", f"run_dir={tmp_path / 'none'}"], "nothing to resume"),
    ):
        with pytest.raises(SystemExit) as e:
            train_mod.main(argv)
        assert e.value.code == 2 and expect in _error_line(capsys)
    run = tmp_path / "run"
    run.mkdir()
    for content, expect in (
        (b"not a checkpoint at all", "is not a readable checkpoint"),
        ({"config": {}, "model": {}}, "is not a VAE checkpoint (no 'meta')"),  # e.g. another project's
        (
            {"meta": {"config": {"latent_dims": 3}, "image_shape": [1, 16, 16], "dataset": "digits"}, "model": {}},
            "unknown config key 'latent_dims' (from checkpoint",
        ),  # never filtered out silently
    ):
        if isinstance(content, bytes):
            (run / "model.pt").write_bytes(content)
        else:
            torch.save(content, run / "model.pt")
        with pytest.raises(SystemExit) as e:
            evaluate_mod.main([str(run), "--iw-samples", "0"])
        assert e.value.code == 2 and expect in _error_line(capsys)
    with pytest.raises(SystemExit) as e:
        evaluate_mod.main([str(tmp_path / "nothing")])
    assert e.value.code == 2 and "no model at" in _error_line(capsys)


def test_corrupt_training_checkpoint_is_refused_on_resume(tmp_path, digits):
    cfg = _cfg(tmp_path)
    train(cfg, stop_after_steps=10, data=digits)
    (tmp_path / "run" / "checkpoints" / "last.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        train(cfg, resume=True, data=digits)


def test_code_prior_resumes_exactly_and_a_fresh_prior_over_one_is_refused(tmp_path, digits):
    train(_cfg(tmp_path, "a", model="vqvae", total_steps=20), data=digits)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    full = train_prior(tmp_path / "a", data=digits)
    part = train_prior(tmp_path / "b", data=digits, stop_after_steps=15)
    assert part["steps"] == 15 and not part["finished"]
    with pytest.raises(ConfigError, match="already has a code prior"):
        train_prior(tmp_path / "b", data=digits)
    with pytest.raises(ConfigError, match="prior_steps: 30 in checkpoint .*, 40 now"):
        train_prior(tmp_path / "b", ["prior_steps=40"], data=digits, resume=True)
    done = train_prior(tmp_path / "b", data=digits, resume=True)
    assert done["steps"] == 30 and done["finished"] and done["test_nll"] == full["test_nll"]
    assert _same(_weights(tmp_path / "a" / "prior.pt"), _weights(tmp_path / "b" / "prior.pt"))
    # what the prior ran with is recorded beside it, and the report checks that the records agree
    assert yaml.safe_load((tmp_path / "b" / "prior" / "config.yaml").read_text())["prior_steps"] == 30
    assert report.check_prior_record(tmp_path / "b")["steps"] == 30
    (tmp_path / "b" / "prior" / "config.yaml").write_text("prior_steps: 600\n")
    with pytest.raises(ValueError, match="config prior_steps = 600"):
        report.check_prior_record(tmp_path / "b")


def test_prior_overrides_are_recorded_where_the_run_config_differs(tmp_path, digits):
    train(_cfg(tmp_path, model="vqvae", total_steps=10), data=digits)
    s = train_prior(tmp_path / "run", ["prior_steps=12"], data=digits)
    assert s["steps"] == s["prior_steps"] == 12
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["prior_steps"] == 30  # the VQ-VAE's
    assert report.prior_config(tmp_path / "run")["prior_steps"] == 12  # what the prior ran with
    assert report.check_prior_record(tmp_path / "run")["steps"] == 12


def test_every_preset_reaches_a_checkpoint():
    presets = sorted((Path(__file__).parents[3] / "configs" / "vae").glob("*.yaml"))
    assert presets
    for preset in presets:
        cfg = load_config(Config, preset)
        assert cfg.checkpoint_every <= cfg.total_steps, preset.name
        if cfg.model == "vqvae":
            assert cfg.checkpoint_every <= cfg.prior_steps, preset.name


def test_committed_results_agree_with_their_records():
    results = Path(__file__).parents[1] / "results"
    for run in sorted(results.glob("*/vqvae-seed*")):
        assert report.check_prior_record(run) is not None, run


def test_report_reads_old_and_new_summary_keys_and_collects_only_finished_runs(tmp_path):
    assert report._summary_get({"step": 400, "train_seconds": 1.5}, "steps", "step") == 400
    assert report._summary_get({"steps": 30, "step": 1}, "steps", "step") == 30
    for name, finished in (("done", True), ("stopped", False)):
        (tmp_path / "runs" / "digits" / name).mkdir(parents=True)
        (tmp_path / "runs" / "digits" / name / "summary.json").write_text(json.dumps({"finished": finished}))
    assert report.collect(tmp_path / "runs", tmp_path / "results") == 1
    assert (tmp_path / "results" / "digits" / "done" / "summary.json").exists()
    assert not (tmp_path / "results" / "digits" / "stopped").exists()


def test_report_regenerates_the_committed_blocks_unchanged_and_writes_the_headline(tmp_path, capsys):
    project = Path(__file__).parents[1]
    shutil.copytree(project / "results", tmp_path / "results")
    for name in ("README.md", "REPORT.md"):
        shutil.copy(project / name, tmp_path / name)
    index = tmp_path / "index.md"
    index.write_text("| vae | ... | <!-- headline:vae --> old |\n")
    report.main(
        [
            "--results",
            str(tmp_path / "results"),
            "--readme",
            str(tmp_path / "README.md"),
            str(tmp_path / "REPORT.md"),
            "--index",
            str(index),
        ]
    )
    for name in ("README.md", "REPORT.md"):
        assert (tmp_path / name).read_text() == (project / name).read_text(), name
    assert "MNIST VAE test −ELBO" in index.read_text() and "one seed" in index.read_text()
    (tmp_path / "README.md").write_text("no markers\n")
    (tmp_path / "REPORT.md").write_text("no markers\n")
    with pytest.raises(SystemExit) as e:  # a block that lands nowhere is an error, not a silent no-op
        report.main(["--results", str(tmp_path / "results"), "--readme", str(tmp_path / "README.md")])
    assert e.value.code == 2 and "report blocks with no markers" in capsys.readouterr().err
