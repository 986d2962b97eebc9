"""Full LCM checkpoints: the guidance ("w") embedding core ComfyUI drops, and diffusers-format LCM UNets.

Reference: diffusers' UNet2DConditionModel with `time_cond_proj_dim=256` and its LatentConsistencyModelPipeline
(w = guidance_scale − 1, w_emb = get_guidance_scale_embedding(w, 256), one UNet pass per step, no CFG), on the
very same tiny SD1.5 UNet weights as the single-file checkpoint `tiny-sd15-lcm.safetensors` and the diffusers
folder `diffusion_models/tiny-sd15-lcm-unet/`.
"""
from __future__ import annotations

import contextlib
import json
import logging

import pytest
import torch
from safetensors.torch import load_file, save_file

import graphs
from graphs import status_texts
from support import comfy_env, tiny_models
from test_sampler_parity import _inputs, comfy_run, seeded_noise_sampler

TOL = 1e-4
LCM_CKPT = "tiny-sd15-lcm.safetensors"
LCM_UNET = f"{tiny_models.LCM_UNET_FOLDER.split('/', 1)[1]}/diffusion_pytorch_model.safetensors"
GUIDANCES = [1.0, 4.0, 8.0]


@pytest.fixture(scope="module")
def lcm_files(comfy, base_dir):
    """The LCM fixtures, linked into the base directory's model folders (config.json beside the UNet)."""
    models = tiny_models.ensure("checkpoints/tiny-sd15-lcm.safetensors",
                                f"{tiny_models.LCM_UNET_FOLDER}/diffusion_pytorch_model.safetensors")
    folder = tiny_models.models_dir() / tiny_models.LCM_UNET_FOLDER
    models[f"{tiny_models.LCM_UNET_FOLDER}/config.json"] = folder / "config.json"
    comfy_env.make_base_dir(base_dir, models)
    return {"ckpt": models["checkpoints/tiny-sd15-lcm.safetensors"], "unet_folder": folder}


@pytest.fixture(scope="module")
def ckpt(pack):
    """Our modules, as ComfyUI imported the pack."""
    return pack.nodes.lcm_checkpoint


@contextlib.contextmanager
def captured_log():
    """The messages logged (root logger, WARNING and up) inside the block, whatever level the process had set
    (ComfyUI's console shows warnings; a script that quiets the root logger must not hide them from the test)."""
    messages: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    root = logging.getLogger()
    level = root.level
    if level > logging.WARNING:
        root.setLevel(logging.WARNING)
    root.addHandler(handler)
    try:
        yield messages
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture(scope="module")
def core_and_log(lcm_files):
    """The LCM checkpoint as core's CheckpointLoaderSimple loads it (cond_proj dropped), and its log."""
    import comfy.sd
    with captured_log() as messages:
        model, _, _, _ = comfy.sd.load_checkpoint_guess_config(str(lcm_files["ckpt"]), output_vae=False,
                                                               output_clip=False)
    assert model.model.diffusion_model.dtype == torch.float32
    return model, messages


@pytest.fixture(scope="module")
def core_model(core_and_log):
    return core_and_log[0]


@pytest.fixture(scope="module")
def reference(core_model):
    """diffusers' UNet with time_cond_proj_dim=256 and exactly the checkpoint's weights."""
    sd = {k: v.float() for k, v in core_model.model.diffusion_model.state_dict().items()}
    return tiny_models.lcm_diffusers_unet(sd)


def w_embedding(guidance: float) -> torch.Tensor:
    """What LatentConsistencyModelPipeline feeds the UNet as timestep_cond."""
    from diffusers import LatentConsistencyModelPipeline
    w = torch.tensor(guidance - 1).repeat(1)
    return LatentConsistencyModelPipeline.get_guidance_scale_embedding(None, w, embedding_dim=256)


def comfy_unet(model, x, t, ctx):
    """The raw UNet output (ε) of a ModelPatcher with its object patches applied."""
    import comfy.model_management
    comfy.model_management.load_models_gpu([model])
    with torch.no_grad():
        return model.model.diffusion_model(x, timesteps=torch.tensor([float(t)]), context=ctx)


def diffusers_unet_eps(unet, x, t, ctx, guidance=None):
    cond = None if guidance is None else w_embedding(guidance)
    with torch.no_grad():
        return unet(x, t, encoder_hidden_states=ctx, timestep_cond=cond).sample


# --------------------------------------------------------------------------------------------------
# The problem, measured on core
# --------------------------------------------------------------------------------------------------

def test_core_loader_drops_the_embedding(core_model, reference):
    """Core's model equals diffusers' without a guidance embedding, and misses the guided output."""
    x, _, ctx, _ = _inputs(seed=1)
    core = comfy_unet(core_model, x, 759, ctx)
    assert (core - diffusers_unet_eps(reference, x, 759, ctx)).abs().max() <= TOL
    assert (core - diffusers_unet_eps(reference, x, 759, ctx, guidance=8.0)).abs().max() > 10 * TOL


# --------------------------------------------------------------------------------------------------
# UNet output and whole runs against diffusers
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def guided_and_log(ckpt, lcm_files):
    """Our two loaders, each loaded once at guidance 8: ({source: LoadedLCM}, the messages logged meanwhile)."""
    with captured_log() as messages:
        loaded = {"checkpoint": ckpt.load_lcm_checkpoint(str(lcm_files["ckpt"]), 8.0),
                  "diffusers_folder": ckpt.load_lcm_unet(str(lcm_files["unet_folder"]), 8.0)}
    return loaded, messages


@pytest.fixture(scope="module")
def guided(guided_and_log):
    return guided_and_log[0]


def test_loaders_use_the_weight_without_core_calling_it_unexpected(guided_and_log, core_and_log):
    loaded, messages = guided_and_log
    assert all(v.has_guidance_embedding and v.notes == [] for v in loaded.values())
    assert not [m for m in messages if "cond_proj" in m], messages
    assert [m for m in core_and_log[1] if "unexpected" in m and "cond_proj" in m]  # what core says


def at_guidance(ckpt, lcm_files, loaded, guidance):
    """The loaded MODEL at another guidance (the patch replaces the loader's, never stacks)."""
    if guidance == loaded.model.get_model_object("diffusion_model.time_embed").guidance:
        return loaded.model
    return ckpt.apply_guidance_embedding(loaded.model, ckpt.read_cond_proj(str(lcm_files["ckpt"])), guidance)


@pytest.mark.parametrize("guidance", GUIDANCES)
@pytest.mark.parametrize("source", ["checkpoint", "diffusers_folder"])
def test_unet_output_matches_diffusers(ckpt, lcm_files, guided, reference, source, guidance, capsys):
    model = at_guidance(ckpt, lcm_files, guided[source], guidance)
    x, _, ctx, _ = _inputs(seed=2)
    worst = 0.0
    for t in (999, 499, 19):
        ours = comfy_unet(model, x, t, ctx)
        worst = max(worst, (ours - diffusers_unet_eps(reference, x, t, ctx, guidance)).abs().max().item())
    with capsys.disabled():
        print(f"\n  UNet ε {source} guidance={guidance:g}: max|Δ| vs diffusers {worst:.2e}")
    assert worst <= TOL


def lcm_pipeline_run(unet, steps, guidance, noise, ctx, noise_seed=7):
    """diffusers' LatentConsistencyModelPipeline itself (latents in, latents out; no VAE or text encoder)."""
    from diffusers import LCMScheduler, LatentConsistencyModelPipeline
    pipe = LatentConsistencyModelPipeline(vae=None, text_encoder=None, tokenizer=None, unet=unet,
                                          scheduler=LCMScheduler(), safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    size = noise.shape[-1] * 8
    with torch.no_grad():
        return pipe(prompt_embeds=ctx, latents=noise.clone(), num_inference_steps=steps, guidance_scale=guidance,
                    height=size, width=size, output_type="latent",
                    generator=torch.Generator().manual_seed(noise_seed)).images


@pytest.mark.parametrize("guidance", [4.0, 8.0])
def test_four_step_sample_matches_lcm_pipeline(pack, ckpt, lcm_files, guided, core_model, reference, guidance, capsys):
    noise, _, ctx, unctx = _inputs(seed=4)
    ref = lcm_pipeline_run(reference, 4, guidance, noise, ctx)
    sampling = pack.nodes.lcm_sampling

    def run(model):
        sampler = sampling.lcm_sampler("lcm", noise_sampler=seeded_noise_sampler())
        out = comfy_run(pack.nodes, model, sampling.lcm_sigmas(model, 4), sampler, noise, None, ctx, unctx)
        return (out - ref).abs().max().item()

    err = run(at_guidance(ckpt, lcm_files, guided["checkpoint"], guidance))
    core_err = run(sampling.patch_lcm_sampling(core_model))   # what core gives: the embedding dropped
    with capsys.disabled():
        print(f"\n  4-step LCM guidance={guidance:g}: max|Δ| vs LatentConsistencyModelPipeline  ours {err:.2e}  "
              f"core {core_err:.2e}")
    assert err <= TOL
    assert core_err > 10 * TOL


# --------------------------------------------------------------------------------------------------
# The object patch
# --------------------------------------------------------------------------------------------------

def test_patch_clones_and_replaces_instead_of_stacking(ckpt, core_model, lcm_files):
    weight = ckpt.read_cond_proj(str(lcm_files["ckpt"]))
    assert list(weight.shape) == [320, 256]
    once = ckpt.apply_guidance_embedding(core_model, weight, 8.0)
    assert "diffusion_model.time_embed" not in core_model.object_patches   # input untouched
    twice = ckpt.apply_guidance_embedding(ckpt.apply_guidance_embedding(core_model, weight, 3.0), weight, 8.0)
    x, _, ctx, _ = _inputs(seed=6)
    assert torch.equal(comfy_unet(once, x, 499, ctx), comfy_unet(twice, x, 499, ctx))


def test_lora_on_the_time_embedding_still_applies(ckpt, core_model, lcm_files, comfy):
    """A LoRA that targets time_embed.0 (as LCM-LoRAs do) patches the very layer our wrapper runs."""
    import comfy.sd
    import comfy.utils
    import folder_paths
    lora = comfy.utils.load_torch_file(folder_paths.get_full_path("loras", "tiny-sd15-lcm-kohya.safetensors"))
    guided = ckpt.apply_guidance_embedding(core_model, ckpt.read_cond_proj(str(lcm_files["ckpt"])), 8.0)
    with_lora, _ = comfy.sd.load_lora_for_models(guided, None, lora, 1.0, 0.0)
    assert "diffusion_model.time_embed.0.weight" in with_lora.patches
    x, _, ctx, _ = _inputs(seed=8)
    ref = comfy_unet(guided, x, 499, ctx)
    original = guided.model.diffusion_model.time_embed[0].weight.detach().clone()
    out = comfy_unet(with_lora, x, 499, ctx)
    time_embed = with_lora.model.diffusion_model.time_embed
    assert isinstance(time_embed, ckpt.GuidedTimeEmbed)
    assert not torch.equal(time_embed[0].weight, original)
    assert not torch.allclose(out, ref)


# --------------------------------------------------------------------------------------------------
# The nodes in real graphs
# --------------------------------------------------------------------------------------------------

def lcm_loader_graph(loader: str = "ours", guidance: float = 8.0, ckpt_name: str = LCM_CKPT, prefix: str = "ckpt"):
    g = graphs.lcm_graph(ckpt=ckpt_name, size=64, prefix=prefix, seed=3)
    if loader == "ours":
        g["ckpt"] = {"class_type": "LCMKitCheckpointLoader", "inputs": {"ckpt_name": ckpt_name, "guidance": guidance}}
    elif loader == "patch":
        g["guided"] = {"class_type": "LCMKitGuidanceEmbedding",
                       "inputs": {"model": ["ckpt", 0], "ckpt_name": ckpt_name, "guidance": guidance}}
        g["sampler"]["inputs"]["model"] = ["guided", 0]
    elif loader == "unet":
        g["unet"] = {"class_type": "LCMKitUNetLoader", "inputs": {"unet_name": LCM_UNET, "guidance": guidance}}
        g["sampler"]["inputs"]["model"] = ["unet", 0]
    return g


def run_latent(comfy, base_dir, graph):
    outputs = comfy.run(graph)
    item = outputs["save"]["latents"][0]
    return load_file(str(base_dir / "output" / item["subfolder"] / item["filename"]))["latent_tensor"], outputs


def test_loader_patch_node_and_unet_loader_agree(comfy, base_dir, lcm_files):
    ours, out = run_latent(comfy, base_dir, lcm_loader_graph("ours", prefix="ours"))
    patched, _ = run_latent(comfy, base_dir, lcm_loader_graph("patch", prefix="patch"))
    unet, _ = run_latent(comfy, base_dir, lcm_loader_graph("unet", prefix="unet"))
    core, _ = run_latent(comfy, base_dir, lcm_loader_graph("core", prefix="core"))
    assert torch.allclose(ours, patched, atol=1e-5, rtol=0)
    assert torch.allclose(ours, unet, atol=1e-5, rtol=0)
    assert not torch.allclose(ours, core, atol=1e-3)
    assert status_texts(out.get("ckpt", {}), "warning") == []


def test_guidance_outside_the_trained_range_warns(comfy, base_dir, lcm_files, ckpt):
    assert ckpt.guidance_warning(8.0) is None and ckpt.guidance_warning(3.0) is None
    _, out = run_latent(comfy, base_dir, lcm_loader_graph("ours", guidance=20.0, prefix="g20"))
    (warning,) = status_texts(out["ckpt"], "warning")
    assert "outside the range" in warning and "3-15" in warning


def test_checkpoint_without_embedding_passes_through_with_a_note(comfy, base_dir, lcm_files):
    plain = graphs.SD15
    _, out = run_latent(comfy, base_dir, lcm_loader_graph("ours", ckpt_name=plain, prefix="plain_ours"))
    assert "no guidance embedding" in status_texts(out["ckpt"], "warning")[0]
    patched, out = run_latent(comfy, base_dir, lcm_loader_graph("patch", ckpt_name=plain, prefix="plain_patch"))
    assert "passed through unchanged" in status_texts(out["guided"], "warning")[0]
    core, _ = run_latent(comfy, base_dir, lcm_loader_graph("core", ckpt_name=plain, prefix="plain_core"))
    assert torch.equal(patched, core)


def test_nodes_are_described(pack):
    mod = pack.nodes.lcm_checkpoint_nodes
    for node_id, cls in mod.NODE_CLASS_MAPPINGS.items():
        assert node_id in pack.NODE_CLASS_MAPPINGS
        assert cls.CATEGORY == "LCM Kit/loaders" and len(cls.DESCRIPTION) > 80
        assert pack.NODE_DISPLAY_NAME_MAPPINGS[node_id].endswith("(LCM Kit)")
        for name, spec in cls.INPUT_TYPES()["required"].items():
            assert spec[1].get("tooltip"), (node_id, name)


# --------------------------------------------------------------------------------------------------
# Bad input -> clear errors
# --------------------------------------------------------------------------------------------------

def test_cond_proj_of_the_wrong_size_is_refused(comfy, base_dir, ckpt, core_model):
    with pytest.raises(ckpt.LCMCheckpointError, match=r"shape \[1280, 256\].*takes 320 channels"):
        ckpt.apply_guidance_embedding(core_model, torch.zeros(1280, 256), 8.0)
    bad = base_dir / "models" / "checkpoints" / "bad-cond-proj.safetensors"
    save_file({tiny_models.LCM_CKPT_COND_KEY: torch.zeros(768, 256)}, str(bad))
    g = lcm_loader_graph("patch", ckpt_name="bad-cond-proj.safetensors", prefix="bad")
    g["ckpt"]["inputs"]["ckpt_name"] = graphs.SD15
    comfy.run(g, check=False)
    err = comfy.error()
    assert err and "shape [768, 256]" in err["exception_message"] and "different architectures" in err["exception_message"]


def test_guidance_below_one_is_refused(ckpt, core_model):
    with pytest.raises(ckpt.LCMCheckpointError, match="at least 1.0"):
        ckpt.apply_guidance_embedding(core_model, torch.zeros(320, 256), 0.5)


def _folder(folder, config: dict | None, weights: bool = True):
    folder.mkdir(parents=True)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    if weights:
        save_file({"conv_in.weight": torch.zeros(4, 4, 3, 3)}, str(folder / "diffusion_pytorch_model.safetensors"))
    return folder


def test_vae_folder_is_not_a_unet(ckpt, tmp_path):
    folder = _folder(tmp_path / "vae", {"_class_name": "AutoencoderKL"})
    with pytest.raises(ckpt.LCMCheckpointError, match=r'"_class_name": "AutoencoderKL".*UNet2DConditionModel'):
        ckpt.load_lcm_unet(str(folder))
    # the weights file picked on its own is judged by the config beside it
    with pytest.raises(ckpt.LCMCheckpointError, match="not a diffusers UNet folder"):
        ckpt.load_lcm_unet(str(folder / "diffusion_pytorch_model.safetensors"))


def test_folder_without_config_or_weights_names_what_is_expected(ckpt, tmp_path):
    with pytest.raises(ckpt.LCMCheckpointError, match=r"no config\.json.*diffusion_pytorch_model\.safetensors"):
        ckpt.load_lcm_unet(str(_folder(tmp_path / "a", None)))
    no_weights = _folder(tmp_path / "b", {"_class_name": "UNet2DConditionModel"}, weights=False)
    with pytest.raises(ckpt.LCMCheckpointError, match=r"no weights file \(found: config\.json\)"):
        ckpt.load_lcm_unet(str(no_weights))


@pytest.mark.parametrize("layout", ["diffusers", "ldm"])
def test_unet_file_without_config_loads(ckpt, lcm_files, reference, tmp_path, layout):
    """A UNet-only file with no config.json beside it: diffusers keys (structure counted from the keys),
    or the checkpoint's own `model.diffusion_model.*` part."""
    lonely = tmp_path / f"tiny-lcm-unet-{layout}.safetensors"
    if layout == "diffusers":
        lonely.write_bytes((lcm_files["unet_folder"] / "diffusion_pytorch_model.safetensors").read_bytes())
    else:
        sd = load_file(str(lcm_files["ckpt"]))
        save_file({k: v for k, v in sd.items() if k.startswith("model.diffusion_model.")}, str(lonely))
    loaded = ckpt.load_lcm_unet(str(lonely), 8.0)
    assert loaded.has_guidance_embedding
    x, _, ctx, _ = _inputs(seed=12)
    assert (comfy_unet(loaded.model, x, 259, ctx) - diffusers_unet_eps(reference, x, 259, ctx, 8.0)).abs().max() <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_diffusers_keys_convert_to_comfyuis_unet(ckpt, arch):
    """The key conversion counts any SD1.5/SDXL-family layout from the keys: the diffusers form of the tiny
    UNets converts back to exactly ComfyUI's state dict (core only knows full-size published layouts)."""
    import comfy.utils
    from diffusers import UNet2DConditionModel
    comfy_sd = tiny_models.build_unet(arch).state_dict()
    with torch.device("meta"):   # diffusers' own key set for this config (no weights needed)
        keys = UNet2DConditionModel(**tiny_models.diffusers_unet_config(tiny_models.ARCHS[arch].unet)).state_dict()
    mapping = comfy.utils.unet_to_diffusers(tiny_models.ARCHS[arch].unet)
    diffusers_sd = {k: comfy_sd[mapping[k]] for k in keys}
    converted = ckpt.diffusers_to_ldm_unet(diffusers_sd)
    assert converted.keys() == comfy_sd.keys()
    assert all(torch.equal(converted[k], comfy_sd[k]) for k in comfy_sd)
