"""Live sketch benchmark (issue #16): stroke end -> frame latency minus compute, and the bytes each frame costs.

    python3 scripts/testbed.py python scripts/bench_sketch.py [--strokes N] [--size PX] [--debounce MS]

Starts its own ComfyUI server (main.py --cpu, 127.0.0.1) with the pack and the tiny SD1.5 models under the example
workflow's public names, and Debian's Chromium with the real frontend (classic renderer) through Playwright. Loads
example 9 (live sketch) at --size², switches live on, then draws N strokes with the mouse, each once the frame of the
previous one is on screen. Per stroke: latency = the stroke's end (pointerup) .. frame received in the page; compute
= the run on the server's clock (execution_start .. frame sent); overhead = latency - compute (debounce, the page
writing the PNG and building the prompt, HTTP, queuing, transport). Bytes: the POST /prompt body per frame, and the
sketch's PNG in it. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support import browser as browser_support  # noqa: E402
from support import comfy_env  # noqa: E402

SKETCH = 5   # the Sketch node's id in example 9


def measure(strokes: int, size: int, debounce_ms: int) -> dict:
    base = Path(tempfile.mkdtemp(prefix="lcm-kit-bench-sketch-"))
    comfy_env.make_base_dir(base, {})
    browser_support.link_public_models(base)
    browser_support.link_models(base, {f"vae_approx/{n}.safetensors": f"vae_approx/{n}.safetensors"
                                       for n in ("taesd_encoder", "taesd_decoder")})
    browser_support.write_frontend_settings(base)
    server = comfy_env.ComfyServer(base, base / "comfyui.log").start()
    try:
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
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    overhead = [r["latency_ms"] - r["compute_ms"] for r in rows]
    med = statistics.median
    return {"strokes": strokes, "size": size, "debounce_ms": debounce_ms,
            "latency_ms_median": round(med(r["latency_ms"] for r in rows), 1),
            "compute_ms_median": round(med(r["compute_ms"] for r in rows), 1),
            "overhead_ms_median": round(med(overhead), 1), "overhead_ms_min": round(min(overhead), 1),
            "overhead_ms_max": round(max(overhead), 1),
            "prompt_bytes_median": med(r["prompt_bytes"] for r in rows),
            "png_bytes_median": med(r["png_bytes"] for r in rows)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=6)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--debounce", type=int, default=browser_support.DEFAULT_DEBOUNCE_MS)
    args = parser.parse_args()
    print(json.dumps(measure(args.strokes, args.size, args.debounce), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
