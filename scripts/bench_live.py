"""Live-mode benchmark: frames per second while editing in the real frontend vs back-to-back sampling of
the same graph, and keystroke-to-frame latency minus compute time.

    python3 scripts/testbed.py python scripts/bench_live.py [--frames N] [--size PX] [--screenshot docs/live.png]

`run(report)` is what `make bench` calls: it fills report["live"]. It starts its own ComfyUI server
(main.py --cpu, 127.0.0.1) with the pack and the tiny SD1.5 models under the example workflow's public
names, and Debian's Chromium with the real frontend through Playwright.

- back-to-back: N prompts of the live workflow (each with another text, as while typing) queued at once
  over HTTP; fps = N / (first execution_start .. last frame).
- live: N edits typed into the prompt box, each as soon as the frame of the previous one is on screen;
  fps = N / elapsed. Per edit, latency = keystroke .. frame drawn, compute = execution_start .. frame;
  overhead = latency - compute (debounce, queuing, transport, decoding), reported with the default
  debounce and with debounce 0.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support import browser as browser_support  # noqa: E402
from support import comfy_env  # noqa: E402


def _api_prompt(workflow_prompt: dict, text: str) -> dict:
    prompt = json.loads(json.dumps(workflow_prompt))
    prompt["3"]["inputs"]["text"] = text
    return prompt


def back_to_back(server, api_prompt: dict, frames: int) -> dict:
    with comfy_env.WebSocketListener(server) as ws:
        ids = [server.queue(_api_prompt(api_prompt, f"bench back to back {i}"), ws.client_id) for i in range(frames)]
        for pid in ids:
            server.wait_history(pid)
        deadline = time.time() + 30
        while len(ws.events("lcm_kit.live_frame")) < frames and time.time() < deadline:
            time.sleep(0.05)
    starts = [e["timestamp"] for e in ws.events("execution_start") if e["prompt_id"] in ids]
    sent = [e["timings"]["sent_at_ms"] for e in ws.events("lcm_kit.live_frame") if e["prompt_id"] in ids]
    elapsed_s = (max(sent) - min(starts)) / 1000.0
    return {"frames": len(sent), "elapsed_s": round(elapsed_s, 2), "fps": round(len(sent) / elapsed_s, 3)}


def live_typing(page: browser_support.Browser, frames: int, debounce_ms: int | None) -> dict:
    if debounce_ms is not None:
        page.js("(v) => window.app.extensionManager.setting.set('LCMKit.Live.DebounceMs', v)", debounce_ms)
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
    return {"debounce_ms": debounce_ms if debounce_ms is not None else "default",
            "frames": frames, "elapsed_s": round(elapsed, 2), "fps": round(frames / elapsed, 3),
            "latency_ms_median": round(statistics.median(s["latency_ms"] for s in samples), 1),
            "compute_ms_median": round(statistics.median(s["compute_ms"] for s in samples), 1),
            "overhead_ms_median": round(statistics.median(overhead), 1),
            "overhead_ms_max": round(max(overhead), 1)}


def run(report: dict, frames: int = 5, size: int = 128, screenshot: Path | None = None) -> dict:
    """Measure live mode; put the figures in report["live"] and return them."""
    reason = browser_support.chromium_missing_reason()
    if reason:
        report["live"] = {"skipped": reason}
        return report["live"]
    base = Path(tempfile.mkdtemp(prefix="lcm-kit-bench-live-"))
    comfy_env.make_base_dir(base, {})
    browser_support.link_public_models(base)
    browser_support.write_frontend_settings(base)
    server = comfy_env.ComfyServer(base, base / "comfyui.log").start()
    try:
        with browser_support.Browser(server.url) as page:
            page.load_workflow(browser_support.live_workflow(size=size, text="bench"))
            api_prompt = page.js("async () => (await window.app.graphToPrompt()).output")
            page.click_live_toggle()
            page.wait_settled()                         # first run: loads the checkpoint and LoRA
            results = {"size": size, "steps": 2, "device": "cpu (--cpu)",
                       "back_to_back": back_to_back(server, api_prompt, frames)}
            results["live_default_debounce"] = live_typing(page, frames, None)
            results["live_debounce_0"] = live_typing(page, frames, 0)
            results["fps_ratio_live_vs_back_to_back"] = round(
                results["live_default_debounce"]["fps"] / results["back_to_back"]["fps"], 3)
            if screenshot:
                page.js("(v) => window.app.extensionManager.setting.set('LCMKit.Live.DebounceMs', v)", 150)
                page.close_dialogs()
                page.page.screenshot(path=str(screenshot), clip={"x": 0, "y": 0, "width": 1600, "height": 900})
    finally:
        server.stop()
    report["live"] = results
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=5, help="frames per measurement (default 5)")
    ap.add_argument("--size", type=int, default=128, help="image size in pixels (default 128)")
    ap.add_argument("--screenshot", type=Path, help="also save a screenshot of the live workflow here")
    args = ap.parse_args()
    report: dict = {}
    run(report, frames=args.frames, size=args.size, screenshot=args.screenshot)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
