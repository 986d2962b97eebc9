"""LoRA files written the way their trainers write them: by the trainers' own code where it is on PyPI.

A LoRA is "trained" here by attaching PEFT adapters (peft's `LoraConfig` + the model's `add_adapter`, diffusers' or
transformers', as every diffusers training script does) to the tiny SD1.5 UNet and to a CLIP-L text encoder, then filling the adapter
weights with seeded values (training would change them; a fresh lora_B is zero and has no effect). Each writer
below then saves those weights in one layout:

| layout | trainer | how the file is written here |
|---|---|---|
| `unet.….to_q.lora.down.weight` (attention) / `….lora_A.weight` (other layers), text encoder `….q_proj.lora_linear_layer.down.weight`, alpha in `lora_adapter_metadata` | diffusers' training scripts (`examples/`, not in the wheel) | their save path, every call from the wheels: `convert_state_dict_to_diffusers(get_peft_model_state_dict(m))`, `save_lora_weights(..., **_collate_lora_metadata(...))` |
| PEFT `unet.….lora_A.weight` / `lora_B.weight`, alpha in `lora_adapter_metadata` | PEFT-state-dict scripts (diffusers' Flux-era scripts) | `get_peft_model_state_dict(m)` + `save_lora_weights` with the metadata |
| kohya `lora_unet_…` / `lora_te1_…` + `.alpha` (= rank) | diffusers' `--output_kohya_format` (train_dreambooth_lora_sdxl.py) | `convert_state_dict_to_kohya(convert_all_state_dict_to_peft(load_file(f)))` on the diffusers file |
| kohya `lora_unet_…` (diffusers block names), `.alpha` = lora_alpha | diffusers' LCM-LoRA scripts (the published LCM-LoRAs), PCM, DMD2's `extract_lora_module.py` (all GitHub only) | their rule (PEFT key, `.` → `_`, `lora_A` → `lora_down`) applied here to the trained weights |
| kohya `lora_unet_…` (diffusers block names for SD1.x, sgm `input_blocks_…` for SDXL), `lora_te_…`, `.alpha` fp16, `ss_*` metadata | kohya-ss/sd-scripts (GitHub only, not on PyPI) | the same rule, with sd-scripts' names and metadata |

The published few-step LoRAs: LCM-LoRA, PCM and DMD2 are kohya with diffusers block names and `.alpha` (their
trainers' code, read on GitHub; DMD2's alpha 8 at rank 64); TCD's, Hyper-SD's and SDXL-Lightning's training code
is not public. diffusers' SD/SDXL `lora_state_dict`, which loads all of them, accepts exactly
these families: kohya with diffusers or sgm block names, PEFT, and diffusers' own spellings.
"""
from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import torch

from . import tiny_models

# Target modules of diffusers' training scripts (examples/*/train_*lora*.py, read there).
DREAMBOOTH_UNET = ["to_k", "to_q", "to_v", "to_out.0"]
LCM_DISTILL_UNET = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv1",
                    "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj"]
TEXT_ENCODER = ["q_proj", "k_proj", "v_proj", "out_proj"]


def clip_l_config() -> dict:
    """ComfyUI's own CLIP-L config (the text encoder of the tiny SD1.5 checkpoint), for transformers' CLIPTextModel."""
    import comfy.sd1_clip
    return json.loads((Path(comfy.sd1_clip.__file__).parent / "sd1_clip_config.json").read_text())


def clip_text_model(state_dict: dict | None = None):
    """transformers' CLIPTextModel with ComfyUI's CLIP-L config, fp32; `state_dict` (ComfyUI's clip_l.transformer
    weights) loaded when given. transformers has no text_projection in CLIPTextModel: that key is left out."""
    from transformers import CLIPTextConfig, CLIPTextModel
    config = {k: v for k, v in clip_l_config().items() if k not in ("architectures", "torch_dtype", "dtype")}
    model = CLIPTextModel(CLIPTextConfig(**config)).float().eval()
    if state_dict is not None:
        if not hasattr(model, "text_model"):   # transformers ≥ 5: no text_model level
            state_dict = {k.removeprefix("text_model."): v for k, v in state_dict.items()}
        wanted = model.state_dict().keys()
        missing, unexpected = model.load_state_dict({k: v.float() for k, v in state_dict.items() if k in wanted},
                                                    strict=False)
        missing = [k for k in missing if "position_ids" not in k]
        if missing:
            raise RuntimeError(f"CLIP-L weights missing in transformers' model: {missing[:5]}")
    return model


@contextlib.contextmanager
def peft_in_transformers():
    """transformers 5 refuses its PEFT integration (add_adapter, load_adapter: what the training scripts and
    diffusers' load_lora_weights call on a text encoder) below peft 0.22, which PyPI does not have (0.21.2 is the
    newest): the version check is lifted for these calls; the work underneath is peft 0.21.2's own."""
    import transformers.integrations.peft as integration
    saved = integration.check_peft_version
    integration.check_peft_version = lambda min_version: None
    try:
        yield
    finally:
        integration.check_peft_version = saved


def diffusers_pipeline(unet, text_encoder):
    """The smallest object diffusers' StableDiffusionLoraLoaderMixin (load_lora_weights, set_adapters) works on:
    a pipeline's unet and text_encoder, no device map, no offloading."""
    from diffusers.loaders import StableDiffusionLoraLoaderMixin

    class TinyPipeline(StableDiffusionLoraLoaderMixin):
        hf_device_map = None

        def __init__(self):
            self.unet, self.text_encoder = unet, text_encoder

        @property
        def components(self):
            return {"unet": self.unet, "text_encoder": self.text_encoder}
    return TinyPipeline()


@contextlib.contextmanager
def trained(module, r: int, alpha: float, targets: list[str], **config):
    """`module` with a PEFT LoRA adapter ("default") attached as the training scripts attach it (add_adapter with
    a LoraConfig), its weights seeded by (r, targets): lora_A fan-in scaled, lora_B big enough to change the output
    visibly. On exit the adapter is removed again (diffusers' unload_lora_weights path), so one module serves
    every file."""
    from diffusers.utils.peft_utils import recurse_remove_peft_layers
    from peft import LoraConfig
    with peft_in_transformers():
        module.add_adapter(LoraConfig(r=r, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=targets,
                                      **config))
    g = torch.Generator().manual_seed(tiny_models.SEED + r + sum(map(ord, "".join(targets))))
    with torch.no_grad():
        for name, p in module.named_parameters():
            if ".lora_A." in name:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(math.prod(p.shape[1:])))
            elif ".lora_B." in name:
                p.copy_(torch.randn(p.shape, generator=g) * (0.3 / math.sqrt(p.shape[1])))
    try:
        yield module
    finally:
        recurse_remove_peft_layers(module)
        del module.peft_config
        module._hf_peft_config_loaded = None


def _save(folder: Path, name: str, unet, text_encoder, convert) -> Path:
    from diffusers.loaders import StableDiffusionLoraLoaderMixin
    from diffusers.training_utils import _collate_lora_metadata
    from peft.utils import get_peft_model_state_dict
    layers = {part: convert(get_peft_model_state_dict(m)) if m is not None else None
              for part, m in (("unet", unet), ("text_encoder", text_encoder))}
    StableDiffusionLoraLoaderMixin.save_lora_weights(
        str(folder), unet_lora_layers=layers["unet"], text_encoder_lora_layers=layers["text_encoder"],
        weight_name=name, **_collate_lora_metadata({"unet": unet, "text_encoder": text_encoder}))
    return folder / name


def save_diffusers_training_script(folder: Path, name: str, unet, text_encoder=None) -> Path:
    """What diffusers' training scripts save: each part through convert_state_dict_to_diffusers(
    get_peft_model_state_dict(part)), then save_lora_weights with each part's LoraConfig as adapter metadata."""
    from diffusers.utils import convert_state_dict_to_diffusers
    return _save(folder, name, unet, text_encoder, convert_state_dict_to_diffusers)


def save_peft(folder: Path, name: str, unet, text_encoder=None) -> Path:
    """PEFT's own state dict (`lora_A` / `lora_B`), saved with save_lora_weights and the adapter metadata."""
    return _save(folder, name, unet, text_encoder, lambda sd: sd)


def save_kohya_from_diffusers(source: Path, dest: Path) -> Path:
    """diffusers' kohya export (train_dreambooth_lora_sdxl.py --output_kohya_format) of a diffusers-saved file."""
    from diffusers.utils import convert_all_state_dict_to_peft, convert_state_dict_to_kohya
    from safetensors.torch import load_file, save_file
    save_file(convert_state_dict_to_kohya(convert_all_state_dict_to_peft(load_file(str(source)))), str(dest))
    return dest


def save_kohya(dest: Path, unet, alpha: float, text_encoder=None, block_names: str = "diffusers",
               dtype=torch.float16, metadata: dict | None = None) -> Path:
    """kohya's layout as the GitHub-only trainers write it from PEFT weights: `lora_unet_<module path, . → _>` with
    `.lora_down.weight` / `.lora_up.weight` and an `.alpha` tensor (the LoraConfig's lora_alpha, not the rank),
    `lora_te_text_model_…` for the SD1.x text encoder (transformers 4 names, which these trainers pin), all in
    `dtype`. It is the rule of `get_module_kohya_state_dict` in diffusers' LCM-LoRA scripts (the published LCM-LoRAs)
    and PCM's, of DMD2's `extract_lora_module.py`, and of kohya-ss/sd-scripts (which also writes `ss_*` metadata:
    `metadata`). `block_names` "sgm" names UNet layers as sd-scripts' SDXL UNet does (ldm `input_blocks_1_1_…`),
    "diffusers" as the others do (`down_blocks_0_attentions_0_…`)."""
    import comfy.utils
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file
    to_sgm = {d[: -len(".weight")]: s[: -len(".weight")]
              for d, s in comfy.utils.unet_to_diffusers(tiny_models.ARCHS["sd15"].unet).items()
              if d.endswith(".weight")}
    out = {}
    for prefix, module in (("lora_unet_", unet), ("lora_te_", text_encoder)):
        if module is None:
            continue
        for key, value in get_peft_model_state_dict(module).items():
            layer, _, kind = key.rpartition(".lora_")
            if prefix == "lora_unet_" and block_names == "sgm":
                layer = to_sgm[layer]
            if prefix == "lora_te_" and not layer.startswith("text_model."):
                layer = "text_model." + layer   # transformers 4's CLIPTextModel.text_model.…
            base = prefix + layer.replace(".", "_")
            out[f"{base}.lora_{'down' if kind.startswith('A') else 'up'}.weight"] = value
            out[f"{base}.alpha"] = torch.tensor(float(alpha))
    save_file({k: v.to(dtype) for k, v in out.items()}, str(dest), metadata=metadata)
    return dest
