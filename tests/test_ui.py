"""What a user sees of the pack on the node (issue #15), in Chromium, from screenshots: on the server's own
frontend and on the newest one (scripts/testbed.py unpacks it; served with --front-end-root), each with the
classic node renderer and with Nodes 2.0 (setting Comfy.VueNodes.Enabled), which draws no canvas foreground.

Text is checked twice: the DOM text of the element, and ink in its box on the screenshot (there is no OCR
here). The frame is checked against the pixels the server sent."""
from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image, ImageChops, ImageStat

from support import browser as browser_support
from support.browser import ink

LIVE_NODE, SAMPLER_NODE, LORA_NODE, LATENT_NODE = 8, 6, 2, 5
# A LoRA file name that is HTML: it must show up as text.
HOSTILE_LORA = "<img src=x onerror=alert(1)>.safetensors"
WRONG_ARCH_LORA = "sdxl-lcm-lora.safetensors"   # an SDXL LoRA: the SD1.5 graph fails at run time
USER_COLOR, USER_BGCOLOR = "#2a4d6a", "#1d3347"
READOUT = re.compile(r"● live · (?:[\d.]+ fps · )?frame [\d.]+ (?:ms|s) after your edit \(run [\d.]+ (?:ms|s)\)")


@pytest.fixture(scope="module", params=browser_support.FRONTENDS)
def ui_server(request, server, base_dir, tmp_path_factory):
    """The session's server with its own frontend, or a second one on the same base directory serving the
    newest frontend."""
    browser_support.link_models(base_dir, {f"loras/{HOSTILE_LORA}": "loras/tiny-sd15-lcm-kohya.safetensors",
                                           f"loras/{WRONG_ARCH_LORA}": "loras/tiny-sdxl-lcm-kohya.safetensors"})
    log_dir = tmp_path_factory.mktemp("server-newest")
    with browser_support.frontend_server(request.param, server, base_dir, log_dir) as srv:
        yield srv


@pytest.fixture(scope="module", params=browser_support.RENDERERS)
def page(request, ui_server, base_dir):
    """The frontend with one node renderer, the live workflow loaded (the hostile LoRA name, cfg 3 for the
    sampler's warning, a colour the user gave the sampler) and live mode switched on with the command."""
    with browser_support.renderer_page(ui_server, base_dir, request.param) as b:
        vue = b.vue
        wf = browser_support.live_workflow(size=128, text=f"a red fox, {request.param}")
        for node in wf["nodes"]:
            if node["id"] == LORA_NODE:
                # another strength per renderer: the server runs the loader again (a node the server has
                # cached sends no message, so a reloaded page shows no status for it)
                node["widgets_values"][:2] = [HOSTILE_LORA, 1.0 if not vue else 0.9]
            if node["id"] == SAMPLER_NODE:
                node["widgets_values"][3] = 3.0                  # cfg 3: the sampler warns
                node["color"], node["bgcolor"] = USER_COLOR, USER_BGCOLOR
        b.workflow = wf
        b.load_workflow(wf)
        b.command("LCMKit.Live.Toggle")
        b.first = b.wait_settled()
        yield b
        b.set_live(False)


@pytest.fixture
def live_page(page):
    """The module's page as each test starts it, whatever ran before: the fixture's workflow in the root graph (a
    test that packed nodes into a subgraph leaves another graph), no dialog open, live on and its newest frame in."""
    b = page
    b.close_dialogs()
    restructured = b.js("""() => { const root = window.app.rootGraph ?? window.app.graph;
        return window.app.canvas.graph !== root || root.nodes.some((n) => n.subgraph); }""")
    if restructured:
        b.set_live(False)
        b.js("() => window.app.canvas.setGraph(window.app.rootGraph ?? window.app.graph)")
        b.load_workflow(b.workflow)
    if not b.live_state()["on"]:
        before = b.live_state()
        b.set_live(True)
        b.wait_settled(after=before["latest"])
    return b


def run_the_lora_loader(b) -> dict:
    """Make the server run the LoRA loader (and all after it) again: its strength 1.0 <-> 0.95 (a node the server
    has cached sends no message, so it shows no new status; the server caches one output per node)."""
    before = b.live_state()
    strength = b.js("(id) => window.app.graph.getNodeById(id).widgets.find((w) => w.name === 'strength').value",
                    LORA_NODE)
    b.set_widget(LORA_NODE, "strength", 0.95 if strength == 1.0 else 1.0)
    return b.wait_settled(after=before["latest"])


def screenshot(b) -> Image.Image:
    return b.screenshot()


def panel(b, node_id: int, widget: str, selector: str) -> dict:
    """An element inside a node's DOM widget: its text and its box on the page (CSS px = screenshot px)."""
    return b.js("""([id, name, sel]) => {
        const w = window.app.graph.getNodeById(id).widgets?.find((x) => x.name === name);
        const el = w?.element?.matches(sel) ? w.element : w?.element?.querySelector(sel);
        if (!el) return null;
        const r = el.getBoundingClientRect();
        return { text: el.textContent, shown: el.checkVisibility?.() ?? true,
                 box: [r.left, r.top, r.right, r.bottom], html: el.innerHTML,
                 width: el.width, height: el.height, scrollWidth: el.scrollWidth, clientWidth: el.clientWidth,
                 scrollHeight: el.scrollHeight, clientHeight: el.clientHeight };
    }""", [node_id, widget, selector])


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def assert_text_visible(image, element, needle) -> None:
    assert element and element["shown"], f"{needle!r}: element not shown"
    assert needle in element["text"], element["text"]
    assert ink(image, element["box"]) > 30, f"{needle!r}: no text pixels in {element['box']} on the screenshot"


def assert_no_error_ui_outside_the_node(b) -> list[str]:
    """Visible error UI of the frontend (dialog, toast, panel) that is not the pack's own on-node text."""
    return b.js("""() => [...document.querySelectorAll('.p-dialog, [role=dialog], [role=alertdialog], .p-toast-message')]
        .filter((e) => e.checkVisibility?.() ?? e.offsetParent !== null).map((e) => e.innerText.slice(0, 200))""")


def error_shown_by_frontend(b, needles) -> set[str]:
    """The visible texts outside the pack's panels that contain one of `needles`."""
    return set(b.js("""(needles) => [...document.querySelectorAll('body *')].filter((e) =>
        !e.closest('.lcm-kit-panel') && e.children.length === 0 && (e.checkVisibility?.() ?? true)
        && needles.some((n) => (e.textContent || '').includes(n))).map((e) => e.textContent)""", needles))


@pytest.mark.server
def test_live_preview_frame_readout_and_node_messages_show_in_both_renderers(live_page):
    b = live_page
    run_the_lora_loader(b)
    image = screenshot(b)
    # the frame: the pixels in the node's image box are the frame the server sent
    assert_frame_on_screen(b, image)
    # the readout: fps and latency with units and meaning
    readout = panel(b, LIVE_NODE, "lcm_kit_live_view", ".lcm-kit-readout")
    assert READOUT.fullmatch(readout["text"]), readout["text"]
    assert_text_visible(image, readout, "after your edit")
    # the sampler's warning as a line on the node; the user's colour kept
    warning = panel(b, SAMPLER_NODE, "lcm_kit_status", ".lcm-kit-line.warning")
    assert_text_visible(image, warning, "cfg 3 is high for LCM")
    assert b.js("(id) => { const n = window.app.graph.getNodeById(id); return [n.color, n.bgcolor]; }",
                SAMPLER_NODE) == [USER_COLOR, USER_BGCOLOR]
    # a file name that is HTML shows as text: nothing of it became an element or ran
    status = panel(b, LORA_NODE, "lcm_kit_status", ".lcm-kit-status")
    assert_text_visible(image, status, HOSTILE_LORA)
    for lines in (status, panel(b, SAMPLER_NODE, "lcm_kit_status", ".lcm-kit-status")):
        assert lines["scrollHeight"] <= lines["clientHeight"] + 1, f"status lines cut off: {lines}"
    assert "<img" not in status["html"] and "&lt;img" in status["html"]
    assert b.js("() => document.querySelectorAll('img[src=\"x\"], .lcm-kit-panel img, [onerror]').length") == 0
    assert b.dialogs == []
    # the live switch follows live mode (switched on by the command), also as Nodes 2.0 draws it
    assert b.js("(id) => window.app.graph.getNodeById(id).widgets.find((w) => w.name === 'live').value",
                LIVE_NODE) is True
    if b.vue:
        assert b.js("""(id) => { const el = document.querySelector(`[data-node-id="${id}"]`);
            const sw = el?.querySelector('[role=switch][aria-label=live], input[aria-label=live]');
            if (sw) return sw.getAttribute('aria-checked') === 'true' || sw.checked;
            const on = [...(el?.querySelectorAll('button[aria-pressed=true]') ?? [])].map((x) => x.textContent.trim());
            return on.includes('on'); }""", LIVE_NODE), "the Nodes 2.0 live switch does not show 'on'"


def assert_frame_on_screen(b, image) -> None:
    """The pixels in the Live Preview's image box are the last frame the server sent (the page's last b_preview)."""
    frame = panel(b, LIVE_NODE, "lcm_kit_live_view", "canvas.lcm-kit-frame")
    assert frame and frame["shown"] and frame["width"] > 0, frame
    sent = Image.open(io.BytesIO(base64.b64decode(b.js("() => window.lcmKitTest.preview").split(",", 1)[1])))
    assert sent.size == (frame["width"], frame["height"])
    left, top, right, bottom = frame["box"]
    scale = min((right - left) / sent.width, (bottom - top) / sent.height)   # object-fit: contain
    w, h = sent.width * scale, sent.height * scale
    x0, y0 = left + (right - left - w) / 2, top + (bottom - top - h) / 2
    assert w > 40, f"the frame is drawn {w:.0f} px wide"
    # compared at 32×32 (the renderers scale the frame smoothly, each its own way): close to the sent frame,
    # far from its mirror image and from its mean colour
    shown = image.crop((round(x0) + 1, round(y0) + 1, round(x0 + w) - 1, round(y0 + h) - 1))
    small = (32, 32)
    expected = sent.convert("RGB").resize(small, Image.Resampling.BOX)
    error = mean_difference(shown.resize(small, Image.Resampling.BOX), expected)
    mirrored = mean_difference(shown.resize(small, Image.Resampling.BOX),
                               expected.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    flat = mean_difference(expected, Image.new("RGB", small, tuple(int(v) for v in ImageStat.Stat(expected).mean)))
    assert error < 12 and error < mirrored / 2.5 and error < flat / 2.5, \
        f"screen vs sent frame: mean error {error:.1f}; vs its mirror image {mirrored:.1f}, vs flat {flat:.1f}"


# Two failing live edits: one the server refuses at queue time (HTTP 400), one that fails at run time.
# {kind: (the edit, its undo, text of the error, where the error text starts)}
FAILING_EDITS = {
    "refused at queue time": ([SAMPLER_NODE, "original_inference_steps", 1],
                              [SAMPLER_NODE, "original_inference_steps", 50],
                              "cannot exceed original_inference_steps", "LCM Sampler (LCM Kit) #6: "),
    "failed at run time": ([LORA_NODE, "lora_name", WRONG_ARCH_LORA], [LORA_NODE, "lora_name", HOSTILE_LORA],
                           "this LoRA is for SDXL", "LCM-LoRA Loader (LCM Kit) #2: "),
}


@pytest.mark.server
@pytest.mark.parametrize("kind", list(FAILING_EDITS))
def test_a_failed_live_edit_shows_on_the_node_without_a_modal_and_a_run_keeps_core_error_ui(live_page, kind):
    b = live_page
    edit, undo, message, where = FAILING_EDITS[kind]
    run_the_lora_loader(b)      # the loader shows the line of its run
    assert HOSTILE_LORA in panel(b, LORA_NODE, "lcm_kit_status", ".lcm-kit-status")["text"]
    before = b.live_state()
    # what the frontend shows already (newer frontends keep a normal Run's error panel until the next Run)
    shown_before = error_shown_by_frontend(b, [message, "failed"])
    b.set_widget(*edit)
    failed = b.wait_settled(after=before["latest"])
    b.next_frames(3)
    image = screenshot(b)
    assert failed["on"] and message in (failed["error"] or ""), failed
    assert failed["error"].startswith(where), failed["error"]   # the node's name as the user sees it
    refused = failed["stats"]["rejected"] - before["stats"]["rejected"]
    assert refused == (1 if kind == "refused at queue time" else 0), failed["stats"]
    error = panel(b, LIVE_NODE, "lcm_kit_live_view", ".lcm-kit-line.error")
    assert_text_visible(image, error, message)
    if kind == "failed at run time":
        # the loader ran again and failed: the line of its previous run is gone (not beside the new file name)
        lines = panel(b, LORA_NODE, "lcm_kit_status", ".lcm-kit-status")
        assert not lines["shown"] or HOSTILE_LORA not in lines["text"], lines["text"]
    # wrapped inside the node, never inside a word (the browser may break after a hyphen or a slash)
    assert error["scrollWidth"] <= error["clientWidth"] + 1, error
    broken = b.js("""(id) => {
        const el = window.app.graph.getNodeById(id).widgets.find((w) => w.name === 'lcm_kit_live_view')
            .element.querySelector('.lcm-kit-line.error');
        const text = el.firstChild, words = [], range = document.createRange();
        let lines = new Set();
        for (const m of text.textContent.matchAll(/[^\\s\\-\\/]+/g)) {   // words (a line may break after - or /)
            range.setStart(text, m.index); range.setEnd(text, m.index + m[0].length);
            const rects = [...range.getClientRects()].filter((r) => r.width > 0);
            rects.forEach((r) => lines.add(Math.round(r.top)));
            if (rects.length > 1 && m[0].length < 30) words.push(m[0]);
        }
        return { words, lines: lines.size }; }""", LIVE_NODE)
    assert broken["words"] == [] and broken["lines"] >= 2, broken
    # no modal, no error panel or toast of the frontend for a live run
    assert assert_no_error_ui_outside_the_node(b) == []
    assert error_shown_by_frontend(b, [message, "failed"]) <= shown_before
    assert failed["latest"] not in b.js("() => window.lcmKitTest.errors")
    # live off, then a normal Run of the same failing graph: the frontend's own error UI, as before
    b.command("LCMKit.Live.Toggle")
    assert b.live_state()["on"] is False
    b.command("Comfy.QueuePrompt")
    b.wait_until(lambda: error_shown_by_frontend(b, [message, "failed"]) - shown_before, 60, "a normal Run's error")
    b.close_dialogs()
    b.set_widget(*undo)


@pytest.mark.only({"page": "classic"})   # the same graph code in both renderers: checked in one
@pytest.mark.server
def test_an_edit_inside_a_subgraph_requeues_in_live_mode(live_page):
    b = live_page
    b.js("(id) => { const g = window.app.graph; g.convertToSubgraph(new Set([g.getNodeById(id)])); }", 3)
    before = b.wait_settled()
    # the text box the user sees: newer frontends show the inner widget on the subgraph node (promoted); older ones
    # only inside the subgraph
    b.js("""() => { const outer = window.app.graph.nodes.find((n) => n.subgraph);
        const inner = outer.subgraph.nodes.find((n) => n.type === 'CLIPTextEncode');
        const w = outer.widgets?.find((x) => x.name === 'text') ?? inner.widgets.find((x) => x.name === 'text');
        w.value = 'a blue heron'; w.callback?.(w.value); }""")
    after = b.wait_settled(after=before["latest"])
    assert after["error"] is None and after["history"][-1]["promptId"] == after["latest"] != before["latest"]
    # the page's request events reach this process a moment after the frame
    b.wait_until(lambda: after["latest"] in b.queued_ids, 10, "the queued prompt's request event")
    texts = [n["inputs"].get("text") for n in b.queued_ids[after["latest"]]["prompt"].values()]
    assert "a blue heron" in texts, texts


@pytest.mark.server
def test_a_steps_preset_that_overrides_steps_says_so_on_the_sampler(live_page):
    """The live workflow's sampler is saved with steps_preset "draft: 2 steps": the loaded node says so; custom
    clears it; another preset shows it again."""
    b = live_page
    hint = panel(b, SAMPLER_NODE, "lcm_kit_hint", ".lcm-kit-line.hint")
    assert_text_visible(screenshot(b), hint, 'steps is ignored: steps_preset "draft: 2 steps" samples 2 steps')
    b.set_widget(SAMPLER_NODE, "steps_preset", "custom (use steps)")
    b.wait_until(lambda: not panel(b, SAMPLER_NODE, "lcm_kit_hint", ".lcm-kit-line.hint")["shown"], 10, "the hint going")
    b.set_widget(SAMPLER_NODE, "steps_preset", "final: 8 steps")
    b.next_frames(3)
    hint = panel(b, SAMPLER_NODE, "lcm_kit_hint", ".lcm-kit-line.hint")
    assert_text_visible(screenshot(b), hint, 'steps is ignored: steps_preset "final: 8 steps" samples 8 steps')
    assert hint["scrollHeight"] <= hint["clientHeight"] + 1, f"hint cut off: {hint}"
    b.set_widget(SAMPLER_NODE, "steps_preset", "draft: 2 steps")
    b.wait_settled()


@pytest.mark.only({"page": "classic"})   # the same graph code in both renderers: checked in one
@pytest.mark.server
def test_a_live_preview_inside_a_subgraph_stays_live_and_shows_its_frame(live_page):
    """Packed into a subgraph, the Live Preview runs under the id "<subgraph node>:<node>": live mode queues up to it,
    and opening the subgraph shows its frame (it used to find no Live Preview and switch itself off)."""
    b = live_page
    outer = b.js("""(id) => { const g = window.app.graph;
        return g.convertToSubgraph(new Set([g.getNodeById(id)])).node.id; }""", LIVE_NODE)
    before = b.wait_settled()
    b.js("""() => { const g = window.app.graph; const node = g.getNodeById(3) ?? g.nodes.find((n) => n.subgraph
            && n.subgraph.nodes.some((x) => x.type === 'CLIPTextEncode'))?.subgraph.nodes.find((x) => x.type === 'CLIPTextEncode');
        const w = node.widgets.find((x) => x.name === 'text'); w.value = 'a green parrot'; w.callback?.(w.value); }""")
    after = b.wait_settled(after=before["latest"])
    inner = f"{outer}:{LIVE_NODE}"
    assert after["on"] and after["error"] is None, after
    assert [v["shown"] for v in after["views"] if v["id"] == inner] == [after["latest"]], after["views"]
    b.js("""(id) => { const node = window.app.graph.getNodeById(id); window.app.canvas.openSubgraph(node.subgraph, node); }""",
         outer)
    b.next_frames(3)
    try:
        box = b.js("""() => { const g = window.app.canvas.graph;
            const n = g.nodes.find((x) => x.comfyClass === 'LCMKitLivePreview');
            const el = n.widgets.find((w) => w.name === 'lcm_kit_live_view').element.querySelector('canvas.lcm-kit-frame');
            const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom, el.width, el.dataset.promptId]; }""")
        assert box[4] > 0, "the frame canvas is empty"
        assert box[5] == after["latest"], "the subgraph's Live Preview does not show the edit's frame"
        assert ink(screenshot(b), box[:4]) > 200, f"no frame on screen in {box[:4]}"
    finally:
        b.js("() => window.app.canvas.setGraph(window.app.rootGraph ?? window.app.graph)")


def readout(b) -> dict:
    return panel(b, LIVE_NODE, "lcm_kit_live_view", ".lcm-kit-readout")


@pytest.mark.server
def test_live_off_a_run_shows_its_progress_then_its_image_in_live_preview(live_page):
    """A normal Run (live off) is visible on the Live Preview as Preview Image shows it: the run's progress (step k of
    n, the node that runs) while it runs, then its image."""
    b = live_page
    b.set_live(False)
    shown_before = b.js("(id) => window.app.graph.getNodeById(id).widgets.find((w) => w.name === 'lcm_kit_live_view')"
                        ".element.querySelector('canvas').dataset.promptId", LIVE_NODE)
    # 256²: the run takes seconds here, long enough to see its progress on the screen
    b.set_widget(LATENT_NODE, "width", 256)
    b.set_widget(LATENT_NODE, "height", 256)
    b.set_widget(3, "text", f"a fox in a run, {b.vue}")
    try:
        b.command("Comfy.QueuePrompt")
        b.page.wait_for_function("""(id) => window.app.graph.getNodeById(id).widgets.find((w) => w.name ===
            'lcm_kit_live_view').element.querySelector('.lcm-kit-readout').textContent.includes('running: step')""",
                                 arg=LIVE_NODE, timeout=60_000)
        image = screenshot(b)
        assert_text_visible(image, readout(b), "running: step")
        assert re.search(r"running: step \d of 2 · [^·]+ #6", readout(b)["text"]), readout(b)["text"]
        wait_for_run_frame(b, shown_before, 256)
    finally:
        b.set_widget(LATENT_NODE, "width", 128)
        b.set_widget(LATENT_NODE, "height", 128)
    # its image, as Preview Image would show it (compared at the size the other tests compare frames)
    shown_before = b.js("(id) => window.app.graph.getNodeById(id).widgets.find((w) => w.name === 'lcm_kit_live_view')"
                        ".element.querySelector('canvas').dataset.promptId", LIVE_NODE)
    b.command("Comfy.QueuePrompt")
    wait_for_run_frame(b, shown_before, 128)
    image = screenshot(b)
    assert_frame_on_screen(b, image)
    assert_text_visible(image, readout(b), "live off")
    assert b.live_state()["on"] is False and not b.dialogs


def wait_for_run_frame(b, shown_before: str, size: int) -> None:
    """Until the Live Preview shows a new frame `size` px wide and the readout shows no run under way."""
    b.page.wait_for_function("""([id, before, size]) => { const c = window.app.graph.getNodeById(id).widgets.find((w) =>
        w.name === 'lcm_kit_live_view').element.querySelector('canvas'); return c.width === size
        && c.dataset.promptId !== before; }""", arg=[LIVE_NODE, shown_before, size], timeout=120_000)
    b.page.wait_for_function("""(id) => !window.app.graph.getNodeById(id).widgets.find((w) => w.name ===
        'lcm_kit_live_view').element.querySelector('.lcm-kit-readout').textContent.includes('running')""",
                             arg=LIVE_NODE, timeout=30_000)


@pytest.mark.server
def test_a_failed_frontend_probe_is_said_on_the_node(live_page):
    """Where the frontend lacks what live mode needs (here: api.queuePrompt, taken away by the test), switching live
    on says so on the Live Preview and live mode stays off; with it back, the line goes."""
    b = live_page
    b.set_live(False)
    b.js("() => { const { api } = window.comfyAPI.api; window.lcmKitTest.queuePrompt = api.queuePrompt;"
         " api.queuePrompt = undefined; }")
    try:
        b.command("LCMKit.Live.Toggle")
        b.next_frames(3)     # the canvas draws the widget's new height on its next frames
        notice = panel(b, LIVE_NODE, "lcm_kit_live_view", ".lcm-kit-notice")
        assert_text_visible(screenshot(b), notice, "this frontend has no api.queuePrompt: live mode cannot queue here")
        assert b.live_state()["on"] is False
        assert "live off" in readout(b)["text"]
    finally:
        b.js("() => { window.comfyAPI.api.api.queuePrompt = window.lcmKitTest.queuePrompt; }")
    b.set_live(True)
    assert not panel(b, LIVE_NODE, "lcm_kit_live_view", ".lcm-kit-notice")["shown"]
