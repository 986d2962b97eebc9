"""Device policies for the diffusion model, text encoder and VAE, on cloned patchers.

Contract: every function returns clones and never mutates what it is given; a dynamic-VRAM patcher is first
replaced by a regular clone (as core's Select … Device nodes do); unloading goes through
`comfy.model_management.free_memory`, never by moving tensors by hand.
"""
from __future__ import annotations

import copy

import torch

import comfy.model_management
import comfy.patcher_extension

from . import compat
from .torch_compile import choices_error, is_diffusion_model

OFFLOAD_WRAPPER_KEY = "lcm_kit.offload"
TEXT_ENCODER_POLICIES = ["default", "cpu"]
VAE_POLICIES = ["default", "cpu"]
MODEL_POLICIES = ["default", "keep resident", "offload after run"]
CPU = torch.device("cpu")


def _check(what: str, value, valid) -> None:
    if value not in valid:
        raise choices_error(what, value, valid)


def clip_on_device(clip, device: torch.device):
    """A clone of CLIP whose text encoder loads on (and offloads to) `device`, on a regular patcher (core's
    Select CLIP Device does the same: a dynamic VRAM patcher keeps per-device state that new devices break)."""
    c = clip.clone()
    c.patcher = compat.regular_patcher_clone(clip.patcher)
    c.patcher.load_device = device
    c.patcher.offload_device = device
    return c


def vae_on_device(vae, device: torch.device):
    """A copy of VAE that encodes/decodes on `device`, on a regular patcher.

    The dtype is the one ComfyUI picks for that device (as `--cpu-vae` does): a VAE loaded in
    fp16/bf16 for a GPU gets its own float32 copy of the weights for the CPU (≈160 MB for SD's VAE);
    otherwise the weights are shared through a cloned patcher (on a dynamic VRAM patcher, a regular
    one that the loader's factory builds)."""
    import comfy.model_patcher
    v = compat.clone_vae(vae)
    v.patcher = compat.regular_patcher_clone(vae.patcher)
    v.first_stage_model = v.patcher.model
    dtype = comfy.model_management.vae_dtype(device, getattr(vae, "working_dtypes", [torch.float32]))
    if dtype != vae.vae_dtype:
        v.first_stage_model = copy.deepcopy(v.first_stage_model).to(device=device, dtype=dtype)
        v.patcher = comfy.model_patcher.ModelPatcher(v.first_stage_model, load_device=device, offload_device=device)
        v.vae_dtype = dtype
    v.device = device
    v.patcher.load_device = device
    v.patcher.offload_device = device
    return v


class OffloadAfterRun:
    """OUTER_SAMPLE wrapper: after sampling, unloads this model through model_management.free_memory
    (every other loaded model is kept), so the memory is free for the VAE and other models."""

    def __call__(self, executor, *args, **kwargs):
        try:
            return executor(*args, **kwargs)
        finally:
            unload_model(executor.class_obj.model_patcher)


def unload_model(patcher) -> int:
    """Unload every loaded copy of `patcher`'s model through model_management; returns how many."""
    mm = comfy.model_management
    ours = [lm for lm in mm.current_loaded_models if lm.model is not None and lm.model.is_clone(patcher)]
    others = [lm for lm in mm.current_loaded_models if lm not in ours]
    devices = {lm.device for lm in ours}
    unloaded = 0
    for device in devices:
        unloaded += len(mm.free_memory(1e30, device, keep_loaded=others))
    return unloaded


def apply_model_policy(model, policy: str):
    """A clone of MODEL with the residency policy on its patcher; returns (model, note)."""
    _check("model policy", policy, MODEL_POLICIES)
    if policy == "default":
        return model.clone(), None
    note = None
    if compat.patcher_is_dynamic(model):
        note = (f"model policy {policy!r}: this model now loads as a whole (ComfyUI's dynamic VRAM is off for it); "
                f"choose default to keep dynamic VRAM")
    m = compat.regular_patcher_clone(model)
    wrappers = comfy.patcher_extension.WrappersMP
    m.remove_wrappers_with_key(wrappers.OUTER_SAMPLE, OFFLOAD_WRAPPER_KEY)
    if policy == "keep resident":
        # ComfyUI's --highvram does the same for every model: "offloading" lands on the load device.
        m.offload_device = m.load_device
    else:
        m.offload_device = CPU if m.offload_device == m.load_device else m.offload_device
        m.add_wrapper_with_key(wrappers.OUTER_SAMPLE, OFFLOAD_WRAPPER_KEY, OffloadAfterRun())
    return m, note


def apply_offload(model, clip, vae, text_encoder: str, vae_policy: str, model_policy: str):
    """The device policy as clones: returns (model, clip, vae, notes)."""
    _check("text encoder policy", text_encoder, TEXT_ENCODER_POLICIES)
    _check("VAE policy", vae_policy, VAE_POLICIES)
    _check("model policy", model_policy, MODEL_POLICIES)
    if not is_diffusion_model(model):
        raise TypeError(f"LCM Kit Offload needs a diffusion MODEL, got {type(model).__name__}")
    notes = []
    m, note = apply_model_policy(model, model_policy)
    notes += [note] if note else []
    c = clip_on_device(clip, CPU) if text_encoder == "cpu" else clip.clone()
    v = vae_on_device(vae, CPU) if vae_policy == "cpu" else vae
    return m, c, v, notes
