"""The mathematics of LCM and TCD sampling: plain tensors and numbers in and out, no ComfyUI.

References
- LCM: Luo et al., "Latent Consistency Models" (2023), and diffusers' `LCMScheduler`
  (schedulers/scheduling_lcm.py), which this module reproduces exactly.
- TCD: Zheng et al., "Trajectory Consistency Distillation" (2024), and diffusers' `TCDScheduler`
  (schedulers/scheduling_tcd.py), likewise.

Notation: the discrete training schedule has T = 1000 steps with cumulative products ᾱ_t; ComfyUI works
in "sigma space" x = x_0 + σ·ε with σ_t = √((1 − ᾱ_t)/ᾱ_t), diffusers in "VP space"
x_vp = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε = x / √(1 + σ²). Every function states which one it takes.
"""
from __future__ import annotations

import math

import torch

from .status import pack_error

SIGMA_DATA = 0.5
TIMESTEP_SCALING = 10.0

# The quality-vs-speed table of the LCM guides (1, 2, 4, 8 steps; README "Quality vs. speed").
STEP_PRESETS = {
    "custom (use steps)": None,
    "preview: 1 step": 1,
    "draft: 2 steps": 2,
    "general: 4 steps": 4,
    "final: 8 steps": 8,
}


@pack_error
class ScheduleError(ValueError):
    """A schedule that cannot be built; the message says which input to change and to what."""


def lowest_strength(steps: int, original_steps: int = 50) -> float:
    """The smallest img2img strength that still leaves `steps` steps: int(original_steps·s) ≥ steps."""
    s = math.ceil(steps / original_steps * 1000) / 1000
    while int(original_steps * s) < steps:
        s = round(s + 0.001, 3)
    return s


def lcm_timesteps(steps: int, strength: float = 1.0, original_steps: int = 50,
                  num_train_timesteps: int = 1000) -> list[int]:
    """The timesteps of `LCMScheduler.set_timesteps(steps, original_inference_steps, strength=strength)`.

    The distillation grid is t = k·m − 1 for m = 1 … L with k = T // original_steps and
    L = int(original_steps·strength) (img2img keeps the low-noise tail); inference takes the grid in
    descending order at indices ⌊i·(L/steps)⌋, i = 0 … steps − 1:  t_i = k·(L − ⌊i·(L/steps)⌋) − 1.
    TCDScheduler builds the same list.
    """
    check_schedule(steps, strength, original_steps, num_train_timesteps)
    k = num_train_timesteps // original_steps
    grid_len = int(original_steps * strength)
    step = grid_len / steps  # float64 and ⌊i·step⌋, as numpy.linspace computes it (i·L/n exactly can differ)
    return [k * (grid_len - math.floor(i * step)) - 1 for i in range(steps)]


def check_schedule(steps: int, strength: float = 1.0, original_steps: int = 50,
                   num_train_timesteps: int = 1000) -> None:
    """Raise ScheduleError unless `lcm_timesteps(steps, strength, original_steps)` can be built: 1 ≤ steps ≤
    original_steps ≤ T, 0 < strength ≤ 1 (NaN fails), and int(original_steps·strength) ≥ steps."""
    if steps < 1:
        raise ScheduleError(f"steps must be at least 1 (got {steps}).")
    if not 1 <= original_steps <= num_train_timesteps:
        raise ScheduleError(f"original_inference_steps must be between 1 and {num_train_timesteps} "
                            f"(got {original_steps}); LCM models are distilled with 50.")
    if steps > original_steps:
        raise ScheduleError(f"steps ({steps}) cannot exceed original_inference_steps ({original_steps}): "
                            f"the schedule is a subset of that {original_steps}-step grid. Lower steps.")
    if not 0.0 < strength <= 1.0:
        raise ScheduleError(f"strength must be in (0, 1] (got {strength}); 1.0 is text-to-image.")
    grid_len = int(original_steps * strength)
    if grid_len < steps:
        raise ScheduleError(
            f"strength {strength:g} leaves only {grid_len} of the model's {original_steps} distillation steps "
            f"(original_inference_steps: the grid LCM samples from), fewer than steps={steps}. Use strength ≥ "
            f"{lowest_strength(steps, original_steps):g} for {steps} steps, or fewer steps.")


def distillation_grid(original_steps: int = 50, num_train_timesteps: int = 1000) -> list[int]:
    """All timesteps a model distilled on `original_steps` steps was trained at, ascending (k·m − 1)."""
    k = num_train_timesteps // original_steps
    return [k * m - 1 for m in range(1, original_steps + 1)]


def sigmas_for_timesteps(timesteps: list[int], alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """ComfyUI SIGMAS for `timesteps`: σ_t = √((1 − ᾱ_t)/ᾱ_t) for each, then a final 0."""
    a = alphas_cumprod[torch.tensor(timesteps, dtype=torch.long)].double()
    return torch.cat([((1 - a) / a).sqrt(), a.new_zeros(1)]).float()


def boundary_scalings(timestep: float, sigma_data: float = SIGMA_DATA,
                      timestep_scaling: float = TIMESTEP_SCALING) -> tuple[float, float]:
    """LCM's consistency boundary condition (LCM paper eq. 6; diffusers'
    `get_scalings_for_boundary_condition_discrete`):
    c_skip = σ_d² / ((s·t)² + σ_d²),  c_out = s·t / √((s·t)² + σ_d²),  s = timestep_scaling."""
    scaled = timestep * timestep_scaling
    c_skip = sigma_data ** 2 / (scaled ** 2 + sigma_data ** 2)
    c_out = scaled / math.sqrt(scaled ** 2 + sigma_data ** 2)
    return c_skip, c_out


def lcm_denoised(x0: torch.Tensor, x: torch.Tensor, sigma: float, c_skip: float, c_out: float) -> torch.Tensor:
    """The consistency function f(x_t, t) = c_out·x̂_0 + c_skip·x_vp (diffusers applies c_skip to the VP
    sample); `x` is in sigma space at `sigma`, so x_vp = x / √(1 + σ²)."""
    return x0 * c_out + x * (c_skip / math.sqrt(1.0 + sigma * sigma))


def lcm_denoised_from_core(denoised: torch.Tensor, x: torch.Tensor, sigma: float, c_skip: float) -> torch.Tensor:
    """diffusers' f(x_t, t) from the output of ComfyUI core's `LCM` model sampling, which applies c_skip to the
    sigma-space x instead of the VP sample: f = out − c_skip·x + c_skip·x/√(1 + σ²) (no division, so also
    right at t = 0)."""
    return denoised + x * (c_skip / math.sqrt(1.0 + sigma * sigma) - c_skip)


def x0_from_lcm_denoised(denoised: torch.Tensor, x: torch.Tensor, sigma: float, c_skip: float, c_out: float,
                         skip_on_vp: bool = True) -> torch.Tensor:
    """Invert a boundary condition that a model sampling already applied, to recover x̂_0:
    x̂_0 = (f − c_skip·x_vp) / c_out. `skip_on_vp` False for ComfyUI core's `LCM` model sampling, which applies
    c_skip to the sigma-space x. At t = 0 (c_out = 0) f is the sample itself and x̂_0 cannot be recovered."""
    if c_out == 0.0:
        raise ValueError("c_out is 0 (t = 0): the boundary condition f = x_vp keeps nothing of the model's "
                         "prediction, so x̂_0 cannot be recovered from it.")
    scale = c_skip / math.sqrt(1.0 + sigma * sigma) if skip_on_vp else c_skip
    return (denoised - x * scale) / c_out


def lcm_renoise(denoised: torch.Tensor, sigma_next: float, noise: torch.Tensor) -> torch.Tensor:
    """LCM's step to the next timestep, x_prev = √ᾱ_prev·f + √(1 − ᾱ_prev)·z in VP space, which in sigma
    space is f + σ_prev·z."""
    return denoised + noise * sigma_next


def tcd_step(x0: torch.Tensor, eps: torch.Tensor, alpha_s: float, alpha_prev: float,
             noise: torch.Tensor | None = None, final: bool = False) -> torch.Tensor:
    """One TCD step (TCD paper Alg. 4; diffusers `TCDScheduler.step`).

    x̂_s = √ᾱ_s·x̂_0 + √(1 − ᾱ_s)·ε̂ with s = ⌊(1 − γ)·t_prev⌋. The final step returns x̂_s in VP space, as
    diffusers does. Otherwise the result is in sigma space at t_prev: x̂_0 + σ_s·ε̂, re-noised when γ > 0
    (`noise` given) by x_prev = √(ᾱ_prev/ᾱ_s)·x̂_s + √(1 − ᾱ_prev/ᾱ_s)·z, i.e. + √(σ_prev² − σ_s²)·z.
    """
    if final:
        return (x0 * math.sqrt(alpha_s)) + eps * math.sqrt(1.0 - alpha_s)
    sigma_s = math.sqrt((1.0 - alpha_s) / alpha_s)
    noised = x0 + eps * sigma_s
    if noise is None:
        return noised
    sigma_prev = math.sqrt((1.0 - alpha_prev) / alpha_prev)
    extra = sigma_prev * sigma_prev - sigma_s * sigma_s
    return (noised + noise * math.sqrt(extra)) if extra > 0 else noised


def tcd_s_timestep(prev_timestep: int, gamma: float) -> int:
    """TCD's intermediate timestep s = ⌊(1 − γ)·t_prev⌋ (γ = 0: deterministic, γ = 1: like LCM)."""
    # float32 arithmetic, exactly as diffusers evaluates `torch.floor((1 - eta) * prev_timestep)`
    return int(torch.floor((1.0 - gamma) * torch.tensor(prev_timestep)).item())


# Guidance ("w") embedding of full LCM checkpoints (LCM paper §4.2; diffusers' LatentConsistencyModelPipeline).
# The LCM paper writes CFG as ε = (1 + ω)·ε_c − ω·ε_u and samples ω from [2, 14] during distillation;
# diffusers' guidance_scale is the Imagen form, so ω = guidance_scale − 1 and the trained range is 3 … 15.
TRAINED_GUIDANCE = (3.0, 15.0)


def guidance_scale_embedding(w: float, embedding_dim: int = 256) -> torch.Tensor:
    """The sinusoidal embedding of the LCM guidance weight ω (VDM-style; diffusers'
    `LatentConsistencyModelPipeline.get_guidance_scale_embedding`), shape [1, embedding_dim], float32:
    e = [sin(1000ω·f_k), cos(1000ω·f_k)], f_k = exp(−k·ln(10⁴)/(d/2 − 1)), k = 0 … d/2 − 1, zero-padded
    when d is odd."""
    half = embedding_dim // 2
    scale = torch.log(torch.tensor(10000.0)) / (half - 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -scale)
    args = (torch.tensor([w], dtype=torch.float32) * 1000.0)[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if embedding_dim % 2 == 1:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb
