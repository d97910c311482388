"""The two corpora, their file names, reading and preprocessing audio, and speaker-independent folds.

    AESDD    <root>/{anger,disgust,fear,happiness,sadness}/xAA (B)[take].{wav,flac}
             x = emotion letter, AA = utterance 01-20, B = speaker 1-6 ("01" == 1)
    RAVDESS  <root>/Actor_XX/03-01-EE-II-SS-RR-AA.{wav,flac}, EE = emotion 01-08, AA = actor 01-24
    synthetic  generated in memory: 4 "emotions" made of tones and noise, 6 "speakers" (tests, offline default)

Unreadable or empty files are skipped, counted and named (the original AESDD release has one: a
36-byte ``sadness/s05 (3).wav``); an unknown emotion code in a file name is an error that names the file.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

AESDD_EMOTIONS = ("anger", "disgust", "fear", "happiness", "sadness")
AESDD_LETTERS = {e[0]: e for e in AESDD_EMOTIONS}
RAVDESS_EMOTIONS = ("neutral", "calm", "happiness", "sadness", "anger", "fear", "disgust", "surprise")
SYNTHETIC_EMOTIONS = ("low", "high", "tremolo", "noise")
AUDIO_SUFFIXES = (".wav", ".flac")
AESDD_NAME = re.compile(r"^(?P<emo>[a-z])(?P<utt>\d{2}) \((?P<spk>\d+)\)(?P<take>[a-z]?)$")
RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(?P<emo>\d{2})-(\d{2})-(\d{2})-(\d{2})-(?P<actor>\d{2})$")
WHERE = {
    "aesdd": "AESDD: https://dagshub.com/kingabzpro/Acted-Emotional-Speech-Dynamic-Database (see data/aesdd/README.md)",
    "ravdess": "RAVDESS speech: https://zenodo.org/record/1188976, Audio_Speech_Actors_01-24.zip",
}


@dataclass
class ClipList:
    """The labelled files of a corpus: parallel lists, plus the files skipped as unreadable/empty."""

    paths: list[Path]
    labels: list[int]
    speakers: list[int]
    emotions: tuple[str, ...]
    skipped: list[str] = field(default_factory=list)


def emotions_of(dataset: str) -> tuple[str, ...]:
    return {"aesdd": AESDD_EMOTIONS, "ravdess": RAVDESS_EMOTIONS, "synthetic": SYNTHETIC_EMOTIONS}[dataset]


def parse_aesdd_name(path: Path) -> tuple[str, int]:
    """(emotion, speaker) of an AESDD file name like ``a06 (5)b`` or ``d03 (01)``."""
    m = AESDD_NAME.match(path.stem)
    if m is None:
        raise ValueError(f"{path}: not an AESDD file name (expected 'xAA (B)', e.g. 'a01 (1).wav')")
    if m["emo"] not in AESDD_LETTERS:
        raise ValueError(f"{path}: unknown AESDD emotion code {m['emo']!r} (known: {', '.join(AESDD_LETTERS)})")
    return AESDD_LETTERS[m["emo"]], int(m["spk"])


def parse_ravdess_name(path: Path) -> tuple[str, int]:
    """(emotion, actor) of a RAVDESS file name like ``03-01-05-02-01-01-12``."""
    m = RAVDESS_NAME.match(path.stem)
    if m is None:
        raise ValueError(f"{path}: not a RAVDESS file name (expected MM-VV-EE-II-SS-RR-AA, e.g. 03-01-05-01-01-01-01)")
    code = int(m["emo"])
    if not 1 <= code <= len(RAVDESS_EMOTIONS):
        raise ValueError(f"{path}: unknown RAVDESS emotion code {m['emo']!r} (known: 01-08)")
    return RAVDESS_EMOTIONS[code - 1], int(m["actor"])


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)


def list_clips(dataset: str, root: str | Path) -> ClipList:
    """Every labelled clip of ``dataset`` under ``root``, sorted by path (labels index ``emotions_of``)."""
    root = Path(root)
    emotions = emotions_of(dataset)
    if not root.is_dir():
        raise FileNotFoundError(f"no {dataset} folder at {root}; get it from {WHERE[dataset]}")
    entries: list[tuple[Path, str, int]] = []
    if dataset == "aesdd":
        missing = [e for e in AESDD_EMOTIONS if not (root / e).is_dir()]
        if missing:
            raise FileNotFoundError(
                f"{root} is not the AESDD layout: no folder {', '.join(m + '/' for m in missing)} "
                f"(expected {', '.join(e + '/' for e in AESDD_EMOTIONS)}); get it from {WHERE['aesdd']}"
            )
        for folder in AESDD_EMOTIONS:
            for p in _audio_files(root / folder):
                emotion, speaker = parse_aesdd_name(p)
                if emotion != folder:
                    raise ValueError(f"{p}: emotion code says {emotion} but the file is in {folder}/")
                entries.append((p, emotion, speaker))
    elif dataset == "ravdess":
        actors = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("Actor_"))
        if not actors:
            raise FileNotFoundError(
                f"{root} is not the RAVDESS layout: no Actor_XX/ folders; get it from {WHERE['ravdess']}"
            )
        for folder in actors:
            for p in _audio_files(folder):
                emotion, actor = parse_ravdess_name(p)
                entries.append((p, emotion, actor))
    else:
        raise ValueError(f"{dataset} has no files on disk (synthetic data is generated)")
    if not entries:
        raise FileNotFoundError(f"no .wav/.flac files under {root}")
    return ClipList(
        paths=[p for p, _, _ in entries],
        labels=[emotions.index(e) for _, e, _ in entries],
        speakers=[s for _, _, s in entries],
        emotions=emotions,
    )


def read_audio(path: Path) -> tuple[np.ndarray, int] | None:
    """Mono float32 samples and rate, or None when the file cannot be read or holds no audio."""
    import soundfile as sf

    try:
        y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:  # libsndfile raises several types for a broken header
        return None
    if y.shape[0] == 0:
        return None
    return y.mean(axis=1), int(sr)


def preprocess(y: np.ndarray, sr: int, sample_rate: int, top_db: float, target_rms_db: float) -> np.ndarray:
    """Resample to ``sample_rate``, trim leading/trailing silence (``top_db`` below the peak), set the RMS.

    Loudness normalisation is by RMS of the trimmed clip (not LUFS): every clip enters the features at
    ``target_rms_db`` dBFS, so level differences between recordings do not leak into the classes, and
    additive noise at a given SNR has a known level (``augment.add_noise``)."""
    import librosa

    y = np.asarray(y, dtype=np.float32)
    if sr != sample_rate:
        y = librosa.resample(y, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq").astype(np.float32)
    if top_db > 0:
        trimmed, _ = librosa.effects.trim(y, top_db=top_db, frame_length=1024, hop_length=256)
        if trimmed.size >= sample_rate // 10:  # keep the clip whole if trimming would leave < 100 ms
            y = trimmed
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    if rms > 0:
        y = y * (10 ** (target_rms_db / 20) / rms)
    return y.astype(np.float32)


def synthetic_clips(
    n_speakers: int = 6, per_class: int = 8, seconds: float = 1.5, sample_rate: int = 16000, seed: int = 0
) -> tuple[list[np.ndarray], list[int], list[int]]:
    """A tiny offline corpus: 4 classes x ``per_class`` clips x ``n_speakers``; each speaker has its own pitch.

    low: a harmonic tone near 150 Hz; high: near 600 Hz; tremolo: a 300 Hz tone with 8 Hz amplitude
    modulation; noise: band-limited noise. Every clip carries background noise and a random length."""
    rng = np.random.default_rng(seed)
    waves, labels, speakers = [], [], []
    for spk in range(1, n_speakers + 1):
        shift = 2 ** (rng.uniform(-3, 3) / 12)  # the speaker's "voice": +-3 semitones
        for label in range(len(SYNTHETIC_EMOTIONS)):
            for _ in range(per_class):
                n = int(sample_rate * seconds * rng.uniform(0.7, 1.0))
                t = np.arange(n) / sample_rate
                f0 = {0: 150.0, 1: 600.0, 2: 300.0, 3: 0.0}[label] * shift * rng.uniform(0.95, 1.05)
                if label < 3:
                    y = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3)) / k for k in (1, 2, 3))
                    if label == 2:
                        y = y * (0.6 + 0.4 * np.sin(2 * np.pi * 8.0 * t))
                else:
                    spec = np.fft.rfft(rng.standard_normal(n))
                    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
                    spec[(freqs < 1000 * shift) | (freqs > 3000 * shift)] = 0
                    y = np.fft.irfft(spec, n)
                y = 0.3 * y / (np.abs(y).max() + 1e-9) + 0.01 * rng.standard_normal(n)
                waves.append(y.astype(np.float32))
                labels.append(label)
                speakers.append(spk)
    return waves, labels, speakers


def speaker_folds(speakers, scheme: str = "loso", n_folds: int = 6) -> list[np.ndarray]:
    """The test speakers of each fold. ``loso``: one fold per speaker. ``grouped``: speakers sorted and
    dealt in consecutive pairs into ``n_folds`` folds (RAVDESS: odd actors are male, even female, so each
    fold gets as many of each: fold 0 = actors 1, 2, 13, 14)."""
    unique = np.array(sorted(set(int(s) for s in speakers)))
    if scheme == "loso":
        return [np.array([s]) for s in unique]
    if len(unique) < n_folds:
        raise ValueError(f"{len(unique)} speakers cannot fill {n_folds} folds")
    return [unique[(np.arange(len(unique)) // 2) % n_folds == k] for k in range(n_folds)]


def split_indices(speakers, test_speakers) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) clip indices: every clip of a test speaker is in test, every other one in train."""
    speakers = np.asarray(speakers)
    is_test = np.isin(speakers, np.asarray(test_speakers))
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
