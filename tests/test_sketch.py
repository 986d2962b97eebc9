"""The Sketch node (issue #16), server side: the drawing travels inside the prompt as a PNG data URL, is checked at
queue time (one clear validation error per bad payload, the server stays up) and becomes an IMAGE and a MASK.
The browser side (drawing with the mouse, live frames) is tests/test_sketch_ui.py."""
from __future__ import annotations

import base64
import io
import json
import urllib.error
import uuid

import numpy as np
import pytest
import torch
from PIL import Image

import graphs

W, H = 80, 64   # not square, both within the widgets' range (64 … 2048, step 8)


def png_data_url(image: Image.Image, fmt: str = "PNG") -> str:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def strokes(width: int = W, height: int = H) -> Image.Image:
    """A transparent layer with an opaque red bar and a half-transparent blue square: what the canvas writes."""
    layer = np.zeros((height, width, 4), np.uint8)
    layer[10:20, 5:40] = (255, 0, 0, 255)
    layer[30:40, 30:40] = (0, 0, 255, 128)
    return Image.fromarray(layer, "RGBA")


@pytest.fixture(scope="module")
def sketch_data(pack):
    return pack.nodes.sketch


@pytest.fixture(scope="module")
def node(pack):
    return pack.NODE_CLASS_MAPPINGS["LCMKitSketch"]()


def test_sketch_node_describes_itself_and_keeps_its_widget_order(pack):
    cls = pack.NODE_CLASS_MAPPINGS["LCMKitSketch"]
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["LCMKitSketch"] == "Sketch (LCM Kit)"
    inputs = cls.INPUT_TYPES()
    assert list(inputs["required"]) == ["width", "height", "background", "sketch"]
    assert list(inputs["optional"]) == ["image"]
    assert cls.RETURN_TYPES == ("IMAGE", "MASK") and len(cls.DESCRIPTION) > 80
    for name, (_, opts) in {**inputs["required"], **inputs["optional"]}.items():
        assert len(opts.get("tooltip", "")) > 20, name


def test_strokes_are_composited_over_the_background_and_the_mask_is_the_painted_area(node):
    image, mask = node.render(W, H, "#00ff00", png_data_url(strokes()))
    assert image.shape == (1, H, W, 3) and mask.shape == (1, H, W)
    assert torch.allclose(image[0, 15, 10], torch.tensor([1.0, 0.0, 0.0]))          # opaque stroke
    assert torch.allclose(image[0, 0, 0], torch.tensor([0.0, 1.0, 0.0]))            # background
    half = 128 / 255
    assert torch.allclose(image[0, 35, 35], torch.tensor([0.0, 1 - half, half]), atol=1e-6)   # "over"
    assert mask[0, 15, 10] == 1.0 and mask[0, 0, 0] == 0.0 and abs(mask[0, 35, 35] - half) < 1e-6


def test_an_empty_sketch_is_the_background(node):
    image, mask = node.render(W, H, "#102030", "")
    assert torch.allclose(image[0, 5, 5], torch.tensor([16, 32, 48]) / 255.0) and mask.abs().sum() == 0


def test_strokes_over_a_connected_image_resized_to_the_canvas(node):
    base = torch.zeros(1, 24, 32, 3)
    base[..., 2] = 1.0                                                                # a blue picture, half size
    image, mask = node.render(W, H, "#ffffff", png_data_url(strokes()), image=base)
    assert torch.allclose(image[0, 0, 0], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)
    assert torch.allclose(image[0, 15, 10], torch.tensor([1.0, 0.0, 0.0]))
    assert mask[0, 0, 0] == 0.0


def test_a_background_that_is_not_a_colour_says_how_to_write_one(node, sketch_data):
    with pytest.raises(sketch_data.SketchError, match="#rrggbb"):
        node.render(W, H, "white", "")


def bad_payloads(sketch_data) -> dict:
    good = png_data_url(strokes())
    noise = np.random.default_rng(0).integers(0, 256, (1100, 1100, 4), dtype=np.uint8)
    oversized = png_data_url(Image.fromarray(noise, "RGBA"))   # random pixels do not compress: > 4 MB
    assert len(oversized) * 3 / 4 > sketch_data.MAX_SKETCH_PNG_BYTES
    return {
        "oversized": (oversized, "over the 4.0 MB limit"),
        "not an image": ("data:image/png;base64," + base64.b64encode(b"hello, not a picture" * 10).decode(),
                         "not a readable image"),
        "a JPEG": (png_data_url(strokes().convert("RGB"), "JPEG"), "not a PNG"),
        "not a data URL": ("https://example.com/sketch.png", "not a PNG data URL"),
        "wrong dimensions": (png_data_url(strokes(W + 8, H)), f"is {W + 8}×{H} but the node's width/height say {W}×{H}"),
        "truncated base64": (good[:-7], "cut off"),
        "truncated PNG": ("data:image/png;base64," + base64.b64encode(
            base64.b64decode(good.split(",", 1)[1])[:-40]).decode(), "damaged or cut off"),
        "altered base64": (good[:40] + "*!*!" + good[44:], "characters that base64 does not use"),
    }


def test_every_bad_payload_has_a_message_naming_problem_and_fix(sketch_data):
    for name, (value, needle) in bad_payloads(sketch_data).items():
        with pytest.raises(sketch_data.SketchError) as e:
            sketch_data.check_sketch(value, W, H)
        assert needle in str(e.value), (name, str(e.value))
        assert ":" in str(e.value) and len(str(e.value)) < 400, name   # the fix follows the problem, short
    assert sketch_data.check_sketch(png_data_url(strokes()), W, H).size == (W, H)


def sketch_graph(value: str, width: int = W, height: int = H) -> dict:
    """Sketch -> Fast Encode -> LCM Sampler (img2img at strength 0.6, 2 steps) -> Fast Decode -> Preview Image."""
    g = graphs.lcm_graph(size=64, steps=2, strength=0.6, save="image")
    g["sketch"] = {"class_type": "LCMKitSketch", "inputs": {"width": width, "height": height, "background": "#ffffff",
                                                           "sketch": value}}
    g["encode"] = {"class_type": "LCMKitFastEncode", "inputs": {"pixels": ["sketch", 0], "model": ["ckpt", 0]}}
    g["sampler"]["inputs"]["latent_image"] = ["encode", 0]
    del g["latent"]
    g["decode"] = {"class_type": "LCMKitFastDecode", "inputs": {"samples": ["sampler", 0], "model": ["ckpt", 0]}}
    g["save"] = {"class_type": "PreviewImage", "inputs": {"images": ["decode", 0]}}
    return g


def test_sketch_img2img_graph_runs_in_the_executor(comfy):
    out = comfy.run(sketch_graph(png_data_url(strokes())))
    assert len(out["save"]["images"]) == 1


@pytest.mark.server
def test_bad_payloads_straight_to_prompt_each_get_one_clear_validation_error(server, sketch_data):
    for name, (value, needle) in bad_payloads(sketch_data).items():
        with pytest.raises(urllib.error.HTTPError) as info:
            server.queue(sketch_graph(value), str(uuid.uuid4()))
        assert info.value.code == 400, name
        body = json.loads(info.value.read())
        assert list(body["node_errors"]) == ["sketch"], (name, body)
        (error,) = body["node_errors"]["sketch"]["errors"]     # once, not once per checked input
        assert error["extra_info"]["exception_type"] == "lcm_kit.SketchError", (name, error)
        assert needle in error["details"], (name, error)
    # the other widgets: checked at queue time too, once each
    for widget, value, needle in (("background", "red", "background 'red' is not a colour: write it as #rrggbb"),
                                  ("width", 4096, "width 4096 is above its maximum 2048")):
        g = sketch_graph(png_data_url(strokes()))
        g["sketch"]["inputs"][widget] = value
        with pytest.raises(urllib.error.HTTPError) as info:
            server.queue(g, str(uuid.uuid4()))
        (error,) = json.loads(info.value.read())["node_errors"]["sketch"]["errors"]
        assert needle in error["details"], error
    # the server is up and runs a good sketch
    prompt_id = server.queue(sketch_graph(png_data_url(strokes())), str(uuid.uuid4()))
    assert server.wait_history(prompt_id)["status"]["status_str"] == "success"
