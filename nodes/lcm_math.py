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
from dataclasses import dataclass

import torch

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


class ScheduleError(ValueError):
    """A schedule that cannot be built; the message says which input to change and to what."""


# ComfyUI's error reports name an exception by its module path, and ComfyUI imports the pack under its folder's full
# path: reports (and tests, and users' searches) know this one as "lcm_kit.ScheduleError".
ScheduleError.__module__ = "lcm_kit"


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


# --------------------------------------------------------------------------------------------------
# Custom timesteps, trailing schedules, img2img tails (diffusers' set_timesteps(timesteps=…) and get_timesteps)
# --------------------------------------------------------------------------------------------------

TIMESTEPS_FIX = "write the timesteps as whole numbers from high to low, each below {T}, e.g. 999,749,499,249"


def parse_timesteps(text: str, num_train_timesteps: int = 1000) -> list[int] | None:
    """The timestep list written in `text` ("999, 749, 499, 249"; commas, spaces or brackets), or None for an
    empty text. Raises ScheduleError naming the rule diffusers' `LCMScheduler` / `TCDScheduler.set_timesteps
    (timesteps=…)` enforces and the fix: whole numbers, strictly descending, below T. Negative values are refused
    too (diffusers does not check them, and ᾱ at a negative index would be read from the other end of the table)."""
    fix = TIMESTEPS_FIX.format(T=num_train_timesteps)
    parts = [p for p in str(text).replace("[", " ").replace("]", " ").replace(",", " ").split() if p]
    if not parts:
        return None
    values = []
    for p in parts:
        try:
            number = float(p)
        except ValueError:
            raise ScheduleError(f"timesteps: {p!r} is not a number; {fix}.") from None
        if not math.isfinite(number) or number != int(number):
            raise ScheduleError(f"timesteps: {p} is not a whole number (the UNet runs at training timesteps "
                                f"0 … {num_train_timesteps - 1}); {fix}.")
        values.append(int(number))
    check_timesteps(values, num_train_timesteps)
    return values


def check_timesteps(timesteps: list[int], num_train_timesteps: int = 1000) -> None:
    """Raise ScheduleError unless `timesteps` is what diffusers' `set_timesteps(timesteps=…)` accepts: strictly
    descending, the first below T (and, here, none negative)."""
    fix = TIMESTEPS_FIX.format(T=num_train_timesteps)
    for before, after in zip(timesteps, timesteps[1:]):
        if after >= before:
            raise ScheduleError(f"timesteps must be strictly descending (diffusers refuses the list too): {after} "
                                f"follows {before}; {fix}.")
    if timesteps and timesteps[0] >= num_train_timesteps:
        raise ScheduleError(f"timesteps must be below {num_train_timesteps} (the model's training timesteps are "
                            f"0 … {num_train_timesteps - 1}; got {timesteps[0]}); {fix}.")
    if timesteps and timesteps[-1] < 0:
        raise ScheduleError(f"timesteps cannot be negative (got {timesteps[-1]}); {fix}.")


def off_grid_timesteps(timesteps: list[int], original_steps: int = 50, num_train_timesteps: int = 1000) -> list[int]:
    """The entries after the first that are not on the `original_steps` distillation grid: the list diffusers'
    LCMScheduler / TCDScheduler warn about (and only warn) for custom timesteps."""
    grid = set(distillation_grid(original_steps, num_train_timesteps))
    return [t for t in timesteps[1:] if t not in grid]


def img2img_tail(timesteps: list[int], strength: float) -> list[int]:
    """The timesteps an img2img run at `strength` takes from a full schedule, as diffusers' StableDiffusion(XL)
    Img2ImgPipeline.get_timesteps (and LCMScheduler / TCDScheduler for a custom list): the last
    min(int(N·strength), N) of the N timesteps. Raises ScheduleError when that is none."""
    if not 0.0 < strength <= 1.0:
        raise ScheduleError(f"strength must be in (0, 1] (got {strength:g}); 1.0 is text-to-image.")
    n = len(timesteps)
    keep = min(int(n * strength), n)
    if keep < 1:
        need = math.ceil(1000 / n) / 1000
        raise ScheduleError(f"strength {strength:g} keeps int({n} × {strength:g}) = 0 of the schedule's {n} timesteps "
                            f"(img2img runs the last int(N × strength) of them): use strength ≥ {need:g}, or a "
                            f"longer schedule.")
    return list(timesteps[n - keep:])


def trailing_timesteps(steps: int, num_train_timesteps: int = 1000) -> list[int]:
    """`timestep_spacing="trailing"` of diffusers' DDIMScheduler / EulerDiscreteScheduler: round(arange(T, 0, −T/N))
    − 1, e.g. N = 4: 999, 749, 499, 249 (numpy's arange and round-half-to-even, reproduced exactly)."""
    if steps < 1:
        raise ScheduleError(f"steps must be at least 1 (got {steps}).")
    if steps > num_train_timesteps:
        raise ScheduleError(f"steps ({steps}) cannot exceed the {num_train_timesteps} training timesteps.")
    start = float(num_train_timesteps)
    delta = (start - start / steps) - start     # numpy.arange fills start + i·(second − first)
    count = math.ceil((0.0 - start) / (-start / steps))
    return [int(round(start + i * delta)) - 1 for i in range(count)]


def ddim_stride(timesteps: list[int], num_train_timesteps: int = 1000) -> int | None:
    """T // N of the trailing N-step schedule whose tail `timesteps` is (DDIMScheduler steps from t to t − T // N,
    not to the next listed t, e.g. 666 → 333 for N = 3 while the list goes on at 332), or None when the list is no
    such tail (then each step goes to the next listed t)."""
    n = len(timesteps)
    for total in range(n, num_train_timesteps + 1):
        if round(num_train_timesteps / total) - 1 == timesteps[-1] and \
                trailing_timesteps(total, num_train_timesteps)[-n:] == list(timesteps):
            return num_train_timesteps // total
    return None


# --------------------------------------------------------------------------------------------------
# Recipes: what each few-step model's card sets (reference/few-step-recipes.md, README "Recipes")
# --------------------------------------------------------------------------------------------------

SAMPLER_METHODS = ("lcm", "tcd", "ddim", "euler")


@dataclass(frozen=True)
class Recipe:
    """A model card's diffusers recipe: the scheduler (`sampler`: lcm = LCMScheduler, tcd = TCDScheduler with γ =
    eta, ddim = DDIMScheduler trailing with set_alpha_to_one False, euler = EulerDiscreteScheduler trailing), a fixed
    timestep list or the step range, the prediction type the file has, the ComfyUI cfg for the card's guidance."""
    sampler: str
    timesteps: tuple[int, ...] | None = None
    steps: tuple[int, int] | None = None
    gamma: float | None = None
    cfg: str = "1.0 (the card's guidance_scale 0: no CFG)"
    prediction: str = "eps"
    files: str = ""


RECIPE_NONE = "none (use the widgets)"
RECIPES: dict[str, Recipe | None] = {
    RECIPE_NONE: None,
    "LCM-LoRA (LCM)": Recipe("lcm", cfg="1.0-2.0 (the card: guidance 0, or 1-2)",
                             files="lcm-lora-sdv1-5 / -sdxl / -ssd-1b, Segmind-VegaRT"),
    "PCM LCM-like LoRA (LCM)": Recipe("lcm", files="PCM's LCM-like LoRAs (wangfuyun/PCM_Weights)"),
    "TCD-LoRA (TCD)": Recipe("tcd", gamma=0.3, files="h1t/TCD-SD15-LoRA, TCD-SDXL-LoRA"),
    "Hyper-SD 1-step unified LoRA (TCD, 1-8 steps)": Recipe(
        "tcd", gamma=1.0, steps=(1, 8), files="Hyper-SD15-1step-lora, Hyper-SDXL-1step-lora (1-8 steps)"),
    "Hyper-SDXL 1-step UNet (LCM, t 800)": Recipe("lcm", timesteps=(800,), files="Hyper-SDXL-1step-Unet"),
    "DMD2 4-step (LCM, 999,749,499,249)": Recipe("lcm", timesteps=(999, 749, 499, 249),
                                                 files="dmd2_sdxl_4step_unet / _lora (tianweiy/DMD2)"),
    "DMD2 1-step (LCM, t 399)": Recipe("lcm", timesteps=(399,), files="dmd2_sdxl_1step_unet"),
    "Hyper-SD N-step LoRA (DDIM trailing)": Recipe("ddim", files="Hyper-SD15/SDXL-{1,2,4,8}steps-lora (steps = N)"),
    "PCM N-step LoRA (DDIM trailing)": Recipe("ddim", cfg="smallcfg 1.0-2.0; normalcfg 2-6 (the card)",
                                              files="PCM_Weights sd15/sdxl smallcfg/normalcfg N-step (steps = N)"),
    "SDXL-Lightning N-step (Euler trailing)": Recipe("euler", files="sdxl_lightning_{2,4,8}step unet / lora"),
    "SDXL-Lightning 1-step x0 UNet (Euler trailing)": Recipe(
        "euler", timesteps=(999,), prediction="x0", files="sdxl_lightning_1step_unet_x0 (ModelSamplingDiscrete x0)"),
}


@dataclass
class Plan:
    """What a sampler / scheduler node runs: the method, γ, the timesteps (img2img tail taken), and what to tell."""
    sampler: str
    gamma: float | None
    timesteps: list[int]
    prediction: str | None = None     # the prediction type the recipe needs (None: any)
    info: list[str] = None
    warnings: list[str] = None


def plan_schedule(sampler: str = "lcm", gamma: float = 0.3, steps: int = 4, strength: float = 1.0,
                  original_steps: int = 50, timesteps: str = "", recipe: str = RECIPE_NONE,
                  num_train_timesteps: int = 1000) -> Plan:
    """Resolve the widgets of the LCM Sampler / LCM Scheduler into one schedule, or raise ScheduleError naming the
    input and the fix.

    Precedence: a recipe sets the method and γ, and its fixed timesteps (then `steps` and `timesteps` are not used);
    else a `timesteps` list is the schedule (diffusers' set_timesteps(timesteps=…)); else `steps` on the method's
    grid (lcm / tcd: the LCM grid, strength as LCMScheduler.set_timesteps(strength=); ddim / euler: trailing).
    img2img of a fixed or trailing list keeps its last int(N·strength) timesteps (diffusers' generic img2img
    pipelines)."""
    if recipe not in RECIPES:
        raise ScheduleError(f"recipe {recipe!r} is not one of: {', '.join(RECIPES)}.")
    card = RECIPES[recipe]
    info, warnings = [], []
    custom = parse_timesteps(timesteps, num_train_timesteps)
    if card is not None:
        sampler, gamma = card.sampler, card.gamma if card.gamma is not None else gamma
        used = ["sampler"] + (["gamma"] if card.gamma is not None else [])
        if card.timesteps is not None:
            used += ["steps", "timesteps"]
        elif custom is not None:
            used += ["timesteps"]
        if card.steps is not None and card.timesteps is None and not card.steps[0] <= steps <= card.steps[1]:
            raise ScheduleError(f"recipe {recipe!r} runs {card.steps[0]}-{card.steps[1]} steps (its card), got steps "
                                f"{steps}: set steps (or steps_preset) in that range.")
        custom = list(card.timesteps) if card.timesteps is not None else None
    if sampler not in SAMPLER_METHODS:
        raise ScheduleError(f"sampler {sampler!r} is not one of: {', '.join(SAMPLER_METHODS)}.")
    if custom is not None:
        if card is None and sampler in ("lcm", "tcd"):
            off = off_grid_timesteps(custom, original_steps, num_train_timesteps)
            if off:
                warnings.append(f"timesteps {', '.join(map(str, off))} are not on the {original_steps}-step "
                                f"distillation grid (t = {num_train_timesteps // original_steps}k - 1) that LCM-LoRAs "
                                f"were trained on; used as given (diffusers warns the same). Fine for models trained "
                                f"on them (DMD2: 999,749,499,249).")
        schedule = img2img_tail(custom, strength)
    elif sampler in ("lcm", "tcd"):
        schedule = lcm_timesteps(steps, strength, original_steps, num_train_timesteps)
    else:
        schedule = img2img_tail(trailing_timesteps(steps, num_train_timesteps), strength)
    if card is not None:
        what = {"lcm": "LCM (LCMScheduler)", "tcd": f"TCD gamma {gamma:g} (TCDScheduler eta)",
                "ddim": "DDIM trailing, last step to alpha_0 (DDIMScheduler, set_alpha_to_one False)",
                "euler": "Euler trailing, start noise sigma_max (EulerDiscreteScheduler)"}[sampler]
        pred = "" if card.prediction == "eps" else f"; needs {card.prediction} prediction"
        info.append(f"recipe {recipe} (for {card.files}): {what} at timesteps {','.join(map(str, schedule))}{pred}; "
                    f"suggested cfg {card.cfg}. Not used: {', '.join(used)} (set by the recipe).")
    return Plan(sampler, gamma if sampler == "tcd" else None, schedule,
                None if card is None else card.prediction, info, warnings)


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
