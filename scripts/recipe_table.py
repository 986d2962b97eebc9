"""Δ vs diffusers for each few-step model of issue 23's table: core ComfyUI's closest settings, and LCM Kit's recipe.

    python3 scripts/testbed.py python scripts/recipe_table.py [--seed N]

For every row: the model card's diffusers recipe (tests/support/diffusers_reference.py: the card's scheduler as
`from_config(pipe.scheduler.config)` configures it, in the SD pipelines' loop) is the reference; core's closest
settings run as core's KSampler runs them (calculate_sigmas + sampler_object, or the sigmas a custom node gives);
LCM Kit runs the recipe as the LCM Sampler does. Same tiny SD1.5 UNet (the schedule maths is the same for SDXL: same
scaled_linear ᾱ table), same start noise and per-step noise, text-to-image, cfg 1. Prints the README's table, max|Δ|
of the final latent (model space).
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent

from support import comfy_env, tiny_models  # noqa: E402
from support.diffusers_reference import pipeline_reference  # noqa: E402

# model row → (card's recipe, core's closest settings: (sampler, scheduler, ModelSamplingDiscrete or None) or the
# timesteps of a SIGMAS node, LCM Kit recipe, steps, prediction)
ROWS = [
    ("LCM-LoRA SD1.5 / SDXL / SSD-1B, Segmind-VegaRT, PCM LCM-like", "LCMScheduler, 4 steps",
     ("lcm", "simple", "lcm"), "LCM-LoRA (LCM)", 4, "eps"),
    ("DMD2 SDXL 4-step (UNet or LoRA)", "LCMScheduler, timesteps=[999,749,499,249]",
     ("lcm", "simple", None), "DMD2 4-step (LCM, 999,749,499,249)", 4, "eps"),
    ("DMD2 SDXL 4-step, with ModelSamplingDiscrete lcm", "LCMScheduler, timesteps=[999,749,499,249]",
     ("lcm", "simple", "lcm"), "DMD2 4-step (LCM, 999,749,499,249)", 4, "eps"),
    ("DMD2 SDXL 1-step", "LCMScheduler, timesteps=[399]", [399], "DMD2 1-step (LCM, t 399)", 1, "eps"),
    ("Hyper-SDXL 1-step UNet", "LCMScheduler, timesteps=[800]", [800], "Hyper-SDXL 1-step UNet (LCM, t 800)", 1,
     "eps"),
    ("Hyper-SD 1-step unified LoRA (1 step)", "TCDScheduler, eta 1.0", ("lcm", "simple", "lcm"),
     "Hyper-SD 1-step unified LoRA (TCD, 1-8 steps)", 1, "eps"),
    ("Hyper-SD 1-step unified LoRA (4 steps)", "TCDScheduler, eta 1.0", ("lcm", "simple", "lcm"),
     "Hyper-SD 1-step unified LoRA (TCD, 1-8 steps)", 4, "eps"),
    ("TCD-LoRA SD1.5 / SDXL", "TCDScheduler, eta 0.3, 4 steps", ("lcm", "simple", "lcm"), "TCD-LoRA (TCD)", 4, "eps"),
    ("Hyper-SD 4-step LoRA", "DDIMScheduler trailing, 4 steps", ("ddim", "simple", None),
     "Hyper-SD N-step LoRA (DDIM trailing)", 4, "eps"),
    ("PCM 8-step LoRA", "DDIMScheduler trailing, set_alpha_to_one False, 8 steps", ("euler", "simple", None),
     "PCM N-step LoRA (DDIM trailing)", 8, "eps"),
    ("SDXL-Lightning 4-step (UNet or LoRA)", "EulerDiscreteScheduler trailing, 4 steps", ("euler", "simple", None),
     "SDXL-Lightning N-step (Euler trailing)", 4, "eps"),
    ("SDXL-Lightning 4-step, the card's sgm_uniform", "EulerDiscreteScheduler trailing, 4 steps",
     ("euler", "sgm_uniform", None), "SDXL-Lightning N-step (Euler trailing)", 4, "eps"),
    ("SDXL-Lightning 1-step x0", "EulerDiscreteScheduler trailing, prediction_type sample", ("euler", "simple", "x0"),
     "SDXL-Lightning 1-step x0 UNet (Euler trailing)", 1, "x0"),
]


def _sampling(model, kind):
    import comfy_extras.nodes_model_advanced as adv
    return model if kind is None else adv.ModelSamplingDiscrete().patch(model, kind, False)[0]


def _run(model, sampler, sigmas, ctx, seed):
    import comfy.sample
    latent = torch.zeros(1, 4, 8, 8)
    noise = comfy.sample.prepare_noise(latent, seed)
    out = comfy.sample.sample_custom(model, noise, 1.0, sampler, sigmas, [[ctx, {}]], [[ctx, {}]], latent,
                                     disable_pbar=True, seed=seed)
    return model.model.process_latent_in(out)


def core_result(pack, model, core, steps, prediction, ctx, seed):
    """Core's closest settings: KSampler (sampler, scheduler) on ModelSamplingDiscrete(kind), or core's `lcm` sampler
    on SIGMAS [σ(t), 0] (what ByteDance's HyperSDXL1StepUnetScheduler node gives)."""
    import comfy.samplers
    if isinstance(core, list):
        m = _sampling(model, None if prediction == "eps" else prediction)
        return _run(m, comfy.samplers.sampler_object("lcm"), pack.nodes.lcm_sampling.timestep_sigmas(m, core), ctx,
                    seed)
    sampler, scheduler, kind = core
    m = _sampling(model, kind)
    sigmas = comfy.samplers.calculate_sigmas(m.get_model_object("model_sampling"), scheduler, steps)
    return _run(m, comfy.samplers.sampler_object(sampler), sigmas, ctx, seed)


def lcm_kit_result(pack, model, recipe, steps, prediction, ctx, seed):
    """What the LCM Sampler runs for `recipe`."""
    sampling = pack.nodes.lcm_sampling
    m = _sampling(model, None if prediction == "eps" else prediction)
    plan = pack.nodes.lcm_math.plan_schedule(steps=steps, recipe=recipe)
    if plan.sampler in ("lcm", "tcd"):
        m = sampling.patch_lcm_sampling(m)
    sampler = sampling.lcm_sampler(plan.sampler, 0.3 if plan.gamma is None else plan.gamma)
    return _run(m, sampler, sampling.timestep_sigmas(m, plan.timesteps), ctx, seed), plan


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    base = Path(os.environ.get("LCM_KIT_TESTBED", REPO / ".testbed")) / "bench-base"
    comfy_env.make_base_dir(base, {})
    comfy_env.bootstrap(base)
    comfy_env.make_base_dir(base, tiny_models.ensure("checkpoints/tiny-sd15.safetensors"))
    pack = comfy_env.pack_module()
    import diffusers
    diffusers.utils.logging.set_verbosity_error()   # its off-grid / first-timestep warnings: the rows show them
    import comfy.sd
    import folder_paths
    model = comfy.sd.load_checkpoint_guess_config(folder_paths.get_full_path("checkpoints", "tiny-sd15.safetensors"),
                                                  output_vae=False, output_clip=False)[0]
    unet = tiny_models.diffusers_unet("sd15", {k: v.float() for k, v in model.model.diffusion_model.state_dict().items()})
    ctx = torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(args.seed))

    print("| model | card's recipe | core's closest settings (max\\|Δ\\|) | LCM Kit (max\\|Δ\\|) |")
    print("|---|---|---|---|")
    for row, card, core, recipe, steps, prediction in ROWS:
        ours, plan = lcm_kit_result(pack, model, recipe, steps, prediction, ctx, args.seed)
        ref = pipeline_reference(unet, (ctx,), plan.sampler, steps, list(pack.nodes.lcm_math.RECIPES[recipe].timesteps
                                                                         or []) or None,
                                 gamma=plan.gamma, prediction=prediction, seed=args.seed)
        core_out = core_result(pack, model, core, steps, prediction, ctx, args.seed)
        if isinstance(core, list):
            core_text = f"SamplerCustom: lcm on SIGMAS [σ({core[0]}), 0]"
        else:
            sampler, scheduler, kind = core
            core_text = (f"{'ModelSamplingDiscrete ' + kind + ' + ' if kind else ''}KSampler {sampler} + {scheduler}"
                         f", {steps} step{'s' if steps > 1 else ''}")
        d_core = (core_out - ref).abs().max().item()
        d_ours = (ours - ref).abs().max().item()
        print(f"| {row} | {card} | {core_text} ({d_core:.1e}) | recipe \"{recipe}\" ({d_ours:.1e}) |")
    return 0


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.ERROR)  # ComfyUI's import chatter (optional audio nodes)
    raise SystemExit(main())
