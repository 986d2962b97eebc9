"""What a ComfyUI user meets first, in the real frontend (the test bed's, headless Chromium): the template browser
lists the pack's examples with their pictures and titles and no failed request; each example loads with every node
known and fits a 1600 x 1000 window at 80 % zoom or more, clear of the menus and the minimap; the progress overlay
names our nodes by their display names (locales/en/nodeDefs.json, served by ComfyUI at /api/i18n)."""
from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest

from support import browser as browser_support

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "example_workflows").glob("*.json"))
NUMBERED = sorted((p.stem for p in EXAMPLES), key=lambda stem: int(stem.split(".", 1)[0]))
WINDOW = {"width": 1600, "height": 1000}
# What frontend 1.32 covers of that window: the banner, tabs and floating Run bar above y = 130, the sidebar left
# of x = 60 (the minimap's place is read from the page).
GRAPH_AREA = (60, 130, 1600, 1000)
MIN_SCALE = 0.8


@pytest.fixture(scope="module")
def browser(server, base_dir):
    browser_support.prepare_base(base_dir, {"Comfy.Workflow.ShowMissingModelsWarning": False})
    with browser_support.Browser(server.url) as b:
        b.page.set_viewport_size(WINDOW)
        b.failed, b.loaded = [], []
        b.page.on("response", lambda r: (b.failed if r.status >= 400 else b.loaded).append(
            f"{r.status} {urllib.parse.unquote(r.url)}"))
        yield b


def test_template_browser_shows_every_example_with_its_picture_and_title(browser, server):
    browser.close_dialogs()
    browser.failed.clear()
    browser.js("() => window.app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    browser.page.get_by_text("lcm-kit", exact=True).first.click()
    for path in EXAMPLES:
        card = browser.page.locator(f'[data-testid="template-workflow-{path.stem}"]')
        card.wait_for(timeout=30_000)
        assert path.stem in card.inner_text()
        card.scroll_into_view_if_needed()   # the pictures load lazily, when their card is in view
        browser.page.wait_for_function(   # the frontend shows it from a blob of the fetched .jpg
            "(id) => [...document.querySelector(`[data-testid=\"${id}\"]`).querySelectorAll('img')]"
            ".some((i) => i.complete && i.naturalWidth > 0)", arg=f"template-workflow-{path.stem}", timeout=30_000)
        assert f"200 {server.url}/api/workflow_templates/lcm-kit/{path.stem}.jpg" in browser.loaded
    assert browser.failed == [], browser.failed
    # in their numbered order (the server lists them in the file system's order; js/templates.js sorts them)
    shown = browser.js("""() => [...document.querySelectorAll('[data-testid^="template-workflow-"]')]
        .map((e) => e.dataset.testid.slice('template-workflow-'.length))""")
    assert [name for name in shown if name in {p.stem for p in EXAMPLES}] == NUMBERED
    # A click on the first card loads the starter as the frontend loads any template, and closes the browser.
    browser.page.locator(f'[data-testid="template-workflow-{EXAMPLES[0].stem}"]').click()
    browser.page.wait_for_function("(n) => window.app.graph._nodes.length === n && "
                                   "!document.querySelector('.p-dialog')",
                                   arg=len(json.loads(EXAMPLES[0].read_text())["nodes"]), timeout=30_000)
    assert browser.failed == [], browser.failed


def test_every_example_loads_with_every_node_known_and_fits_the_window(browser):
    browser.close_dialogs()
    problems = []
    for path in EXAMPLES:
        workflow = json.loads(path.read_text())
        browser.js("async ([wf, name]) => { await window.app.loadGraphData(wf, true, true, name); }",
                   [workflow, path.stem])
        # the frontend restores the saved view (extra.ds) after loading: measure once it has, not after a fixed wait
        browser.page.wait_for_function(
            "([n, scale]) => window.app.graph._nodes.length === n && Math.abs(window.app.canvas.ds.scale - scale) < 1e-3",
            arg=[len(workflow["nodes"]), workflow["extra"]["ds"]["scale"]], timeout=30_000)
        view = browser.js("""() => {
            const c = window.app.canvas, r = c.canvas.getBoundingClientRect();
            const minimap = document.querySelector('.litegraph-minimap')?.getBoundingClientRect();
            const rects = window.app.graph._nodes.map((n) => {
                const [x0, y0] = c.ds.convertOffsetToCanvas([n.pos[0], n.pos[1] - 30]);
                const [x1, y1] = c.ds.convertOffsetToCanvas([n.pos[0] + n.size[0], n.pos[1] + n.size[1]]);
                return {title: n.title, known: n.type in LiteGraph.registered_node_types,
                        rect: [r.left + x0, r.top + y0, r.left + x1, r.top + y1]};
            });
            return {scale: c.ds.scale, rects,
                    minimap: minimap && [minimap.left, minimap.top, minimap.right, minimap.bottom],
                    dialogs: [...document.querySelectorAll('.p-dialog')].map((d) => d.innerText.slice(0, 200))};
        }""")
        if view["scale"] < MIN_SCALE:
            problems.append(f"{path.stem}: zoom {view['scale']:.2f}")
        if view["dialogs"]:
            problems.append(f"{path.stem}: a dialog opened on load: {view['dialogs']}")
        for node in view["rects"]:
            x0, y0, x1, y1 = node["rect"]
            if not node["known"]:
                problems.append(f"{path.stem}: {node['title']} is not a known node")
            if x0 < GRAPH_AREA[0] or y0 < GRAPH_AREA[1] or x1 > GRAPH_AREA[2] or y1 > GRAPH_AREA[3]:
                problems.append(f"{path.stem}: {node['title']} at {[round(v) for v in node['rect']]} is off screen")
            m = view["minimap"]
            if m and x0 < m[2] and m[0] < x1 and y0 < m[3] and m[1] < y1:
                problems.append(f"{path.stem}: {node['title']} at {[round(v) for v in node['rect']]} is under the "
                                f"minimap at {[round(v) for v in m]} (zoom {view['scale']:.2f})")
    assert problems == []


def test_missing_model_dialog_offers_the_file_and_its_folder(browser):
    """The frontend reads a loader's `properties.models` on load: a file the user lacks is listed with its folder and
    a download: in the "Missing Models" dialog (frontend 1.32.9), or in a notice whose "View details" opens the
    workflow panel's "Missing Models" list (1.49.6, upstream 0.33's). (A name no test links, so the list shows
    whichever tests ran before.)"""
    workflow = json.loads(EXAMPLES[0].read_text())
    loader = next(n for n in workflow["nodes"] if n["type"] == "LCMKitLoraLoader")
    name = "lcm-lora-sdv1-5-not-here.safetensors"
    loader["widgets_values"][0] = loader["properties"]["models"][0]["name"] = name
    browser.close_dialogs()
    set_warning = "(on) => window.app.extensionManager.setting.set('Comfy.Workflow.ShowMissingModelsWarning', on)"
    browser.js(set_warning, True)
    try:
        browser.js("async (wf) => { await window.app.loadGraphData(wf); }", workflow)
        dialog = browser.page.locator(".p-dialog", has_text="Missing Models")
        notice = browser.page.get_by_text(f"{name} is missing")
        dialog.or_(notice).first.wait_for(timeout=30_000)
        if notice.count():
            browser.page.get_by_text("View details").first.click()
            dialog = browser.page.locator("div", has_text="Missing Models").filter(has_text=name).last
            dialog.wait_for(timeout=10_000)
            text = dialog.inner_text()
            assert name in text and "loras" in text and "Download" in text
        else:
            text = dialog.inner_text()
            assert f"loras / {name}" in text and "Download" in text
        assert "v1-5-pruned-emaonly" not in text, "a file the user has is not listed"
    finally:
        browser.close_dialogs()
        browser.js(set_warning, False)


def test_progress_overlay_names_our_nodes_by_display_name(browser, pack):
    workflow = json.loads(EXAMPLES[0].read_text())
    for node in workflow["nodes"]:
        if node["type"] == "EmptyLatentImage":
            node["widgets_values"][:2] = [128, 128]
    browser.close_dialogs()
    browser.js("async (wf) => { await window.app.loadGraphData(wf); }", workflow)
    # what the progress overlay names after its "Current node:" label, as it changes
    browser.js("""() => {
        const seen = window.__lcmKitCurrentNode = new Set();
        const grab = () => {   // the row that holds the label: the label, then the node's name
            const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, { acceptNode: (t) =>
                t.nodeValue.includes('Current node:') ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_SKIP });
            for (let t; (t = walker.nextNode());) {
                let row = t.parentElement;
                while (row && row.innerText.trim() === 'Current node:') row = row.parentElement;
                const name = (row?.innerText ?? '').replace('Current node:', '').trim().split('\\n')[0].trim();
                if (name) seen.add(name);
            }
        };
        window.__lcmKitObserver = new MutationObserver(grab);
        window.__lcmKitObserver.observe(document.body, {subtree: true, childList: true, characterData: true});
        window.__lcmKitRunEnded = false;
        const { api } = window.comfyAPI.api;
        for (const type of ['execution_success', 'execution_error'])
            api.addEventListener(type, () => { window.__lcmKitRunEnded = true; }, { once: true });
    }""")
    ours = sorted(pack.NODE_DISPLAY_NAME_MAPPINGS.values())
    browser.js("() => window.app.queuePrompt(0)")
    browser.page.wait_for_function("(ours) => [...window.__lcmKitCurrentNode].some((name) => ours.includes(name))",
                                   arg=ours, timeout=60_000)
    browser.page.wait_for_function("() => window.__lcmKitRunEnded", timeout=60_000)   # every node of the run named
    seen = browser.js("() => { window.__lcmKitObserver.disconnect(); return [...window.__lcmKitCurrentNode]; }")
    assert set(ours) & set(seen), seen
    assert not set(seen) & set(pack.NODE_CLASS_MAPPINGS), seen   # never a class id where a name belongs


def test_locales_give_every_node_its_display_name(server, pack):
    """Frontend 1.32 names a node whose saved workflow stores no title by `nodeDefs.<id>.display_name` of its i18n
    (the progress overlay's "Current node"); ComfyUI serves each pack's locales/<lang>/nodeDefs.json at /api/i18n."""
    local = json.loads((REPO / "locales" / "en" / "nodeDefs.json").read_text())
    assert local == {node_id: {"display_name": name} for node_id, name in pack.NODE_DISPLAY_NAME_MAPPINGS.items()}, \
        "run `make examples` to regenerate locales/en/nodeDefs.json"
    served = server.get("/api/i18n")["en"]["nodeDefs"]
    assert served["LCMKitSampler"]["display_name"] == "LCM Sampler (LCM Kit)"
