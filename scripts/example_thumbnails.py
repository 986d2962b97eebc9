"""Writes example_workflows/<name>.jpg, the picture ComfyUI's template browser shows for each example: the
workflow's graph as the frontend draws it (ComfyUI's own server and frontend, headless Debian Chromium through
Playwright; nothing but 127.0.0.1 is loaded). `make examples` runs it after scripts/example_workflows.py.

The template browser shows the picture in a square card (`object-cover`), so the graph is drawn centred in a
square, from the graph canvas alone (no menus; the prompt text boxes, which are page elements, stay empty).
"""
from __future__ import annotations

import base64
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from support import browser, comfy_env  # noqa: E402

OUT = REPO / "example_workflows"
SQUARE = 1600         # the square the graph is drawn in, in CSS pixels
THUMBNAIL = 512       # the saved picture's side
# Frontend settings for a clean picture: no minimap, no missing-model dialog (the models are not here), no badges.
SETTINGS = {"Comfy.Minimap.Visible": False, "Comfy.Workflow.ShowMissingModelsWarning": False,
            "Comfy.NodeBadge.NodeSourceBadgeMode": "None", "Comfy.NodeBadge.NodeIdBadgeMode": "None",
            "Comfy.Graph.CanvasInfo": False}


def draw(page, workflow: dict) -> bytes:
    """The graph of `workflow` (without its Note, whose text the canvas does not draw), fitted into the square, as
    JPEG bytes of THUMBNAIL²."""
    from PIL import Image
    graph = dict(workflow, nodes=[n for n in workflow["nodes"] if n["type"] not in ("Note", "MarkdownNote")])
    page.evaluate("async (wf) => { await window.app.loadGraphData(wf); }", graph)
    page.wait_for_timeout(500)
    data_url = page.evaluate("""(side) => {
        const c = window.app.canvas, nodes = window.app.graph._nodes;
        const x0 = Math.min(...nodes.map((n) => n.pos[0])), y0 = Math.min(...nodes.map((n) => n.pos[1] - 30));
        const x1 = Math.max(...nodes.map((n) => n.pos[0] + n.size[0]));
        const y1 = Math.max(...nodes.map((n) => n.pos[1] + n.size[1]));
        const px = c.canvas.width / c.canvas.getBoundingClientRect().width;   // device pixels per CSS pixel
        const k = Math.min((side - 80) / (x1 - x0), (side - 80) / (y1 - y0));
        c.ds.scale = k;
        c.ds.offset = [(side / 2) / k - (x0 + x1) / 2, (side / 2) / k - (y0 + y1) / 2];
        c.draw(true, true);
        const square = document.createElement("canvas");
        square.width = square.height = side;
        square.getContext("2d").drawImage(c.canvas, 0, 0, side * px, side * px, 0, 0, side, side);
        return square.toDataURL("image/png");
    }""", SQUARE)
    png = base64.b64decode(data_url.split(",", 1)[1])
    image = Image.open(io.BytesIO(png)).convert("RGB").resize((THUMBNAIL, THUMBNAIL), Image.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def main() -> int:
    reason = browser.chromium_missing_reason()
    if reason:
        print(f"thumbnails not drawn: {reason}")
        return 1
    from playwright.sync_api import sync_playwright
    base = Path(tempfile.mkdtemp(prefix="lcm-kit-thumbnails-"))
    comfy_env.make_base_dir(base, {})
    browser.write_frontend_settings(base, SETTINGS)
    server = comfy_env.ComfyServer(base, base / "comfyui.log").start()
    try:
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=browser.CHROMIUM, headless=True, args=browser.CHROMIUM_ARGS)
            page = chromium.new_page(viewport={"width": SQUARE, "height": SQUARE})
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server.url)
                       else route.abort())
            page.goto(server.url + "/", wait_until="domcontentloaded", timeout=120_000)
            page.wait_for_function("() => window.app?.graph && window.app.canvas", timeout=120_000)
            for path in sorted(OUT.glob("*.json")):
                jpg = path.with_suffix(".jpg")
                jpg.write_bytes(draw(page, json.loads(path.read_text())))
                print(f"wrote {jpg.relative_to(REPO)}")
            chromium.close()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
