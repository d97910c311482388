"""Transfer (init_from) and the seed ensemble: the source weights start every fold, a source that could
leak the held-out speakers or does not fit is refused, and the ensemble averages its members' softmax."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from paperlab.speech import train as train_mod
from paperlab.speech.checkpoint import load_fold_model, make_meta, save_fold_model
from paperlab.speech.config import Config
from paperlab.speech.data import emotions_of
from paperlab.speech.ensemble import ensemble
from paperlab.speech.evaluate import run_probs
from paperlab.speech.model import build_model

TINY = dict(
    dataset="synthetic",
    channels=[8, 16],
    epochs=1,
    crop_seconds=1.0,
    batch_size=16,
    only_folds=[0, 1],
    tensorboard=False,
)


@pytest.fixture(autouse=True)
def _reuse_synthetic_features(monkeypatch, synthetic_features):
    """Every run here uses the default features of the synthetic set: compute them once per session."""
    from paperlab.speech import protocol

    real = protocol.corpus_features

    def cached(dataset, data_dir, cfg):
        same = cfg.feature_params() == Config().feature_params()
        return synthetic_features if dataset == "synthetic" and same else real(dataset, data_dir, cfg)

    monkeypatch.setattr(protocol, "corpus_features", cached)


def _cfg(tmp_path, name="run", **kw):
    return Config(**{**TINY, "run_dir": str(tmp_path / name), **kw})


def _source(tmp_path, emotions=None, **kw) -> str:
    """A fold model "pretrained on another corpus" (its config says ravdess), with random weights."""
    src = Config(**{**TINY, "dataset": "ravdess", "data_dir": "elsewhere", **kw})
    emotions = list(emotions or emotions_of("synthetic"))
    torch.manual_seed(123)
    model = build_model(src, len(emotions))
    path = tmp_path / "source" / "fold0.pt"
    path.parent.mkdir(exist_ok=True)
    save_fold_model(path, make_meta(src, emotions), model, torch.zeros(src.n_mels), torch.ones(src.n_mels))
    return str(path.parent)  # a run directory: its fold0.pt is used


def test_init_from_starts_every_fold_from_the_source_weights(tmp_path, monkeypatch):
    source = _source(tmp_path)
    # no training step: what each fold saves is exactly what it started from
    monkeypatch.setattr(train_mod, "train_epoch", lambda *a, **k: {"loss": 0.0, "train_acc": 0.0})
    train_mod.train(_cfg(tmp_path, init_from=source))
    want = torch.load(f"{source}/fold0.pt", weights_only=False)["model"]
    for k in (0, 1):
        got = load_fold_model(tmp_path / "run" / f"fold{k}.pt")[0].state_dict()
        for name, w in want.items():
            torch.testing.assert_close(got[name], w)
    # without init_from the folds start elsewhere
    train_mod.train(_cfg(tmp_path, "scratch", only_folds=[0]))
    scratch = load_fold_model(tmp_path / "scratch" / "fold0.pt")[0].state_dict()
    assert not torch.equal(scratch["head.weight"], want["head.weight"])


def test_transfer_run_trains_from_the_source(tmp_path):
    """A real short run from a pretrained source finishes and beats chance (4 classes: 0.25)."""
    train_mod.train(_cfg(tmp_path, "pre", epochs=3, only_folds=[0]))
    # relabel the pretraining run as another corpus's (synthetic is the only offline corpus)
    state = torch.load(tmp_path / "pre" / "fold0.pt", weights_only=False)
    state["meta"]["config"]["dataset"] = "ravdess"
    torch.save(state, tmp_path / "pre" / "fold0.pt")
    s = train_mod.train(_cfg(tmp_path, "ft", epochs=2, only_folds=[1], init_from=str(tmp_path / "pre")))
    assert s["finished"] and s["accuracy_mean"] > 0.5


@pytest.mark.parametrize(
    ("source_kw", "emotions", "msg"),
    [
        ({"dataset": "synthetic"}, None, "trained on synthetic itself: its weights have heard the held-out"),
        ({"n_mels": 32}, None, "other features .*n_mels"),
        ({"channels": [8, 32]}, None, "differs: channels"),
        ({"speaker_norm": "mean"}, None, "differs: speaker_norm"),
        ({}, ["a", "b", "c", "d", "e"], "other head"),
    ],
)
def test_init_from_refuses_what_does_not_fit(tmp_path, source_kw, emotions, msg):
    with pytest.raises(ValueError, match=msg):
        train_mod.train(_cfg(tmp_path, init_from=_source(tmp_path, emotions, **source_kw)))


def test_init_from_missing_source_and_svm_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="init_from: no .*nothing-here .train the source run first"):
        train_mod.train(_cfg(tmp_path, init_from=str(tmp_path / "nothing-here")))
    (tmp_path / "nothing-here").mkdir()
    with pytest.raises(FileNotFoundError, match="init_from: no .*nothing-here/fold0.pt"):
        train_mod.train(_cfg(tmp_path, "b", init_from=str(tmp_path / "nothing-here")))
    with pytest.raises(ValueError, match="init_from needs a network"):
        Config(model="svm", init_from="x")


def test_ensemble_averages_the_members_softmax(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train_mod.train(_cfg(tmp_path, "a", seed=1, only_folds=[0]))
    train_mod.train(_cfg(tmp_path, "b", seed=2, only_folds=[0]))
    one = ensemble([a], tmp_path / "ens1")
    ev_a = json.loads((a / "eval.json").read_text())
    ev_1 = json.loads((tmp_path / "ens1" / "eval.json").read_text())
    assert one["accuracy_mean"] == pytest.approx(ev_a["accuracy_mean"])
    assert [f["y_pred"] for f in ev_1["folds"]] == [f["y_pred"] for f in ev_a["folds"]]
    ensemble([a, b], tmp_path / "ens2")
    ev_2 = json.loads((tmp_path / "ens2" / "eval.json").read_text())
    pa, pb = run_probs(a)[3], run_probs(b)[3]
    for k, f in enumerate(ev_2["folds"]):
        mean = (pa[k] + pb[k]) / 2
        assert f["y_pred"] == mean.argmax(1).tolist()
        np.testing.assert_allclose(f["p_pred"], mean.max(1), atol=1e-4)
    assert json.loads((tmp_path / "ens2" / "summary.json").read_text())["seeds"] == [1, 2]


def test_ensemble_refuses_members_of_another_protocol(tmp_path):
    train_mod.train(_cfg(tmp_path, "a", only_folds=[0]))
    train_mod.train(_cfg(tmp_path, "c", only_folds=[1]))
    with pytest.raises(ValueError, match="another protocol.*only_folds"):
        ensemble([tmp_path / "a", tmp_path / "c"], tmp_path / "ens")
