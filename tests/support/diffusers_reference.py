"""diffusers as the numerical reference of the few-step recipes (issue 23): each model card's scheduler, configured
as the card's `from_config(pipe.scheduler.config)` gives it, run in the SD pipelines' loop on the noise ComfyUI draws.
Used by tests/test_sampler_parity.py and scripts/recipe_table.py."""
from __future__ import annotations

import torch
from diffusers import LCMScheduler, TCDScheduler

DIFFUSERS_PREDICTION = {"eps": "epsilon", "v_prediction": "v_prediction", "x0": "sample"}


def step_noise_seed(seed: int, shape=(1, 4, 8, 8)) -> int:
    """The seed of the generator that ComfyUI's seeded per-step noise sampler (k-diffusion's default_noise_sampler, the
    one core's samplers and ours use) draws from on this CPU: `seed` on v0.3.75; `seed + 1` on upstream 0.33, which
    moved it off the start noise's stream on CPU. Found by drawing, so a later change fails here, by name."""
    from comfy.k_diffusion.sampling import default_noise_sampler
    drawn = default_noise_sampler(torch.zeros(shape), seed=seed)(torch.tensor(1.0), torch.tensor(0.5))
    for candidate in (seed, seed + 1):
        if torch.equal(drawn, torch.randn(shape, generator=torch.Generator().manual_seed(candidate))):
            return candidate
    raise AssertionError(f"ComfyUI's per-step noise for seed {seed} is neither torch seed {seed} nor {seed + 1}")


SD_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}   # the SD / SDXL config


def card_scheduler(method: str, prediction: str = "eps"):
    """The diffusers scheduler a card names, configured as `from_config(pipe.scheduler.config)` gives it."""
    from diffusers import DDIMScheduler, EulerDiscreteScheduler
    kind = DIFFUSERS_PREDICTION[prediction]
    if method == "ddim":   # Hyper-SD / PCM: trailing; SD's config carries set_alpha_to_one / clip_sample False
        return DDIMScheduler(**SD_BETAS, clip_sample=False, set_alpha_to_one=False, steps_offset=1,
                             timestep_spacing="trailing", prediction_type=kind)
    if method == "euler":  # SDXL-Lightning
        return EulerDiscreteScheduler(**SD_BETAS, timestep_spacing="trailing", prediction_type=kind)
    return (TCDScheduler if method == "tcd" else LCMScheduler)(prediction_type=kind)


def pipeline_reference(unet, prompts, method, steps=None, timesteps=None, strength=1.0, image=None, gamma=None,
                       prediction="eps", size=8, seed=7):
    """diffusers' SD pipeline loop for a card's recipe, fed the noise ComfyUI draws for `seed` (the start noise of
    comfy.sample.prepare_noise and the per-step noise of step_noise_seed), conditioned on prompts[0]:
    `timesteps=` as the pipelines' retrieve_timesteps passes it; img2img of an LCM-grid schedule through LCMScheduler's
    own strength, of anything else as the generic img2img pipeline's get_timesteps; scale_model_input and the
    pipelines' eta (0 unless the card passes it)."""
    scheduler = card_scheduler(method, prediction)
    lcm_grid = method in ("lcm", "tcd") and timesteps is None
    if timesteps is not None:
        scheduler.set_timesteps(timesteps=timesteps)
    else:
        scheduler.set_timesteps(steps, **({"strength": strength} if lcm_grid else {}))
    ts = scheduler.timesteps
    if not lcm_grid and image is not None:
        n = len(ts)
        t_start = n - min(int(n * strength), n)
        ts = ts[t_start:]
        if hasattr(scheduler, "set_begin_index"):   # as get_timesteps (DDIM has none: it steps by t − T // N)
            scheduler.set_begin_index(t_start)
    noise = torch.randn((1, 4, size, size), generator=torch.manual_seed(seed))
    latents = noise * scheduler.init_noise_sigma if image is None else scheduler.add_noise(image, noise, ts[:1])
    gen = torch.Generator().manual_seed(step_noise_seed(seed, noise.shape))
    ctx = prompts[0]
    kw = {"eta": gamma if gamma is not None else 0.0} if method in ("tcd", "ddim") else {}
    with torch.no_grad():
        for t in ts:
            out = unet(scheduler.scale_model_input(latents, t), t, encoder_hidden_states=ctx).sample
            latents = scheduler.step(out, t, latents, generator=gen, return_dict=False, **kw)[0]
    return latents
