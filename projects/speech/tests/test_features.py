"""Log-mels against a direct computation, the feature cache, and bad input (files, names, folders)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from paperlab.speech import features as F
from paperlab.speech.config import Config
from paperlab.speech.data import list_clips, parse_aesdd_name, parse_ravdess_name

PARAMS = Config().feature_params()


def _tone(freq, seconds=1.0, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    return (0.1 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_logmel_of_a_tone_equals_a_direct_stft_and_peaks_in_the_right_band():
    y = _tone(1000.0)
    X = F.logmel(y, PARAMS)
    n_fft, hop = PARAMS["n_fft"], PARAMS["hop_length"]
    assert X.shape == (PARAMS["n_mels"], 1 + len(y) // hop)
    # direct: centred frames (zero padding of n_fft/2 each side), periodic Hann, |rfft|^2, mel filterbank
    padded = np.pad(y, n_fft // 2)
    w = scipy.signal.get_window("hann", n_fft, fftbins=True)
    frames = np.stack([padded[i * hop : i * hop + n_fft] * w for i in range(X.shape[1])], axis=1)
    power = np.abs(np.fft.rfft(frames, axis=0)) ** 2
    direct = 10 * np.log10(np.maximum(F.mel_filterbank(PARAMS) @ power, 1e-10))
    np.testing.assert_allclose(X, direct, atol=1e-3)
    centres = F.mel_frequencies(PARAMS)
    mid = X[:, 5:-5].mean(axis=1)  # frames away from the edges
    assert abs(int(mid.argmax()) - int(np.abs(centres - 1000.0).argmin())) <= 1


def test_logmel_is_deterministic_and_noise_is_broadband():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(8000).astype(np.float32) * 0.1
    a, b = F.logmel(y, PARAMS), F.logmel(y.copy(), PARAMS)
    np.testing.assert_array_equal(a, b)
    assert np.ptp(a[:, 3:-3].mean(axis=1)) < 10  # white noise: no band far above the others


def test_quantized_cache_values_are_within_a_quarter_db():
    x = np.random.default_rng(0).uniform(-100, 20, (4, 50)).astype(np.float32)
    q, step = F.quantize(x)
    assert step == 0.5
    assert np.abs(F.dequantize(q, step).astype(np.float32) - x).max() <= 0.25 + 1e-3


def test_cache_is_reused_and_invalidated_when_a_parameter_changes(tiny_aesdd, tmp_path, monkeypatch):
    cfg = Config(dataset="aesdd", data_dir=str(tiny_aesdd), cache_dir=str(tmp_path / "cache"), run_dir=str(tmp_path))
    f1 = F.corpus_features("aesdd", cfg.data_dir, cfg)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    calls = []
    real = F.compute_features
    monkeypatch.setattr(F, "compute_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    f2 = F.corpus_features("aesdd", cfg.data_dir, cfg)  # same parameters: read from the cache
    assert calls == [] and f2.names == f1.names
    np.testing.assert_array_equal(f1.frames, f2.frames)
    cfg2 = Config(**{**cfg.__dict__, "n_mels": 32})
    f3 = F.corpus_features("aesdd", cfg.data_dir, cfg2)
    assert calls == [1] and f3.frames.shape[0] == 32
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_empty_file_is_skipped_counted_and_named(tiny_aesdd, tmp_path, capsys):
    cfg = Config(dataset="aesdd", data_dir=str(tiny_aesdd), cache_dir=str(tmp_path / "c"), run_dir=str(tmp_path))
    f = F.corpus_features("aesdd", cfg.data_dir, cfg)
    assert f.skipped == ["sadness/s05 (3).wav"]
    assert len(f) == 10
    assert "skipped 1 unreadable or empty file(s): sadness/s05 (3).wav" in capsys.readouterr().err


def test_file_names_parse_and_unknown_emotion_codes_are_named(tiny_aesdd):
    from pathlib import Path

    assert parse_aesdd_name(Path("a06 (5)b.wav")) == ("anger", 5)
    assert parse_aesdd_name(Path("d03 (01).flac")) == ("disgust", 1)
    assert parse_ravdess_name(Path("03-01-05-02-01-01-12.wav")) == ("anger", 12)
    with pytest.raises(ValueError, match=r"x01 \(1\).wav.*unknown AESDD emotion code 'x'"):
        parse_aesdd_name(Path("x01 (1).wav"))
    with pytest.raises(ValueError, match=r"03-01-09-01-01-01-01.wav.*unknown RAVDESS emotion code '09'"):
        parse_ravdess_name(Path("03-01-09-01-01-01-01.wav"))
    (tiny_aesdd / "anger" / "q02 (1).wav").write_bytes(b"")
    with pytest.raises(ValueError, match=r"q02 \(1\).wav"):
        list_clips("aesdd", tiny_aesdd)


def test_missing_folders_are_named(tmp_path):
    (tmp_path / "anger").mkdir()
    with pytest.raises(FileNotFoundError, match="no folder disgust/, fear/, happiness/, sadness/"):
        list_clips("aesdd", tmp_path)
    with pytest.raises(FileNotFoundError, match="no Actor_XX/ folders"):
        list_clips("ravdess", tmp_path)
    with pytest.raises(FileNotFoundError, match="no aesdd folder at"):
        list_clips("aesdd", tmp_path / "nope")
