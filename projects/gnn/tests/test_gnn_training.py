"""End to end on the synthetic data: learning beats the mean, exact resume, refusals, evaluation, CLI errors."""

from __future__ import annotations

import json

import pytest
import torch

from paperlab.gnn.config import Config
from paperlab.gnn.data import Splits, load_data
from paperlab.gnn.evaluate import evaluate_run
from paperlab.gnn.train import main, train
from paperlab.shared.config import ConfigError


def _cfg(tmp_path, name="run", **kw) -> Config:
    base = dict(
        model="gine",
        dataset="synthetic",
        synthetic_graphs=240,
        hidden=32,
        layers=2,
        epochs=3,
        batch_size=32,
        run_dir=str(tmp_path / name),
        checkpoint_every=4,
    )
    return Config(**{**base, **kw})


def _data(cfg):
    d = load_data(cfg)
    return Splits(list(d.train), list(d.val), list(d.test))


def test_short_training_beats_predicting_the_mean(tmp_path):
    cfg = _cfg(tmp_path, synthetic_graphs=600, epochs=8, hidden=48)
    summary = train(cfg)
    assert summary["finished"]
    assert summary["test_mae"] < 0.6 * summary["test_mae_predict_train_mean"]
    # the saved model evaluates to the same test MAE
    ev = evaluate_run(cfg.run_dir)
    assert ev["mae"] == pytest.approx(summary["test_mae"], abs=1e-6)
    rows = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert [r["epoch"] for r in rows if "epoch" in r] == list(range(1, 9))


@pytest.mark.parametrize("model", ["gine", "gt", "gtn", "gps"])
def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path, model):
    full = train(_cfg(tmp_path, "full", model=model), data=_data(_cfg(tmp_path, model=model)))
    cfg = _cfg(tmp_path, "split", model=model)
    part = train(cfg, stop_after_steps=5, data=_data(cfg))  # mid-epoch (6 steps per epoch)
    assert not part["finished"] and part["steps"] == 5
    resumed = train(cfg, resume=True, data=_data(cfg))
    assert resumed["steps"] == full["steps"]
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "split" / "model.pt", weights_only=False)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed["test_mae"] == full["test_mae"]


def test_fresh_run_over_a_checkpoint_and_changed_seed_are_refused(tmp_path):
    cfg = _cfg(tmp_path, epochs=1)
    train(cfg, stop_after_steps=2)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(cfg)
    with pytest.raises(ConfigError, match="seed"):
        train(_cfg(tmp_path, epochs=1, seed=7), resume=True)


def test_cli_errors_are_one_line_with_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["hidden_size=3"])
    assert e.value.code == 2 and "unknown config key 'hidden_size'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([f"run_dir={tmp_path}/x", "dataset=pyg", f"data_dir={tmp_path}/none"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "raw/train.pickle" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as e:
        main(["pe=sin"])
    assert e.value.code == 2 and "lap, rwse" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["model=gat"])
    assert e.value.code == 2 and "gcn, gin, gine, gatedgcn, gt, gtn, gps" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["model=gps", "hidden=50", "heads=4"])
    assert e.value.code == 2 and "divisible by heads" in capsys.readouterr().err
