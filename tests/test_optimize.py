"""Compile, Offload and Fast Decode (issue #5), Fast Encode (issue #16), through ComfyUI's real executor on the tiny models.

Compile budget: the tiny SD1.5 UNet is compiled with CPU inductor (8×8 latents; inductor's cache on disk makes a
compile after `torch._dynamo.reset()` quick); a test that counts recompiles runs its baseline first (`warm`).
Compilations are counted with dynamo's own counter (`torch._dynamo.utils.counters["stats"]["unique_graphs"]`): every
compile and recompile adds one.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import graphs

STYLE = "tiny-sd15-style-kohya.safetensors"
LCM = "tiny-sd15-lcm-kohya.safetensors"
COMPILE = {"mode": "default", "backend": "inductor", "dynamic": "auto", "fullgraph": False, "channels_last": False}
NODE_IDS = ["LCMKitCompile", "LCMKitOffload", "LCMKitFastDecode", "LCMKitFastEncode"]
# Saved workflows store widget values positionally: this order is fixed forever.
WIDGET_ORDER = {
    "LCMKitCompile": ["model", "mode", "backend", "dynamic", "fullgraph", "channels_last", "stack_on_builtin",
                      "attention"],
    "LCMKitOffload": ["model", "clip", "vae", "text_encoder", "vae_device", "model_between_runs"],
    "LCMKitFastDecode": ["samples", "model"],
    "LCMKitFastEncode": ["pixels", "model"],
}


@pytest.fixture(scope="module")
def compiler(pack):
    return pack.nodes.torch_compile


@pytest.fixture(scope="module")
def offload(pack):
    return pack.nodes.offload


@pytest.fixture(scope="module")
def taesd(pack):
    return pack.nodes.taesd


def _latent(comfy_outputs: dict, base_dir) -> torch.Tensor:
    (entry,) = comfy_outputs["save"]["latents"]
    return load_file(str(base_dir / "output" / entry["subfolder"] / entry["filename"]))["latent_tensor"]


def _run(comfy, base_dir, compiler, **graph_args) -> tuple[torch.Tensor, int]:
    """Runs a compile_graph; returns (latent, graphs dynamo compiled during the run)."""
    before = compiler.compile_counter()
    out = comfy.run(graphs.compile_graph(**graph_args))
    return _latent(out, base_dir), compiler.compile_counter() - before


@pytest.fixture
def warm(comfy, base_dir, compiler):
    """The baseline run under LCMKitCompile (tiny SD1.5 + a style LoRA at 1.0, 8×8 latents), run by every test that
    compares against it: it compiles here when this process has not compiled it yet (inductor's cache on disk makes
    that quick), so no test depends on another having run first."""
    return _run(comfy, base_dir, compiler, loras=[(STYLE, 1.0)], compile=COMPILE)


# ---------------------------------------------------------------------------------------------
# Node surface
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("node_id", NODE_IDS)
def test_node_has_description_category_tooltips_and_fixed_widget_order(pack, node_id):
    cls = pack.NODE_CLASS_MAPPINGS[node_id]
    assert cls.CATEGORY == "LCM Kit/optimize"
    assert len(cls.DESCRIPTION) > 80
    assert pack.NODE_DISPLAY_NAME_MAPPINGS[node_id].endswith("(LCM Kit)")
    inputs = cls.INPUT_TYPES()
    spec = {**inputs["required"], **inputs.get("optional", {})}
    assert list(spec) == WIDGET_ORDER[node_id]
    for name, (_, options) in spec.items():
        assert len(options.get("tooltip", "")) > 20, f"{node_id}.{name} has no useful tooltip"


# ---------------------------------------------------------------------------------------------
# Compile
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow   # an inductor compile (tens of seconds on 2 cores)
def test_compiled_model_gives_the_uncompiled_result(comfy, base_dir, compiler):
    torch._dynamo.reset()     # whatever ran before, this run must compile
    compiled_latent, graphs_compiled = _run(comfy, base_dir, compiler, loras=[(STYLE, 1.0)], compile=COMPILE)
    assert graphs_compiled > 0, "the first run under LCMKitCompile compiled nothing"
    eager, _ = _run(comfy, base_dir, compiler, loras=[(STYLE, 1.0)])
    assert torch.allclose(compiled_latent, eager, atol=1e-3), (compiled_latent - eager).abs().max()


@pytest.mark.slow   # an inductor compile (tens of seconds on 2 cores)
@pytest.mark.parametrize("strength", [0.5, 0.0])
def test_lora_strength_change_applies_exactly_without_recompiling(comfy, base_dir, compiler, warm, strength):
    compiled, new_graphs = _run(comfy, base_dir, compiler, loras=[(STYLE, strength)], compile=COMPILE)
    assert new_graphs == 0
    eager, _ = _run(comfy, base_dir, compiler, loras=[(STYLE, strength)])
    assert torch.allclose(compiled, eager, atol=1e-3), (compiled - eager).abs().max()
    # The LoRA really acts under compile: another strength gives another image.
    assert (compiled - warm[0]).abs().max() > 0.05


@pytest.mark.slow   # an inductor compile (tens of seconds on 2 cores)
@pytest.mark.parametrize("loras", [[], [(LCM, 1.0)], [(LCM, 0.8), (STYLE, 0.6)]], ids=["none", "other", "two"])
def test_lora_stack_change_does_not_recompile(comfy, base_dir, compiler, warm, loras):
    compiled, new_graphs = _run(comfy, base_dir, compiler, loras=loras, compile=COMPILE)
    assert new_graphs == 0
    eager, _ = _run(comfy, base_dir, compiler, loras=loras)
    assert torch.allclose(compiled, eager, atol=1e-3), (compiled - eager).abs().max()


@pytest.mark.slow   # an inductor compile (tens of seconds on 2 cores)
@pytest.mark.parametrize("change", [{"seed": 99}, {"text": "a lighthouse at dusk, oil painting"}])
def test_prompt_or_seed_change_does_not_recompile(comfy, base_dir, compiler, warm, change):
    compiled, new_graphs = _run(comfy, base_dir, compiler, loras=[(STYLE, 1.0)], compile=COMPILE, **change)
    assert new_graphs == 0
    assert (compiled - warm[0]).abs().max() > 0.05


@pytest.mark.slow   # dynamo traces the UNet at three resolutions (tens of seconds on 2 cores)
def test_new_resolution_recompiles_at_most_once_with_dynamic_auto(comfy, base_dir, compiler):
    """Dynamo's `eager` backend: recompiles are dynamo's decision whatever the backend, and an inductor
    compile with dynamic shapes takes ≈40 s on 2 cores."""
    settings = {**COMPILE, "backend": "eager"}
    torch._dynamo.reset()     # another test may have traced this setting at this size already
    _, first = _run(comfy, base_dir, compiler, loras=[(STYLE, 1.0)], compile=settings, size=64)
    assert first > 0
    _, first_change = _run(comfy, base_dir, compiler, loras=[(STYLE, 1.0)], compile=settings, size=128)
    # Each compiled frame recompiles once, with dynamic shapes (graph breaks make several frames) ...
    assert 0 < first_change <= first
    # ... and from then on every resolution runs the dynamic graphs.
    _, second_change = _run(comfy, base_dir, compiler, loras=[(STYLE, 1.0)], compile=settings, size=96)
    assert second_change == 0


@pytest.mark.parametrize("attention, one_graph", [("auto", True), ("pytorch", True), ("comfyui", False)])
def test_attention_auto_compiles_the_unet_in_one_graph_where_comfyui_attention_breaks_it(
        comfy, base_dir, compiler, attention, one_graph):
    """The test bed runs ComfyUI with --cpu, where it picks sub-quadratic attention: it asks for free memory
    in every attention block, which ends a dynamo graph there. With attention auto (the default) the
    compiled model uses PyTorch SDPA instead: one graph, and the same result as the uncompiled model."""
    import comfy.ldm.modules.attention as attention_module
    if attention_module.optimized_attention not in compiler.GRAPH_BREAKING_ATTENTION:
        pytest.skip("ComfyUI picked an attention here that does not break graphs")
    settings = {**COMPILE, "backend": "eager", "attention": attention}   # graphs are dynamo's; eager is quick
    run = dict(loras=[(STYLE, 0.6)], seed=11)
    torch._dynamo.reset()     # count this setting's graphs from scratch
    compiled, graphs_compiled = _run(comfy, base_dir, compiler, compile=settings, **run)
    eager, _ = _run(comfy, base_dir, compiler, compile=None, **run)
    assert (graphs_compiled == 1) is one_graph and graphs_compiled >= 1, graphs_compiled
    assert torch.allclose(compiled, eager, atol=1e-4), (compiled - eager).abs().max()


def test_attention_auto_leaves_an_override_from_another_pack_alone(compiler):
    def theirs(func, *args, **kwargs):
        return func(*args, **kwargs)
    args = (None, None, None, None, None, {"optimized_attention_override": theirs})
    assert compiler.with_compile_attention("auto", args, {})[0][5]["optimized_attention_override"] is theirs
    assert compiler.with_compile_attention("pytorch", args, {})[0][5]["optimized_attention_override"] is compiler._sdpa_attention
    assert args[5]["optimized_attention_override"] is theirs          # a copy is changed, never the caller's
    assert compiler.with_compile_attention("comfyui", args[:5] + ({},), {})[0][5] == {}


def test_compile_skips_guards_on_transformer_options_like_core_except_the_attention_override(compiler):
    """As core's TorchCompileModel: no dynamo guards on transformer_options (per-prompt values there must not
    recompile), but ours keeps the attention override's; inductor's mode goes in as its options (torch.compile takes
    a mode or options, not both)."""
    from types import SimpleNamespace
    kwargs = compiler.CompileSettings(mode="max-autotune").torch_kwargs()
    assert "mode" not in kwargs and kwargs["options"]["guard_filter_fn"] is compiler.compile_guard_filter
    assert kwargs["options"]["max_autotune"] is True
    names = ["L['x']", "L['transformer_options']['cond_or_uncond']",
             "L['transformer_options']['optimized_attention_override']"]
    assert compiler.compile_guard_filter([SimpleNamespace(name=n) for n in names]) == [True, False, True]
    assert compiler.CompileSettings(backend="eager").torch_kwargs()["options"] == {"guard_filter_fn": compiler.compile_guard_filter}


def test_compile_clones_and_never_mutates_its_input(comfy, compiler):
    import nodes
    import comfy.patcher_extension as pe
    model = nodes.CheckpointLoaderSimple().load_checkpoint(graphs.SD15)[0]
    settings = compiler.CompileSettings()
    a = compiler.compile_model(model, settings)
    b = compiler.compile_model(a, settings)
    assert a is not model and b is not a
    assert compiler.compile_wrapper(model) is None and model.weight_inplace_update is False
    # One wrapper per clone, never shared, and a second Compile replaces the first instead of stacking.
    assert compiler.compile_wrapper(a) is not compiler.compile_wrapper(b)
    assert len(b.get_wrappers(pe.WrappersMP.APPLY_MODEL, compiler.WRAPPER_KEY)) == 1


def test_compile_failure_falls_back_to_eager_with_one_warning(comfy, compiler, caplog):
    """A backend that fails the way a missing compiler does: the graph still runs, uncompiled, with
    one warning naming what failed and what is used instead, and the same result as without compile."""
    import torch._dynamo
    import nodes

    @torch._dynamo.register_backend(name="lcm_kit_test_broken")
    def broken(gm, example_inputs, **kwargs):
        raise RuntimeError("C++ compile error: cc1plus: not found")

    model, clip = nodes.CheckpointLoaderSimple().load_checkpoint(graphs.SD15)[:2]
    pos, neg = (nodes.CLIPTextEncode().encode(clip, t)[0] for t in ("a fox", ""))
    latent = {"samples": torch.zeros(1, 4, 8, 8)}

    def sample(m):
        return nodes.common_ksampler(m, 3, 2, 1.0, "lcm", "simple", pos, neg, latent)[0]["samples"]

    compiled = compiler.compile_model(model, compiler.CompileSettings(backend="lcm_kit_test_broken"))
    caplog.set_level(logging.WARNING, logger="lcm_kit")
    out = sample(compiled)
    out_again = sample(compiled)
    warnings = [r.getMessage() for r in caplog.records if r.name == "lcm_kit" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "lcm_kit_test_broken" in warnings[0] and "cc1plus" in warnings[0] and "eager" in warnings[0]
    assert compiler.compile_wrapper(compiled).active_setting == compiler.EAGER
    reference = sample(model)
    assert torch.equal(out, reference) and torch.equal(out_again, reference)


def test_fullgraph_with_a_graph_break_falls_back_to_compiling_in_pieces(comfy, compiler, caplog):
    """A real unsupported construct: a model patch of the kind custom nodes add (attn1_output_patch)
    that reads a tensor value into Python, a graph break, so fullgraph fails at the first call. The next
    step of the chain (same backend without fullgraph) is used, not eager."""
    import nodes
    model, clip = nodes.CheckpointLoaderSimple().load_checkpoint(graphs.SD15)[:2]
    pos, neg = (nodes.CLIPTextEncode().encode(clip, t)[0] for t in ("a fox", ""))
    latent = {"samples": torch.zeros(1, 4, 8, 8)}

    def clamp_overflow(n, extra_options):
        return n.clamp(-1e4, 1e4) if n.abs().max().item() > 1e4 else n  # .item(): a graph break

    patched = model.clone()
    patched.set_model_attn1_output_patch(clamp_overflow)
    compiled = compiler.compile_model(patched, compiler.CompileSettings(backend="eager", fullgraph=True))
    caplog.set_level(logging.WARNING, logger="lcm_kit")
    out = nodes.common_ksampler(compiled, 2, 1, 1.0, "lcm", "simple", pos, neg, latent)[0]["samples"]
    reference = nodes.common_ksampler(patched, 2, 1, 1.0, "lcm", "simple", pos, neg, latent)[0]["samples"]
    assert torch.allclose(out, reference, atol=1e-4)
    wrapper = compiler.compile_wrapper(compiled)
    warnings = [r.getMessage() for r in caplog.records if r.name == "lcm_kit" and r.levelno == logging.WARNING]
    assert wrapper.active_setting == compiler.CompileSettings(backend="eager", fullgraph=False)
    assert wrapper.graphs_compiled >= 2, "compiling in pieces: one graph on each side of the break"
    assert len(warnings) == 1 and "torch.compile(backend=eager, fullgraph) failed: " in warnings[0], warnings
    assert "Using torch.compile(backend=eager) instead" in warnings[0]


def test_model_errors_are_not_mistaken_for_compile_failures(comfy, compiler, caplog):
    """Wrong conditioning fails uncompiled too: its own error surfaces, no fallback, no warning."""
    import nodes
    model = nodes.CheckpointLoaderSimple().load_checkpoint(graphs.SD15)[0]
    compiled = compiler.compile_model(model, compiler.CompileSettings(backend="eager"))
    bad = [[torch.zeros(1, 7, 1024), {}]]  # SD1.5 wants 768-wide context
    caplog.set_level(logging.WARNING, logger="lcm_kit")
    with pytest.raises(RuntimeError):
        nodes.common_ksampler(compiled, 1, 1, 1.0, "lcm", "simple", bad, bad, {"samples": torch.zeros(1, 4, 8, 8)})
    assert compiler.compile_wrapper(compiled).active == 0
    assert not [r for r in caplog.records if r.name == "lcm_kit" and r.levelno == logging.WARNING]


def test_fallback_chain_goes_to_default_mode_then_eager(compiler):
    chain = compiler.fallback_chain(compiler.CompileSettings(mode="reduce-overhead"))
    assert [c if c == compiler.EAGER else c.mode for c in chain] == ["reduce-overhead", "default", compiler.EAGER]
    assert compiler.fallback_chain(compiler.CompileSettings())[1:] == [compiler.EAGER]
    full = compiler.fallback_chain(compiler.CompileSettings(mode="max-autotune", fullgraph=True))
    assert [(c.mode, c.fullgraph) for c in full[:-1]] == [("max-autotune", True), ("default", True), ("default", False)]


@pytest.mark.parametrize("field, value", [("mode", "turbo"), ("backend", "tensorrt"), ("dynamic", "maybe"),
                                          ("attention", "flash")])
def test_unknown_combo_value_in_a_saved_workflow_is_rejected_with_the_valid_ones(comfy, compiler, field, value):
    prompt = graphs.compile_graph(compile={**COMPILE, field: value})
    valid, error, _, node_errors = comfy.validate(prompt)
    assert not valid
    message = str(node_errors["compile"]["errors"])
    assert value in message and field in message
    valid_values = {"mode": compiler.COMPILE_MODES, "backend": compiler.COMPILE_BACKENDS, "dynamic": compiler.DYNAMIC_CHOICES,
                    "attention": compiler.ATTENTION_CHOICES}[field]
    assert all(v in message for v in valid_values), message


@pytest.mark.parametrize("field, value, listed", [("mode", "turbo", "reduce-overhead"),
                                                  ("backend", "tensorrt", "inductor"),
                                                  ("dynamic", "maybe", "auto"),
                                                  ("attention", "flash", "pytorch")])
def test_unknown_setting_from_other_paths_is_a_clear_error(compiler, field, value, listed):
    with pytest.raises(ValueError, match=rf"unknown .*{value}.*valid: .*{listed}"):
        compiler.CompileSettings(**{field: value})


def test_compile_on_something_that_is_not_a_diffusion_model_is_a_clear_error(comfy, compiler):
    import nodes
    clip = nodes.CheckpointLoaderSimple().load_checkpoint(graphs.SD15)[1]
    with pytest.raises(TypeError, match="needs a diffusion MODEL"):
        compiler.compile_model(clip.patcher, compiler.CompileSettings())
    with pytest.raises(TypeError, match="needs a diffusion MODEL"):
        compiler.compile_model(clip, compiler.CompileSettings())


# ---------------------------------------------------------------------------------------------
# Offload
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def loaded(comfy):
    import nodes
    return nodes.CheckpointLoaderSimple().load_checkpoint(graphs.SD15)[:3]


def test_offload_policy_lands_on_cloned_patchers(pack, offload, loaded):
    import comfy.patcher_extension as pe
    model, clip, vae = loaded
    before = (clip.patcher.load_device, vae.device, model.offload_device)
    node = pack.NODE_CLASS_MAPPINGS["LCMKitOffload"]()
    m, c, v = node.offload(model, clip, vae, "cpu", "cpu", "offload after run")["result"]
    cpu = torch.device("cpu")
    assert c.patcher is not clip.patcher and c.patcher.load_device == cpu and c.patcher.offload_device == cpu
    assert v is not vae and v.patcher is not vae.patcher and v.device == cpu and v.patcher.load_device == cpu
    assert m is not model and m.get_wrappers(pe.WrappersMP.OUTER_SAMPLE, offload.OFFLOAD_WRAPPER_KEY)
    # Inputs untouched.
    assert (clip.patcher.load_device, vae.device, model.offload_device) == before
    assert not model.get_wrappers(pe.WrappersMP.OUTER_SAMPLE, offload.OFFLOAD_WRAPPER_KEY)

    resident = node.offload(model, clip, vae, "default", "default", "keep resident")["result"][0]
    assert resident.offload_device == resident.load_device
    assert not resident.get_wrappers(pe.WrappersMP.OUTER_SAMPLE, offload.OFFLOAD_WRAPPER_KEY)


def _is_loaded(patcher) -> bool:
    import comfy.model_management as mm
    return any(lm.model is not None and lm.model.is_clone(patcher) for lm in mm.current_loaded_models)


def test_offload_after_run_unloads_the_model_through_model_management(pack, loaded):
    import nodes
    model, clip, vae = loaded
    node = pack.NODE_CLASS_MAPPINGS["LCMKitOffload"]()
    pos, neg = (nodes.CLIPTextEncode().encode(clip, t)[0] for t in ("a fox", ""))
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    for policy, stays in [("keep resident", True), ("offload after run", False)]:
        m = node.offload(model, clip, vae, "default", "default", policy)["result"][0]
        nodes.common_ksampler(m, 1, 1, 1.0, "lcm", "simple", pos, neg, latent)
        assert _is_loaded(model) is stays, policy


def test_offload_graph_runs_end_to_end(comfy, base_dir):
    g = graphs.core_lcm_graph(prefix="offload", steps=1)
    g["offload"] = {"class_type": "LCMKitOffload", "inputs": {
        "model": ["ckpt", 0], "clip": ["ckpt", 1], "vae": ["ckpt", 2], "text_encoder": "cpu",
        "vae_device": "cpu", "model_between_runs": "offload after run"}}
    g["msd"]["inputs"]["model"] = ["offload", 0]
    g["pos"]["inputs"]["clip"] = g["neg"]["inputs"]["clip"] = ["offload", 1]
    g["decode"]["inputs"]["vae"] = ["offload", 2]
    out = comfy.run(g)
    assert len(out["save"]["images"]) == 1


# ---------------------------------------------------------------------------------------------
# Fast decode
# ---------------------------------------------------------------------------------------------

def test_fast_decode_matches_core_taesd_vae_decode(comfy, pack, loaded):
    """Reference: core's VAELoader("taesd") + VAEDecode on the same latents."""
    import nodes
    model = loaded[0]
    samples = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    ours = pack.NODE_CLASS_MAPPINGS["LCMKitFastDecode"]().decode({"samples": samples}, model)[0]
    taesd_vae = nodes.VAELoader().load_vae("taesd")[0]
    core = nodes.VAEDecode().decode(taesd_vae, {"samples": samples})[0]
    assert ours.shape == core.shape == (1, 64, 64, 3)
    assert torch.allclose(ours, core, atol=1e-4), (ours - core).abs().max()
    assert np.asarray(ours).std() > 0.01


def test_fast_decode_without_weights_lists_what_is_missing(comfy, taesd):
    with pytest.raises(FileNotFoundError) as e:
        taesd.find_taesd_file("taesdxl_decoder")
    message = str(e.value)
    assert "taesdxl_decoder" in message and "vae_approx" in message and "taesd_decoder.safetensors" in message


# ---------------------------------------------------------------------------------------------
# Fast encode
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(64, 64), (70, 61)])   # (w, h); 70×61 is cropped to 64×56 as VAE Encode crops
def test_fast_encode_matches_core_taesd_vae_encode(comfy, pack, loaded, size):
    """Reference: core's VAELoader("taesd") + VAEEncode on the same pixels (the tiny generated TAESD encoder)."""
    import nodes
    model = loaded[0]
    width, height = size
    pixels = torch.rand(2, height, width, 3, generator=torch.Generator().manual_seed(3))
    ours = pack.NODE_CLASS_MAPPINGS["LCMKitFastEncode"]().encode(pixels, model)[0]["samples"]
    taesd_vae = nodes.VAELoader().load_vae("taesd")[0]
    core = nodes.VAEEncode().encode(taesd_vae, pixels)[0]["samples"]
    assert ours.shape == core.shape == (2, 4, height // 8, width // 8)
    assert torch.allclose(ours, core, atol=1e-4), (ours - core).abs().max()
    assert ours.std() > 0.01


def test_fast_encode_then_fast_decode_round_trips_through_one_cached_module_each(pack, taesd, loaded):
    model = loaded[0]
    pixels = torch.rand(1, 32, 32, 3, generator=torch.Generator().manual_seed(4))
    enc, dec = pack.NODE_CLASS_MAPPINGS["LCMKitFastEncode"](), pack.NODE_CLASS_MAPPINGS["LCMKitFastDecode"]()
    image = dec.decode(enc.encode(pixels, model)[0], model)[0]
    enc.encode(pixels, model)
    assert image.shape == (1, 32, 32, 3)
    parts = sorted(key[2] for key in taesd._TAESD_CACHE)
    assert parts == ["decoder", "encoder"]
    taesd = {key[2]: t for key, t in taesd._TAESD_CACHE.items()}
    assert taesd["encoder"].taesd_decoder is None and taesd["decoder"].taesd_encoder is None


def test_fast_encode_rejects_what_is_not_an_image_batch(pack, loaded):
    enc = pack.NODE_CLASS_MAPPINGS["LCMKitFastEncode"]()
    with pytest.raises(ValueError, match="B×H×W×3"):
        enc.encode(torch.rand(32, 32, 3), loaded[0])
    with pytest.raises(ValueError, match="at least 8×8"):
        enc.encode(torch.rand(1, 4, 4, 3), loaded[0])


def test_fast_encode_without_weights_names_the_encoder_file(comfy, taesd):
    with pytest.raises(FileNotFoundError) as e:
        taesd.find_taesd_file("taesdxl_encoder")
    message = str(e.value)
    assert "Fast Encode needs taesdxl_encoder" in message and "VAE Encode" in message


def test_vae_loaded_in_half_gets_its_own_float32_copy_on_cpu(comfy, offload, loaded):
    """As ComfyUI's --cpu-vae: the CPU decodes in the dtype ComfyUI picks for it (float32 here)."""
    import comfy.sd
    vae = loaded[2]
    half = comfy.sd.VAE(sd=vae.get_sd(), dtype=torch.float16)
    on_cpu = offload.vae_on_device(half, torch.device("cpu"))
    assert on_cpu.vae_dtype == torch.float32
    assert next(on_cpu.first_stage_model.parameters()).dtype == torch.float32
    assert next(half.first_stage_model.parameters()).dtype == torch.float16 and half.vae_dtype == torch.float16
    samples = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(on_cpu.decode(samples), vae.decode(samples), atol=1e-2)
