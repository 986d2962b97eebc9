"""Node classes for live img2img from the browser: the Sketch node (a drawing canvas inside the node, `js/sketch.js`).
Thin: the sketch travels inside the prompt as a PNG data URL and is checked at queue time; `sketch` does the rest.

Widget order is fixed forever (saved workflows store widget values positionally): new inputs go at the end,
optional.
"""
from __future__ import annotations

from . import sketch as sketch_data
from .input_checks import widget_value_problem

CATEGORY = "LCM Kit/live"
SKETCH_TYPE = "LCMKIT_SKETCH"    # the canvas widget js/sketch.js registers; its value is a PNG data URL


class LCMKitSketch:
    DESCRIPTION = ("A drawing canvas (or your camera) inside the node: the sketch as IMAGE for img2img at strength "
                   "0.5-0.7, the painted area as MASK. The drawing travels inside the prompt (a PNG of at most "
                   f"{sketch_data.megabytes(sketch_data.MAX_SKETCH_PNG_BYTES)}); in live mode each stroke queues again.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("image", "mask")
    FUNCTION = "render"

    @classmethod
    def INPUT_TYPES(cls):
        side = {"default": sketch_data.DEFAULT_SIDE, "min": sketch_data.MIN_SIDE, "max": sketch_data.MAX_SIDE, "step": 8}
        return {
            "required": {
                "width": ("INT", {**side, "tooltip": "Canvas width in pixels; changing it rescales the drawing."}),
                "height": ("INT", {**side, "tooltip": "Canvas height in pixels (the IMAGE's height)."}),
                "background": ("STRING", {"default": sketch_data.DEFAULT_BACKGROUND, "tooltip":
                               "The colour under the strokes (#rrggbb); the eraser reveals it."}),
                "sketch": (SKETCH_TYPE, {"default": "", "tooltip":
                           "The drawing as a PNG data URL, written by the canvas above."}),
            },
            "optional": {
                "image": ("IMAGE", {"tooltip": "Draw over this image (resized to width x height) instead of the background."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, sketch=None, width=None, height=None, background=None):
        """At queue time, so a bad payload is one clear 400 and never reaches the executor. Raises rather than
        returns: ComfyUI repeats a returned message once per argument here, a raised one it reports once. Taking
        width/height turns off core's own range checks of them, so they are checked here. A value from a link
        (None here) is checked when the node runs."""
        specs = cls.INPUT_TYPES()["required"]
        for name, value in (("width", width), ("height", height)):
            problem = value is not None and widget_value_problem(specs[name], name, value)
            if problem:
                raise sketch_data.SketchError(f"Sketch: {problem}")
        try:
            if background is not None:
                sketch_data.parse_colour(background)
            if None not in (sketch, width, height):
                sketch_data.check_sketch(sketch, width, height)
        except sketch_data.SketchError as e:
            raise sketch_data.SketchError(f"Sketch: {e}") from None
        return True

    def render(self, width, height, background, sketch, image=None):
        strokes = sketch_data.check_sketch(sketch, width, height)
        return sketch_data.sketch_image(strokes, int(width), int(height), sketch_data.parse_colour(background),
                                        base=image)


NODE_CLASS_MAPPINGS = {"LCMKitSketch": LCMKitSketch}
NODE_DISPLAY_NAME_MAPPINGS = {"LCMKitSketch": "Sketch (LCM Kit)"}
