"""Node classes for full LCM checkpoints: a checkpoint loader and a diffusers-UNet loader that keep the
guidance embedding core drops, and a patch node that adds it to a MODEL from a core loader.
Thin: resolve the file, call `lcm_checkpoint`, report its notes."""
from __future__ import annotations

import folder_paths

from . import lcm_checkpoint, lcm_math, status
from .lcm_sampling import patch_lcm_sampling

CATEGORY = "LCM Kit/loaders"


def _guidance_input():
    lo, hi = lcm_math.TRAINED_GUIDANCE
    return ("FLOAT", {"default": 8.0, "min": 1.0, "max": 30.0, "step": 0.1, "round": 0.01, "tooltip":
                      f"Guidance in the model's embedding (trained {lo:g}-{hi:g}); keep the sampler's cfg at 1."})


def _result(loaded: lcm_checkpoint.LoadedLCM, *outputs):
    return status.node_output(outputs, warnings=loaded.notes)


class LCMCheckpointLoader:
    DESCRIPTION = ("Loads a full LCM checkpoint (e.g. LCM_Dreamshaper_v7) with the guidance embedding core's Load "
                   "Checkpoint drops, and sets LCM model sampling. Sample at cfg 1.0.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "ckpt_name": (folder_paths.get_filename_list("checkpoints"), {"tooltip":
                          "An LCM checkpoint file; for a diffusers unet/ folder use the UNet Loader."}),
            "guidance": _guidance_input(),
        }}

    def load(self, ckpt_name, guidance):
        path = folder_paths.get_full_path_or_raise("checkpoints", ckpt_name)
        loaded = lcm_checkpoint.load_lcm_checkpoint(path, guidance, folder_paths.get_folder_paths("embeddings"))
        return _result(loaded, loaded.model, loaded.clip, loaded.vae)


class LCMUNetLoader:
    DESCRIPTION = ("Loads an LCM UNet (a diffusers unet/ folder's safetensors with config.json beside it, or a "
                   "UNet file) with its guidance embedding. CLIP and VAE come from other loaders.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "unet_name": (folder_paths.get_filename_list("diffusion_models"), {"tooltip":
                          "diffusion_pytorch_model.safetensors of a diffusers unet/ folder, or a UNet."}),
            "guidance": _guidance_input(),
        }}

    def load(self, unet_name, guidance):
        path = folder_paths.get_full_path_or_raise("diffusion_models", unet_name)
        loaded = lcm_checkpoint.load_lcm_unet(path, guidance)
        return _result(loaded, loaded.model)


class LCMGuidanceEmbedding:
    DESCRIPTION = ("Puts a full LCM checkpoint's guidance embedding back on a MODEL from core's Load Checkpoint "
                   "(reads only that weight) and sets LCM model sampling.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The MODEL of a Load Checkpoint of ckpt_name (LoRAs may follow)."}),
            "ckpt_name": (folder_paths.get_filename_list("checkpoints"), {"tooltip":
                          "The checkpoint the MODEL came from; only its guidance weight is read."}),
            "guidance": _guidance_input(),
        }}

    def patch(self, model, ckpt_name, guidance):
        path = folder_paths.get_full_path_or_raise("checkpoints", ckpt_name)
        cond_proj = lcm_checkpoint.read_cond_proj(path)
        if cond_proj is None:
            note = lcm_checkpoint.no_embedding_note(ckpt_name) + " The MODEL was passed through unchanged."
            return status.node_output((model,), warnings=[note], node="LCM Guidance Embedding")
        patched = patch_lcm_sampling(lcm_checkpoint.apply_guidance_embedding(model, cond_proj, guidance))
        notes = [n for n in [lcm_checkpoint.guidance_warning(guidance)] if n]
        return status.node_output((patched,), warnings=notes, node="LCM Guidance Embedding")


NODE_CLASS_MAPPINGS = {
    "LCMKitCheckpointLoader": LCMCheckpointLoader,
    "LCMKitUNetLoader": LCMUNetLoader,
    "LCMKitGuidanceEmbedding": LCMGuidanceEmbedding,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "LCMKitCheckpointLoader": "LCM Checkpoint Loader (LCM Kit)",
    "LCMKitUNetLoader": "LCM UNet Loader (LCM Kit)",
    "LCMKitGuidanceEmbedding": "LCM Guidance Embedding (LCM Kit)",
}
