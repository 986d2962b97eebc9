"""Full LCM checkpoints: the guidance ("w") embedding that ComfyUI core drops, and diffusers-format LCM UNets.

A standalone LCM (LCM_Dreamshaper_v7 and its conversions) is distilled with a guidance-scale embedding:
diffusers' `TimestepEmbedding` adds `cond_proj(w_emb)` to the sinusoidal timestep features *before* its
first linear layer (`time_embedding.cond_proj`, a bias-free Linear of shape [model_channels, 256]).
ComfyUI's UNet has no such layer and maps no key for it, so its loaders drop the weight (one INFO line) and
the model runs as if w_emb were zero. Here the weight is read from the file on its own and put back as an
object patch on `diffusion_model.time_embed` that adds the projected embedding; the MODEL then needs one
model pass per step at cfg 1, as diffusers' LatentConsistencyModelPipeline runs it.

Key names for the weight (what each producer writes):
- `time_embedding.cond_proj.weight` — diffusers UNet files (`unet/diffusion_pytorch_model.safetensors`);
- `model.diffusion_model.time_embedding.cond_proj.weight` — single-file conversions made with diffusers'
  `convert_diffusers_to_original_stable_diffusion.py`, which keeps keys it has no mapping for unchanged;
- `…time_embed.cond_proj.weight` — the same in ldm naming, accepted too. diffusers' own single-file loader
  maps none of them (it drops the weight as core ComfyUI does).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field

import torch

import comfy.model_detection
import comfy.patcher_extension
import comfy.sd
import comfy.utils

from . import compat, lcm_math
from .input_checks import finite_number

log = logging.getLogger("lcm_kit")

COND_PROJ_SUFFIXES = ("time_embedding.cond_proj.weight", "time_embed.cond_proj.weight")
DIFFUSERS_WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors")
DIFFUSERS_UNET_CLASS = "UNet2DConditionModel"
TIME_EMBED = "diffusion_model.time_embed"
GUIDANCE_CALLBACK_KEY = "lcm_kit.guidance_embedding"


class LCMCheckpointError(ValueError):
    """A file or input that cannot become an LCM MODEL; the message says what was expected."""
    __module__ = "lcm_kit"   # ComfyUI names an error by its module path: "lcm_kit.LCMCheckpointError"


# --------------------------------------------------------------------------------------------------
# The guidance embedding as an object patch
# --------------------------------------------------------------------------------------------------

class GuidedTimeEmbed(torch.nn.Sequential):
    """ComfyUI's `time_embed` (Linear, SiLU, Linear) with LCM's guidance condition added to its input:
    time_embed(t_emb + cond_proj(w_emb)), as diffusers' `TimestepEmbedding.forward(sample, condition)`.

    It holds the *same* layer objects under the same names ("0", "1", "2"), so weight patches (LoRA on
    `time_embed.0.weight`) and device moves still reach them; `cond_proj(w_emb)` is computed once, in
    float32, and kept as a plain attribute (not a parameter: the state dict is unchanged)."""

    def __init__(self, layers, guidance_cond: torch.Tensor, guidance: float):
        super().__init__(*layers)
        self.guidance_cond = guidance_cond
        self.guidance = guidance

    def forward(self, t_emb):
        return super().forward(t_emb + self.guidance_cond.to(device=t_emb.device, dtype=t_emb.dtype))


def guidance_condition(cond_proj_weight: torch.Tensor, guidance: float) -> torch.Tensor:
    """cond_proj(w_emb) for diffusers' guidance_scale `guidance` (ω = guidance − 1), shape [1, in_features]."""
    w_emb = lcm_math.guidance_scale_embedding(guidance - 1.0, cond_proj_weight.shape[1])
    return w_emb @ cond_proj_weight.float().T


def guidance_warning(guidance: float) -> str | None:
    lo, hi = lcm_math.TRAINED_GUIDANCE
    if not lo <= guidance <= hi:
        return (f"guidance {guidance:g} is outside the range LCM checkpoints were distilled on ({lo:g}-{hi:g}, "
                f"i.e. w = guidance - 1 in [{lo - 1:g}, {hi - 1:g}]); results may be washed out or noisy. "
                f"8.0 is the usual value. The value was used as given.")
    return None


def apply_guidance_embedding(model, cond_proj_weight: torch.Tensor, guidance: float):
    """A clone of `model` (a ModelPatcher) whose time embedding adds cond_proj(w_emb(guidance − 1)).

    Applying it again replaces the earlier guidance (it never stacks). Raises LCMCheckpointError when the
    weight does not fit the model's time embedding."""
    guidance = finite_number(guidance, "guidance")
    if guidance < 1.0:
        raise LCMCheckpointError(f"guidance must be at least 1.0 (got {guidance:g}): the embedding takes "
                                 f"w = guidance - 1 ≥ 0. LCM checkpoints use 8.0.")
    try:
        current = model.get_model_object(TIME_EMBED)
    except AttributeError:   # not a UNet (DiT models have no time_embed)
        current = model.model.diffusion_model
    layers = list(current.children()) if isinstance(current, torch.nn.Sequential) else []
    in_features = getattr(layers[0], "in_features", None) if layers else None
    if in_features is None:
        raise LCMCheckpointError(f"this model's time embedding ({type(current).__name__}) is not the SD/SDXL UNet "
                                 f"kind a guidance embedding belongs to; use an SD1.5/SDXL LCM checkpoint.")
    if cond_proj_weight.ndim != 2 or cond_proj_weight.shape[0] != in_features:
        raise LCMCheckpointError(
            f"the guidance embedding weight (cond_proj) has shape {list(cond_proj_weight.shape)} but this model's "
            f"time embedding takes {in_features} channels (expected [{in_features}, 256]): the file and the model "
            f"are different architectures. Pick the checkpoint the MODEL was loaded from.")
    m = model.clone()
    m.add_object_patch(TIME_EMBED, GuidedTimeEmbed(layers, guidance_condition(cond_proj_weight, guidance), float(guidance)))
    m.remove_callbacks_with_key(comfy.patcher_extension.CallbacksMP.ON_CLONE, GUIDANCE_CALLBACK_KEY)
    m.add_callback_with_key(comfy.patcher_extension.CallbacksMP.ON_CLONE, GUIDANCE_CALLBACK_KEY, rebind_guidance_embedding)
    return m


def rebind_guidance_embedding(source, clone) -> None:
    """ON_CLONE callback: a clone over another model object than its source's (newer ComfyUI rebuilds the model from
    the loader's factory for `clone(disable_dynamic=True)` and multi-GPU copies) gets the guidance patch rebuilt
    around that model's own time-embedding layers, so LoRA patches and device moves reach the layers it runs."""
    patch = clone.object_patches.get(TIME_EMBED)
    if clone.model is source.model or not isinstance(patch, GuidedTimeEmbed):
        return
    layers = list(comfy.utils.get_attr(clone.model, TIME_EMBED).children())
    clone.object_patches[TIME_EMBED] = GuidedTimeEmbed(layers, patch.guidance_cond, patch.guidance)


# --------------------------------------------------------------------------------------------------
# Reading the weight from files
# --------------------------------------------------------------------------------------------------

def find_cond_proj_key(keys) -> str | None:
    """The key of the guidance-embedding weight among a file's keys (see the module docstring), or None."""
    found = sorted(k for k in keys if k.endswith(COND_PROJ_SUFFIXES))
    return found[0] if found else None


def read_cond_proj(path: str) -> torch.Tensor | None:
    """The cond_proj weight of a checkpoint or UNet file, or None; safetensors reads just that tensor."""
    if str(path).endswith(".safetensors"):
        from safetensors import safe_open
        with safe_open(str(path), framework="pt", device="cpu") as f:
            key = find_cond_proj_key(f.keys())
            return f.get_tensor(key) if key else None
    sd = comfy.utils.load_torch_file(str(path), safe_load=True)
    key = find_cond_proj_key(sd.keys())
    return sd[key] if key else None


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------

@dataclass
class LoadedLCM:
    model: object                     # ModelPatcher
    clip: object = None
    vae: object = None
    has_guidance_embedding: bool = False
    notes: list[str] = field(default_factory=list)


def no_embedding_note(name: str) -> str:
    return (f"{name} has no guidance embedding (no cond_proj weight): guidance is ignored. That is expected for "
            f"a checkpoint with an LCM-LoRA merged in; use cfg 1-2 on the LCM Sampler for guidance.")


def _finish(model, cond_proj, guidance: float, name: str, clip=None, vae=None, original_steps: int = 50) -> LoadedLCM:
    from .lcm_sampling import patch_lcm_sampling
    out = LoadedLCM(model=model, clip=clip, vae=vae)
    if cond_proj is None:
        out.notes.append(no_embedding_note(name))
    else:
        out.model = apply_guidance_embedding(model, cond_proj, guidance)
        out.has_guidance_embedding = True
        warning = guidance_warning(guidance)
        if warning:
            out.notes.append(warning)
    out.model = patch_lcm_sampling(out.model, original_steps)
    return out


def _checkpoint_parts(path: str, embedding_directory=None, output_model=True, output_clip=True, output_vae=True,
                      disable_dynamic=False):
    """(model, clip, vae, cond_proj) of a single-file checkpoint through core's loader, the guidance-embedding
    weight taken out of the state dict before core sees it (so core's "unet unexpected" warning about it, misleading
    here since the weight is used, does not appear)."""
    sd, metadata = comfy.utils.load_torch_file(path, return_metadata=True)
    key = find_cond_proj_key(sd.keys())
    cond_proj = sd.pop(key) if key else None
    out = compat.call_with_supported(
        comfy.sd.load_state_dict_guess_config, sd, output_vae=output_vae, output_clip=output_clip,
        embedding_directory=embedding_directory, output_model=output_model, metadata=metadata,
        disable_dynamic=disable_dynamic)
    if out is None or (output_model and out[0] is None):
        raise LCMCheckpointError(f"ComfyUI could not detect the model type of {path}: not a Stable Diffusion "
                                 f"checkpoint. A diffusers unet/ folder goes to the LCM UNet Loader.")
    return out[0], out[1], out[2], cond_proj


def reload_checkpoint_part(path: str, embedding_directory=None, part: str = "model", disable_dynamic=False):
    """One part's patcher of a checkpoint, loaded again: the reload factory (`cached_patcher_init`) that newer
    ComfyUI calls to rebuild a model, e.g. as a regular patcher for `clone(disable_dynamic=True)`."""
    model, clip, vae, _ = _checkpoint_parts(path, embedding_directory, output_model=part == "model",
                                            output_clip=part == "clip", output_vae=part == "vae",
                                            disable_dynamic=disable_dynamic)
    return {"model": model, "clip": getattr(clip, "patcher", None), "vae": getattr(vae, "patcher", None)}[part]


def load_lcm_checkpoint(path: str, guidance: float = 8.0, embedding_directory=None) -> LoadedLCM:
    """A single-file checkpoint through core's loader, with its guidance embedding put back and LCM's model
    sampling set. Without a cond_proj weight the model is core's (plus LCM sampling) and a note says so. Each part
    carries a reload factory, as core's Load Checkpoint sets one."""
    model, clip, vae, cond_proj = _checkpoint_parts(path, embedding_directory)
    for part, obj in (("model", model), ("clip", getattr(clip, "patcher", None)), ("vae", getattr(vae, "patcher", None))):
        if obj is not None:
            compat.set_reload_factory(obj, reload_checkpoint_part, path, embedding_directory, part)
    return _finish(model, cond_proj, guidance, os.path.basename(path), clip, vae)


def _read_diffusers_config(folder: str, required: bool) -> dict | None:
    cfg_path = os.path.join(folder, "config.json")
    if not os.path.isfile(cfg_path):
        if required:
            raise LCMCheckpointError(_not_a_unet(folder, "it has no config.json"))
        return None
    try:
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise LCMCheckpointError(_not_a_unet(folder, f"its config.json cannot be read ({e})")) from e
    if cfg.get("_class_name") != DIFFUSERS_UNET_CLASS:
        raise LCMCheckpointError(_not_a_unet(
            folder, f'its config.json says "_class_name": {json.dumps(cfg.get("_class_name"))}'))
    return cfg


def _not_a_unet(folder: str, why: str) -> str:
    return (f"{folder} is not a diffusers UNet folder: {why}. Expected config.json with "
            f'"_class_name": "{DIFFUSERS_UNET_CLASS}" beside {DIFFUSERS_WEIGHT_FILES[0]} (or its .fp16 variant) '
            f"- the unet/ folder of a diffusers model, not its vae/ or text_encoder/.")


def resolve_diffusers_unet(path: str) -> tuple[str, dict | None]:
    """(weights file, config.json contents or None) for a diffusers `unet/` folder or a UNet weights file.
    A file's sibling config.json, when present, must describe a UNet2DConditionModel."""
    if os.path.isdir(path):
        cfg = _read_diffusers_config(path, required=True)
        for name in DIFFUSERS_WEIGHT_FILES:
            if os.path.isfile(os.path.join(path, name)):
                return os.path.join(path, name), cfg
        found = ", ".join(sorted(os.listdir(path))) or "nothing"
        raise LCMCheckpointError(_not_a_unet(path, f"it has no weights file (found: {found})"))
    if not os.path.isfile(path):
        raise LCMCheckpointError(f"{path} does not exist.")
    folder = os.path.dirname(path)
    if not os.path.isfile(os.path.join(folder, "config.json")):  # a linked weights file: look where it lives
        folder = os.path.dirname(os.path.realpath(path))
    return path, _read_diffusers_config(folder, required=False)


def ldm_structure_from_diffusers(sd: dict) -> dict:
    """The structural part of ComfyUI's UNet config (what `comfy.utils.unet_to_diffusers` needs) counted from
    a diffusers UNet state dict, for any depth and width (core only matches full-size published configs)."""
    count = comfy.model_detection.count_blocks
    levels = count(sd, "down_blocks.{}.")
    num_res_blocks, depth, depth_out = [], [], []
    for x in range(levels):
        nrb = count(sd, f"down_blocks.{x}.resnets.{{}}.")
        num_res_blocks.append(nrb)
        depth += [count(sd, f"down_blocks.{x}.attentions.{i}.transformer_blocks.{{}}.") for i in range(nrb)]
    for x in range(levels):
        nrb = count(sd, f"up_blocks.{x}.resnets.{{}}.")
        depth_out += [count(sd, f"up_blocks.{x}.attentions.{i}.transformer_blocks.{{}}.") for i in range(nrb)]
    middle = count(sd, "mid_block.attentions.0.transformer_blocks.{}.") if any(
        k.startswith("mid_block.") for k in sd) else -1
    # ComfyUI lists transformer_depth_output from the shallowest output block up (unet_to_diffusers pops the end)
    return {"num_res_blocks": num_res_blocks, "channel_mult": [1] * levels, "transformer_depth": depth,
            "transformer_depth_output": list(reversed(depth_out)), "transformer_depth_middle": middle}


def diffusers_to_ldm_unet(sd: dict) -> dict:
    """A diffusers UNet2DConditionModel state dict (without cond_proj) in ComfyUI's ldm key layout."""
    mapping = comfy.utils.unet_to_diffusers(ldm_structure_from_diffusers(sd))
    out = {ldm: sd[dk] for dk, ldm in mapping.items() if dk in sd}
    left = sorted(set(sd) - set(mapping))
    if left:
        raise LCMCheckpointError(f"{len(left)} diffusers UNet keys have no ComfyUI counterpart (e.g. {left[:3]}): "
                                 f"this is not an SD1.5/SDXL-style UNet2DConditionModel.")
    return out


def _unet_parts(path: str, model_options: dict | None = None, disable_dynamic=False):
    """(model patcher, cond_proj, display name) of a UNet file or diffusers unet/ folder (see load_lcm_unet)."""
    weights, cfg = resolve_diffusers_unet(path)
    sd, metadata = comfy.utils.load_torch_file(weights, return_metadata=True)
    key = find_cond_proj_key(sd.keys())
    cond_proj = sd.pop(key) if key else None
    if cfg is not None and cfg.get("time_cond_proj_dim") and cond_proj is not None \
            and cond_proj.shape[-1] != cfg["time_cond_proj_dim"]:
        raise LCMCheckpointError(f"{weights}: cond_proj has {cond_proj.shape[-1]} inputs but config.json says "
                                 f"time_cond_proj_dim {cfg['time_cond_proj_dim']}; the folder mixes two models.")
    if "conv_in.weight" in sd and "time_embedding.linear_1.weight" in sd:
        sd = diffusers_to_ldm_unet(sd)
    elif cfg is not None:
        raise LCMCheckpointError(f"{weights} is beside a diffusers UNet config.json but its keys are not diffusers "
                                 f"UNet keys (no conv_in.weight / time_embedding.linear_1.weight).")
    model = compat.call_with_supported(comfy.sd.load_diffusion_model_state_dict, sd,
                                       model_options=model_options or {}, metadata=metadata,
                                       disable_dynamic=disable_dynamic)
    if model is None:
        raise LCMCheckpointError(f"ComfyUI could not detect the model type of {weights}: not an SD1.5/SDXL UNet.")
    name = os.path.basename(os.path.dirname(weights)) if cfg is not None else os.path.basename(weights)
    return model, cond_proj, name


def reload_unet(path: str, model_options: dict | None = None, disable_dynamic=False):
    """The UNet's patcher loaded again (the reload factory of load_lcm_unet's model)."""
    return _unet_parts(path, model_options, disable_dynamic)[0]


def load_lcm_unet(path: str, guidance: float = 8.0, model_options: dict | None = None) -> LoadedLCM:
    """A UNet alone (MODEL only): a diffusers `unet/` folder, its diffusion_pytorch_model.safetensors, or an
    ldm-layout UNet file; its guidance embedding put back and LCM's model sampling set. The model carries a reload
    factory, as core's UNet loader sets one."""
    model, cond_proj, name = _unet_parts(path, model_options)
    compat.set_reload_factory(model, reload_unet, path, model_options)
    return _finish(model, cond_proj, guidance, name)
