"""LCM-LoRA Loader, LoRA Stack and Apply LoRA Stack: file inspection, key coverage in every layout
(kohya, PEFT with and without alpha), parity with diffusers' LoRA loading, LORA_STACK interop, bad
inputs, and runs through the real executor and the real server."""
from __future__ import annotations

import hashlib
import logging

import pytest
import torch

from support import comfy_env, tiny_models
from support.calls import calls_to
from graphs import status_texts

SD15 = "tiny-sd15.safetensors"
LCM_FILES = ["tiny-sd15-lcm-kohya.safetensors", "tiny-sd15-lcm-peft.safetensors"]
STYLE_FILES = ["tiny-sd15-style-kohya.safetensors", "tiny-sd15-style-peft.safetensors",
               "tiny-sd15-style-peft-noalpha.safetensors"]
SDXL_LCM = "tiny-sdxl-lcm-kohya.safetensors"


# --------------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lora(pack):
    """The pack's LoRA modules, as ComfyUI imported them."""
    import sys
    nodes_pkg = sys.modules[pack.__name__ + ".nodes"]
    return nodes_pkg.lora_nodes, nodes_pkg.lora_files


@pytest.fixture(scope="module")
def sd15(comfy):
    """(model, clip) of the tiny SD1.5 checkpoint, loaded once with fp32 UNet weights."""
    import comfy.sd
    import folder_paths
    model, clip, _, _ = comfy.sd.load_checkpoint_guess_config(
        folder_paths.get_full_path("checkpoints", SD15), output_vae=False, output_clip=True,
        model_options={"dtype": torch.float32})
    return model, clip


@pytest.fixture(scope="module")
def sdxl_lora(comfy, base_dir):
    """Only the tiny SDXL LCM-LoRA linked into the loras folder (not the 2 GB SDXL checkpoints)."""
    comfy_env.make_base_dir(base_dir, tiny_models.ensure(f"loras/{SDXL_LCM}"))
    return SDXL_LCM


@pytest.fixture(scope="module")
def bad_loras(comfy, base_dir, sdxl_lora):
    """Broken files under loras/bad/: a truncated and a garbage safetensors, a full checkpoint, a LoRA
    whose keys match no model, each with its bytes' digest (errors must leave them untouched)."""
    from safetensors.torch import save_file
    folder = base_dir / "models" / "loras" / "bad"
    folder.mkdir(exist_ok=True)
    src = base_dir / "models" / "loras" / STYLE_FILES[0]
    data = src.read_bytes()
    (folder / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (folder / "garbage.safetensors").write_bytes(b"\x00" * 64)
    ckpt = folder / "checkpoint.safetensors"
    if not ckpt.exists():
        ckpt.symlink_to((base_dir / "models" / "checkpoints" / SD15).resolve())
    save_file({"lora_unet_foo_bar.lora_down.weight": torch.zeros(4, 16), "lora_unet_foo_bar.lora_up.weight":
               torch.zeros(16, 4)}, str(folder / "nomatch.safetensors"))
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.name != ckpt.name}
    return folder, digests


def unet_output(patcher, seed: int = 0) -> torch.Tensor:
    """The patched UNet's output for a fixed input (weights patched the way sampling patches them)."""
    import comfy.model_management
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 4, 8, 8, generator=g)
    ctx = torch.randn(1, 7, 768, generator=g)
    comfy.model_management.load_models_gpu([patcher])
    unet = patcher.model.diffusion_model
    dtype = next(unet.parameters()).dtype
    with torch.no_grad():
        return unet(x.to(dtype), timesteps=torch.tensor([499.0]), context=ctx.to(dtype)).float().clone()


def lora_key_counts(lora_files, base_dir, name):
    info = lora_files.inspect_file(str(base_dir / "models" / "loras" / name))
    return len(info.unet_modules), len(info.te_modules)


def no_key_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if "lora key not loaded" in r.getMessage() or "match nothing" in r.getMessage()
            or "NOT LOADED" in r.getMessage()]


# --------------------------------------------------------------------------------------------------
# File inspection (header only)
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, family, lcm", [
    ("tiny-sd15-lcm-kohya.safetensors", "SD1.5", True), ("tiny-sd15-lcm-peft.safetensors", "SD1.5", True),
    ("tiny-sd15-style-kohya.safetensors", "SD1.5", False), ("tiny-sd15-style-peft-noalpha.safetensors", "SD1.5", False),
    (SDXL_LCM, "SDXL", True),
])
def test_inspection_reads_architecture_and_lcm_signal_from_the_header(lora, base_dir, sdxl_lora, name, family, lcm):
    _, lora_files = lora
    path = str(base_dir / "models" / "loras" / name)
    info = lora_files.inspect_file(path)
    assert info.kind == "lora" and info.family == family and info.looks_like_lcm_lora is lcm
    assert info.unet_modules and info.te_modules
    import comfy.utils as comfy_utils
    with calls_to(lora_files.read_safetensors_header, comfy_utils.load_torch_file) as calls:
        assert lora_files.inspect_file(path) is info, "cached by (path, size, mtime)"
    assert calls[lora_files.read_safetensors_header] == 0 and calls[comfy_utils.load_torch_file] == 0


def test_inspection_tells_a_checkpoint_from_a_lora(lora, base_dir):
    _, lora_files = lora
    info = lora_files.inspect_file(str(base_dir / "models" / "checkpoints" / SD15))
    assert info.kind == "model"


# --------------------------------------------------------------------------------------------------
# Every layout, through the loader and the stack: every key applied, nothing left over
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", LCM_FILES + STYLE_FILES)
@pytest.mark.parametrize("node", ["loader", "stack"])
def test_every_key_of_every_layout_is_applied(lora, sd15, base_dir, caplog, node, name):
    lora_nodes, lora_files = lora
    model, clip = sd15
    caplog.set_level(logging.INFO)
    if node == "loader":
        out = lora_nodes.LCMLoraLoader().load(model, name, 1.0, clip=clip)
    else:
        stack = lora_nodes.LCMLoraStack().stack(lora_name_1=name, strength_model_1=1.0, strength_clip_1=1.0,
                                                **_empty_rows(lora_nodes, start=2))["result"][0]
        out = lora_nodes.LCMApplyLoraStack().apply(model, stack, clip=clip)
    new_model, new_clip = out["result"]
    unet_n, te_n = lora_key_counts(lora_files, base_dir, name)
    assert len(new_model.patches) == unet_n and len(new_clip.patcher.patches) == te_n
    assert status_texts(out["ui"])[-1].startswith(f"{name}: {unet_n} model keys, {te_n} text-encoder keys")
    assert not no_key_warnings(caplog)
    assert not model.patches and not clip.patcher.patches, "the inputs are never modified"


def _empty_rows(lora_nodes, start=1):
    rows = {}
    for i in range(start, lora_nodes.STACK_ROWS + 1):
        rows.update({f"lora_name_{i}": "None", f"strength_model_{i}": 1.0, f"strength_clip_{i}": 1.0})
    return rows


def test_key_map_is_cores_plus_plain_attention_aliases(pack, sd15):
    """Core's own map, unchanged, plus `….to_q` / `….to_out(.0)` for core's `….processor.to_q` entries,
    pointing at the same weights (no second key mapper)."""
    import comfy.lora
    model, clip = sd15
    core = comfy.lora.model_lora_keys_clip(clip.cond_stage_model, comfy.lora.model_lora_keys_unet(model.model, {}))
    ours = pack.nodes.lora_apply.lora_key_map(model, clip)
    assert all(ours[k] == v for k, v in core.items())
    extra = {k: v for k, v in ours.items() if k not in core}
    assert extra and "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0" in extra
    for k, v in extra.items():
        base = k[:-2] if k.endswith(".to_out.0") else k
        head, _, proj = base.rpartition(".to_")
        assert core[f"{head}.processor.to_{proj}"] == v


def test_loader_sets_lcm_model_sampling(lora, sd15, pack):
    import sys
    lora_nodes, _ = lora
    model, clip = sd15
    out_model, _ = lora_nodes.LCMLoraLoader().load(model, LCM_FILES[0], 1.0, clip=clip)["result"]
    lcm_sampling = sys.modules[pack.__name__ + ".nodes.lcm_sampling"]
    assert isinstance(out_model.get_model_object("model_sampling"), lcm_sampling.LCMModelSampling)
    assert not isinstance(model.get_model_object("model_sampling"), lcm_sampling.LCMModelSampling)


def test_output_changes_with_strength(lora, sd15):
    lora_nodes, _ = lora
    model, clip = sd15
    base = unet_output(model)
    outs = {}
    for s in (0.5, 1.0):
        stack = [(STYLE_FILES[1], s, s)]
        outs[s] = unet_output(lora_nodes.LCMApplyLoraStack().apply(model, stack, clip=clip)["result"][0])
    d_half, d_full = (outs[0.5] - base).abs().max().item(), (outs[1.0] - base).abs().max().item()
    assert d_half > 1e-3 and d_full > 1e-3 and (outs[1.0] - outs[0.5]).abs().max().item() > 1e-3
    # LoRA deltas are linear in strength: half the strength, about half the change.
    assert 0.3 < d_half / d_full < 0.7


# --------------------------------------------------------------------------------------------------
# Parity with diffusers (the numerical reference)
# --------------------------------------------------------------------------------------------------

# Each layout against the reference that applies to it (README, LoRAs: "alpha"):
# - kohya `.alpha` tensors, PEFT without alpha, PEFT with alpha in diffusers' adapter metadata: diffusers'
#   own load_lora_weights path (lora_state_dict, then load_lora_into_unet with the alphas or metadata it finds);
# - PEFT with `.alpha` tensors (which diffusers ignores): ComfyUI's and kohya's alpha/rank, i.e. the same
#   tensors in kohya layout read by diffusers.
DIFFUSERS_SAVED = {   # peft.LoraConfig fields of the LoRAs written with diffusers' save_lora_weights
    "alpha-half": {"r": 4, "lora_alpha": 2},
    "alpha-pattern": {"r": 4, "lora_alpha": 8, "alpha_pattern": {"attn2.to_k": 2, "proj_out": 16}},
    "rslora": {"r": 4, "lora_alpha": 4, "use_rslora": True},
}


@pytest.fixture(scope="module")
def diffusers_saved(comfy, base_dir):
    """loras/diffusers/style-<variant>.safetensors: the style LoRA's tensors saved the way diffusers' training
    scripts save them (StableDiffusionLoraLoaderMixin.save_lora_weights with each component's LoraConfig as
    adapter metadata); names relative to the loras folder."""
    from diffusers.loaders import StableDiffusionLoraLoaderMixin
    from peft import LoraConfig
    from safetensors.torch import load_file
    sd = load_file(str(base_dir / "models" / "loras" / "tiny-sd15-style-peft-noalpha.safetensors"))
    parts = {p: {k[len(p) + 1:]: v for k, v in sd.items() if k.startswith(p + ".")} for p in ("unet", "text_encoder")}
    folder = base_dir / "models" / "loras" / "diffusers"
    names = {}
    for variant, fields in DIFFUSERS_SAVED.items():
        meta = {p: LoraConfig(target_modules=sorted({k.rsplit(".lora_", 1)[0] for k in layers}), **fields).to_dict()
                for p, layers in parts.items()}
        StableDiffusionLoraLoaderMixin.save_lora_weights(
            str(folder), unet_lora_layers=parts["unet"], text_encoder_lora_layers=parts["text_encoder"],
            unet_lora_adapter_metadata=meta["unet"], text_encoder_lora_adapter_metadata=meta["text_encoder"],
            weight_name=f"style-{variant}.safetensors")
        names[variant] = f"diffusers/style-{variant}.safetensors"
    return names


def diffusers_with_loras(model, base_dir, files: list[str], weights: list[float]):
    """diffusers' UNet with the very same weights and `files` loaded as its load_lora_weights loads them."""
    from diffusers.loaders import StableDiffusionLoraLoaderMixin as Loader
    unet_output(model)   # puts the unpatched weights back in the module a patched clone shares
    ref = tiny_models.diffusers_unet("sd15", model.model.diffusion_model.state_dict())
    for i, name in enumerate(files):
        sd, alphas, metadata = Loader.lora_state_dict(str(base_dir / "models" / "loras" / name), return_lora_metadata=True)
        Loader.load_lora_into_unet(sd, alphas, ref, adapter_name=f"a{i}", metadata=metadata)
    ref.set_adapters([f"a{i}" for i in range(len(files))], weights)
    return ref


def diffusers_output(ref) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)    # unet_output's input
    x, ctx = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 7, 768, generator=g)
    with torch.no_grad():
        return ref(x, torch.tensor([499.0]), encoder_hidden_states=ctx).sample


def ours_with_loras(lora_nodes, model, files: list[str], weights: list[float]):
    out = lora_nodes.LCMApplyLoraStack().apply(model, [(f, w, w) for f, w in zip(files, weights)])
    return unet_output(out["result"][0]), status_texts(out["ui"])


@pytest.mark.parametrize("files", [
    ["tiny-sd15-lcm-kohya.safetensors", "tiny-sd15-style-kohya.safetensors"],
    ["tiny-sd15-lcm-kohya.safetensors", "tiny-sd15-style-peft-noalpha.safetensors"],
    *[[f"diffusers:{v}"] for v in DIFFUSERS_SAVED],
])
def test_stack_matches_diffusers_load_lora_weights(lora, sd15, base_dir, diffusers_saved, files):
    """Our stack vs diffusers: UNet2DConditionModel (same weights) + each file as load_lora_weights loads it
    (kohya alphas from the tensors, PEFT alpha from the adapter metadata), set_adapters with the same strengths:
    max |Δ| ≤ 1e-4 in fp32."""
    lora_nodes, _ = lora
    model, _ = sd15
    files = [diffusers_saved[f.split(":")[1]] if f.startswith("diffusers:") else f for f in files]
    weights = [1.0, 0.8][-len(files):]
    plain = unet_output(model)   # also restores the unpatched weights in the shared module
    ours, lines = ours_with_loras(lora_nodes, model, files, weights)
    theirs = diffusers_output(diffusers_with_loras(model, base_dir, files, weights))
    print(f"{files}: max |ours - diffusers| = {(ours - theirs).abs().max().item():.2e} "
          f"(LoRA effect {(ours - plain).abs().max().item():.2e})")
    assert (ours - plain).abs().max().item() > 3e-3, "the LoRAs must change the output (well beyond the tolerance)"
    assert (ours - theirs).abs().max().item() <= 1e-4
    if files[0].startswith("diffusers/"):
        assert "alpha of" in lines[0] and "layers from its diffusers metadata" in lines[0]


def test_metadata_alpha_changes_the_result(lora, sd15, diffusers_saved):
    """The metadata is what makes these files differ: alpha r/2 halves the LoRA's effect against no alpha."""
    lora_nodes, _ = lora
    model, _ = sd15
    plain = unet_output(model)
    half, _ = ours_with_loras(lora_nodes, model, [diffusers_saved["alpha-half"]], [1.0])
    full, _ = ours_with_loras(lora_nodes, model, ["tiny-sd15-style-peft-noalpha.safetensors"], [1.0])
    assert 0.4 < (half - plain).abs().max().item() / (full - plain).abs().max().item() < 0.6


def test_peft_alpha_tensors_are_alpha_over_rank_like_core_and_kohya(lora, sd15, base_dir):
    """tiny-sd15-style-peft and -kohya hold the same tensors and `.alpha` (rank/2) in the two layouts. In PEFT
    layout the tensors are applied as alpha/rank, as core's LoraLoader does and kohya means them: the kohya
    twin's result, which diffusers matches; diffusers itself ignores `.alpha` tensors in PEFT layout."""
    lora_nodes, _ = lora
    model, _ = sd15
    peft, kohya = "tiny-sd15-style-peft.safetensors", "tiny-sd15-style-kohya.safetensors"
    ours_peft, _ = ours_with_loras(lora_nodes, model, [peft], [1.0])
    ours_kohya, _ = ours_with_loras(lora_nodes, model, [kohya], [1.0])
    assert (ours_peft - ours_kohya).abs().max().item() <= 1e-6
    assert (ours_peft - diffusers_output(diffusers_with_loras(model, base_dir, [kohya], [1.0]))).abs().max() <= 1e-4
    ignoring = diffusers_output(diffusers_with_loras(model, base_dir, [peft], [1.0]))
    assert (ours_peft - ignoring).abs().max().item() > 1e-3, "diffusers reads this file with scale 1"


def test_broken_adapter_metadata_is_a_clear_error(lora, sd15, base_dir):
    from safetensors.torch import load_file, save_file
    lora_nodes, _ = lora
    folder = base_dir / "models" / "loras" / "diffusers"
    folder.mkdir(exist_ok=True)
    sd = load_file(str(base_dir / "models" / "loras" / "tiny-sd15-style-peft-noalpha.safetensors"))
    save_file(sd, str(folder / "broken-metadata.safetensors"), metadata={"lora_adapter_metadata": "{not json"})
    with pytest.raises(ValueError, match=r"broken-metadata\.safetensors'?: its safetensors metadata "
                                         r"'lora_adapter_metadata' is not valid"):
        lora_nodes.LCMApplyLoraStack().apply(sd15[0], [("diffusers/broken-metadata.safetensors", 1.0, 1.0)])


# --------------------------------------------------------------------------------------------------
# LORA_STACK interop (Efficiency Nodes, Comfyroll: a list of 3-tuples, "None" rows dropped)
# --------------------------------------------------------------------------------------------------

def test_stack_from_other_packs_works_and_ours_unpacks_as_3_tuples(lora, sd15, caplog):
    import comfy.sd
    import comfy.utils
    import folder_paths
    lora_nodes, _ = lora
    model, clip = sd15
    # As Efficiency's "LoRA Stacker" and Comfyroll's "CR LoRA Stack" build it: tuples, "None" rows kept.
    theirs = [(STYLE_FILES[0], 0.8, 0.5), ("None", 1.0, 1.0)]
    ours = lora_nodes.LCMLoraStack().stack(
        lora_stack=theirs, **{**_empty_rows(lora_nodes), "lora_name_2": LCM_FILES[0], "strength_model_2": 1.0,
                              "strength_clip_2": 0.0})["result"][0]
    assert ours == [(STYLE_FILES[0], 0.8, 0.5), (LCM_FILES[0], 1.0, 0.0)], "upstream rows first, 'None' dropped"
    assert isinstance(ours, list) and all(isinstance(e, tuple) and len(e) == 3 for e in ours)

    # Their kind of consumer: unpack each entry and call core's loader (what those packs' apply nodes do).
    m_core, c_core = model, clip
    for lora_name, strength_model, strength_clip in ours:
        sd = comfy.utils.load_torch_file(folder_paths.get_full_path_or_raise("loras", lora_name), safe_load=True)
        m_core, c_core = comfy.sd.load_lora_for_models(m_core, c_core, sd, strength_model, strength_clip)
    m_ours, c_ours = lora_nodes.LCMApplyLoraStack().apply(model, theirs + [(LCM_FILES[0], 1.0, 0.0)],
                                                          clip=clip)["result"]
    assert torch.equal(unet_output(m_core), unet_output(m_ours)), "kohya files: same result as core's loader"
    assert set(c_core.patcher.patches) == set(c_ours.patcher.patches)


def test_empty_and_none_stacks_pass_through(lora, sd15):
    lora_nodes, _ = lora
    model, clip = sd15
    for stack in (None, [], [("None", 1.0, 1.0)]):
        out = lora_nodes.LCMApplyLoraStack().apply(model, stack, clip=clip)
        assert out["result"] == (model, clip)
    assert lora_nodes.LCMLoraStack().stack(**_empty_rows(lora_nodes))["result"] == ([],)


def test_malformed_stack_entry_is_a_clear_error(lora, sd15):
    lora_nodes, _ = lora
    with pytest.raises(ValueError, match=r"entry 0 .*\(lora_name, strength_model, strength_clip\)"):
        lora_nodes.LCMApplyLoraStack().apply(sd15[0], [(STYLE_FILES[0], 1.0)])


# --------------------------------------------------------------------------------------------------
# auto: the LCM-LoRA that fits, chosen by content, not by name
# --------------------------------------------------------------------------------------------------

def test_auto_picks_the_lcm_lora_by_content_not_by_name(pack, sd15, base_dir, sdxl_lora, tmp_path):
    from safetensors.torch import load_file, save_file
    find_lcm_lora = pack.nodes.lcm_lora_auto.find_lcm_lora
    loras = base_dir / "models" / "loras"
    decoy = {  # misleading names: the style LoRA called lcm, the LCM-LoRA called something else
        "lcm-lora-sdv1-5.safetensors": loras / STYLE_FILES[0],
        "lcm-lora-sdxl.safetensors": loras / SDXL_LCM,
        "my-helper.safetensors": loras / LCM_FILES[1],
    }
    files = {n: str(p) for n, p in decoy.items()}
    (tmp_path / "broken.safetensors").write_bytes(b"\x01" * 20)
    files["broken.safetensors"] = str(tmp_path / "broken.safetensors")
    # A kohya-trained LoCon covers as many layers as an LCM-LoRA; its training metadata gives it away.
    locon = tmp_path / "a-locon.safetensors"
    save_file(load_file(str(loras / LCM_FILES[0])), str(locon), metadata={"ss_network_module": "networks.lora"})
    files[locon.name] = str(locon)
    assert find_lcm_lora(sd15[0], files) == "my-helper.safetensors"

    del files["my-helper.safetensors"], files[locon.name]
    with pytest.raises(ValueError, match=r"no LCM-LoRA for SD1\.5.*lcm-lora-sdxl\.safetensors \(SDXL\)"):
        find_lcm_lora(sd15[0], files)


def is_sd15_lcm_file(name: str, base_dir) -> bool:
    """`name` in the loras folder is (a link to) one of the tiny SD1.5 LCM-LoRAs; other tests add links under
    public names such as lcm-lora-sdv1-5.safetensors to the same files."""
    return (base_dir / "models" / "loras" / name).resolve().name in LCM_FILES


def test_loader_auto_uses_the_loras_folder(lora, sd15, base_dir, sdxl_lora, bad_loras, caplog):
    lora_nodes, lora_files = lora
    model, clip = sd15
    caplog.set_level(logging.INFO)
    out = lora_nodes.LCMLoraLoader().load(model, "auto", 1.0, clip=clip)
    text = status_texts(out["ui"])[0]
    picked = text[len("auto: "):].split(":")[0]
    assert text.startswith("auto: ") and is_sd15_lcm_file(picked, base_dir), "an SD1.5 LCM-LoRA, not SDXL or a style LoRA"
    assert len(out["result"][0].patches) == lora_key_counts(lora_files, base_dir, picked)[0]
    assert not no_key_warnings(caplog)


@pytest.mark.slow
@pytest.mark.parametrize("ckpt", ["tiny-sdxl.safetensors", "tiny-ssd1b.safetensors"])
def test_auto_on_the_sdxl_family(lora, sdxl_models, base_dir, caplog, ckpt):
    """SDXL: auto picks an SDXL LCM-LoRA (the SD1.5 ones are for another architecture). SSD-1B has a
    subset of SDXL's layers: an SDXL LCM-LoRA is not a fit for auto (it names the near miss); picked by
    name it applies to the layers SSD-1B has and says how many matched nothing."""
    import comfy.sd
    import folder_paths
    lora_nodes, lora_files = lora
    caplog.set_level(logging.INFO)
    model = comfy.sd.load_checkpoint_guess_config(folder_paths.get_full_path("checkpoints", ckpt),
                                                  output_vae=False, output_clip=False)[0]
    with pytest.raises(ValueError, match=r"this LoRA is for SD1\.5, the model is SDXL"):
        lora_nodes.LCMLoraLoader().load(model, LCM_FILES[0], 1.0)
    if ckpt == "tiny-sdxl.safetensors":
        out = lora_nodes.LCMLoraLoader().load(model, "auto", 1.0)
        picked = status_texts(out["ui"])[0][len("auto: "):].split(":")[0]
        # (or a link to one of them under a public name, which the example tests add)
        assert (base_dir / "models" / "loras" / picked).resolve().name in (
            "tiny-sdxl-lcm-kohya.safetensors", "tiny-sdxl-lcm-peft.safetensors")
        modules = lora_files.inspect_file(str(base_dir / "models" / "loras" / picked)).unet_modules
        # The tiny SDXL LoRAs name label_emb under both of diffusers' names for it: one weight each.
        weights = {m.replace("class_embedding", "add_embedding") for m in modules}
        assert len(out["result"][0].patches) == len(weights) < len(modules)
        assert not no_key_warnings(caplog)
    else:
        with pytest.raises(ValueError, match=r"no LCM-LoRA for SDXL .*tiny-sdxl-lcm-kohya\.safetensors \(fits \d+%"):
            lora_nodes.LCMLoraLoader().load(model, "auto", 1.0)
        out = lora_nodes.LCMLoraLoader().load(model, SDXL_LCM, 1.0)
        assert "match nothing in this model" in status_texts(out["ui"])[0] and out["result"][0].patches


# --------------------------------------------------------------------------------------------------
# Bad input: a clear ValueError naming the file and the fix; nothing read that need not be
# --------------------------------------------------------------------------------------------------

def tensor_reads():
    """Counts ComfyUI's tensor loads (`comfy.utils.load_torch_file`, the one way the pack reads a LoRA's tensors)."""
    import comfy.utils
    return calls_to(comfy.utils.load_torch_file)


@pytest.mark.parametrize("name, message", [
    (SDXL_LCM, rf"{SDXL_LCM}: this LoRA is for SDXL, the model is SD1\.5\. Pick a LoRA trained for SD1\.5"),
    ("bad/checkpoint.safetensors", r"bad/checkpoint\.safetensors is a full model .* not a LoRA: load it with Load Checkpoint"),
    ("bad/truncated.safetensors", r"bad/truncated\.safetensors.*truncated: .*Copy or download it again"),
    ("bad/garbage.safetensors", r"bad/garbage\.safetensors.*corrupt or not a safetensors file"),
    ("../checkpoints/tiny-sd15.safetensors", r"points outside the loras folder"),
    ("/etc/passwd", r"points outside the loras folder"),
    ("missing.safetensors", r"'missing\.safetensors' not found in the loras folder .*put the file there"),
])
@pytest.mark.parametrize("node", ["loader", "stack"])
def test_bad_input_is_rejected_before_reading_tensors(lora, sd15, bad_loras, node, name, message):
    lora_nodes, lora_files = lora
    model, clip = sd15
    folder, digests = bad_loras
    with tensor_reads() as calls, pytest.raises(ValueError, match=message):
        if node == "loader":
            lora_nodes.LCMLoraLoader().load(model, name, 1.0, clip=clip)
        else:
            lora_nodes.LCMApplyLoraStack().apply(model, [(name, 1.0, 1.0)], clip=clip)
    assert sum(calls.values()) == 0, "rejected from the header alone"
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()
            if p.name in digests} == digests, "nothing on disk touched"


def test_lora_matching_no_key_is_an_error(lora, sd15, bad_loras):
    lora_nodes, _ = lora
    with pytest.raises(ValueError, match=r"bad/nomatch\.safetensors: none of its 1 layers matches this model"):
        lora_nodes.LCMApplyLoraStack().apply(sd15[0], [("bad/nomatch.safetensors", 1.0, 1.0)], clip=sd15[1])


def test_strength_zero_applies_nothing_and_reads_nothing(lora, sd15):
    lora_nodes, lora_files = lora
    model, clip = sd15
    import comfy.utils as comfy_utils
    with calls_to(comfy_utils.load_torch_file, lora_files.read_safetensors_header) as calls:
        loader_out = lora_nodes.LCMLoraLoader().load(model, "auto", 0.0, clip=clip)
        stack_out = lora_nodes.LCMApplyLoraStack().apply(model, [(LCM_FILES[0], 0.0, 0.0), (STYLE_FILES[0], 0, 0)],
                                                         clip=clip)
    assert calls[comfy_utils.load_torch_file] == 0 and calls[lora_files.read_safetensors_header] == 0
    assert not loader_out["result"][0].patches and loader_out["result"][1] is clip
    assert stack_out["result"] == (model, clip)
    assert all("skipped: strength 0" in line for line in status_texts(stack_out["ui"]) + status_texts(loader_out["ui"]))


def test_model_only_stack_skips_the_text_encoder_part(lora, sd15, base_dir, caplog):
    lora_nodes, lora_files = lora
    model, _ = sd15
    caplog.set_level(logging.INFO)
    out = lora_nodes.LCMApplyLoraStack().apply(model, [(STYLE_FILES[1], 1.0, 1.0)])
    unet_n, te_n = lora_key_counts(lora_files, base_dir, STYLE_FILES[1])
    assert len(out["result"][0].patches) == unet_n and out["result"][1] is None
    assert f"text-encoder part ({te_n} layers) skipped: no CLIP connected" in status_texts(out["ui"])[0]
    assert not no_key_warnings(caplog)


# --------------------------------------------------------------------------------------------------
# Node surface, the real executor, the real server
# --------------------------------------------------------------------------------------------------

def test_nodes_describe_themselves(lora, pack):
    lora_nodes, _ = lora
    for node_id, cls in lora_nodes.NODE_CLASS_MAPPINGS.items():
        assert pack.NODE_CLASS_MAPPINGS[node_id] is cls
        assert pack.NODE_DISPLAY_NAME_MAPPINGS[node_id].endswith(" (LCM Kit)")
        assert cls.CATEGORY == "LCM Kit/loaders" and len(cls.DESCRIPTION) > 40
        inputs = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, spec in inputs.get(section, {}).items():
                assert len(spec[1].get("tooltip", "")) > 20, f"{node_id}.{name} has no tooltip"
    rows = list(lora_nodes.LCMLoraStack.INPUT_TYPES()["required"])
    assert rows == [f"{w}_{i}" for i in range(1, 5) for w in ("lora_name", "strength_model", "strength_clip")], \
        "saved workflows store these widgets positionally: never reorder them"


def lora_graph(prefix: str) -> dict:
    """CheckpointLoaderSimple -> LCM-LoRA Loader (auto) -> LoRA Stack -> Apply LoRA Stack -> core KSampler(lcm)."""
    stack_rows = {"lora_name_1": STYLE_FILES[1], "strength_model_1": 0.8, "strength_clip_1": 0.8}
    for i in range(2, 5):
        stack_rows.update({f"lora_name_{i}": "None", f"strength_model_{i}": 1.0, f"strength_clip_{i}": 1.0})
    return {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": SD15}},
        "lcm": {"class_type": "LCMKitLoraLoader", "inputs": {"model": ["ckpt", 0], "clip": ["ckpt", 1],
                                                              "lora_name": "auto", "strength": 1.0}},
        "stack": {"class_type": "LCMKitLoraStack", "inputs": stack_rows},
        "apply": {"class_type": "LCMKitApplyLoraStack", "inputs": {"model": ["lcm", 0], "clip": ["lcm", 1],
                                                                    "lora_stack": ["stack", 0]}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "a tiny red fox", "clip": ["apply", 1]}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["apply", 1]}},
        "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "ks": {"class_type": "KSampler", "inputs": {
            "model": ["apply", 0], "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0],
            "seed": 1, "steps": 2, "cfg": 1.0, "sampler_name": "lcm", "scheduler": "simple", "denoise": 1.0}},
        "decode": {"class_type": "VAEDecode", "inputs": {"samples": ["ks", 0], "vae": ["ckpt", 2]}},
        "save": {"class_type": "SaveImage", "inputs": {"images": ["decode", 0], "filename_prefix": prefix}},
    }


def test_graph_runs_through_the_real_executor(comfy, lora, base_dir, caplog):
    _, lora_files = lora
    caplog.set_level(logging.INFO)
    outputs = comfy.run(lora_graph("inproc_lora_nodes"))
    assert outputs["save"]["images"]
    loader_text, apply_text = status_texts(outputs["lcm"])[0], status_texts(outputs["apply"])[0]
    assert loader_text.startswith("auto: ") and is_sd15_lcm_file(loader_text[6:].split(":")[0], base_dir)
    unet_n, te_n = lora_key_counts(lora_files, base_dir, STYLE_FILES[1])
    assert apply_text.startswith(f"{STYLE_FILES[1]}: {unet_n} model keys, {te_n} text-encoder keys")
    assert not no_key_warnings(caplog)


@pytest.mark.server
def test_graph_runs_on_the_real_server(server, base_dir):
    prompt_id = server.queue(lora_graph("server_lora_nodes"), "lora-test")
    hist = server.wait_history(prompt_id)
    assert hist["status"]["status_str"] == "success", hist["status"]
    assert status_texts(hist["outputs"]["apply"])[0].startswith(f"{STYLE_FILES[1]}: ")
    assert "lora key not loaded" not in server.log_text()
