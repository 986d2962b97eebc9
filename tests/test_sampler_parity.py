"""LCM Sampler numerics against the reference implementation the tutorial uses: diffusers'
LCMScheduler / TCDScheduler, on the same tiny UNet in both forms, same start latent, same noise.

Our path is ComfyUI's own: the MODEL from CheckpointLoaderSimple's loader, `comfy.sample.sample_custom`
with our SIGMAS and SAMPLER (what the nodes call). diffusers' loop is the pipelines' loop.
"""
from __future__ import annotations

import pytest
import torch
from diffusers import LCMScheduler, TCDScheduler

import graphs
from graphs import status_texts
from support import tiny_models
from support.diffusers_reference import DIFFUSERS_PREDICTION, pipeline_reference, step_noise_seed

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


def diffusers_run(unet, scheduler, steps, strength, noise, image, ctx, unctx, cfg=1.0, gamma=None, noise_seed=7,
                  timesteps=None):
    """The diffusers pipelines' loop (LatentConsistencyModel / StableDiffusion[Img2Img] with LCM/TCD); `timesteps`:
    a custom schedule (the pipelines' `timesteps=` argument) instead of `steps`."""
    if timesteps is None:
        scheduler.set_timesteps(steps, strength=strength)
    else:
        scheduler.set_timesteps(timesteps=timesteps)
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


# --------------------------------------------------------------------------------------------------
# Off the default path, through the real executor: any original_inference_steps on every route, v / x0
# prediction, TCD at t = 0, NaN. The reference is diffusers' scheduler loop on the same UNet, fed the
# noise ComfyUI draws (prepare_noise and the sampler's seeded noise sampler) and CLIPTextEncode's output.
# --------------------------------------------------------------------------------------------------

SEED = 7
TEXT = "a tiny red fox"   # graphs.lcm_graph's prompt; its negative is ""


@pytest.fixture(scope="module")
def prompts(comfy):
    """CLIPTextEncode's conditioning for TEXT and "" (what the graphs' pos / neg nodes compute)."""
    import comfy.sd
    import folder_paths
    import nodes
    _, clip, _, _ = comfy.sd.load_checkpoint_guess_config(
        folder_paths.get_full_path("checkpoints", "tiny-sd15.safetensors"), output_vae=False, output_clip=True)
    return tuple(nodes.CLIPTextEncode().encode(clip, t)[0][0][0] for t in (TEXT, ""))


def diffusers_reference(unet, prompts, scheduler_cls, steps, original_steps=50, strength=1.0, image=None,
                        gamma=None, prediction="eps", size=8, timesteps=None):
    """diffusers' loop for what graphs.lcm_graph(seed=SEED) samples; `image` in model space for img2img. Fed the
    noise ComfyUI draws: the start noise of comfy.sample.prepare_noise and the per-step noise of step_noise_seed."""
    scheduler = scheduler_cls(original_inference_steps=original_steps, prediction_type=DIFFUSERS_PREDICTION[prediction])
    noise = torch.randn((1, 4, size, size), generator=torch.manual_seed(SEED))   # comfy.sample.prepare_noise
    return diffusers_run(unet, scheduler, steps, strength, noise, image, *prompts, gamma=gamma,
                         noise_seed=step_noise_seed(SEED, noise.shape), timesteps=timesteps)


def run_route(comfy, base_dir, model, route, prefix, original_steps=50, loader_steps=None, prediction=None,
              sampler="lcm", gamma=0.3, steps=4, strength=1.0, img2img=False, scheduler="simple", expect_error=False,
              **schedule):
    """Runs graphs.lcm_graph through one route; returns (model-space latent, outputs).

    route: "all-in-one" (LCM Sampler), "custom" (SamplerCustom), "advanced" (SamplerCustomAdvanced) or "ksampler"
    (core KSampler, sampler lcm, `scheduler`) or "basic" (core's BasicScheduler `scheduler` into SamplerCustom with
    LCM Kit's sampler). `prediction` puts core's ModelSamplingDiscrete before the LCM nodes; `loader_steps` the
    LCM-LoRA Loader (strength 0: LCM model sampling only) with that grid. `schedule`: the recipe / timesteps widgets
    of the LCM Sampler, or of the LCM Scheduler on the custom / advanced routes (absent: a workflow saved before
    them). `expect_error`: the run must fail (see comfy.error()); returns (None, {})."""
    g = graphs.lcm_graph(prefix=prefix, seed=SEED, steps=steps, strength=strength, sampler=sampler, gamma=gamma,
                         original_inference_steps=original_steps, **schedule)
    if img2img:
        g = graphs.img2img(g)
        g["orig"] = {"class_type": "SaveLatent", "inputs": {"samples": ["latent", 0], "filename_prefix": f"{prefix}-in"}}
    m = ["ckpt", 0]
    if prediction:
        g["msd"] = {"class_type": "ModelSamplingDiscrete", "inputs": {"model": m, "sampling": prediction, "zsnr": False}}
        m = ["msd", 0]
    if loader_steps:
        g["lcmlora"] = {"class_type": "LCMKitLoraLoader", "inputs": {
            "model": m, "lora_name": "auto", "strength": 0.0, "original_inference_steps": loader_steps}}
        m = ["lcmlora", 0]
    g["sampler"]["inputs"]["model"] = m
    if route in ("custom", "advanced"):
        g = graphs.sampler_custom(g, advanced=route == "advanced", model=m, steps=steps, strength=strength,
                                  original_inference_steps=original_steps, sampler=sampler, gamma=gamma, seed=SEED)
        g["sigmas"]["inputs"].update(schedule)
    elif route == "ksampler":
        g["sampler"] = {"class_type": "KSampler", "inputs": {
            "model": m, "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0], "seed": SEED,
            "steps": steps, "cfg": 1.0, "sampler_name": "lcm", "scheduler": scheduler, "denoise": strength}}
    elif route == "basic":   # core's BasicScheduler's SIGMAS into LCM Kit's sampler (SamplerCustom)
        g = graphs.sampler_custom(g, model=m, steps=steps, sampler=sampler, gamma=gamma, seed=SEED)
        g["sigmas"] = {"class_type": "BasicScheduler", "inputs": {
            "model": m, "scheduler": scheduler, "steps": steps, "denoise": 1.0}}
    outputs = comfy.run(g, check=not expect_error)
    return (None if expect_error else graphs.saved_latent(outputs, base_dir)), outputs


def model_space(model, latent):
    return model.model.process_latent_in(latent)


@pytest.mark.parametrize("original_steps, sampler, route, loader_steps", [
    (30, "lcm", "all-in-one", None), (30, "lcm", "custom", None), (30, "lcm", "advanced", 50),
    (30, "lcm", "ksampler", 30), (7, "lcm", "custom", None), (7, "lcm", "ksampler", 7),
    (30, "tcd", "all-in-one", 50), (30, "tcd", "advanced", None), (1000, "tcd", "custom", 50),
])
def test_any_original_inference_steps_matches_diffusers_on_every_route(
        comfy, base_dir, sd15, prompts, original_steps, sampler, route, loader_steps):
    """A plain model, one the LCM-LoRA Loader prepared for 50 (the scheduler disagrees: exact anyway, with a
    warning on the LCM Scheduler) or for the same grid (core's KSampler follows the model)."""
    model, unet = sd15
    ours, outputs = run_route(comfy, base_dir, model, route, f"osteps-{original_steps}-{sampler}-{route}",
                              original_steps, loader_steps, sampler=sampler)
    scheduler_cls = TCDScheduler if sampler == "tcd" else LCMScheduler
    ref = diffusers_reference(unet, prompts, scheduler_cls, 4, original_steps, gamma=0.3 if sampler == "tcd" else None)
    err = (model_space(model, ours) - ref).abs().max().item()
    print(f"original_inference_steps {original_steps} {sampler} via {route}: max|Δ| vs diffusers {err:.2e}")
    assert err <= TOL
    if route != "ksampler":   # the node that takes original_inference_steps says when the MODEL disagrees
        warnings = status_texts(outputs["sampler" if route == "all-in-one" else "sigmas"], "warning")
        if loader_steps not in (None, original_steps):
            assert f"prepared for original_inference_steps {loader_steps}" in warnings[0]
            assert f"sampling follows {original_steps} exactly" in warnings[0]
        else:
            assert not warnings


# Core's schedulers on training timesteps give diffusers' numbers for that custom schedule (the pipelines' `timesteps=`):
# "simple" takes every (n/steps)-th σ of the MODEL's table: the LCM-LoRA Loader's 50-step grid (t = 20k - 1) or a plain
# model's 1000 timesteps; "sgm_uniform" spaces timesteps evenly from the table's first to its last (integers for 4 steps).
@pytest.mark.parametrize("route, scheduler, loader_steps, sampler, timesteps", [
    ("ksampler", "sgm_uniform", 50, "lcm", [999, 754, 509, 264]),
    ("ksampler", "simple", 50, "lcm", [999, 759, 499, 259]),
    ("basic", "simple", None, "lcm", [999, 749, 499, 249]),
    ("basic", "sgm_uniform", 50, "tcd", [999, 754, 509, 264]),
])
def test_core_schedulers_on_training_timesteps_match_diffusers(comfy, base_dir, sd15, prompts, route, scheduler,
                                                               loader_steps, sampler, timesteps):
    model, unet = sd15
    ours, _ = run_route(comfy, base_dir, model, route, f"core-{route}-{scheduler}-{sampler}", loader_steps=loader_steps,
                        sampler=sampler, scheduler=scheduler)
    gamma = 0.3 if sampler == "tcd" else None
    ref = diffusers_reference(unet, prompts, TCDScheduler if gamma is not None else LCMScheduler, None, gamma=gamma,
                              timesteps=timesteps)
    err = (model_space(model, ours) - ref).abs().max().item()
    print(f"{route} scheduler {scheduler} {sampler}: max|Δ| vs diffusers(timesteps={timesteps}) {err:.2e}")
    assert err <= TOL


@pytest.mark.parametrize("sampler", ["lcm", "tcd"])
def test_core_ksampler_img2img_by_denoise_matches_diffusers_strength(comfy, base_dir, sd15, prompts, sampler):
    """Core's KSampler (sampler lcm, scheduler simple, denoise 0.5) on a model the LCM-LoRA Loader prepared takes the
    last steps of a steps/denoise schedule on the 50-step grid: diffusers' img2img timesteps for strength 0.5 (499,
    379, 259, 139), noised the img2img way. "tcd" runs LCM Kit's TCD sampler through SamplerCustom at strength 0.5."""
    model, unet = sd15
    route = "ksampler" if sampler == "lcm" else "custom"
    ours, outputs = run_route(comfy, base_dir, model, route, f"denoise-{sampler}", loader_steps=50, sampler=sampler,
                              strength=0.5, img2img=True)
    image = model_space(model, graphs.saved_latent(outputs, base_dir, "orig"))
    gamma = 0.3 if sampler == "tcd" else None
    ref = diffusers_reference(unet, prompts, TCDScheduler if gamma is not None else LCMScheduler, 4, strength=0.5,
                              image=image, gamma=gamma)
    err = (model_space(model, ours) - ref).abs().max().item()
    print(f"img2img strength 0.5 via {route}: max|Δ| vs diffusers {err:.2e}")
    assert err <= TOL


@pytest.mark.parametrize("scheduler", ["karras", "normal"])
def test_sigmas_between_training_timesteps_are_refused_by_lcm_kits_sampler(comfy, base_dir, sd15, scheduler):
    """LCM / TCD step between training timesteps; a σ between two would be rounded to one of them (core does), so
    the UNet would run at a noise level the latent does not have: LCM Kit's sampler stops and names the fix."""
    model, _ = sd15
    run_route(comfy, base_dir, model, "basic", f"between-{scheduler}", loader_steps=50, scheduler=scheduler,
              expect_error=True)
    err = comfy.error()
    assert err is not None and "lies between the training timesteps" in err["exception_message"]
    assert "Feed the LCM Scheduler's SIGMAS" in err["exception_message"]


def test_core_lcm_sampling_with_another_grid_is_an_error_not_a_wrong_image(comfy, base_dir):
    """core's ModelSamplingDiscrete(lcm) runs the UNet on its 50-step grid: a 30-step schedule cannot be sampled on
    it exactly, so the sampler stops with the fix (it used to run the UNet at the grid's t 979 for the σ of t 989)."""
    g = graphs.lcm_graph(prefix="core-lcm-30")
    g["msd"] = {"class_type": "ModelSamplingDiscrete", "inputs": {"model": ["ckpt", 0], "sampling": "lcm", "zsnr": False}}
    g = graphs.sampler_custom(g, model=["msd", 0], original_inference_steps=30, seed=SEED)
    comfy.run(g, check=False)
    err = comfy.error()
    assert err is not None and "runs the UNet at t=979 for sigma" in err["exception_message"]
    assert "which is t=989 on its noise schedule" in err["exception_message"]
    assert "set original_inference_steps to 50" in err["exception_message"]


@pytest.mark.parametrize("prediction, sampler, route", [
    ("v_prediction", "lcm", "all-in-one"), ("v_prediction", "tcd", "all-in-one"),
    ("v_prediction", "lcm", "advanced"), ("v_prediction", "tcd", "advanced"), ("x0", "lcm", "all-in-one"),
])
def test_v_and_x0_prediction_match_diffusers(comfy, base_dir, sd15, prompts, prediction, sampler, route):
    """core's ModelSamplingDiscrete(v_prediction | x0) before the LCM nodes (the advanced route also through the
    LCM-LoRA Loader) vs diffusers' schedulers with prediction_type v_prediction / sample on the same UNet."""
    model, unet = sd15
    gamma = 0.3 if sampler == "tcd" else None
    ours, _ = run_route(comfy, base_dir, model, route, f"pred-{prediction}-{sampler}-{route}", prediction=prediction,
                        loader_steps=50 if route == "advanced" else None, sampler=sampler)
    ref = diffusers_reference(unet, prompts, TCDScheduler if gamma is not None else LCMScheduler, 4, gamma=gamma,
                              prediction=prediction)
    eps_ref = diffusers_reference(unet, prompts, LCMScheduler, 4)
    err = (model_space(model, ours) - ref).abs().max().item()
    print(f"{prediction} {sampler} via {route}: max|Δ| vs diffusers {err:.2e}")
    assert err <= TOL
    assert (ref - eps_ref).abs().max().item() > 0.05, "the prediction type must matter for this check to mean anything"


@pytest.mark.parametrize("sampler, route", [("tcd", "all-in-one"), ("tcd", "advanced"), ("lcm", "all-in-one")])
def test_schedule_reaching_t_0_matches_diffusers(comfy, base_dir, sd15, prompts, sampler, route):
    """original_inference_steps 1000, strength 0.01, 10 steps: timesteps 9 … 0. At t = 0 LCM's c_out is 0, which
    made TCD divide by zero (an all-NaN image)."""
    model, unet = sd15
    gamma = 0.3 if sampler == "tcd" else None
    ours, outputs = run_route(comfy, base_dir, model, route, f"t0-{sampler}-{route}", original_steps=1000,
                              sampler=sampler, steps=10, strength=0.01, img2img=True)
    image = model_space(model, graphs.saved_latent(outputs, base_dir, "orig"))
    ref = diffusers_reference(unet, prompts, TCDScheduler if gamma is not None else LCMScheduler, 10, 1000,
                              strength=0.01, image=image, gamma=gamma)
    assert torch.isfinite(ours).all()
    err = (model_space(model, ours) - ref).abs().max().item()
    print(f"t=0 {sampler} via {route}: max|Δ| vs diffusers {err:.2e}")
    assert err <= TOL


def test_nan_from_the_model_is_an_error_naming_the_cause(comfy, base_dir):
    """A LoRA with inf weights makes the UNet return NaN: the sampler stops at the first step and says why."""
    from safetensors.torch import save_file
    name = "broken-inf.safetensors"
    up = torch.zeros(320, 4, 1, 1)
    up[0] = float("inf")
    save_file({"lora_unet_conv_in.lora_down.weight": torch.ones(4, 4, 3, 3), "lora_unet_conv_in.lora_up.weight": up},
              str(base_dir / "models" / "loras" / name))
    g = graphs.lcm_graph(prefix="nan")
    g["stack"] = {"class_type": "LCMKitLoraStack", "inputs": {"lora_name_1": name, "strength_model_1": 1.0,
                                                              "strength_clip_1": 0.0, **{
        f"{w}_{i}": ("None" if w == "lora_name" else 1.0) for i in (2, 3, 4)
        for w in ("lora_name", "strength_model", "strength_clip")}}}
    g["apply"] = {"class_type": "LCMKitApplyLoraStack", "inputs": {"model": ["ckpt", 0], "lora_stack": ["stack", 0]}}
    g["sampler"]["inputs"]["model"] = ["apply", 0]
    comfy.run(g, check=False)
    err = comfy.error()
    assert err is not None and "the model returned NaN/Inf at step 1 (t=999" in err["exception_message"]
    assert "broken (inf/NaN) weights" in err["exception_message"]


@pytest.mark.parametrize("node, sampling, named", [
    ("ModelSamplingDiscrete", {"sampling": "img_to_img", "zsnr": False}, "prediction type is IMG_TO_IMG"),
    ("ModelSamplingContinuousEDM", {"sampling": "v_prediction", "sigma_max": 120.0, "sigma_min": 0.002},
     "noise schedule is ModelSamplingContinuousEDM"),
])
def test_unsupported_model_sampling_is_a_clear_error(comfy, node, sampling, named):
    g = graphs.lcm_graph(prefix="unsupported")
    g["ms"] = {"class_type": node, "inputs": {"model": ["ckpt", 0], **sampling}}
    g["sampler"]["inputs"]["model"] = ["ms", 0]
    comfy.run(g, check=False)
    err = comfy.error()
    assert err is not None and named in err["exception_message"]
    assert "SD1.x, SD2.x, SDXL" in err["exception_message"]


# --------------------------------------------------------------------------------------------------
# Custom timesteps and the model cards' recipes (issue 23), against diffusers' pipelines with each card's settings.
# img2img of a fixed or trailing list follows diffusers' generic StableDiffusion(XL)Img2ImgPipeline: the last
# int(N·strength) timesteps (get_timesteps + set_begin_index); lcm / tcd on the LCM grid follow the LCM img2img
# pipeline (strength into set_timesteps), as before.
# --------------------------------------------------------------------------------------------------

RECIPE_CASES = {   # recipe → (method, the card's timesteps or None, gamma, steps, prediction)
    "LCM-LoRA (LCM)": ("lcm", None, None, 4, "eps"),
    "PCM LCM-like LoRA (LCM)": ("lcm", None, None, 4, "eps"),
    "TCD-LoRA (TCD)": ("tcd", None, 0.3, 4, "eps"),
    "Hyper-SD 1-step unified LoRA (TCD, 1-8 steps)": ("tcd", None, 1.0, 2, "eps"),
    "Hyper-SDXL 1-step UNet (LCM, t 800)": ("lcm", [800], None, 1, "eps"),
    "DMD2 4-step (LCM, 999,749,499,249)": ("lcm", [999, 749, 499, 249], None, 4, "eps"),
    "DMD2 1-step (LCM, t 399)": ("lcm", [399], None, 1, "eps"),
    "Hyper-SD N-step LoRA (DDIM trailing)": ("ddim", None, None, 3, "eps"),
    "PCM N-step LoRA (DDIM trailing)": ("ddim", None, None, 4, "eps"),
    "SDXL-Lightning N-step (Euler trailing)": ("euler", None, None, 4, "eps"),
    "SDXL-Lightning 1-step x0 UNet (Euler trailing)": ("euler", [999], None, 1, "x0"),
}


@pytest.mark.parametrize("recipe", list(RECIPE_CASES))
@pytest.mark.parametrize("route, img2img", [("all-in-one", False), ("all-in-one", True), ("custom", False),
                                            ("advanced", True)])
def test_recipes_match_their_cards_diffusers_settings(comfy, base_dir, sd15, prompts, recipe, route, img2img):
    """Each recipe on the LCM Sampler, and on the LCM Scheduler + LCM / TCD Sampler (SamplerCustom, SamplerCustomAdvanced),
    txt2img and img2img (strength 0.5; a 1-step recipe at strength 1.0 on the image: one timestep cannot be halved)
    against diffusers' pipeline with the card's scheduler settings."""
    model, unet = sd15
    method, timesteps, gamma, steps, prediction = RECIPE_CASES[recipe]
    strength = 0.5 if img2img and steps > 1 else 1.0
    if route == "all-in-one":   # widgets the recipe overrides are set to other values
        widgets = {"sampler": "tcd" if method == "lcm" else "lcm", "gamma": 0.05, "steps": 2 if timesteps else steps}
    else:                       # the scheduler's recipe sets the SIGMAS; the SAMPLER is wired as its status line says
        widgets = {"sampler": method, "gamma": 0.3 if gamma is None else gamma, "steps": steps}
    ours, outputs = run_route(comfy, base_dir, model, route, f"recipe-{method}-{steps}-{route}-{img2img}",
                              recipe=recipe, strength=strength, img2img=img2img,
                              prediction=None if prediction == "eps" else prediction, **widgets)
    ours = model_space(model, ours)
    image = model_space(model, graphs.saved_latent(outputs, base_dir, "orig")) if img2img else None
    ref = pipeline_reference(unet, prompts, method, steps, timesteps, strength, image, gamma, prediction)
    err = (ours - ref).abs().max().item()
    print(f"{recipe} via {route} img2img={img2img}: max|Δ| vs diffusers {err:.2e}")
    assert err <= TOL
    node = "sampler" if route == "all-in-one" else "sigmas"
    (info,) = [t for t in status_texts(outputs[node], "info") if t.startswith("recipe ")]
    assert info.startswith(f"recipe {recipe} (for ") and "suggested cfg" in info and "(set by the recipe)" in info
    if route != "all-in-one":
        assert any(f"LCM / TCD Sampler node set to sampler {method}" in t for t in status_texts(outputs[node], "info"))


@pytest.mark.parametrize("route, sampler, timesteps, img2img", [
    ("all-in-one", "lcm", "399", False),                   # unit start noise at any first t (core: σ(399)·z, 0.76×)
    ("all-in-one", "tcd", "999, 749, 499, 249", True),     # img2img 0.5: the last 2, TCD's last step to ᾱ_0
    ("custom", "tcd", "800,500,200", False),
    ("advanced", "lcm", "[999, 759, 499, 259]", True),
])
def test_custom_timesteps_match_diffusers(comfy, base_dir, sd15, prompts, route, sampler, timesteps, img2img):
    """The `timesteps` input as diffusers' pipelines pass `timesteps=` (set_timesteps(timesteps=…)); img2img at
    strength 0.5 keeps the last int(N·0.5) of them, as the generic img2img pipeline; the widget steps is not used."""
    model, unet = sd15
    strength = 0.5 if img2img else 1.0
    ours, outputs = run_route(comfy, base_dir, model, route, f"custom-ts-{sampler}-{route}", sampler=sampler, steps=2,
                              strength=strength, img2img=img2img, timesteps=timesteps)
    image = model_space(model, graphs.saved_latent(outputs, base_dir, "orig")) if img2img else None
    listed = [int(t) for t in timesteps.strip("[]").replace(",", " ").split()]
    gamma = 0.3 if sampler == "tcd" else None
    ref = pipeline_reference(unet, prompts, sampler, timesteps=listed, strength=strength, image=image, gamma=gamma)
    err = (model_space(model, ours) - ref).abs().max().item()
    print(f"timesteps {listed} {sampler} via {route} img2img={img2img}: max|Δ| vs diffusers {err:.2e}")
    assert err <= TOL
    node = "sampler" if route == "all-in-one" else "sigmas"
    off = [t for t in listed[1:] if (t + 1) % 20]
    warnings = status_texts(outputs[node], "warning")
    assert bool(off) == any(f"timesteps {', '.join(map(str, off))} are not on the 50-step" in w for w in warnings)


def test_core_ksampler_is_exact_for_dmd2_4_step_on_default_model_sampling(comfy, base_dir, sd15, prompts):
    """README: core's KSampler (sampler lcm, scheduler simple) on the checkpoint's own model sampling runs DMD2's
    999,749,499,249; without LCM's boundary condition, which is below 1e-7 at t ≥ 249."""
    model, unet = sd15
    ours, _ = run_route(comfy, base_dir, model, "ksampler", "core-dmd2", scheduler="simple")
    ref = pipeline_reference(unet, prompts, "lcm", timesteps=[999, 749, 499, 249])
    assert (model_space(model, ours) - ref).abs().max().item() <= TOL


@pytest.mark.parametrize("sampler", ["lcm", "tcd", "ddim", "euler"])
def test_samplers_honour_disable_for_the_progress_bar(lcm, sd15, sampler, capsys):
    """k-diffusion's convention: a tqdm bar on stderr unless `disable` (core passes its --disable-progress-bars)."""
    import comfy.sample
    model, _ = sd15
    noise, _, ctx, unctx = _inputs(seed=1)
    sigmas = lcm.lcm_sampling.timestep_sigmas(model, [999, 499])
    for disable in (False, True):
        comfy.sample.sample_custom(model, noise, 1.0, lcm.lcm_sampling.lcm_sampler(sampler), sigmas, [[ctx, {}]],
                                   [[unctx, {}]], torch.zeros_like(noise), disable_pbar=disable, seed=0)
        bar = "2/2" in capsys.readouterr().err
        assert bar is not disable, (sampler, disable)
