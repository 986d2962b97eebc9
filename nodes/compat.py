"""Everything LCM Kit assumes about the ComfyUI it runs in, in one place: each probe is named for what it
detects, feature-detected (no version branches), and tested on both ComfyUI test targets (v0.3.75 and upstream
0.33). No other module of the pack probes ComfyUI's version or features; they ask here.
"""
from __future__ import annotations

import functools
import inspect

MIN_COMFYUI = (0, 3, 75)   # the oldest ComfyUI the pack is tested on (pyproject's requires-comfyui)


def comfyui_version() -> tuple[int, ...] | None:
    """ComfyUI's version from its `comfyui_version.py` (None for trees without one: a checkout too old to have it
    or a repackaged tree)."""
    try:
        from comfyui_version import __version__
    except ImportError:
        return None
    parts = []
    for part in str(__version__).split("."):
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or None


def unsupported_reason(version: tuple[int, ...] | None = None) -> str | None:
    """Why the pack cannot load in this ComfyUI (a message naming the minimum version), or None."""
    version = comfyui_version() if version is None else version
    if version is not None and version < MIN_COMFYUI:
        need, have = ".".join(map(str, MIN_COMFYUI)), ".".join(map(str, version))
        return (f"LCM Kit needs ComfyUI {need} or newer; this is ComfyUI {have}. Update ComfyUI (git pull, or the "
                f"ComfyUI Manager's Update ComfyUI), then restart. LCM Kit's nodes were not loaded.")
    return None


@functools.lru_cache(maxsize=None)
def _parameters(fn) -> frozenset:
    return frozenset(inspect.signature(fn).parameters)


def call_with_supported(fn, *args, **optional):
    """Call a ComfyUI function with those of the `optional` keyword arguments its signature has: newer ComfyUI
    added e.g. `lora_metadata=` (convert_lora), `log_missing=` (load_lora), `disable_dynamic=` (loaders)."""
    params = _parameters(fn)
    return fn(*args, **{k: v for k, v in optional.items() if k in params})


def fix_empty_latent(model, latent: dict):
    """`comfy.sample.fix_empty_latent_channels` the way core's samplers call it: newer ComfyUI also takes the
    latent's `downscale_ratio_spacial` / `_temporal` (set by the Empty*Latent nodes of other model families)."""
    import comfy.sample
    fn = comfy.sample.fix_empty_latent_channels
    if "downscale_ratio_spacial" in _parameters(fn):
        return fn(model, latent["samples"], latent.get("downscale_ratio_spacial"), latent.get("downscale_ratio_temporal"))
    return fn(model, latent["samples"])


LATENT_SAMPLER_KEYS = ("downscale_ratio_spacial", "downscale_ratio_temporal")   # core samplers pop these


def _from_core_model_advanced(cls) -> bool:
    # Matched by name: ComfyUI loads comfy_extras modules itself, and an import of ours could make second copies.
    return cls.__module__.endswith("nodes_model_advanced")


def is_core_lcm_sampling(cls) -> bool:
    """Whether a model sampling class is core's `LCM` (ModelSamplingDiscrete "lcm": the boundary condition on eps)."""
    return cls.__name__ == "LCM" and _from_core_model_advanced(cls)


def core_distilled_grid(cls) -> int | None:
    """The step grid of core's ModelSamplingDiscreteDistilled (`original_timesteps`, 50), None for other classes."""
    grid = getattr(cls, "original_timesteps", None)
    return int(grid) if grid is not None and _from_core_model_advanced(cls) else None


def patcher_is_dynamic(patcher) -> bool:
    """Whether a ModelPatcher is newer ComfyUI's dynamic VRAM patcher (comfy-aimdo; on by default on NVIDIA)."""
    is_dynamic = getattr(patcher, "is_dynamic", None)
    return bool(callable(is_dynamic) and is_dynamic())


def regular_patcher_clone(patcher):
    """A clone that is a regular ModelPatcher, as core's device-selection and compile nodes take before changing
    devices or compiling: a dynamic patcher keeps per-device state that hand-set devices would break, and
    `clone(disable_dynamic=True)` rebuilds the model through the loader's `cached_patcher_init` factory."""
    if patcher_is_dynamic(patcher):
        return patcher.clone(disable_dynamic=True)
    return patcher.clone()


def set_reload_factory(patcher, factory, *args, index=None) -> None:
    """Tell newer ComfyUI how to load `patcher`'s model again (`cached_patcher_init`, as core's loaders set it):
    `factory(*args, disable_dynamic=...)` returns a patcher (or a tuple, then `index` picks it). Hooks,
    `clone(disable_dynamic=True)` and the multi-GPU / device-select nodes need it. A no-op where ComfyUI has none."""
    if hasattr(patcher, "cached_patcher_init"):
        patcher.cached_patcher_init = (factory, tuple(args)) if index is None else (factory, tuple(args), index)


def clone_vae(vae):
    """A VAE sharing the weights with its own patcher clone (VAE has no clone() in older ComfyUI)."""
    import copy
    clone = getattr(vae, "clone", None)
    v = clone() if callable(clone) else copy.copy(vae)
    if v.patcher is vae.patcher:
        v.patcher = vae.patcher.clone()
    return v


def preview_image_event() -> int:
    """The binary websocket event type of a preview image (`protocol.BinaryEventTypes`, in server.py before)."""
    try:
        from protocol import BinaryEventTypes
    except ImportError:
        from server import BinaryEventTypes
    return BinaryEventTypes.PREVIEW_IMAGE


def prompt_server():
    """ComfyUI's PromptServer when one runs in this process (None when a script drives the executor)."""
    try:
        from server import PromptServer
    except ImportError:
        return None
    return getattr(PromptServer, "instance", None)
