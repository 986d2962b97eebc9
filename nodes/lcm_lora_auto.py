"""lora_name auto: the LCM-LoRA in the loras folder that fits a model, chosen by what the files hold (keys and
shapes from their headers), never by their names."""
from __future__ import annotations

import logging
import os

from . import lora_files, status
from .lora_apply import lora_key_map, model_context_dim
from .lora_folder import loras_folders

log = logging.getLogger("lcm_kit")
MIN_LCM_FIT = 0.8         # coverage × precision of an LCM-LoRA against the model's UNet layers


def _lora_able_unet_weights(model) -> set[str]:
    return {k for k, v in model.model.state_dict().items()
            if k.startswith("diffusion_model.") and k.endswith(".weight") and v.ndim in (2, 4)}


_SKIPPED_LOGGED: set = set()   # (path, size, mtime) of unreadable files already named in the log


def _log_skipped_once(unreadable: list[tuple[str, str, str]]) -> None:
    """One log line naming the files auto skipped as unreadable, each file (version) named once per process."""
    new = []
    for name, path, why in unreadable:
        try:
            key = lora_files.file_key(path)
        except OSError:
            key = (path,)
        if key not in _SKIPPED_LOGGED:
            _SKIPPED_LOGGED.add(key)
            base = os.path.basename(path)
            new.append(f"{name} {why[len(base):].strip()}" if why.startswith(base) else f"{name}: {why}")
    if new:
        log.warning("%s lora_name auto skipped %d unreadable file(s) in the loras folder: %s", status.LOG_PREFIX,
                    len(new), " | ".join(new))


def find_lcm_lora(model, files: dict[str, str]) -> str:
    """The name (a key of `files`: name -> path) of the LCM-LoRA that fits `model`, chosen by file content.

    A candidate looks like an LCM-LoRA (UNet-wide, ResNet convs included, rank ≥ 8), has the model's
    cross-attention width, and its layers cover the model's UNet (coverage × precision ≥ 0.8). A kohya
    LoCon style LoRA can cover as much, so candidates without kohya training metadata (`ss_*`) come first,
    then those without a text-encoder part (the published LCM-LoRAs have neither), then by fit, then name."""
    ctx = model_context_dim(model)
    key_map = lora_key_map(model, None)
    lora_able = _lora_able_unet_weights(model)
    ranked, elsewhere, weak, unreadable = [], [], [], []
    for name in sorted(files):
        if not name.lower().endswith((".safetensors", ".sft")):
            continue
        try:
            info = lora_files.inspect_file(files[name])
        except lora_files.LoraFileError as e:   # one bad file must not stop auto for every graph
            unreadable.append((name, files[name], str(e)))
            continue
        if not info.looks_like_lcm_lora:
            continue
        if ctx is not None and info.cross_attention_dim != ctx:
            elsewhere.append(f"{name} ({info.family or 'unknown model'})")
            continue
        targets = {key_map[m] for m in info.unet_modules if m in key_map}
        coverage = len(targets & lora_able) / max(len(lora_able), 1)
        precision = sum(1 for m in info.unet_modules if m in key_map) / len(info.unet_modules)
        fit = round(coverage * precision, 2)
        if fit < MIN_LCM_FIT:
            weak.append(f"{name} (fits {fit:.0%} of this model's layers)")
            continue
        ranked.append(((not info.training_metadata, not info.te_modules, fit), name))
    _log_skipped_once(unreadable)
    if not ranked:
        family = lora_files.family_for_context_dim(ctx)
        found = "; ".join(elsewhere + weak) or "none"
        skipped = f" Unreadable files skipped: {', '.join(n for n, _, _ in unreadable)}." if unreadable else ""
        raise ValueError(f"lora_name auto: no LCM-LoRA for {family} in the loras folder ({loras_folders()}); "
                         f"LCM-LoRAs found for other models / not fitting: {found}.{skipped} Put the LCM-LoRA for "
                         f"{family} there (e.g. lcm-lora-sdv1-5.safetensors for SD1.5, lcm-lora-sdxl.safetensors "
                         f"for SDXL) or pick the file in lora_name.")
    best = max(ranked, key=lambda r: r[0])   # max() keeps the first (by name) of equal scores
    others = [n for _, n in ranked if n != best[1]]
    log.info("%s lora_name auto picked %s%s", status.LOG_PREFIX, best[1],
             f" (also fitting: {', '.join(others)})" if others else "")
    return best[1]
