"""Checks of node input values that ComfyUI's own validation lets through.

ComfyUI range-checks a widget value only when it is typed into the widget: a value that arrives through a
link (a primitive, a math node, another pack's node) is never checked against min/max, and NaN passes every
min/max comparison even as a widget value. NaN or infinity in a strength, cfg or guidance gives an all-NaN
latent (a black image) without any error, so the nodes check these values before patching or sampling.
"""
from __future__ import annotations

import math


# Beyond this a strength, cfg or guidance is no setting but a broken value (9e18 from a math node): the model's
# numbers overflow, and the NaN it returns would be blamed on fp16 or the LoRA file.
MAGNITUDE_LIMIT = 1e4


def finite_number(value, name: str, limit: float = MAGNITUDE_LIMIT) -> float:
    """`value` as a float; ValueError naming the input `name` when it is not a finite number or |value| > `limit`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got a {type(value).__name__}: check the node connected "
                         f"to it.") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} is {number} (not a finite number): the node connected to it produced NaN or "
                         f"infinity (e.g. a division by zero in a math node), which would turn the image black. "
                         f"Give it a finite value.")
    if abs(number) > limit:
        raise ValueError(f"{name} is {number:g}, far outside any usable value (|{name}| ≤ {limit:g}; the widget's "
                         f"range is the useful one): the model's numbers would overflow to NaN. Check the node "
                         f"connected to it and give {name} a value in the widget's range.")
    return number


def widget_value_problem(spec: tuple, name: str, value) -> str | None:
    """What is wrong with `value` for the input `name` declared as `spec` (an INPUT_TYPES entry): not a number for
    an INT / FLOAT (an API client may send any JSON), not in its list, or outside its min/max; None when it fits.
    ComfyUI skips these checks for every input a node's VALIDATE_INPUTS takes (it leaves them to it), so such a
    VALIDATE_INPUTS does them with this."""
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    if isinstance(kind, (list, tuple)):
        return None if value in kind else f"{name} {value!r} is not one of: {', '.join(map(str, kind))}."
    if kind in ("INT", "FLOAT"):
        whole = kind == "INT"
        try:
            value = int(value) if whole else float(value)
        except (TypeError, ValueError, OverflowError):
            example = options.get("default", 1)
            return (f"{name} {value!r} is not a {'whole number' if whole else 'number'}: give {name} as a number "
                    f"(e.g. {example}).")
        if not math.isfinite(value):
            return f"{name} is {value}, not a finite number: give it a value in its range."
    elif kind == "STRING":
        return None if isinstance(value, str) else f"{name} must be text, got {value!r}."
    if "min" in options and value < options["min"]:
        return f"{name} {value:g} is below its minimum {options['min']:g}."
    if "max" in options and value > options["max"]:
        return f"{name} {value:g} is above its maximum {options['max']:g}."
    return None
