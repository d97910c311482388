"""Augmentations of log-mel batches (dB), each the identity at zero strength. Random draws come from a
numpy ``Generator`` (saved in checkpoints), so that a resumed run draws what an uninterrupted one would.

- ``crop_batch``: windows of ``T`` frames from the clips, with a time-stretch rate per clip (linear
  interpolation between frames: what a phase vocoder does to the magnitudes, at frame resolution).
- ``pitch_warp``: every frequency scaled by 2^(s/12) (formants too, like resampling or librosa's
  pitch_shift), done on the mel axis by interpolating between band centres.
- ``add_noise``: white noise at a given SNR, added in the power domain, S + sigma^2 E[S_noise] G with
  G ~ Gamma(k, 1/k) per bin (k = the band's degrees of freedom); the clip's power is known because
  every clip was RMS-normalised to ``target_rms_db``.
- ``spec_augment`` (Park et al. 2019, arXiv 1904.08779): ``n`` frequency masks of width U[0, F] and
  ``n`` time masks of width U[0, T], set to 0 (= the mean after normalisation). Time warping is left out.
- ``mixup`` (Zhang et al. 2018): convex combinations of pairs of inputs and of their labels.
"""

from __future__ import annotations

import numpy as np
import torch


def crop_batch(frames: torch.Tensor, offsets, lengths, T: int, starts, rates=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, M, T) windows and their (B, T) validity masks. Window b reads frames at positions
    ``starts[b] + t * rates[b]`` (t = 0..T-1) of clip b, linearly interpolated; positions past the clip's
    end are padding (0 and mask False). ``frames`` is the (M, total) corpus tensor."""
    device = frames.device
    offsets = torch.as_tensor(np.asarray(offsets), device=device)
    lengths = torch.as_tensor(np.asarray(lengths), device=device)
    starts = torch.as_tensor(np.asarray(starts, dtype=np.float64), device=device)
    rates = torch.ones_like(starts) if rates is None else torch.as_tensor(np.asarray(rates, np.float64), device=device)
    pos = starts[:, None] + torch.arange(T, device=device, dtype=torch.float64)[None, :] * rates[:, None]
    mask = pos <= (lengths[:, None] - 1).to(torch.float64)
    lo = pos.floor().clamp(max=(lengths[:, None] - 1).to(torch.float64))
    frac = (pos - lo).clamp(0, 1).to(frames.dtype)
    lo = lo.long()
    hi = torch.minimum(lo + 1, lengths[:, None] - 1)
    a = frames[:, (offsets[:, None] + lo)]  # (M, B, T)
    b = frames[:, (offsets[:, None] + hi)]
    x = (a + (b - a) * frac[None]).permute(1, 0, 2)
    return x * mask[:, None, :], mask


def pitch_warp(x: torch.Tensor, semitones, mel_freqs) -> torch.Tensor:
    """Output band m (centre f_m) takes the value at f_m / 2^(s/12) of the input, interpolated between
    band centres (clamped at the edges). ``x``: (B, M, T) in dB; ``semitones``: (B,)."""
    B, M, _ = x.shape
    freqs = torch.as_tensor(np.asarray(mel_freqs), dtype=torch.float64, device=x.device)
    ratio = torch.pow(2.0, torch.as_tensor(np.asarray(semitones, np.float64), device=x.device) / 12.0)
    src = (freqs[None, :] / ratio[:, None]).clamp(freqs[0], freqs[-1])  # (B, M) source frequencies
    hi = torch.searchsorted(freqs, src.contiguous(), right=False).clamp(1, M - 1)
    lo = hi - 1
    w = ((src - freqs[lo]) / (freqs[hi] - freqs[lo])).clamp(0, 1).to(x.dtype)  # weight of the upper band
    xl = torch.gather(x, 1, lo[:, :, None].expand(-1, -1, x.shape[2]))
    xh = torch.gather(x, 1, hi[:, :, None].expand(-1, -1, x.shape[2]))
    return xl + (xh - xl) * w[:, :, None]


def add_noise(
    x: torch.Tensor, snr_db, signal_db: float, noise_profile, noise_dof, rng: np.random.Generator
) -> torch.Tensor:
    """Add white noise at ``snr_db`` (B,) to clips whose power is ``signal_db`` dB (their RMS^2), in dB."""
    B, M, T = x.shape
    sigma2 = 10 ** ((signal_db - np.asarray(snr_db, np.float64)) / 10)  # noise variance per clip
    dof = np.asarray(noise_dof, np.float64)
    gamma = rng.gamma(shape=dof[None, :, None], scale=1 / dof[None, :, None], size=(B, M, T))
    noise = torch.as_tensor(
        sigma2[:, None, None] * np.asarray(noise_profile, np.float64)[None, :, None] * gamma,
        dtype=x.dtype,
        device=x.device,
    )
    return 10 * torch.log10(torch.pow(10.0, x / 10) + noise)


def spec_augment(x: torch.Tensor, F: int, T: int, n: int, rng: np.random.Generator) -> torch.Tensor:
    """``n`` frequency masks of width U{0..F} and ``n`` time masks of width U{0..T} per example, set to 0."""
    B, M, L = x.shape
    keep = torch.ones(B, M, L, dtype=torch.bool)
    for b in range(B):
        for _ in range(n if F > 0 else 0):
            f = int(rng.integers(0, min(F, M) + 1))
            f0 = int(rng.integers(0, M - f + 1))
            keep[b, f0 : f0 + f, :] = False
        for _ in range(n if T > 0 else 0):
            t = int(rng.integers(0, min(T, L) + 1))
            t0 = int(rng.integers(0, L - t + 1))
            keep[b, :, t0 : t0 + t] = False
    return x * keep.to(x.device)


def mixup(
    x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor, n_classes: int, alpha: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mixed x, union of masks, soft targets). ``alpha == 0`` returns one-hot targets and x unchanged."""
    target = torch.nn.functional.one_hot(y, n_classes).to(x.dtype)
    if alpha <= 0:
        return x, mask, target
    lam = torch.as_tensor(rng.beta(alpha, alpha, size=len(x)), dtype=x.dtype, device=x.device)
    perm = torch.as_tensor(rng.permutation(len(x)), device=x.device)
    x = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[perm]
    target = lam[:, None] * target + (1 - lam[:, None]) * target[perm]
    return x, mask | mask[perm], target
