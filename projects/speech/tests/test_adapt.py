"""Test-time BatchNorm adaptation (adapt_bn): the statistics become exactly those of the held-out speaker's
windows, nothing else changes, speakers are adapted one at a time, and a run evaluated with it agrees
with the training-time evaluation."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from paperlab.speech import train as train_mod
from paperlab.speech.config import Config
from paperlab.speech.ensemble import ensemble
from paperlab.speech.evaluate import _windows, adapt_batchnorm, predict_fold
from paperlab.speech.model import build_model

TINY = dict(dataset="synthetic", channels=[8, 16], epochs=2, crop_seconds=1.0, batch_size=16, tensorboard=False)


def _inputs(feats, idx, T, mu, sd):
    from paperlab.speech.augment import crop_batch

    _, offs, lens, starts = _windows(feats, idx, T)
    frames = torch.as_tensor(feats.frames, dtype=torch.float32)
    x, mask = crop_batch(frames, offs, lens, T, starts)
    return frames, ((x - mu[None, :, None]) / sd[None, :, None]) * mask[:, None, :], mask


@pytest.mark.parametrize("model_name", ["cnn", "crnn"])
def test_adapted_statistics_are_those_of_the_speakers_windows_and_nothing_else_changes(synthetic_features, model_name):
    f = synthetic_features
    cfg = Config(**TINY, model=model_name)
    torch.manual_seed(0)
    model = build_model(cfg, len(f.emotions)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mu, sd = torch.full((cfg.n_mels,), -40.0), torch.full((cfg.n_mels,), 15.0)
    idx = np.flatnonzero(f.speakers == f.speakers[0])
    frames, x, mask = _inputs(f, idx, cfg.crop_frames, mu, sd)
    adapted = adapt_batchnorm(model, frames, f, idx, mu, sd, cfg.crop_frames)
    for k, v in model.state_dict().items():  # the original is untouched
        assert torch.equal(v, before[k]), k
    new = adapted.state_dict()
    for k, v in before.items():  # weights and biases as trained; only the BatchNorm buffers move
        if "running_" in k or "num_batches" in k:
            continue
        assert torch.equal(new[k], v), k
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    first_bn = next(m for m in adapted.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with torch.no_grad():
        h = first_conv(x[:, None])
    torch.testing.assert_close(first_bn.running_mean, h.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(first_bn.running_var, h.var(dim=(0, 2, 3), unbiased=True), rtol=1e-4, atol=1e-5)
    assert not torch.equal(first_bn.running_mean, before[next(k for k in before if k.endswith("running_mean"))])
    assert not adapted.training


def test_each_speaker_is_adapted_on_their_own_clips_only(synthetic_features):
    f = synthetic_features
    cfg = Config(**TINY)
    torch.manual_seed(0)
    model = build_model(cfg, len(f.emotions)).eval()
    mu, sd = torch.full((cfg.n_mels,), -40.0), torch.full((cfg.n_mels,), 15.0)
    s0, s1 = np.unique(f.speakers)[:2]
    idx = np.flatnonzero(np.isin(f.speakers, [s0, s1]))
    frames = torch.as_tensor(f.frames, dtype=torch.float32)
    p = predict_fold(model, frames, f, idx, mu, sd, cfg.crop_frames, adapt_bn=True)
    mine = f.speakers[idx] == s0
    alone = predict_fold(model, frames, f, idx[mine], mu, sd, cfg.crop_frames, adapt_bn=True)
    np.testing.assert_allclose(p[mine], alone, atol=1e-6)  # speaker s1's clips do not move s0's statistics
    changed = f.frames.astype(np.float32)
    for i in idx[~mine]:
        changed[:, f.offsets[i] : f.offsets[i] + f.lengths[i]] += 9.0
    g = replace(f, frames=changed)
    q = predict_fold(model, torch.as_tensor(changed), g, idx, mu, sd, cfg.crop_frames, adapt_bn=True)
    np.testing.assert_allclose(q[mine], p[mine], atol=1e-6)
    plain = predict_fold(model, frames, f, idx, mu, sd, cfg.crop_frames)
    assert not np.allclose(plain, p)  # the adaptation does change the predictions
    # the control (statistics of training clips) is not transductive: a test clip's prediction is the same
    # whether it is classified alone or with the others
    train = (frames, f, np.flatnonzero(~np.isin(f.speakers, [s0, s1])))
    ctrl = predict_fold(model, frames, f, idx, mu, sd, cfg.crop_frames, True, "train", train)
    one = predict_fold(model, frames, f, idx[:1], mu, sd, cfg.crop_frames, True, "train", train)
    np.testing.assert_allclose(ctrl[:1], one, atol=1e-6)
    assert not np.allclose(ctrl, p)
    with pytest.raises(ValueError, match="adapt_bn_source must be one of"):
        Config(adapt_bn_source="test")


def test_adapt_bn_run_equals_the_adapted_re_evaluation_and_svm_is_refused(tmp_path):
    plain = tmp_path / "plain"
    train_mod.train(Config(**TINY, only_folds=[0], run_dir=str(plain)))
    adapted = Config(**TINY, only_folds=[0], run_dir=str(tmp_path / "adapted"), adapt_bn=True)
    train_mod.train(adapted)  # the same training (same seed), evaluated with adaptation
    ens = ensemble([plain], tmp_path / "re", ["adapt_bn=true"])
    ev_a = json.loads((tmp_path / "adapted" / "eval.json").read_text())
    ev_r = json.loads((tmp_path / "re" / "eval.json").read_text())
    assert [f["y_pred"] for f in ev_r["folds"]] == [f["y_pred"] for f in ev_a["folds"]]
    assert ens["overrides"] == ["adapt_bn=true"] and ev_r["config"]["adapt_bn"] is True
    assert "adapt_bn: true" in (tmp_path / "re" / "config.yaml").read_text()
    with pytest.raises(ValueError, match="adapt_bn needs a network"):
        Config(model="svm", adapt_bn=True)


def test_speaker_batches_hold_one_speaker_each_and_cover_every_clip_once():
    from paperlab.speech.train import batches

    speakers = np.repeat([1, 2, 3, 4], [30, 45, 7, 20])
    train_idx = np.flatnonzero(speakers != 3)
    rng = np.random.default_rng(0)
    out = batches(train_idx, speakers, 16, True, rng)
    assert all(len(set(speakers[b])) == 1 and len(b) <= 16 for b in out)
    assert sorted(np.concatenate(out).tolist()) == train_idx.tolist()
    order = [int(speakers[b[0]]) for b in out]
    assert order != sorted(order)  # the batches of different speakers are interleaved, not in runs
    mixed = batches(train_idx, speakers, 16, False, np.random.default_rng(0))
    assert sorted(np.concatenate(mixed).tolist()) == train_idx.tolist()
    assert any(len(set(speakers[b])) > 1 for b in mixed)
