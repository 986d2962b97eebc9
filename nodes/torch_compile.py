"""torch.compile of a model's diffusion model at sample time, with a fallback chain.

Contract:
- `compile_model(model, settings)` returns a clone whose APPLY_MODEL wrapper (the pattern of ComfyUI's
  `comfy_api/torch_helpers/torch_compile.py`) swaps the compiled diffusion model in for one `apply_model` call;
  the input is never modified. Weight patches (LoRAs) still apply: dynamo guards on the parameters' shape, dtype
  and stride, not on their values, so a new LoRA, strength, prompt or seed does not recompile.
- Compilation is lazy: a failure surfaces at the first call; the model then runs uncompiled once (to tell a
  compile failure from a model error) and the next setting of `fallback_chain` is used, with one warning.
- `attention` auto runs PyTorch SDPA inside the compiled model where ComfyUI's own attention (sub-quadratic,
  split) would end a graph at every attention block, through core's `optimized_attention_override`.
"""
from __future__ import annotations

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
COMPILED_KEYS = ("diffusion_model",)
ATTENTION_CHOICES = ["auto", "comfyui", "pytorch"]


def choices_error(what: str, value, valid) -> ValueError:
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
            raise choices_error("attention setting", self.attention, ATTENTION_CHOICES)
        if self.mode not in COMPILE_MODES:
            raise choices_error("compile mode", self.mode, COMPILE_MODES)
        if self.dynamic not in DYNAMIC_CHOICES:
            raise choices_error("dynamic setting", self.dynamic, DYNAMIC_CHOICES)
        backends = available_backends()
        if self.backend not in backends:
            raise choices_error("torch.compile backend", self.backend, backends)

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
