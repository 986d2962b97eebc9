"""LoRA alpha: where trainers put it, and the one convention LCM Kit applies per file layout (README, LoRAs).

ComfyUI (comfy.lora) scales a LoRA layer by alpha/rank when the file has a `<layer>.alpha` tensor, else by 1.
- kohya layout (`lora_down` / `lora_up`, sd-scripts, the published LCM-LoRAs): `.alpha` tensors, alpha/rank.
  Core, diffusers and kohya agree; a kohya file without them means alpha = rank (kohya's own loader). The
  `ss_network_alpha` metadata only repeats the tensors.
- Files saved by diffusers' `save_lora_weights` with adapter metadata (its training scripts): alpha is in the
  safetensors metadata `lora_adapter_metadata`, the JSON of PEFT's LoraConfig per component, keys prefixed
  with the component (`unet.lora_alpha`, `unet.r`, `unet.rank_pattern`, `unet.alpha_pattern`,
  `unet.use_rslora`, `text_encoder.…`). The tensors come in every spelling diffusers writes: PEFT's
  (`lora_A` / `lora_B`), or `convert_state_dict_to_diffusers(get_peft_model_state_dict(…))`'s, which the
  training scripts save: `….to_q.lora.down.weight` for UNet attention, `….q_proj.lora_linear_layer.down.weight`
  for text-encoder attention, `lora_A` for the other layers. diffusers converts them all to PEFT and scales by
  lora_alpha/r (lora_alpha/√r with rsLoRA); core ComfyUI ignores the metadata. `metadata_alphas` turns it into
  `.alpha` tensors, so comfy.lora applies diffusers' scale with its own key mapping.
- PEFT layout with `.alpha` tensors (converters and trainers that follow kohya): alpha/rank, as core's
  LoraLoader applies them (diffusers ignores these tensors). Where a layer has both, its tensor wins.
No ComfyUI imports: key names, shapes and metadata in, numbers out.
"""
from __future__ import annotations

import json
import math
import re

METADATA_KEY = "lora_adapter_metadata"          # diffusers' LORA_ADAPTER_METADATA_KEY
# The down-projection key in each spelling diffusers saves beside its metadata: PEFT's, diffusers' UNet and
# text-encoder ones (convert_state_dict_to_diffusers), and the old attention-processor one (`to_q_lora.down`).
METADATA_DOWN_SUFFIXES = (".lora_A.weight", ".lora_A.default.weight", ".lora.down.weight",
                          ".lora_linear_layer.down.weight", "_lora.down.weight")
PEFT_DEFAULT_R = PEFT_DEFAULT_ALPHA = 8          # peft.LoraConfig defaults, used when the metadata omits them


def adapter_configs(metadata: dict | None) -> dict[str, dict]:
    """{component prefix: LoraConfig fields} from diffusers' adapter metadata ("" for a model-level file whose
    keys carry no component prefix); {} when the file has none. Raises ValueError for metadata that is not
    the JSON object diffusers writes."""
    raw = (metadata or {}).get(METADATA_KEY)
    if not raw:
        return {}
    try:
        fields = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(fields, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        raise ValueError(f"its safetensors metadata '{METADATA_KEY}' is not valid ({e}), so its LoRA alpha is "
                         f"unknown. Save the LoRA again with diffusers' save_lora_weights.") from None
    configs: dict[str, dict] = {}
    for key, value in fields.items():
        prefix, _, field = str(key).rpartition(".")
        configs.setdefault(prefix, {})[field] = value
    return configs


def _pattern_value(patterns, name: str, default):
    """PEFT's rank_pattern / alpha_pattern lookup: the first pattern p (in the file's order) with
    re.match(r"(.*\\.)?(p)$", name), as peft.utils.other.get_pattern_key."""
    for pattern, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({pattern})$", name):
            return value
    return default


def metadata_alphas(shapes: dict[str, tuple], metadata: dict | None) -> dict[str, float]:
    """{'<layer>.alpha': value} for the layers in a diffusers spelling (METADATA_DOWN_SUFFIXES) whose alpha is in
    diffusers' adapter metadata and not in an `.alpha` tensor. value = scale·rank, so that comfy.lora's alpha/rank
    is PEFT's scale: lora_alpha/r, per layer from rank_pattern / alpha_pattern, or lora_alpha/√r with use_rslora.
    `shapes` maps the file's keys to their tensor shapes."""
    configs = adapter_configs(metadata)
    if not configs:
        return {}
    prefixes = sorted((p for p in configs if p), key=len, reverse=True)
    out = {}
    for key, shape in shapes.items():
        suffix = next((s for s in METADATA_DOWN_SUFFIXES if key.endswith(s)), None)
        if suffix is None or len(shape) < 2:
            continue
        layer = key[: -len(suffix)]
        if f"{layer}.alpha" in shapes:
            continue
        prefix = next((p for p in prefixes if layer.startswith(p + ".")), "")
        config = configs.get(prefix)
        if config is None:
            continue
        # the module path PEFT matches patterns against (diffusers drops `.processor.` when it converts)
        name = (layer[len(prefix) + 1:] if prefix else layer).replace(".processor.", ".")
        r = _pattern_value(config.get("rank_pattern"), name, config.get("r", PEFT_DEFAULT_R))
        alpha = _pattern_value(config.get("alpha_pattern"), name, config.get("lora_alpha", PEFT_DEFAULT_ALPHA))
        scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
        out[f"{layer}.alpha"] = float(scale) * int(shape[0])
    return out
