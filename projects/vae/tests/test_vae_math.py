"""The mathematics the models rely on: the Gaussian KL, the ELBO as a lower bound, the VQ estimator."""

from __future__ import annotations

import math

import pytest
import torch

from paperlab.vae.config import Config
from paperlab.vae.model import (
    VAE,
    CodePrior,
    Decoder,
    VectorQuantizer,
    build_model,
    gaussian_kl_standard,
    gaussian_log_density,
    log_likelihood,
)


def test_analytic_gaussian_kl_matches_a_monte_carlo_estimate():
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.3, -0.7]])
    logvar = torch.tensor([[-1.0, 0.5, 0.0], [1.2, -2.0, 0.3]])
    std = torch.exp(0.5 * logvar)
    n = 400_000
    eps = torch.randn(n, *mu.shape, generator=g)
    z = mu + std * eps
    log_q = gaussian_log_density(z, mu, 0.5 * logvar).sum(-1)
    log_p = gaussian_log_density(z, torch.zeros_like(z), 0.0).sum(-1)
    mc = (log_q - log_p).mean(0)
    analytic = gaussian_kl_standard(mu, logvar)
    se = (log_q - log_p).std(0) / math.sqrt(n)
    assert torch.all((mc - analytic).abs() < 4 * se + 1e-3), (mc, analytic, se)
    # and it is zero exactly at the prior, positive elsewhere
    assert gaussian_kl_standard(torch.zeros(1, 3), torch.zeros(1, 3)).item() == 0.0
    assert torch.all(analytic > 0)


def test_bernoulli_and_gaussian_log_likelihoods_are_the_densities():
    x = torch.tensor([[1.0, 0.0, 1.0]])
    logits = torch.tensor([[0.3, -1.2, 2.0]])
    p = torch.sigmoid(logits)
    expected = (x * p.log() + (1 - x) * (1 - p).log()).sum()
    assert torch.allclose(log_likelihood(x, logits, "bernoulli"), expected.view(1), atol=1e-6)
    mean = torch.tensor([[0.9, 0.1, 0.5]])
    normal = torch.distributions.Normal(mean, 0.2)
    assert torch.allclose(log_likelihood(x, mean, "gaussian", 0.2), normal.log_prob(x).sum(1), atol=1e-5)


# ------------------------------------------------ ELBO <= log p(x) where log p(x) is known exactly
def _linear_gaussian(seed=0, d_x=4, d_z=2, sigma=0.5):
    """p(z) = N(0, I), p(x|z) = N(W z + b, sigma^2 I): p(x) = N(b, W W^T + sigma^2 I) and the exact
    posterior p(z|x) = N(S W^T (x - b) / sigma^2, S) with S = (I + W^T W / sigma^2)^-1."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d_x, d_z, generator=g, dtype=torch.float64)
    b = torch.randn(d_x, generator=g, dtype=torch.float64)
    cov_x = W @ W.T + sigma**2 * torch.eye(d_x, dtype=torch.float64)
    S = torch.linalg.inv(torch.eye(d_z, dtype=torch.float64) + W.T @ W / sigma**2)
    return W, b, sigma, cov_x, S


def _elbo(x, W, b, sigma, mu_q, logvar_q):
    """ELBO = E_q[log p(x|z)] - KL(q || p) with the model's own functions. For a linear decoder the
    expectation is exact: E_q log N(x; Wz + b, s^2) = log N(x; W mu + b, s^2) - tr(W diag(var) W^T) / (2 s^2)."""
    recon = log_likelihood(x[None], (W @ mu_q + b)[None], "gaussian", sigma)[0]
    recon = recon - (W.pow(2) @ logvar_q.exp()).sum() / (2 * sigma**2)
    return recon - gaussian_kl_standard(mu_q[None], logvar_q[None])[0]


def test_elbo_expectation_matches_sampling_through_the_reparameterisation():
    W, b, sigma, _, _ = _linear_gaussian()
    x = torch.tensor([0.7, -1.1, 0.3, 2.0], dtype=torch.float64)
    mu_q, logvar_q = torch.tensor([0.2, -0.4], dtype=torch.float64), torch.tensor([-0.5, 0.1], dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    z = mu_q + torch.exp(0.5 * logvar_q) * torch.randn(100_000, 2, generator=g, dtype=torch.float64)
    samples = log_likelihood(x.expand(len(z), -1), z @ W.T + b, "gaussian", sigma)
    mc = samples.mean() - gaussian_kl_standard(mu_q[None], logvar_q[None])[0]
    assert mc.item() == pytest.approx(
        _elbo(x, W, b, sigma, mu_q, logvar_q).item(), abs=4 * samples.std().item() / math.sqrt(len(z))
    )


def test_elbo_never_exceeds_the_exact_log_likelihood_and_the_gap_is_the_posterior_kl():
    W, b, sigma, cov_x, S = _linear_gaussian()
    x = torch.tensor([0.7, -1.1, 0.3, 2.0], dtype=torch.float64)
    log_px = torch.distributions.MultivariateNormal(b, cov_x).log_prob(x).item()
    post_mu = S @ W.T @ (x - b) / sigma**2
    post = torch.distributions.MultivariateNormal(post_mu, S)
    g = torch.Generator().manual_seed(3)
    for _ in range(20):  # arbitrary diagonal Gaussian q's
        mu_q = torch.randn(2, generator=g, dtype=torch.float64)
        logvar_q = torch.randn(2, generator=g, dtype=torch.float64)
        elbo = _elbo(x, W, b, sigma, mu_q, logvar_q).item()
        gap = torch.distributions.kl_divergence(
            torch.distributions.MultivariateNormal(mu_q, torch.diag(logvar_q.exp())), post
        ).item()
        assert elbo < log_px
        assert log_px - elbo == pytest.approx(gap, rel=1e-9, abs=1e-9)  # log p(x) - ELBO = KL(q || p(z|x))
    # with a 1-d latent the exact posterior is in the family: the ELBO reaches log p(x)
    W1, b1, s1, cov1, S1 = _linear_gaussian(d_z=1)
    mu1 = S1 @ W1.T @ (x - b1) / s1**2
    elbo1 = _elbo(x, W1, b1, s1, mu1, torch.log(torch.diagonal(S1))).item()
    assert elbo1 == pytest.approx(torch.distributions.MultivariateNormal(b1, cov1).log_prob(x).item(), abs=1e-9)


def test_vae_importance_bound_lies_between_the_elbo_and_log_px_where_log_px_is_computable():
    """A tiny conv VAE on a 4x4 binary image with a 1-d latent: log p(x) by quadrature over z, against
    the expected one-sample ELBO and the importance-weighted bound."""
    torch.manual_seed(0)
    model = VAE((1, 4, 4), [4], latent_dim=1, likelihood="bernoulli")
    with torch.no_grad():
        model.to_q.bias[1] = 1.0  # a broad q: a loose ELBO (ordering tested with a margin), a good proposal
    x = (torch.rand(1, 1, 4, 4) > 0.5).float()
    grid = torch.linspace(-8, 8, 2001)[:, None]
    with torch.no_grad():
        ll = log_likelihood(x.expand(len(grid), -1, -1, -1), model.decode(grid), "bernoulli")
        log_pz = gaussian_log_density(grid, torch.zeros_like(grid), 0.0).sum(-1)
        log_px = (torch.logsumexp(ll + log_pz, 0) + math.log(grid[1, 0] - grid[0, 0])).item()
        out = model(x.expand(4000, -1, -1, -1))
        elbo = -(out["recon"] + out["kl"]).mean().item()
        iw = model.importance_log_likelihood(x, k=8000).item()
    assert elbo < iw - 0.01 and iw <= log_px + 0.02
    assert iw == pytest.approx(log_px, abs=0.05)


# ------------------------------------------------------------------------------------------- VQ-VAE
def test_straight_through_passes_the_decoder_gradient_to_the_encoder_unchanged():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 3)
    z_e = torch.randn(2, 3, 2, 2, requires_grad=True)
    out = vq(z_e)
    w = torch.randn_like(out["z_q"])
    (out["z_q"] * w).sum().backward()  # a 'decoder loss' whose gradient wrt z_q is w
    assert torch.equal(z_e.grad, w)
    assert vq.codebook.weight.grad is None  # the codebook gets nothing through the straight-through path
    # forward value is the code, not z_e
    assert torch.allclose(out["z_q"], vq.lookup(out["idx"]))
    assert not torch.allclose(out["z_q"], z_e)


def test_codebook_and_commitment_losses_move_the_right_parameters():
    torch.manual_seed(0)
    vq = VectorQuantizer(6, 2, commitment=0.25)
    z_e = torch.randn(1, 2, 3, 3, requires_grad=True)
    out = vq(z_e)
    out["codebook_loss"].sum().backward()
    assert z_e.grad is None or torch.all(z_e.grad == 0)  # sg(z_e): the codebook loss does not move the encoder
    used = out["idx"].unique()
    grad = vq.codebook.weight.grad
    unused = torch.tensor([k for k in range(6) if k not in used.tolist()])
    assert torch.all(grad[unused] == 0) and torch.all(grad[used].abs().sum(1) > 0)
    # one SGD step moves each used code to the mean of its assigned encoder outputs (lr 1/(2 n_k))
    flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, 2)
    before = vq.codebook.weight.detach().clone()
    with torch.no_grad():
        for k in used:
            n_k = (out["idx"].flatten() == k).sum()
            new = before[k] - grad[k] / (2 * n_k)
            assert torch.allclose(new, flat[out["idx"].flatten() == k].mean(0), atol=1e-6)
    # the commitment loss moves only the encoder, scaled by beta = 0.25
    z2 = z_e.detach().clone().requires_grad_(True)
    vq.codebook.weight.grad = None
    out2 = vq(z2)
    out2["vq_loss"].sum().backward()
    expected = 0.25 * 2 * (z2.detach() - vq.lookup(out2["idx"]).detach())
    assert torch.allclose(z2.grad, expected, atol=1e-6)


def test_dead_codes_are_moved_onto_encoder_outputs_and_perplexity_counts_codes():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 2)
    vq.train()
    z_e = torch.randn(4, 2, 2, 2) * 5.0 + 10.0  # far from every initial code: a few codes take all
    out = vq(z_e)
    used_before = int((vq.usage > 0).sum())
    assert used_before < 16 and out["perplexity"] <= used_before + 1e-5
    n = vq.reset_dead_codes(z_e, torch.Generator().manual_seed(0))
    assert n == 16 - used_before
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 2)
    moved = [k for k in range(16) if torch.any(torch.all(torch.isclose(vq.codebook.weight[k], flat), 1))]
    assert len(moved) >= n
    assert torch.all(vq.usage == 0)
    # with codes on the data, more of them are used and the perplexity rises
    assert vq(z_e)["perplexity"] > out["perplexity"]


def test_code_prior_is_causal():
    torch.manual_seed(0)
    prior = CodePrior(codebook_size=5, length=6, dim=16, layers=2, heads=2, dropout=0.0)
    prior.eval()
    codes = torch.randint(5, (1, 6))
    emb_out = {}

    def hook(_, __, out):
        if out.requires_grad:
            out.retain_grad()
        emb_out["e"] = out

    handle = prior.tok.register_forward_hook(hook)
    logits = prior(codes)
    for i in range(6):
        prior.zero_grad()
        logits = prior(codes)
        logits[0, i].sum().backward()
        g = emb_out["e"].grad[0].abs().sum(-1)  # input position j holds code j-1 (position 0: BOS)
        assert torch.all(g[i + 1 :] == 0), f"logits of code {i} see later inputs"
        assert g[i] > 0
    handle.remove()
    samples = prior.sample(3, torch.Generator().manual_seed(0))
    assert samples.shape == (3, 6) and samples.max() < 5


def _constant_input_pattern(upsample: str, seed: int = 0) -> float:
    """Std of the decoder output, away from the zero-padded border, for a spatially constant input
    feature map (random weights): 0 when nothing stride-periodic is built into the upsampling."""
    torch.manual_seed(seed)
    dec = Decoder(1, [16, 32, 32], upsample)
    h = torch.randn(1, 32, 1, 1).expand(1, 32, 8, 8).contiguous()  # constant over space
    with torch.no_grad():
        out = dec(h)[0, 0]
    assert out.shape == (64, 64)
    return out[24:40, 24:40].std().item() / (out.abs().mean().item() + 1e-12)


def test_resize_decoder_has_no_checkerboard_and_the_transposed_one_does():
    """The checkerboard of the first Olivetti samples: 4x4 stride-2 transposed convs give each of the 2x2
    output phases its own sub-kernel, so a constant input comes out with a period-2^n pattern. Nearest
    resize + 3x3 conv maps a constant to a constant (away from the border), whatever the weights."""
    for seed in range(3):
        assert _constant_input_pattern("resize", seed) < 1e-5
        assert _constant_input_pattern("transposed", seed) > 1e-2
    for model in ("vae", "vqvae"):  # the default decoder has no transposed convolution at all
        net = build_model(Config(model=model, dataset="olivetti", data_dir="x", channels=[8, 8, 8]))
        assert not [m for m in net.modules() if isinstance(m, torch.nn.ConvTranspose2d)]


def test_learned_decoder_sigma_converges_to_the_rms_residual():
    """For a fixed decoder mean, the Gaussian log-likelihood is maximised at sigma^2 = mean squared residual:
    gradient ascent on the learned log sigma finds it."""
    torch.manual_seed(0)
    x, mean = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    log_sigma = torch.tensor(math.log(0.1), requires_grad=True)
    opt = torch.optim.Adam([log_sigma], lr=0.05)
    for _ in range(400):
        loss = -log_likelihood(x, mean, "gaussian", log_sigma.exp()).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert log_sigma.exp().item() == pytest.approx((x - mean).pow(2).mean().sqrt().item(), rel=1e-3)
    vae = VAE((1, 16, 16), [8, 8], 4, "gaussian", 0.1, learn_sigma=True)
    assert "log_sigma" in dict(vae.named_parameters()) and vae.sigma.item() == pytest.approx(0.1)
    assert "log_sigma" not in dict(VAE((1, 16, 16), [8, 8], 4, "gaussian", 0.1).named_parameters())


def test_data_init_puts_every_code_on_an_encoder_output_at_the_first_training_call():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4, init="data")
    z_e = torch.randn(2, 4, 4, 4) * 5 + 3  # far from the tiny uniform init
    assert not vq.initialised
    vq.eval()(z_e)  # evaluation never initialises
    assert not vq.initialised
    out = vq.train()(z_e)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 4)
    assert vq.initialised and out["used"].item() == 1.0  # 32 positions, 16 codes: every code is someone's
    assert ((vq.codebook.weight[:, None] - flat[None]).pow(2).sum(-1).min(1).values < 1e-10).all()
    assert bool(VectorQuantizer(16, 4).initialised)  # the default keeps the paper's (uniform) init
