from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def write_tone(path, freq=440.0, seconds=1.0, sr=16000, amp=0.3):
    t = np.arange(int(seconds * sr)) / sr
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)


@pytest.fixture
def tiny_aesdd(tmp_path):
    """An AESDD-layout folder of generated tones: 5 emotions x 2 speakers, plus the release's empty file."""
    root = tmp_path / "aesdd"
    for e_i, emotion in enumerate(("anger", "disgust", "fear", "happiness", "sadness")):
        for spk in (1, 2):
            write_tone(root / emotion / f"{emotion[0]}01 ({spk}).wav", freq=200 + 150 * e_i + 20 * spk, seconds=0.5)
    sf.write(str(root / "sadness" / "s05 (3).wav"), np.zeros(0, dtype=np.float32), 44100)  # header only
    return root


@pytest.fixture(scope="session")
def synthetic_features():
    from paperlab.speech.config import Config
    from paperlab.speech.features import corpus_features

    return corpus_features("synthetic", "", Config())
