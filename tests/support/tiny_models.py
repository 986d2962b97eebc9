"""Tiny, seeded, deterministic models that ComfyUI's own loaders detect as the real architectures.

Built with ComfyUI's own model classes so every key name is exact, filled with seeded random values,
and written once into an ignored cache (`.testbed/models/`); nothing is downloaded or committed.

What ComfyUI's detection needs (measured on v0.3.75):
- SD1.5: context_dim 768, model_channels 320, no linear-in-transformer, no adm. One level
  (channel_mult [1]) with one res block and transformer_depth [1] is enough.
- SDXL: model_channels 320, context 2048, adm 2816 and transformer_depth [0,0,2,2,10,10] (3 levels,
  2 res blocks each); SSD-1B the same with [0,0,2,2,4,4]. channel_mult [1,1,1] is the smallest width.
- Text encoders: ComfyUI's CLIP-L (and CLIP-G for SDXL) configs are fixed; without them the
  checkpoint loader returns clip=None, so they are included (stored fp16).
- VAE: a TAESD-layout state dict under `first_stage_model.taesd_*` is detected as the VAE.

Every function here needs ComfyUI importable (see support.comfy_env.bootstrap).
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

SEED = 20241127
FORMAT_VERSION = "1"  # bump to regenerate every cached model


@dataclass(frozen=True)
class Arch:
    name: str              # sd15 | sdxl | ssd1b
    supported_model: str   # ComfyUI's class in comfy.supported_models
    unet: dict             # UNetModel kwargs


SD15_UNET = dict(
    image_size=32, in_channels=4, out_channels=4, model_channels=320, num_res_blocks=[1], channel_mult=[1],
    transformer_depth=[1], transformer_depth_output=[1, 1], transformer_depth_middle=1, context_dim=768,
    num_heads=8, num_head_channels=-1, use_linear_in_transformer=False, use_spatial_transformer=True,
    legacy=False, adm_in_channels=None, use_temporal_attention=False, use_temporal_resblock=False,
)
_SDXL_COMMON = dict(
    image_size=32, in_channels=4, out_channels=4, model_channels=320, num_res_blocks=[2, 2, 2],
    channel_mult=[1, 1, 1], context_dim=2048, num_heads=-1, num_head_channels=64,
    use_linear_in_transformer=True, use_spatial_transformer=True, legacy=False, num_classes="sequential",
    adm_in_channels=2816, use_temporal_attention=False, use_temporal_resblock=False,
)
ARCHS = {
    "sd15": Arch("sd15", "SD15", SD15_UNET),
    "sdxl": Arch("sdxl", "SDXL", dict(_SDXL_COMMON, transformer_depth=[0, 0, 2, 2, 10, 10],
                                       transformer_depth_output=[0, 0, 0, 2, 2, 2, 10, 10, 10],
                                       transformer_depth_middle=10)),
    "ssd1b": Arch("ssd1b", "SSD1B", dict(_SDXL_COMMON, transformer_depth=[0, 0, 2, 2, 4, 4],
                                          transformer_depth_output=[0, 0, 0, 1, 1, 2, 10, 4, 4],
                                          transformer_depth_middle=-1)),
}


def models_dir() -> Path:
    root = os.environ.get("LCM_KIT_TESTBED")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / ".testbed"
    d = base / "models" / f"v{FORMAT_VERSION}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _generator(tag: str) -> torch.Generator:
    g = torch.Generator().manual_seed(SEED + sum(ord(c) * (i + 1) for i, c in enumerate(tag)))
    return g


@torch.no_grad()
def fill_(module: torch.nn.Module, tag: str) -> torch.nn.Module:
    """Give every parameter a seeded value of a sensible scale (fan-in scaled weights, unit norms)."""
    g = _generator(tag)
    for name, p in module.named_parameters():
        if p.ndim == 1 and ("norm" in name or name.endswith("ln_1.weight") or name.endswith("ln_2.weight")) \
                and name.endswith("weight"):
            value = 1.0 + 0.02 * torch.randn(p.shape, generator=g)
        elif p.ndim <= 1:
            value = 0.02 * torch.randn(p.shape, generator=g)
        else:
            fan_in = math.prod(p.shape[1:])
            value = torch.randn(p.shape, generator=g) / math.sqrt(fan_in)
        p.copy_(value.to(p.dtype))
    return module


def _atomic_save(tensors: dict, path: Path, metadata: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# --------------------------------------------------------------------------------------------------
# Builders (ComfyUI classes)
# --------------------------------------------------------------------------------------------------

def build_unet(arch: str, dtype=torch.float32, tag: str | None = None):
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
    unet = UNetModel(**ARCHS[arch].unet, dtype=dtype, operations=comfy.ops.disable_weight_init)
    return fill_(unet, tag or f"unet-{arch}")


def build_clip_sd(arch: str) -> dict:
    """State dict of ComfyUI's text encoder(s) for `arch`, as CLIP.get_sd() returns it."""
    import comfy.sd
    import comfy.supported_models
    target = getattr(comfy.supported_models, ARCHS[arch].supported_model)(ARCHS[arch].unet).clip_target()
    clip = comfy.sd.CLIP(target, model_options={"dtype": torch.float16, "initial_device": torch.device("cpu")})
    fill_(clip.cond_stage_model, f"clip-{'sdxl' if arch != 'sd15' else 'sd15'}")
    return clip.get_sd()


def build_taesd_sd() -> dict:
    import comfy.taesd.taesd
    vae = comfy.taesd.taesd.TAESD(latent_channels=4)
    fill_(vae, "taesd")
    return {k: v for k, v in vae.state_dict().items()}


def checkpoint_state_dict(arch: str) -> dict:
    import comfy.supported_models
    cfg = getattr(comfy.supported_models, ARCHS[arch].supported_model)(ARCHS[arch].unet)
    unet = build_unet(arch)
    sd = {f"model.diffusion_model.{k}": v.to(torch.float16) for k, v in unet.state_dict().items()}
    sd.update(cfg.process_clip_state_dict_for_saving(build_clip_sd(arch)))
    sd.update({f"first_stage_model.{k}": v.to(torch.float16) for k, v in build_taesd_sd().items()})
    return sd


def controlnet_state_dict(arch: str = "sd15") -> dict:
    import comfy.cldm.cldm
    import comfy.ops
    cfg = {k: v for k, v in ARCHS[arch].unet.items() if k not in {"out_channels", "transformer_depth_output"}}
    net = comfy.cldm.cldm.ControlNet(**cfg, hint_channels=3, operations=comfy.ops.disable_weight_init)
    fill_(net, f"controlnet-{arch}")
    return {f"control_model.{k}": v.to(torch.float16) for k, v in net.state_dict().items()}


# --------------------------------------------------------------------------------------------------
# LoRA files
# --------------------------------------------------------------------------------------------------

ATTN_TARGETS = (".to_q.", ".to_k.", ".to_v.", ".to_out.0.", ".proj_in.", ".proj_out.")
TE_ATTN = ("q_proj", "k_proj", "v_proj", "out_proj")


def unet_lora_targets(arch: str, kind: str) -> dict[str, tuple]:
    """diffusers module name -> weight shape, for the UNet layers a LoRA of `kind` targets.

    `lcm` targets every linear and conv layer (as the published LCM-LoRAs do), `style` the attention
    projections only (as most style LoRAs do)."""
    import comfy.utils
    unet = build_unet(arch, tag="shapes")
    shapes = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    out = {}
    for dkey, lkey in sorted(comfy.utils.unet_to_diffusers(ARCHS[arch].unet).items()):
        if not dkey.endswith(".weight") or lkey not in shapes or len(shapes[lkey]) not in (2, 4):
            continue
        name = dkey[: -len(".weight")]
        if kind == "style" and not any(t in name + "." for t in ATTN_TARGETS):
            continue
        out[name] = shapes[lkey]
    return out


def te_lora_targets(arch: str) -> dict[str, tuple]:
    """(encoder prefix, layer name) -> shape for the text-encoder attention projections."""
    layers = {"clip_l": (12, 768)}
    if arch != "sd15":
        layers["clip_g"] = (32, 1280)
    out = {}
    for enc, (n, width) in layers.items():
        for b in range(n):
            for proj in TE_ATTN:
                out[(enc, f"text_model.encoder.layers.{b}.self_attn.{proj}")] = (width, width)
    return out


def _lora_pair(shape: tuple, rank: int, g: torch.Generator, scale: float):
    out_ch, in_ch = shape[0], shape[1]
    if len(shape) == 4:
        down = torch.randn((rank, in_ch, shape[2], shape[3]), generator=g) / math.sqrt(in_ch * shape[2] * shape[3])
        up = torch.randn((out_ch, rank, 1, 1), generator=g) * (scale / math.sqrt(rank))
    else:
        down = torch.randn((rank, in_ch), generator=g) / math.sqrt(in_ch)
        up = torch.randn((out_ch, rank), generator=g) * (scale / math.sqrt(rank))
    return down, up


def lora_state_dict(arch: str, kind: str, layout: str, with_te: bool = True, alpha: bool = True) -> dict:
    """A LoRA for `arch` in one of the layouts users meet:

    - `kohya`: `lora_unet_<diffusers name with _>.lora_down.weight` / `lora_up.weight` / `.alpha` and
      `lora_te[1|2]_text_model_...` (sd-scripts; also the layout of the published LCM-LoRA files);
    - `peft`: `unet.<diffusers name>.lora_A.weight` / `lora_B.weight` and `text_encoder[_2].…`
      (diffusers / PEFT `save_lora_weights`), with or without `.alpha`.
    """
    rank = 8 if kind == "lcm" else 4
    scale = 0.5 if kind == "lcm" else 0.3
    g = _generator(f"lora-{arch}-{kind}")
    sd: dict[str, torch.Tensor] = {}

    def put(base: str, down, up):
        if layout == "kohya":
            sd[f"{base}.lora_down.weight"], sd[f"{base}.lora_up.weight"] = down, up
        else:
            sd[f"{base}.lora_A.weight"], sd[f"{base}.lora_B.weight"] = down, up
        if alpha:
            sd[f"{base}.alpha"] = torch.tensor(float(rank // 2))

    for name, shape in unet_lora_targets(arch, kind).items():
        base = f"lora_unet_{name.replace('.', '_')}" if layout == "kohya" else f"unet.{name}"
        put(base, *_lora_pair(shape, rank, g, scale))
    if with_te:
        for (enc, name), shape in te_lora_targets(arch).items():
            if layout == "kohya":
                te = "lora_te" if arch == "sd15" else ("lora_te1" if enc == "clip_l" else "lora_te2")
                base = f"{te}_{name.replace('.', '_')}"
            else:
                base = ("text_encoder." if enc == "clip_l" else "text_encoder_2.") + name
            put(base, *_lora_pair(shape, rank, g, scale))
    return {k: v.to(torch.float16) for k, v in sd.items()}


# --------------------------------------------------------------------------------------------------
# The catalogue: file name -> how to build it
# --------------------------------------------------------------------------------------------------

def catalogue() -> dict[str, tuple[str, callable]]:
    """`{relative path under models/: (ComfyUI folder, builder)}`."""
    items = {
        "checkpoints/tiny-sd15.safetensors": lambda: checkpoint_state_dict("sd15"),
        "checkpoints/tiny-sdxl.safetensors": lambda: checkpoint_state_dict("sdxl"),
        "checkpoints/tiny-ssd1b.safetensors": lambda: checkpoint_state_dict("ssd1b"),
        "controlnet/tiny-sd15-controlnet.safetensors": lambda: controlnet_state_dict("sd15"),
        "vae_approx/taesd_decoder.safetensors":
            lambda: {k[len("taesd_decoder."):]: v for k, v in build_taesd_sd().items() if k.startswith("taesd_decoder.")},
        "vae_approx/taesd_encoder.safetensors":
            lambda: {k[len("taesd_encoder."):]: v for k, v in build_taesd_sd().items() if k.startswith("taesd_encoder.")},
    }
    for arch in ("sd15", "sdxl"):
        for kind in ("lcm", "style"):
            for layout in ("kohya", "peft"):
                items[f"loras/tiny-{arch}-{kind}-{layout}.safetensors"] = \
                    (lambda a=arch, k=kind, lay=layout: lora_state_dict(a, k, lay))
        items[f"loras/tiny-{arch}-style-peft-noalpha.safetensors"] = \
            (lambda a=arch: lora_state_dict(a, "style", "peft", alpha=False))
    items.update(lcm_checkpoint_catalogue())
    return items


def ensure(*names: str) -> dict[str, Path]:
    """Generate the named files (relative paths from `catalogue()`) if missing; return their paths."""
    root = models_dir()
    paths = {name: root / name for name in names}
    if all(path.exists() for path in paths.values()):
        return paths
    cat = catalogue()
    # Parallel test workers may ask for the same file: one generates it, the others wait and reuse it.
    with open(root / ".generate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        timings = _read_timings(root)
        for name, path in paths.items():
            if not path.exists():
                t0 = time.perf_counter()
                _atomic_save(cat[name](), path, metadata={"lcm_kit_tiny_model": name})
                timings[name] = {"generate_s": round(time.perf_counter() - t0, 2), "bytes": path.stat().st_size}
                _write_timings(root, timings)
    return paths


def _read_timings(root: Path) -> dict:
    f = root / "timings.json"
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError):
        return {}


def _write_timings(root: Path, timings: dict) -> None:
    tmp = root / "timings.json.partial"
    tmp.write_text(json.dumps(timings, indent=1, sort_keys=True))
    os.replace(tmp, root / "timings.json")


# --------------------------------------------------------------------------------------------------
# The same UNets in diffusers form (numerical reference)
# --------------------------------------------------------------------------------------------------

def diffusers_unet_config(unet_config: dict) -> dict:
    """UNet2DConditionModel kwargs equivalent to a ComfyUI (ldm) UNet config."""
    levels = len(unet_config["channel_mult"])
    nrb = unet_config["num_res_blocks"]
    nrb = nrb[0] if isinstance(nrb, (list, tuple)) else nrb
    mc = unet_config["model_channels"]
    chans = [mc * m for m in unet_config["channel_mult"]]
    td = [unet_config["transformer_depth"][i * nrb] for i in range(levels)]
    if unet_config.get("num_head_channels", -1) != -1:
        heads = [c // unet_config["num_head_channels"] for c in chans]
    else:
        heads = [unet_config["num_heads"]] * levels
    cfg = dict(
        sample_size=unet_config.get("image_size", 32), in_channels=unet_config["in_channels"],
        out_channels=unet_config["out_channels"], layers_per_block=nrb, block_out_channels=tuple(chans),
        down_block_types=tuple("CrossAttnDownBlock2D" if d else "DownBlock2D" for d in td),
        up_block_types=tuple("CrossAttnUpBlock2D" if d else "UpBlock2D" for d in reversed(td)),
        transformer_layers_per_block=tuple(max(d, 1) for d in td),
        cross_attention_dim=unet_config["context_dim"], attention_head_dim=tuple(heads),
        use_linear_projection=unet_config["use_linear_in_transformer"], norm_num_groups=32,
    )
    tdo = unet_config.get("transformer_depth_output")
    if tdo and any(d not in (0, 1) for d in tdo):
        per_up = [tdo[i * (nrb + 1):(i + 1) * (nrb + 1)] for i in range(levels)]
        cfg["reverse_transformer_layers_per_block"] = [
            [max(x, 1) for x in blk] for blk in reversed(per_up)]
    if unet_config.get("adm_in_channels"):
        cfg.update(addition_embed_type="text_time", addition_time_embed_dim=256,
                   projection_class_embeddings_input_dim=unet_config["adm_in_channels"])
    if unet_config.get("transformer_depth_middle") not in (None, 1):
        tdm = unet_config["transformer_depth_middle"]
        if tdm < 0:
            cfg["mid_block_type"] = None
        else:
            cfg["transformer_layers_per_block"] = cfg["transformer_layers_per_block"]
    return cfg


def diffusers_unet(arch: str, comfy_unet_sd: dict | None = None, extra_config: dict | None = None):
    """A diffusers UNet2DConditionModel with exactly the weights of ComfyUI's tiny `arch` UNet."""
    import comfy.utils
    from diffusers import UNet2DConditionModel
    if comfy_unet_sd is None:
        comfy_unet_sd = build_unet(arch).state_dict()
    full_cfg = ARCHS[arch].unet
    cfg = diffusers_unet_config(full_cfg)
    cfg.update(extra_config or {})
    model = UNet2DConditionModel(**cfg)
    mapping = comfy.utils.unet_to_diffusers(full_cfg)
    wanted = model.state_dict().keys()  # ComfyUI maps SDXL's label_emb under two diffusers names
    converted = {dk: comfy_unet_sd[lk].float() for dk, lk in mapping.items() if lk in comfy_unet_sd and dk in wanted}
    missing, unexpected = model.load_state_dict(converted, strict=False)
    missing = [m for m in missing if not m.startswith("time_embedding.cond_proj")]
    if missing or unexpected:
        raise RuntimeError(f"diffusers conversion of tiny {arch}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()


# --------------------------------------------------------------------------------------------------
# Full LCM checkpoints: the tiny SD1.5 UNet with a guidance ("w") embedding, cond_proj [320, 256]
# --------------------------------------------------------------------------------------------------

LCM_COND_PROJ_DIM = 256
LCM_CKPT_COND_KEY = "model.diffusion_model.time_embedding.cond_proj.weight"  # diffusers' converter keeps it so
LCM_UNET_FOLDER = "diffusion_models/tiny-sd15-lcm-unet"


def lcm_cond_proj() -> torch.Tensor:
    """A seeded cond_proj weight [model_channels, 256] (fp16, like the checkpoint's other weights)."""
    g = _generator("lcm-cond-proj")
    width = ARCHS["sd15"].unet["model_channels"]
    # 4× a fan-in scale, so that guidance visibly changes the tiny UNet's output (≈1e-3 and up)
    return (torch.randn((width, LCM_COND_PROJ_DIM), generator=g) * (4 / math.sqrt(LCM_COND_PROJ_DIM))).to(torch.float16)


def lcm_diffusers_unet(comfy_unet_sd: dict | None = None):
    """The tiny SD1.5 LCM UNet as diffusers' UNet2DConditionModel (time_cond_proj_dim 256), with the
    checkpoint's fp16 values (the reference for parity tests, and what the diffusers folder holds)."""
    if comfy_unet_sd is None:
        comfy_unet_sd = {k: v.to(torch.float16) for k, v in build_unet("sd15").state_dict().items()}
    unet = diffusers_unet("sd15", comfy_unet_sd, {"time_cond_proj_dim": LCM_COND_PROJ_DIM})
    with torch.no_grad():
        unet.time_embedding.cond_proj.weight.copy_(lcm_cond_proj().float())
    return unet


def _lcm_unet_folder_weights() -> dict:
    unet = lcm_diffusers_unet()
    unet.save_config(str(models_dir() / LCM_UNET_FOLDER))   # config.json first: the weights file marks it done
    return {k: v.to(torch.float16) for k, v in unet.state_dict().items()}


def lcm_checkpoint_catalogue() -> dict:
    return {
        "checkpoints/tiny-sd15-lcm.safetensors":
            lambda: dict(checkpoint_state_dict("sd15"), **{LCM_CKPT_COND_KEY: lcm_cond_proj()}),
        f"{LCM_UNET_FOLDER}/diffusion_pytorch_model.safetensors": _lcm_unet_folder_weights,
    }
