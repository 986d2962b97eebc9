"""What the pack assumes about ComfyUI (issue #14): each probe of nodes/compat.py on the ComfyUI this suite runs on
(the pinned v0.3.75, or upstream 0.33 with COMFYUI_SOURCE: CI runs both), dynamic VRAM done core's way, latents
from other families' Empty*Latent nodes, and a ComfyUI older than the pack supports."""
from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file

import graphs
from support import comfy_env, tiny_models

LCM_CKPT = "tiny-sd15-lcm.safetensors"


@pytest.fixture(scope="module")
def compat(pack):
    return pack.nodes.compat


@pytest.fixture(scope="module")
def lcm_ckpt(comfy, base_dir):
    comfy_env.make_base_dir(base_dir, tiny_models.ensure(f"checkpoints/{LCM_CKPT}"))
    return LCM_CKPT


def has_reload_factories() -> bool:
    """Whether this ComfyUI rebuilds models through loader factories (`cached_patcher_init`, newer ComfyUI)."""
    import comfy.model_patcher
    return "force_deepcopy" in comfy.model_patcher.ModelPatcher.clone.__code__.co_varnames


# --------------------------------------------------------------------------------------------------
# The probes
# --------------------------------------------------------------------------------------------------

def test_this_comfyui_is_supported_and_an_older_one_is_told_the_minimum(compat):
    version = compat.comfyui_version()
    assert version is not None and version >= compat.MIN_COMFYUI
    assert compat.unsupported_reason() is None
    message = compat.unsupported_reason((0, 3, 10))
    assert "ComfyUI 0.3.75 or newer" in message and "this is ComfyUI 0.3.10" in message and "Update ComfyUI" in message


def test_optional_keywords_reach_only_functions_that_take_them(compat):
    import comfy.lora
    calls = []
    compat.call_with_supported(lambda a: calls.append(a), 1, lora_metadata={"x": 1})
    compat.call_with_supported(lambda a, lora_metadata=None: calls.append((a, lora_metadata)), 2, lora_metadata=3)
    assert calls == [1, (2, 3)]
    # A real ComfyUI function: load_lora's log_missing exists on both targets.
    assert compat.call_with_supported(comfy.lora.load_lora, {}, {}, log_missing=False, no_such_keyword=1) == {}


def test_preview_event_and_server_probes(compat):
    assert compat.preview_image_event() == 1          # BinaryEventTypes.PREVIEW_IMAGE, on every ComfyUI
    assert compat.prompt_server() is None             # the in-process harness runs no server


def test_regular_clones_of_the_loaders_models(comfy, compat):
    import nodes
    model, clip, vae = nodes.CheckpointLoaderSimple().load_checkpoint(graphs.SD15)[:3]
    for patcher in (model, clip.patcher, vae.patcher):
        assert compat.patcher_is_dynamic(patcher) is False      # --cpu: dynamic VRAM is off
        clone = compat.regular_patcher_clone(patcher)
        assert clone is not patcher and clone.model is patcher.model and not compat.patcher_is_dynamic(clone)
    v = compat.clone_vae(vae)
    assert v is not vae and v.patcher is not vae.patcher and v.first_stage_model is vae.first_stage_model


# --------------------------------------------------------------------------------------------------
# Our loaders set up what core's loaders set up (the reload factory)
# --------------------------------------------------------------------------------------------------

def test_lcm_checkpoint_loader_parts_rebuild_like_core_loaders(comfy, pack, compat, lcm_ckpt):
    """Newer ComfyUI rebuilds a model from its loader's factory for `clone(disable_dynamic=True)` (device-select,
    compile), hooks and multi-GPU copies. `clone(force_deepcopy=True)` takes that same path on a CPU, where the
    dynamic patcher itself cannot run: the rebuilt model is another object and samples the same latents, with the
    guidance embedding rebound to the new model's own layers."""
    if not has_reload_factories():
        pytest.skip("this ComfyUI has no reload factories (cached_patcher_init): nothing to rebuild")
    import nodes
    ckpt = pack.nodes.lcm_checkpoint
    loader = pack.NODE_CLASS_MAPPINGS["LCMKitCheckpointLoader"]()
    model, clip, vae = loader.load(lcm_ckpt, 8.0)["result"]
    for patcher in (model, clip.patcher, vae.patcher):
        assert patcher.cached_patcher_init is not None and patcher.cached_patcher_init[0].__module__ == ckpt.__name__
    rebuilt = model.clone(force_deepcopy=True)
    assert rebuilt.model is not model.model
    embed = rebuilt.object_patches[ckpt.TIME_EMBED]
    assert isinstance(embed, ckpt.GuidedTimeEmbed) and embed[0] is rebuilt.model.diffusion_model.time_embed[0]
    assert embed.guidance == 8.0 and torch.equal(embed.guidance_cond, model.object_patches[ckpt.TIME_EMBED].guidance_cond)

    pos = nodes.CLIPTextEncode().encode(clip, "a fox")[0]
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    sampler = pack.NODE_CLASS_MAPPINGS["LCMKitSampler"]()
    inputs = graphs.lcm_sampler_inputs(steps=2)
    a = sampler.sample(model, pos, pos, latent, **inputs)["result"][0]["samples"]
    b = sampler.sample(rebuilt, pos, pos, latent, **inputs)["result"][0]["samples"]
    assert torch.equal(a, b)
    clip_again = clip.patcher.cached_patcher_init[0](*clip.patcher.cached_patcher_init[1], disable_dynamic=True)
    vae_again = vae.patcher.cached_patcher_init[0](*vae.patcher.cached_patcher_init[1], disable_dynamic=True)
    assert type(clip_again.model) is type(clip.patcher.model) and type(vae_again.model) is type(vae.patcher.model)


def test_lcm_unet_loader_rebuilds_like_core_unet_loader(comfy, pack, compat, lcm_ckpt, base_dir):
    if not has_reload_factories():
        pytest.skip("this ComfyUI has no reload factories (cached_patcher_init): nothing to rebuild")
    models = tiny_models.ensure(f"{tiny_models.LCM_UNET_FOLDER}/diffusion_pytorch_model.safetensors")
    folder = tiny_models.models_dir() / tiny_models.LCM_UNET_FOLDER
    models[f"{tiny_models.LCM_UNET_FOLDER}/config.json"] = folder / "config.json"
    comfy_env.make_base_dir(base_dir, models)
    name = f"{tiny_models.LCM_UNET_FOLDER.split('/', 1)[1]}/diffusion_pytorch_model.safetensors"
    model = pack.NODE_CLASS_MAPPINGS["LCMKitUNetLoader"]().load(name, 8.0)["result"][0]
    rebuilt = model.clone(force_deepcopy=True)
    assert rebuilt.model is not model.model
    a, b = (m.model.diffusion_model.state_dict() for m in (model, rebuilt))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------------------------------
# Dynamic VRAM done core's way. ModelPatcherDynamic cannot be built on a CPU (its __init__ allocates comfy-aimdo
# host buffers, which need the CUDA library: "'NoneType' object has no attribute 'hostbuf_allocate'"), and with
# --cpu ComfyUI never makes one. So these tests take a real clone of a loader's patcher and give it the real
# ModelPatcherDynamic class: its `is_dynamic()` and core's own `clone(disable_dynamic=True)` (the factory rebuild)
# run for real; loading weights through comfy-aimdo does not (scripts/gpu_checks.py covers that on a GPU).
# --------------------------------------------------------------------------------------------------

def as_dynamic(patcher):
    import comfy.model_patcher
    if not hasattr(comfy.model_patcher, "ModelPatcherDynamic"):
        pytest.skip("this ComfyUI has no dynamic VRAM patcher (ModelPatcherDynamic)")
    clone = patcher.clone()
    clone.__class__ = comfy.model_patcher.ModelPatcherDynamic
    assert clone.is_dynamic() and clone.cached_patcher_init is not None
    return clone


def test_offload_takes_regular_patchers_of_dynamic_models(comfy, pack, compat):
    import comfy.model_patcher
    import nodes
    model, clip, vae = nodes.CheckpointLoaderSimple().load_checkpoint(graphs.SD15)[:3]
    dyn_clip, dyn_vae = clip.clone(), compat.clone_vae(vae)
    dyn_clip.patcher, dyn_vae.patcher = as_dynamic(clip.patcher), as_dynamic(vae.patcher)
    out = pack.NODE_CLASS_MAPPINGS["LCMKitOffload"]().offload(as_dynamic(model), dyn_clip, dyn_vae, "cpu", "cpu",
                                                               "keep resident")
    m, c, v = out["result"]
    cpu = torch.device("cpu")
    for patcher in (m, c.patcher, v.patcher):
        assert type(patcher) is comfy.model_patcher.ModelPatcher
    assert c.patcher.model is not clip.patcher.model and v.first_stage_model is v.patcher.model
    assert (c.patcher.load_device, c.patcher.offload_device, v.device, v.patcher.load_device) == (cpu,) * 4
    assert m.offload_device == m.load_device
    assert "dynamic VRAM is off" in graphs.status_texts(out["ui"])[0]
    # The rebuilt text encoder and VAE give what the loader's own give.
    ref = nodes.CLIPTextEncode().encode(clip, "a fox")[0][0][0]
    assert torch.equal(nodes.CLIPTextEncode().encode(c, "a fox")[0][0][0], ref)
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(v.decode(latent), vae.decode(latent))


def test_compile_takes_a_regular_patcher_of_a_dynamic_model(comfy, pack):
    import comfy.model_patcher
    import nodes
    model = nodes.CheckpointLoaderSimple().load_checkpoint(graphs.SD15)[0]
    compiled = pack.NODE_CLASS_MAPPINGS["LCMKitCompile"]().compile(
        as_dynamic(model), "default", "eager", "auto", False, False)[0]
    assert type(compiled) is comfy.model_patcher.ModelPatcher and compiled.model is not model.model
    assert pack.nodes.torch_compile.compile_wrapper(compiled) is not None


def test_dynamic_lcm_checkpoint_model_becomes_regular_with_its_guidance(comfy, pack, lcm_ckpt):
    import comfy.model_patcher
    import nodes
    ckpt = pack.nodes.lcm_checkpoint
    model, clip, _ = pack.NODE_CLASS_MAPPINGS["LCMKitCheckpointLoader"]().load(lcm_ckpt, 8.0)["result"]
    regular = as_dynamic(model).clone(disable_dynamic=True)
    assert type(regular) is comfy.model_patcher.ModelPatcher and regular.model is not model.model
    assert regular.object_patches[ckpt.TIME_EMBED][0] is regular.model.diffusion_model.time_embed[0]
    pos = nodes.CLIPTextEncode().encode(clip, "a fox")[0]
    sampler = pack.NODE_CLASS_MAPPINGS["LCMKitSampler"]()
    latent, inputs = {"samples": torch.zeros(1, 4, 8, 8)}, graphs.lcm_sampler_inputs(steps=2)
    a, b = (sampler.sample(m, pos, pos, latent, **inputs)["result"][0]["samples"] for m in (model, regular))
    assert torch.equal(a, b)


# --------------------------------------------------------------------------------------------------
# Latents from other families' Empty*Latent nodes, as core's samplers take them
# --------------------------------------------------------------------------------------------------

def _latent(outputs: dict, base_dir) -> torch.Tensor:
    (entry,) = outputs["save"]["latents"]
    return load_file(str(base_dir / "output" / entry["subfolder"] / entry["filename"]))["latent_tensor"]


def test_empty_latents_of_other_families_sample_like_the_sd_one(comfy, base_dir):
    """EmptySD3LatentImage (16 channels; newer ComfyUI tags it with downscale_ratio_spacial) into an SD1.5 LCM
    Sampler: core's channel fix applies, the result equals EmptyLatentImage's."""
    ours = _latent(comfy.run(graphs.lcm_graph(prefix="compat_sd", steps=2)), base_dir)
    g = graphs.lcm_graph(prefix="compat_sd3", steps=2)
    g["latent"] = {"class_type": "EmptySD3LatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}
    assert torch.equal(_latent(comfy.run(g), base_dir), ours)


def test_sampler_drops_the_empty_latent_tags_as_core_samplers_do(comfy, pack):
    import nodes
    model, clip, _ = nodes.CheckpointLoaderSimple().load_checkpoint(graphs.SD15)[:3]
    pos = nodes.CLIPTextEncode().encode(clip, "a fox")[0]
    latent = {"samples": torch.zeros(1, 4, 8, 8), "downscale_ratio_spacial": 8, "batch_index": [0]}
    out = pack.NODE_CLASS_MAPPINGS["LCMKitSampler"]().sample(model, pos, pos, latent, **graphs.lcm_sampler_inputs(
        steps=1))["result"][0]
    assert set(out) == {"samples", "batch_index"} and out["samples"].shape == (1, 4, 8, 8)


# --------------------------------------------------------------------------------------------------
# A ComfyUI older than the pack supports: one clear line, no nodes, the server runs on
# --------------------------------------------------------------------------------------------------

@pytest.mark.server
def test_an_older_comfyui_gets_the_minimum_version_and_keeps_running(comfy, base_dir, tmp_path):
    """The same ComfyUI tree, but reporting version 0.3.10: a copy whose top-level entries link to the real ones,
    with its own main.py (Python puts the script's real folder on sys.path) and comfyui_version.py."""
    tree = tmp_path / "ComfyUI-old"
    tree.mkdir()
    source = comfy_env.comfyui_dir()
    for entry in source.iterdir():
        if entry.name not in ("main.py", "comfyui_version.py", "user") and not entry.name.startswith("."):
            (tree / entry.name).symlink_to(entry)
    shutil.copy(source / "main.py", tree / "main.py")
    (tree / "comfyui_version.py").write_text('__version__ = "0.3.10"\n')
    server = comfy_env.ComfyServer(base_dir, tmp_path / "old.log", comfyui=tree)
    try:
        server.start()
        info = server.get("/object_info")
        assert "KSampler" in info and not [n for n in info if n.startswith("LCMKit")]
        lines = [line for line in server.log_text().splitlines() if "LCM Kit needs ComfyUI" in line]
        assert len(lines) == 1 and "0.3.75 or newer" in lines[0] and "this is ComfyUI 0.3.10" in lines[0]
        assert not [line for line in server.log_text().splitlines() if "IMPORT FAILED" in line and "lcm-kit" in line]
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------------
# The test bed's ComfyUI source switch (scripts/testbed.py, COMFYUI_SOURCE)
# --------------------------------------------------------------------------------------------------

def _setup_with(**variables) -> "subprocess.CompletedProcess":
    """`scripts/testbed.py setup` with these environment variables (and not the COMFYUI_DIR the test bed sets)."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_DIR"}
    env.update(variables)
    return subprocess.run([sys.executable, str(comfy_env.REPO / "scripts" / "testbed.py"), "setup"], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["folder", "tarball", "missing", "other file"])
def test_a_source_that_is_not_comfyui_gets_one_clear_line(tmp_path, kind):
    import tarfile
    if kind == "folder":
        source = tmp_path / "not-comfyui"
        source.mkdir()
        (source / "README.md").write_text("hello")
    elif kind == "tarball":
        (tmp_path / "pkg").mkdir()
        (tmp_path / "pkg" / "setup.py").write_text("")
        source = tmp_path / "pkg.tar.gz"
        with tarfile.open(source, "w:gz") as tf:
            tf.add(tmp_path / "pkg", arcname="pkg")
    elif kind == "missing":
        source = tmp_path / "nowhere"
    else:
        source = tmp_path / "notes.txt"
        source.write_text("not an archive")
    done = _setup_with(COMFYUI_SOURCE=str(source))
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(errors) == 1, done.stderr
    assert errors[0].startswith(f"[testbed] error: COMFYUI_SOURCE={source} ")
    assert ("does not exist" if kind == "missing" else "is not a ComfyUI source tree") in errors[0]


@pytest.mark.parametrize("kind", ["folder", "missing"])
def test_a_third_party_pack_source_that_is_not_the_pack_gets_one_clear_line(tmp_path, kind):
    """COMFYUI_DISTRIBUTED_SOURCE (scripts/testbed.py THIRD_PARTY_PACKS) names the pack's tarball or folder; anything
    else stops set-up with one line naming the variable (a missing ../shared/packs/ tarball only skips its tests)."""
    source = tmp_path / ("not-the-pack" if kind == "folder" else "nowhere")
    if kind == "folder":
        source.mkdir()
        (source / "__init__.py").write_text("")
    done = _setup_with(COMFYUI_DISTRIBUTED_SOURCE=str(source))
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(errors) == 1, done.stderr
    assert errors[0].startswith(f"[testbed] error: COMFYUI_DISTRIBUTED_SOURCE={source} ")
    assert ("does not exist" if kind == "missing" else "is not ComfyUI-Distributed") in errors[0]
