"""The loras folder as ComfyUI lists it: a LoRA name (relative to the folder) to its path, the check a saved
workflow's name gets at queue time, and the folder's files for lora_name auto."""
from __future__ import annotations

import os

import folder_paths

NONE = "None"
AUTO = "auto"


def loras_folders() -> str:
    return ", ".join(folder_paths.get_folder_paths("loras"))


def lora_path(lora_name) -> str:
    """The full path of `lora_name` (relative to the loras folder, as ComfyUI lists it)."""
    if not isinstance(lora_name, str) or not lora_name or lora_name == NONE:
        raise ValueError(f"no LoRA named: got {lora_name!r}. Pick a file from the loras folder ({loras_folders()}).")
    parts = lora_name.replace("\\", "/").split("/")
    if os.path.isabs(lora_name) or lora_name.startswith(("/", "\\")) or ".." in parts:
        raise ValueError(f"LoRA name {lora_name!r} points outside the loras folder: use a name relative to the "
                         f"loras folder ({loras_folders()}), as its file list shows it.")
    path = folder_paths.get_full_path("loras", lora_name) \
        if lora_name in folder_paths.get_filename_list("loras") else None
    if path is None:
        raise ValueError(f"LoRA {lora_name!r} not found in the loras folder ({loras_folders()}): put the file "
                         f"there (then refresh the page) or pick one that is listed.")
    return path


def loras_folder_files() -> dict[str, str]:
    out = {}
    for name in folder_paths.get_filename_list("loras"):
        path = folder_paths.get_full_path("loras", name)
        if path is not None:
            out[name] = path
    return out


def validate_lora_name(name) -> bool | str:
    """VALIDATE_INPUTS: a saved workflow naming a LoRA this user lacks (or one deleted since the page loaded its
    list) gets a message that names the file and the folder to put it in (core's own check only says "value not
    in list"). auto and None are always valid; a value from a link (None here) is checked at run time."""
    if name in (AUTO, NONE, None):
        return True
    inside = isinstance(name, str) and not os.path.isabs(name) and not name.startswith(("/", "\\")) \
        and ".." not in name.replace("\\", "/").split("/")
    if inside and folder_paths.get_full_path("loras", name) is None:
        return (f"LoRA {name!r} is not on disk in the loras folder ({loras_folders()}): missing, or moved or "
                f"deleted after the page listed it. Put the file there, or press R to refresh the lists and pick "
                f"another.")
    try:
        lora_path(name)
    except ValueError as e:
        return str(e)
    return True
