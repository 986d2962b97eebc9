"""Camera mode of the Sketch node (issue #16) with Chromium's fake camera: a denied permission is a message on the
node; allowed, the camera's frames become the sketch and stream live frames, until live mode goes off.
(A module of its own: Playwright's sync API allows one browser per thread at a time, and test_sketch_ui.py keeps its
page open for the whole module.)"""
from __future__ import annotations

import re

import pytest
from PIL import ImageChops

from support import browser as browser_support

SKETCH, PREVIEW = 5, 9   # the Sketch node's and the Live Preview's ids in example 9


@pytest.mark.server
def test_camera_denied_says_so_then_allowed_streams_frames_that_stop_with_live_off(server, base_dir):
    """Chromium's fake camera: without the fake permission UI headless Chromium denies the camera (the node says
    so); once the page may use it, its test pattern becomes the sketch frame after frame, until live goes off."""
    browser_support.prepare_base(base_dir, {"Comfy.VueNodes.Enabled": False})
    with browser_support.Browser(server.url, extra_args=browser_support.FAKE_CAMERA_ARGS) as b:
        b.load_workflow(browser_support.sketch_workflow(128))
        b.show_node(SKETCH, scale=0.9)

        def sketches_queued():   # the frames are the camera's: the prompts carry different sketches
            return {body["prompt"][str(SKETCH)]["inputs"]["sketch"] for body in b.queued_ids.values()}

        def click_camera():
            left, top, right, bottom = b.element_box(SKETCH, "sketch", ".lcm-kit-tools button[title^='the camera']")
            b.page.mouse.click((left + right) / 2, (top + bottom) / 2)

        # the toolbar before the camera runs: no mirror switch (it mirrors nothing yet); the black brush's swatch
        # and the controls' names stand out from the dark theme's toolbar
        mirror = ".lcm-kit-tools button[title^='mirror']"
        assert b.element_text(SKETCH, "sketch", mirror) == ""
        assert b.text_ink(SKETCH, "sketch", ".lcm-kit-tools input[type=color]") > 40, "the brush swatch is not visible"
        assert b.element_text(SKETCH, "sketch", ".lcm-kit-tools label:has(input[type=range])") == "size"
        click_camera()
        message = b.wait_until(lambda: b.element_text(SKETCH, "sketch", ".lcm-kit-line.warning"), 10,
                               "the node saying why there is no camera")
        assert "Camera permission was denied" in message and "allow the camera" in message, message
        assert not b.live_state()["on"] and b.element_text(SKETCH, "sketch", mirror) == ""   # no camera runs

        b.page.context.grant_permissions(["camera"], origin=server.url)
        click_camera()
        b.wait_until(lambda: len(sketches_queued()) >= 3 and b.live_state()["stats"]["frames"] >= 3, 120,
                     "three camera pictures queued and three frames back")
        assert b.element_text(SKETCH, "sketch", ".lcm-kit-line.warning") == ""
        assert b.element_text(SKETCH, "sketch", mirror) == "mirror"    # shown while the camera runs
        state = b.live_state()
        assert state["on"] and state["error"] is None
        # the readout counts from the camera's capture (there was no edit), and a user sees it
        b.page.wait_for_function("""(id) => window.app.graph.getNodeById(id).widgets.find((w) => w.name ===
            'lcm_kit_live_view').element.querySelector('.lcm-kit-readout').textContent.includes('after capture')""",
                                 arg=PREVIEW, timeout=10_000)
        readout = b.element_text(PREVIEW, "lcm_kit_live_view", ".lcm-kit-readout")
        # (" · running: …" follows while the next capture's run has taken over a second)
        assert re.fullmatch(r"● live · [\d.]+ fps · frame [\d.]+ (ms|s) after capture \(run [\d.]+ (ms|s)\)"
                            r"( · running: .+)?", readout), readout
        assert b.text_ink(PREVIEW, "lcm_kit_live_view", ".lcm-kit-readout") > 30, "the readout is not on the screen"
        b.command("LCMKit.Live.Toggle")
        b.wait_until(lambda: b.element_text(SKETCH, "sketch", mirror) == "", 5, "the camera stopping")
        # the camera's picture no longer reaches the sketch, and nothing more is queued
        pad_box = b.element_box(SKETCH, "sketch", ".lcm-kit-stage canvas")
        still, queued = b.screenshot().crop(pad_box), len(b.queued)
        b.page.wait_for_timeout(800)
        assert ImageChops.difference(still, b.screenshot().crop(pad_box)).getbbox() is None, "the sketch still changes"
        assert len(b.queued) == queued
        assert server.get("/queue")["queue_pending"] == []
