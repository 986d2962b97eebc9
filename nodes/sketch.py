"""The sketch a Sketch node carries inside the prompt: a PNG data URL of the strokes layer (RGBA: transparent where
nothing is painted), checked and turned into an IMAGE and a MASK.

Pure apart from PIL: strings and tensors in, tensors out, no ComfyUI imports. The node in `sketch_nodes.py` runs
`check_sketch` at queue time (VALIDATE_INPUTS) and `sketch_image` at run time; `js/sketch.js` draws the strokes and
writes the data URL.
"""
from __future__ import annotations

import base64
import binascii
import io
import re

import numpy as np
import torch
from PIL import Image

DATA_URL_PREFIX = "data:image/png;base64,"
MAX_SKETCH_PNG_BYTES = 4 * 1024 * 1024   # the PNG itself; its data URL is a third longer
MIN_SIDE, MAX_SIDE, DEFAULT_SIDE = 64, 2048, 512
DEFAULT_BACKGROUND = "#ffffff"
_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


class SketchError(ValueError):
    """A sketch value that cannot be used, with a message naming the problem and the fix."""
    __module__ = "lcm_kit"   # ComfyUI names an error by its module path: "lcm_kit.SketchError", not the folder's path


def megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def png_bytes(value: str) -> bytes | None:
    """The PNG bytes of a sketch value (a `data:image/png;base64,` URL), None for an empty sketch ("": nothing
    drawn yet). SketchError when it is over MAX_SKETCH_PNG_BYTES (checked before decoding), not a PNG data URL,
    or not complete base64 (a truncated or altered payload)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SketchError(f"the sketch must be a PNG data URL string, got a {type(value).__name__}: send the value "
                          f"the Sketch node's canvas writes (data:image/png;base64,...), or an empty string.")
    if not value.startswith(DATA_URL_PREFIX):
        start = value[:30] + ("…" if len(value) > 30 else "")
        raise SketchError(f"the sketch is not a PNG data URL (it starts with {start!r}): it must start with "
                          f"{DATA_URL_PREFIX!r}. Draw on the Sketch node's canvas, or send a PNG encoded that way.")
    payload = value[len(DATA_URL_PREFIX):]
    size = len(payload) * 3 // 4
    if size > MAX_SKETCH_PNG_BYTES:
        raise SketchError(f"the sketch is {megabytes(size)} of PNG, over the {megabytes(MAX_SKETCH_PNG_BYTES)} limit "
                          f"for a sketch sent inside the prompt: make the canvas smaller (width/height) or the "
                          f"drawing simpler (large noisy areas compress badly), or use Load Image for photos.")
    if len(payload) % 4:
        raise SketchError(f"the sketch's base64 data is cut off ({len(payload)} characters, not a multiple of 4): the "
                          f"prompt was truncated on its way. Queue it again; if it repeats, clear the sketch.")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise SketchError("the sketch's base64 data has characters that base64 does not use: it was altered on its "
                          "way. Queue it again from the Sketch node, or clear the sketch.") from None
    return data


def read_sketch_png(data: bytes, width: int, height: int) -> Image.Image:
    """The strokes layer as an RGBA PIL image, checked: a complete PNG of exactly width×height."""
    try:
        image = Image.open(io.BytesIO(data))
        fmt, size = image.format, image.size
    except Exception as e:
        raise SketchError(f"the sketch is not a readable image ({e}): send a PNG, or clear the sketch.") from None
    if fmt != "PNG":
        raise SketchError(f"the sketch is a {fmt or 'unknown'} image, not a PNG: send a PNG (the Sketch node's "
                          f"canvas writes one).")
    if size != (width, height):
        raise SketchError(f"the sketch is {size[0]}×{size[1]} but the node's width/height say {width}×{height}: set "
                          f"width and height to {size[0]}×{size[1]}, or redraw at the new size (changing the "
                          f"widgets in the browser rescales the canvas).")
    try:
        image.load()
    except Exception as e:
        raise SketchError(f"the sketch's PNG data is damaged or cut off ({e}): queue it again from the Sketch "
                          f"node, or clear the sketch.") from None
    return image.convert("RGBA")


def check_sketch(value: str, width: int, height: int) -> Image.Image | None:
    """Queue-time check of a sketch value against the node's width/height: the strokes layer (RGBA), or None
    for an empty sketch. SketchError names what is wrong and what to do."""
    data = png_bytes(value)
    return None if data is None else read_sketch_png(data, int(width), int(height))


def parse_colour(text: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b) in 0..255; SketchError otherwise."""
    if not isinstance(text, str) or not _HEX_COLOUR.fullmatch(text.strip()):
        raise SketchError(f"background {text!r} is not a colour: write it as #rrggbb (e.g. #ffffff for white).")
    h = text.strip()
    return int(h[1:3], 16), int(h[3:5], 16), int(h[5:7], 16)


def sketch_image(strokes: Image.Image | None, width: int, height: int, background: tuple[int, int, int],
                 base: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The sketch as ComfyUI's IMAGE (1×H×W×3, 0..1) and MASK (1×H×W, 1 where painted): the strokes layer
    composited ("over", by its alpha) onto `base` (an IMAGE, its first item resized to width×height, bilinear)
    or onto a plain `background` colour."""
    if base is not None:
        under = base[:1, ..., :3].float().cpu().movedim(-1, 1)
        if under.shape[-2:] != (height, width):
            under = torch.nn.functional.interpolate(under, size=(height, width), mode="bilinear",
                                                    antialias=True, align_corners=False)
        under = under.movedim(1, -1)[0].clamp(0.0, 1.0)
    else:
        under = torch.tensor(background, dtype=torch.float32).div(255.0).expand(height, width, 3)
    if strokes is None:
        return under[None].clone(), torch.zeros(1, height, width)
    rgba = torch.from_numpy(np.asarray(strokes, dtype=np.float32) / 255.0)
    alpha = rgba[..., 3:]
    image = rgba[..., :3] * alpha + under * (1.0 - alpha)
    return image[None].contiguous(), alpha[..., 0][None].contiguous()
