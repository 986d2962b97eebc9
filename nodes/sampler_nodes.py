"""Node classes for LCM sampling: the all-in-one LCM Sampler, and SIGMAS / SAMPLER nodes for
SamplerCustom and SamplerCustomAdvanced. Thin: validate, clone, patch, call ComfyUI's own sampling."""
from __future__ import annotations

import logging

import comfy.sample
import comfy.utils
import latent_preview

from . import compat, lcm_math, status
from .input_checks import finite_number, widget_value_problem
from .lcm_sampling import (check_latent_channels, check_recipe_prediction, cfg_warning, empty_strength_warning,
                           ensure_finite_latent, grid_warning, lcm_sampler, patch_lcm_sampling, timestep_sigmas,
                           train_timesteps)

log = logging.getLogger("lcm_kit")
CATEGORY = "LCM Kit/sampling"
SAMPLERS = list(lcm_math.SAMPLER_METHODS)   # new methods are appended: saved workflows store the name


def _steps_input():
    return ("INT", {"default": 4, "min": 1, "max": 50, "tooltip":
                    "4 is the sweet spot, 2 for drafts, 8 final; a preset or timesteps overrides it."})


def _strength_input():
    return ("FLOAT", {"default": 1.0, "min": 0.01, "max": 1.0, "step": 0.01, "tooltip":
                      "1.0 text-to-image; img2img: 0.3-0.5 stays close, 0.7-0.9 reimagines."})


def original_steps_input(tooltip: str = "The grid the LCM was distilled on: 50 for every published LCM."):
    return ("INT", {"default": 50, "min": 1, "max": 1000, "tooltip": tooltip})


def _sampler_inputs():
    return {
        "sampler": (SAMPLERS, {"default": "lcm", "tooltip":
                               "lcm, tcd (uses gamma); ddim / euler trailing (Hyper-SD, PCM / Lightning)."}),
        "gamma": ("FLOAT", {"default": 0.3, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip":
                            "TCD's stochasticity: 0 deterministic, 0.3 default. A TCD recipe sets it."}),
    }


def _optional_inputs():
    """The inputs appended for issue 23 (optional, at the end: saved workflows keep loading)."""
    return {
        "timesteps": ("STRING", {"default": "", "tooltip":
                                 "Custom timesteps, high to low, < 1000 (DMD2: 999,749,499,249); replaces steps."}),
        "recipe": (list(lcm_math.RECIPES), {"default": lcm_math.RECIPE_NONE, "tooltip":
                                            "Your file's model-card settings (DMD2, Hyper-SD, TCD, PCM, Lightning)."}),
    }


def _number(spec: tuple, value):
    """A widget value as ComfyUI converts it (int for INT, float for FLOAT), once widget_value_problem passed it."""
    kind = spec[0]
    return int(value) if kind == "INT" else float(value) if kind == "FLOAT" else value


def check_queued_schedule(node_class, **values) -> bool:
    """VALIDATE_INPUTS of the LCM Sampler and LCM Scheduler: a schedule the widget values cannot give (a value that is
    no number, strength too low for the steps, steps above original_inference_steps, a timesteps list diffusers
    refuses, steps outside a recipe's range) is refused when the prompt is queued, before any model loads, naming the
    input and the fix. A value from a link is not known yet (None): the node checks it at run time.

    Raises ScheduleError rather than returning the message: ComfyUI (execution.validate_inputs, v0.3.75 and
    0.33) repeats a returned message once per argument of VALIDATE_INPUTS, while an exception raised here is
    reported once, for this node (as "exception_during_inner_validation"). Taking these arguments also turns
    off core's own min/max and list checks of them, so the widget ranges are checked here too."""
    types = node_class.INPUT_TYPES()
    specs = {**types["required"], **types.get("optional", {})}
    known = {}
    for name, value in values.items():
        if value is None or name not in specs:
            continue
        problem = widget_value_problem(specs[name], name, value)
        if problem:
            raise lcm_math.ScheduleError(problem)
        known[name] = _number(specs[name], value)
    if known.get("timesteps"):
        lcm_math.parse_timesteps(known["timesteps"])     # a list diffusers refuses, even when the rest is linked
    steps_preset = known.get("steps_preset")
    preset_steps = lcm_math.STEP_PRESETS.get(steps_preset)
    if preset_steps:
        known["steps"] = preset_steps
    if None in values.values():   # a linked value: the whole schedule is checked at run time
        return True
    try:
        lcm_math.plan_schedule(known.get("sampler", "lcm"), 0.3, known["steps"], known["strength"],
                               known["original_inference_steps"], known.get("timesteps", ""),
                               known.get("recipe", lcm_math.RECIPE_NONE))
    except lcm_math.ScheduleError as e:
        if preset_steps:
            raise lcm_math.ScheduleError(f"steps_preset {steps_preset!r} sets steps to {preset_steps}: {e}") from None
        raise
    return True


def plan_for(model, sampler, gamma, steps, strength, original_inference_steps, timesteps, recipe):
    """The node's schedule (`lcm_math.plan_schedule` on `model`'s noise schedule), its recipe checked against the
    model's prediction type."""
    strength = finite_number(strength, "strength")
    plan = lcm_math.plan_schedule(sampler, gamma, int(steps), strength, int(original_inference_steps),
                                  timesteps or "", recipe, train_timesteps(model))
    check_recipe_prediction(model, recipe, plan.prediction)
    return plan


class LCMSampler:
    DESCRIPTION = ("Samples a LATENT in 1-8 steps with diffusers' exact LCM (or TCD) schedule, after an LCM checkpoint "
                   "or the LCM-LoRA Loader; img2img by strength. For DMD2, Hyper-SD, TCD, PCM or Lightning files pick "
                   "the recipe named after your file.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "An LCM checkpoint, or a checkpoint through the LCM-LoRA Loader."}),
            "positive": ("CONDITIONING", {"tooltip": "Prompt conditioning (ControlNet-applied conditioning works)."}),
            "negative": ("CONDITIONING", {"tooltip": "Only used when cfg > 1; at cfg 1.0 one model pass per step."}),
            "latent_image": ("LATENT", {"tooltip": "Empty Latent Image, or a VAE-encoded image for img2img."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True,
                             "tooltip": "Seed for the start noise and each step's re-noising."}),
            "steps": _steps_input(),
            "cfg": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01, "tooltip":
                              "Keep 1.0-2.0 (LCM is trained for low guidance); 1.0 is twice as fast."}),
            "strength": _strength_input(),
            **_sampler_inputs(),
            "original_inference_steps": original_steps_input(),
            "steps_preset": (list(lcm_math.STEP_PRESETS), {"default": "custom (use steps)", "tooltip":
                             "Quality vs. speed; anything but custom overrides steps (1, 2, 4 or 8)."}),
        }, "optional": _optional_inputs()}

    @classmethod
    def VALIDATE_INPUTS(cls, steps=None, strength=None, original_inference_steps=None, steps_preset=None,
                        sampler=None, timesteps="", recipe=lcm_math.RECIPE_NONE):
        return check_queued_schedule(cls, steps=steps, strength=strength,
                                     original_inference_steps=original_inference_steps, steps_preset=steps_preset,
                                     sampler=sampler, timesteps=timesteps, recipe=recipe)

    def sample(self, model, positive, negative, latent_image, seed, steps, cfg, strength, sampler, gamma,
               original_inference_steps, steps_preset="custom (use steps)", timesteps="", recipe=lcm_math.RECIPE_NONE):
        if steps_preset not in lcm_math.STEP_PRESETS:
            raise ValueError(f"unknown steps_preset {steps_preset!r}; valid: {', '.join(lcm_math.STEP_PRESETS)}")
        steps = lcm_math.STEP_PRESETS[steps_preset] or steps
        samples = latent_image["samples"]
        check_latent_channels(model, samples)
        ensure_finite_latent(samples)
        # Inputs first, before anything is patched: linked values skip ComfyUI's min/max checks.
        cfg = finite_number(cfg, "cfg")
        plan = plan_for(model, sampler, gamma, steps, strength, original_inference_steps, timesteps, recipe)
        sampler_obj = lcm_sampler(plan.sampler, gamma if plan.gamma is None else plan.gamma)

        lcm_family = plan.sampler in ("lcm", "tcd")
        patched = patch_lcm_sampling(model, original_inference_steps) if lcm_family else model
        sigmas = timestep_sigmas(patched, plan.timesteps)
        warnings = plan.warnings + [w for w in [
            cfg_warning(cfg) if recipe == lcm_math.RECIPE_NONE else None, empty_strength_warning(samples, strength),
            grid_warning(model, original_inference_steps, "sampler", replaces_sampling=True) if lcm_family else None]
            if w]

        samples = compat.fix_empty_latent(patched, latent_image)
        noise = comfy.sample.prepare_noise(samples, seed, latent_image.get("batch_index"))
        callback = latent_preview.prepare_callback(patched, sigmas.shape[-1] - 1, {})
        out_samples = comfy.sample.sample_custom(
            patched, noise, cfg, sampler_obj, sigmas, positive, negative, samples,
            noise_mask=latent_image.get("noise_mask"), callback=callback,
            disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
        out = {k: v for k, v in latent_image.items() if k not in compat.LATENT_SAMPLER_KEYS}
        out["samples"] = out_samples
        return status.node_output((out,), info=plan.info, warnings=warnings, node="LCM Sampler")


class LCMScheduler:
    DESCRIPTION = ("LCM timesteps as SIGMAS for SamplerCustom(Advanced): diffusers' exact schedule, a custom "
                   "timesteps list, or a model card's recipe. Pair with the LCM / TCD Sampler the status line names.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The model to sample; its noise schedule gives the sigmas."}),
            "steps": _steps_input(),
            "strength": _strength_input(),
            "original_inference_steps": original_steps_input(),
        }, "optional": _optional_inputs()}

    @classmethod
    def VALIDATE_INPUTS(cls, steps=None, strength=None, original_inference_steps=None, timesteps="",
                        recipe=lcm_math.RECIPE_NONE):
        return check_queued_schedule(cls, steps=steps, strength=strength,
                                     original_inference_steps=original_inference_steps, timesteps=timesteps,
                                     recipe=recipe)

    def get_sigmas(self, model, steps, strength, original_inference_steps, timesteps="", recipe=lcm_math.RECIPE_NONE):
        plan = plan_for(model, "lcm", 0.3, steps, strength, original_inference_steps, timesteps, recipe)
        sigmas = timestep_sigmas(model, plan.timesteps)
        info = list(plan.info)
        if recipe != lcm_math.RECIPE_NONE:
            gamma = f", gamma {plan.gamma:g}" if plan.gamma is not None else ""
            info.append(f"Wire these SIGMAS to the LCM / TCD Sampler node set to sampler {plan.sampler}{gamma}.")
        return status.node_output((sigmas,), info=info, warnings=plan.warnings + [
            grid_warning(model, original_inference_steps, "scheduler") if plan.sampler in ("lcm", "tcd") else None],
                                  node="LCM Scheduler")


class LCMSamplerSelect:
    DESCRIPTION = ("The LCM (or TCD) sampler as a SAMPLER for SamplerCustom / SamplerCustomAdvanced. With the "
                   "LCM Scheduler's SIGMAS it gives the same latents as the all-in-one LCM Sampler.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("SAMPLER",)
    FUNCTION = "get_sampler"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": _sampler_inputs()}

    def get_sampler(self, sampler, gamma):
        return (lcm_sampler(sampler, gamma),)


NODE_CLASS_MAPPINGS = {
    "LCMKitSampler": LCMSampler,
    "LCMKitScheduler": LCMScheduler,
    "LCMKitSamplerSelect": LCMSamplerSelect,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "LCMKitSampler": "LCM Sampler (LCM Kit)",
    "LCMKitScheduler": "LCM Scheduler (LCM Kit)",
    "LCMKitSamplerSelect": "LCM / TCD Sampler (LCM Kit)",
}
