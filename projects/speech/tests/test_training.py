"""Training: a network overfits a tiny batch, a short run beats chance, resume equals an uninterrupted
run, and the run contract's refusals (fresh run over a checkpoint, changed seed, other features)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from paperlab.shared.checkpoint import CheckpointError
from paperlab.shared.config import ConfigError
from paperlab.speech import evaluate as evaluate_mod
from paperlab.speech import train as train_mod
from paperlab.speech.checkpoint import load_fold_model
from paperlab.speech.config import Config
from paperlab.speech.model import CNN, CRNN

TINY = dict(
    dataset="synthetic",
    channels=[8, 16],
    epochs=2,
    crop_seconds=1.0,
    batch_size=16,
    only_folds=[0, 1],
    tensorboard=False,
)


def _cfg(tmp_path, name="run", **kw):
    return Config(**{**TINY, "run_dir": str(tmp_path / name), **kw})


@pytest.mark.parametrize("net", [CNN, CRNN])
def test_network_overfits_a_tiny_batch(net):
    torch.manual_seed(0)
    x = torch.randn(8, 32, 40)
    mask = torch.ones(8, 40, dtype=torch.bool)
    mask[4:, 30:] = False
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    model = net(32, 4, (8, 16), dropout=0.0) if net is CNN else net(32, 4, (8, 16), hidden=16, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(x, mask), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert (model(x, mask).argmax(1) == y).all()


def test_pooling_ignores_padded_frames():
    """The mask governs the pooling: frames marked as padding do not enter the average."""
    torch.manual_seed(0)
    model = CNN(32, 4, (8, 16)).eval()
    x = torch.randn(1, 32, 32)
    m = torch.tensor([[True] * 16 + [False] * 16])
    garbage = x.clone()
    garbage[:, :, 24:] = 100.0  # beyond the receptive field of the real frames after two 2x pools
    torch.testing.assert_close(model(x, m), model(garbage, m))


def test_short_run_beats_chance_and_writes_the_run(tmp_path):
    s = train_mod.train(_cfg(tmp_path, epochs=4))
    assert s["finished"] and s["folds_done"] == 2
    assert s["accuracy_mean"] > 0.5  # 4 classes: chance is 0.25
    ev = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert {"accuracy_mean", "uar_mean", "pooled", "folds"} <= set(ev)
    assert (tmp_path / "run" / "fold1.pt").is_file()


def test_resume_equals_an_uninterrupted_run(tmp_path):
    train_mod.train(_cfg(tmp_path, "full"))
    part = train_mod.train(_cfg(tmp_path, "part"), stop_after_epochs=3)  # stops inside fold 1
    assert not part["finished"]
    resumed = train_mod.train(_cfg(tmp_path, "part"), resume=True)
    assert resumed["finished"]
    a = json.loads((tmp_path / "full" / "eval.json").read_text())
    b = json.loads((tmp_path / "part" / "eval.json").read_text())
    for fa, fb in zip(a["folds"], b["folds"], strict=True):
        assert fa["y_pred"] == fb["y_pred"] and fa["p_pred"] == fb["p_pred"]
    la = [json.loads(r) for r in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(r) for r in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in la] == [r["loss"] for r in lb]


def test_run_directory_guards(tmp_path):
    train_mod.train(_cfg(tmp_path, only_folds=[0], epochs=1), stop_after_epochs=1)
    with pytest.raises(ConfigError, match="already holds a run"):
        train_mod.train(_cfg(tmp_path, only_folds=[0], epochs=1))
    with pytest.raises(ConfigError, match="seed"):
        train_mod.train(_cfg(tmp_path, only_folds=[0], epochs=1, seed=2), resume=True)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train_mod.train(_cfg(tmp_path, "empty"), resume=True)


def test_evaluate_reproduces_eval_and_refuses_other_features(tmp_path):
    cfg = _cfg(tmp_path, only_folds=[0], epochs=1)
    train_mod.train(cfg)
    before = json.loads((tmp_path / "run" / "eval.json").read_text())
    ev = evaluate_mod._main([str(tmp_path / "run")])
    assert ev["folds"][0]["y_pred"] == before["folds"][0]["y_pred"]
    with pytest.raises(ValueError, match="sample_rate: 16000 in checkpoint .*22050 here"):
        load_fold_model(tmp_path / "run" / "fold0.pt", {**cfg.feature_params(), "sample_rate": 22050})
    with pytest.raises(ValueError, match="trained on other features"):
        evaluate_mod._main([str(tmp_path / "run"), "n_mels=32"])
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_fold_model(tmp_path / "bad.pt")


def test_svm_baseline_and_cli_errors(tmp_path, capsys):
    s = train_mod.train(_cfg(tmp_path, model="svm"))
    assert s["finished"] and s["accuracy_mean"] > 0.5
    for argv, msg in (
        (["nonsense_key=1"], "unknown config key 'nonsense_key'"),
        (["dataset=aesdd"], "needs data_dir"),
        (
            [
                f"data_dir={tmp_path / 'none'}",
                f"run_dir={tmp_path / 'x'}",
                f"cache_dir={tmp_path / 'c'}",
                "dataset=aesdd",
            ],
            "no aesdd folder",
        ),
    ):
        with pytest.raises(SystemExit) as e:
            train_mod.main(argv)
        assert e.value.code == 2 and msg in capsys.readouterr().err


def test_class_weights_balance_the_classes():
    w = train_mod.class_weights(np.array([0, 0, 0, 1]), 2).numpy()
    assert w[1] == pytest.approx(3 * w[0]) and (w * np.array([3, 1])).sum() == pytest.approx(4)
