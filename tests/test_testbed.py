"""The foundation: the tiny models are what ComfyUI's own loaders detect, and core-only graphs run
through the real executor (in-process) with no LoRA key left unloaded."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

import graphs
from support import tiny_models


def _saved_images(comfy_outputs: dict, base_dir) -> list:
    imgs = []
    for out in comfy_outputs.values():
        for img in out.get("images", []):
            imgs.append(base_dir / "output" / img.get("subfolder", "") / img["filename"])
    return imgs


@pytest.mark.parametrize("ckpt, expected", [("tiny-sd15.safetensors", "SD15")])
def test_checkpoint_is_detected_as_its_architecture(comfy, ckpt, expected):
    import comfy.sd
    import folder_paths
    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(
        folder_paths.get_full_path("checkpoints", ckpt), output_vae=True, output_clip=True)
    assert type(model.model.model_config).__name__ == expected
    assert clip is not None and vae is not None


@pytest.mark.slow
@pytest.mark.parametrize("ckpt, expected", [("tiny-sdxl.safetensors", "SDXL"), ("tiny-ssd1b.safetensors", "SSD1B")])
def test_sdxl_family_checkpoints_are_detected(sdxl_models, ckpt, expected):
    import comfy.sd
    import folder_paths
    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(
        folder_paths.get_full_path("checkpoints", ckpt), output_vae=True, output_clip=True)
    assert type(model.model.model_config).__name__ == expected
    assert clip is not None and vae is not None


def test_controlnet_is_detected(comfy):
    import comfy.controlnet
    import folder_paths
    cn = comfy.controlnet.load_controlnet(folder_paths.get_full_path("controlnet", "tiny-sd15-controlnet.safetensors"))
    assert type(cn).__name__ == "ControlNet"


def test_models_are_deterministic(comfy):
    a = tiny_models.build_unet("sd15").state_dict()
    b = tiny_models.build_unet("sd15").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_core_lcm_graph_runs_in_process(comfy, base_dir):
    outputs = comfy.run(graphs.core_lcm_graph(prefix="inproc_core"))
    files = _saved_images(outputs, base_dir)
    assert len(files) == 1 and files[0].exists()
    pixels = np.asarray(Image.open(files[0]))
    assert pixels.shape == (64, 64, 3)
    assert pixels.std() > 1.0, "the image is flat: the model produced nothing"


@pytest.mark.parametrize("lora", ["tiny-sd15-lcm-kohya.safetensors", "tiny-sd15-style-kohya.safetensors"])
def test_core_lora_loader_loads_every_key(comfy, caplog, lora):
    """kohya layout (also the published LCM-LoRA files' layout): core maps every UNet and TE key."""
    caplog.set_level(logging.WARNING)
    comfy.run(graphs.core_lcm_graph(lora=lora, prefix="inproc_lora", steps=1))
    assert not [r for r in caplog.records if "lora key not loaded" in r.getMessage()]


def test_core_lora_loader_misses_peft_attention_keys(comfy, caplog):
    """Pins a gap of core 0.3.75 that the LCM Kit loaders close: diffusers/PEFT-saved SD1.5 LoRAs
    (`unet.….attn1.to_q.lora_A.weight`) lose their attention keys in core's LoraLoader, because
    core's key map only knows the old `….processor.to_q` names."""
    caplog.set_level(logging.WARNING)
    comfy.run(graphs.core_lcm_graph(lora="tiny-sd15-style-peft.safetensors", prefix="inproc_lora", steps=1))
    missed = [r.getMessage() for r in caplog.records if "lora key not loaded" in r.getMessage()]
    assert missed and all(".to_" in m for m in missed)


def test_diffusers_form_matches_comfyui_unet(comfy):
    """The diffusers UNet built from the same weights is the numerical reference of later parity tests."""
    comfy_unet = tiny_models.build_unet("sd15")
    ref = tiny_models.diffusers_unet("sd15", comfy_unet.state_dict())
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 16, 16, generator=g)
    ctx = torch.randn(1, 7, 768, generator=g)
    t = torch.tensor([499.0])
    with torch.no_grad():
        ours = comfy_unet(x, timesteps=t, context=ctx)
        theirs = ref(x, t, encoder_hidden_states=ctx).sample
    assert (ours - theirs).abs().max().item() < 1e-4
