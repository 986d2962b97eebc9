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


def sampler_custom(g: dict, advanced: bool = False, model: list | None = None, steps: int = 4, strength: float = 1.0,
                   original_inference_steps: int = 50, sampler: str = "lcm", gamma: float = 0.3, seed: int = 7) -> dict:
    """`g` (an lcm_graph) with its LCM Sampler replaced by SamplerCustom (or SamplerCustomAdvanced with RandomNoise and
    CFGGuider at cfg 1) fed by the LCM Scheduler's SIGMAS and the LCM / TCD Sampler's SAMPLER, same output id."""
    g = dict(g)
    model = model or g["sampler"]["inputs"]["model"]
    g["sigmas"] = {"class_type": "LCMKitScheduler", "inputs": {
        "model": model, "steps": steps, "strength": strength, "original_inference_steps": original_inference_steps}}
    g["select"] = {"class_type": "LCMKitSamplerSelect", "inputs": {"sampler": sampler, "gamma": gamma}}
    if not advanced:
        g["sampler"] = {"class_type": "SamplerCustom", "inputs": {
            "model": model, "add_noise": True, "noise_seed": seed, "cfg": 1.0, "positive": ["pos", 0],
            "negative": ["neg", 0], "sampler": ["select", 0], "sigmas": ["sigmas", 0], "latent_image": ["latent", 0]}}
        return g
    g["noise"] = {"class_type": "RandomNoise", "inputs": {"noise_seed": seed}}
    g["guider"] = {"class_type": "CFGGuider", "inputs": {"model": model, "positive": ["pos", 0], "negative": ["neg", 0],
                                                         "cfg": 1.0}}
    g["sampler"] = {"class_type": "SamplerCustomAdvanced", "inputs": {
        "noise": ["noise", 0], "guider": ["guider", 0], "sampler": ["select", 0], "sigmas": ["sigmas", 0],
        "latent_image": ["latent", 0]}}
    return g


def saved_latent(outputs: dict, base_dir, node: str = "save"):
    """The latent a SaveLatent node of a finished prompt wrote (as LATENT["samples"]: not model space)."""
    from safetensors.torch import load_file
    item = outputs[node]["latents"][0]
    return load_file(str(base_dir / "output" / item["subfolder"] / item["filename"]))["latent_tensor"]


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
