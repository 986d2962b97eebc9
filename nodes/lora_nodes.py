"""Node classes for LoRAs: the LCM-LoRA Loader (picks the LCM-LoRA that fits the model by inspecting
the files) and a LoRA stack speaking the community's LORA_STACK convention.

All weight mapping is ComfyUI's own (`comfy.lora.model_lora_keys_unet/clip`, `comfy.lora.load_lora`,
`ModelPatcher.add_patches`). The one addition: core ≤ 0.3.75 maps diffusers attention LoRAs only under
the old `….processor.to_q` names, so PEFT-saved files (`unet.….attn1.to_q.lora_A.weight`) lose their
attention layers in core's LoraLoader, and core maps no text encoder saved with transformers ≥ 5
(`text_encoder.encoder.layers.…`); `lora_key_map` adds those names as aliases of core's own entries
(`lora_files.key_aliases`). File problems are found from the safetensors header before any tensor is read.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import comfy.lora
import comfy.lora_convert
import comfy.model_management
import comfy.utils
import folder_paths
import torch

from . import compat, lora_alpha, lora_files, status
from .input_checks import finite_number
from .lcm_sampling import patch_lcm_sampling
from .sampler_nodes import original_steps_input

log = logging.getLogger("lcm_kit")
CATEGORY = "LCM Kit/loaders"
NONE = "None"
AUTO = "auto"
STACK_ROWS = 4            # fixed forever: saved workflows store the row widgets positionally
MIN_LCM_FIT = 0.8         # coverage × precision of an LCM-LoRA against the model's UNet layers


# --------------------------------------------------------------------------------------------------
# Names, files, key map
# --------------------------------------------------------------------------------------------------

def _loras_folders() -> str:
    return ", ".join(folder_paths.get_folder_paths("loras"))


def lora_path(lora_name) -> str:
    """The full path of `lora_name` (relative to the loras folder, as ComfyUI lists it)."""
    if not isinstance(lora_name, str) or not lora_name or lora_name == NONE:
        raise ValueError(f"no LoRA named: got {lora_name!r}. Pick a file from the loras folder ({_loras_folders()}).")
    parts = lora_name.replace("\\", "/").split("/")
    if os.path.isabs(lora_name) or lora_name.startswith(("/", "\\")) or ".." in parts:
        raise ValueError(f"LoRA name {lora_name!r} points outside the loras folder: use a name relative to the "
                         f"loras folder ({_loras_folders()}), as its file list shows it.")
    path = folder_paths.get_full_path("loras", lora_name) \
        if lora_name in folder_paths.get_filename_list("loras") else None
    if path is None:
        raise ValueError(f"LoRA {lora_name!r} not found in the loras folder ({_loras_folders()}): put the file "
                         f"there (then refresh the page) or pick one that is listed.")
    return path


def lora_key_map(model=None, clip=None) -> dict:
    """Core's LoRA key map for `model` / `clip`, plus the names `lora_files.key_aliases` adds for spellings
    trainers write that core does not map."""
    key_map: dict = {}
    if model is not None:
        comfy.lora.model_lora_keys_unet(model.model, key_map)
    if clip is not None:
        comfy.lora.model_lora_keys_clip(clip.cond_stage_model, key_map)
    key_map.update(lora_files.key_aliases(key_map))
    return key_map


def load_lora_file(path: str) -> tuple[dict, dict]:
    lora_files.READS[("tensors", os.path.abspath(path))] += 1
    sd, metadata = comfy.utils.load_torch_file(path, safe_load=True, return_metadata=True)
    return sd, metadata or {}


def inspect_lora(lora_name: str, path: str, loaded: dict | None = None) -> lora_files.LoraInfo:
    """LoraInfo from the safetensors header, or from the loaded tensors for other formats."""
    if path.lower().endswith((".safetensors", ".sft")):
        try:
            return lora_files.inspect_file(path)
        except lora_files.LoraFileError as e:
            raise ValueError(f"LoRA {lora_name!r}: {e}") from None
    if loaded is None:
        raise ValueError(f"LoRA {lora_name!r}: not inspected")
    return lora_files.inspect_shapes({k: tuple(v.shape) for k, v in loaded.items() if hasattr(v, "shape")})


def model_context_dim(model):
    return model.model.model_config.unet_config.get("context_dim") if model is not None else None


def check_fits(lora_name: str, info: lora_files.LoraInfo, model) -> None:
    """Reject a full model chosen as a LoRA, a non-LoRA, and a LoRA for another base model."""
    if info.kind == "model":
        raise ValueError(f"{lora_name} is a full model (checkpoint, UNet, VAE or text encoder), not a LoRA: load it "
                         f"with Load Checkpoint or its own loader, and pick a LoRA file here.")
    if info.kind != "lora":
        raise ValueError(f"{lora_name} holds no LoRA weights (no lora_down/lora_up, lora_A/lora_B or other adapter "
                         f"keys): it is not a LoRA. Pick a LoRA file here.")
    ctx = model_context_dim(model)
    lora_family = info.family
    if ctx is None or lora_family is None:
        return
    if info.cross_attention_dim is not None:
        mismatch = info.cross_attention_dim != ctx
    else:
        mismatch = lora_family != lora_files.family_for_context_dim(ctx)
    if mismatch:
        raise ValueError(f"{lora_name}: this LoRA is for {lora_family}, the model is "
                         f"{lora_files.family_for_context_dim(ctx)}. Pick a LoRA trained for "
                         f"{lora_files.family_for_context_dim(ctx)} (or load a {lora_family} checkpoint).")


# --------------------------------------------------------------------------------------------------
# Applying one LoRA
# --------------------------------------------------------------------------------------------------

@dataclass
class Applied:
    """What applying one LoRA did (for the log and the node's UI text)."""
    lora_name: str
    strength_model: float
    strength_clip: float
    model_keys: int = 0
    clip_keys: int = 0
    note: str = ""

    def line(self) -> str:
        s = (f"{self.lora_name}: {self.model_keys} model keys, {self.clip_keys} text-encoder keys "
             f"(strength {self.strength_model:g}/{self.strength_clip:g})")
        return s + (f"; {self.note}" if self.note else "")


def _group(keys) -> dict[str, str]:
    """{module: 'te' | 'unet'} for every adapter key's module."""
    out = {}
    for k in keys:
        m = lora_files.module_name(k)
        if m is not None:
            out[m] = "te" if m.startswith(lora_files.TE_PREFIXES) else "unet"
    return out


class TensorCache:
    """The tensors of the LoRA files a node used in its last run (core's LoraLoader keeps its last file too),
    keyed by (path, size, mtime) so a replaced file is read again."""

    def __init__(self):
        self.last: dict = {}
        self.now: dict = {}

    def load(self, path: str) -> tuple[dict, dict]:
        key = lora_files._file_key(path)
        hit = self.now.get(key) or self.last.get(key)
        self.now[key] = hit if hit is not None else load_lora_file(path)
        return self.now[key]

    def end_run(self) -> None:
        self.last, self.now = self.now, {}


def with_metadata_alphas(lora_name: str, sd: dict, metadata: dict) -> tuple[dict, str]:
    """`sd` plus `.alpha` tensors for the alpha a PEFT-layout file keeps in diffusers' adapter metadata (see
    `lora_alpha`), so that comfy.lora's own mapping applies diffusers' scale; and a note saying so."""
    try:
        alphas = lora_alpha.metadata_alphas({k: tuple(v.shape) for k, v in sd.items() if hasattr(v, "shape")},
                                            metadata)
    except ValueError as e:
        raise ValueError(f"LoRA {lora_name!r}: {e}") from None
    if not alphas:
        return sd, ""
    return {**sd, **{k: torch.tensor(v) for k, v in alphas.items()}}, \
        f"alpha of {len(alphas)} layers from its diffusers metadata"


def apply_lora(model, clip, lora_name: str, strength_model: float, strength_clip: float,
               cache: TensorCache | None = None):
    """(model, clip, Applied): clones with `lora_name` patched in; inputs are never modified.

    Strength 0 for a part skips that part; both 0 (or 0 and no CLIP) reads nothing at all."""
    use_model = model is not None and strength_model != 0
    use_clip = clip is not None and strength_clip != 0
    if not use_model and not use_clip:
        return model, clip, Applied(lora_name, strength_model, strength_clip, note="skipped: strength 0")
    path = lora_path(lora_name)
    info = None if not path.lower().endswith((".safetensors", ".sft")) else inspect_lora(lora_name, path)
    if info is not None:
        check_fits(lora_name, info, model)   # before any tensor is read
    sd, metadata = (cache or TensorCache()).load(path)
    if info is None:
        info = inspect_lora(lora_name, path, sd)
        check_fits(lora_name, info, model)

    sd, alpha_note = with_metadata_alphas(lora_name, sd, metadata)
    key_map = lora_key_map(model if use_model else None, clip if use_clip else None)
    sd = compat.call_with_supported(comfy.lora_convert.convert_lora, sd, metadata=metadata, lora_metadata=metadata)
    patches = compat.call_with_supported(comfy.lora.load_lora, sd, key_map, log_missing=False)
    applied = Applied(lora_name, strength_model, strength_clip)
    new_model, new_clip = model, clip
    if use_model:
        new_model = model.clone()
        applied.model_keys = len(set(new_model.add_patches(patches, strength_model)))
    if use_clip:
        new_clip = clip.clone()
        applied.clip_keys = len(set(new_clip.add_patches(patches, strength_clip)))

    groups = _group(sd.keys())
    wanted = {m for m, g in groups.items() if (g == "te" and use_clip) or (g == "unet" and use_model)}
    unmatched = sorted(m for m in wanted if m not in key_map)
    skipped_te = sum(1 for g in groups.values() if g == "te") if not use_clip else 0
    if wanted and applied.model_keys + applied.clip_keys == 0:
        raise ValueError(f"{lora_name}: none of its {len(wanted)} layers matches this model"
                         f"{' or text encoder' if use_clip else ''} (e.g. {unmatched[:2]}). It is for another "
                         f"model type or in an unknown key layout: pick a LoRA trained for this checkpoint.")
    notes = [alpha_note] if alpha_note else []
    if unmatched:
        notes.append(f"{len(unmatched)} of its layers match nothing in this model (e.g. {unmatched[0]})")
        log.warning("%s %s: %d of %d LoRA layers match nothing in this model and were not applied, "
                    "e.g. %s", status.LOG_PREFIX, lora_name, len(unmatched), len(wanted), ", ".join(unmatched[:3]))
    if skipped_te and clip is None:
        notes.append(f"text-encoder part ({skipped_te} layers) skipped: no CLIP connected")
    applied.note = "; ".join(notes)
    return new_model, new_clip, applied


# --------------------------------------------------------------------------------------------------
# Finding the LCM-LoRA for a model
# --------------------------------------------------------------------------------------------------

def _lora_able_unet_weights(model) -> set[str]:
    return {k for k, v in model.model.state_dict().items()
            if k.startswith("diffusion_model.") and k.endswith(".weight") and v.ndim in (2, 4)}


_SKIPPED_LOGGED: set = set()   # (path, size, mtime) of unreadable files already named in the log


def _log_skipped_once(unreadable: list[tuple[str, str, str]]) -> None:
    """One log line naming the files auto skipped as unreadable, each file (version) named once per process."""
    new = []
    for name, path, why in unreadable:
        try:
            key = lora_files._file_key(path)
        except OSError:
            key = (path,)
        if key not in _SKIPPED_LOGGED:
            _SKIPPED_LOGGED.add(key)
            base = os.path.basename(path)
            new.append(f"{name} {why[len(base):].strip()}" if why.startswith(base) else f"{name}: {why}")
    if new:
        log.warning("%s lora_name auto skipped %d unreadable file(s) in the loras folder: %s", status.LOG_PREFIX,
                    len(new), " | ".join(new))


def find_lcm_lora(model, files: dict[str, str]) -> str:
    """The name (a key of `files`: name -> path) of the LCM-LoRA that fits `model`, chosen by file content.

    A candidate looks like an LCM-LoRA (UNet-wide, ResNet convs included, rank ≥ 8), has the model's
    cross-attention width, and its layers cover the model's UNet (coverage × precision ≥ 0.8). A kohya
    LoCon style LoRA can cover as much, so candidates without kohya training metadata (`ss_*`) come first,
    then those without a text-encoder part (the published LCM-LoRAs have neither), then by fit, then name."""
    ctx = model_context_dim(model)
    key_map = lora_key_map(model, None)
    lora_able = _lora_able_unet_weights(model)
    ranked, elsewhere, weak, unreadable = [], [], [], []
    for name in sorted(files):
        if not name.lower().endswith((".safetensors", ".sft")):
            continue
        try:
            info = lora_files.inspect_file(files[name])
        except lora_files.LoraFileError as e:   # one bad file must not stop auto for every graph
            unreadable.append((name, files[name], str(e)))
            continue
        if not info.looks_like_lcm_lora:
            continue
        if ctx is not None and info.cross_attention_dim != ctx:
            elsewhere.append(f"{name} ({info.family or 'unknown model'})")
            continue
        targets = {key_map[m] for m in info.unet_modules if m in key_map}
        coverage = len(targets & lora_able) / max(len(lora_able), 1)
        precision = sum(1 for m in info.unet_modules if m in key_map) / len(info.unet_modules)
        fit = round(coverage * precision, 2)
        if fit < MIN_LCM_FIT:
            weak.append(f"{name} (fits {fit:.0%} of this model's layers)")
            continue
        ranked.append(((not info.training_metadata, not info.te_modules, fit), name))
    _log_skipped_once(unreadable)
    if not ranked:
        family = lora_files.family_for_context_dim(ctx)
        found = "; ".join(elsewhere + weak) or "none"
        skipped = f" Unreadable files skipped: {', '.join(n for n, _, _ in unreadable)}." if unreadable else ""
        raise ValueError(f"lora_name auto: no LCM-LoRA for {family} in the loras folder ({_loras_folders()}); "
                         f"LCM-LoRAs found for other models / not fitting: {found}.{skipped} Put the LCM-LoRA for "
                         f"{family} there (e.g. lcm-lora-sdv1-5.safetensors for SD1.5, lcm-lora-sdxl.safetensors "
                         f"for SDXL) or pick the file in lora_name.")
    best = max(ranked, key=lambda r: r[0])   # max() keeps the first (by name) of equal scores
    others = [n for _, n in ranked if n != best[1]]
    log.info("%s lora_name auto picked %s%s", status.LOG_PREFIX, best[1],
             f" (also fitting: {', '.join(others)})" if others else "")
    return best[1]


def loras_folder_files() -> dict[str, str]:
    out = {}
    for name in folder_paths.get_filename_list("loras"):
        path = folder_paths.get_full_path("loras", name)
        if path is not None:
            out[name] = path
    return out


# --------------------------------------------------------------------------------------------------
# LORA_STACK: list of (lora_name, strength_model, strength_clip), names relative to the loras folder
# --------------------------------------------------------------------------------------------------

def normalize_stack(stack) -> list[tuple[str, float, float]]:
    """A LORA_STACK as a list of 3-tuples, "None" entries dropped; None or [] is an empty stack."""
    if stack is None:
        return []
    if not isinstance(stack, (list, tuple)):
        raise ValueError(f"LORA_STACK must be a list of (lora_name, strength_model, strength_clip) tuples, got "
                         f"{type(stack).__name__}: connect a LoRA Stack node (LCM Kit, Efficiency, Comfyroll …).")
    out = []
    for i, entry in enumerate(stack):
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            raise ValueError(f"LORA_STACK entry {i} is {entry!r}: every entry must be (lora_name, strength_model, "
                             f"strength_clip). Check the node that built the stack.")
        name, strength_model, strength_clip = entry
        if name is None or name == NONE:
            continue
        out.append((str(name), finite_number(strength_model, f"LORA_STACK entry {i} ({name}) strength_model"),
                    finite_number(strength_clip, f"LORA_STACK entry {i} ({name}) strength_clip")))
    return out


def validate_lora_name(name) -> bool | str:
    """VALIDATE_INPUTS: a saved workflow naming a LoRA this user lacks (or one deleted since the page loaded its
    list) gets a message that names the file and the folder to put it in (core's own check only says "value not
    in list"). auto and None are always valid; a value from a link (None here) is checked at run time."""
    if name in (AUTO, NONE, None):
        return True
    inside = isinstance(name, str) and not os.path.isabs(name) and not name.startswith(("/", "\\")) \
        and ".." not in name.replace("\\", "/").split("/")
    if inside and folder_paths.get_full_path("loras", name) is None:
        return (f"LoRA {name!r} is not on disk in the loras folder ({_loras_folders()}): missing, or moved or "
                f"deleted after the page listed it. Put the file there, or press R to refresh the lists and pick "
                f"another.")
    try:
        lora_path(name)
    except ValueError as e:
        return str(e)
    return True


def _ui(lines: list[str], result: tuple) -> dict:
    return status.node_output(result, info=lines)


def _strength_input(default: float, what: str) -> tuple:
    return ("FLOAT", {"default": default, "min": -10.0, "max": 10.0, "step": 0.05, "tooltip": what})


def _lora_list() -> list[str]:
    return folder_paths.get_filename_list("loras")


class LCMLoraLoader:
    DESCRIPTION = ("Applies an LCM-LoRA to any SD1.5 / SDXL checkpoint so it samples in 1-8 steps, and sets LCM's "
                   "model sampling on the returned MODEL (the LCM Sampler, or core KSampler with sampler lcm, work "
                   "directly). lora_name auto picks the LCM-LoRA in the loras folder that fits the model by "
                   "inspecting the files, not by their names. Reports how many keys it applied.")
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
                "model": ("MODEL", {"tooltip": "Any SD1.5 or SDXL checkpoint's model (a non-LCM one: that is the "
                                               "point of an LCM-LoRA)."}),
                "lora_name": ([AUTO] + _lora_list(), {"default": AUTO, "tooltip":
                              "auto finds the LCM-LoRA for this model's architecture in the loras folder. Pick a "
                              "file only when several fit, or to use a renamed / custom-distilled one."}),
                "strength": _strength_input(1.0, "1.0 is what LCM-LoRAs were trained for. Lower it (0.5-0.9) only "
                                                 "when mixing with style LoRAs gives burnt images; 0 applies nothing."),
            },
            "optional": {
                "clip": ("CLIP", {"tooltip": "Connect when the LoRA file also has a text-encoder part (the published "
                                             "LCM-LoRAs have none); it gets the same strength."}),
                "original_inference_steps": original_steps_input(
                    "The step grid the LCM-LoRA was distilled on; the MODEL carries it, so core's KSampler (sampler "
                    "lcm, scheduler simple) samples on it. 50 for every published LCM-LoRA; set the LCM Sampler / "
                    "LCM Scheduler to the same value."),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, lora_name=None):
        return validate_lora_name(lora_name)

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
    DESCRIPTION = ("Collects up to 4 LoRAs (style, detail, character …) into a LORA_STACK, after the rows of an "
                   "optional incoming stack. The same LORA_STACK as Efficiency Nodes, Comfyroll and Easy-Use: "
                   "connect it to Apply LoRA Stack, or to their loaders. Rows set to None are skipped.")
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
                                          f"LoRA {i}. None skips the row; order only matters for reading the stack."})
            required[f"strength_model_{i}"] = _strength_input(
                1.0, "How strongly LoRA %d changes the model. With an LCM-LoRA, style LoRAs usually look best at "
                     "0.5-0.8; lower it when images burn. Negative values invert it." % i)
            required[f"strength_clip_{i}"] = _strength_input(
                1.0, "How strongly LoRA %d changes the text encoder. Lower it when the prompt stops being "
                     "followed; 0 leaves the text encoder alone." % i)
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
    DESCRIPTION = ("Applies every LoRA of a LORA_STACK (from LCM Kit's LoRA Stack, Efficiency, Comfyroll …) in "
                   "order to MODEL and CLIP, with ComfyUI's own LoRA code; also loads diffusers/PEFT-saved LoRAs "
                   "whose attention layers core's LoraLoader misses. Reports how many keys each LoRA applied.")
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
                "model": ("MODEL", {"tooltip": "The model to patch, e.g. from the LCM-LoRA Loader (keeps its LCM "
                                               "sampling)."}),
                "lora_stack": ("LORA_STACK", {"tooltip": "The LoRAs to apply, in order. An empty stack passes the "
                                                         "model through."}),
            },
            "optional": {
                "clip": ("CLIP", {"tooltip": "Connect to apply the LoRAs' text-encoder parts; leave it open for "
                                             "model-only LoRAs."}),
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
