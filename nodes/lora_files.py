"""LoRA file inspection: what a file is (LoRA or full model), which base model it was trained for and
whether it looks like an LCM-LoRA, from key names and shapes only — no ComfyUI imports.

A `.safetensors` header (8-byte length + JSON with every tensor's dtype, shape and byte range) tells
all of that without reading a single tensor, so the whole loras folder can be scanned cheaply and a
bad file is rejected before anything is loaded. The `safetensors` library reads and validates the header
(a hostile one fails there, as the same library would fail on it at load time); inspections are cached
by (path, size, mtime).

Signals used:
- base model: the input width of the UNet cross-attention keys/values (`attn2.to_k`, `attn2.to_v`) is
  the text-embedding width: 768 SD1.x, 1024 SD2.x, 2048 SDXL family; a second text encoder
  (`lora_te2_…`, `text_encoder_2.…`) also means SDXL;
- LCM-LoRA: consistency distillation trains the whole UNet, so the file covers the ResNet 3×3
  convolutions besides attention, at rank ≥ 8 (the published LCM-LoRAs have kohya-layout keys over the
  whole UNet); most style LoRAs touch attention only. How much of the model's UNet a file
  covers is measured against the model by the caller (`lcm_lora_auto.find_lcm_lora`).
"""
from __future__ import annotations

import collections
import os
import re
import stat
from dataclasses import dataclass, field

from safetensors import safe_open

# Key suffixes of the adapter formats ComfyUI's weight adapters load (LoRA, LoHa, LoKr, OFT, diff).
ADAPTER_SUFFIXES = (
    ".lora_down.weight", ".lora_up.weight", ".lora_mid.weight", ".lora_A.weight", ".lora_B.weight",
    ".lora_A.default.weight", ".lora_B.default.weight", ".lora_A", ".lora_B",
    ".lora.down.weight", ".lora.up.weight", "_lora.down.weight", "_lora.up.weight",
    ".lora_linear_layer.down.weight", ".lora_linear_layer.up.weight",
    ".alpha", ".dora_scale", ".hada_w1_a", ".hada_w1_b", ".hada_w2_a", ".hada_w2_b", ".hada_t1", ".hada_t2",
    ".lokr_w1", ".lokr_w2", ".lokr_w1_a", ".lokr_w1_b", ".lokr_w2_a", ".lokr_w2_b", ".lokr_t2",
    ".oft_blocks", ".oft_diag", ".rescale", ".w_norm", ".b_norm", ".diff", ".diff_b", ".set_weight",
)
DOWN_SUFFIXES = (".lora_down.weight", ".lora_A.weight", ".lora_A.default.weight", ".lora.down.weight",
                 "_lora.down.weight", ".lora_linear_layer.down.weight")
UNET_PREFIXES = ("lora_unet_", "unet.", "lycoris_", "diffusion_model.", "down_blocks.", "mid_block.", "up_blocks.")
TE_PREFIXES = ("lora_te", "text_encoder", "text_encoders.", "lora_prior_te")
TE2_PREFIXES = ("lora_te2_", "text_encoder_2.")
# Keys that mark a full model (checkpoint, UNet, VAE or text encoder), not an adapter.
MODEL_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "first_stage_model.", "cond_stage_model.",
                  "conditioner.", "input_blocks.", "middle_block.", "output_blocks.", "down_blocks.",
                  "double_blocks.", "encoder.down.", "decoder.up.", "text_model.encoder.")

FAMILY_BY_CONTEXT_DIM = {768: "SD1.5", 1024: "SD2.x", 2048: "SDXL"}


class LoraFileError(ValueError):
    """A LoRA file that cannot be used; the message names the file and says what to do."""


def family_for_context_dim(dim) -> str:
    return FAMILY_BY_CONTEXT_DIM.get(dim, f"a model with {dim}-wide text embeddings" if dim else "unknown")


def file_key(path: str) -> tuple:
    st = os.stat(path)
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns)


_FIX = "Copy or download it again (compare its size with the source) or remove it from the loras folder."


def _unreadable(path: str, error: OSError) -> LoraFileError:
    return LoraFileError(f"{os.path.basename(path)} cannot be read ({error.strerror or type(error).__name__}). "
                         f"Check that the file (or the file a link points to) exists and is readable.")


def _header_problem(error: Exception, size: int) -> str:
    """What a safetensors reader error says is wrong, in our words: the library's own text can quote the
    file (a string where a number belongs, an unknown dtype, a tensor name), and no message may do that.
    Both spellings of the library's error kinds are matched (0.4: `HeaderTooLarge`, 0.8: `header too large`)."""
    kind = re.sub(r"[^a-z]", "", str(error).lower())
    if any(k in kind for k in ("invalidjson", "deserialization", "invalidutf", "headerstart", "startcharacter")):
        detail = "its header is not the JSON a safetensors file has"
    elif "headertoosmall" in kind:
        detail = f"{size} bytes: too small for a header"
    elif "headertoolarge" in kind or "invalidheaderlength" in kind:
        detail = f"header too large for a {size}-byte file"
    elif "metadataincompletebuffer" in kind or "filenotfullycovered" in kind:
        return (f"is truncated: its header describes more tensor data than the {size} bytes the file holds "
                f"(or the file is damaged)")
    elif "offset" in kind or "shape" in kind or "overflow" in kind:
        detail = "the tensor shapes, data types and byte ranges in its header disagree"
    else:
        detail = "its header cannot be read as safetensors"
    return f"is corrupt or not a safetensors file ({detail})"


def read_safetensors_header(path: str) -> tuple[dict[str, tuple[str, tuple]], dict]:
    """{tensor name: (dtype, shape)} and the metadata of a .safetensors file, reading only its header.

    The `safetensors` library (a ComfyUI requirement) parses and validates the header: keys, metadata (a map
    of strings), each tensor's dtype, shape and byte range against the file size; no tensor data is read.
    Raises LoraFileError naming the file, what is wrong and the fix, for a file that is missing, not a
    regular file, truncated, not safetensors or has a broken header. The message never quotes the file."""
    name = os.path.basename(path)
    try:
        st = os.stat(path)
    except OSError as e:
        raise _unreadable(path, e) from None
    if not stat.S_ISREG(st.st_mode):
        raise LoraFileError(f"{name} is not a regular file (a device, pipe or folder): remove it from the loras "
                            f"folder.")
    try:
        with safe_open(path, framework="pt") as f:
            tensors = {}
            for key in f.keys():
                part = f.get_slice(key)
                tensors[key] = (str(part.get_dtype()), tuple(int(n) for n in part.get_shape()))
            metadata = dict(f.metadata() or {})
    except OSError as e:
        raise _unreadable(path, e) from None
    except Exception as e:   # the library's SafetensorError, and whatever else a hostile header provokes
        raise LoraFileError(f"{name} {_header_problem(e, st.st_size)}. {_FIX}") from None
    return tensors, metadata


def module_name(key: str) -> str | None:
    """The layer a LoRA key belongs to (the key without its adapter suffix), None if not an adapter key."""
    for suffix in ADAPTER_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return None


def _is_resnet_conv(module: str) -> bool:
    m = module.replace(".", "_")
    return ("resnets" in m and ("conv1" in m or "conv2" in m)) or "in_layers_2" in m or "out_layers_3" in m


@dataclass(frozen=True)
class LoraInfo:
    """What a file's keys and shapes say about it."""
    kind: str                         # "lora" | "model" (a checkpoint / UNet / VAE / text encoder) | "unknown"
    unet_modules: frozenset = field(default_factory=frozenset)
    te_modules: frozenset = field(default_factory=frozenset)
    cross_attention_dim: int | None = None   # UNet attn2 key/value input width
    te_widths: frozenset = field(default_factory=frozenset)
    has_te2: bool = False
    rank: int = 0                     # the largest LoRA rank in the file
    covers_resnet_convs: bool = False
    training_metadata: bool = False   # kohya sd-scripts `ss_*` metadata (style LoRAs; LCM-LoRAs carry none)

    @property
    def family(self) -> str | None:
        if self.cross_attention_dim in FAMILY_BY_CONTEXT_DIM:
            return FAMILY_BY_CONTEXT_DIM[self.cross_attention_dim]
        if self.has_te2 or 1280 in self.te_widths:
            return "SDXL"
        if 1024 in self.te_widths:
            return "SD2.x"
        if self.te_widths == frozenset({768}):
            return "SD1.5"
        return None

    @property
    def looks_like_lcm_lora(self) -> bool:
        """UNet-wide (ResNet convs included) at rank ≥ 8; the caller also checks coverage of the model."""
        return self.kind == "lora" and self.covers_resnet_convs and self.rank >= 8 and bool(self.unet_modules)


def inspect_shapes(shapes: dict[str, tuple], metadata: dict | None = None) -> LoraInfo:
    """LoraInfo from {key: shape} (dtype ignored), e.g. a safetensors header or a loaded state dict."""
    unet, te, widths, attn_dims = set(), set(), set(), collections.Counter()
    rank, resnet_conv, te2, adapter_keys = 0, False, False, 0
    for key, shape in shapes.items():
        module = module_name(key)
        if module is None:
            continue
        adapter_keys += 1
        is_te = module.startswith(TE_PREFIXES)
        if is_te:
            te.add(module)
        elif module.startswith(UNET_PREFIXES):
            unet.add(module)
        te2 = te2 or module.startswith(TE2_PREFIXES)
        if not key.endswith(DOWN_SUFFIXES) or len(shape) < 2:
            continue
        rank = max(rank, int(shape[0]))
        m = module.replace(".", "_")
        if is_te:
            widths.add(int(shape[1]))
        elif "attn2" in m and (m.endswith("to_k") or m.endswith("to_v")):
            attn_dims[int(shape[1])] += 1
        if len(shape) == 4 and shape[2] * shape[3] > 1 and _is_resnet_conv(module):
            resnet_conv = True
    if adapter_keys:
        kind = "lora"
    elif any(k.startswith(MODEL_PREFIXES) for k in shapes):
        kind = "model"
    else:
        kind = "unknown"
    return LoraInfo(
        kind=kind, unet_modules=frozenset(unet), te_modules=frozenset(te),
        cross_attention_dim=attn_dims.most_common(1)[0][0] if attn_dims else None,
        te_widths=frozenset(widths), has_te2=te2, rank=rank, covers_resnet_convs=resnet_conv,
        training_metadata=any(str(k).startswith("ss_") for k in (metadata or {})),
    )


_CACHE: dict[tuple, LoraInfo | str] = {}   # a str: why the file was rejected


def inspect_file(path: str) -> LoraInfo:
    """Inspect a .safetensors file by its header; cached by (path, size, mtime), a rejection too (a bad file
    is read once, not on every run). Raises LoraFileError (naming the file) for anything wrong with it."""
    try:
        key = file_key(path)
    except OSError as e:
        raise _unreadable(path, e) from None
    info = _CACHE.get(key)
    if info is None:
        try:
            shapes, metadata = read_safetensors_header(path)
            info = inspect_shapes({k: s for k, (_, s) in shapes.items()}, metadata)
        except LoraFileError as e:
            info = str(e)
        if len(_CACHE) > 512:
            _CACHE.clear()
        _CACHE[key] = info
    if isinstance(info, str):
        raise LoraFileError(info)
    return info
