"""The Gaussian diffusion of Ho et al. 2020 (arXiv 2006.11239) and the DDIM sampler of Song et al. 2021
(arXiv 2010.02502).

Indices are 0-based: ``t = 0 .. T-1`` is the paper's ``t = 1 .. T``. With ``alpha_t = 1 - beta_t`` and
``abar_t = prod_{s<=t} alpha_s``:

    forward    q(x_t | x_0)        = N(sqrt(abar_t) x_0, (1 - abar_t) I)                      (eq. 4)
    posterior  q(x_{t-1} | x_t, x_0) = N(c0_t x_0 + ct_t x_t, beta~_t I),                       (eq. 6, 7)
               c0_t = beta_t sqrt(abar_{t-1}) / (1 - abar_t),  ct_t = (1 - abar_{t-1}) sqrt(alpha_t) / (1 - abar_t),
               beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t)
    loss       L_simple = E_{t, x_0, eps} || eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t) ||^2  (eq. 14)
    sampling   x_{t-1} = posterior mean with x_0 replaced by its prediction from eps_theta, + sigma_t z  (Alg. 2)
    DDIM       x_{t'} = sqrt(abar_t') x0_hat + sqrt(1 - abar_t' - s^2) eps_hat + s z,
               s = eta sqrt((1 - abar_t') / (1 - abar_t)) sqrt(1 - abar_t / abar_t')  (DDIM eq. 12, 16)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# How DDIM uses a clipped x0_hat (``clip_denoised``): "consistent" recomputes the noise from it, so that
# x_t = sqrt(abar_t) x0_hat + sqrt(1 - abar_t) eps still holds (what clipping does to DDPM's posterior mean,
# and the default); "model-eps" keeps the network's noise (diffusers' DDIMScheduler default), which pulls a
# sample whose x0_hat leaves [-1, 1] back into range at every step.
DDIM_CLIPS = ("consistent", "model-eps")


def make_betas(schedule: str, timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """``beta_t`` for t = 0..T-1: "linear" (Ho et al.) or "cosine" (Nichol & Dhariwal 2021, eq. 17)."""
    if schedule == "linear":
        return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
    if schedule == "cosine":
        s = 0.008
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        abar = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown schedule {schedule!r} (linear or cosine)")


def _gather(v: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``v[t]`` shaped to broadcast against ``x`` (B, C, H, W)."""
    return v.to(x.device)[t].to(x.dtype).view(-1, *([1] * (x.dim() - 1)))


class GaussianDiffusion:
    """Schedule constants (float64, cast per use) and the forward, posterior, loss and samplers."""

    def __init__(
        self, betas: torch.Tensor, sigma: str = "beta", clip_denoised: bool = True, ddim_clip: str = "consistent"
    ):
        if betas.dim() != 1 or not ((betas > 0) & (betas < 1)).all():
            raise ValueError("betas must be a 1-d tensor with values in (0, 1)")
        if sigma not in ("beta", "posterior"):
            raise ValueError(f"sigma must be 'beta' or 'posterior', got {sigma!r}")
        if ddim_clip not in DDIM_CLIPS:
            raise ValueError(f"ddim_clip must be one of {DDIM_CLIPS}, got {ddim_clip!r}")
        self.T = len(betas)
        self.sigma = sigma
        self.clip_denoised = clip_denoised
        self.ddim_clip = ddim_clip
        b = betas.double()
        self.betas = b
        self.alphas = 1 - b
        self.abar = torch.cumprod(self.alphas, 0)
        self.abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.abar[:-1]])
        self.sqrt_abar = self.abar.sqrt()
        self.sqrt_one_minus_abar = (1 - self.abar).sqrt()
        self.posterior_var = b * (1 - self.abar_prev) / (1 - self.abar)
        self.posterior_coef_x0 = b * self.abar_prev.sqrt() / (1 - self.abar)
        self.posterior_coef_xt = (1 - self.abar_prev) * self.alphas.sqrt() / (1 - self.abar)

    @classmethod
    def from_config(cls, cfg) -> GaussianDiffusion:
        return cls(make_betas(cfg.schedule, cfg.timesteps, cfg.beta_start, cfg.beta_end), cfg.sigma, cfg.clip_denoised)

    # ------------------------------------------------------------------ forward process and loss
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """A draw of x_t ~ q(x_t | x_0) in closed form."""
        if noise is None:
            noise = torch.randn_like(x0)
        return _gather(self.sqrt_abar, t, x0) * x0 + _gather(self.sqrt_one_minus_abar, t, x0) * noise

    def q_posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_{t-1} | x_t, x_0)."""
        mean = _gather(self.posterior_coef_x0, t, xt) * x0 + _gather(self.posterior_coef_xt, t, xt) * xt
        return mean, _gather(self.posterior_var, t, xt).expand_as(xt)

    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return (xt - _gather(self.sqrt_one_minus_abar, t, xt) * eps) / _gather(self.sqrt_abar, t, xt)

    def loss(self, model: EpsModel, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """L_simple: MSE between the true and the predicted noise at a uniformly drawn t."""
        t = torch.randint(0, self.T, (x0.shape[0],), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, generator=generator, dtype=x0.dtype)
        return F.mse_loss(model(self.q_sample(x0, t, noise), t), noise)

    # ------------------------------------------------------------------ ancestral (DDPM) sampling
    def p_step(self, eps: torch.Tensor, xt: torch.Tensor, t: int, noise: torch.Tensor | None) -> torch.Tensor:
        """One step of Algorithm 2: x_{t-1} from x_t and the predicted noise (no noise added at t = 0)."""
        tt = torch.full((xt.shape[0],), t, device=xt.device, dtype=torch.long)
        x0 = self.predict_x0(xt, tt, eps)
        if self.clip_denoised:
            x0 = x0.clamp(-1, 1)
        mean, post_var = self.q_posterior(x0, xt, tt)
        if t == 0 or noise is None:
            return mean
        var = _gather(self.betas, tt, xt) if self.sigma == "beta" else post_var
        return mean + var.sqrt() * noise

    @torch.no_grad()
    def sample_ddpm(
        self,
        model: EpsModel,
        shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        device: str | torch.device = "cpu",
        x_T: torch.Tensor | None = None,
        frames: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Ancestral sampling over all T steps from x_T ~ N(0, I). Returns x_0 and ``frames`` snapshots of x_t."""
        ts = list(reversed(range(self.T)))
        return self._reverse(
            model,
            shape,
            ts,
            lambda eps, x, i, z: self.p_step(eps, x, ts[i], z),
            lambda i: ts[i] > 0,
            generator,
            device,
            x_T,
            frames,
            progress,
        )

    def _reverse(self, model, shape, ts, step, noisy, generator, device, x_T, frames, progress):
        """The reverse chain over the decreasing timesteps ``ts``: ``step(eps, x, i, z)`` is update i, ``noisy(i)``
        says whether it draws fresh noise z. Returns x_0 and about ``frames`` snapshots."""
        x = torch.randn(shape, generator=generator, device=device) if x_T is None else x_T.to(device)
        keep = _frame_indices(len(ts), frames)
        snaps = []
        for i, t in enumerate(ts):
            if len(ts) - 1 - i in keep:
                snaps.append(x.clone())
            eps = model(x, torch.full((shape[0],), t, device=device, dtype=torch.long))
            z = torch.randn(shape, generator=generator, device=device) if noisy(i) else None
            x = step(eps, x, i, z)
            if progress is not None:
                progress(1)
        if frames:
            snaps.append(x.clone())
        return x, snaps

    # ------------------------------------------------------------------ DDIM sampling
    def ddim_timesteps(self, steps: int) -> list[int]:
        """``steps`` timesteps from T-1 down to 0, evenly spaced ("uniform" skipping of the DDIM paper)."""
        if not 1 <= steps <= self.T:
            raise ValueError(f"DDIM steps must be in [1, {self.T}], got {steps}")
        ts = torch.linspace(0, self.T - 1, steps).round().long().tolist()
        return sorted(set(ts), reverse=True)

    def ddim_step(
        self, eps: torch.Tensor, xt: torch.Tensor, t: int, t_prev: int, eta: float, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """x_{t_prev} from x_t (t_prev = -1 means x_0). eta = 0: deterministic; eta = 1 and t_prev = t - 1: DDPM
        with sigma_t^2 = beta~_t."""
        ab_t = float(self.abar[t])
        ab_prev = float(self.abar[t_prev]) if t_prev >= 0 else 1.0
        x0 = (xt - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
        if self.clip_denoised:
            x0 = x0.clamp(-1, 1)
            if self.ddim_clip == "consistent":
                eps = (xt - math.sqrt(ab_t) * x0) / math.sqrt(1 - ab_t)  # the noise consistent with the clipped x_0
        s = eta * math.sqrt((1 - ab_prev) / (1 - ab_t)) * math.sqrt(1 - ab_t / ab_prev)
        x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - s * s, 0.0)) * eps
        if s > 0 and noise is not None:
            x = x + s * noise
        return x

    @torch.no_grad()
    def sample_ddim(
        self,
        model: EpsModel,
        shape: tuple[int, ...],
        steps: int,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
        device: str | torch.device = "cpu",
        x_T: torch.Tensor | None = None,
        frames: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """DDIM sampling with ``steps`` network evaluations."""
        ts = self.ddim_timesteps(steps)
        prev = [*ts[1:], -1]  # -1: the last step goes to x_0
        return self._reverse(
            model,
            shape,
            ts,
            lambda eps, x, i, z: self.ddim_step(eps, x, ts[i], prev[i], eta, z),
            lambda i: eta > 0 and prev[i] >= 0,
            generator,
            device,
            x_T,
            frames,
            progress,
        )

    def sample(
        self, model: EpsModel, shape: tuple[int, ...], sampler: str, steps: int, eta: float = 0.0, **kw
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``sampler="ddpm"`` (all T steps; ``steps`` must be T) or ``"ddim"``."""
        if sampler == "ddpm":
            if steps != self.T:
                raise ValueError(f"the DDPM sampler runs all {self.T} steps (got steps={steps}); use ddim for fewer")
            return self.sample_ddpm(model, shape, **kw)
        if sampler == "ddim":
            return self.sample_ddim(model, shape, steps, eta, **kw)
        raise ValueError(f"unknown sampler {sampler!r} (ddpm or ddim)")


def _frame_indices(n: int, frames: int) -> set[int]:
    """About ``frames`` step indices (counting down from n-1), denser near 0 where the image forms."""
    if frames <= 0:
        return set()
    u = torch.linspace(0, 1, frames) ** 2  # quadratic spacing: more frames at small t
    return {int(round(float(v) * (n - 1))) for v in u}
