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

from . import compat, lcm_math


class UnsupportedModelError(ValueError):
    """A MODEL whose model sampling LCM / TCD sampling cannot serve; the message names it and says what to do."""


# The parameterisations LCM and TCD are defined for (diffusers' prediction_type: epsilon, v_prediction, sample).
PREDICTIONS = {comfy.model_sampling.EPS: "eps", comfy.model_sampling.V_PREDICTION: "v_prediction",
               comfy.model_sampling.X0: "x0"}


def _is_boundary_class(cls) -> bool:
    """LCM's boundary condition layered on a prediction type: ours, or core's `LCM` (ModelSamplingDiscrete lcm)."""
    return cls is LCMModelSampling or compat.is_core_lcm_sampling(cls)


def _core_distilled(cls) -> bool:
    """Core's ModelSamplingDiscreteDistilled (the 50-step grid of ModelSamplingDiscrete lcm)."""
    return compat.core_distilled_grid(cls) is not None


def _definer(ms, method: str):
    """The class whose `method` a model sampling runs, looking through LCM boundary-condition layers."""
    for cls in type(ms).__mro__:
        if not _is_boundary_class(cls) and method in vars(cls):
            return cls
    return None


def prediction_type(ms) -> str:
    """What the model predicts ("eps", "v_prediction" or "x0"), read from its ComfyUI model sampling (the
    checkpoint's own, or a ModelSamplingDiscrete node's), through any LCM boundary layer.

    Raises UnsupportedModelError, naming the type, for anything LCM / TCD is not defined for: another input
    scaling (flow matching, CogVideoX's v, img_to_img), EDM, or a schedule that is not ComfyUI's discrete
    1000-step one (continuous EDM/V, flow shifts, Stable Cascade)."""
    name = type(ms).__name__
    denoise = _definer(ms, "calculate_denoised")
    schedule = _definer(ms, "timestep")
    fix = ("LCM / TCD sampling works on discrete-time diffusion models (SD1.x, SD2.x, SDXL and their "
           "finetunes) that predict eps, v or x0. Use core's samplers for this model, or remove the model "
           "sampling node that set this type.")
    scaling = [_definer(ms, m) for m in ("calculate_input", "noise_scaling", "inverse_noise_scaling")]
    odd = [c for c in scaling if c is not comfy.model_sampling.EPS]
    if denoise not in PREDICTIONS or odd:
        kind = getattr(odd[0] if odd else denoise, "__name__", "unknown")
        raise UnsupportedModelError(f"this MODEL's prediction type is {kind} (model sampling {name}), which LCM / "
                                    f"TCD sampling does not support. {fix}")
    if not isinstance(ms, comfy.model_sampling.ModelSamplingDiscrete) or schedule is None or not (
            schedule is comfy.model_sampling.ModelSamplingDiscrete or issubclass(schedule, LCMModelSampling)
            or _core_distilled(schedule)):
        raise UnsupportedModelError(f"this MODEL's noise schedule is {getattr(schedule, '__name__', name)} (model "
                                    f"sampling {name}), not the discrete 1000-step schedule LCM / TCD are defined "
                                    f"on. {fix}")
    return PREDICTIONS[denoise]


def full_sigmas(ms, model_config=None) -> torch.Tensor:
    """σ_t for every training timestep t = 0 … T−1 of a discrete model sampling (ours keeps the full table beside
    its grid; core's 50-step grid is rebuilt from the model config, with its zsnr setting)."""
    table = getattr(ms, "full_sigmas", None)
    if table is not None:
        return table
    if len(ms.sigmas) == getattr(ms, "num_timesteps", len(ms.sigmas)) or model_config is None:
        return ms.sigmas
    return comfy.model_sampling.ModelSamplingDiscrete(model_config, zsnr=getattr(ms, "zsnr", None)).sigmas


def exact_timesteps(table: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The training timestep whose σ is closest to each `sigma` in log space (exact for σ on the table)."""
    dists = sigma.log().to(table.device)[None] - table.log().reshape((-1,) + (1,) * sigma.ndim)
    return dists.abs().argmin(dim=0).view(sigma.shape)


class LCMModelSampling(comfy.model_sampling.ModelSamplingDiscrete):
    """Model sampling for LCM models, exact to diffusers' LCMScheduler; one subclass per prediction type.

    - Carries the distillation grid it was made for (`original_steps`): its `sigmas` table is that grid,
      t = k·m − 1 (as core's `ModelSamplingDiscrete(lcm)`, so core's KSampler with sampler `lcm` and scheduler
      `simple` lands on diffusers' timesteps), the full 1000-step table is kept beside it.
    - `timestep(σ)` looks σ up in the full table, so the UNet and the boundary condition run at the exact
      timestep of any σ: a schedule for another original_inference_steps is not snapped to this grid.
    - `calculate_denoised` applies LCM's boundary condition to the prediction type's x̂_0 the way diffusers
      does (c_skip on the VP sample; core's `LCM` class applies it to the sigma-space input, eps only).
    """

    lcm_kit_boundary = True
    prediction: str   # set by each subclass below (its prediction-type mixin)

    def __init__(self, model_config=None, original_steps: int = 50, zsnr=None, table: torch.Tensor | None = None):
        super().__init__(model_config, zsnr=zsnr)
        self.original_steps = int(original_steps)
        full = (self.sigmas if table is None else table).float().clone()
        self.register_buffer("full_sigmas", full)
        self.register_buffer("full_log_sigmas", full.log())
        grid = torch.tensor(lcm_math.distillation_grid(self.original_steps, len(full)), dtype=torch.long)
        self.register_buffer("grid_timesteps", grid)
        self.set_sigmas(full[grid])

    def timestep(self, sigma):
        return exact_timesteps(self.full_sigmas, sigma).to(sigma.device)

    def sigma(self, timestep):
        t = torch.clamp(timestep.float().to(self.full_log_sigmas.device), min=0, max=len(self.full_sigmas) - 1)
        low, high = t.floor().long(), t.ceil().long()
        w = t.frac()
        log_sigma = (1 - w) * self.full_log_sigmas[low] + w * self.full_log_sigmas[high]
        return log_sigma.exp().to(timestep.device)

    def calculate_denoised(self, sigma, model_output, model_input):
        x0 = super().calculate_denoised(sigma, model_output, model_input)   # the prediction type's x̂_0
        t = self.timestep(sigma).float()
        scaled = t * lcm_math.TIMESTEP_SCALING
        sd2 = lcm_math.SIGMA_DATA ** 2
        shape = sigma.shape[:1] + (1,) * (model_output.ndim - 1)
        c_skip = (sd2 / (scaled ** 2 + sd2)).view(shape)
        c_out = (scaled / (scaled ** 2 + sd2) ** 0.5).view(shape)
        s = sigma.view(shape)
        return c_out * x0 + c_skip * model_input / (1.0 + s * s).sqrt()


class LCMModelSamplingEPS(LCMModelSampling, comfy.model_sampling.EPS):
    prediction = "eps"


class LCMModelSamplingV(LCMModelSampling, comfy.model_sampling.V_PREDICTION):
    prediction = "v_prediction"


class LCMModelSamplingX0(LCMModelSampling, comfy.model_sampling.X0):
    prediction = "x0"


LCM_SAMPLING = {c.prediction: c for c in (LCMModelSamplingEPS, LCMModelSamplingV, LCMModelSamplingX0)}


def model_grid(ms) -> int | None:
    """The original_inference_steps a model sampling puts the model on: ours, core's lcm (50), or None."""
    if isinstance(ms, LCMModelSampling):
        return ms.original_steps
    if _core_distilled(type(ms)):
        return compat.core_distilled_grid(type(ms))
    return None


def patch_lcm_sampling(model, original_steps: int = 50):
    """`model` (a ModelPatcher) with LCM model sampling for `original_steps` and the model's own prediction type
    (eps, v, x0: its checkpoint's, or what a ModelSamplingDiscrete node set): the model itself when it already
    has it (e.g. from the LCM-LoRA Loader: no new clone, so ComfyUI keeps the loaded model as it is), else a
    clone; the input is never modified. Raises UnsupportedModelError for a model LCM does not apply to."""
    ms = model.get_model_object("model_sampling")
    prediction = prediction_type(ms)
    if isinstance(ms, LCMModelSampling) and ms.original_steps == int(original_steps):
        return model
    config = model.model.model_config
    m = model.clone()
    m.add_object_patch("model_sampling", LCM_SAMPLING[prediction](config, original_steps=original_steps,
                                                                  table=full_sigmas(ms, config)))
    return m


def grid_warning(model, original_steps: int, node: str, replaces_sampling: bool = False) -> str | None:
    """A note for a node whose original_inference_steps disagrees with the grid the MODEL was prepared with
    (`replaces_sampling`: the node puts its own LCM model sampling on the model, as the LCM Sampler does)."""
    ms = model.get_model_object("model_sampling")
    carried = model_grid(ms)
    if carried is None or carried == int(original_steps):
        return None
    core = _core_distilled(type(ms))
    if core and not replaces_sampling:
        return (f"the MODEL went through core's ModelSamplingDiscrete 'lcm', which runs it on a {carried}-step grid, "
                f"but original_inference_steps is {original_steps} here: sampling will stop with an error. Remove "
                f"that node (LCM Kit applies LCM's boundary condition itself) or set {carried}.")
    source = "core's ModelSamplingDiscrete 'lcm'" if core else "an LCM Kit loader"
    return (f"the MODEL was prepared for original_inference_steps {carried} (by {source}), this {node} uses "
            f"{original_steps}: sampling follows {original_steps} exactly, core's KSampler would follow "
            f"{carried}. Use the value the model was distilled with in both (50 for every published LCM).")


def full_alphas_cumprod(model_sampling, model_config=None) -> torch.Tensor:
    """ᾱ_t for t = 0 … 999 from a model sampling (ours, core's full table, or rebuilt from the config)."""
    s = full_sigmas(model_sampling, model_config).double()
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
    if any(_is_boundary_class(c) for c in type(ms).__mro__):
        return "core"
    return "none"


def _model_timesteps(ms, sigmas: torch.Tensor, alphas: torch.Tensor) -> list[int]:
    """The timesteps the MODEL's sampling runs the UNet at for `sigmas`; raises when it moves a σ of its own
    noise schedule to another timestep (core's lcm model sampling snaps to its 50-step grid), which would run
    the UNet and the boundary condition at a noise level the latent does not have."""
    ts = ms.timestep(sigmas.to(ms.log_sigmas.device)).view(-1).long().cpu()
    table = ((1 - alphas) / alphas).sqrt().float()
    exact = exact_timesteps(table, sigmas.float().cpu()).view(-1)
    on_table = (sigmas.float().cpu().log() - table[exact].log()).abs() < 1e-5
    for i, (t, e, ok, s) in enumerate(zip(ts.tolist(), exact.tolist(), on_table.tolist(), sigmas.tolist())):
        if not ok:
            below = int((table < s).sum()) - 1   # the training timestep just below σ
            raise ValueError(
                f"sigma {s:.4g} (step {i + 1} of the SIGMAS) lies between the training timesteps t={below} and "
                f"t={below + 1}: LCM and TCD step from training timestep to training timestep (diffusers' "
                f"schedulers do), and rounding it would run the UNet at a noise level the latent does not have. "
                f"Feed the LCM Scheduler's SIGMAS (diffusers' schedule), or core's BasicScheduler with scheduler "
                f"simple or beta; karras, exponential, normal and (for most step counts) sgm_uniform land between "
                f"timesteps.")
        if t != e:
            raise ValueError(
                f"the MODEL's model sampling ({type(ms).__name__}) runs the UNet at t={t} for sigma {s:.4g}, which "
                f"is t={e} on its noise schedule: it snaps timesteps to a {model_grid(ms) or 'coarser'}-step grid "
                f"(core's ModelSamplingDiscrete 'lcm' does) while this schedule uses another original_inference_steps. "
                f"Remove that ModelSamplingDiscrete node (the LCM / TCD Sampler applies LCM's boundary condition "
                f"itself) or set original_inference_steps to {model_grid(ms) or 50} on the LCM Scheduler.")
    return ts.tolist()


def _check_finite(flags: list, x: torch.Tensor, ts: list[int], sig: list[float]) -> None:
    """Raise for NaN/Inf in the sampler's state, naming the first step that made it and where it came from.
    `flags[i]` = [latent finite, model output finite] after step i, kept on the device during the loop so that
    no step waits for a device-to-host copy; read once here."""
    if not flags:
        return
    ok = torch.stack(flags).cpu()
    bad_steps = (~ok[:, 0]).nonzero()
    if len(bad_steps):
        i = int(bad_steps[0])
        raise _non_finite(x, bool(ok[i, 1]), i, ts[i], sig[i])


def _non_finite(what: torch.Tensor, out_finite: bool, i: int, t: int, sigma: float) -> ValueError:
    """The error for NaN/Inf in the sampler's state after step i, naming where it came from."""
    bad = int((~torch.isfinite(what)).sum())
    if not out_finite:
        return ValueError(f"the model returned NaN/Inf at step {i + 1} (t={t}, sigma {sigma:.4g}); {bad} values of the "
                          f"latent are not finite. Usual causes: fp16 overflow in the UNet (try --force-fp32 or "
                          f"--bf16-unet), or a LoRA / checkpoint file with broken (inf/NaN) weights.")
    return ValueError(f"the LCM/TCD step at step {i + 1} (t={t}, sigma {sigma:.4g}) produced {bad} NaN/Inf values "
                      f"from a finite model output: a schedule this sampler cannot handle. Please report it with the "
                      f"workflow.")


@torch.no_grad()
def sample_lcm_kit(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None,
                   gamma: float | None = None):
    """LCM (gamma None) or TCD (gamma in [0, 1]) sampling, step for step as diffusers' schedulers.

    `model(x, σ)` returns the denoised latent under whatever model sampling the MODEL carries (any prediction
    type `prediction_type` accepts); the boundary condition is applied exactly once whichever it is.
    `noise_sampler(σ, σ_next)` gives the per-step noise (seeded from extra_args["seed"] by default, like core's
    `lcm` sampler). NaN/Inf in the latent is an error naming its cause.
    """
    from comfy.k_diffusion.sampling import default_noise_sampler

    extra_args = {} if extra_args is None else extra_args
    if noise_sampler is None:
        noise_sampler = default_noise_sampler(x, seed=extra_args.get("seed", None))
    base_model = model.inner_model.inner_model
    ms = base_model.model_sampling
    prediction_type(ms)   # a clear error before the first step for a model LCM / TCD are not defined for
    mode = _boundary_mode(ms)
    alphas = full_alphas_cumprod(ms, getattr(base_model, "model_config", None))
    s_in = x.new_ones([x.shape[0]])
    sig = [float(s) for s in sigmas]
    n = len(sig) - 1
    if not torch.isfinite(x).all():
        raise ValueError("the starting latent (latent_image plus noise) contains NaN/Inf: check the node that made "
                         "latent_image (a VAE Encode in fp16, a broken upscale, a corrupt saved latent).")
    # Everything a step needs, computed once before the loop (keeps the per-step overhead low).
    ts = _model_timesteps(ms, sigmas[:n], alphas) if n else []
    scal = [lcm_math.boundary_scalings(t) for t in ts]
    finite = []
    for i in range(n):
        comfy.model_management.throw_exception_if_processing_interrupted()
        sigma, sigma_next = sig[i], sig[i + 1]
        out = model(x, sigmas[i] * s_in, **extra_args)
        c_skip, c_out = scal[i]
        if gamma is None:  # LCM: diffusers' f(x_t, t) = c_out·x̂_0 + c_skip·x_vp
            if mode == "ours":
                denoised = out
            elif mode == "core":
                denoised = lcm_math.lcm_denoised_from_core(out, x, sigma, c_skip)
            else:
                denoised = lcm_math.lcm_denoised(out, x, sigma, c_skip, c_out)
            if callback is not None:
                callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
            x = lcm_math.lcm_renoise(denoised, sigma_next, noise_sampler(sigma, sigma_next)) if sigma_next > 0 \
                else denoised
        else:  # TCD: from the raw x̂_0 and ε̂ (no boundary condition)
            t_prev = ts[i + 1] if i + 1 < n else 0
            s = lcm_math.tcd_s_timestep(t_prev, gamma)
            if mode == "none":
                x0 = out
            elif c_out > 0:
                x0 = lcm_math.x0_from_lcm_denoised(out, x, sigma, c_skip, c_out, skip_on_vp=(mode == "ours"))
            elif s == ts[i]:
                # t = 0: the boundary condition (c_out = 0) hides x̂_0, but a TCD step with s = t returns
                # √ᾱ_t·x̂_0 + √(1−ᾱ_t)·ε̂ = x_t whatever x̂_0 is (diffusers computes the same up to rounding).
                x0 = out
            else:
                raise ValueError(f"TCD step {i + 1} goes from t=0 to s={s}: the schedule is not descending. "
                                 f"Use the LCM Scheduler's sigmas.")
            if callback is not None:
                callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": x0})
            eps = (x - x0) / sigma
            alpha_s, alpha_prev = float(alphas[s]), float(alphas[t_prev])
            last = i == n - 1
            noise = noise_sampler(sigma, sigma_next) if (gamma > 0 and not last) else None
            x = lcm_math.tcd_step(x0, eps, alpha_s, alpha_prev, noise, final=last)
        finite.append(torch.stack([torch.isfinite(x).all(), torch.isfinite(out).all()]))
    _check_finite(finite, x, ts, sig)
    return x


class LCMKSampler(comfy.samplers.KSAMPLER):
    """KSAMPLER whose start noise follows diffusers: a zero (empty) latent starts text-to-image, x_T = √(1 + σ²)·z
    (pure noise in VP space, as diffusers' text-to-image pipelines start whatever the first timestep: so also
    for an original_inference_steps whose grid tops out below t = 999); any other latent is noised as img2img,
    x_t = x_0 + σ·z, also at strength 1.0 (core uses the text-to-image scaling there)."""

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, *args, **kwargs):
        self._empty_latent = latent_image is None or not bool(torch.any(latent_image != 0))
        return super().sample(model_wrap, sigmas, extra_args, callback, noise, latent_image, *args, **kwargs)

    def max_denoise(self, model_wrap, sigmas):
        return getattr(self, "_empty_latent", True)


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


def empty_strength_warning(samples, strength: float) -> str | None:
    if strength < 1.0 and not bool(samples.any()):
        return (f"strength {strength:g} on an empty latent: there is no image to keep, so sampling starts from pure "
                f"noise partway down the schedule (soft, washed-out results). For img2img connect a VAE Encode; for "
                f"text-to-image use strength 1.0.")
    return None
