"""Log-mel spectrograms (librosa), and a cache of a whole corpus' features keyed by their parameters.

    S[m, t] = sum_k fb[m, k] |STFT(y)[k, t]|^2      (Hann window of n_fft samples, hop hop_length, centred)
    X[m, t] = 10 log10(max(S[m, t], 1e-10))         (dB re 1.0, *not* re the clip's max: levels are absolute,
                                                    which additive noise at a given SNR needs)

    python -m paperlab.speech.features --config configs/speech/aesdd.yaml [n_mels=128 ...]   # build the cache

The cache is one compressed ``.npz`` per (dataset, parameters, file list): all clips' frames side by
side, with offsets, labels, speakers and names. Changing any parameter gives another file name. Values
are stored in 0.5 dB steps from -100 dB (uint8; the error, <= 0.25 dB, is far below anything a class
depends on), and freshly computed features are rounded the same way, so a cache hit changes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paperlab.speech.config import Config
from paperlab.speech.data import emotions_of, list_clips, log, preprocess, read_audio, synthetic_clips

FEATURE_VERSION = 3
AMIN_DB = -100.0
_SYNTHETIC: dict[str, Features] = {}


@dataclass
class Features:
    """A corpus as log-mels: ``frames[:, offsets[i]:offsets[i] + lengths[i]]`` is clip ``i`` (n_mels x T_i, dB)."""

    frames: np.ndarray  # (n_mels, total frames) float16
    offsets: np.ndarray  # (N,) int64
    lengths: np.ndarray  # (N,) int64
    labels: np.ndarray  # (N,) int64
    speakers: np.ndarray  # (N,) int64
    names: list[str]
    emotions: tuple[str, ...]
    params: dict  # Config.feature_params() they were computed with
    noise_profile: np.ndarray  # (n_mels,) E[S_m] of unit-variance white noise (augment.add_noise)
    mel_freqs: np.ndarray  # (n_mels,) centre frequencies in Hz (augment.pitch_warp)
    noise_dof: np.ndarray  # (n_mels,) degrees of freedom of the noise power in each mel band (augment.add_noise)
    skipped: list[str]
    files_hash: str = ""  # of the audio files' names and sizes (a changed corpus invalidates the cache)

    def __len__(self) -> int:
        return len(self.labels)

    def columns(self, idx) -> np.ndarray:
        """The frame columns of clips ``idx`` in ``frames``, concatenated."""
        return np.concatenate([np.arange(self.offsets[i], self.offsets[i] + self.lengths[i]) for i in idx])

    def clip(self, i: int) -> np.ndarray:
        return self.frames[:, self.offsets[i] : self.offsets[i] + self.lengths[i]].astype(np.float32)

    def subset(self, keep: np.ndarray, emotions: tuple[str, ...] | None = None) -> Features:
        """Clips ``keep`` (frames are shared, not copied); ``emotions`` relabels to that class list."""
        labels = self.labels[keep]
        if emotions is not None:
            labels = np.array([emotions.index(self.emotions[y]) for y in labels], dtype=np.int64)
        return Features(
            self.frames,
            self.offsets[keep],
            self.lengths[keep],
            labels,
            self.speakers[keep],
            [self.names[i] for i in keep],
            emotions or self.emotions,
            self.params,
            self.noise_profile,
            self.mel_freqs,
            self.noise_dof,
            self.skipped,
            self.files_hash,
        )


def quantize(x: np.ndarray) -> tuple[np.ndarray, float]:
    """(uint8 codes, step in dB): codes * step + AMIN_DB reproduces ``x`` within step / 2."""
    step = max(0.5, float(x.max() - AMIN_DB) / 255)
    return np.clip(np.round((x - AMIN_DB) / step), 0, 255).astype(np.uint8), step


def dequantize(q: np.ndarray, step: float) -> np.ndarray:
    return (q.astype(np.float32) * step + AMIN_DB).astype(np.float16)


def mel_filterbank(params: dict) -> np.ndarray:
    import librosa

    return librosa.filters.mel(
        sr=params["sample_rate"],
        n_fft=params["n_fft"],
        n_mels=params["n_mels"],
        fmin=params["fmin"],
        fmax=params["fmax"],
    )


def logmel(y: np.ndarray, params: dict) -> np.ndarray:
    """(n_mels, frames) log-mel power in dB of a preprocessed clip."""
    import librosa

    S = librosa.feature.melspectrogram(
        y=y,
        sr=params["sample_rate"],
        n_fft=params["n_fft"],
        hop_length=params["hop_length"],
        n_mels=params["n_mels"],
        fmin=params["fmin"],
        fmax=params["fmax"],
        power=2.0,
        center=True,
    )
    return (10 * np.log10(np.maximum(S, 10 ** (AMIN_DB / 10)))).astype(np.float32)


def noise_profile(params: dict) -> np.ndarray:
    """E[S_m] for white noise of variance 1: E|STFT[k]|^2 = sum_n w[n]^2, so E[S_m] = sum_n w^2 * sum_k fb[m, k]."""
    import scipy.signal

    window = scipy.signal.get_window("hann", params["n_fft"], fftbins=True)
    return (np.sum(window**2) * mel_filterbank(params).sum(axis=1)).astype(np.float32)


def noise_dof(params: dict) -> np.ndarray:
    """Effective number of independent chi^2_2 terms in each mel band of white noise: (sum fb)^2 / sum fb^2
    bins, divided by 1.5 (a Hann window's equivalent noise bandwidth in bins: neighbouring bins correlate)."""
    fb = mel_filterbank(params).astype(np.float64)
    return np.maximum(1.0, fb.sum(axis=1) ** 2 / np.maximum((fb**2).sum(axis=1), 1e-30) / 1.5).astype(np.float32)


def mel_frequencies(params: dict) -> np.ndarray:
    import librosa

    return librosa.mel_frequencies(n_mels=params["n_mels"] + 2, fmin=params["fmin"], fmax=params["fmax"])[1:-1]


def cache_key(dataset: str, params: dict) -> str:
    blob = json.dumps({"v": FEATURE_VERSION, "dataset": dataset, "params": params}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def files_hash(paths: list[Path]) -> str:
    return hashlib.sha1("\n".join(_file_ids(paths)).encode()).hexdigest()[:12]


def _file_ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.name}:{p.stat().st_size}" for p in paths]


def compute_features(waves, srs, labels, speakers, names, emotions, params: dict, skipped=()) -> Features:
    mels = []
    for y, sr in zip(waves, srs, strict=True):
        y = preprocess(y, sr, params["sample_rate"], params["top_db"], params["target_rms_db"])
        mels.append(logmel(y, params))
    lengths = np.array([m.shape[1] for m in mels], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    q, step = quantize(np.concatenate(mels, axis=1))
    return Features(
        frames=dequantize(q, step),
        offsets=offsets,
        lengths=lengths,
        labels=np.asarray(labels, dtype=np.int64),
        speakers=np.asarray(speakers, dtype=np.int64),
        names=list(names),
        emotions=tuple(emotions),
        params=dict(params),
        noise_profile=noise_profile(params),
        mel_freqs=mel_frequencies(params).astype(np.float32),
        noise_dof=noise_dof(params),
        skipped=list(skipped),
    )


def save_features(f: Features, path: Path) -> None:
    from paperlab.shared.checkpoint import atomic_path

    q, step = quantize(f.frames.astype(np.float32))
    meta = {
        "names": f.names,
        "emotions": list(f.emotions),
        "params": f.params,
        "skipped": f.skipped,
        "db_step": step,
        "files_hash": f.files_hash,
    }
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                frames=q,
                offsets=f.offsets,
                lengths=f.lengths,
                labels=f.labels,
                speakers=f.speakers,
                noise_profile=f.noise_profile,
                mel_freqs=f.mel_freqs,
                noise_dof=f.noise_dof,
                meta=np.array(json.dumps(meta)),
            )


def load_features(path: Path) -> Features:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        return Features(
            dequantize(z["frames"], meta["db_step"]),
            z["offsets"],
            z["lengths"],
            z["labels"],
            z["speakers"],
            meta["names"],
            tuple(meta["emotions"]),
            meta["params"],
            z["noise_profile"],
            z["mel_freqs"],
            z["noise_dof"],
            meta["skipped"],
            meta["files_hash"],
        )


def corpus_features(dataset: str, data_dir: str, cfg: Config) -> Features:
    """The features of a whole corpus, from the cache when its key matches, else computed and cached."""
    params = cfg.feature_params()
    if dataset == "synthetic":
        waves, labels, speakers = synthetic_clips(sample_rate=params["sample_rate"])
        names = [
            f"synthetic/{emotions_of('synthetic')[y]}-spk{s}-{i:03d}"
            for i, (y, s) in enumerate(zip(labels, speakers, strict=True))
        ]
        return compute_features(
            waves, [params["sample_rate"]] * len(waves), labels, speakers, names, emotions_of("synthetic"), params
        )
    path = Path(cfg.cache_dir) / f"{dataset}-{cache_key(dataset, params)}.npz"
    if path.is_file() and not Path(data_dir).is_dir():  # e.g. a machine that got the cache, not the audio
        log(f"features: {data_dir} is absent; using the cached features {path}")
        return load_features(path)
    clips = list_clips(dataset, data_dir)
    if path.is_file():
        f = load_features(path)
        if f.files_hash == files_hash(clips.paths):
            return f
        log(f"features: the files under {data_dir} changed since {path} was written; recomputing")
    log(f"features: computing {len(clips.paths)} clips of {dataset} into {path} ({params})")
    waves, srs, keep, skipped = [], [], [], []
    for i, p in enumerate(clips.paths):
        audio = read_audio(p)
        if audio is None:
            skipped.append(f"{p.parent.name}/{p.name}")
            continue
        waves.append(audio[0])
        srs.append(audio[1])
        keep.append(i)
    if skipped:
        log(f"features: skipped {len(skipped)} unreadable or empty file(s): {', '.join(skipped)}")
    if not keep:
        raise ValueError(f"no readable audio under {data_dir}")
    f = compute_features(
        waves,
        srs,
        [clips.labels[i] for i in keep],
        [clips.speakers[i] for i in keep],
        [f"{clips.paths[i].parent.name}/{clips.paths[i].name}" for i in keep],
        clips.emotions,
        params,
        skipped,
    )
    f.files_hash = files_hash(clips.paths)
    save_features(f, path)
    return f


def check_feature_params(saved: dict, params: dict, what: str) -> None:
    """Refuse features computed with other parameters than ``saved`` (a checkpoint's), naming each one."""
    changed = [
        f"{k}: {saved.get(k)!r} in {what}, {params.get(k)!r} here" for k in saved if saved.get(k) != params.get(k)
    ]
    if changed:
        raise ValueError(
            f"{what} was trained on other features ({'; '.join(changed)}); "
            "compute the features with the checkpoint's parameters"
        )


def _main(argv=None) -> None:
    from paperlab.shared.config import add_config_args, config_from_args, parse_args

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_config_args(parser)
    cfg = config_from_args(Config, parse_args(parser, argv))
    f = corpus_features(cfg.dataset, cfg.data_dir, cfg)
    seconds = f.lengths.sum() * cfg.hop_length / cfg.sample_rate
    print(
        f"{cfg.dataset}: {len(f)} clips, {seconds / 60:.1f} min after trimming, {f.frames.nbytes / 2**20:.1f} MiB "
        f"of features; skipped {len(f.skipped)}: {', '.join(f.skipped) or '-'}"
    )


def main(argv=None):
    from paperlab.shared.cli import run_command

    run_command(_main, argv)


if __name__ == "__main__":
    main()
