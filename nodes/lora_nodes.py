"""Node classes for LoRAs: the LCM-LoRA Loader, the LoRA Stack and Apply LoRA Stack. The work is done in
`lora_folder` (names → files), `lora_apply` (one LoRA onto MODEL / CLIP), `lcm_lora_auto` (lora_name auto) and
`lora_stack` (the LORA_STACK convention)."""
from __future__ import annotations

import logging

import comfy.model_management
import folder_paths

from . import lora_files, status
from .input_checks import finite_number
from .lcm_lora_auto import find_lcm_lora
from .lcm_sampling import patch_lcm_sampling
from .lora_apply import Applied, TensorCache, apply_lora
from .lora_folder import AUTO, NONE, lora_path, loras_folder_files, validate_lora_name
from .lora_stack import normalize_stack
from .sampler_nodes import original_steps_input

log = logging.getLogger("lcm_kit")
CATEGORY = "LCM Kit/loaders"
STACK_ROWS = 4            # fixed forever: saved workflows store the row widgets positionally


def _ui(lines: list[str], result: tuple) -> dict:
    return status.node_output(result, info=lines)


def _strength_input(default: float, what: str) -> tuple:
    return ("FLOAT", {"default": default, "min": -10.0, "max": 10.0, "step": 0.05, "tooltip": what})


def _lora_list() -> list[str]:
    return folder_paths.get_filename_list("loras")


class LCMLoraLoader:
    DESCRIPTION = ("Turns any SD1.5 / SDXL checkpoint into a 2-8 step model with an LCM-LoRA and sets LCM model "
                   "sampling. auto picks the LCM-LoRA that fits the model by file content, not by name.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL", "CLIP")
    OUTPUT_TOOLTIPS = ("The model with the LCM-LoRA and LCM model sampling.",
                       "The text encoder (LCM-LoRAs usually leave it unchanged).")
    FUNCTION = "load"

    def __init__(self):
        self._tensors = TensorCache()

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "Any SD1.5 or SDXL checkpoint's model."}),
                "lora_name": ([AUTO] + _lora_list(), {"default": AUTO, "tooltip":
                              "auto: the LCM-LoRA in the loras folder that fits this model."}),
                "strength": _strength_input(1.0, "1.0 as trained; lower (0.5-0.9) only if style LoRAs burn the image."),
            },
            "optional": {
                "clip": ("CLIP", {"tooltip": "Connect if the LoRA has a text-encoder part (LCM-LoRAs have none)."}),
                "original_inference_steps": original_steps_input(
                    "The grid the LCM-LoRA was distilled on (50 for the published ones)."),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, lora_name=None):
        return validate_lora_name(lora_name)

    @classmethod
    def IS_CHANGED(cls, lora_name=None, **_):
        """auto's pick depends on the loras folder, not only on the inputs: the folder's files (name, size, mtime)
        are part of ComfyUI's cache key, so an LCM-LoRA added or removed (say on a ComfyUI-Distributed worker) is
        seen by the next run. A named file is cached as ComfyUI caches core's LoraLoader."""
        if lora_name != AUTO:
            return ""
        files = []
        for name, path in sorted(loras_folder_files().items()):
            try:
                files.append((name, *lora_files.file_key(path)[1:]))
            except OSError:
                files.append((name,))
        return repr(files)

    def load(self, model, lora_name, strength, clip=None, original_inference_steps=50):
        strength = finite_number(strength, "strength")
        if strength == 0:   # nothing applied, no file read (not even for auto)
            applied = Applied(lora_name, 0.0, 0.0, note="skipped: strength 0")
            return _ui([applied.line()], (patch_lcm_sampling(model, original_inference_steps), clip))
        name = find_lcm_lora(model, loras_folder_files()) if lora_name == AUTO else lora_name
        try:
            new_model, new_clip, applied = apply_lora(model, clip, name, strength, strength, cache=self._tensors)
        finally:
            self._tensors.end_run()
        path = lora_path(name)
        if path.lower().endswith((".safetensors", ".sft")) and not lora_files.inspect_file(path).looks_like_lcm_lora:
            applied.note = "; ".join(filter(None, [applied.note, "this file does not look like an LCM-LoRA (no "
                                                   "ResNet conv layers or rank < 8): use the LoRA Stack for style LoRAs"]))
            log.warning("%s %s does not look like an LCM-LoRA; applied anyway", status.LOG_PREFIX, name)
        lcm_model = patch_lcm_sampling(new_model, original_inference_steps)
        return _ui([("auto: " if lora_name == AUTO else "") + applied.line()], (lcm_model, new_clip))


class LCMLoraStack:
    DESCRIPTION = ("Up to 4 LoRAs, each with its weights, as a LORA_STACK (the type of Efficiency Nodes, Comfyroll, "
                   "Easy-Use), after an optional incoming stack. Rows set to None are skipped.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("LORA_STACK",)
    OUTPUT_TOOLTIPS = ("list of (lora_name, strength_model, strength_clip): the incoming rows, then these.",)
    FUNCTION = "stack"

    @classmethod
    def INPUT_TYPES(cls):
        names = [NONE] + _lora_list()
        required = {}
        for i in range(1, STACK_ROWS + 1):
            required[f"lora_name_{i}"] = (names, {"default": NONE, "tooltip":
                                          f"LoRA {i}; None skips the row."})
            required[f"strength_model_{i}"] = _strength_input(
                1.0, "How strongly LoRA %d changes the model; 0.5-0.8 beside an LCM-LoRA." % i)
            required[f"strength_clip_{i}"] = _strength_input(
                1.0, "How strongly LoRA %d changes the text encoder; 0 leaves it alone." % i)
        return {"required": required, "optional": {
            "lora_stack": ("LORA_STACK", {"tooltip": "Chain stacks: an incoming LORA_STACK (from any pack) goes first."}),
        }}

    # No VALIDATE_INPUTS here on purpose: ComfyUI repeats a VALIDATE_INPUTS failure once per argument it takes
    # (execution.validate_inputs), so one missing row would be reported four times, rows set to None included.
    # Core's own list check names exactly the row whose file is not in the loras folder; Apply LoRA Stack says
    # at run time which file is missing and where it belongs.

    def stack(self, lora_stack=None, **rows):
        out = normalize_stack(lora_stack)
        for i in range(1, STACK_ROWS + 1):
            name = rows.get(f"lora_name_{i}", NONE)
            if name and name != NONE:
                out.append((name, finite_number(rows[f"strength_model_{i}"], f"strength_model_{i}"),
                            finite_number(rows[f"strength_clip_{i}"], f"strength_clip_{i}")))
        lines = [f"{len(out)} LoRA(s) in the stack"] + [f"{n} ({m:g}/{c:g})" for n, m, c in out]
        return _ui(lines, (out,))


class LCMApplyLoraStack:
    DESCRIPTION = ("Applies every LoRA of a LORA_STACK in order to MODEL and CLIP with ComfyUI's LoRA code, "
                   "diffusers and PEFT layouts included.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL", "CLIP")
    OUTPUT_TOOLTIPS = ("The model with every LoRA of the stack.", "The text encoder with every LoRA of the stack.")
    FUNCTION = "apply"

    def __init__(self):
        self._tensors = TensorCache()

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model to patch, e.g. from the LCM-LoRA Loader."}),
                "lora_stack": ("LORA_STACK", {"tooltip": "The LoRAs to apply, in order. An empty stack passes the "
                                                         "model through."}),
            },
            "optional": {
                "clip": ("CLIP", {"tooltip": "Connect to apply the LoRAs' text-encoder parts."}),
            },
        }

    def apply(self, model, lora_stack, clip=None):
        lines = []
        rows = normalize_stack(lora_stack)   # every row checked before the first is applied
        try:
            for name, strength_model, strength_clip in rows:
                # Stop takes effect between rows (a long stack takes seconds); InterruptProcessingException
                # derives from BaseException in newer ComfyUI, hence the cleanup in `finally`.
                comfy.model_management.throw_exception_if_processing_interrupted()
                model, clip, applied = apply_lora(model, clip, name, strength_model, strength_clip, cache=self._tensors)
                lines.append(applied.line())
        finally:
            self._tensors.end_run()
        return _ui(lines or ["empty stack: nothing applied"], (model, clip))


NODE_CLASS_MAPPINGS = {
    "LCMKitLoraLoader": LCMLoraLoader,
    "LCMKitLoraStack": LCMLoraStack,
    "LCMKitApplyLoraStack": LCMApplyLoraStack,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "LCMKitLoraLoader": "LCM-LoRA Loader (LCM Kit)",
    "LCMKitLoraStack": "LoRA Stack (LCM Kit)",
    "LCMKitApplyLoraStack": "Apply LoRA Stack (LCM Kit)",
}
