"""The models: a convolutional VAE (and its plain-autoencoder ablation) and a VQ-VAE.

Every loss is in nats per image (summed over pixels), so the reconstruction term of the VAE and of
the VQ-VAE and the KL term are on one scale.

ELBO(x) = E_{q(z|x)}[log p(x|z)] - KL(q(z|x) || p(z)) <= log p(x),
with q(z|x) = N(mu(x), diag sigma^2(x)), p(z) = N(0, I), z = mu + sigma * eps (reparameterisation).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from paperlab.vae.config import Config

LOG_2PI = math.log(2 * math.pi)


# --------------------------------------------------------------------------------- the two ELBO terms
def gaussian_kl_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per example, summed over the last dim:
    0.5 * sum(mu^2 + sigma^2 - log sigma^2 - 1)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).sum(-1)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor | float) -> torch.Tensor:
    """log N(x; mean, sigma^2) per element."""
    log_sigma = torch.as_tensor(log_sigma, dtype=x.dtype, device=x.device)
    return -0.5 * ((x - mean) * torch.exp(-log_sigma)).pow(2) - log_sigma - 0.5 * LOG_2PI


def log_likelihood(
    x: torch.Tensor, out: torch.Tensor, likelihood: str, sigma: float | torch.Tensor = 0.1
) -> torch.Tensor:
    """log p(x|z) per image (summed over all pixels) for the decoder output ``out``.

    bernoulli: ``out`` are logits, x in [0, 1] (exact for binary x). gaussian: ``out`` is the mean, the
    standard deviation is ``sigma`` (a number, or a scalar tensor when it is learned)."""
    if likelihood == "bernoulli":
        ll = -F.binary_cross_entropy_with_logits(out, x, reduction="none")
    else:
        ll = gaussian_log_density(x, out, torch.log(torch.as_tensor(sigma, dtype=x.dtype)))
    return ll.flatten(1).sum(1)


def decoder_mean(out: torch.Tensor, likelihood: str) -> torch.Tensor:
    """The mean of p(x|z), as an image in [0, 1]."""
    return torch.sigmoid(out) if likelihood == "bernoulli" else out.clamp(0, 1)


# ------------------------------------------------------------------------------------------- networks
class Encoder(nn.Module):
    """x (B, C, H, W) -> features (B, channels[-1], H / 2^n, W / 2^n): stride-2 4x4 convs + a 3x3 conv."""

    def __init__(self, in_channels: int, channels: list[int]):
        super().__init__()
        layers, prev = [], in_channels
        for c in channels:
            layers += [nn.Conv2d(prev, c, 4, 2, 1), nn.SiLU()]
            prev = c
        layers += [nn.Conv2d(prev, prev, 3, 1, 1), nn.SiLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    """features (B, channels[-1], h, w) -> decoder output (B, C, H, W): the mirror of :class:`Encoder`.

    ``upsample="resize"`` (the default): each x2 step is a nearest-neighbour resize followed by a 3x3 conv,
    so a spatially constant input stays constant away from the border: no stride-periodic pattern can be
    built in (Odena, Dumoulin & Olah 2016, "Deconvolution and checkerboard artifacts"). ``"transposed"``:
    the 4x4 / stride-2 transposed convs the first results were made with. Their kernel is a multiple of
    the stride, so the overlap is even, but each of the 2x2 output phases has its own 2x2 sub-kernel: a
    constant input already comes out with a period-2 pattern per step (period 2^n after n steps), the
    grid visible on the Olivetti prior samples (tested in ``test_vae_math``)."""

    def __init__(self, out_channels: int, channels: list[int], upsample: str = "resize"):
        super().__init__()
        rev = list(reversed(channels))
        layers = [nn.Conv2d(rev[0], rev[0], 3, 1, 1), nn.SiLU()]
        for c, nxt in zip(rev, rev[1:] + [rev[-1]]):
            if upsample == "transposed":
                layers += [nn.ConvTranspose2d(c, nxt, 4, 2, 1), nn.SiLU()]
            else:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, nxt, 3, 1, 1), nn.SiLU()]
        layers += [nn.Conv2d(rev[-1], out_channels, 3, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, h):
        return self.net(h)


class _DecoderSigma(nn.Module):
    """The decoder's Gaussian standard deviation: the fixed ``sigma`` of the config, or (``learn_sigma``)
    one scalar learned with the ELBO, initialised at ``sigma``. For a given decoder mean the ELBO is
    maximised by sigma^2 = the mean squared residual, so a learned sigma is the tightest bound in the
    family and weighs reconstruction against KL by the data, not by hand (Rybkin, Daniilidis & Levine
    2021, "Simple and Effective VAE Training with Calibrated Decoders", arXiv 2006.13202)."""

    def _init_sigma(self, sigma: float, learn: bool) -> None:
        self.learn_sigma = learn
        if learn:
            self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma)))
        else:
            self.fixed_sigma = sigma

    @property
    def sigma(self) -> float | torch.Tensor:
        return self.log_sigma.exp() if self.learn_sigma else self.fixed_sigma


def _check_input(x: torch.Tensor, shape: tuple[int, int, int]) -> None:
    if tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"this model takes images of shape {tuple(shape)} (C, H, W), got {tuple(x.shape[1:])}")


class VAE(_DecoderSigma):
    """Gaussian q(z|x) from a conv encoder, p(z) = N(0, I), conv decoder for p(x|z).

    ``deterministic=True`` is the plain autoencoder: z = mu(x), no KL term, no sampling."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: list[int],
        latent_dim: int,
        likelihood: str = "bernoulli",
        sigma: float = 0.1,
        deterministic: bool = False,
        upsample: str = "resize",
        learn_sigma: bool = False,
    ):
        super().__init__()
        self.image_shape, self.likelihood = tuple(image_shape), likelihood
        self._init_sigma(sigma, learn_sigma and likelihood == "gaussian")
        self.latent_dim, self.deterministic = latent_dim, deterministic
        c, h, w = image_shape
        f = 2 ** len(channels)
        self.feat_shape = (channels[-1], h // f, w // f)
        n_feat = math.prod(self.feat_shape)
        self.encoder = Encoder(c, channels)
        self.to_q = nn.Linear(n_feat, latent_dim if deterministic else 2 * latent_dim)
        self.from_z = nn.Sequential(nn.Linear(latent_dim, n_feat), nn.SiLU())
        self.decoder = Decoder(c, channels, upsample)

    def encode(self, x):
        """Parameters (mu, logvar) of q(z|x); logvar is None for the plain autoencoder."""
        _check_input(x, self.image_shape)
        q = self.to_q(self.encoder(x).flatten(1))
        if self.deterministic:
            return q, None
        mu, logvar = q.chunk(2, dim=-1)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z):
        return self.decoder(self.from_z(z).view(-1, *self.feat_shape))

    def forward(self, x, beta: float = 1.0) -> dict:
        """One-sample ELBO terms per image: ``recon`` = -log p(x|z), ``kl`` = KL(q(z|x)||p(z)) (both
        in nats), ``loss`` = mean(recon + beta * kl) (the negative ELBO when beta = 1)."""
        mu, logvar = self.encode(x)
        if self.deterministic:
            z, kl = mu, torch.zeros(len(x), device=x.device)
        else:
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # reparameterisation
            kl = gaussian_kl_standard(mu, logvar)
        out = self.decode(z)
        recon = -log_likelihood(x, out, self.likelihood, self.sigma)
        return {"loss": (recon + beta * kl).mean(), "recon": recon, "kl": kl, "out": out, "mu": mu}

    @torch.no_grad()
    def importance_log_likelihood(self, x, k: int = 64, chunk: int = 4096) -> torch.Tensor:
        """log p(x) estimated with k importance samples from q (Burda et al. 2015): a tighter lower
        bound than the ELBO (k = 1), approaching log p(x) as k grows."""
        mu, logvar = self.encode(x)
        std = torch.exp(0.5 * logvar)
        z = mu + std * torch.randn(k, *mu.shape, dtype=mu.dtype)  # (k, B, d)
        log_q = gaussian_log_density(z, mu, 0.5 * logvar).sum(-1)
        log_p_z = gaussian_log_density(z, torch.zeros_like(z), 0.0).sum(-1)
        flat_z = z.reshape(-1, z.shape[-1])
        flat_x = x.expand(k, *x.shape).reshape(-1, *x.shape[1:])
        ll = torch.cat(
            [
                log_likelihood(xc, self.decode(zc), self.likelihood, self.sigma)
                for zc, xc in zip(flat_z.split(chunk), flat_x.split(chunk))
            ]
        ).view(k, -1)
        return torch.logsumexp(ll + log_p_z - log_q, 0) - math.log(k)


# --------------------------------------------------------------------------------------------- VQ-VAE
class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantisation onto a codebook of K vectors of size D (van den Oord et al. 2017).

    The decoder gets z_q = z_e + sg(e_k - z_e): the value of the code e_k, the gradient of z_e
    (straight-through). Codebook loss ||sg(z_e) - e||^2 moves the codes, the commitment loss
    beta ||z_e - sg(e)||^2 keeps the encoder near its codes. Codes unused for a window of steps can be
    moved onto encoder outputs (:meth:`reset_dead_codes`)."""

    def __init__(self, codebook_size: int, code_dim: int, commitment: float = 0.25, init: str = "uniform"):
        super().__init__()
        self.codebook = nn.Embedding(codebook_size, code_dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / codebook_size, 1.0 / codebook_size)
        self.commitment = commitment
        self.register_buffer("usage", torch.zeros(codebook_size))  # assignments since the last reset check
        # init="data": the first training batch's encoder outputs become the codes (no collapsed start)
        self.register_buffer("initialised", torch.tensor(init != "data"))

    @torch.no_grad()
    def init_from(self, z_e: torch.Tensor) -> None:
        """Set the K codes to K random encoder outputs of ``z_e`` (B, D, h, w), with repetition when the
        batch has fewer than K positions."""
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
        pick = (
            torch.randperm(len(flat))[: self.size] if len(flat) >= self.size else torch.randint(len(flat), (self.size,))
        )
        self.codebook.weight.data.copy_(flat[pick])
        self.initialised.fill_(True)

    @property
    def size(self) -> int:
        return self.codebook.num_embeddings

    def codes(self, z_e: torch.Tensor) -> torch.Tensor:
        """Indices (B, h, w) of the nearest codes to z_e (B, D, h, w)."""
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
        w = self.codebook.weight
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ w.t() + w.pow(2).sum(1)[None]
        return dist.argmin(1).view(z_e.shape[0], *z_e.shape[2:])

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        """Code vectors (B, D, h, w) of indices (B, h, w)."""
        return self.codebook(idx).permute(0, 3, 1, 2)

    def forward(self, z_e: torch.Tensor) -> dict:
        if self.training and not bool(self.initialised):
            self.init_from(z_e)
        idx = self.codes(z_e)
        e = self.lookup(idx)
        codebook_loss = (z_e.detach() - e).pow(2).flatten(1).sum(1)
        commit_loss = (z_e - e.detach()).pow(2).flatten(1).sum(1)
        z_q = z_e + (e - z_e).detach()  # straight-through estimator
        counts = torch.bincount(idx.flatten(), minlength=self.size).float()
        if self.training:
            self.usage += counts
        p = counts / counts.sum()
        perplexity = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())
        return {
            "z_q": z_q,
            "idx": idx,
            "codebook_loss": codebook_loss,
            "commit_loss": commit_loss,
            "vq_loss": codebook_loss + self.commitment * commit_loss,
            "perplexity": perplexity,
            "used": (counts > 0).float().mean(),
        }

    @torch.no_grad()
    def reset_dead_codes(self, z_e: torch.Tensor, generator: torch.Generator | None = None) -> int:
        """Move every code not used since the last call onto a random encoder output of ``z_e``
        (B, D, h, w); start a new usage window. Returns the number of codes moved."""
        dead = (self.usage == 0).nonzero().flatten()
        if len(dead):
            flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
            pick = torch.randint(len(flat), (len(dead),), generator=generator)
            self.codebook.weight.data[dead] = flat[pick]
        self.usage.zero_()
        return len(dead)


class VQVAE(_DecoderSigma):
    """Encoder -> 1x1 conv to D -> quantiser -> 1x1 conv -> decoder; same conv trunk as :class:`VAE`."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: list[int],
        codebook_size: int,
        code_dim: int,
        commitment: float = 0.25,
        likelihood: str = "bernoulli",
        sigma: float = 0.1,
        upsample: str = "resize",
        learn_sigma: bool = False,
        codebook_init: str = "uniform",
    ):
        super().__init__()
        self.image_shape, self.likelihood = tuple(image_shape), likelihood
        self._init_sigma(sigma, learn_sigma and likelihood == "gaussian")
        c, h, w = image_shape
        f = 2 ** len(channels)
        self.grid = (h // f, w // f)
        self.encoder = nn.Sequential(Encoder(c, channels), nn.Conv2d(channels[-1], code_dim, 1))
        self.quantizer = VectorQuantizer(codebook_size, code_dim, commitment, codebook_init)
        self.post = nn.Sequential(nn.Conv2d(code_dim, channels[-1], 1), nn.SiLU())
        self.decoder = Decoder(c, channels, upsample)

    def encode(self, x):
        _check_input(x, self.image_shape)
        return self.encoder(x)

    def decode_codes(self, idx: torch.Tensor) -> torch.Tensor:
        """Decoder output for a grid of code indices (B, h, w)."""
        return self.decoder(self.post(self.quantizer.lookup(idx)))

    def forward(self, x, beta: float = 1.0) -> dict:
        z_e = self.encode(x)
        q = self.quantizer(z_e)
        out = self.decoder(self.post(q["z_q"]))
        recon = -log_likelihood(x, out, self.likelihood, self.sigma)
        return {"loss": (recon + q["vq_loss"]).mean(), "recon": recon, "out": out, "z_e": z_e, **q}


def build_model(cfg: Config, image_shape=None) -> nn.Module:
    shape = tuple(image_shape or cfg.image_shape)
    if cfg.model == "vqvae":
        return VQVAE(
            shape,
            cfg.channels,
            cfg.codebook_size,
            cfg.code_dim,
            cfg.commitment,
            cfg.likelihood,
            cfg.gaussian_sigma,
            cfg.upsample,
            cfg.learn_sigma,
            cfg.codebook_init,
        )
    return VAE(
        shape,
        cfg.channels,
        cfg.latent_dim,
        cfg.likelihood,
        cfg.gaussian_sigma,
        deterministic=cfg.model == "ae",
        upsample=cfg.upsample,
        learn_sigma=cfg.learn_sigma,
    )


# ------------------------------------------------------------------ autoregressive prior over the codes
class CodePrior(nn.Module):
    """A small decoder-only transformer over the code grid in raster order: p(z) = prod_i p(z_i | z_<i).

    Input is [BOS, z_1 .. z_{L-1}], output the logits of z_1 .. z_L; a causal mask keeps position i
    from seeing z_i and later codes."""

    def __init__(
        self, codebook_size: int, length: int, dim: int = 64, layers: int = 2, heads: int = 4, dropout: float = 0.1
    ):
        super().__init__()
        self.codebook_size, self.length = codebook_size, length
        self.tok = nn.Embedding(codebook_size + 1, dim)  # the last token is BOS
        self.pos = nn.Parameter(torch.randn(length, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True, activation="gelu"
        )
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, codebook_size)
        self.register_buffer("mask", torch.triu(torch.full((length, length), float("-inf")), 1), persistent=False)

    def forward(self, codes_BxL: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, K) of each code given the codes before it."""
        B, L = codes_BxL.shape
        bos = torch.full((B, 1), self.codebook_size, dtype=torch.long, device=codes_BxL.device)
        inp = torch.cat([bos, codes_BxL[:, :-1]], 1)
        h = self.tok(inp) + self.pos[:L]
        h = self.blocks(h, mask=self.mask[:L, :L], is_causal=True)
        return self.head(self.norm(h))

    def nll(self, codes_BxL: torch.Tensor) -> torch.Tensor:
        """-log p(z) per grid, in nats."""
        logits = self.forward(codes_BxL)
        return F.cross_entropy(logits.transpose(1, 2), codes_BxL, reduction="none").sum(1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        codes = torch.zeros(n, self.length, dtype=torch.long)
        for i in range(self.length):
            logits = self.forward(codes[:, : i + 1])[:, i] / temperature
            codes[:, i] = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(1)
        return codes


def build_prior(cfg: Config, model: VQVAE) -> CodePrior:
    """The code prior of ``cfg`` over the code grid of ``model``."""
    return CodePrior(
        model.quantizer.size, math.prod(model.grid), cfg.prior_dim, cfg.prior_layers, cfg.prior_heads, cfg.prior_dropout
    )
