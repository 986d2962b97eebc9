"""Live mode (issue #6): the Live Preview node streams frames over /ws to the queuing client only, and
the frontend extension (js/live.js) re-queues the graph as you type, in the real frontend in Chromium."""
from __future__ import annotations

import io
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


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.server
def test_frames_reach_only_the_queuing_client_and_nothing_is_written(server, base_dir):
    before = output_files(base_dir)
    with WebSocketListener(server) as owner, WebSocketListener(server) as other:
        prompt_id = server.queue(live_api_graph(fmt="PNG"), owner.client_id)
        hist = server.wait_history(prompt_id)
        assert hist["status"]["status_str"] == "success", hist["status"]
        assert wait_for(lambda: len(owner.events("lcm_kit.live_frame")) == 1)
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
        assert wait_for(lambda: len(ws.events("lcm_kit.live_frame")) == 2)
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
    reason = browser_support.chromium_missing_reason()
    if reason:
        pytest.skip(reason)
    browser_support.link_public_models(base_dir)
    browser_support.write_frontend_settings(base_dir)
    with browser_support.Browser(server.url) as b:
        yield b


@pytest.mark.server
def test_typing_in_live_mode_streams_frames_of_the_last_text(browser, server):
    browser.load_workflow(browser_support.live_workflow(size=128, text="a fox"))
    browser.click_live_toggle()
    first = browser.wait_settled()
    assert first["on"], "the live toggle did not switch live mode on"
    browser.focus_text()
    # Words typed with pauses longer than the debounce and shorter than a run: each pause queues the
    # graph, and the run it replaces is interrupted.
    for word in [" in", " the", " snow", " at", " night"]:
        browser.page.keyboard.type(word, delay=20)
        browser.page.wait_for_timeout(190)
    state = browser.wait_settled()
    texts = browser.queued_texts()
    assert browser.text_value() == "a fox in the snow at night"
    last = state["history"][-1]
    assert last["promptId"] == state["latest"] and texts[last["promptId"]] == "a fox in the snow at night"
    assert state["stats"]["frames"] >= 2 and state["error"] is None
    assert state["stats"]["cancelled"] >= 1
    interrupted = [pid for pid in texts if f"Interrupting prompt {pid}" in server.log_text()]
    assert interrupted, "no stale run was interrupted"
    # frames on screen only ever move forward in queue order
    seqs = [h["seq"] for h in state["history"]]
    assert seqs == sorted(seqs)
