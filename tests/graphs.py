"""API-format prompts used across the suite, written as small builders so each test shows its graph."""
from __future__ import annotations

SD15 = "tiny-sd15.safetensors"


def core_lcm_graph(ckpt: str = SD15, steps: int = 4, seed: int = 1, size: int = 64, lora: str | None = None,
                   prefix: str = "core_lcm", text: str = "a tiny red fox") -> dict:
    """CheckpointLoaderSimple -> [LoraLoader] -> ModelSamplingDiscrete(lcm) -> KSampler(lcm) -> VAEDecode -> SaveImage."""
    g = {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["ckpt", 1]}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["ckpt", 1]}},
        "msd": {"class_type": "ModelSamplingDiscrete", "inputs": {"model": ["ckpt", 0], "sampling": "lcm", "zsnr": False}},
        "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "ks": {"class_type": "KSampler", "inputs": {
            "model": ["msd", 0], "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0],
            "seed": seed, "steps": steps, "cfg": 1.0, "sampler_name": "lcm", "scheduler": "simple", "denoise": 1.0}},
        "decode": {"class_type": "VAEDecode", "inputs": {"samples": ["ks", 0], "vae": ["ckpt", 2]}},
        "save": {"class_type": "SaveImage", "inputs": {"images": ["decode", 0], "filename_prefix": prefix}},
    }
    if lora:
        g["lora"] = {"class_type": "LoraLoader", "inputs": {
            "model": ["ckpt", 0], "clip": ["ckpt", 1], "lora_name": lora, "strength_model": 1.0, "strength_clip": 1.0}}
        g["msd"]["inputs"]["model"] = ["lora", 0]
        g["pos"]["inputs"]["clip"] = ["lora", 1]
        g["neg"]["inputs"]["clip"] = ["lora", 1]
    return g


def lcm_sampler_inputs(**over) -> dict:
    """Widget values of LCMKitSampler in their saved order, with overrides."""
    w = {"seed": 7, "steps": 4, "cfg": 1.0, "strength": 1.0, "sampler": "lcm", "gamma": 0.3,
         "original_inference_steps": 50, "steps_preset": "custom (use steps)"}
    w.update(over)
    return w


def lcm_graph(ckpt: str = SD15, size: int = 64, batch: int = 1, prefix: str = "lcm", text: str = "a tiny red fox",
              save: str = "latent", **sampler) -> dict:
    """CheckpointLoaderSimple -> LCMKitSampler -> SaveLatent (or VAEDecode -> SaveImage)."""
    g = {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["ckpt", 1]}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["ckpt", 1]}},
        "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": batch}},
        "sampler": {"class_type": "LCMKitSampler", "inputs": {
            "model": ["ckpt", 0], "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0],
            **lcm_sampler_inputs(**sampler)}},
    }
    if save == "latent":
        g["save"] = {"class_type": "SaveLatent", "inputs": {"samples": ["sampler", 0], "filename_prefix": f"latents/{prefix}"}}
    else:
        g["decode"] = {"class_type": "VAEDecode", "inputs": {"samples": ["sampler", 0], "vae": ["ckpt", 2]}}
        g["save"] = {"class_type": "SaveImage", "inputs": {"images": ["decode", 0], "filename_prefix": prefix}}
    return g


def img2img(g: dict, image_latent_seed: int = 3) -> dict:
    """Replace the empty latent by a VAE-encoded synthetic image (a core EmptyImage colour + noise-free)."""
    g = dict(g)
    g["image"] = {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0x3366CC}}
    g["latent"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["image", 0], "vae": ["ckpt", 2]}}
    return g


def compile_graph(loras: list[tuple[str, float]] = (), compile: dict | None = None, seed: int = 1,
                  text: str = "a tiny red fox", size: int = 64, steps: int = 2, ckpt: str = SD15,
                  prefix: str = "optimize") -> dict:
    """CheckpointLoaderSimple -> LoraLoader* -> [LCMKitCompile] -> KSampler(lcm) -> SaveLatent.

    `compile` holds LCMKitCompile's widget values (None: no compile node)."""
    g = {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
    }
    model, clip = ["ckpt", 0], ["ckpt", 1]
    for i, (name, strength) in enumerate(loras):
        g[f"lora{i}"] = {"class_type": "LoraLoader", "inputs": {
            "model": model, "clip": clip, "lora_name": name, "strength_model": strength, "strength_clip": strength}}
        model, clip = [f"lora{i}", 0], [f"lora{i}", 1]
    if compile is not None:
        g["compile"] = {"class_type": "LCMKitCompile", "inputs": {"model": model, **compile}}
        model = ["compile", 0]
    g.update({
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": clip}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": clip}},
        "ks": {"class_type": "KSampler", "inputs": {
            "model": model, "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0],
            "seed": seed, "steps": steps, "cfg": 1.0, "sampler_name": "lcm", "scheduler": "simple", "denoise": 1.0}},
        "save": {"class_type": "SaveLatent", "inputs": {"samples": ["ks", 0], "filename_prefix": prefix}},
    })
    return g


def status_texts(ui: dict, level: str | None = None) -> list[str]:
    """The status lines a node showed (its ui output's `lcm_kit_status`, see nodes/status.py), optionally of one
    level ("info" / "warning")."""
    return [e["text"] for e in (ui or {}).get("lcm_kit_status", []) if level is None or e["level"] == level]
