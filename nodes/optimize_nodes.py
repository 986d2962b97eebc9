"""Node classes for speed and memory: Compile, Offload, Fast Decode / Encode. Thin: validate, clone, patch;
the behaviour lives in `torch_compile`, `offload` and `taesd`.

Widget order is fixed forever (saved workflows store widget values positionally): new inputs go at
the end, optional.
"""
from __future__ import annotations

from . import offload, status, taesd, torch_compile

CATEGORY = "LCM Kit/optimize"


class LCMKitCompile:
    DESCRIPTION = ("Speeds up sampling with torch.compile of the diffusion model (SD1.5, SDXL UNets), applied "
                   "at sample time so LoRAs still apply. Changing LoRAs, their strengths, the prompt or the seed "
                   "does not recompile; the first run (and a new resolution, once) pays the compile time. If "
                   "compiling fails (no C compiler, no triton, an unsupported op) it falls back to a safer mode, "
                   "then to the uncompiled model, with one warning; the graph never fails because of it. Put it "
                   "after the LoRA loaders, before the sampler.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "compile"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The diffusion model to compile (after LCM-LoRA and other LoRA "
                                               "loaders; their weights stay live under compile)."}),
                "mode": (torch_compile.COMPILE_MODES, {"default": "default", "tooltip":
                         "inductor's mode. default: the safe choice, compiles fastest. reduce-overhead: CUDA "
                         "graphs, best for 1-4 step LCM at small sizes on NVIDIA (falls back to default where "
                         "unavailable). max-autotune: longest compile, fastest kernels on GPU; "
                         "max-autotune-no-cudagraphs if reduce-overhead misbehaves. Ignored by other backends."}),
                "backend": (torch_compile.COMPILE_BACKENDS, {"default": "inductor", "tooltip":
                            "inductor: generates kernels (needs a C compiler on CPU, triton on GPU); use it. "
                            "cudagraphs: CUDA graphs without kernel generation (NVIDIA only). eager / aot_eager: "
                            "debugging only, no speed-up; pick them to check whether a problem is the compiler's."}),
                "dynamic": (torch_compile.DYNAMIC_CHOICES, {"default": "auto", "tooltip":
                            "auto: compile for the first resolution, recompile once with dynamic shapes when the "
                            "size changes. true: dynamic shapes from the start (slower kernels). false: one "
                            "compile per resolution (fastest if you never change size)."}),
                "fullgraph": ("BOOLEAN", {"default": False, "tooltip":
                              "Require one graph without breaks. Leave off; turn on only to find out why a model "
                              "does not speed up (a graph break then fails, with a warning naming it, and it compiles "
                              "without fullgraph)."}),
                "channels_last": ("BOOLEAN", {"default": False, "tooltip":
                                  "Feed the UNet channels-last latents. Can help convolution speed on some GPUs "
                                  "and CPUs; measure before keeping it on."}),
            },
            "optional": {
                # Deprecated: no effect. It stays (hidden among the advanced inputs) because saved workflows store
                # widget values by position.
                "stack_on_builtin": ("BOOLEAN", {"default": False, "advanced": True,
                                                 "tooltip": "Deprecated, no effect; kept so saved workflows load."}),
                "attention": (torch_compile.ATTENTION_CHOICES, {"default": "auto", "tooltip":
                              "Attention inside the compiled model. auto: PyTorch's scaled-dot-product "
                              "attention where ComfyUI's own (sub-quadratic or split: on CPU and some GPUs) "
                              "would cut the model into dozens of graphs at every attention block; otherwise "
                              "ComfyUI's. comfyui: always ComfyUI's. pytorch: always PyTorch's."}),
            },
        }

    def compile(self, model, mode, backend, dynamic, fullgraph, channels_last, stack_on_builtin=False,
                attention="auto"):
        settings = torch_compile.CompileSettings(mode=mode, backend=backend, dynamic=dynamic, fullgraph=bool(fullgraph),
                                            channels_last=bool(channels_last), attention=attention)
        return (torch_compile.compile_model(model, settings),)


class LCMKitOffload:
    DESCRIPTION = ("Chooses where each model lives, through ComfyUI's model management: the text encoder on the "
                   "CPU (the usual fix for out-of-memory errors on small GPUs: it runs once per prompt), the VAE "
                   "on the CPU, and the diffusion model kept resident between runs (fastest re-runs) or "
                   "offloaded after each run (frees VRAM for other models). Outputs clones; the inputs are "
                   "untouched.")
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
                             "cpu: encode prompts on the CPU. Change it when you run out of GPU memory; costs a "
                             "little time per prompt change only."}),
            "vae_device": (offload.VAE_POLICIES, {"default": "default", "tooltip":
                           "cpu: decode/encode images on the CPU. Change it when VAE Decode runs out of memory "
                           "at large sizes; decoding gets slower."}),
            "model_between_runs": (offload.MODEL_POLICIES, {"default": "default", "tooltip":
                                   "keep resident: never move the model off the GPU (fastest repeated runs, "
                                   "live mode). offload after run: unload it after each sampling run, to make "
                                   "room for other models. default: ComfyUI decides."}),
        }}

    def offload(self, model, clip, vae, text_encoder, vae_device, model_between_runs):
        m, c, v, notes = offload.apply_offload(model, clip, vae, text_encoder, vae_device, model_between_runs)
        return status.node_output((m, c, v), info=notes)


class LCMKitFastDecode:
    DESCRIPTION = ("Decodes latents to images with TAESD (SD1.5) or TAESDXL (SDXL), the tiny decoders ComfyUI "
                   "uses for previews: many times faster than VAE Decode and small in memory, slightly softer. "
                   "Needs taesd_decoder / taesdxl_decoder in models/vae_approx.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "samples": ("LATENT", {"tooltip": "The latents to decode (e.g. the LCM Sampler's output)."}),
            "model": ("MODEL", {"tooltip": "The model that made the latents: it picks TAESD (SD1.5) or TAESDXL "
                                           "(SDXL)."}),
        }}

    def decode(self, samples, model):
        return (taesd.fast_decode(model, samples["samples"]),)


class LCMKitFastEncode:
    DESCRIPTION = ("Encodes images to latents with TAESD (SD1.5) or TAESDXL (SDXL), the tiny encoders that pair "
                   "with Fast Decode: many times faster than VAE Encode, for live img2img from a sketch or a "
                   "camera. Needs taesd_encoder / taesdxl_encoder in models/vae_approx.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "pixels": ("IMAGE", {"tooltip": "The image to encode (a Sketch, a camera frame, Load Image). Sizes "
                                            "that are not a multiple of 8 are cropped, as VAE Encode does."}),
            "model": ("MODEL", {"tooltip": "The model that will sample the latents: it picks TAESD (SD1.5) or "
                                           "TAESDXL (SDXL)."}),
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
