"""Live sketch benchmark (issue #16): stroke end -> frame latency minus compute, and the bytes each frame costs.

    python3 scripts/testbed.py python scripts/bench_sketch.py [--strokes N] [--size PX] [--debounce MS]

Starts its own ComfyUI server (main.py --cpu, 127.0.0.1) with the pack and the tiny SD1.5 models under the example
workflow's public names, and Debian's Chromium with the real frontend (classic renderer) through Playwright. Loads
example 9 (live sketch) at --size², switches live on, then draws N strokes with the mouse, each once the frame of the
previous one is on screen. Per stroke: latency = the stroke's end (pointerup) .. frame received in the page; compute
= the run on the server's clock (execution_start .. frame sent); overhead = latency - compute (debounce, the page
writing the PNG and building the prompt, HTTP, queuing, transport). Bytes: the POST /prompt body per frame, and the
sketch's PNG in it. Prints one JSON object.

    python3 scripts/testbed.py python scripts/bench_sketch.py --camera SECONDS [--size PX]

Camera mode instead (Chromium's fake camera, permission granted): live fps over SECONDS once frames flow, then the
camera's own sketches queued back to back over HTTP on the same server; the ratio is the goal's (>= 0.9x).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from support import browser as browser_support  # noqa: E402
from support import comfy_env  # noqa: E402

SKETCH = 5   # the Sketch node's id in example 9


@contextlib.contextmanager
def sketch_server():
    """A started server on a base directory of its own with the example's models (and TAESD), pinned to all cores
    but the last, and this process (so Playwright's Chromium) to the last, as bench_live's "split" cores: on a
    user's machine the GPU computes and the browser has the CPU."""
    from bench_live import core_split
    base = Path(tempfile.mkdtemp(prefix="lcm-kit-bench-sketch-"))
    comfy_env.make_base_dir(base, {})
    browser_support.link_public_models(base)
    browser_support.link_models(base, {f"vae_approx/{n}.safetensors": f"vae_approx/{n}.safetensors"
                                       for n in ("taesd_encoder", "taesd_decoder")})
    browser_support.write_frontend_settings(base)
    split = core_split()
    server = comfy_env.ComfyServer(base, base / "comfyui.log", cpus=split[0] if split else None).start()
    own_cores = os.sched_getaffinity(0)
    try:
        if split:
            os.sched_setaffinity(0, split[1])
        yield server
    finally:
        os.sched_setaffinity(0, own_cores)
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def measure(strokes: int, size: int, debounce_ms: int) -> dict:
    with sketch_server() as server:
        with browser_support.Browser(server.url) as b:
            b.load_workflow(browser_support.sketch_workflow(size))
            b.show_node(SKETCH, scale=0.9)
            b.set_debounce(debounce_ms)
            b.command("LCMKit.Live.Toggle")
            state = b.wait_settled()
            box = b.element_box(SKETCH, "sketch", ".lcm-kit-stage canvas")
            rows = []
            for i in range(strokes):
                t = (i % 10) / 10
                b.stroke(box, [(0.1 + 0.8 * t, 0.1), (0.5, 0.5), (0.9 - 0.8 * t, 0.9)], step_ms=10)
                state = b.wait_settled(after=state["latest"])
                last = state["history"][-1]
                body = b.queued_ids[last["promptId"]]
                rows.append({"latency_ms": last["latencyMs"], "compute_ms": last["computeMs"],
                             "prompt_bytes": len(json.dumps(body)),
                             "png_bytes": len(body["prompt"][str(SKETCH)]["inputs"]["sketch"]) * 3 // 4})
            b.command("LCMKit.Live.Toggle")
    overhead = [r["latency_ms"] - r["compute_ms"] for r in rows]
    med = statistics.median
    return {"strokes": strokes, "size": size, "debounce_ms": debounce_ms,
            "latency_ms_median": round(med(r["latency_ms"] for r in rows), 1),
            "compute_ms_median": round(med(r["compute_ms"] for r in rows), 1),
            "overhead_ms_median": round(med(overhead), 1), "overhead_ms_min": round(min(overhead), 1),
            "overhead_ms_max": round(max(overhead), 1),
            "prompt_bytes_median": med(r["prompt_bytes"] for r in rows),
            "png_bytes_median": med(r["png_bytes"] for r in rows)}


def measure_camera(seconds: float, size: int) -> dict:
    """Camera mode with Chromium's fake camera: live fps over `seconds` (after the first frames), then the same
    number of the camera's own sketches queued back to back over HTTP on the same server (its steady rate)."""
    from bench_live import back_to_back
    with sketch_server() as server:
        with browser_support.Browser(server.url, extra_args=browser_support.FAKE_CAMERA_ALLOWED_ARGS) as b:
            b.load_workflow(browser_support.sketch_workflow(size))
            b.show_node(SKETCH, scale=0.9)
            left, top, right, bottom = b.element_box(SKETCH, "sketch", ".lcm-kit-tools button[title^='the camera']")
            b.page.mouse.click((left + right) / 2, (top + bottom) / 2)
            try:
                b.wait_until(lambda: len(b.shown_frames()) >= 3, 60, "three camera frames shown")
            except TimeoutError:
                raise RuntimeError(f"no camera frames: {b.live_state()} "
                                   f"{b.element_text(SKETCH, 'sketch', '.lcm-kit-line.warning')!r}") from None
            first = len(b.shown_frames())
            b.page.wait_for_timeout(seconds * 1000)
            shown = b.shown_frames()[first - 1:]
            b.command("LCMKit.Live.Toggle")
            b.page.wait_for_timeout(500)
            live_fps = (len(shown) - 1) / ((shown[-1]["at"] - shown[0]["at"]) / 1000.0)
            sketches = {}
            for body in b.queued_ids.values():
                sketches.setdefault(body["prompt"][str(SKETCH)]["inputs"]["sketch"], body["prompt"])
            prompts = list(sketches.values())[-max(3, len(shown)):]
        b2b = back_to_back(server, None, len(prompts), prompts=prompts)
    return {"camera_seconds": seconds, "size": size, "live_frames": len(shown), "live_fps": round(live_fps, 3),
            "live_compute_ms_median": round(statistics.median(h["computeMs"] for h in shown), 1),
            "back_to_back": b2b, "fps_ratio_camera_vs_back_to_back": round(live_fps / b2b["fps"], 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=6)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--debounce", type=int, default=browser_support.DEFAULT_DEBOUNCE_MS)
    parser.add_argument("--camera", type=float, metavar="SECONDS",
                        help="measure camera mode instead: live fps over SECONDS vs its sketches back to back")
    args = parser.parse_args()
    result = measure_camera(args.camera, args.size) if args.camera else measure(args.strokes, args.size, args.debounce)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
