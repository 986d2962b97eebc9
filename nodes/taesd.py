"""Fast decode and encode with TAESD / TAESDXL, ComfyUI's own TAESD module, from the vae_approx folder."""
from __future__ import annotations

import os

import torch

import comfy.model_management

_TAESD_CACHE: dict = {}
TAESD_PARTS = ("decoder", "encoder")


def taesd_name(model, part: str = "decoder") -> str:
    """The vae_approx file name ComfyUI's latent format asks for: taesd_decoder / taesd_encoder (SD1.5) or
    taesdxl_decoder / taesdxl_encoder (SDXL)."""
    latent_format = model.model.latent_format
    name = getattr(latent_format, "taesd_decoder_name", None)
    if not name or not name.startswith(("taesd_", "taesdxl_")):
        raise ValueError(f"no TAESD {part} for this model's latent format ({type(latent_format).__name__}); "
                         f"Fast Decode / Fast Encode support SD1.5 (taesd) and SDXL (taesdxl) models: use VAE "
                         f"{'Decode' if part == 'decoder' else 'Encode'}")
    return name[:-len("decoder")] + part if name.endswith("_decoder") else name


def find_taesd_file(name: str) -> str:
    import folder_paths
    files = folder_paths.get_filename_list("vae_approx")
    found = next((f for f in files if f.startswith(name + ".")), None)
    if found is None:
        folders = ", ".join(folder_paths.get_folder_paths("vae_approx"))
        node, core = ("Fast Encode", "VAE Encode") if name.endswith("_encoder") else ("Fast Decode", "VAE Decode")
        raise FileNotFoundError(
            f"{node} needs {name}.safetensors (or .pth) in ComfyUI's vae_approx folder ({folders}); "
            f"missing. Found there: {', '.join(files) or 'nothing'}. Get it from madebyollin's taesd "
            f"releases ({'taesdxl' if 'xl' in name else 'taesd'}), or use {core}.")
    return folder_paths.get_full_path_or_raise("vae_approx", found)


def load_taesd(path: str, part: str, scale: float, shift: float):
    """ComfyUI's TAESD module with only `part` ("decoder" or "encoder") loaded from `path`, scaled to the model's
    latent space (`scale`, `shift`); the last few loaded are cached by file, time and scaling."""
    from comfy.taesd.taesd import TAESD
    if part not in TAESD_PARTS:
        raise ValueError(f"part must be one of {TAESD_PARTS}, got {part!r}")
    key = (path, os.path.getmtime(path), part, scale, shift)
    taesd = _TAESD_CACHE.get(key)
    if taesd is None:
        taesd = TAESD(path if part == "encoder" else None, path if part == "decoder" else None)
        taesd = taesd.eval().requires_grad_(False)
        # only one half is loaded: drop the other, so nobody runs random weights
        setattr(taesd, "taesd_encoder" if part == "decoder" else "taesd_decoder", None)
        with torch.no_grad():
            taesd.vae_scale.fill_(scale)
            taesd.vae_shift.fill_(shift)
        for old in [k for k in _TAESD_CACHE if k[2] == part]:
            del _TAESD_CACHE[old]
        _TAESD_CACHE[key] = taesd
    return taesd


def _model_taesd(model, part: str):
    latent_format = model.model.latent_format
    taesd = load_taesd(find_taesd_file(taesd_name(model, part)), part, float(latent_format.scale_factor),
                       float(getattr(latent_format, "shift_factor", 0.0) or 0.0))
    device = comfy.model_management.vae_device()
    return taesd.to(device), device


def fast_decode(model, samples: torch.Tensor) -> torch.Tensor:
    """Decode a LATENT batch (ComfyUI's raw VAE latent space) with TAESD/TAESDXL -> IMAGE (B,H,W,3)."""
    taesd, device = _model_taesd(model, "decoder")
    with torch.no_grad():
        images = taesd.decode(samples.to(device, torch.float32))
    images = ((images + 1.0) / 2.0).clamp(0.0, 1.0)
    return images.movedim(1, -1).to(comfy.model_management.intermediate_device())


def fast_encode(model, pixels: torch.Tensor) -> torch.Tensor:
    """Encode an IMAGE batch (B,H,W,C in 0..1) with TAESD/TAESDXL -> latents (B,4,H/8,W/8) in ComfyUI's raw VAE
    latent space, as core's VAE Encode with the taesd VAE: the image is cropped to a multiple of 8 (centred) and
    only its first three channels are used."""
    if pixels.ndim != 4 or pixels.shape[-1] < 3:
        raise ValueError(f"Fast Encode needs an IMAGE batch (B×H×W×3), got shape {tuple(pixels.shape)}")
    height, width = (pixels.shape[1] // 8) * 8, (pixels.shape[2] // 8) * 8
    if height == 0 or width == 0:
        raise ValueError(f"the image is {pixels.shape[2]}×{pixels.shape[1]}: Fast Encode needs at least 8×8 pixels")
    top, left = (pixels.shape[1] % 8) // 2, (pixels.shape[2] % 8) // 2
    pixels = pixels[:, top:top + height, left:left + width, :3]
    taesd, device = _model_taesd(model, "encoder")
    with torch.no_grad():
        x = pixels.to(device, torch.float32).movedim(-1, 1) * 2.0 - 1.0
        latents = taesd.encode(x)
    return latents.to(comfy.model_management.intermediate_device())
