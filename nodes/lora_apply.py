"""Applying one LoRA file to a ComfyUI MODEL / CLIP, with ComfyUI's own key mapping and weight patches.

All weight mapping is core's (`comfy.lora.model_lora_keys_unet/clip`, `comfy.lora.load_lora`,
`ModelPatcher.add_patches`). The one addition: core ≤ 0.3.75 maps diffusers attention LoRAs only under the old
`….processor.to_q` names, so PEFT-saved files (`unet.….attn1.to_q.lora_A.weight`) lose their attention layers in
core's LoraLoader; `lora_key_map` adds the plain names as aliases of core's own entries. A file for another base
model, a full model or a non-LoRA is refused from its safetensors header, before any tensor is read.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import comfy.lora
import comfy.lora_convert
import comfy.utils
import torch

from . import compat, lora_alpha, lora_files, status
from .lora_folder import lora_path

log = logging.getLogger("lcm_kit")


def lora_key_map(model=None, clip=None) -> dict:
    """Core's LoRA key map for `model` / `clip`, plus plain diffusers/PEFT attention names as aliases of
    core's `….processor.to_q` / `….processor.to_out` entries (`….to_q`, `….to_out`, `….to_out.0`)."""
    key_map: dict = {}
    if model is not None:
        comfy.lora.model_lora_keys_unet(model.model, key_map)
    if clip is not None:
        comfy.lora.model_lora_keys_clip(clip.cond_stage_model, key_map)
    aliases = {}
    for name, target in key_map.items():
        if ".processor.to_" in name:
            plain = name.replace(".processor.to_", ".to_")
            aliases[plain] = target
            if plain.endswith(".to_out"):
                aliases[plain + ".0"] = target
    for name, target in aliases.items():
        key_map.setdefault(name, target)
    return key_map


def load_lora_file(path: str) -> tuple[dict, dict]:
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
        key = lora_files.file_key(path)
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
