"""The typed hyperparameters of one speaker-independent cross-validation run. Presets: ``configs/speech/*.yaml``.

Pure dataclass (no heavy imports): --help and config errors are instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DATASETS = ("synthetic", "aesdd", "ravdess")
MODELS = ("cnn", "crnn", "svm")  # svm: RBF-SVM on utterance statistics of the same log-mels (the baseline)
# loso: one fold per speaker; grouped: speakers dealt into n_folds folds (both speaker-independent);
# clips: n_folds stratified folds over clips, every speaker on both sides: speaker-DEPENDENT, a reference
# that measures how much hearing the test speaker in training inflates the score (never a headline)
FOLD_SCHEMES = ("loso", "grouped", "clips")
SPEAKER_NORMS = ("none", "mean", "meanstd")


@dataclass
class Config:
    # --- experiment ---
    dataset: str = "synthetic"  # synthetic (generated tones/noise: offline, seconds) | aesdd | ravdess
    data_dir: str = ""  # folder of the dataset (aesdd: anger/ ... sadness/; ravdess: Actor_01/ ...)
    emotions: list[str] = field(default_factory=list)  # keep only these classes ([] = all of the dataset)
    test_dataset: str = ""  # cross-corpus: train on every speaker of `dataset`, test on this one
    test_data_dir: str = ""
    seed: int = 1
    run_dir: str = "runs/speech/${dataset}/${model}-seed${seed}"
    threads: int = 1  # torch CPU threads
    device: str = "auto"  # auto (cuda if available) | cpu | cuda
    tensorboard: bool = True

    # --- preprocessing and features (all of these key the feature cache) ---
    sample_rate: int = 16000
    top_db: float = 30.0  # silence trimming: drop leading/trailing audio quieter than peak - top_db
    target_rms_db: float = -20.0  # loudness normalisation: RMS of the trimmed clip, dBFS
    n_mels: int = 64
    n_fft: int = 512  # 32 ms window at 16 kHz
    hop_length: int = 320  # 20 ms hop: 50 frames/s
    fmin: float = 50.0
    fmax: float = 8000.0
    cache_dir: str = "runs/speech/cache"
    # per-speaker normalisation of the log-mels (protocol.speaker_normalise): none | mean (subtract the
    # speaker's own per-band mean) | meanstd (and divide by the speaker's per-band std). No label is used; a
    # held-out speaker's statistics come from their own unlabelled test clips. Applied after the cache
    speaker_norm: str = "none"

    # --- cross-validation (speaker-independent) ---
    folds: str = "loso"  # loso | grouped | clips (speaker-dependent reference)
    n_folds: int = 6  # grouped and clips only
    only_folds: list[int] = field(default_factory=list)  # run these folds only ([] = all)

    # --- model ---
    model: str = "cnn"  # cnn (VGG-style) | crnn (conv + BiGRU + attention pooling) | svm
    channels: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    rnn_hidden: int = 64
    dropout: float = 0.3
    svm_c: float = 10.0
    # transfer: every fold's network starts from this model instead of a random init: a fold model file or
    # a run directory (its fold0.pt), trained on *another* corpus (e.g. all 24 RAVDESS actors on the 5 shared
    # emotions); the same features, network and classes are required ("" = random init)
    init_from: str = ""

    # --- training ---
    crop_seconds: float = 2.0  # training crops; evaluation averages windows of this length over the clip
    epochs: int = 12
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    # every training batch from one speaker: BatchNorm then normalises per speaker in training, as adapt_bn
    # does for the held-out speaker at test time (off: batches mix speakers)
    speaker_batches: bool = False
    class_weights: bool = True  # inverse-frequency weights in the loss (RAVDESS neutral is half the size)

    # --- augmentation (every one is the identity at 0) ---
    specaug_freq: int = 0  # F: each frequency mask covers up to F mel bins
    specaug_time: int = 0  # T: each time mask covers up to T frames
    specaug_masks: int = 2  # masks of each kind
    noise_snr_db: list[float] = field(default_factory=list)  # additive white noise at an SNR drawn from [lo, hi]
    noise_prob: float = 0.5
    pitch_semitones: float = 0.0  # frequency-axis warp by up to +- this many semitones
    stretch: float = 0.0  # time stretch by a rate in [1 - stretch, 1 + stretch]
    mixup_alpha: float = 0.0

    # --- evaluation ---
    # test-time BatchNorm adaptation (AdaBN): each held-out speaker is classified by a copy of the fold's
    # model whose BatchNorm statistics are re-estimated on that speaker's own unlabelled test clips
    adapt_bn: bool = False
    # where adapt_bn takes the statistics from: speaker (the held-out speaker's clips) | train (the control:
    # the fold's training clips, one exact batch; it isolates what the held-out speaker's statistics add)
    adapt_bn_source: str = "speaker"

    checkpoint_every: int = 1  # epochs between checkpoints (and at every fold's end, and on Ctrl-C)

    def __post_init__(self):
        self.run_dir = re.sub(r"\$\{(\w+)\}", lambda m: str(getattr(self, m.group(1))), self.run_dir)
        for name, allowed in (
            ("dataset", DATASETS),
            ("model", MODELS),
            ("folds", FOLD_SCHEMES),
            ("speaker_norm", SPEAKER_NORMS),
            ("adapt_bn_source", ("speaker", "train")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.test_dataset and self.test_dataset not in DATASETS:
            raise ValueError(f"test_dataset must be one of {DATASETS} or empty, got {self.test_dataset!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        for name in ("dataset", "test_dataset"):
            folder = self.data_dir if name == "dataset" else self.test_data_dir
            if getattr(self, name) not in ("", "synthetic") and not folder:
                raise ValueError(
                    f"{name}={getattr(self, name)} needs {'data_dir' if name == 'dataset' else 'test_data_dir'}"
                    "=<folder> (e.g. data/aesdd or data/ravdess16k)"
                )
        for name in ("sample_rate", "n_mels", "n_fft", "hop_length", "epochs", "batch_size", "n_folds", "threads"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin} fmax={self.fmax}")
        if self.noise_snr_db and len(self.noise_snr_db) != 2:
            raise ValueError(f"noise_snr_db is [lo, hi] in dB or [], got {self.noise_snr_db}")
        if not 0 <= self.stretch < 1:
            raise ValueError(f"stretch must be in [0, 1), got {self.stretch}")
        if self.speaker_norm != "none" and self.noise_snr_db:
            raise ValueError(
                "noise_snr_db adds noise at an SNR to the dB log-mels, speaker_norm standardises them first: "
                "use one of the two"
            )
        if self.adapt_bn and self.model == "svm":
            raise ValueError("adapt_bn needs a network with BatchNorm (model=cnn or crnn), not the svm")
        if self.init_from and self.model == "svm":
            raise ValueError("init_from needs a network (model=cnn or crnn); the svm has no weights to transfer")
        for name in ("specaug_freq", "specaug_time", "specaug_masks", "pitch_semitones", "mixup_alpha", "dropout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def crop_frames(self) -> int:
        return max(1, round(self.crop_seconds * self.sample_rate / self.hop_length))

    def feature_params(self) -> dict:
        """Everything the cached log-mels depend on (besides the files)."""
        keys = ("sample_rate", "top_db", "target_rms_db", "n_mels", "n_fft", "hop_length", "fmin", "fmax")
        return {k: getattr(self, k) for k in keys}
