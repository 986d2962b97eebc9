"""Live-mode benchmark: frames per second while editing in the real frontend vs back-to-back sampling of
the same graph, and keystroke-to-frame latency minus compute time.

    python3 scripts/testbed.py python scripts/bench_live.py [--frames N] [--size PX] [--screenshot docs/live.png]
    python3 scripts/testbed.py python scripts/bench_live.py --renderer both [--frontend newest]
    python3 scripts/testbed.py python scripts/bench_live.py --measure page-cost [--before 85f3a4c] [--idle-s 6] [--edits 5]
    python3 scripts/testbed.py python scripts/bench_live.py --measure pipeline [--frames 30]

`run(report)` is what `make bench` calls: it fills report["live"]. It starts its own ComfyUI server
(main.py --cpu, 127.0.0.1) with the pack and the tiny SD1.5 models under the example workflow's public
names, and Debian's Chromium with the real frontend through Playwright.

- back-to-back: N prompts of the live workflow (each with another text, as while typing) queued at once
  over HTTP; fps = (N - 1) / (first frame sent .. last frame sent), the server's steady rate. Measured
  with the page idle (before and after the rest) and while typing into the page with live mode off, as
  in the live measurement (the browser's work per keystroke slows the server a little on a CPU machine).
- live, continuous typing: a key every --key-ms (default 120 ms, a fast typist) for about N back-to-back
  frame times, at the default debounce, after a few seconds of warm-up typing; fps = (n - 1) / (first ..
  last frame shown while typing), the rate the readout on the node shows. The fps goal (>= 0.9x) is its
  ratio to back-to-back while typing; the ratio to back-to-back with the page idle is reported too.
  lag = the median age of the shown frames' text (edit .. frame shown).
- live, one edit at a time: N edits, each as soon as the frame of the previous one is on screen. Per edit,
  latency = the input event .. frame received in the page, compute = the run on the server's clock
  (execution_start .. frame sent); overhead = latency - compute (debounce, the page building the prompt,
  HTTP, queuing, transport), with the default debounce and with debounce 0 (goal <= 100 ms).
- busy_fraction = the runs' compute time / wall time (back-to-back and one edit at a time).
- renderer: "classic" (the default) or "nodes2" (Nodes 2.0, setting Comfy.VueNodes.Enabled) runs all of the
  above in that node renderer; "both" runs only the live measurements (continuous typing, one edit at a time
  at the default debounce) in each renderer, one fresh server and page each, and reports Nodes 2.0 / classic
  ratios of fps and latency (goal: Nodes 2.0 costs at most 10 %), and of what the page adds whatever the server's
  speed: its busy share while typing and the per-edit overhead (latency - compute). --frontend newest serves the newest
  frontend of the test bed (.testbed/frontends) instead of the server's own.
- cores: "split" (the default on a machine with 2+ cores) pins the server to all cores but the last, with
  one torch thread per core, and the browser to the last core, for back-to-back and live alike: as on a
  user's machine, where the GPU computes and the browser has the CPU. "shared" lets the browser's
  rendering compete with the server's compute on the same cores (on 2 CPU cores, compute per frame then
  grows by 40-80 % while the page is open).
- page cost ("--measure page-cost"): what live mode costs the page itself, before (the js/ of --before, default
  85f3a4c: the whole graph serialized by a 100 ms poll) and after (this checkout's js/: edits are events), in one run.
  The "before" pack is this checkout with js/ replaced by that commit's (git archive into a temporary folder; the
  Python side is the same, so only the page differs); each pack gets its own server (two packs in one server would
  register the same extensions), one after the other, and in each both node renderers, one fresh page each. The
  graph: the live sketch workflow (128² canvas) plus a second Sketch node with a 768x640 noise sketch (a ~2 MB PNG in
  its widget) and 300 generated nodes (100 chains of EmptyLatentImage -> LatentUpscale -> LatentUpscaleBy, 200
  links); these are serialized with the graph but upstream of no output, so not run. Figures:
  idle_busy = the page's main-thread busy share (Chrome DevTools Protocol Performance.getMetrics: TaskDuration delta on
  the thread's CPU clock / wall delta) over --idle-s of nobody editing, with live off (the frontend's own share) and on;
  detect_ms = per edit of the prompt text (value + widget callback, as the frontend makes it), the page's work from
  the edit (after) or from the start of the poll that saw it (before) to live mode's decision (LiveMode.schedule
  entered), median of --edits (goal <= 5 ms); decide_after_ms = edit .. decision on the clock (the poll's wait
  included); live_mode_share_idle = the share of the idle window with live on whose stack holds this pack's code
  (V8's sampling profiler, a window of its own after the busy-share one; idle_live_on_ms_per_s has the details;
  goal <= 1 %).
- pipeline ("--measure pipeline"): the server's own cost per live frame with a trivial graph (EmptyImage -> Live
  Preview, 512² JPEG, no model): queue -> run start -> frame on the websocket, one at a time and back to back
  (pipeline_cost).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from support import browser as browser_support  # noqa: E402
from support import comfy_env  # noqa: E402


def _api_prompt(workflow_prompt: dict, text: str) -> dict:
    prompt = json.loads(json.dumps(workflow_prompt))
    prompt["3"]["inputs"]["text"] = text
    return prompt


def back_to_back(server, api_prompt: dict, frames: int, typing: tuple | None = None,
                 prompts: list[dict] | None = None) -> dict:
    """N prompts queued at once over HTTP (`api_prompt` with N texts, or the given `prompts`). typing=(page,
    key_ms, seconds): meanwhile type into the page's prompt box (live mode off) as live_continuous does, so the
    browser loads the machine the same way."""
    prompts = prompts or [_api_prompt(api_prompt, f"bench back to back {i}") for i in range(frames)]
    frames = len(prompts)
    with comfy_env.WebSocketListener(server) as ws:
        ids = [server.queue(prompt, ws.client_id) for prompt in prompts]
        if typing:
            page, key_ms, seconds = typing
            page.focus_text()
            keys = max(2, round(seconds * 1000 / key_ms))
            page.page.keyboard.type(("ab " * keys)[:keys], delay=key_ms)
        for pid in ids:
            server.wait_history(pid)
        deadline = time.time() + 30
        while len(ws.events("lcm_kit.live_frame")) < frames and time.time() < deadline:
            time.sleep(0.05)
    starts = {e["prompt_id"]: e["timestamp"] for e in ws.events("execution_start") if e["prompt_id"] in ids}
    sent = {e["prompt_id"]: e["timings"]["sent_at_ms"] for e in ws.events("lcm_kit.live_frame") if e["prompt_id"] in ids}
    elapsed_s = (max(sent.values()) - min(starts.values())) / 1000.0
    compute = [sent[p] - starts[p] for p in sent]
    frames_s = (max(sent.values()) - min(sent.values())) / 1000.0
    return {"frames": len(sent), "elapsed_s": round(elapsed_s, 2), "fps": round((len(sent) - 1) / frames_s, 3),
            "compute_ms_median": round(statistics.median(compute), 1),
            "busy_fraction": busy_fraction(compute, elapsed_s)}


def live_continuous(page: browser_support.Browser, seconds: float, key_ms: int) -> dict:
    """Type a key every key_ms for `seconds` at the default debounce; the frames shown meanwhile."""
    page.set_debounce(browser_support.DEFAULT_DEBOUNCE_MS)
    page.focus_text()
    # warm-up: a few frames typed the same way, so live mode knows this graph's run time (as after the
    # first seconds of typing)
    before = page.live_state()
    page.page.keyboard.type("ab ab ab ab ab ab ab ab ab ab "[:max(2, round(3000 / key_ms))], delay=key_ms)
    page.wait_settled(after=before["latest"])
    before = page.live_state()
    t0 = page.js("() => performance.now()")
    keys = max(2, round(seconds * 1000 / key_ms))
    page.page.keyboard.type(("ab " * keys)[:keys], delay=key_ms)
    t1 = page.js("() => performance.now()")
    state = page.wait_settled(after=before["latest"])
    shown = [h for h in state["history"] if t0 <= h["at"] <= t1]
    stats = {k: state["stats"][k] - before["stats"][k] for k in ("queued", "cancelled", "interrupted", "frames")}
    result = {"key_ms": key_ms, "keys": keys, "typing_s": round((t1 - t0) / 1000, 2), "frames_while_typing": len(shown),
              **{f"prompts_{k}": v for k, v in stats.items() if k != "frames"}}
    if len(shown) >= 2:
        result["fps"] = round((len(shown) - 1) * 1000 / (shown[-1]["at"] - shown[0]["at"]), 3)
        result["lag_ms_median"] = round(statistics.median(h["latencyMs"] for h in shown), 1)
        result["compute_ms_median"] = round(statistics.median(h["computeMs"] for h in shown), 1)
        # the server's busy share between the first and last frame (the runs that made those frames)
        result["busy_fraction"] = round(sum(h["computeMs"] for h in shown[1:]) / (shown[-1]["at"] - shown[0]["at"]), 3)
    else:
        result["fps"] = 0.0
    return result


def live_typing(page: browser_support.Browser, frames: int, debounce_ms: int | None) -> dict:
    if debounce_ms is not None:
        page.set_debounce(debounce_ms)
    page.focus_text()
    samples = []
    t0 = time.time()
    for i in range(frames):
        before = page.live_state()["latest"]
        page.page.keyboard.type("ab"[i % 2])
        state = page.wait_settled(after=before)
        last = state["history"][-1]
        samples.append({"latency_ms": last["latencyMs"], "compute_ms": last["computeMs"]})
    elapsed = time.time() - t0
    overhead = [s["latency_ms"] - s["compute_ms"] for s in samples]
    return {"debounce_ms": debounce_ms if debounce_ms is not None else browser_support.DEFAULT_DEBOUNCE_MS,
            "frames": frames, "elapsed_s": round(elapsed, 2), "fps": round(frames / elapsed, 3),
            "latency_ms_median": round(statistics.median(s["latency_ms"] for s in samples), 1),
            "compute_ms_median": round(statistics.median(s["compute_ms"] for s in samples), 1),
            "overhead_ms_median": round(statistics.median(overhead), 1),
            "overhead_ms_max": round(max(overhead), 1),
            "busy_fraction": busy_fraction([s["compute_ms"] for s in samples], elapsed)}


def save_screenshot(page: browser_support.Browser, path: Path) -> None:
    """The whole live workflow on the canvas (no side bars), as a small PNG."""
    import io

    from PIL import Image
    page.set_debounce(150)
    page.close_dialogs()
    page.page.mouse.click(700, 880)        # empty canvas: nothing selected, so FitView frames the whole graph
    page.js("() => window.app.extensionManager.command.execute('Comfy.Canvas.FitView')")
    page.page.wait_for_timeout(500)
    png = page.page.screenshot(clip={"x": 60, "y": 150, "width": 1540, "height": 620})
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.resize((1078, 434), Image.Resampling.LANCZOS).quantize(colors=128)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)


def busy_fraction(compute_ms: list[float], elapsed_s: float) -> float:
    """Share of the wall time the server spent computing frames: comparable between runs made while the
    machine's load differs, unlike raw fps."""
    return round(sum(compute_ms) / 1000.0 / elapsed_s, 3)


def core_split() -> tuple[set[int], set[int]] | None:
    """(server cores, browser cores) for cores="split", or None where there is one core."""
    cores = sorted(os.sched_getaffinity(0))
    return (set(cores[:-1]), {cores[-1]}) if len(cores) >= 2 else None


RENDERERS = ("classic", "nodes2")


def frontend_args(frontend: str) -> list[str]:
    if frontend == "own":
        return []
    root = browser_support.newest_frontend_root()
    if root is None:
        raise SystemExit(f"frontend {browser_support.NEWEST_FRONTEND} is not unpacked: python3 scripts/testbed.py setup")
    return ["--front-end-root", str(root)]


@contextlib.contextmanager
def live_page(size: int, cores: str = "split", renderer: str = "classic", frontend: str = "own"):
    """A fresh ComfyUI server and the frontend in Chromium (node renderer `renderer`) with the live workflow
    loaded, live on and its first frame in (that first run loads the checkpoint and the LoRA)."""
    base = Path(tempfile.mkdtemp(prefix="lcm-kit-bench-live-"))
    comfy_env.make_base_dir(base, {})
    browser_support.link_public_models(base)
    browser_support.write_frontend_settings(base, {"Comfy.VueNodes.Enabled": renderer == "nodes2"})
    split = core_split() if cores == "split" else None
    server = comfy_env.ComfyServer(base, base / "comfyui.log", cpus=split[0] if split else None,
                                   extra_args=frontend_args(frontend)).start()
    own_cores = os.sched_getaffinity(0)
    try:
        if split:  # Playwright's driver and Chromium inherit this process's cores
            os.sched_setaffinity(0, split[1])
        with browser_support.Browser(server.url) as page:
            page.load_workflow(browser_support.live_workflow(size=size, text="a watercolor fox"))
            if renderer == "classic":
                page.click_live_toggle()
            else:
                page.command("LCMKit.Live.Toggle")
            page.wait_settled()
            yield server, page
    finally:
        os.sched_setaffinity(0, own_cores)
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def compare_renderers(frames: int = 5, size: int = 128, cores: str = "split", key_ms: int = 120,
                      frontend: str = "own") -> dict:
    """The live measurements in the classic renderer and in Nodes 2.0, and Nodes 2.0 / classic ratios."""
    results: dict = {"size": size, "steps": 2, "frontend": frontend}
    for renderer in RENDERERS:
        with live_page(size, cores, renderer, frontend) as (_, page):
            results.setdefault("frontend_version", page.frontend_version())
            typing_s = max(6.0, (frames + 1) * 0.5)
            results[renderer] = {"live_typing": live_continuous(page, typing_s, key_ms),
                                 "edit_default_debounce": live_typing(page, frames, None)}
    classic, nodes2 = results["classic"], results["nodes2"]
    results["nodes2_vs_classic"] = {
        "fps_while_typing": round(nodes2["live_typing"]["fps"] / classic["live_typing"]["fps"], 3)
        if classic["live_typing"]["fps"] else None,
        "lag_while_typing": round(nodes2["live_typing"].get("lag_ms_median", 0)
                                  / classic["live_typing"]["lag_ms_median"], 3)
        if classic["live_typing"].get("lag_ms_median") else None,
        "edit_latency": round(nodes2["edit_default_debounce"]["latency_ms_median"]
                              / classic["edit_default_debounce"]["latency_ms_median"], 3),
        "edit_overhead_ms": [classic["edit_default_debounce"]["overhead_ms_median"],
                             nodes2["edit_default_debounce"]["overhead_ms_median"]],
        # Compute per frame swings with other load on a shared machine; what the renderer can cost is the page's
        # part: the server's busy share while typing (a slow page leaves the server idle) and the per-edit
        # overhead (latency - compute).
        "busy_while_typing": round(nodes2["live_typing"]["busy_fraction"] / classic["live_typing"]["busy_fraction"], 3)
        if classic["live_typing"].get("busy_fraction") and nodes2["live_typing"].get("busy_fraction") else None,
        "edit_overhead": round(nodes2["edit_default_debounce"]["overhead_ms_median"]
                               / classic["edit_default_debounce"]["overhead_ms_median"], 3)
        if classic["edit_default_debounce"]["overhead_ms_median"] > 0 else None,
    }
    return results


# ---- page cost: live mode's own work in the page, before / after ----

TAESD = ("vae_approx/taesd_encoder.safetensors", "vae_approx/taesd_decoder.safetensors")
BEFORE_COMMIT = "85f3a4c"   # main before issue 26: live mode serialized the whole graph every 100 ms


@contextlib.contextmanager
def pack_with_js(commit: str | None):
    """This checkout as a pack folder, with js/ from `commit` (None: this checkout itself): a temporary folder of
    links to this checkout's files and that commit's js/ (git archive)."""
    if commit is None:
        yield REPO
        return
    folder = Path(tempfile.mkdtemp(prefix="lcm-kit-bench-pack-"))
    try:
        for entry in REPO.iterdir():
            if entry.name != "js" and not entry.name.startswith("."):
                (folder / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "js"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def big_workflow(nodes: int = 300, sketch_px: tuple[int, int] = (768, 640)) -> tuple[dict, int]:
    """The live sketch workflow (128² canvas) plus a second Sketch node holding a noise sketch of sketch_px (RGBA
    noise: PNG does not compress it), and `nodes` generated nodes (chains of three, linked); these extra nodes are
    upstream of no output, so the page serializes them as any graph but the server runs only the small live chain
    (a 768x640 run takes minutes on these CPU cores). Returns (workflow, the big sketch's PNG bytes)."""
    import base64
    import io
    import random

    from PIL import Image
    wf = browser_support.sketch_workflow()
    w, h = sketch_px
    png = io.BytesIO()
    Image.frombytes("RGBA", (w, h), random.Random(26).randbytes(w * h * 4)).save(png, "PNG", compress_level=1)
    sketch = json.loads(json.dumps(next(n for n in wf["nodes"] if n["type"] == "LCMKitSketch")))
    sketch.update(id=999, pos=[-900, 0], outputs=[dict(o, links=[]) for o in sketch.get("outputs", [])],
                  inputs=[dict(i, link=None) for i in sketch.get("inputs", [])])
    sketch["widgets_values"][:2] = [w, h]
    sketch["widgets_values"][3] = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    wf["nodes"].append(sketch)
    chain = [("EmptyLatentImage", [64, 64, 1]), ("LatentUpscale", ["nearest-exact", 64, 64, "disabled"]),
             ("LatentUpscaleBy", ["nearest-exact", 1.5])]
    node_id, link_id = 1000, 1000
    for i in range(nodes // len(chain)):
        prev = None
        for k, (kind, values) in enumerate(chain):
            node = {"id": node_id, "type": kind, "pos": [k * 340, 1200 + i * 160], "size": [315, 130], "flags": {},
                    "order": node_id, "mode": 0, "properties": {"Node name for S&R": kind},
                    "widgets_values": list(values), "inputs": [],
                    "outputs": [{"name": "LATENT", "type": "LATENT", "links": [], "slot_index": 0}]}
            if prev is not None:
                wf["links"].append([link_id, prev["id"], 0, node_id, 0, "LATENT"])
                prev["outputs"][0]["links"].append(link_id)
                node["inputs"].append({"name": "samples", "type": "LATENT", "link": link_id})
                link_id += 1
            wf["nodes"].append(node)
            prev, node_id = node, node_id + 1
    wf["last_node_id"], wf["last_link_id"] = node_id, link_id
    return wf, len(png.getvalue())


def main_thread_busy(cdp, seconds: float) -> float:
    """The page's main-thread busy share over `seconds` in which nothing talks to the page: the renderer's main-thread
    task time (Performance.getMetrics' TaskDuration, on the thread's CPU clock: timeDomain threadTicks, so other
    processes on these cores do not inflate it) / wall time."""
    def task_s():
        return next(m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] == "TaskDuration")
    a, t0 = task_s(), time.monotonic()
    time.sleep(seconds)   # the measuring window itself: the page runs on its own meanwhile
    b, t1 = task_s(), time.monotonic()
    return round((b - a) / (t1 - t0), 4)


def idle_profile(cdp, seconds: float) -> dict:
    """Where the page's main thread spends an idle window (V8's sampling profiler, 1 ms samples), in ms per second of
    wall time: `pack` = samples with a frame of this pack's scripts (/extensions/...) anywhere on the stack (what live
    mode's code runs, the frontend functions it calls included, such as the graph's serialize), by the outermost such
    script; `top` = self time by script or native category ((idle) left out)."""
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": 1000})
    cdp.send("Profiler.start")
    time.sleep(seconds)   # the window: the page runs on its own meanwhile
    profile = cdp.send("Profiler.stop")["profile"]
    cdp.send("Profiler.disable")
    name, parent = {}, {}
    for node in profile["nodes"]:
        url = node["callFrame"].get("url", "")
        if "/extensions/" in url:
            name[node["id"]] = "pack:" + url.split("/extensions/", 1)[1].split("?")[0]
        elif url:
            name[node["id"]] = "frontend:" + url.rsplit("/", 1)[-1].split("?")[0]
        else:
            name[node["id"]] = node["callFrame"].get("functionName") or "(native)"
        for child in node.get("children", []):
            parent[child] = node["id"]

    def outermost_pack(node_id):
        found = None
        while node_id is not None:
            if name[node_id].startswith("pack:"):
                found = name[node_id]
            node_id = parent.get(node_id)
        return found

    wall_s = (profile["endTime"] - profile["startTime"]) / 1e6
    top: dict = {}
    pack: dict = {}
    for sample, delta in zip(profile["samples"], profile["timeDeltas"]):
        top[name[sample]] = top.get(name[sample], 0) + delta / 1000.0
        owner = outermost_pack(sample)
        if owner:
            pack[owner] = pack.get(owner, 0) + delta / 1000.0
    per_s = lambda d: {k: round(v / wall_s, 2) for k, v in sorted(d.items(), key=lambda kv: -kv[1])}  # noqa: E731
    top.pop("(idle)", None)
    return {"pack_total": round(sum(pack.values()) / wall_s, 2), "pack": per_s(pack),
            "top": dict(list(per_s(top).items())[:5])}


# In the page: every entry into LiveMode.schedule (live mode's decision on an edit) and, before's poll, every start of
# LiveMode.check, on performance.now(); `decided` resolves at the next decision. Live mode is the `live` export of
# the pack's js/live.js (the module instance the frontend loaded: an import of the same URL), or the console handle
# `window.lcmKitLive` that the before commit's js/ had.
PROBE = """async () => { const module = (await (await fetch('/extensions')).json()).find((u) => /\\/live\\.js$/.test(u)
        && u.includes('lcm'));
    const l = window.lcmKitLive ?? (await import(new URL(module, location.href).href)).live;
    const p = window.lcmKitBench = { checkAt: -1, resolve: null };
    const schedule = l.schedule;
    l.schedule = function (...a) { const now = performance.now();
        if (p.resolve) { const done = p.resolve; p.resolve = null; done(now); } return schedule.apply(this, a); };
    if (typeof l.check === 'function') { const check = l.check;
        l.check = function (...a) { p.checkAt = performance.now(); return check.apply(this, a); }; } }"""
# One edit of the prompt text as the frontend makes it (value, then the widget's callback); when live mode decided.
EDIT = """async ([id, text]) => { const p = window.lcmKitBench;
    const w = window.app.graph.getNodeById(id).widgets.find((x) => x.name === 'text');
    const decided = new Promise((done) => { p.resolve = done; setTimeout(() => done(null), 3000); });
    const t0 = performance.now(); w.value = text; w.callback?.(text); const t1 = performance.now();
    const at = await decided; p.resolve = null;
    if (at == null) return null;
    const from = p.checkAt >= t0 && p.checkAt <= at ? p.checkAt : t0;   // before: the poll that saw the edit
    return { change_ms: t1 - t0, detect_ms: at - from, decide_after_ms: at - t0 }; }"""


def progress(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def page_cost_one(server, base: Path, renderer: str, workflow: dict, idle_s: float, edits: int) -> dict:
    progress(f"{renderer}: page")
    browser_support.write_frontend_settings(base, {"Comfy.VueNodes.Enabled": renderer == "nodes2"})
    with browser_support.Browser(server.url) as page:
        page.load_workflow(workflow)
        nodes = page.js("() => window.app.graph.nodes.length")
        cdp = page.page.context.new_cdp_session(page.page)
        cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
        page.next_frames(5)
        result = {"nodes": nodes, "idle_busy_live_off": main_thread_busy(cdp, idle_s)}
        progress(f"{renderer}: live on")
        page.command("LCMKit.Live.Toggle")
        state = page.wait_settled()
        progress(f"{renderer}: first frame in")
        assert not state["error"], state["error"]
        # the timers after a frame (interrupt-if-idle: 400 ms after the last edit) have run before the window opens
        page.page.wait_for_timeout(1000)
        result["idle_busy_live_on"] = main_thread_busy(cdp, idle_s)
        result["idle_live_on_ms_per_s"] = idle_profile(cdp, idle_s)
        # live mode's own share of the main thread while idle (goal <= 1 %)
        result["live_mode_share_idle"] = round(result["idle_live_on_ms_per_s"]["pack_total"] / 1000, 4)
        page.set_debounce(browser_support.DEFAULT_DEBOUNCE_MS)
        page.js(PROBE)
        samples = []
        for i in range(edits):
            before = page.live_state()["latest"]
            sample = page.js(EDIT, [3, f"bench edit {i}"])
            assert sample, "live mode made no decision within 3 s of an edit"
            samples.append(sample)
            page.wait_settled(after=before)
        for key in ("detect_ms", "decide_after_ms", "change_ms"):
            result[f"{key}_median"] = round(statistics.median(s[key] for s in samples), 2)
        result["detect_ms_max"] = round(max(s["detect_ms"] for s in samples), 2)
    return result


def page_cost(before: str = BEFORE_COMMIT, idle_s: float = 6.0, edits: int = 5, cores: str = "split",
              frontend: str = "own") -> dict:
    """Live mode's cost in the page, before (js/ of `before`) and after (this checkout), in both renderers."""
    workflow, sketch_bytes = big_workflow()
    results: dict = {"before_js": before, "idle_s": idle_s, "edits": edits, "sketch_png_bytes": sketch_bytes,
                     "frontend": frontend}
    split = core_split() if cores == "split" else None
    own_cores = os.sched_getaffinity(0)
    for variant, commit in (("before", before), ("after", None)):
        base = Path(tempfile.mkdtemp(prefix="lcm-kit-bench-live-"))
        try:
            with pack_with_js(commit) as pack:
                (base / "custom_nodes").mkdir(parents=True)
                (base / "custom_nodes" / comfy_env.PACK_FOLDER).symlink_to(pack, target_is_directory=True)
                browser_support.link_public_models(base)
                browser_support.link_models(base, {name: name for name in TAESD})   # the sketch's Fast Encode/Decode
                server = comfy_env.ComfyServer(base, base / "comfyui.log", cpus=split[0] if split else None,
                                               extra_args=frontend_args(frontend)).start()
                try:
                    if split:
                        os.sched_setaffinity(0, split[1])
                    for renderer in RENDERERS:
                        results.setdefault(renderer, {})[variant] = page_cost_one(server, base, renderer, workflow,
                                                                                  idle_s, edits)
                finally:
                    os.sched_setaffinity(0, own_cores)
                    server.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)
    for renderer in RENDERERS:
        b, a = results[renderer]["before"], results[renderer]["after"]
        results[renderer]["after_vs_before"] = {
            key: round(a[key] / b[key], 3) if b[key] else None
            for key in ("live_mode_share_idle", "idle_busy_live_on", "detect_ms_median", "decide_after_ms_median")}
    return results



# ---- the server's own cost per live frame ----

def trivial_prompt(size: int) -> dict:
    """EmptyImage -> Live Preview: no model, so a frame's time is the pipeline's own (the Live Preview always runs)."""
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": 1, "color": 0}},
            "2": {"class_type": "LCMKitLivePreview", "inputs": {"images": ["1", 0], "format": "JPEG", "max_size": size}}}


def pipeline_cost(frames: int = 30, size: int = 512) -> dict:
    """The server's cost per live frame with a trivial graph (trivial_prompt), on one server (all cores):
    - one at a time: queue over HTTP, wait for the frame message; per frame (server clock = this machine's): queue ..
      execution_start (HTTP, validation, the queue), execution_start .. frame sent (execution bookkeeping + JPEG
      encode, of which encode_ms), sent .. received here (the websocket);
    - back to back: `frames` prompts queued at once; ms per frame = (last sent - first sent) / (n - 1) over the n
      frames sent after the last request was answered."""
    base = Path(tempfile.mkdtemp(prefix="lcm-kit-bench-live-"))
    comfy_env.make_base_dir(base, {})
    server = comfy_env.ComfyServer(base, base / "comfyui.log").start()
    prompt = trivial_prompt(size)
    try:
        with comfy_env.WebSocketListener(server) as ws:
            server.wait_history(server.queue(prompt, ws.client_id))   # warm-up (imports, first JPEG)
            rows = []
            for _ in range(frames):
                t0 = time.time() * 1000
                pid = server.queue(prompt, ws.client_id)
                frame = ws.wait_event("lcm_kit.live_frame", pid)
                received = time.time() * 1000
                start = ws.wait_event("execution_start", pid)["timestamp"]
                sent = frame["timings"]["sent_at_ms"]
                rows.append({"total": received - t0, "queue_to_start": start - t0, "start_to_sent": sent - start,
                             "encode": frame["timings"]["encode_ms"], "sent_to_received": received - sent})
                server.wait_history(pid)
            ids = [server.queue(prompt, ws.client_id) for _ in range(frames)]
            all_queued = time.time() * 1000
            for pid in ids:
                ws.wait_event("lcm_kit.live_frame", pid)
            # the frames sent once every request was in (before that the POSTs share the server with the runs)
            sent = sorted(e["timings"]["sent_at_ms"] for e in ws.events("lcm_kit.live_frame")
                          if e["prompt_id"] in ids and e["timings"]["sent_at_ms"] >= all_queued)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    one = {f"{k}_ms_median": round(statistics.median(r[k] for r in rows), 1) for k in rows[0]}
    return {"size": size, "frames": frames, "one_at_a_time": one,
            "back_to_back_frames": len(sent),
            "back_to_back_ms_per_frame": round((sent[-1] - sent[0]) / (len(sent) - 1), 1) if len(sent) > 1 else None}


def run(report: dict, frames: int = 5, size: int = 128, screenshot: Path | None = None,
        cores: str = "split", key_ms: int = 120, renderer: str = "classic", frontend: str = "own") -> dict:
    """Measure live mode; put the figures in report["live"] and return them."""
    reason = browser_support.chromium_missing_reason()
    if reason:
        report["live"] = {"skipped": reason}
        return report["live"]
    if renderer == "both":
        report["live_renderers"] = compare_renderers(frames, size, cores, key_ms, frontend)
        return report["live_renderers"]
    split = core_split() if cores == "split" else None
    with live_page(size, cores, renderer, frontend) as (server, page):
        api_prompt = page.js("async () => (await window.app.graphToPrompt()).output")
        results = {"size": size, "steps": 2, "device": "cpu (--cpu)", "renderer": renderer,
                   "frontend_version": page.frontend_version(),
                   "cores": ({"server": sorted(split[0]), "browser": sorted(split[1])} if split
                             else f"shared ({len(os.sched_getaffinity(0))})"),
                   "back_to_back": back_to_back(server, api_prompt, frames)}
        b2b = results["back_to_back"]
        typing_s = max(6.0, (frames + 1) / b2b["fps"])
        # the same back-to-back run while typing with live mode off: on a machine without a GPU the
        # browser's work for each keystroke slows the server's compute a little (about 8 % here), live or not
        page.command("LCMKit.Live.Toggle")
        results["back_to_back_typing"] = back_to_back(server, api_prompt, frames, (page, key_ms, typing_s))
        page.command("LCMKit.Live.Toggle")
        page.wait_settled()
        results["live_typing"] = live_continuous(page, typing_s, key_ms)
        results["edit_default_debounce"] = live_typing(page, frames, None)
        results["edit_debounce_0"] = live_typing(page, frames, 0)
        page.set_debounce(browser_support.DEFAULT_DEBOUNCE_MS)
        results["back_to_back_after"] = back_to_back(server, api_prompt, frames)
        live_fps = results["live_typing"]["fps"]
        results["fps_ratio_live_vs_back_to_back_typing"] = round(live_fps / results["back_to_back_typing"]["fps"], 3)
        idle_fps = statistics.mean([b2b["fps"], results["back_to_back_after"]["fps"]])
        results["fps_ratio_live_vs_back_to_back_idle_page"] = round(live_fps / idle_fps, 3)
        if screenshot:
            save_screenshot(page, screenshot)
    report["live"] = results
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=5, help="frames per measurement (default 5)")
    ap.add_argument("--size", type=int, default=128, help="image size in pixels (default 128)")
    ap.add_argument("--screenshot", type=Path, help="also save a screenshot of the live workflow here")
    ap.add_argument("--only-screenshot", action="store_true", help="skip the measurements")
    ap.add_argument("--key-ms", type=int, default=120, help="ms between keys while typing (default 120)")
    ap.add_argument("--cores", choices=["split", "shared"], default="split",
                    help="split: server and browser on their own cores (default); shared: both on all cores")
    ap.add_argument("--renderer", choices=["classic", "nodes2", "both"], default="classic",
                    help="node renderer; both: live measurements in each, with Nodes 2.0 / classic ratios")
    ap.add_argument("--frontend", choices=["own", "newest"], default="own",
                    help="the server's own frontend (default) or the newest one of the test bed")
    ap.add_argument("--measure", choices=["live", "page-cost", "pipeline"], default="live",
                    help="live: the measurements above (default); page-cost: live mode's cost in the page, "
                         "before/after; pipeline: the server's own cost per live frame (trivial graph)")
    ap.add_argument("--before", default=BEFORE_COMMIT, help=f"page-cost: the commit whose js/ is 'before' (default {BEFORE_COMMIT})")
    ap.add_argument("--idle-s", type=float, default=6.0, help="page-cost: seconds of each idle window (default 6)")
    ap.add_argument("--edits", type=int, default=5, help="page-cost: edits per renderer and js (default 5)")
    args = ap.parse_args()
    if args.measure == "page-cost":
        reason = browser_support.chromium_missing_reason()
        if reason:
            raise SystemExit(reason)
        print(json.dumps({"page_cost": page_cost(args.before, args.idle_s, args.edits, args.cores, args.frontend)},
                         indent=1))
        return 0
    if args.measure == "pipeline":
        print(json.dumps({"pipeline": pipeline_cost(max(args.frames, 30))}, indent=1))
        return 0
    if args.only_screenshot:
        with live_page(args.size, renderer=args.renderer if args.renderer != "both" else "classic",
                       frontend=args.frontend) as (_, page):
            page.focus_text()
            before = page.live_state()["latest"]
            page.page.keyboard.type(" in the snow", delay=30)
            page.wait_settled(after=before)
            save_screenshot(page, args.screenshot or REPO / "docs" / "live.png")
        return 0
    report: dict = {}
    run(report, frames=args.frames, size=args.size, screenshot=args.screenshot, cores=args.cores, key_ms=args.key_ms,
        renderer=args.renderer, frontend=args.frontend)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
