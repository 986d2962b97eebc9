"""LORA_STACK, the community's LoRA list type (Efficiency Nodes, Comfyroll, Easy-Use): a list of
(lora_name, strength_model, strength_clip) tuples, names relative to the loras folder, "None" rows dropped,
None or [] for none."""
from __future__ import annotations

from .input_checks import finite_number
from .lora_folder import NONE


def normalize_stack(stack) -> list[tuple[str, float, float]]:
    """A LORA_STACK as a list of 3-tuples, "None" entries dropped; None or [] is an empty stack."""
    if stack is None:
        return []
    if not isinstance(stack, (list, tuple)):
        raise ValueError(f"LORA_STACK must be a list of (lora_name, strength_model, strength_clip) tuples, got "
                         f"{type(stack).__name__}: connect a LoRA Stack node (LCM Kit, Efficiency, Comfyroll …).")
    out = []
    for i, entry in enumerate(stack):
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            raise ValueError(f"LORA_STACK entry {i} is {entry!r}: every entry must be (lora_name, strength_model, "
                             f"strength_clip). Check the node that built the stack.")
        name, strength_model, strength_clip = entry
        if name is None or name == NONE:
            continue
        out.append((str(name), finite_number(strength_model, f"LORA_STACK entry {i} ({name}) strength_model"),
                    finite_number(strength_clip, f"LORA_STACK entry {i} ({name}) strength_clip")))
    return out
