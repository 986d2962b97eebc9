"""The sampler nodes inside real ComfyUI graphs (in-process executor; one real-server test)."""
from __future__ import annotations

import logging

import pytest
import torch

import graphs
from graphs import status_texts
from support.comfy_env import WebSocketListener


latents_of = graphs.saved_latent


def run_latent(comfy, base_dir, graph) -> torch.Tensor:
    return latents_of(comfy.run(graph), base_dir)


def test_all_in_one_equals_sampler_custom_and_advanced(comfy, base_dir):
    g = graphs.lcm_graph(prefix="aio", seed=11)
    ours = run_latent(comfy, base_dir, g)

    custom = graphs.lcm_graph(prefix="custom")
    del custom["sampler"]
    custom.update({
        "sigmas": {"class_type": "LCMKitScheduler", "inputs": {"model": ["ckpt", 0], "steps": 4, "strength": 1.0,
                                                               "original_inference_steps": 50}},
        "select": {"class_type": "LCMKitSamplerSelect", "inputs": {"sampler": "lcm", "gamma": 0.3}},
        "sampler": {"class_type": "SamplerCustom", "inputs": {
            "model": ["ckpt", 0], "add_noise": True, "noise_seed": 11, "cfg": 1.0, "positive": ["pos", 0],
            "negative": ["neg", 0], "sampler": ["select", 0], "sigmas": ["sigmas", 0], "latent_image": ["latent", 0]}},
    })
    via_custom = run_latent(comfy, base_dir, custom)

    adv = dict(custom)
    adv.update({
        "noise": {"class_type": "RandomNoise", "inputs": {"noise_seed": 11}},
        "guider": {"class_type": "CFGGuider", "inputs": {"model": ["ckpt", 0], "positive": ["pos", 0],
                                                         "negative": ["neg", 0], "cfg": 1.0}},
        "sampler": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["noise", 0], "guider": ["guider", 0], "sampler": ["select", 0], "sigmas": ["sigmas", 0],
            "latent_image": ["latent", 0]}},
    })
    via_advanced = run_latent(comfy, base_dir, adv)
    assert torch.allclose(ours, via_custom, atol=1e-5, rtol=0)
    assert torch.allclose(ours, via_advanced, atol=1e-5, rtol=0)


def test_same_result_with_or_without_core_lcm_model_sampling(comfy, base_dir):
    plain = run_latent(comfy, base_dir, graphs.lcm_graph(prefix="plain", seed=5))
    g = graphs.lcm_graph(prefix="msd", seed=5)
    g["msd"] = {"class_type": "ModelSamplingDiscrete", "inputs": {"model": ["ckpt", 0], "sampling": "lcm", "zsnr": False}}
    g["sampler"]["inputs"]["model"] = ["msd", 0]
    assert torch.allclose(plain, run_latent(comfy, base_dir, g), atol=1e-6, rtol=0)


def test_seed_steps_and_presets(comfy, base_dir):
    a = run_latent(comfy, base_dir, graphs.lcm_graph(prefix="s1", seed=1))
    b = run_latent(comfy, base_dir, graphs.lcm_graph(prefix="s2", seed=2))
    assert not torch.allclose(a, b)
    # the "general: 4 steps" preset overrides the steps widget
    preset = run_latent(comfy, base_dir, graphs.lcm_graph(prefix="p", seed=1, steps=2, steps_preset="general: 4 steps"))
    assert torch.equal(a, preset)


def test_batch_of_two_gives_two_different_images(comfy, base_dir):
    out = run_latent(comfy, base_dir, graphs.lcm_graph(prefix="batch", batch=2, steps=2))
    assert out.shape[0] == 2 and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])


def test_noise_mask_keeps_the_unmasked_region(comfy, base_dir):
    g = graphs.img2img(graphs.lcm_graph(prefix="mask", strength=0.6, steps=2))
    g["mask"] = {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 64, "height": 64}}
    g["paint"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 32, "height": 64}}
    g["composite"] = {"class_type": "MaskComposite", "inputs": {"destination": ["mask", 0], "source": ["paint", 0],
                                                                "x": 0, "y": 0, "operation": "add"}}
    g["masked"] = {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["latent", 0], "mask": ["composite", 0]}}
    g["sampler"]["inputs"]["latent_image"] = ["masked", 0]
    g["orig"] = {"class_type": "SaveLatent", "inputs": {"samples": ["latent", 0], "filename_prefix": "latents/orig"}}
    outputs = comfy.run(g)
    out, orig = latents_of(outputs, base_dir), latents_of(outputs, base_dir, "orig")
    # right half (mask 0) is kept, left half (mask 1) is resampled
    assert torch.allclose(out[..., 5:], orig[..., 5:], atol=1e-5)
    assert (out[..., :3] - orig[..., :3]).abs().max() > 0.05


def test_controlnet_conditioning_flows_through(comfy, base_dir):
    base = run_latent(comfy, base_dir, graphs.lcm_graph(prefix="nocn", steps=2))
    g = graphs.lcm_graph(prefix="cn", steps=2)
    g.update({
        "cn": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "tiny-sd15-controlnet.safetensors"}},
        "hint": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0xFFFFFF}},
        "apply": {"class_type": "ControlNetApplyAdvanced", "inputs": {
            "positive": ["pos", 0], "negative": ["neg", 0], "control_net": ["cn", 0], "image": ["hint", 0],
            "strength": 1.0, "start_percent": 0.0, "end_percent": 1.0}},
    })
    g["sampler"]["inputs"]["positive"] = ["apply", 0]
    g["sampler"]["inputs"]["negative"] = ["apply", 1]
    with_cn = run_latent(comfy, base_dir, g)
    assert torch.isfinite(with_cn).all() and not torch.allclose(base, with_cn, atol=1e-4)


def test_high_cfg_warns_in_log_and_on_node_but_is_used(comfy, base_dir, caplog):
    caplog.set_level(logging.WARNING)
    low = run_latent(comfy, base_dir, graphs.lcm_graph(prefix="cfg1", steps=1, cfg=2.0))
    outputs = comfy.run(graphs.lcm_graph(prefix="cfg3", steps=1, cfg=3.0))
    assert any("cfg 3 is high for LCM" in r.getMessage() for r in caplog.records)
    assert "cfg 3 is high" in status_texts(outputs["sampler"], "warning")[0]
    assert not torch.allclose(low, latents_of(outputs, base_dir))


def test_strength_below_one_on_an_empty_latent_warns(comfy):
    """An empty latent starts from pure noise (text-to-image) whatever the strength: below 1.0 the node says so."""
    outputs = comfy.run(graphs.lcm_graph(prefix="empty-half", strength=0.5, steps=2))
    assert "strength 0.5 on an empty latent" in status_texts(outputs["sampler"], "warning")[0]


def test_too_low_strength_is_a_clear_error_before_anything_runs(comfy):
    """Refused by validation (tests/test_validation.py checks the server's HTTP 400 answer)."""
    valid, _, _, node_errors = comfy.validate(graphs.img2img(graphs.lcm_graph(prefix="low", strength=0.05, steps=4)))
    assert not valid and "strength ≥ 0.08 for 4 steps" in node_errors["sampler"]["errors"][0]["details"]


@pytest.mark.parametrize("bad, message", [
    (torch.ones(1, 16, 8, 8), "has 16 channels but this model expects 4"),
    (torch.full((1, 4, 8, 8), float("nan")), "NaN/Inf"),
])
def test_bad_latents_name_the_input(comfy, pack, bad, message):
    import comfy.sd
    import folder_paths
    model = comfy.sd.load_checkpoint_guess_config(folder_paths.get_full_path("checkpoints", "tiny-sd15.safetensors"),
                                                  output_vae=False, output_clip=False)[0]
    node = pack.NODE_CLASS_MAPPINGS["LCMKitSampler"]()
    cond = [[torch.zeros(1, 77, 768), {}]]
    with pytest.raises(ValueError, match=message) as info:
        node.sample(model, cond, cond, {"samples": bad}, **graphs.lcm_sampler_inputs())
    assert "latent_image" in str(info.value)


@pytest.mark.server
def test_server_streams_progress_and_previews(server):
    g = graphs.lcm_graph(prefix="srv", save="image", steps=4)
    with WebSocketListener(server) as ws:
        prompt_id = server.queue(g, ws.client_id)
        hist = server.wait_history(prompt_id)
    assert hist["status"]["status_str"] == "success"
    progress = [p for p in ws.events("progress") if p.get("prompt_id") == prompt_id and p.get("node") == "sampler"]
    assert [p["value"] for p in progress] == [1, 2, 3, 4]
    assert len(ws.binary) >= 4  # latent previews (--preview-method latent2rgb), one per step


def test_model_that_already_has_lcm_sampling_is_not_cloned_again(pack, comfy):
    """After the LCM-LoRA Loader the MODEL already carries LCM sampling: the sampler reuses it as it is,
    so live re-runs do not make ComfyUI load a new model copy."""
    import comfy.sd
    import folder_paths
    lcm = pack.nodes.lcm_sampling
    model = comfy.sd.load_checkpoint_guess_config(folder_paths.get_full_path("checkpoints", "tiny-sd15.safetensors"),
                                                  output_vae=False, output_clip=False)[0]
    patched = lcm.patch_lcm_sampling(model)
    assert patched is not model and not isinstance(model.get_model_object("model_sampling"), lcm.LCMModelSampling)
    assert lcm.patch_lcm_sampling(patched) is patched
    assert lcm.patch_lcm_sampling(patched, 25) is not patched


def test_a_recipe_for_another_prediction_type_is_refused(comfy):
    """SDXL-Lightning's 1-step UNet predicts x0: its recipe on an eps model stops before sampling, saying what to add."""
    comfy.run(graphs.lcm_graph(prefix="x0-recipe", recipe="SDXL-Lightning 1-step x0 UNet (Euler trailing)"),
              check=False)
    err = comfy.error()
    assert err is not None and err["exception_type"] == "lcm_kit.ScheduleError"
    assert "is for an x0 model: put core's ModelSamplingDiscrete (sampling x0) before this node" in \
        err["exception_message"] and "this MODEL predicts eps" in err["exception_message"]


def test_an_absurd_linked_lora_strength_is_blamed_not_the_model(comfy):
    """A strength of 9e18 from a math node made the UNet overflow, and the error blamed fp16 or the LoRA file."""
    g = graphs.lcm_graph(prefix="huge-strength", steps=1)
    g["strength"] = {"class_type": "PrimitiveFloat", "inputs": {"value": 9e18}}
    g["lora"] = {"class_type": "LCMKitLoraLoader", "inputs": {"model": ["ckpt", 0], "lora_name": "auto",
                                                               "strength": ["strength", 0]}}
    g["sampler"]["inputs"]["model"] = ["lora", 0]
    comfy.run(g, check=False)
    err = comfy.error()
    assert err is not None and "strength is 9e+18, far outside any usable value" in err["exception_message"]
    assert "fp16" not in err["exception_message"]
