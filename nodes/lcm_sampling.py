"""LCM / TCD sampling on ComfyUI's MODEL: the model sampling patch, the schedule and the sampler loop.

The step math lives in `lcm_math`; this module adapts it to ComfyUI's k-diffusion conventions
(sigma space, `model(x, sigma)` returning the denoised latent, the callback dict), so the same code
serves the all-in-one LCM Sampler node and SamplerCustom / SamplerCustomAdvanced.
"""
from __future__ import annotations

import torch

import comfy.model_management
import comfy.model_sampling
import comfy.samplers

from . import lcm_math


class LCMModelSampling(comfy.model_sampling.ModelSamplingDiscrete, comfy.model_sampling.EPS):
    """ε-prediction model sampling for LCM models, exact to diffusers' LCMScheduler.

    - Its sigma table is the distillation grid t = k·m − 1 (as core's `ModelSamplingDiscrete(lcm)`, so
      core's KSampler with sampler `lcm` and scheduler `simple` lands on diffusers' timesteps), built
      for any `original_steps`, with the full 1000-step table kept for exact lookups.
    - `calculate_denoised` applies LCM's boundary condition the way diffusers does (c_skip on the VP
      sample; core's `LCM` class applies it to the sigma-space input).
    """

    lcm_kit_boundary = True

    def __init__(self, model_config=None, original_steps: int = 50, zsnr=None):
        super().__init__(model_config, zsnr=zsnr)
        self.original_steps = int(original_steps)
        full = self.sigmas.clone()
        self.register_buffer("full_sigmas", full)
        self.register_buffer("full_log_sigmas", full.log())
        grid = torch.tensor(lcm_math.distillation_grid(self.original_steps, len(full)), dtype=torch.long)
        self.register_buffer("grid_timesteps", grid)
        self.set_sigmas(full[grid])

    def timestep(self, sigma):
        log_sigma = sigma.log()
        dists = log_sigma.to(self.log_sigmas.device) - self.log_sigmas[:, None]
        idx = dists.abs().argmin(dim=0).view(sigma.shape)
        return self.grid_timesteps.to(idx.device)[idx].to(sigma.device)

    def sigma(self, timestep):
        t = torch.clamp(timestep.float().to(self.full_log_sigmas.device), min=0, max=len(self.full_sigmas) - 1)
        low, high = t.floor().long(), t.ceil().long()
        w = t.frac()
        log_sigma = (1 - w) * self.full_log_sigmas[low] + w * self.full_log_sigmas[high]
        return log_sigma.exp().to(timestep.device)

    def calculate_denoised(self, sigma, model_output, model_input):
        x0 = super().calculate_denoised(sigma, model_output, model_input)
        t = self.timestep(sigma).float()
        scaled = t * lcm_math.TIMESTEP_SCALING
        sd2 = lcm_math.SIGMA_DATA ** 2
        shape = sigma.shape[:1] + (1,) * (model_output.ndim - 1)
        c_skip = (sd2 / (scaled ** 2 + sd2)).view(shape)
        c_out = (scaled / (scaled ** 2 + sd2) ** 0.5).view(shape)
        s = sigma.view(shape)
        return c_out * x0 + c_skip * model_input / (1.0 + s * s).sqrt()


def patch_lcm_sampling(model, original_steps: int = 50):
    """`model` (a ModelPatcher) with LCMModelSampling for `original_steps`: the model itself when it already
    has it (e.g. from the LCM-LoRA Loader: no new clone, so ComfyUI keeps the loaded model as it is), else
    a clone; the input is never modified."""
    ms = model.get_model_object("model_sampling")
    if isinstance(ms, LCMModelSampling) and ms.original_steps == int(original_steps):
        return model
    m = model.clone()
    ms = LCMModelSampling(model.model.model_config, original_steps=original_steps)
    m.add_object_patch("model_sampling", ms)
    return m


def full_alphas_cumprod(model_sampling, model_config=None) -> torch.Tensor:
    """ᾱ_t for t = 0 … 999 from a model sampling (ours, core's full table, or rebuilt from the config)."""
    sigmas = getattr(model_sampling, "full_sigmas", None)
    if sigmas is None:
        sigmas = model_sampling.sigmas
        if len(sigmas) != getattr(model_sampling, "num_timesteps", len(sigmas)) and model_config is not None:
            sigmas = comfy.model_sampling.ModelSamplingDiscrete(model_config).sigmas
    s = sigmas.double()
    return 1.0 / (1.0 + s * s)


def lcm_sigmas(model, steps: int, strength: float = 1.0, original_steps: int = 50) -> torch.Tensor:
    """SIGMAS at diffusers' LCM/TCD timesteps for `model` (a ModelPatcher)."""
    ms = model.get_model_object("model_sampling")
    alphas = full_alphas_cumprod(ms, model.model.model_config)
    timesteps = lcm_math.lcm_timesteps(steps, strength, original_steps, num_train_timesteps=len(alphas))
    return lcm_math.sigmas_for_timesteps(timesteps, alphas)


# --------------------------------------------------------------------------------------------------
# The sampler loop (k-diffusion signature)
# --------------------------------------------------------------------------------------------------

def _boundary_mode(ms) -> str:
    """How the model sampling's denoised output relates to the raw x̂_0: ours | core | none."""
    if getattr(ms, "lcm_kit_boundary", False):
        return "ours"
    if any(c.__name__ == "LCM" and c.__module__.endswith("nodes_model_advanced") for c in type(ms).__mro__):
        return "core"
    return "none"


@torch.no_grad()
def sample_lcm_kit(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None,
                   gamma: float | None = None):
    """LCM (gamma None) or TCD (gamma in [0, 1]) sampling, step for step as diffusers' schedulers.

    `model(x, σ)` returns the denoised latent under whatever model sampling the MODEL carries; the
    boundary condition is applied exactly once whichever it is. `noise_sampler(σ, σ_next)` gives the
    per-step noise (seeded from extra_args["seed"] by default, like core's `lcm` sampler).
    """
    from comfy.k_diffusion.sampling import default_noise_sampler

    extra_args = {} if extra_args is None else extra_args
    if noise_sampler is None:
        noise_sampler = default_noise_sampler(x, seed=extra_args.get("seed", None))
    base_model = model.inner_model.inner_model
    ms = base_model.model_sampling
    mode = _boundary_mode(ms)
    alphas = full_alphas_cumprod(ms, getattr(base_model, "model_config", None))
    s_in = x.new_ones([x.shape[0]])
    sig = [float(s) for s in sigmas]
    n = len(sig) - 1
    # Everything a step needs, computed once before the loop (keeps the per-step overhead low).
    ts = [int(t) for t in ms.timestep(sigmas[:n].to(ms.log_sigmas.device)).tolist()] if n else []
    scal = [lcm_math.boundary_scalings(t) for t in ts]
    for i in range(n):
        comfy.model_management.throw_exception_if_processing_interrupted()
        sigma, sigma_next = sig[i], sig[i + 1]
        out = model(x, sigmas[i] * s_in, **extra_args)
        c_skip, c_out = scal[i]
        if mode == "none":
            x0 = out
        elif mode == "ours" and gamma is None:
            x0 = None   # `out` already is diffusers' f(x_t, t)
        else:
            x0 = lcm_math.x0_from_lcm_denoised(out, x, sigma, c_skip, c_out, skip_on_vp=(mode == "ours"))

        if gamma is None:  # LCM
            denoised = out if x0 is None else lcm_math.lcm_denoised(x0, x, sigma, c_skip, c_out)
            if callback is not None:
                callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
            x = lcm_math.lcm_renoise(denoised, sigma_next, noise_sampler(sigma, sigma_next)) if sigma_next > 0 \
                else denoised
        else:  # TCD
            if callback is not None:
                callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": x0})
            eps = (x - x0) / sigma
            t_prev = ts[i + 1] if i + 1 < n else 0
            s = lcm_math.tcd_s_timestep(t_prev, gamma)
            alpha_s, alpha_prev = float(alphas[s]), float(alphas[t_prev])
            last = i == n - 1
            noise = noise_sampler(sigma, sigma_next) if (gamma > 0 and not last) else None
            x = lcm_math.tcd_step(x0, eps, alpha_s, alpha_prev, noise, final=last)
    return x


class LCMKSampler(comfy.samplers.KSAMPLER):
    """KSAMPLER whose start noise follows diffusers: a zero (empty) latent starts text-to-image
    (x_T = √(1 + σ²)·z, i.e. pure noise in VP space), any other latent is noised as img2img,
    x_t = x_0 + σ·z, also at strength 1.0 (core uses the text-to-image scaling there)."""

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, *args, **kwargs):
        self._empty_latent = latent_image is None or not bool(torch.any(latent_image != 0))
        return super().sample(model_wrap, sigmas, extra_args, callback, noise, latent_image, *args, **kwargs)

    def max_denoise(self, model_wrap, sigmas):
        return getattr(self, "_empty_latent", True) and super().max_denoise(model_wrap, sigmas)


def lcm_sampler(kind: str = "lcm", gamma: float = 0.3, noise_sampler=None) -> LCMKSampler:
    """A SAMPLER for SamplerCustom(Advanced): `lcm`, or `tcd` with stochasticity `gamma`."""
    if kind not in ("lcm", "tcd"):
        raise ValueError(f"unknown sampler {kind!r}: use 'lcm' or 'tcd'")
    if kind == "tcd" and not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1] (got {gamma}); 0.3 is TCD's default")
    options = {"gamma": None if kind == "lcm" else float(gamma)}
    if noise_sampler is not None:
        options["noise_sampler"] = noise_sampler
    return LCMKSampler(sample_lcm_kit, extra_options=options)


def ensure_finite_latent(samples: torch.Tensor, what: str = "latent_image") -> None:
    if not torch.isfinite(samples).all():
        bad = int((~torch.isfinite(samples)).sum())
        raise ValueError(f"{what} contains {bad} NaN/Inf values: check the node that produced it "
                         f"(a VAE Encode in fp16, a broken upscale, a corrupt saved latent).")


def check_latent_channels(model, samples: torch.Tensor, what: str = "latent_image") -> None:
    channels = model.get_model_object("latent_format").latent_channels
    if samples.ndim >= 2 and samples.shape[1] != channels and torch.count_nonzero(samples) != 0:
        raise ValueError(f"{what} has {samples.shape[1]} channels but this model expects {channels}: it was "
                         f"encoded with another model family's VAE. Encode it with this checkpoint's VAE.")


def cfg_warning(cfg: float) -> str | None:
    if cfg > 2.0:
        return (f"cfg {cfg:g} is high for LCM: LCM was trained with low guidance, use 1.0-2.0 "
                f"(above 2 images wash out or show artifacts). The value was used as given.")
    return None

