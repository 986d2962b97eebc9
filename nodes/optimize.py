"""Speed and memory for LCM's few-step sampling: torch.compile at sample time, device policies for the
diffusion model / text encoder / VAE, and TAESD fast decoding.

Everything here works on ComfyUI's patchers and never mutates what it is given:

- Compile: an APPLY_MODEL wrapper (the pattern of ComfyUI's `comfy_api/torch_helpers/torch_compile.py`)
  swaps the compiled diffusion model in for the duration of one `apply_model` call. ComfyUI patches
  LoRA weights into the module's parameters before sampling; dynamo lifts parameters as graph inputs
  and guards on their shape/dtype/stride/requires_grad, not on their identity or values (measured on
  torch 2.14), so a new LoRA, strength, prompt or seed runs the already compiled graph with the new
  weights. The compiled clone patches in place, so requires_grad never flips (see `compile_model`).
- Compilation is lazy: its failures surface at the first call, inside the wrapper. There they are
  caught, the model is run uncompiled to tell a compile failure from a model error, and the next
  setting of the fallback chain (reduce-overhead -> default -> eager) is used, with one warning.
- Attention inside the compiled model: where ComfyUI's attention would end a graph at every attention
  block (sub-quadratic / split: they query free memory), the wrapper passes PyTorch SDPA through
  ComfyUI's `optimized_attention_override` hook in a copy of transformer_options (setting "attention").
- Offload: load/offload devices on cloned patchers; unloading goes through
  `comfy.model_management.free_memory`, never by moving tensors by hand.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import time

import torch

import comfy.ldm.modules.attention as comfy_attention
import comfy.model_management
import comfy.patcher_extension
import comfy.utils

from . import compat, status

log = logging.getLogger("lcm_kit")

COMPILE_MODES = ["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
COMPILE_BACKENDS = ["inductor", "cudagraphs", "eager", "aot_eager"]
DYNAMIC_CHOICES = ["auto", "true", "false"]
WRAPPER_KEY = "lcm_kit.compile"
OFFLOAD_WRAPPER_KEY = "lcm_kit.offload"
COMPILED_KEYS = ("diffusion_model",)
ATTENTION_CHOICES = ["auto", "comfyui", "pytorch"]


def _choices_error(what: str, value, valid) -> ValueError:
    return ValueError(f"unknown {what} {value!r}; valid: {', '.join(map(str, valid))}")


def available_backends() -> list[str]:
    """Backends torch.compile knows in this environment (dynamo's registry)."""
    import torch._dynamo
    return sorted(torch._dynamo.list_backends(exclude_tags=()))


# --------------------------------------------------------------------------------------------------
# Compile settings and the fallback chain
# --------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CompileSettings:
    """One torch.compile configuration. `mode` applies to the inductor backend only."""
    mode: str = "default"
    backend: str = "inductor"
    dynamic: str = "auto"
    fullgraph: bool = False
    channels_last: bool = False
    attention: str = "auto"

    def __post_init__(self):
        if self.attention not in ATTENTION_CHOICES:
            raise _choices_error("attention setting", self.attention, ATTENTION_CHOICES)
        if self.mode not in COMPILE_MODES:
            raise _choices_error("compile mode", self.mode, COMPILE_MODES)
        if self.dynamic not in DYNAMIC_CHOICES:
            raise _choices_error("dynamic setting", self.dynamic, DYNAMIC_CHOICES)
        backends = available_backends()
        if self.backend not in backends:
            raise _choices_error("torch.compile backend", self.backend, backends)

    def torch_kwargs(self) -> dict:
        """Keyword arguments of torch.compile. Built from strings and module-level functions only, so two equal
        settings give backends that dynamo treats as the same one (no recompile when the node runs again).
        torch.compile takes a mode or options, not both: with the guard filter, inductor's mode goes in as the
        options it stands for (`torch._inductor.list_mode_options`)."""
        dynamic = {"auto": None, "true": True, "false": False}[self.dynamic]
        kwargs = {"backend": self.backend, "dynamic": dynamic, "fullgraph": self.fullgraph}
        if not torch_has_guard_filter():
            kwargs["mode"] = self.mode if self.backend == "inductor" else None
            return kwargs
        options = {"guard_filter_fn": compile_guard_filter}
        if self.backend == "inductor":
            import torch._inductor
            options.update(torch._inductor.list_mode_options(self.mode, dynamic))
        kwargs["options"] = options
        return kwargs

    def describe(self) -> str:
        mode = f", mode={self.mode}" if self.backend == "inductor" else ""
        return f"torch.compile(backend={self.backend}{mode}{', fullgraph' if self.fullgraph else ''})"


EAGER = "eager (not compiled)"


def compile_guard_filter(guard_entries) -> list[bool]:
    """dynamo guard filter, as core's TorchCompileModel sets one: no guards on `transformer_options`, whose values
    (conditioning ids, patches, sigmas) change between prompts and would recompile the model; except ComfyUI's
    attention override, so that another attention (the `attention` setting, another pack) compiles again."""
    return [("transformer_options" not in e.name) or ("optimized_attention_override" in e.name)
            for e in guard_entries]


def torch_has_guard_filter() -> bool:
    """Whether this torch's torch.compile takes options={"guard_filter_fn": ...}: torch 2.8 and newer, which ship
    the ready-made guard filters of torch.compiler (an older torch would hand the option to inductor, which
    rejects it)."""
    return hasattr(torch.compiler, "skip_guard_on_inbuilt_nn_modules_unsafe")


def fallback_chain(settings: CompileSettings) -> list:
    """What is tried, in order, when compiling fails: the requested settings, inductor's default mode
    if another mode was asked for (reduce-overhead/max-autotune need CUDA graphs or autotuning that
    may be missing), then without fullgraph if it was asked for, and finally the uncompiled model."""
    chain: list = [settings]
    if settings.backend == "inductor" and settings.mode != "default":
        chain.append(dataclasses.replace(chain[-1], mode="default"))
    if settings.fullgraph:  # a graph break fails fullgraph; the model still compiles in pieces
        chain.append(dataclasses.replace(chain[-1], fullgraph=False))
    chain.append(EAGER)
    return chain


def compile_counter() -> int:
    """Graphs dynamo has compiled in this process so far (each compile and recompile adds one)."""
    from torch._dynamo.utils import counters
    return int(counters["stats"]["unique_graphs"])


# --------------------------------------------------------------------------------------------------
# Compile: the APPLY_MODEL wrapper
# --------------------------------------------------------------------------------------------------

class CompileWrapper:
    """APPLY_MODEL wrapper that runs the diffusion model through torch.compile.

    One instance per cloned patcher (ComfyUI 0.38 shares wrapper objects between clones, so the
    configuration is fixed at construction). Its mutable part is the runtime state: the compiled
    module of the model it last saw, the active step of the fallback chain, and counters
    (`graphs_compiled`, `compile_seconds`, `calls`) for diagnostics and tests.
    """

    def __init__(self, settings: CompileSettings, keys=COMPILED_KEYS):
        self.settings = settings
        self.keys = tuple(keys)
        self.chain = fallback_chain(settings)
        self.active = 0
        self.failures: list[str] = []
        self.graphs_compiled = 0
        self.compile_seconds = 0.0
        self.calls = 0
        self._compiled: dict = {}

    @property
    def active_setting(self):
        return self.chain[self.active]

    def _compiled_modules(self, base_model, setting: CompileSettings) -> dict:
        out = {}
        for key in self.keys:
            module = comfy.utils.get_attr(base_model, key)
            cached = self._compiled.get((key, setting))
            if cached is None or cached[0] is not module:
                cached = (module, torch.compile(module, **setting.torch_kwargs()))
                self._compiled[(key, setting)] = cached
            out[key] = cached[1]
        return out

    def _run(self, setting, executor, args, kwargs):
        if setting == EAGER:
            return executor(*args, **kwargs)
        if setting.channels_last and args and isinstance(args[0], torch.Tensor) and args[0].ndim == 4:
            args = (args[0].contiguous(memory_format=torch.channels_last),) + tuple(args[1:])
        args, kwargs = with_compile_attention(setting.attention, args, kwargs)
        base_model = executor.class_obj
        originals = {}
        before, start = compile_counter(), time.perf_counter()
        try:
            for key, compiled in self._compiled_modules(base_model, setting).items():
                originals[key] = comfy.utils.get_attr(base_model, key)
                comfy.utils.set_attr(base_model, key, compiled)
            return executor(*args, **kwargs)
        finally:
            for key, module in originals.items():
                comfy.utils.set_attr(base_model, key, module)
            new_graphs = compile_counter() - before
            if new_graphs:
                self.graphs_compiled += new_graphs
                self.compile_seconds += time.perf_counter() - start

    def __call__(self, executor, *args, **kwargs):
        self.calls += 1
        setting = self.active_setting
        try:
            return self._run(setting, executor, args, kwargs)
        except comfy.model_management.InterruptProcessingException:
            raise
        except Exception as first:  # noqa: BLE001 — classified below by running uncompiled
            if setting == EAGER:
                raise
            # Uncompiled first: if this fails too, the error is the model's, not the compiler's.
            eager_out = executor(*args, **kwargs)
            failed = [(setting, first)]
            for index in range(self.active + 1, len(self.chain)):
                candidate = self.chain[index]
                if candidate == EAGER:
                    self._settle(index, failed)
                    return eager_out
                try:
                    out = self._run(candidate, executor, args, kwargs)
                except comfy.model_management.InterruptProcessingException:
                    raise
                except Exception as e:  # noqa: BLE001
                    failed.append((candidate, e))
                    continue
                self._settle(index, failed)
                return out
            raise AssertionError("the fallback chain ends with eager")  # pragma: no cover

    def _settle(self, index: int, failed: list) -> None:
        self.active = index
        used = self.chain[index]
        reasons = "; ".join(f"{s.describe()} failed: {_explain(e)}" for s, e in failed)
        message = (f"Compile Model: {reasons}. Using {used if used == EAGER else used.describe()} instead; "
                   "the graph goes on.")
        self.failures.append(message)
        log.warning("%s %s", status.LOG_PREFIX, message)


# --------------------------------------------------------------------------------------------------
# Attention inside the compiled model
# --------------------------------------------------------------------------------------------------

# ComfyUI's sub-quadratic and split attention (its choice on CPU and some GPUs) ask for free memory on
# every call, which dynamo cannot trace: each attention block ends a graph (27 graphs on the tiny SD1.5
# UNet, 71 on a full-size one, where dynamo's recompile limit then leaves the ResBlocks uncompiled).
GRAPH_BREAKING_ATTENTION = (comfy_attention.attention_sub_quad, comfy_attention.attention_split)


def _sdpa_attention(func, *args, **kwargs):
    """An `optimized_attention_override` (ComfyUI's transformer_options hook): PyTorch's
    scaled_dot_product_attention (ComfyUI's own attention_pytorch) instead of `func`."""
    return comfy_attention.attention_pytorch(*args, **kwargs)


def swaps_attention(choice: str, transformer_options: dict | None = None) -> bool:
    """Whether the compiled model runs attention through PyTorch SDPA: always with "pytorch", never with
    "comfyui"; with "auto" when ComfyUI's attention would break the graph and no one else overrides it."""
    if choice == "pytorch":
        return True
    if choice != "auto" or (transformer_options or {}).get("optimized_attention_override") is not None:
        return False
    return comfy_attention.optimized_attention in GRAPH_BREAKING_ATTENTION


def with_compile_attention(choice: str, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """apply_model's (args, kwargs) with the attention override in a copy of its transformer_options."""
    if len(args) > 5 and isinstance(args[5], dict):        # apply_model(x, t, c_concat, c_crossattn, control, to)
        if swaps_attention(choice, args[5]):
            args = args[:5] + ({**args[5], "optimized_attention_override": _sdpa_attention},) + args[6:]
    elif isinstance(kwargs.get("transformer_options"), dict):
        if swaps_attention(choice, kwargs["transformer_options"]):
            kwargs = {**kwargs, "transformer_options": {**kwargs["transformer_options"],
                                                        "optimized_attention_override": _sdpa_attention}}
    return args, kwargs


def _explain(e: BaseException) -> str:
    """One line naming the root cause: dynamo wraps a backend's error (BackendCompilerFailed), the
    interesting part is the error inside (e.g. the C++ compiler's)."""
    inner = getattr(e, "inner_exception", None) or e.__cause__
    if inner is not None and inner is not e:
        return f"{type(e).__name__}: {_explain(inner)}"
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return f"{type(e).__name__}: {(lines[0] if lines else '')[:300]}"


def is_diffusion_model(model) -> bool:
    base = getattr(model, "model", None)
    return (callable(getattr(model, "clone", None)) and base is not None
            and callable(getattr(base, "apply_model", None))
            and isinstance(getattr(base, "diffusion_model", None), torch.nn.Module))


def compile_model(model, settings: CompileSettings):
    """A clone of `model` whose diffusion model runs through torch.compile at sample time.

    The clone is a regular ModelPatcher, as core's TorchCompileModel takes it: newer ComfyUI's dynamic VRAM
    patcher pages weights itself, which compiled graphs must not see. (ComfyUI's own model compiler is opt-in per
    model family and has no hooks for the SD1.5/SDXL UNet, so this node always compiles.)"""
    if not is_diffusion_model(model):
        raise TypeError(f"LCM Kit Compile needs a diffusion MODEL (a ModelPatcher over a model with a "
                        f"diffusion_model), got {type(model).__name__}; connect the MODEL output of a "
                        f"checkpoint or LoRA loader")
    m = compat.regular_patcher_clone(model)
    # LoRA weights copied into the existing parameters (ComfyUI's own `weight_inplace_update`) keep
    # every parameter's requires_grad as the unpatched model has it; replaced parameters come with
    # requires_grad=False, which dynamo guards on: the first LoRA would recompile the whole model.
    m.weight_inplace_update = True
    # Our own earlier compile (a chain of Compile nodes) is replaced, never stacked.
    m.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, WRAPPER_KEY)
    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, WRAPPER_KEY, CompileWrapper(settings))
    return m


def compile_wrapper(model) -> CompileWrapper | None:
    """The compile wrapper on `model` (for diagnostics and tests), or None."""
    wrappers = model.get_wrappers(comfy.patcher_extension.WrappersMP.APPLY_MODEL, WRAPPER_KEY)
    return wrappers[-1] if wrappers else None


# --------------------------------------------------------------------------------------------------
# Offload: device policies on cloned patchers
# --------------------------------------------------------------------------------------------------

TEXT_ENCODER_POLICIES = ["default", "cpu"]
VAE_POLICIES = ["default", "cpu"]
MODEL_POLICIES = ["default", "keep resident", "offload after run"]
CPU = torch.device("cpu")


def _check(what: str, value, valid) -> None:
    if value not in valid:
        raise _choices_error(what, value, valid)


def clip_on_device(clip, device: torch.device):
    """A clone of CLIP whose text encoder loads on (and offloads to) `device`, on a regular patcher (core's
    Select CLIP Device does the same: a dynamic VRAM patcher keeps per-device state that new devices break)."""
    c = clip.clone()
    c.patcher = compat.regular_patcher_clone(clip.patcher)
    c.patcher.load_device = device
    c.patcher.offload_device = device
    return c


def vae_on_device(vae, device: torch.device):
    """A copy of VAE that encodes/decodes on `device`, on a regular patcher.

    The dtype is the one ComfyUI picks for that device (as `--cpu-vae` does): a VAE loaded in
    fp16/bf16 for a GPU gets its own float32 copy of the weights for the CPU (≈160 MB for SD's VAE);
    otherwise the weights are shared through a cloned patcher (on a dynamic VRAM patcher, a regular
    one that the loader's factory builds)."""
    import comfy.model_patcher
    v = compat.clone_vae(vae)
    v.patcher = compat.regular_patcher_clone(vae.patcher)
    v.first_stage_model = v.patcher.model
    dtype = comfy.model_management.vae_dtype(device, getattr(vae, "working_dtypes", [torch.float32]))
    if dtype != vae.vae_dtype:
        v.first_stage_model = copy.deepcopy(v.first_stage_model).to(device=device, dtype=dtype)
        v.patcher = comfy.model_patcher.ModelPatcher(v.first_stage_model, load_device=device, offload_device=device)
        v.vae_dtype = dtype
    v.device = device
    v.patcher.load_device = device
    v.patcher.offload_device = device
    return v


class OffloadAfterRun:
    """OUTER_SAMPLE wrapper: after sampling, unloads this model through model_management.free_memory
    (every other loaded model is kept), so the memory is free for the VAE and other models."""

    def __call__(self, executor, *args, **kwargs):
        try:
            return executor(*args, **kwargs)
        finally:
            unload_model(executor.class_obj.model_patcher)


def unload_model(patcher) -> int:
    """Unload every loaded copy of `patcher`'s model through model_management; returns how many."""
    mm = comfy.model_management
    ours = [lm for lm in mm.current_loaded_models if lm.model is not None and lm.model.is_clone(patcher)]
    others = [lm for lm in mm.current_loaded_models if lm not in ours]
    devices = {lm.device for lm in ours}
    unloaded = 0
    for device in devices:
        unloaded += len(mm.free_memory(1e30, device, keep_loaded=others))
    return unloaded


def apply_model_policy(model, policy: str):
    """A clone of MODEL with the residency policy on its patcher; returns (model, note)."""
    _check("model policy", policy, MODEL_POLICIES)
    if policy == "default":
        return model.clone(), None
    note = None
    if compat.patcher_is_dynamic(model):
        note = (f"model policy {policy!r}: this model now loads as a whole (ComfyUI's dynamic VRAM is off for it); "
                f"choose default to keep dynamic VRAM")
    m = compat.regular_patcher_clone(model)
    wrappers = comfy.patcher_extension.WrappersMP
    m.remove_wrappers_with_key(wrappers.OUTER_SAMPLE, OFFLOAD_WRAPPER_KEY)
    if policy == "keep resident":
        # ComfyUI's --highvram does the same for every model: "offloading" lands on the load device.
        m.offload_device = m.load_device
    else:
        m.offload_device = CPU if m.offload_device == m.load_device else m.offload_device
        m.add_wrapper_with_key(wrappers.OUTER_SAMPLE, OFFLOAD_WRAPPER_KEY, OffloadAfterRun())
    return m, note


def apply_offload(model, clip, vae, text_encoder: str, vae_policy: str, model_policy: str):
    """The device policy as clones: returns (model, clip, vae, notes)."""
    _check("text encoder policy", text_encoder, TEXT_ENCODER_POLICIES)
    _check("VAE policy", vae_policy, VAE_POLICIES)
    _check("model policy", model_policy, MODEL_POLICIES)
    if not is_diffusion_model(model):
        raise TypeError(f"LCM Kit Offload needs a diffusion MODEL, got {type(model).__name__}")
    notes = []
    m, note = apply_model_policy(model, model_policy)
    notes += [note] if note else []
    c = clip_on_device(clip, CPU) if text_encoder == "cpu" else clip.clone()
    v = vae_on_device(vae, CPU) if vae_policy == "cpu" else vae
    return m, c, v, notes


# --------------------------------------------------------------------------------------------------
# Fast decode and encode with TAESD / TAESDXL
# --------------------------------------------------------------------------------------------------

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
    import os

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
