"""Live streaming of decoded images: frame encoding and the limits that keep a frame small.

Pure apart from PIL: tensors in, bytes out, no ComfyUI imports. The node in `live_nodes.py` sends what
this module builds over ComfyUI's `/ws` as a binary preview frame (the layout of ComfyUI's
`BinaryEventTypes.PREVIEW_IMAGE` payload: a big-endian u32 image type, then the encoded image).
"""
from __future__ import annotations

import io
import struct

import numpy as np
import torch
from PIL import Image

FORMATS = {"JPEG": 1, "PNG": 2}      # ComfyUI's preview image type numbers (frontend: 1 jpeg, 2 png)
MIN_SIZE, MAX_SIZE, DEFAULT_SIZE = 64, 4096, 512
JPEG_QUALITY = 90
FRAME_EVENT = "lcm_kit.live_frame"   # the JSON message that announces each binary frame


def fit_size(width: int, height: int, max_size: int) -> tuple[int, int]:
    """The size to send: `width`×`height` scaled down (never up) so its longer side is ≤ `max_size`,
    keeping the aspect ratio; each side at least 1 pixel."""
    if max_size < 1:
        raise ValueError(f"max_size must be ≥ 1, got {max_size}")
    longer = max(width, height)
    if longer <= max_size:
        return width, height
    scale = max_size / longer
    return max(1, round(width * scale)), max(1, round(height * scale))


def scaled_rgb8(image, max_size: int = DEFAULT_SIZE) -> np.ndarray:
    """One IMAGE item (H×W×C float tensor or array in 0..1, C = 1, 3 or 4) scaled down so its longer side is
    ≤ `max_size` (`fit_size`), as an 8-bit H'×W'×3 RGB array (NaN → 0, values clipped to 0..1).

    Scaled first, at the image's own precision and on its own device (bilinear with antialiasing, as PIL's
    BILINEAR reduces), so every later copy has the frame's size: an 8192² image is never copied whole."""
    t = image.detach() if isinstance(image, torch.Tensor) else torch.as_tensor(np.asarray(image, dtype=np.float32))
    if t.ndim != 3 or t.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected one H×W×C image with 1, 3 or 4 channels, got shape {tuple(t.shape)}")
    t = t[..., :3]
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    height, width = t.shape[0], t.shape[1]
    size = fit_size(width, height, max_size)
    if size != (width, height):
        # H×W×C viewed as 1×C×H×W is channels-last memory: interpolate reads it in place, no copy.
        t = torch.nn.functional.interpolate(t.permute(2, 0, 1)[None], size=(size[1], size[0]), mode="bilinear",
                                            antialias=True, align_corners=False)[0].permute(1, 2, 0)
    t = torch.nan_to_num(t.float().cpu(), nan=0.0).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    if t.shape[-1] == 1:
        t = t.expand(-1, -1, 3)
    return np.ascontiguousarray(t.numpy())


def encode_image(image, fmt: str = "JPEG", max_size: int = DEFAULT_SIZE) -> tuple[bytes, tuple[int, int]]:
    """Encode one IMAGE item as JPEG or PNG no larger than `max_size` on its longer side.
    Returns (encoded bytes, (width, height) sent)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    pil = Image.fromarray(scaled_rgb8(image, max_size), "RGB")
    out = io.BytesIO()
    if fmt == "JPEG":
        pil.save(out, format="JPEG", quality=JPEG_QUALITY)
    else:
        pil.save(out, format="PNG", compress_level=1)   # speed over size: frames are thrown away
    return out.getvalue(), pil.size


def preview_payload(encoded: bytes, fmt: str) -> bytes:
    """The payload of a ComfyUI PREVIEW_IMAGE binary message: u32 image type (big-endian) + image bytes.
    ComfyUI prefixes the u32 event type itself when it sends it."""
    return struct.pack(">I", FORMATS[fmt]) + encoded


def frame_message(prompt_id: str | None, node_id: str | None, frame: int, index: int, size: tuple[int, int],
                  fmt: str, encoded_bytes: int, encode_ms: float, sent_at_ms: float) -> dict:
    """The JSON that precedes each binary frame on the socket: which prompt and node it belongs to, its
    number (monotonic per server) and timings, so a client can pair it with the next binary message and
    drop stale frames."""
    return {"prompt_id": prompt_id, "node": node_id, "frame": frame, "index": index,
            "width": size[0], "height": size[1], "format": fmt, "bytes": encoded_bytes,
            "timings": {"encode_ms": round(encode_ms, 2), "sent_at_ms": round(sent_at_ms, 1)}}
