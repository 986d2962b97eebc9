"""LCM Sampler numerics against the reference implementation the tutorial uses: diffusers'
LCMScheduler / TCDScheduler, on the same tiny UNet in both forms, same start latent, same noise.

Our path is ComfyUI's own: the MODEL from CheckpointLoaderSimple's loader, `comfy.sample.sample_custom`
with our SIGMAS and SAMPLER (what the nodes call). diffusers' loop is the pipelines' loop.
"""
from __future__ import annotations

import pytest
import torch
from diffusers import LCMScheduler, TCDScheduler

from support import tiny_models

STRENGTHS = [1.0, 0.9, 0.8, 0.75, 0.5, 0.3, 0.1]
TOL = 1e-4


@pytest.fixture(scope="module")
def lcm(pack):
    """Our modules, as ComfyUI imported the pack."""
    return pack.nodes


@pytest.fixture(scope="module")
def sd15(comfy):
    """(ModelPatcher, diffusers UNet with the very same fp32 weights)."""
    import comfy.sd
    import folder_paths
    model, _, _, _ = comfy.sd.load_checkpoint_guess_config(
        folder_paths.get_full_path("checkpoints", "tiny-sd15.safetensors"), output_vae=False, output_clip=False)
    sd = {k: v.float() for k, v in model.model.diffusion_model.state_dict().items()}
    assert model.model.diffusion_model.dtype == torch.float32
    return model, tiny_models.diffusers_unet("sd15", sd)


# --------------------------------------------------------------------------------------------------
# Timesteps
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheduler_cls", [LCMScheduler, TCDScheduler])
@pytest.mark.parametrize("strength", STRENGTHS)
def test_timesteps_equal_diffusers_for_every_step_count(lcm, scheduler_cls, strength):
    sched = scheduler_cls()
    for n in range(1, 51):
        try:
            sched.set_timesteps(n, strength=strength)
        except ValueError:
            with pytest.raises(lcm.lcm_math.ScheduleError):
                lcm.lcm_math.lcm_timesteps(n, strength)
            continue
        assert lcm.lcm_math.lcm_timesteps(n, strength) == sched.timesteps.tolist(), (n, strength)


def test_sigmas_sit_on_the_models_schedule(lcm, sd15):
    model, _ = sd15
    patched = lcm.lcm_sampling.patch_lcm_sampling(model)
    sigmas = lcm.lcm_sampling.lcm_sigmas(patched, 4)
    ms = patched.get_model_object("model_sampling")
    assert ms.timestep(sigmas[:-1]).tolist() == [999, 759, 499, 259]
    assert sigmas[-1] == 0


def test_too_low_strength_names_the_lowest_that_works(lcm):
    with pytest.raises(lcm.lcm_math.ScheduleError, match=r"strength ≥ 0\.08 for 4 steps"):
        lcm.lcm_math.lcm_timesteps(4, 0.05)
    assert lcm.lcm_math.lcm_timesteps(4, lcm.lcm_math.lowest_strength(4))  # and that one works


# --------------------------------------------------------------------------------------------------
# Whole sampling runs
# --------------------------------------------------------------------------------------------------

def _inputs(seed=0, size=16):
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, 4, size, size, generator=g)
    image = torch.randn(1, 4, size, size, generator=g) * 0.8    # a VAE latent (model space)
    ctx = torch.randn(1, 77, 768, generator=g)
    unctx = torch.randn(1, 77, 768, generator=g)
    return noise, image, ctx, unctx


def diffusers_run(unet, scheduler, steps, strength, noise, image, ctx, unctx, cfg=1.0, gamma=None, noise_seed=7):
    """The diffusers pipelines' loop (LatentConsistencyModel / StableDiffusion[Img2Img] with LCM/TCD)."""
    scheduler.set_timesteps(steps, strength=strength)
    ts = scheduler.timesteps
    if image is None:
        latents = noise * scheduler.init_noise_sigma
    else:
        latents = scheduler.add_noise(image, noise, ts[:1])
    gen = torch.Generator().manual_seed(noise_seed)
    with torch.no_grad():
        for t in ts:
            if cfg > 1.0:
                eps_u, eps_c = unet(torch.cat([latents] * 2), t, encoder_hidden_states=torch.cat([unctx, ctx])).sample.chunk(2)
                eps = eps_u + cfg * (eps_c - eps_u)
            else:
                eps = unet(latents, t, encoder_hidden_states=ctx).sample
            kw = {"eta": gamma} if gamma is not None else {}
            latents = scheduler.step(eps, t, latents, generator=gen, return_dict=False, **kw)[0]
    return latents


def comfy_run(lcm, model, sigmas, sampler, noise, image, ctx, unctx, cfg=1.0):
    """What the LCM Sampler / SamplerCustom nodes call; returns the result in model space."""
    import comfy.sample
    latent = torch.zeros_like(noise) if image is None else model.model.process_latent_out(image)
    out = comfy.sample.sample_custom(model, noise, cfg, sampler, sigmas, [[ctx, {}]], [[unctx, {}]], latent,
                                     disable_pbar=True, seed=0)
    return model.model.process_latent_in(out)


def seeded_noise_sampler(noise_seed=7):
    gen = torch.Generator().manual_seed(noise_seed)
    return lambda sigma, sigma_next, shape=(1, 4, 16, 16): torch.randn(shape, generator=gen)


def core_lcm_error(lcm, model, steps, strength, noise, image, ctx, unctx, reference):
    """Core's own path for comparison: ModelSamplingDiscrete(lcm) + sampler lcm + scheduler simple."""
    import comfy.samplers
    import comfy_extras.nodes_model_advanced as adv
    m = adv.ModelSamplingDiscrete().patch(model, "lcm", False)[0]
    ms = m.get_model_object("model_sampling")
    total = int(steps / strength)
    sigmas = comfy.samplers.calculate_sigmas(ms, "simple", total)[-(steps + 1):]
    import comfy.k_diffusion.sampling as kds
    sampler = comfy.samplers.KSAMPLER(kds.sample_lcm, extra_options={"noise_sampler": seeded_noise_sampler()})
    out = comfy_run(lcm, m, sigmas, sampler, noise, image, ctx, unctx)
    return (out - reference).abs().max().item()


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
@pytest.mark.parametrize("strength", [1.0, 0.8, 0.5, 0.3])
def test_lcm_matches_diffusers(lcm, sd15, steps, strength, capsys):
    model, unet = sd15
    noise, image, ctx, unctx = _inputs()
    image = None if strength == 1.0 else image
    if strength * 50 < steps:
        pytest.skip("diffusers has no schedule for it either")
    ref = diffusers_run(unet, LCMScheduler(), steps, strength, noise, image, ctx, unctx)
    patched = lcm.lcm_sampling.patch_lcm_sampling(model)
    sigmas = lcm.lcm_sampling.lcm_sigmas(patched, steps, strength)
    ours = comfy_run(lcm, patched, sigmas, lcm.lcm_sampling.lcm_sampler("lcm", noise_sampler=seeded_noise_sampler()),
                     noise, image, ctx, unctx)
    err = (ours - ref).abs().max().item()
    core = core_lcm_error(lcm, model, steps, strength, noise, image, ctx, unctx, ref)
    with capsys.disabled():
        print(f"\n  LCM steps={steps} strength={strength}: max|Δ| vs diffusers  ours {err:.2e}  core {core:.2e}")
    assert err <= TOL


def test_lcm_img2img_at_full_strength_noises_like_diffusers(lcm, sd15):
    """A non-empty latent at strength 1.0: x_T = √ᾱ·x0 + √(1−ᾱ)·z (diffusers img2img), not core's z + √ᾱ·x0."""
    model, unet = sd15
    noise, image, ctx, unctx = _inputs(seed=3)
    ref = diffusers_run(unet, LCMScheduler(), 4, 1.0, noise, image, ctx, unctx)
    patched = lcm.lcm_sampling.patch_lcm_sampling(model)
    ours = comfy_run(lcm, patched, lcm.lcm_sampling.lcm_sigmas(patched, 4),
                     lcm.lcm_sampling.lcm_sampler("lcm", noise_sampler=seeded_noise_sampler()), noise, image, ctx, unctx)
    assert (ours - ref).abs().max().item() <= TOL


def test_lcm_with_cfg_matches_diffusers(lcm, sd15):
    model, unet = sd15
    noise, _, ctx, unctx = _inputs(seed=5)
    ref = diffusers_run(unet, LCMScheduler(), 4, 1.0, noise, None, ctx, unctx, cfg=1.5)
    patched = lcm.lcm_sampling.patch_lcm_sampling(model)
    ours = comfy_run(lcm, patched, lcm.lcm_sampling.lcm_sigmas(patched, 4),
                     lcm.lcm_sampling.lcm_sampler("lcm", noise_sampler=seeded_noise_sampler()), noise, None, ctx, unctx,
                     cfg=1.5)
    assert (ours - ref).abs().max().item() <= TOL


@pytest.mark.parametrize("model_sampling", ["plain", "core_lcm"])
def test_lcm_sampler_is_exact_on_any_model_sampling(lcm, sd15, model_sampling):
    """SamplerCustom users may wire our SAMPLER to a model without our patch, or with core's
    ModelSamplingDiscrete(lcm): the boundary condition is applied exactly once, diffusers' way."""
    import comfy_extras.nodes_model_advanced as adv
    model, unet = sd15
    noise, _, ctx, unctx = _inputs(seed=9)
    ref = diffusers_run(unet, LCMScheduler(), 4, 1.0, noise, None, ctx, unctx)
    m = model if model_sampling == "plain" else adv.ModelSamplingDiscrete().patch(model, "lcm", False)[0]
    ours = comfy_run(lcm, m, lcm.lcm_sampling.lcm_sigmas(m, 4),
                     lcm.lcm_sampling.lcm_sampler("lcm", noise_sampler=seeded_noise_sampler()), noise, None, ctx, unctx)
    assert (ours - ref).abs().max().item() <= TOL


@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("steps, strength", [(4, 1.0), (2, 1.0), (4, 0.5)])
def test_tcd_matches_diffusers(lcm, sd15, gamma, steps, strength):
    model, unet = sd15
    noise, image, ctx, unctx = _inputs(seed=11)
    image = None if strength == 1.0 else image
    ref = diffusers_run(unet, TCDScheduler(), steps, strength, noise, image, ctx, unctx, gamma=gamma)
    patched = lcm.lcm_sampling.patch_lcm_sampling(model)
    sampler = lcm.lcm_sampling.lcm_sampler("tcd", gamma=gamma, noise_sampler=seeded_noise_sampler())
    ours = comfy_run(lcm, patched, lcm.lcm_sampling.lcm_sigmas(patched, steps, strength), sampler,
                     noise, image, ctx, unctx)
    assert (ours - ref).abs().max().item() <= TOL
