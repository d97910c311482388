"""Exploratory analysis of both corpora, and spectrograms of misclassified clips, as figures + JSON.

    python -m paperlab.speech.explore --out projects/speech/results/explore [--aesdd data/aesdd]

Per corpus: clips per speaker and emotion (a heat map), and per emotion the duration, the level (RMS of
the untrimmed clip, dBFS), the median F0 of voiced frames and its range (10th-90th percentile, in
semitones) from librosa's YIN (60-500 Hz; frames quieter than 30 dB below the clip's loudest frame are
treated as unvoiced); one log-mel spectrogram per emotion; and, from the committed ``models`` results,
the most confidently misclassified clips of the CNN (seed 1) with their spectrograms.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from paperlab.speech.config import Config
from paperlab.speech.data import list_clips, read_audio
from paperlab.speech.features import corpus_features


def clip_stats(y: np.ndarray, sr: int) -> dict:
    import librosa

    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)) + 1e-12)
    f0 = librosa.yin(y, fmin=60, fmax=500, sr=sr, frame_length=1024, hop_length=320)
    frame_rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=320, center=True)[0][: len(f0)]
    voiced = f0[frame_rms[: len(f0)] > frame_rms.max() * 10 ** (-30 / 20)]
    voiced = voiced[(voiced > 61) & (voiced < 499)]  # YIN pins unvoiced frames at its bounds
    return {
        "duration_s": len(y) / sr,
        "level_dbfs": 20 * np.log10(rms),
        "f0_hz": float(np.median(voiced)) if len(voiced) else float("nan"),
        "f0_range_st": float(12 * np.log2(np.percentile(voiced, 90) / np.percentile(voiced, 10)))
        if len(voiced) > 5
        else float("nan"),
    }


def analyse(dataset: str, root: str, out: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clips = list_clips(dataset, root)
    rows = []
    for p, y_lab, spk in zip(clips.paths, clips.labels, clips.speakers, strict=True):
        audio = read_audio(p)
        if audio is None:
            continue
        rows.append({"emotion": clips.emotions[y_lab], "speaker": spk, **clip_stats(*audio)})
    emotions = [e for e in clips.emotions if any(r["emotion"] == e for r in rows)]
    speakers = sorted({r["speaker"] for r in rows})
    counts = np.array(
        [[sum(1 for r in rows if r["speaker"] == s and r["emotion"] == e) for e in emotions] for s in speakers]
    )
    per = {}
    for e in emotions:
        rs = [r for r in rows if r["emotion"] == e]
        per[e] = {
            "clips": len(rs),
            **{
                k: float(np.nanmedian([r[k] for r in rs])) for k in ("duration_s", "level_dbfs", "f0_hz", "f0_range_st")
            },
        }
    fig, axes = plt.subplots(1, 5, figsize=(24, 4.5))
    axes[0].imshow(counts, cmap="Greens", aspect="auto")
    for i in range(len(speakers)):
        for j in range(len(emotions)):
            axes[0].text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7)
    axes[0].set_xticks(range(len(emotions)), [e[:4] for e in emotions], rotation=45)
    axes[0].set_yticks(range(len(speakers)), speakers)
    axes[0].set_ylabel("speaker")
    axes[0].set_title(f"{dataset}: clips per speaker and emotion")
    for ax, key, label in zip(
        axes[1:],
        ("duration_s", "level_dbfs", "f0_hz", "f0_range_st"),
        ("duration (s)", "level (dBFS, untrimmed)", "median F0 (Hz)", "F0 range p10-p90 (st)"),
        strict=True,
    ):
        ax.boxplot(
            [[r[key] for r in rows if r["emotion"] == e and np.isfinite(r[key])] for e in emotions], showfliers=False
        )
        ax.set_xticks(range(1, len(emotions) + 1), [e[:4] for e in emotions], rotation=45)
        ax.set_title(label)
    fig.tight_layout()
    fig.savefig(out / f"{dataset}-overview.png", dpi=70)
    plt.close(fig)
    summary = {
        "dataset": dataset,
        "clips": len(rows),
        "speakers": speakers,
        "emotions": emotions,
        "counts": counts.tolist(),
        "per_emotion": per,
    }
    (out / f"{dataset}.json").write_text(json.dumps(summary, indent=1))
    return summary


def example_spectrograms(dataset: str, root: str, out: Path, cfg: Config) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = corpus_features(dataset, root, cfg)
    fig, axes = plt.subplots(1, len(f.emotions), figsize=(3.2 * len(f.emotions), 3), sharey=True)
    speaker = int(np.min(f.speakers))
    for k, (ax, e) in enumerate(zip(axes, f.emotions, strict=True)):
        i = int(np.flatnonzero((f.labels == k) & (f.speakers == speaker))[0])
        ax.imshow(
            f.clip(i),
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=-80,
            vmax=20,
            extent=[0, f.lengths[i] * cfg.hop_length / cfg.sample_rate, 0, cfg.n_mels],
        )
        ax.set_title(f"{e}\n{f.names[i]}", fontsize=8)
        ax.set_xlabel("s")
    axes[0].set_ylabel("mel band")
    fig.tight_layout()
    fig.savefig(out / f"{dataset}-spectrograms.png", dpi=70)
    plt.close(fig)


def misclassified(dataset: str, root: str, out: Path, results: Path, cfg: Config, n: int = 4) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = results / "grid" / "models" / f"{dataset}-cnn-seed1" / "eval.json"
    if not path.is_file():
        return []
    ev = json.loads(path.read_text())
    wrong = [
        (p, c, t, q)
        for fo in ev["folds"]
        for c, t, q, p in zip(fo["clips"], fo["y_true"], fo["y_pred"], fo["p_pred"], strict=True)
        if t != q
    ]
    wrong.sort(reverse=True)  # the most confident mistakes first
    f = corpus_features(dataset, root, cfg)
    index = {name: i for i, name in enumerate(f.names)}
    picked = [w for w in wrong if w[1] in index][:n]
    if not picked:
        return []
    fig, axes = plt.subplots(1, len(picked), figsize=(4 * len(picked), 3), sharey=True)
    axes = np.atleast_1d(axes)
    rows = []
    for ax, (p, name, t, q) in zip(axes, picked, strict=True):
        i = index[name]
        ax.imshow(
            f.clip(i),
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=-80,
            vmax=20,
            extent=[0, f.lengths[i] * cfg.hop_length / cfg.sample_rate, 0, cfg.n_mels],
        )
        ax.set_title(f"{name}\ntrue {ev['emotions'][t]}, predicted {ev['emotions'][q]} (p={p:.2f})", fontsize=8)
        ax.set_xlabel("s")
        rows.append({"clip": name, "true": ev["emotions"][t], "predicted": ev["emotions"][q], "p": p})
    axes[0].set_ylabel("mel band")
    fig.tight_layout()
    fig.savefig(out / f"{dataset}-misclassified.png", dpi=70)
    plt.close(fig)
    return rows


def _main(argv=None) -> None:
    from paperlab.shared.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="projects/speech/results/explore")
    parser.add_argument("--results", default="projects/speech/results")
    parser.add_argument("--aesdd", default="data/aesdd")
    parser.add_argument("--ravdess", default="data/ravdess16k")
    parser.add_argument("--misclassified-only", action="store_true", help="only the misclassified-clip figures")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wrong = {}
    for dataset, root in (("aesdd", args.aesdd), ("ravdess", args.ravdess)):
        cfg = load_config(Config, f"configs/speech/{dataset}.yaml", [f"data_dir={root}"])
        if not args.misclassified_only:
            s = analyse(dataset, root, out)
            example_spectrograms(dataset, root, out, cfg)
            print(f"{dataset}: {s['clips']} clips, {len(s['speakers'])} speakers -> {out}")
        wrong[dataset] = misclassified(dataset, root, out, Path(args.results), cfg)
    (out / "misclassified.json").write_text(json.dumps(wrong, indent=1))


def main(argv=None):
    from paperlab.shared.cli import run_command

    run_command(_main, argv)


if __name__ == "__main__":
    main()
