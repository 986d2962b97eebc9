"""Live mode (issue #6): the Live Preview node streams frames over /ws to the queuing client only, and
the frontend extension (js/live.js) re-queues the graph as you type, in the real frontend in Chromium."""
from __future__ import annotations

import io
import os
import struct
import time

import pytest
from PIL import Image

import graphs
from support import browser as browser_support
from support.comfy_env import WebSocketListener

# ---------------------------------------------------------------------------------------------------
# Frame encoding (nodes/live.py)
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(pack):
    return pack.nodes.live


@pytest.mark.parametrize("size, limit, expected", [((512, 512), 128, (128, 128)), ((640, 320), 256, (256, 128)),
                                                    ((100, 60), 512, (100, 60)), ((3000, 1), 64, (64, 1))])
def test_frames_are_scaled_down_never_up(live, size, limit, expected):
    assert live.fit_size(*size, limit) == expected


@pytest.mark.parametrize("fmt, pil_format, type_number", [("JPEG", "JPEG", 1), ("PNG", "PNG", 2)])
def test_encoded_frame_is_the_preview_payload_comfyui_frontends_decode(live, fmt, pil_format, type_number):
    import torch
    image = torch.rand(200, 100, 3)
    encoded, size = live.encode_image(image, fmt, 64)
    assert size == (32, 64)
    payload = live.preview_payload(encoded, fmt)
    assert struct.unpack(">I", payload[:4])[0] == type_number
    decoded = Image.open(io.BytesIO(payload[4:]))
    assert decoded.format == pil_format and decoded.size == (32, 64)


def test_encoding_rejects_what_is_not_one_image(live):
    import torch
    with pytest.raises(ValueError, match="H×W×C"):
        live.encode_image(torch.rand(1, 8, 8, 3))
    with pytest.raises(ValueError, match="unknown format"):
        live.encode_image(torch.rand(8, 8, 3), "GIF")


def test_live_preview_node_describes_itself(pack):
    cls = pack.NODE_CLASS_MAPPINGS["LCMKitLivePreview"]
    assert cls.OUTPUT_NODE and cls.CATEGORY == "LCM Kit/live" and cls.DESCRIPTION
    for name, spec in cls.INPUT_TYPES()["required"].items():
        assert spec[1].get("tooltip"), f"input {name} has no tooltip"


# ---------------------------------------------------------------------------------------------------
# The real server: who receives frames, nothing on disk, upstream nodes cached
# ---------------------------------------------------------------------------------------------------


def live_api_graph(text: str = "a tiny red fox", size: int = 128, fmt: str = "JPEG", max_size: int = 96) -> dict:
    g = graphs.lcm_graph(size=size, text=text, save="image", steps=2)
    g["lora"] = {"class_type": "LoraLoader", "inputs": {
        "model": ["ckpt", 0], "clip": ["ckpt", 1], "lora_name": "tiny-sd15-lcm-kohya.safetensors",
        "strength_model": 1.0, "strength_clip": 1.0}}
    g["sampler"]["inputs"]["model"] = ["lora", 0]
    g["pos"]["inputs"]["clip"] = ["lora", 1]
    g["neg"]["inputs"]["clip"] = ["lora", 1]
    g["save"] = {"class_type": "LCMKitLivePreview", "inputs": {"images": ["decode", 0], "format": fmt,
                                                              "max_size": max_size}}
    return g


def output_files(base_dir) -> set:
    return {p for p in (base_dir / "output").rglob("*") if p.is_file()}


def frame_pairs(ws: WebSocketListener) -> list[tuple[dict, bytes]]:
    """Each lcm_kit.live_frame announcement with the binary message that follows it on the socket."""
    messages = list(ws.ordered)
    return [(m["data"], messages[i + 1]) for i, m in enumerate(messages[:-1])
            if isinstance(m, dict) and m.get("type") == "lcm_kit.live_frame" and isinstance(messages[i + 1], bytes)]


@pytest.mark.server
def test_frames_reach_only_the_queuing_client_and_nothing_is_written(server, base_dir):
    before = output_files(base_dir)
    with WebSocketListener(server) as owner, WebSocketListener(server) as other:
        prompt_id = server.queue(live_api_graph(fmt="PNG"), owner.client_id)
        hist = server.wait_history(prompt_id)
        assert hist["status"]["status_str"] == "success", hist["status"]
        owner.wait_event("lcm_kit.live_frame", prompt_id, timeout=10)
    (meta, binary), = frame_pairs(owner)
    assert meta["prompt_id"] == prompt_id and meta["node"] == "save" and meta["format"] == "PNG"
    assert meta["timings"]["encode_ms"] >= 0
    image = Image.open(io.BytesIO(binary[8:]))          # u32 event type, u32 image type, then the PNG
    assert struct.unpack(">I", binary[4:8])[0] == 2
    assert image.format == "PNG" and image.size == (96, 96) == (meta["width"], meta["height"])
    assert other.events("lcm_kit.live_frame") == [] and other.binary == []
    assert all(e.get("prompt_id") != prompt_id for e in other.json if isinstance(e.get("data"), dict)
               for e in [e["data"]])
    assert output_files(base_dir) == before


@pytest.mark.server
def test_a_prompt_without_client_id_streams_to_nobody(server):
    with WebSocketListener(server) as listener:
        prompt_id = server.queue(live_api_graph(text="nobody"), client_id=None)
        assert server.wait_history(prompt_id)["status"]["status_str"] == "success"
        # waiting for nothing to arrive: no message marks the end of a prompt without client id (core sends its
        # execution events to that prompt's client only), so give the server's send queue a moment to flush
        time.sleep(0.3)
    assert listener.events("lcm_kit.live_frame") == []
    # Core ComfyUI itself broadcasts the sampler's step previews of such a prompt to every socket (its
    # progress hook sends to client_id None); none of what arrives may be our 96×96 frame.
    sizes = [Image.open(io.BytesIO(b[8:])).size for b in listener.binary]
    assert (96, 96) not in sizes, sizes


@pytest.mark.server
def test_editing_the_prompt_reuses_the_cached_checkpoint_and_lora(server):
    with WebSocketListener(server) as ws:
        first = server.queue(live_api_graph(text="a red fox in the snow"), ws.client_id)
        server.wait_history(first)
        second = server.queue(live_api_graph(text="a blue fox in the snow"), ws.client_id)
        server.wait_history(second)
        ws.wait_event("lcm_kit.live_frame", second, timeout=10)   # (frames come in order: the first one is in)
    cached = [e["nodes"] for e in ws.events("execution_cached") if e["prompt_id"] == second]
    executed = {e["node"] for e in ws.events("executing") if e.get("prompt_id") == second and e.get("node")}
    assert {"ckpt", "lora", "neg", "latent"} <= set(cached[0])
    assert {"pos", "sampler", "decode", "save"} <= executed and not executed & {"ckpt", "lora"}
    assert [f["prompt_id"] for f in ws.events("lcm_kit.live_frame")] == [first, second]


# ---------------------------------------------------------------------------------------------------
# The real frontend in Chromium
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(server, base_dir):
    browser_support.prepare_base(base_dir)
    with browser_support.Browser(server.url) as b:
        yield b


def start_live(browser, text: str, size: int = 128) -> dict:
    """Load the example live workflow (size², the public model names served by tiny models), switch live on
    with a click on the node's toggle, and wait for its first frame."""
    browser.close_dialogs()
    if browser.live_state()["on"]:
        browser.click_live_toggle()
    browser.load_workflow(browser_support.live_workflow(size=size, text=text))
    browser.click_live_toggle()
    assert browser.live_state()["on"], "the live toggle did not switch live mode on"
    return browser.wait_settled()


def server_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if "Traceback" in line or "ERROR" in line or "!!! Exception" in line]


@pytest.mark.server
def test_typing_in_live_mode_streams_frames_of_the_last_text(browser, server):
    before = start_live(browser, "a fox")
    log_start = len(server.log_text())
    with WebSocketListener(server) as other_client:
        browser.focus_text()
        # Words typed with pauses longer than the debounce and shorter than a run: each pause queues the
        # graph; the prompt waiting in the queue is replaced, the running one goes on.
        for word in [" in", " the", " snow", " at", " night"]:
            browser.page.keyboard.type(word, delay=20)
            browser.page.wait_for_timeout(190)
        state = browser.wait_settled(after=before["latest"])
    texts = browser.queued_texts()
    assert browser.text_value() == "a fox in the snow at night"
    last = state["history"][-1]
    assert last["promptId"] == state["latest"] and texts[last["promptId"]] == "a fox in the snow at night"
    assert state["stats"]["frames"] >= 2 and state["error"] is None
    # replaced prompts were withdrawn from the queue before they ran; none is left there
    assert state["stats"]["cancelled"] >= 1
    assert server.get("/queue") == {"queue_running": [], "queue_pending": []}
    # frames on screen only ever move forward in queue order
    seqs = [h["seq"] for h in state["history"][len(before["history"]):]]
    assert seqs == sorted(seqs)
    # another browser tab (another client id) saw none of it
    assert other_client.events("lcm_kit.live_frame") == []
    assert not [b for b in other_client.binary if b[:4] == struct.pack(">I", 1)]
    assert server_errors(server.log_text()[log_start:]) == []


@pytest.mark.server
def test_a_stale_run_is_interrupted_once_the_edits_stop(browser, server):
    # 256²: a run takes seconds here, so the stale one is surely in the first half of its run
    before = start_live(browser, "a heron", size=256)
    browser.focus_text()
    browser.page.keyboard.type(" in", delay=20)
    running = browser.wait_until(lambda: browser.live_state()["running"], 60, "the edit's prompt starting")
    stale = running[0]
    log_start = len(server.log_text())
    browser.page.keyboard.type(" the reeds", delay=20)   # then no edit: the edits have stopped
    state = browser.wait_settled(after=before["latest"])
    texts = browser.queued_texts()
    assert f"Interrupting prompt {stale}" in server.log_text()[log_start:]
    assert state["stats"]["interrupted"] >= 1
    assert stale not in {h["promptId"] for h in state["history"]}, "the interrupted run still sent a frame"
    assert texts[state["history"][-1]["promptId"]] == "a heron in the reeds" and state["error"] is None


@pytest.mark.server
def test_live_mode_shows_a_failed_run_and_goes_on(browser):
    before = start_live(browser, "a cat")
    frames = before["stats"]["frames"]
    # steps above a 1-step grid: the server refuses the prompt at queue time (HTTP 400)
    browser.set_widget(6, "original_inference_steps", 1)
    failed = browser.wait_settled(after=before["latest"])
    assert failed["on"] and "cannot exceed original_inference_steps" in failed["error"]
    assert failed["stats"]["rejected"] == 1 and not failed["inflight"]
    assert failed["stats"]["frames"] == frames
    browser.set_widget(6, "original_inference_steps", 50)
    recovered = browser.wait_settled(after=failed["latest"])
    assert recovered["on"] and recovered["error"] is None
    assert recovered["stats"]["frames"] == frames + 1 and recovered["history"][-1]["promptId"] == recovered["latest"]


@pytest.mark.server
def test_switching_live_off_stops_queuing(browser, server):
    start_live(browser, "a owl")
    browser.click_live_toggle()
    assert browser.live_state()["on"] is False
    queued = len(browser.queued)
    browser.focus_text()
    browser.page.keyboard.type(" at dawn", delay=20)
    browser.page.wait_for_timeout(600)
    assert len(browser.queued) == queued
    assert server.get("/queue") == {"queue_running": [], "queue_pending": []}


@pytest.mark.server
@pytest.mark.slow
def test_soak_rapid_edits_leave_no_errors_no_growth_and_an_empty_queue(browser, server):
    import psutil
    edits = int(os.environ.get("LCM_KIT_SOAK_EDITS", "200"))
    start_live(browser, "soak", size=64)  # small frames: the soak is about the edits, not the compute
    browser.focus_text()
    for _ in range(6):                      # warm up: allocator and caches reach their steady size
        browser.page.keyboard.type("w")
        browser.page.wait_for_timeout(200)
    warm = browser.wait_settled(after=browser.live_state()["history"][-1]["promptId"])
    server_process = psutil.Process(server.proc.pid)
    rss_before = server_process.memory_info().rss
    log_start = len(server.log_text())
    queued_before = browser.live_state()["stats"]["queued"]
    t0 = time.time()
    # A 60 ms debounce with pauses of 0-100 ms around it: more prompts queued and cancelled per second
    # than at the default 150 ms, in less wall time.
    browser.set_debounce(60)
    try:
        for i in range(edits):
            # alternately add and remove a character
            browser.page.keyboard.press("Backspace" if i % 2 else "s")
            browser.page.wait_for_timeout((i % 5) * 25)
        state = browser.wait_settled(after=warm["latest"])
    finally:
        browser.set_debounce(browser_support.DEFAULT_DEBOUNCE_MS)
    elapsed = time.time() - t0
    rss_after = server_process.memory_info().rss
    texts = browser.queued_texts()
    assert texts[state["history"][-1]["promptId"]] == browser.text_value()
    assert state["error"] is None
    assert server_errors(server.log_text()[log_start:]) == []
    assert server.get("/queue") == {"queue_running": [], "queue_pending": []}
    growth = (rss_after - rss_before) / rss_before
    print(f"soak: {edits} edits, {state['stats']['queued'] - queued_before} prompts queued, "
          f"{state['stats']['cancelled']} cancelled in all, {elapsed:.1f} s, server RSS "
          f"{rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB ({growth:+.1%})")
    assert growth < 0.05
    assert not [e for e in browser.console_errors if "live" in e.lower() or "lcm" in e.lower()]
