"""Node classes for speed and memory: Compile, Offload, Fast Decode / Encode. Thin: validate, clone, patch;
the behaviour lives in `torch_compile`, `offload` and `taesd`.

Widget order is fixed forever (saved workflows store widget values positionally): new inputs go at
the end, optional.
"""
from __future__ import annotations

from . import offload, status, taesd, torch_compile

CATEGORY = "LCM Kit/optimize"


class LCMKitCompile:
    DESCRIPTION = ("torch.compile of the diffusion model at sample time: LoRAs still apply, and changing LoRAs, "
                   "prompt or seed never recompiles. A failing compile falls back (safer mode, then uncompiled) with "
                   "one warning. Put it after the LoRA loaders.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "compile"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The diffusion model, after the LoRA loaders (their weights stay live)."}),
                "mode": (torch_compile.COMPILE_MODES, {"default": "default", "tooltip":
                         "default compiles fastest; reduce-overhead: CUDA graphs for small LCM runs."}),
                "backend": (torch_compile.COMPILE_BACKENDS, {"default": "inductor", "tooltip":
                            "inductor for speed; eager / aot_eager only to debug the compiler."}),
                "dynamic": (torch_compile.DYNAMIC_CHOICES, {"default": "auto", "tooltip":
                            "auto: one recompile with dynamic shapes when the size changes."}),
                "fullgraph": ("BOOLEAN", {"default": False, "tooltip":
                              "Require one graph; on only to find why a model does not speed up."}),
                "channels_last": ("BOOLEAN", {"default": False, "tooltip":
                                  "Channels-last latents; can help convolutions on some GPUs. Measure."}),
            },
            "optional": {
                # Deprecated: no effect. It stays (hidden among the advanced inputs) because saved workflows store
                # widget values by position.
                "stack_on_builtin": ("BOOLEAN", {"default": False, "advanced": True,
                                                 "tooltip": "Deprecated, no effect; kept so saved workflows load."}),
                "attention": (torch_compile.ATTENTION_CHOICES, {"default": "auto", "tooltip":
                              "auto: PyTorch SDPA where ComfyUI's attention would split the graph."}),
            },
        }

    def compile(self, model, mode, backend, dynamic, fullgraph, channels_last, stack_on_builtin=False,
                attention="auto"):
        settings = torch_compile.CompileSettings(mode=mode, backend=backend, dynamic=dynamic, fullgraph=bool(fullgraph),
                                            channels_last=bool(channels_last), attention=attention)
        return (torch_compile.compile_model(model, settings),)


class LCMKitOffload:
    DESCRIPTION = ("Where each model lives, through ComfyUI's model management: text encoder or VAE on the CPU "
                   "(the out-of-memory fix), the diffusion model kept resident or unloaded after each run.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    FUNCTION = "offload"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The diffusion model the policy below applies to."}),
            "clip": ("CLIP", {"tooltip": "The text encoder; connect its output to your CLIP Text Encode nodes."}),
            "vae": ("VAE", {"tooltip": "The VAE; connect its output to VAE Decode / Encode."}),
            "text_encoder": (offload.TEXT_ENCODER_POLICIES, {"default": "default", "tooltip":
                             "cpu: encode prompts on the CPU (the fix for out-of-memory errors)."}),
            "vae_device": (offload.VAE_POLICIES, {"default": "default", "tooltip":
                           "cpu: VAE Decode / Encode on the CPU; slower, saves GPU memory."}),
            "model_between_runs": (offload.MODEL_POLICIES, {"default": "default", "tooltip":
                                   "keep resident for fast re-runs (live mode); offload after run frees VRAM."}),
        }}

    def offload(self, model, clip, vae, text_encoder, vae_device, model_between_runs):
        m, c, v, notes = offload.apply_offload(model, clip, vae, text_encoder, vae_device, model_between_runs)
        return status.node_output((m, c, v), info=notes)


class LCMKitFastDecode:
    DESCRIPTION = ("Latents to images with TAESD (SD1.5) / TAESDXL (SDXL): many times faster than VAE Decode, "
                   "slightly softer. Needs taesd_decoder / taesdxl_decoder in models/vae_approx.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "samples": ("LATENT", {"tooltip": "The latents to decode (e.g. the LCM Sampler's output)."}),
            "model": ("MODEL", {"tooltip": "The model that made the latents: picks TAESD or TAESDXL."}),
        }}

    def decode(self, samples, model):
        return (taesd.fast_decode(model, samples["samples"]),)


class LCMKitFastEncode:
    DESCRIPTION = ("Images to latents with TAESD / TAESDXL, the pair of Fast Decode for live img2img. Needs "
                   "taesd_encoder / taesdxl_encoder in models/vae_approx.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "pixels": ("IMAGE", {"tooltip": "The image to encode; sizes are cropped to a multiple of 8, as VAE Encode does."}),
            "model": ("MODEL", {"tooltip": "The model that will sample the latents: picks TAESD or TAESDXL."}),
        }}

    def encode(self, pixels, model):
        return ({"samples": taesd.fast_encode(model, pixels)},)


NODE_CLASS_MAPPINGS = {
    "LCMKitCompile": LCMKitCompile,
    "LCMKitOffload": LCMKitOffload,
    "LCMKitFastDecode": LCMKitFastDecode,
    "LCMKitFastEncode": LCMKitFastEncode,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "LCMKitCompile": "Compile Model (LCM Kit)",
    "LCMKitOffload": "Offload Policy (LCM Kit)",
    "LCMKitFastDecode": "Fast Decode TAESD (LCM Kit)",
    "LCMKitFastEncode": "Fast Encode TAESD (LCM Kit)",
}
