"""Augmentations: shapes kept, the identity at zero strength, and each does what it says."""

from __future__ import annotations

import numpy as np
import torch

from paperlab.speech import augment as A
from paperlab.speech import features as F
from paperlab.speech.config import Config

PARAMS = Config().feature_params()


def _rng(seed=0):
    return np.random.default_rng(seed)


def _tone_mel(freq):
    t = np.arange(16000) / 16000
    return torch.as_tensor(F.logmel((0.1 * np.sin(2 * np.pi * freq * t)).astype(np.float32), PARAMS))


def test_crop_reads_the_right_frames_pads_with_a_mask_and_stretches():
    frames = torch.arange(2 * 30, dtype=torch.float32).view(2, 30)  # two clips: 0..19 and 20..29
    x, mask = A.crop_batch(frames, [0, 20], [20, 10], T=12, starts=[3, 0])
    torch.testing.assert_close(x[0], frames[:, 3:15])
    assert mask[1].tolist() == [True] * 10 + [False] * 2
    assert (x[1][:, 10:] == 0).all()
    x2, _ = A.crop_batch(frames, [0], [20], T=5, starts=[0], rates=[2.0])
    torch.testing.assert_close(x2[0], frames[:, 0:10:2])  # rate 2 reads every other frame
    x3, _ = A.crop_batch(frames, [0], [20], T=3, starts=[0], rates=[0.5])
    torch.testing.assert_close(x3[0, 0], torch.tensor([0.0, 0.5, 1.0]))  # rate 0.5 interpolates


def test_every_augmentation_is_the_identity_at_zero_strength():
    x = torch.randn(4, 64, 50)
    mask = torch.ones(4, 50, dtype=torch.bool)
    mel_freqs = F.mel_frequencies(PARAMS)
    torch.testing.assert_close(A.pitch_warp(x, np.zeros(4), mel_freqs), x)
    torch.testing.assert_close(A.spec_augment(x, 0, 0, 2, _rng()), x)
    xm, mm, target = A.mixup(x, mask, torch.tensor([0, 1, 2, 3]), 4, 0.0, _rng())
    assert xm is x and torch.equal(target, torch.eye(4))
    quiet = A.add_noise(x, np.full(4, 300.0), -20.0, F.noise_profile(PARAMS), F.noise_dof(PARAMS), _rng())
    torch.testing.assert_close(quiet, x, atol=1e-4, rtol=0)  # SNR 300 dB adds nothing measurable


def test_augmentations_keep_shapes():
    x = torch.randn(3, 64, 40)
    mask = torch.ones(3, 40, dtype=torch.bool)
    assert A.pitch_warp(x, [2.0, -2.0, 1.0], F.mel_frequencies(PARAMS)).shape == x.shape
    assert A.spec_augment(x, 8, 10, 2, _rng()).shape == x.shape
    assert (
        A.add_noise(x, [5.0, 10.0, 20.0], -20.0, F.noise_profile(PARAMS), F.noise_dof(PARAMS), _rng()).shape == x.shape
    )
    xm, mm, t = A.mixup(x, mask, torch.tensor([0, 1, 2]), 3, 0.4, _rng())
    assert xm.shape == x.shape and mm.shape == mask.shape
    torch.testing.assert_close(t.sum(1), torch.ones(3))


def test_spec_augment_masks_whole_bands_and_frames_within_the_widths():
    x = torch.ones(50, 64, 100)
    out = A.spec_augment(x, F=8, T=20, n=2, rng=_rng(1))
    for b in range(50):
        zero = out[b] == 0
        bands = zero.all(dim=1)  # a frequency mask zeroes a band at every frame
        frames = zero.all(dim=0)
        # every zero lies in a masked band or a masked frame: nothing else is touched
        assert torch.equal(zero, bands[:, None] | frames[None, :])
        assert bands.sum() <= 2 * 8 and frames.sum() <= 2 * 20
    assert (out == 0).any()


def test_pitch_warp_moves_a_tone_up_an_octave():
    x = _tone_mel(500.0)[None]
    up = A.pitch_warp(x, [12.0], F.mel_frequencies(PARAMS))[0]
    target = _tone_mel(1000.0)
    assert abs(int(up[:, 10].argmax()) - int(target[:, 10].argmax())) <= 1


def test_noise_power_matches_librosa_on_real_white_noise():
    import librosa

    sigma2 = 10 ** ((-20.0 - 10.0) / 10)  # a clip at -20 dBFS and SNR 10 dB
    y = np.random.default_rng(0).standard_normal(16000 * 4) * np.sqrt(sigma2)
    direct = librosa.feature.melspectrogram(
        y=y, sr=16000, n_fft=512, hop_length=320, n_mels=64, fmin=50.0, fmax=8000.0, power=2.0
    )[:, 2:-2]
    silent = torch.full((1, 64, 400), -100.0)
    ours = 10 ** (A.add_noise(silent, [10.0], -20.0, F.noise_profile(PARAMS), F.noise_dof(PARAMS), _rng()) / 10)
    ratio = ours[0].mean(dim=1).numpy() / direct.mean(axis=1)
    assert abs(ratio.mean() - 1) < 0.05 and np.all(np.abs(ratio - 1) < 0.25)
    # and the spread of the band powers is of the same order (Gamma with the band's degrees of freedom)
    cv_ours = (ours[0].std(dim=1) / ours[0].mean(dim=1)).numpy()
    cv_direct = direct.std(axis=1) / direct.mean(axis=1)
    assert 0.5 < np.median(cv_ours / cv_direct) < 2.0
