"""The samplers proved right on data whose optimal denoiser is known in closed form.

For data x_0 ~ N(mu, s^2 I), x_t ~ N(sqrt(abar_t) mu, v_t I) with v_t = abar_t s^2 + 1 - abar_t, and the
optimal (MMSE) noise predictor is linear:

    eps*(x_t, t) = E[eps | x_t] = sqrt(1 - abar_t) (x_t - sqrt(abar_t) mu) / v_t.

Plugged into the project's samplers (``diffusion.py``, unchanged), every sampler step is then an affine map
plus Gaussian noise, so the law of the output is Gaussian with a mean and a variance that a two-number
recursion computes exactly. That recursion is written here from the papers' formulas (Ho et al. 2020,
Algorithm 2 with sigma_t^2 = beta_t or beta~_t; Song et al. 2021, eq. 12 with the uniform stride) in
numpy float64, independently of the code under test. The tests then check:

1. The Monte-Carlo mean and variance of 2^18 sampled numbers equal the recursion's within 4.5 standard
   errors, for DDPM (all 1000 steps) and DDIM with eta = 0 and 1 at 10, 50 and 1000 steps.
2. With all 1000 steps the recursion (and so the sampler) lands on the data: DDPM with sigma^2 = beta
   gives mu and s^2 to 1.5%, DDIM eta = 0 / 1 to 2.5% / 5%; and the Monte-Carlo
   sample of DDPM matches mu and s^2 directly. With 10 or 50 DDIM steps the output variance is
   *smaller* than s^2 (the recursion says by how much: with a uniform stride the last jump, t = 111 -> 0
   for 10 steps, averages over most of the remaining detail); this is the sampler's real behaviour,
   not a bug, and the Monte-Carlo numbers reproduce it.
3. The check is not blind: querying the model one step off (eps*(x_t, t + 1), what an off-by-one between
   the schedule and the network's t would do) moves the DDPM and the 10-step DDIM variances by 10-25
   standard errors, and the check fails. (A one-step shift inside a 50-step or 1000-step deterministic
   DDIM moves its output by less than the sampling error: such a sampler is insensitive to it.)

Clipping: the samplers clip the predicted x_0 to [-1, 1] (``clip_denoised``, as the runs use). With
mu = 0.3, s = 0.15 the data lie in [-1, 1] up to 4.7 s and the predicted x_0 = E[x_0 | x_t] is a shrunk
version of them, so clipping changes at most a few of the 2^18 numbers; the tests run with clipping on
(what the runs use), and one test checks that clipping off gives the same samples except for a
negligible fraction of entries. A wrong clip would cut mass and fail 1 (checked by hand: clipping x_0 to
[0, 1] moves the DDPM and the 1000-step DDIM variances by 14-19 standard errors).
"""

import functools
import math

import numpy as np
import pytest
import torch

from paperlab.ddpm.diffusion import GaussianDiffusion, make_betas

torch.set_num_threads(1)
MU, S = 0.3, 0.15
T = 1000
N_IMAGES, HW = 4096, 8  # 2^18 independent numbers: every pixel is its own sample (the denoiser is per pixel)
Z_MAX = 4.5


def _paper_schedule():
    betas = np.linspace(1e-4, 0.02, T)  # Ho et al. Sec. 4
    return betas, np.cumprod(1 - betas)


def _eps_gain(abar_model: float) -> float:
    return math.sqrt(1 - abar_model) / (abar_model * S * S + 1 - abar_model)


def predicted_moments(sampler: str, steps: int, eta: float = 0.0, sigma: str = "beta", shift: int = 0):
    """Exact mean and variance of the sampler's output with the closed-form eps* (queried at t + shift)."""
    betas, abar = _paper_schedule()
    m, v = 0.0, 1.0  # x_T ~ N(0, 1)
    if sampler == "ddpm":
        for t in reversed(range(T)):  # paper's t = code's t + 1
            ab, ab_prev, b = abar[t], (abar[t - 1] if t > 0 else 1.0), betas[t]
            abm = abar[min(t + shift, T - 1)]
            k = _eps_gain(abm)  # eps* = k x - k sqrt(abm) mu
            # x0_hat = (x - sqrt(1 - ab) eps) / sqrt(ab); mean = c0 x0_hat + ct x (eq. 7)
            c0, ct = b * math.sqrt(ab_prev) / (1 - ab), (1 - ab_prev) * math.sqrt(1 - b) / (1 - ab)
            a = c0 * (1 - math.sqrt(1 - ab) * k) / math.sqrt(ab) + ct
            c = c0 * math.sqrt(1 - ab) * k * math.sqrt(abm) * MU / math.sqrt(ab)
            var = (b if sigma == "beta" else b * (1 - ab_prev) / (1 - ab)) if t > 0 else 0.0
            m, v = a * m + c, a * a * v + var
        return m, v
    taus = sorted(set(np.round(np.linspace(0, T - 1, steps)).astype(int).tolist()), reverse=True)
    for i, t in enumerate(taus):
        ab, abm = abar[t], abar[min(t + shift, T - 1)]
        ab_next = abar[taus[i + 1]] if i + 1 < len(taus) else 1.0
        k = _eps_gain(abm)
        sig = eta * math.sqrt((1 - ab_next) / (1 - ab)) * math.sqrt(1 - ab / ab_next)  # DDIM eq. 16
        ce = math.sqrt(max(1 - ab_next - sig * sig, 0.0))
        # x' = sqrt(ab_next) x0_hat + ce eps + sig z (DDIM eq. 12)
        a = math.sqrt(ab_next) * (1 - math.sqrt(1 - ab) * k) / math.sqrt(ab) + ce * k
        c = (math.sqrt(ab_next) * math.sqrt(1 - ab) / math.sqrt(ab) - ce) * k * math.sqrt(abm) * MU
        m, v = a * m + c, a * a * v + sig * sig
    return m, v


def oracle(d: GaussianDiffusion, shift: int = 0):
    abar = d.abar.float()

    def eps_star(x, t):
        a = abar[(t + shift).clamp(max=d.T - 1)].view(-1, 1, 1, 1)
        return (1 - a).sqrt() * (x - a.sqrt() * MU) / (a * S * S + 1 - a)

    return eps_star


@functools.cache  # several tests share a run of the sampler (read-only tensors)
def sample(sampler: str, steps: int, eta: float = 0.0, sigma: str = "beta", clip: bool = True, shift: int = 0):
    d = GaussianDiffusion(make_betas("linear", T), sigma=sigma, clip_denoised=clip)
    x, _ = d.sample(
        oracle(d, shift), (N_IMAGES, 1, HW, HW), sampler, steps, eta, generator=torch.Generator().manual_seed(0)
    )
    return x.double().flatten()


def z_scores(x: torch.Tensor, mean: float, var: float) -> tuple[float, float]:
    """(sample mean - mean) and (sample variance - var) in standard errors of a Gaussian sample of len(x)."""
    n = x.numel()
    return ((x.mean().item() - mean) / math.sqrt(var / n), (x.var().item() - var) / (var * math.sqrt(2 / (n - 1))))


CASES = [("ddpm", 1000, 0.0, "beta"), ("ddpm", 1000, 0.0, "posterior")] + [
    ("ddim", steps, eta, "beta") for steps in (10, 50, 1000) for eta in (0.0, 1.0)
]


@pytest.mark.parametrize("sampler,steps,eta,sigma", CASES, ids=lambda v: str(v))
def test_sampler_output_law_is_the_exact_one(sampler, steps, eta, sigma):
    m, v = predicted_moments(sampler, steps, eta, sigma)
    zm, zv = z_scores(sample(sampler, steps, eta, sigma), m, v)
    assert abs(zm) < Z_MAX and abs(zv) < Z_MAX, (zm, zv)


def test_all_steps_reproduce_the_data():
    m, v = predicted_moments("ddpm", T)
    assert m == pytest.approx(MU, abs=1e-4) and v == pytest.approx(S * S, rel=0.015)
    for eta, rel in ((0.0, 0.025), (1.0, 0.05)):
        m, v = predicted_moments("ddim", T, eta)
        assert m == pytest.approx(MU, abs=2e-3) and v == pytest.approx(S * S, rel=rel), eta
    # the DDPM sampler, directly against the data's mean and variance (its O(beta) bias is 1.2% of s^2,
    # so the variance is compared with a tolerance of 4.5 standard errors plus that bias)
    x = sample("ddpm", T)
    zm, _ = z_scores(x, MU, S * S)
    assert abs(zm) < Z_MAX and x.var().item() == pytest.approx(S * S, rel=0.015 + Z_MAX * math.sqrt(2 / x.numel()))
    # few DDIM steps shrink the variance; the recursion says how much, and it is a lot at 10 steps
    assert predicted_moments("ddim", 10, 0.0)[1] < 0.25 * S * S < 0.7 * S * S < predicted_moments("ddim", 50, 0.0)[1]


@pytest.mark.parametrize("sampler,steps,eta", [("ddpm", 1000, 0.0), ("ddim", 10, 0.0), ("ddim", 10, 1.0)])
def test_an_off_by_one_in_t_is_caught(sampler, steps, eta):
    m, v = predicted_moments(sampler, steps, eta)  # what a correct sampler gives
    zm, zv = z_scores(sample(sampler, steps, eta, shift=1), m, v)
    assert max(abs(zm), abs(zv)) > 2 * Z_MAX, (zm, zv)
    # and the recursion knows the shifted sampler's law too: the difference is the shift, not noise
    m1, v1 = predicted_moments(sampler, steps, eta, shift=1)
    zm1, zv1 = z_scores(sample(sampler, steps, eta, shift=1), m1, v1)
    assert abs(zm1) < Z_MAX and abs(zv1) < Z_MAX


def test_clipping_is_inactive_for_data_inside_the_range():
    for sampler, steps, eta in (("ddim", 10, 0.0), ("ddim", 50, 1.0)):
        on, off = sample(sampler, steps, eta, clip=True), sample(sampler, steps, eta, clip=False)
        assert (on - off).abs().gt(1e-5).double().mean().item() < 1e-4, (sampler, steps, eta)
