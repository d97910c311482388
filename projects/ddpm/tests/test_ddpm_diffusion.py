"""The diffusion's mathematics: forward process, posterior, samplers."""

import math

import pytest
import torch

from paperlab.ddpm.diffusion import GaussianDiffusion, make_betas

torch.set_num_threads(1)  # small tensors on a shared 2-core machine: more threads only contend


def _diffusion(T=1000, schedule="linear", **kw):
    return GaussianDiffusion(make_betas(schedule, T), **kw)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_closed_form_forward_matches_iterated_noising(schedule):
    """x_t from t+1 single steps x_s = sqrt(1 - beta_s) x_{s-1} + sqrt(beta_s) z has the law of q(x_t | x_0)."""
    d = _diffusion(schedule=schedule)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.tensor([-0.8, 0.9])
    n = 20_000
    x = x0.repeat(n, 1)
    checks = {0, 99, 499, 999}
    for t in range(d.T):
        x = float((1 - d.betas[t]).sqrt()) * x + float(d.betas[t].sqrt()) * torch.randn(x.shape, generator=gen)
        if t not in checks:
            continue
        closed = d.q_sample(x0.repeat(n, 1), torch.full((n,), t), torch.randn(n, 2, generator=gen))
        mean, std = (d.sqrt_abar[t] * x0).float(), float(d.sqrt_one_minus_abar[t])
        tol = 5 * std / math.sqrt(n)
        assert torch.allclose(x.mean(0), mean, atol=tol) and torch.allclose(closed.mean(0), mean, atol=tol)
        assert torch.allclose(x.std(0), torch.full((2,), std), rtol=0.04)
        assert torch.allclose(closed.std(0), torch.full((2,), std), rtol=0.04)


def test_schedules():
    lin = make_betas("linear", 1000)
    assert lin[0].item() == pytest.approx(1e-4) and lin[-1].item() == pytest.approx(0.02)
    d = GaussianDiffusion(lin)
    assert d.abar[-1] < 1e-4  # x_T is nearly pure noise (Ho et al.: L_T ~ 1e-5 nats/dim)
    cos = GaussianDiffusion(make_betas("cosine", 1000))
    assert (cos.abar[1:] < cos.abar[:-1]).all() and cos.abar[500] > d.abar[500]  # cosine destroys later
    with pytest.raises(ValueError, match="schedule"):
        make_betas("quadratic", 10)


def test_posterior_is_bayes_rule_on_gaussians():
    """q(x_{t-1}|x_t, x_0) ∝ q(x_t|x_{t-1}) q(x_{t-1}|x_0): precisions add, means weight by precision."""
    d = _diffusion()
    x0 = torch.tensor([[0.7, -0.2]], dtype=torch.float64)
    xt = torch.tensor([[-1.3, 0.5]], dtype=torch.float64)
    for t in (1, 10, 500, 999):
        prior_mean, prior_var = d.abar[t - 1].sqrt() * x0, 1 - d.abar[t - 1]  # q(x_{t-1}|x_0)
        a, b = d.alphas[t], d.betas[t]  # q(x_t|x_{t-1}) = N(sqrt(a) x_{t-1}, b)
        var = 1 / (1 / prior_var + a / b)
        mean = var * (prior_mean / prior_var + a.sqrt() * xt / b)
        got_mean, got_var = d.q_posterior(x0, xt, torch.tensor([t]))
        assert torch.allclose(got_mean, mean, rtol=1e-9, atol=1e-12)
        assert torch.allclose(got_var, var.expand_as(xt), rtol=1e-9)
    mean0, var0 = d.q_posterior(x0, xt, torch.tensor([0]))  # t = 0: x_{-1} is x_0 itself
    assert torch.allclose(mean0, x0) and (var0 == 0).all()


def test_posterior_by_monte_carlo_regression():
    """The posterior mean is linear in (x_0, x_t): regress x_{t-1} on x_t from joint samples at fixed x_0."""
    d = _diffusion()
    gen = torch.Generator().manual_seed(1)
    t, n, x0 = 300, 200_000, 0.4
    z = torch.randn(n, generator=gen, dtype=torch.float64)
    x_prev = d.abar[t - 1].sqrt() * x0 + d.sqrt_one_minus_abar[t - 1] * z
    xt = d.alphas[t].sqrt() * x_prev + d.betas[t].sqrt() * torch.randn(n, generator=gen, dtype=torch.float64)
    slope = torch.cov(torch.stack([xt, x_prev]))[0, 1] / xt.var()
    resid_var = (x_prev - x_prev.mean() - slope * (xt - xt.mean())).var()
    assert slope.item() == pytest.approx(d.posterior_coef_xt[t].item(), rel=0.02)
    assert resid_var.item() == pytest.approx(d.posterior_var[t].item(), rel=0.02)


def test_ddim_eta1_consecutive_steps_is_ddpm_with_posterior_variance():
    for clip in (False, True):
        d = _diffusion(sigma="posterior", clip_denoised=clip)
        gen = torch.Generator().manual_seed(2)
        xt, eps, z = (torch.randn(4, 1, 5, 5, generator=gen, dtype=torch.float64) * 1.5 for _ in range(3))
        for t in (1, 37, 600, 999):
            ddpm = d.p_step(eps, xt, t, z)
            ddim = d.ddim_step(eps, xt, t, t - 1, eta=1.0, noise=z)
            assert torch.allclose(ddpm, ddim, atol=1e-10), (clip, t)
        # eta = 0 adds no noise at all
        assert torch.equal(d.ddim_step(eps, xt, 500, 400, 0.0, z), d.ddim_step(eps, xt, 500, 400, 0.0, None))


def _oracle(d, c):
    """The exact eps-predictor when the data is the single point c: eps = (x_t - sqrt(abar_t) c) / sqrt(1 - abar_t)."""

    def model(x, t):
        return (x - d.sqrt_abar[t].view(-1, 1, 1, 1).float() * c) / d.sqrt_one_minus_abar[t].view(-1, 1, 1, 1).float()

    return model


def test_samplers_recover_a_point_mass_with_the_exact_denoiser():
    d = _diffusion(T=200)
    c = torch.full((1, 1, 4, 4), 0.3)
    model = _oracle(d, c)
    gen = torch.Generator().manual_seed(3)
    x_ddpm, frames = d.sample_ddpm(model, (3, 1, 4, 4), generator=gen, frames=5)
    assert torch.allclose(x_ddpm, c.expand(3, 1, 4, 4), atol=1e-4)
    assert 2 <= len(frames) <= 6 and frames[0].abs().mean() > 0.3  # starts from noise
    for steps, eta in ((5, 0.0), (20, 1.0), (200, 0.0)):
        x, _ = d.sample_ddim(model, (3, 1, 4, 4), steps, eta, generator=gen)
        assert torch.allclose(x, c.expand(3, 1, 4, 4), atol=1e-4), (steps, eta)


def test_ddim_eta0_is_deterministic_given_x_T():
    d = _diffusion(T=100)
    torch.manual_seed(0)
    w = torch.randn(1)

    def model(x, t):  # any smooth function of (x, t)
        return torch.tanh(x * w + t.view(-1, 1, 1, 1) / 100)

    x_T = torch.randn(2, 1, 3, 3)
    a, _ = d.sample_ddim(model, x_T.shape, 10, 0.0, generator=torch.Generator().manual_seed(1), x_T=x_T)
    b, _ = d.sample_ddim(model, x_T.shape, 10, 0.0, generator=torch.Generator().manual_seed(2), x_T=x_T)
    c, _ = d.sample_ddim(model, x_T.shape, 10, 1.0, generator=torch.Generator().manual_seed(2), x_T=x_T)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert d.ddim_timesteps(10)[0] == 99 and d.ddim_timesteps(10)[-1] == 0 and len(d.ddim_timesteps(10)) == 10
    with pytest.raises(ValueError, match="DDIM steps"):
        d.ddim_timesteps(101)
    with pytest.raises(ValueError, match="all 100 steps"):
        d.sample(model, x_T.shape, "ddpm", 50)


def test_loss_is_the_noise_mse():
    d = _diffusion(T=50)
    x0 = torch.zeros(8, 1, 2, 2)
    zero = d.loss(lambda x, t: torch.zeros_like(x), x0, torch.Generator().manual_seed(0))
    # with x_0 = 0, x_t = sqrt(1 - abar_t) eps, so eps = x_t / sqrt(1 - abar_t) is a perfect prediction
    perfect = d.loss(
        lambda x, t: x / d.sqrt_one_minus_abar[t].view(-1, 1, 1, 1).float(), x0, torch.Generator().manual_seed(0)
    )
    assert 0.5 < zero.item() < 1.5 and perfect.item() < 1e-10


def test_ddim_clip_conventions():
    """ "consistent" recomputes eps from the clipped x0 (so x_t is still sqrt(abar) x0 + sqrt(1 - abar) eps);
    "model-eps" keeps the network's eps. They agree wherever the predicted x0 is inside [-1, 1]."""
    betas = make_betas("linear", 100)
    cons, keep = GaussianDiffusion(betas), GaussianDiffusion(betas, ddim_clip="model-eps")
    gen = torch.Generator().manual_seed(0)
    xt = torch.randn(2, 1, 4, 4, generator=gen, dtype=torch.float64)
    t = 50
    ab = float(cons.abar[t])
    x0_in = torch.rand(2, 1, 4, 4, generator=gen, dtype=torch.float64) * 1.6 - 0.8  # inside the range
    eps_in = (xt - math.sqrt(ab) * x0_in) / math.sqrt(1 - ab)
    assert torch.allclose(cons.ddim_step(eps_in, xt, t, 30, 0.0, None), keep.ddim_step(eps_in, xt, t, 30, 0.0, None))
    x0_out = x0_in * 3  # mostly outside: the conventions differ, and "consistent" equals the step from the
    eps_out = (xt - math.sqrt(ab) * x0_out) / math.sqrt(1 - ab)  # clipped x0 with its consistent eps
    a, b = cons.ddim_step(eps_out, xt, t, 30, 0.0, None), keep.ddim_step(eps_out, xt, t, 30, 0.0, None)
    x0c = x0_out.clamp(-1, 1)
    eps_c = (xt - math.sqrt(ab) * x0c) / math.sqrt(1 - ab)
    assert not torch.allclose(a, b) and torch.allclose(a, keep.ddim_step(eps_c, xt, t, 30, 0.0, None))
    ab30 = float(cons.abar[30])
    assert torch.allclose(b, math.sqrt(ab30) * x0c + math.sqrt(1 - ab30) * eps_out)
    with pytest.raises(ValueError, match="ddim_clip"):
        GaussianDiffusion(betas, ddim_clip="sometimes")
