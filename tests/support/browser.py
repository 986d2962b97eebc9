"""The real ComfyUI frontend in headless Debian Chromium, driven by Playwright, for live-mode tests and
the live benchmark. Chromium is the system one (/usr/bin/chromium, installed by scripts/testbed.py);
Playwright never downloads a browser. Only 127.0.0.1 is ever loaded."""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import time
from pathlib import Path

from . import comfy_env, tiny_models

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LCM_KIT_CHROMIUM", "/usr/bin/chromium")
# The flags this machine needs: no sandbox as root, no GPU, and no background traffic to the network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Chromium's fake camera (a test pattern); without the fake UI flag a camera request is denied (headless: no prompt).
FAKE_CAMERA_ARGS = ["--use-fake-device-for-media-stream"]
FAKE_CAMERA_ALLOWED_ARGS = FAKE_CAMERA_ARGS + ["--use-fake-ui-for-media-stream"]
LIVE_WORKFLOW = REPO / "example_workflows" / "8. Live mode (the image follows the prompt as you type).json"
SKETCH_WORKFLOW = REPO / "example_workflows" / "9. Live sketch (img2img follows your drawing).json"
# The public model names the example workflow uses, served by the tiny test models.
PUBLIC_MODEL_NAMES = {
    "checkpoints/v1-5-pruned-emaonly.safetensors": "checkpoints/tiny-sd15.safetensors",
    "loras/lcm-lora-sdv1-5.safetensors": "loras/tiny-sd15-lcm-kohya.safetensors",
}
DEFAULT_DEBOUNCE_MS = 150   # js/scheduling.js's default for LCMKit.Live.DebounceMs
# Settings that keep first-run dialogs (templates browser, tutorial) from covering the canvas; the classic
# node renderer unless a test asks for Nodes 2.0 (Comfy.VueNodes.Enabled).
FRONTEND_SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.VueNodes.Enabled": False}
# The newest ComfyUI frontend, unpacked by scripts/testbed.py into .testbed/frontends/<version> and served
# with --front-end-root, for the browser tests besides the server's own frontend.
NEWEST_FRONTEND = "1.58.1"


# A widget's change as the frontend makes it (value, then callback), for a node by its id or its path into subgraphs.
SET_WIDGET = """([path, name, value]) => {
    let graph = window.app.rootGraph ?? window.app.graph, node = null;
    for (const id of path.split(':')) { node = graph.getNodeById(Number(id)); graph = node?.subgraph; }
    const w = node.widgets.find((x) => x.name === name); w.value = value; w.callback?.(value); }"""


# What the tests observe of live mode, all from outside the pack: the requests the page sends (POST /prompt and
# /queue), the server's websocket messages, and the Live Preview nodes as a user sees them. SHOWN_FRAMES (a
# script of the tests, added to the page before it loads) records each frame a Live Preview's canvas shows, with the
# readout line beside it at that moment (js/view.js sets the canvas's data-prompt-id once per frame drawn).
SHOWN_FRAMES = """(() => { const shown = window.__lcmKitTestShown = [];
    new MutationObserver((records) => { for (const r of records) { const c = r.target;
        if (!c.matches?.('canvas.lcm-kit-frame') || !c.dataset.promptId) continue;
        const readout = c.closest('.lcm-kit-live')?.querySelector('.lcm-kit-readout')?.textContent ?? '';
        shown.push({ promptId: c.dataset.promptId, frame: Number(c.dataset.frame), at: performance.now(), readout }); } })
    .observe(document, { subtree: true, attributes: true, attributeFilter: ['data-prompt-id'] }); })()"""
# Every Live Preview node (also inside subgraphs, under its execution id "12:5"): its readout, its error and the
# prompt whose frame its canvas shows, read from the elements its view draws.
LIVE_VIEWS = """() => { const out = [];
    const walk = (graph, prefix) => { for (const n of graph?.nodes ?? graph?._nodes ?? []) {
        const el = n.comfyClass === 'LCMKitLivePreview'
            ? n.widgets?.find((w) => w.name === 'lcm_kit_live_view')?.element : null;
        if (el) { const error = el.querySelector('.lcm-kit-line.error'), canvas = el.querySelector('canvas.lcm-kit-frame');
            out.push({ id: prefix + n.id, readout: el.querySelector('.lcm-kit-readout')?.textContent ?? '',
                       error: error && error.style.display !== 'none' ? error.textContent : '',
                       shown: canvas?.dataset.promptId || null }); }
        if (n.subgraph) walk(n.subgraph, `${prefix}${n.id}:`); } };
    walk(window.app.rootGraph ?? window.app.graph, ''); return out; }"""
# The readout's "frame 850 ms after your edit (run 600 ms)" (js/readout.js formatDuration: ms, then 1.2 s, 12 s).
READOUT_TIMES = re.compile(r"frame ([\d.]+) (ms|s) after (?:your edit|capture)(?: \(run ([\d.]+) (ms|s)\))?")


def readout_times(readout: str) -> tuple[float | None, float | None]:
    """(latency ms, compute ms) as a Live Preview's readout line shows them, None where it shows none."""
    m = READOUT_TIMES.search(readout)
    if not m:
        return None, None
    ms = lambda value, unit: float(value) * (1000 if unit == "s" else 1)  # noqa: E731
    return ms(m[1], m[2]), (ms(m[3], m[4]) if m[3] else None)


def newest_frontend_root() -> Path | None:
    """Where the newest frontend's static files are, or None when the test bed has not unpacked them."""
    testbed = Path(os.environ.get("LCM_KIT_TESTBED", REPO / ".testbed"))
    root = testbed / "frontends" / NEWEST_FRONTEND
    return root if (root / "index.html").exists() else None


def chromium_missing_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found (scripts/testbed.py installs Debian's chromium when run as root)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (it is pinned in scripts/requirements-testbed.lock)"
    return None


@contextlib.contextmanager
def frontend_server(frontend: str, server, base: Path, log_dir: Path):
    """The session's `server` with its own frontend ("own"), or a second server on the same base directory serving
    the newest frontend ("newest"), stopped on exit. pytest.skip when Chromium or that frontend is missing."""
    import pytest
    prepare_base(base, write_settings=False)
    if frontend == "own":
        yield server
        return
    root = newest_frontend_root()
    if root is None:
        pytest.skip(f"frontend {NEWEST_FRONTEND} is not unpacked (python3 scripts/testbed.py setup)")
    newest = comfy_env.ComfyServer(base, log_dir / "comfyui.log", extra_args=["--front-end-root", str(root)])
    newest.start()
    try:
        yield newest
    finally:
        newest.stop()


# The browser tests' 2×2: the server's own frontend and the newest one, each with both node renderers.
FRONTENDS = ["own", "newest"]
RENDERERS = ["classic", "nodes2"]


@contextlib.contextmanager
def renderer_page(server, base: Path, renderer: str):
    """A Browser on `server` with the node renderer `renderer` ("classic", or "nodes2": Nodes 2.0), recording what
    the page receives (Browser.record_frames); `b.vue` says which renderer."""
    vue = renderer == "nodes2"
    write_frontend_settings(base, {"Comfy.VueNodes.Enabled": vue})
    with Browser(server.url) as b:
        b.vue = vue
        b.record_frames()
        yield b


def prepare_base(base: Path, settings: dict | None = None, write_settings: bool = True) -> None:
    """Ready `base` for a browser test: pytest.skip when Chromium or Playwright is missing, serve the tiny models
    under the examples' public names, and write the frontend settings (the tests' defaults + `settings`), unless
    `write_settings` is False (the caller writes them)."""
    import pytest
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(reason)
    link_public_models(base)
    if write_settings:
        write_frontend_settings(base, settings)


def link_public_models(base: Path) -> None:
    """Serve the tiny models under the example workflow's public names in `base`/models."""
    link_models(base, PUBLIC_MODEL_NAMES)


def link_models(base: Path, names: dict[str, str]) -> None:
    """Link tiny models (generated if missing) into `base`/models under other names: {public: tiny}."""
    paths = tiny_models.ensure(*names.values())
    comfy_env.make_base_dir(base, {public: paths[tiny] for public, tiny in names.items()})


def write_frontend_settings(base: Path, extra: dict | None = None) -> None:
    path = base / "user" / "default" / "comfy.settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = json.loads(path.read_text()) if path.exists() else {}
    settings.update(FRONTEND_SETTINGS, **(extra or {}))
    path.write_text(json.dumps(settings))


def live_workflow(size: int = 128, text: str | None = None) -> dict:
    """The example live workflow, shrunk to `size`² for these CPU cores."""
    wf = json.loads(LIVE_WORKFLOW.read_text())
    for node in wf["nodes"]:
        if node["type"] == "EmptyLatentImage":
            node["widgets_values"][:2] = [size, size]
        if node["type"] == "CLIPTextEncode" and node["id"] == 3 and text is not None:
            node["widgets_values"][0] = text
    return wf


def sketch_workflow(size: int = 128) -> dict:
    """The example live sketch workflow with a size² canvas, its Live Preview moved beside the Sketch node."""
    wf = json.loads(SKETCH_WORKFLOW.read_text())
    sketch = next(n for n in wf["nodes"] if n["type"] == "LCMKitSketch")
    sketch["widgets_values"][:2] = [size, size]
    for node in wf["nodes"]:
        if node["type"] == "LCMKitLivePreview":
            node["pos"] = [sketch["pos"][0] + sketch["size"][0] + 40, sketch["pos"][1]]
    return wf


def ink(image, box) -> int:
    """Pixels in `box` of a screenshot that stand out from its background (its median colour): text or image on
    screen."""
    from PIL import Image, ImageChops, ImageStat
    left, top, right, bottom = (round(v) for v in box)
    assert right - left > 4 and bottom - top > 4, f"empty box {box}"
    crop = image.crop((max(0, left), max(0, top), min(image.width, right), min(image.height, bottom)))
    background = tuple(int(v) for v in ImageStat.Stat(crop).median)
    diff = ImageChops.difference(crop, Image.new("RGB", crop.size, background)).convert("L")
    return sum(1 for v in diff.getdata() if v > 60)


class Browser:
    """One Chromium with one page on the ComfyUI frontend at `url`; records console errors and every
    prompt the page queues (POST /prompt bodies)."""

    def __init__(self, url: str, extra_args: list[str] = ()):
        assert url.startswith("http://127.0.0.1:"), url
        self.url = url
        self.extra_args = list(extra_args)
        self.console_errors: list[str] = []
        self.dialogs: list[str] = []            # alert/confirm/prompt messages the page opened
        # POST /prompt in the order the page sent them: {"body", "done", "id" (the server's answer) or "rejected"}
        self.prompt_posts: list[dict] = []
        self.withdrawn: list[str] = []          # prompt ids the page deleted from the queue (POST /queue)
        self.server_events: list[dict] = []     # the server's JSON websocket messages to this page, in order

    def __enter__(self) -> "Browser":
        from playwright.sync_api import sync_playwright
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS + self.extra_args)
        self.page = self.browser.new_page(viewport={"width": 1600, "height": 900})
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("request", self._on_request)
        self.page.on("requestfinished", self._on_request_finished)
        self.page.on("requestfailed", self._on_request_finished)
        self.page.on("websocket", lambda ws: ws.on("framereceived", self._on_server_message))
        self.page.add_init_script(SHOWN_FRAMES)
        self.page.on("dialog", self._on_dialog)
        # Nothing but the server under test.
        self.page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(self.url)
                        else route.abort())
        self.page.goto(self.url + "/", wait_until="domcontentloaded", timeout=120_000)
        # The frontend sets window.app before it opens its first workflow (the default one, as a tab):
        # a workflow loaded earlier is replaced by it seconds later on a busy machine, and live mode stops.
        self.page.wait_for_function("() => window.app?.graph && window.app.canvas"
                                    " && window.app.extensionManager?.workflow?.activeWorkflow"
                                    " && window.app.extensions?.some((e) => e.name === 'LCMKit.Live')", timeout=120_000)
        return self

    def __exit__(self, *exc):
        try:
            self.browser.close()
        finally:
            self._pw.stop()

    def _on_request(self, request) -> None:
        if request.method != "POST":
            return
        path = request.url.split("?")[0]
        try:
            body = request.post_data_json
        except Exception:   # a non-JSON body: the server answers it with a 400
            body = None
        if path.endswith("/prompt"):
            self.prompt_posts.append({"request": request, "body": body, "done": False, "id": None, "rejected": False})
        elif path.endswith("/queue") and isinstance(body, dict):
            self.withdrawn += body.get("delete", [])

    @property
    def queued(self) -> list[dict]:
        """The body of every POST /prompt the page sent (a non-JSON one excepted), in order."""
        return [p["body"] for p in self.prompt_posts if p["body"] is not None]

    @property
    def queued_ids(self) -> dict[str, dict]:
        """{prompt id (from the server's answer): the request body} of every prompt the server took."""
        return {p["id"]: p["body"] for p in self.prompt_posts if p["id"]}

    def _on_server_message(self, payload) -> None:
        if isinstance(payload, str):
            try:
                message = json.loads(payload)
            except ValueError:
                return
            if isinstance(message, dict) and isinstance(message.get("data"), dict):
                self.server_events.append(message)

    def _on_request_finished(self, request) -> None:
        post = next((p for p in self.prompt_posts if p["request"] is request), None)
        if post is None:
            return
        try:
            answer = request.response().json()
        except Exception:   # failed, or not JSON
            answer = None
        post["done"] = True
        if isinstance(answer, dict) and answer.get("prompt_id"):
            post["id"] = answer["prompt_id"]
        else:
            post["rejected"] = True

    def _on_dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def record_frames(self) -> None:
        """Record, through the frontend's api (what any extension sees of the websocket), the frames the server sends
        (window.lcmKitTest.frames: {prompt id: data URL}; .preview: the last binary preview of any kind) and the ids
        of prompts whose execution_error reached the frontend (.errors)."""
        self.js("""() => { const t = window.lcmKitTest = { frames: {}, preview: null, errors: [] }; let meta = null;
            const { api } = window.comfyAPI.api;
            api.addEventListener('execution_error', ({ detail }) => t.errors.push(detail.prompt_id));
            api.addEventListener('lcm_kit.live_frame', ({ detail }) => { meta = detail; });
            api.addEventListener('b_preview', ({ detail }) => { const m = meta; meta = null;
                const r = new FileReader(); r.onload = () => { t.preview = r.result; if (m) t.frames[m.prompt_id] = r.result; };
                r.readAsDataURL(detail); }); }""")

    def frontend_version(self) -> str:
        return self.js("() => window.__COMFYUI_FRONTEND_VERSION__ ?? ''")

    def command(self, command_id: str) -> None:
        """Run a frontend command, as the command palette or a keybinding does."""
        self.js("(id) => window.app.extensionManager.command.execute(id)", command_id)

    def wait_until(self, condition, timeout: float = 60.0, what: str = "the condition"):
        """Poll `condition()` (a Python callable; the page keeps running between polls) until it returns a true
        value, which is returned; TimeoutError after `timeout` seconds."""
        deadline = time.time() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.time() > deadline:
                raise TimeoutError(f"{what} did not happen in {timeout}s")
            self.page.wait_for_timeout(50)

    def next_frames(self, n: int = 2) -> None:
        """Wait until the page drew `n` more frames (the canvas lays out and draws widgets on its next frame)."""
        self.js("(n) => new Promise((done) => { const step = (k) => k ? requestAnimationFrame(() => step(k - 1))"
                " : done(); step(n); })", n)

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def set_widget(self, node_id, name: str, value) -> None:
        """Set a widget's value as the frontend does on a change (value, then the widget's callback). `node_id` may
        be a root node's id or a path of ids into subgraphs ("12:5")."""
        self.js(SET_WIDGET, [str(node_id), name, value])

    def set_live(self, on: bool) -> None:
        """Switch live mode on or off with the command (as the command palette does), if it is not so already."""
        if self.live_state()["on"] != on:
            self.command("LCMKit.Live.Toggle")
        self.wait_until(lambda: self.live_state()["on"] == on, 5, f"the readout saying live {'on' if on else 'off'}")

    def set_debounce(self, ms: int) -> None:
        """The live mode's debounce setting (LCMKit.Live.DebounceMs), as the settings dialog sets it."""
        self.js("(v) => window.app.extensionManager.setting.set('LCMKit.Live.DebounceMs', v)", ms)

    def load_workflow(self, workflow: dict) -> None:
        """Load `workflow` and show it at 60 %, its top below the tab bar (a click there would switch tabs)."""
        self.js("async (wf) => { await window.app.loadGraphData(wf); window.app.canvas.ds.offset = [10, 90];"
                " window.app.canvas.ds.scale = 0.6; window.app.canvas.setDirty(true, true); }", workflow)
        self.next_frames(3)

    def close_dialogs(self) -> None:
        """Close what the frontend popped up (its error dialog after a failed run), as a user would."""
        dialogs = self.page.locator(".p-dialog")
        for _ in range(3):
            shown = dialogs.count()
            if not shown:
                return
            self.page.keyboard.press("Escape")
            try:
                self.wait_until(lambda: dialogs.count() < shown, 2.0, "the dialog closing")
            except TimeoutError:
                pass   # not one Escape closes: the next press tries again

    def widget_point(self, node_id: int, widget: str) -> tuple[float, float]:
        """Where a canvas widget of a node is on the screen (page coordinates)."""
        return tuple(self.js("""([id, name]) => {
            const c = window.app.canvas, node = window.app.graph.getNodeById(id);
            const w = node.widgets.find((x) => x.name === name);
            const y = node.pos[1] + (w.last_y ?? w.y) + 10;
            const x = node.pos[0] + node.size[0] / 2;
            const [cx, cy] = c.ds.convertOffsetToCanvas([x, y]);
            const r = c.canvas.getBoundingClientRect(), k = r.width / c.canvas.width;
            return [r.left + cx * k, r.top + cy * k];
        }""", [node_id, widget]))

    def show_node(self, node_id: int, at: tuple[float, float] = (120, 140), scale: float = 1.0) -> None:
        """Pan the graph so that the node's top left corner is at `at` (page px), at `scale`."""
        self.js("""([id, x, y, k]) => { const c = window.app.canvas, n = window.app.graph.getNodeById(id);
            c.ds.scale = k; c.ds.offset = [x / k - n.pos[0], y / k - n.pos[1]]; c.setDirty(true, true); }""",
                [node_id, at[0], at[1], scale])
        self.next_frames(3)

    def element_box(self, node_id: int, widget: str, selector: str) -> list[float]:
        """[left, top, right, bottom] on the page of an element inside a node's DOM widget."""
        return self.js("""([id, name, sel]) => {
            const w = window.app.graph.getNodeById(id).widgets.find((x) => x.name === name);
            const r = w.element.querySelector(sel).getBoundingClientRect();
            return [r.left, r.top, r.right, r.bottom]; }""", [node_id, widget, selector])

    def element_text(self, node_id: int, widget: str, selector: str) -> str:
        """The text of an element inside a node's DOM widget ("" when hidden)."""
        return self.js("""([id, name, sel]) => {
            const w = window.app.graph.getNodeById(id).widgets.find((x) => x.name === name);
            const el = w.element.querySelector(sel);
            return el && (el.checkVisibility?.() ?? true) ? el.textContent : ''; }""", [node_id, widget, selector])

    def text_ink(self, node_id: int, widget: str, selector: str) -> int:
        """Pixels of a screenshot inside an element of a node's DOM widget that stand out from the element's median
        colour: its text as a user sees it (0 when it is off screen or hidden)."""
        left, top, right, bottom = self.element_box(node_id, widget, selector)
        if right - left <= 4 or bottom - top <= 4:
            return 0
        return ink(self.screenshot(), (left, top, right, bottom))

    def screenshot(self):
        """The page as a user sees it, as an RGB PIL image (CSS px = image px)."""
        from PIL import Image
        return Image.open(io.BytesIO(self.page.screenshot())).convert("RGB")

    def stroke(self, box, points, step_ms: int = 15) -> None:
        """Draw with the mouse through `points` (0..1 of the box `box`), button held, as a user does."""
        left, top, right, bottom = box
        xy = [(left + (right - left) * px, top + (bottom - top) * py) for px, py in points]
        self.page.mouse.move(*xy[0])
        self.page.mouse.down()
        for p in xy[1:]:
            self.page.mouse.move(*p, steps=2)
            if step_ms:
                self.page.wait_for_timeout(step_ms)
        self.page.mouse.up()

    def click_live_toggle(self, node_id: int = 8) -> None:
        self.next_frames(2)   # the canvas lays widgets out on its next frame
        x, y = self.widget_point(node_id, "live")
        self.page.mouse.click(x, y)

    def focus_text(self, node_id: int = 3) -> None:
        """Click into a node's multiline text box, as a user does, and put the cursor at the end. Nodes 2.0
        draws its own text box for the widget (the classic DOM widget's element is then not on the page:
        a click at its empty box, (0, 0), would hit the first workflow tab)."""
        box = self.js("""(id) => {
            const w = window.app.graph.getNodeById(id).widgets.find((x) => x.name === 'text');
            const shown = (el) => el && el.getBoundingClientRect().width > 0 ? el : null;
            const el = shown(document.querySelector(`[data-node-id="${id}"] textarea`)) ?? shown(w.element ?? w.inputEl);
            if (!el) return null;
            const r = el.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2];
        }""", node_id)
        assert box, f"node {node_id}'s text box is not on the page"
        self.page.mouse.click(*box)
        self.page.keyboard.press("End")

    def text_value(self, node_id: int = 3) -> str:
        return self.js("(id) => window.app.graph.getNodeById(id).widgets.find((x) => x.name === 'text').value",
                       node_id)

    def live_views(self) -> list[dict]:
        """Every Live Preview node as a user sees it: {id, readout, error, shown (the prompt whose frame it shows)}."""
        return self.js(LIVE_VIEWS)

    def shown_frames(self) -> list[dict]:
        """Each frame a Live Preview's canvas showed since the page loaded, oldest first: {promptId, frame, at
        (performance.now() in the page), readout, latencyMs and computeMs (as the readout showed them), seq (the
        prompt's place among the page's POST /prompt)}."""
        order = {p["id"]: i for i, p in enumerate(self.prompt_posts) if p["id"]}
        shown = self.js("() => window.__lcmKitTestShown ?? []")
        for h in shown:
            h["latencyMs"], h["computeMs"] = readout_times(h["readout"])
            h["seq"] = order.get(h["promptId"])
        return shown

    def live_state(self) -> dict:
        """Live mode as this page shows it and as the server and the network see it:
        on: the first Live Preview's readout says "● live"; error: the error a Live Preview shows ("" -> None);
        latest: the newest answered POST /prompt's id, or "rejected-<n>" when the server refused it (the n-th refusal);
        queuing: a POST /prompt under way; inflight: queued prompts the server has not finished (withdrawn ones that
        never started excepted); running: those the server started; stats: counts of prompts queued, rejected,
        withdrawn (cancelled), interrupted by the server, frames the server sent for the page's prompts, and failed;
        history: the frames shown (shown_frames)."""
        views = self.live_views()
        started, finished, errors, frames = set(), {}, 0, 0
        ours = {p["id"] for p in self.prompt_posts if p["id"]}
        for m in self.server_events:
            pid = m["data"].get("prompt_id")
            if pid not in ours:
                continue
            if m["type"] == "execution_start":
                started.add(pid)
            elif m["type"] in ("execution_success", "execution_error", "execution_interrupted"):
                finished[pid] = m["type"].removeprefix("execution_")
                errors += m["type"] == "execution_error"
            elif m["type"] == "lcm_kit.live_frame":
                frames += 1
        latest, rejected = None, 0
        for post in self.prompt_posts:
            if post["done"]:
                rejected += post["rejected"]
                latest = f"rejected-{rejected}" if post["rejected"] else post["id"]
        withdrawn = set(self.withdrawn)
        inflight = [pid for pid in ours if pid not in finished and (pid in started or pid not in withdrawn)]
        error = next((v["error"] for v in views if v["error"]), None)
        return {"on": bool(views) and views[0]["readout"].startswith("● live"), "latest": latest,
                "finished": finished.get(latest), "error": error, "views": views,
                "queuing": any(not p["done"] for p in self.prompt_posts), "inflight": inflight,
                "running": [pid for pid in inflight if pid in started],
                "stats": {"queued": len(ours), "rejected": rejected, "cancelled": len(withdrawn),
                          "interrupted": sum(v == "interrupted" for v in finished.values()), "frames": frames,
                          "errors": errors},
                "history": self.shown_frames()}

    def graph_is_queued(self) -> bool:
        """Whether the newest prompt the page sent is the graph as it is now (no edit waits for its debounce): each
        node of that prompt has the inputs the frontend's own app.graphToPrompt gives now."""
        posted = next((p["body"] for p in reversed(self.prompt_posts) if p["done"]), None)
        if not isinstance(posted, dict):
            return False
        now = self.js("async () => (await window.app.graphToPrompt()).output")
        return all(now.get(nid, {}).get("inputs") == node.get("inputs") for nid, node in posted["prompt"].items())

    def wait_settled(self, after: str | None = None, timeout: float = 240.0) -> dict:
        """Wait until live mode has caught up with the graph: the newest prompt the page sent (newer than `after`, a
        `latest` of live_state) is the graph as it is now, the server finished it and every earlier one, and a Live
        Preview shows its frame, or its error (a refused or failed prompt)."""
        def settled():
            s = self.live_state()
            if not s["latest"] or s["latest"] == after or s["queuing"] or s["inflight"]:
                return None
            if s["latest"].startswith("rejected-") or s["finished"] == "error":
                done = bool(s["error"])
            else:
                done = s["finished"] == "interrupted" or any(v["shown"] == s["latest"] for v in s["views"])
            return s if done and self.graph_is_queued() else None
        try:
            return self.wait_until(settled, timeout, "live mode settling")
        except TimeoutError as e:
            state = self.live_state()
            state.pop("history")
            raise TimeoutError(f"{e}: {state}") from None

    def queued_texts(self) -> dict[str, str]:
        """{prompt_id: positive prompt text} of every prompt the page queued (the server names the id)."""
        return {pid: b["prompt"]["3"]["inputs"]["text"] for pid, b in self.queued_ids.items()
                if isinstance(b, dict) and "3" in b.get("prompt", {})}

