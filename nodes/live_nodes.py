"""Node classes for live mode: the Live Preview output node streams decoded images to the client that
queued the prompt, over ComfyUI's own `/ws`, and writes nothing to disk. The frontend side (re-queue as
you type, interrupt stale runs, show the newest frame) is `js/live.js`."""
from __future__ import annotations

import itertools
import logging
import time

import comfy.model_management

from . import compat, live, status

log = logging.getLogger("lcm_kit")
CATEGORY = "LCM Kit/live"
_frame_numbers = itertools.count(1)     # monotonic per server process: a client orders frames by it


class LivePreview:
    DESCRIPTION = ("Streams each decoded image to the browser that queued the prompt, as a preview frame over "
                   "ComfyUI's websocket, and saves nothing. Put it after VAE Decode and switch 'live' on (on this "
                   "node): the image then follows the prompt as you type. Other browsers never receive the frames.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "stream"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "Decoded images (VAE Decode); each image of a batch is one frame."}),
            "format": (list(live.FORMATS), {"default": "JPEG", "tooltip":
                       "JPEG: small, best for live typing. PNG: lossless, larger frames."}),
            "max_size": ("INT", {"default": live.DEFAULT_SIZE, "min": live.MIN_SIZE, "max": live.MAX_SIZE,
                                 "step": 8, "tooltip":
                                 "Longest side of a frame in pixels (scaled down, never up)."}),
        }, "hidden": {"unique_id": "UNIQUE_ID"}}

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        # Always run (cheap): a re-queued graph whose image is cached upstream still gets a frame tagged
        # with the new prompt id, so the client can tell the frame on screen belongs to its last edit.
        return float("nan")

    def stream(self, images, format="JPEG", max_size=live.DEFAULT_SIZE, unique_id=None):
        server = compat.prompt_server()
        client_id = getattr(server, "client_id", None) if server is not None else None
        prompt_id = getattr(server, "last_prompt_id", None) if server is not None else None
        frames = []
        for index, image in enumerate(images):
            # Stop ends a batch between frames (core checks for it only between nodes and sampler steps).
            comfy.model_management.throw_exception_if_processing_interrupted()
            start = time.perf_counter()
            encoded, size = live.encode_image(image, format, max_size)
            encode_ms = (time.perf_counter() - start) * 1000.0
            info = live.frame_message(prompt_id, unique_id, next(_frame_numbers), index, size, format,
                                      len(encoded), encode_ms, time.time() * 1000.0)
            frames.append(info)
            if client_id is None:
                # Never broadcast (a None sid means every socket): a prompt queued without a client id has
                # nobody to stream to.
                continue
            server.send_sync(live.FRAME_EVENT, info, client_id)
            server.send_sync(compat.preview_image_event(), live.preview_payload(encoded, format), client_id)
        if client_id is None and server is not None:
            log.info("%s Live Preview: the prompt was queued without a client_id; no frame sent", status.LOG_PREFIX)
        return {"ui": {"lcm_kit_live": frames}}


NODE_CLASS_MAPPINGS = {"LCMKitLivePreview": LivePreview}
NODE_DISPLAY_NAME_MAPPINGS = {"LCMKitLivePreview": "Live Preview (LCM Kit)"}
