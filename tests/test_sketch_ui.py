"""Live sketch (issue #16) in the real frontend in Chromium: draw on the Sketch node's canvas with the mouse and the
Live Preview follows, on the server's own frontend and the newest one, each with the classic node renderer and with
Nodes 2.0. What is checked is what a user sees (ink on the screenshot inside the canvas's box, the frame's prompt)
and what reaches the server (the PNG in the prompt; the frame equals a direct run of that PNG)."""
from __future__ import annotations

import base64
import io
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from support import browser as browser_support

SKETCH, PREVIEW = 5, 9         # node ids in example 9
CANVAS = ".lcm-kit-stage canvas"
DIAGONAL = [(0.15, 0.2), (0.4, 0.45), (0.6, 0.6), (0.85, 0.8)]
ARC = [(0.2, 0.8), (0.5, 0.3), (0.8, 0.75)]


@pytest.fixture(scope="module", params=browser_support.FRONTENDS)
def sketch_server(request, server, base_dir, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("server-sketch-newest")
    with browser_support.frontend_server(request.param, server, base_dir, log_dir) as srv:
        yield srv, request.param


@pytest.fixture(scope="module", params=browser_support.RENDERERS)
def page(request, sketch_server, base_dir):
    """The sketch example at 128² (Live Preview beside the Sketch node, lossless PNG frames), live mode on."""
    server, frontend = sketch_server
    with browser_support.renderer_page(server, base_dir, request.param) as b:
        b.server, b.frontend = server, frontend
        wf = browser_support.sketch_workflow(128)
        for node in wf["nodes"]:
            if node["id"] == PREVIEW:
                node["widgets_values"][0] = "PNG"
        b.load_workflow(wf)
        b.show_node(SKETCH, scale=0.9)
        # a broad brush: the tiny random test model follows a sketch only a little
        b.js("""(id) => { const el = window.app.graph.getNodeById(id).widgets.find((w) => w.name === 'sketch')
            .element.querySelector('input[type=range]'); el.value = 40; }""", SKETCH)
        b.command("LCMKit.Live.Toggle")
        b.wait_settled()
        yield b
        b.set_live(False)


def sketch_value(b) -> str:
    return b.js("(id) => window.app.graph.getNodeById(id).widgets.find((w) => w.name === 'sketch').value", SKETCH)


def canvas_box(b) -> list[float]:
    return b.element_box(SKETCH, "sketch", CANVAS)


def frame_pixels(b, prompt_id: str) -> np.ndarray:
    b.page.wait_for_function("(id) => !!window.lcmKitTest.frames[id]", arg=prompt_id, timeout=10_000)
    url = b.js("(id) => window.lcmKitTest.frames[id]", prompt_id)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"), np.int16)


def ink_in(b, box, background=(255, 255, 255)) -> int:
    """Pixels inside `box` of a screenshot that differ from the background: the strokes a user sees."""
    shot = np.asarray(Image.open(io.BytesIO(b.page.screenshot())).convert("RGB"), np.int16)
    left, top, right, bottom = (round(v) for v in box)
    crop = shot[top + 2:bottom - 2, left + 2:right - 2]
    return int((np.abs(crop - np.array(background)).sum(-1) > 120).sum())


def differs(a: np.ndarray, b: np.ndarray) -> bool:
    """Frames of different sketches: the tiny test model follows a sketch only a little, so some pixels move a lot
    and most stay (equal sketches give frames within 2 levels)."""
    d = np.abs(a - b).max(-1)
    return (d > 16).sum() > 100


def draw(b, points, after: str | None) -> dict:
    b.stroke(canvas_box(b), points)
    return b.wait_settled(after=after)


def click_tool(b, name: str) -> None:
    """Click the Sketch toolbar button whose tooltip starts with `name`, as a user does."""
    left, top, right, bottom = b.element_box(SKETCH, "sketch", f".lcm-kit-tools button[title^='{name}']")
    b.page.mouse.click((left + right) / 2, (top + bottom) / 2)


@pytest.mark.server
def test_strokes_stream_frames_of_the_last_sketch_equal_to_a_direct_run(page, comfy):
    b = page
    if sketch_value(b):   # another test drew on this page first: start from a blank canvas, as a user would
        click_tool(b, "clear")   # (a canvas that another test cleared last is queued already: no new prompt)
    before = b.wait_settled()
    assert ink_in(b, canvas_box(b)) < 20
    one = draw(b, DIAGONAL, before["latest"])
    two = draw(b, ARC, one["latest"])
    value = sketch_value(b)
    assert value.startswith("data:image/png;base64,")
    # what the user sees: the strokes on the canvas, the frame of the last prompt on the Live Preview
    assert ink_in(b, canvas_box(b)) > 300
    shown = b.js("(id) => window.app.graph.getNodeById(id).widgets.find((w) => w.name === 'lcm_kit_live_view')"
                 ".element.querySelector('canvas').dataset.promptId", PREVIEW)
    assert shown == two["latest"] == two["history"][-1]["promptId"] and two["error"] is None
    assert two["stats"]["frames"] >= before["stats"]["frames"] + 2
    # the last prompt carried the canvas's PNG; a direct run of that PNG gives the frame
    queued = b.queued_ids[two["latest"]]["prompt"]
    assert queued[str(SKETCH)]["inputs"]["sketch"] == value
    direct = dict(queued)
    direct[str(PREVIEW)] = {"class_type": "PreviewImage", "inputs": {"images": queued[str(PREVIEW)]["inputs"]["images"]}}
    comfy.executor.reset()                      # computed afresh (and its file written now)
    with ThreadPoolExecutor(1) as pool:          # (Playwright's event loop runs in this thread)
        out = pool.submit(comfy.run, direct).result()
    (saved,) = out[str(PREVIEW)]["images"]
    from folder_paths import get_temp_directory
    expected = np.asarray(Image.open(os.path.join(get_temp_directory(), saved["subfolder"], saved["filename"]))
                          .convert("RGB"), np.int16)
    frame = frame_pixels(b, two["latest"])
    assert frame.shape == expected.shape == (128, 128, 3)
    assert np.abs(frame - expected).max() <= 2, np.abs(frame - expected).max()
    assert frame.std() > 2                    # a picture, not a flat colour


@pytest.mark.only({"sketch_server": "own", "page": "classic"},   # one renderer per frontend keeps the module short
                  {"sketch_server": "newest", "page": "nodes2"})
@pytest.mark.server
def test_undo_redo_and_clear_change_the_frame(page):
    b = page

    click_tool(b, "clear")
    empty = b.wait_settled(after=b.live_state()["latest"])
    start = draw(b, DIAGONAL, empty["latest"])
    drawn, drawn_frame = sketch_value(b), frame_pixels(b, start["latest"])
    assert differs(drawn_frame, frame_pixels(b, empty["latest"]))
    b.stroke(canvas_box(b), ARC)
    with_arc = b.wait_settled(after=start["latest"])

    click_tool(b, "undo")
    undone = b.wait_settled(after=with_arc["latest"])
    assert sketch_value(b) == drawn
    assert np.abs(frame_pixels(b, undone["latest"]) - drawn_frame).max() <= 2   # the frame before the arc again
    assert differs(frame_pixels(b, with_arc["latest"]), drawn_frame)
    click_tool(b, "redo")
    redone = b.wait_settled(after=undone["latest"])
    assert np.abs(frame_pixels(b, redone["latest"]) - frame_pixels(b, with_arc["latest"])).max() <= 2
    click_tool(b, "clear")
    cleared = b.wait_settled(after=redone["latest"])
    assert ink_in(b, canvas_box(b)) < 20
    assert differs(frame_pixels(b, cleared["latest"]), drawn_frame)
    assert cleared["error"] is None


def canvas_digest(b) -> list[int]:
    """The canvas's pixels, summed per channel (RGBA): equal sketches, equal digests."""
    return b.js("""(id) => { const c = window.app.graph.getNodeById(id).widgets.find((w) => w.name === 'sketch')
        .element.querySelector('canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const s = [0, 0, 0, 0]; for (let i = 0; i < d.length; i++) s[i % 4] += d[i]; return s; }""", SKETCH)


@pytest.mark.server
def test_a_saved_workflow_reopens_with_its_sketch(page):
    b = page
    b.command("LCMKit.Live.Toggle")               # live off: loading graphs must not queue
    unsaved = sketch_value(b)
    b.stroke(canvas_box(b), DIAGONAL, step_ms=0)
    b.wait_until(lambda: sketch_value(b) != unsaved, 10, "the stroke reaching the sketch widget")
    saved = b.js("() => JSON.parse(JSON.stringify(window.app.graph.serialize()))")
    value, digest = sketch_value(b), canvas_digest(b)
    assert next(n for n in saved["nodes"] if n["id"] == SKETCH)["widgets_values"][3] == value
    b.js("async () => { await window.app.loadGraphData(null); }")   # the default graph
    b.load_workflow(saved)
    b.show_node(SKETCH, scale=0.9)
    b.page.wait_for_function("(id) => window.app.graph.getNodeById(id)?.widgets?.find((w) => w.name === 'sketch')"
                             "?.value?.length > 0", arg=SKETCH, timeout=10_000)
    # the saved PNG is decoded and drawn onto the canvas a moment after the value is set
    b.wait_until(lambda: sketch_value(b) == value and canvas_digest(b) == digest, 10, "the saved sketch drawn again")
    assert ink_in(b, canvas_box(b)) > 150
    b.command("LCMKit.Live.Toggle")


@pytest.mark.only({"sketch_server": "own", "page": "classic"})   # the same js everywhere: checked once
@pytest.mark.server
def test_an_oversized_sketch_is_not_sent_nor_saved_and_the_node_says_so(page):
    b = page
    b.command("LCMKit.Live.Toggle")        # live off: a 1104² run would take minutes on these cores
    set_size = """([id, side]) => { const n = window.app.graph.getNodeById(id);
        for (const k of ['width', 'height']) { const w = n.widgets.find((x) => x.name === k); w.value = side; w.callback?.(side); } }"""
    b.js(set_size, [SKETCH, 1104])
    # noise does not compress: a 1104² canvas of it is 4.9 MB raw, over the 4 MB cap as PNG
    b.js("""(id) => { const c = window.app.graph.getNodeById(id).widgets.find((w) => w.name === 'sketch')
        .element.querySelector('canvas'); const ctx = c.getContext('2d'); const d = ctx.createImageData(c.width, c.height);
        for (let i = 0; i < d.data.length; i++) d.data[i] = (Math.random() * 256) | 0; ctx.putImageData(d, 0, 0); }""",
         SKETCH)
    b.stroke(canvas_box(b), ARC, step_ms=0)
    message = b.wait_until(lambda: b.element_text(SKETCH, "sketch", ".lcm-kit-line.warning"), 10,
                           "the node saying the sketch is too big")
    assert "over the 4.0 MB" in message and "NOT sent" in message and "NOT saved" in message, message
    assert ink_in(b, b.element_box(SKETCH, "sketch", ".lcm-kit-line.warning"), background=(0, 0, 0)) > 50
    prompt = b.js("async () => (await window.app.graphToPrompt())")
    assert prompt["output"][str(SKETCH)]["inputs"]["sketch"] == ""
    assert next(n for n in prompt["workflow"]["nodes"] if n["id"] == SKETCH)["widgets_values"][3] == ""
    b.js(set_size, [SKETCH, 128])
    b.wait_until(lambda: sketch_value(b).startswith("data:image/png;base64,"), 10,   # small again: sent and saved
                 "the small sketch in the widget again")
    assert b.element_text(SKETCH, "sketch", ".lcm-kit-line.warning") == ""
    b.command("LCMKit.Live.Toggle")


def files_under(base_dir, *folders) -> set:
    return {p for f in folders for p in (base_dir / f).rglob("*") if p.is_file()}


@pytest.mark.only({"sketch_server": "own", "page": "classic"})   # a soak of the scheduler: run once
@pytest.mark.server
@pytest.mark.slow
def test_200_strokes_leave_no_errors_an_empty_queue_flat_memory_and_no_files(page, base_dir):
    import psutil
    b = page
    strokes = int(os.environ.get("LCM_KIT_SOAK_STROKES", "200"))
    before_files = files_under(base_dir, "input", "output")
    server = psutil.Process(b.server.proc.pid)
    warm = draw(b, DIAGONAL, b.live_state()["latest"])
    rss_before = server.memory_info().rss
    for i in range(strokes):
        t = (i % 20) / 20
        b.stroke(canvas_box(b), [(0.1 + 0.8 * t, 0.1), (0.9 - 0.8 * t, 0.9)], step_ms=0)
    state = b.wait_settled(after=warm["latest"])
    rss_after = server.memory_info().rss
    assert state["error"] is None and state["stats"]["errors"] == 0
    assert b.queued_ids[state["history"][-1]["promptId"]]["prompt"][str(SKETCH)]["inputs"]["sketch"] == sketch_value(b)
    assert b.server.get("/queue") == {"queue_running": [], "queue_pending": []}
    assert files_under(base_dir, "input", "output") == before_files
    growth = (rss_after - rss_before) / rss_before
    print(f"{strokes} strokes: {state['stats']['queued'] - warm['stats']['queued']} prompts queued, server RSS "
          f"{rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB ({growth:+.1%})")
    assert growth < 0.05
