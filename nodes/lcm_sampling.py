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
    timesteps = lcm_math.lcm_timesteps(steps, strength, original_steps, num_train_timesteps=train_timesteps(model))
    return timestep_sigmas(model, timesteps)


def train_timesteps(model) -> int:
    """T, the number of training timesteps of `model`'s discrete noise schedule (1000 for SD / SDXL)."""
    return len(full_sigmas(model.get_model_object("model_sampling"), model.model.model_config))


def timestep_sigmas(model, timesteps: list[int]) -> torch.Tensor:
    """SIGMAS at the training timesteps `timesteps` of `model`'s noise schedule (a ModelPatcher), then 0."""
    alphas = full_alphas_cumprod(model.get_model_object("model_sampling"), model.model.model_config)
    return lcm_math.sigmas_for_timesteps(timesteps, alphas)


def check_recipe_prediction(model, recipe: str, needed: str | None) -> None:
    """Raise a clear error when the recipe's model card names another prediction type than `model` has."""
    if needed is None:
        return
    has = prediction_type(model.get_model_object("model_sampling"))
    if has != needed:
        how = {"eps": "an eps (noise-predicting) model: remove the ModelSamplingDiscrete node that set "
                      f"{has}", "x0": "an x0 model: put core's ModelSamplingDiscrete (sampling x0) before this node",
               "v_prediction": "a v-prediction model: put ModelSamplingDiscrete (v_prediction) before this node"}
        raise lcm_math.ScheduleError(f"recipe {recipe!r} is for {how[needed]}; this MODEL predicts {has}. Or choose "
                                     f"the recipe of the file you loaded.")


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


class _Run:
    """What every LCM Kit sampler needs before its first step, computed once (keeps the per-step overhead low):
    the base model sampling, how its output relates to the raw x̂_0, ᾱ_t, the UNet timesteps of `sigmas` (checked
    to sit on training timesteps), the per-step boundary scalings, and the seeded per-step noise."""

    def __init__(self, model, x, sigmas, extra_args, noise_sampler=None, noise=True):
        from comfy.k_diffusion.sampling import default_noise_sampler
        base_model = model.inner_model.inner_model
        self.ms = base_model.model_sampling
        prediction_type(self.ms)   # a clear error before the first step for a model these samplers do not serve
        self.mode = _boundary_mode(self.ms)
        self.alphas = full_alphas_cumprod(self.ms, getattr(base_model, "model_config", None))
        self.sig = [float(s) for s in sigmas]
        self.n = len(self.sig) - 1
        if not torch.isfinite(x).all():
            raise ValueError("the starting latent (latent_image plus noise) contains NaN/Inf: check the node that "
                             "made latent_image (a VAE Encode in fp16, a broken upscale, a corrupt saved latent).")
        self.ts = _model_timesteps(self.ms, sigmas[:self.n], self.alphas) if self.n else []
        self.scal = [lcm_math.boundary_scalings(t) for t in self.ts]
        self.s_in = x.new_ones([x.shape[0]])
        self.noise_sampler = noise_sampler
        if noise and noise_sampler is None:
            self.noise_sampler = default_noise_sampler(x, seed=extra_args.get("seed", None))
        self.finite = []

    def raw_x0(self, out, x, i):
        """The model's own x̂_0 at step i, whatever boundary-condition layer its model sampling adds."""
        c_skip, c_out = self.scal[i]
        if self.mode == "none":
            return out
        if c_out == 0.0:
            return None   # t = 0: the boundary condition hides x̂_0 (the caller decides)
        return lcm_math.x0_from_lcm_denoised(out, x, self.sig[i], c_skip, c_out, skip_on_vp=(self.mode == "ours"))

    def track(self, x, out):
        """Remember (on the device) whether the state and the model output are finite after a step."""
        self.finite.append(torch.stack([torch.isfinite(x).all(), torch.isfinite(out).all()]))

    def done(self, x):
        _check_finite(self.finite, x, self.ts, self.sig)
        return x


def _steps(run: _Run, disable):
    """The step indices, with a progress bar unless `disable` (as k-diffusion's samplers), checking for interrupts."""
    from comfy.k_diffusion.sampling import trange
    for i in trange(run.n, disable=disable):
        comfy.model_management.throw_exception_if_processing_interrupted()
        yield i


def _report(callback, x, i, sigmas, denoised):
    if callback is not None:
        callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})


@torch.no_grad()
def sample_lcm(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None):
    """LCM sampling, step for step as diffusers' LCMScheduler: f = c_out·x̂_0 + c_skip·x_vp at each timestep, then
    x = f + σ_next·z (VP: √ᾱ_prev·f + √(1 − ᾱ_prev)·z), the last step returns f.

    `model(x, σ)` returns the denoised latent under whatever model sampling the MODEL carries (any prediction type
    `prediction_type` accepts); the boundary condition is applied exactly once whichever it is. `noise_sampler(σ,
    σ_next)` gives the per-step noise (seeded from extra_args["seed"] by default, like core's `lcm` sampler)."""
    extra_args = {} if extra_args is None else extra_args
    run = _Run(model, x, sigmas, extra_args, noise_sampler)
    for i in _steps(run, disable):
        sigma, sigma_next = run.sig[i], run.sig[i + 1]
        out = model(x, sigmas[i] * run.s_in, **extra_args)
        c_skip, c_out = run.scal[i]
        if run.mode == "ours":
            denoised = out
        elif run.mode == "core":
            denoised = lcm_math.lcm_denoised_from_core(out, x, sigma, c_skip)
        else:
            denoised = lcm_math.lcm_denoised(out, x, sigma, c_skip, c_out)
        _report(callback, x, i, sigmas, denoised)
        x = lcm_math.lcm_renoise(denoised, sigma_next, run.noise_sampler(sigma, sigma_next)) if sigma_next > 0 \
            else denoised
        run.track(x, out)
    return run.done(x)


@torch.no_grad()
def sample_tcd(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None,
               gamma: float = 0.3):
    """TCD sampling, step for step as diffusers' TCDScheduler with eta = `gamma` (see `lcm_math.tcd_step`): from the
    raw x̂_0 and ε̂ (no boundary condition) to s = ⌊(1 − γ)·t_prev⌋, re-noised to t_prev when γ > 0; the last step
    (t_prev = 0) returns √ᾱ_s·x̂_0 + √(1 − ᾱ_s)·ε̂, not x̂_0."""
    extra_args = {} if extra_args is None else extra_args
    run = _Run(model, x, sigmas, extra_args, noise_sampler, noise=gamma > 0)
    for i in _steps(run, disable):
        sigma = run.sig[i]
        out = model(x, sigmas[i] * run.s_in, **extra_args)
        t_prev = run.ts[i + 1] if i + 1 < run.n else 0
        s = lcm_math.tcd_s_timestep(t_prev, gamma)
        x0 = run.raw_x0(out, x, i)
        if x0 is None:
            if s != run.ts[i]:
                raise ValueError(f"TCD step {i + 1} goes from t=0 to s={s}: the schedule is not descending. "
                                 f"Use the LCM Scheduler's sigmas.")
            # t = 0: a TCD step with s = t returns √ᾱ_t·x̂_0 + √(1−ᾱ_t)·ε̂ = x_t whatever x̂_0 is (diffusers computes
            # the same up to rounding).
            x0 = out
        _report(callback, x, i, sigmas, x0)
        eps = (x - x0) / sigma
        last = i == run.n - 1
        noise = run.noise_sampler(sigma, run.sig[i + 1]) if (gamma > 0 and not last) else None
        x = lcm_math.tcd_step(x0, eps, float(run.alphas[s]), float(run.alphas[t_prev]), noise, final=last)
        run.track(x, out)
    return run.done(x)


@torch.no_grad()
def sample_ddim_trailing(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """DDIM (η = 0) as diffusers' DDIMScheduler with set_alpha_to_one False, as the Hyper-SD / PCM cards configure it:
    from t to t − T // N (N: the trailing schedule `sigmas` is the tail of; the next listed t otherwise),
    x_prev = √ᾱ_prev·x̂_0 + √(1 − ᾱ_prev)·ε̂, taken as the sample at the next listed timestep; the last step goes to
    ᾱ_0 (not to σ = 0) and returns that VP sample, as diffusers does."""
    extra_args = {} if extra_args is None else extra_args
    run = _Run(model, x, sigmas, extra_args, noise=False)
    stride = lcm_math.ddim_stride(run.ts, len(run.alphas)) if run.n else None
    for i in _steps(run, disable):
        sigma = run.sig[i]
        out = model(x, sigmas[i] * run.s_in, **extra_args)
        x0 = run.raw_x0(out, x, i)
        if x0 is None:
            raise ValueError(f"DDIM step {i + 1} runs at t=0 on a model with LCM's boundary condition, which hides the "
                             f"model's prediction there: end the schedule above t=0.")
        _report(callback, x, i, sigmas, x0)
        eps = (x - x0) / sigma
        t_prev = run.ts[i] - stride if stride is not None else (run.ts[i + 1] if i + 1 < run.n else -1)
        alpha_prev = float(run.alphas[max(t_prev, 0)])   # t_prev < 0: final_alpha_cumprod = ᾱ_0
        x_vp = x0 * alpha_prev ** 0.5 + eps * (1.0 - alpha_prev) ** 0.5
        x = x_vp if i == run.n - 1 else x_vp * (1.0 + run.sig[i + 1] ** 2) ** 0.5
        run.track(x, out)
    return run.done(x)


@torch.no_grad()
def sample_euler_trailing(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """Euler as diffusers' EulerDiscreteScheduler: x_next = x + (x − x̂_0)/σ·(σ_next − σ), from the raw x̂_0 (the
    same steps as core's `euler`; what differs is the start noise, σ_max·z, which `EulerKSampler` sets)."""
    extra_args = {} if extra_args is None else extra_args
    run = _Run(model, x, sigmas, extra_args, noise=False)
    for i in _steps(run, disable):
        sigma = run.sig[i]
        out = model(x, sigmas[i] * run.s_in, **extra_args)
        x0 = run.raw_x0(out, x, i)
        x0 = out if x0 is None else x0
        _report(callback, x, i, sigmas, x0)
        x = x + (x - x0) * ((run.sig[i + 1] - sigma) / sigma)
        run.track(x, out)
    return run.done(x)


class LCMKSampler(comfy.samplers.KSAMPLER):
    """KSAMPLER whose start noise follows diffusers: a zero (empty) latent starts text-to-image, x_T = √(1 + σ²)·z
    (pure noise in VP space, as diffusers' LCM / TCD / DDIM text-to-image pipelines start whatever the first
    timestep: so also for t = 800, t = 399 or a grid that tops out below t = 999); any other latent is noised as
    img2img, x_t = x_0 + σ·z, also at strength 1.0 (core uses the text-to-image scaling there)."""

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, *args, **kwargs):
        self._empty_latent = latent_image is None or not bool(torch.any(latent_image != 0))
        return super().sample(model_wrap, sigmas, extra_args, callback, noise, latent_image, *args, **kwargs)

    def max_denoise(self, model_wrap, sigmas):
        return getattr(self, "_empty_latent", True)


class EulerKSampler(comfy.samplers.KSAMPLER):
    """KSAMPLER with EulerDiscreteScheduler's start noise for trailing spacing: x = x_0 + σ_0·z, i.e. σ_max·z for
    text-to-image (diffusers' init_noise_sigma), not core's √(1 + σ_max²)·z."""

    def max_denoise(self, model_wrap, sigmas):
        return False


SAMPLER_FUNCTIONS = {"lcm": sample_lcm, "tcd": sample_tcd, "ddim": sample_ddim_trailing,
                     "euler": sample_euler_trailing}


def lcm_sampler(kind: str = "lcm", gamma: float = 0.3, noise_sampler=None) -> comfy.samplers.KSAMPLER:
    """A SAMPLER for SamplerCustom(Advanced): `lcm`, `tcd` with stochasticity `gamma`, `ddim` or `euler` (trailing,
    diffusers' DDIM / Euler schedulers); `noise_sampler` replaces the seeded per-step noise (lcm, tcd)."""
    if kind not in SAMPLER_FUNCTIONS:
        raise ValueError(f"unknown sampler {kind!r}: use one of {', '.join(SAMPLER_FUNCTIONS)}")
    if kind == "tcd" and not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1] (got {gamma}); 0.3 is TCD's default")
    options = {"gamma": float(gamma)} if kind == "tcd" else {}
    if noise_sampler is not None and kind in ("lcm", "tcd"):
        options["noise_sampler"] = noise_sampler
    cls = EulerKSampler if kind == "euler" else LCMKSampler
    return cls(SAMPLER_FUNCTIONS[kind], extra_options=options)


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
