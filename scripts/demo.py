"""`make demo`: start ComfyUI (test bed or COMFYUI_DIR) with the pack, run the LCM example workflow
(example_workflows/"1. LCM-LoRA text-to-image (SD1.5).json") through the HTTP API at the tutorial's 1 / 2 / 4 / 8 steps,
write the PNGs and print a timing table.

By default it runs on the tiny generated SD1.5 model (random weights: the images are noise-like
patterns, the point is the pipeline and the timings). To run on your own models, point COMFYUI_DIR at
your ComfyUI and name the files in its models folders:

    COMFYUI_DIR=~/ComfyUI LCM_KIT_DEMO_CKPT=dreamshaper_8.safetensors \
    LCM_KIT_DEMO_LORA=lcm-lora-sdv1-5.safetensors LCM_KIT_DEMO_SIZE=512 make demo
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

import logging  # noqa: E402

from support import comfy_env, tiny_models  # noqa: E402
from support.workflows import ui_to_api  # noqa: E402

OUT = REPO / "demo-output"
STEPS = (1, 2, 4, 8)


EXAMPLE = REPO / "example_workflows" / "1. LCM-LoRA text-to-image (SD1.5).json"
PUBLIC_CKPT, PUBLIC_LORA = "v1-5-pruned-emaonly.safetensors", "lcm-lora-sdv1-5.safetensors"


def lcm_prompt(server, ckpt: str, lora: str | None, steps: int, size: int, seed: int, prefix: str) -> dict:
    """The SD1.5 LCM-LoRA example workflow as an API prompt (widget order from the server's /object_info),
    with the models, steps, size, seed and file prefix of this run."""
    prompt = ui_to_api(json.loads(EXAMPLE.read_text()), server.get("/object_info"))
    for node in prompt.values():
        inputs, kind = node["inputs"], node["class_type"]
        if kind == "CheckpointLoaderSimple":
            inputs["ckpt_name"] = ckpt
        elif kind == "LCMKitLoraLoader":
            inputs["lora_name"] = lora or "auto"
            inputs["strength"] = 1.0 if lora else 0.0
        elif kind == "EmptyLatentImage":
            inputs["width"] = inputs["height"] = size
        elif kind == "LCMKitSampler":
            inputs["steps"], inputs["seed"] = steps, seed
        elif kind == "SaveImage":
            inputs["filename_prefix"] = prefix
    return prompt


def main() -> int:
    testbed = Path(os.environ.get("LCM_KIT_TESTBED", REPO / ".testbed"))
    base = testbed / "demo-base"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    comfy_env.make_base_dir(base, {})
    user_ckpt = os.environ.get("LCM_KIT_DEMO_CKPT")
    if user_ckpt:
        models_root = comfy_env.comfyui_dir() / "models"
        ckpt, lora = user_ckpt, os.environ.get("LCM_KIT_DEMO_LORA") or None
        links = {f"checkpoints/{ckpt}": models_root / "checkpoints" / ckpt}
        if lora:
            links[f"loras/{lora}"] = models_root / "loras" / lora
        for rel, path in links.items():
            if not path.exists():
                print(f"error: {path} does not exist (LCM_KIT_DEMO_CKPT / LCM_KIT_DEMO_LORA name files in "
                      f"your ComfyUI models folders)", file=sys.stderr)
                return 2
        size = int(os.environ.get("LCM_KIT_DEMO_SIZE", "512"))
    else:
        comfy_env.bootstrap(base)  # tiny models are built with ComfyUI's own classes
        names = ["checkpoints/tiny-sd15.safetensors", "loras/tiny-sd15-lcm-kohya.safetensors"]
        links = tiny_models.ensure(*names)
        ckpt, lora = "tiny-sd15.safetensors", "tiny-sd15-lcm-kohya.safetensors"
        size = int(os.environ.get("LCM_KIT_DEMO_SIZE", "256"))
    comfy_env.make_base_dir(base, links)

    server = comfy_env.ComfyServer(base, testbed / "demo-comfyui.log")
    t0 = time.perf_counter()
    server.start()
    startup = time.perf_counter() - t0
    print(f"ComfyUI started with LCM Kit in {startup:.1f} s ({server.url}); model: {ckpt}"
          f"{' + ' + lora if lora else ''}, {size}x{size}")
    OUT.mkdir(exist_ok=True)
    rows = []
    try:
        client = str(uuid.uuid4())
        # Warm-up: loads the checkpoint and LoRA once, as a user's first run does.
        t0 = time.perf_counter()
        server.wait_history(server.queue(lcm_prompt(server, ckpt, lora, 1, size, 0, "lcm_kit_demo_warmup"), client))
        warmup = time.perf_counter() - t0
        for steps in STEPS:
            prompt = lcm_prompt(server, ckpt, lora, steps, size, 42, f"lcm_kit_demo_{steps}steps")
            t0 = time.perf_counter()
            hist = server.wait_history(server.queue(prompt, client))
            elapsed = time.perf_counter() - t0
            if hist["status"]["status_str"] != "success":
                print(f"error: the {steps}-step run failed: {hist['status']}", file=sys.stderr)
                return 1
            for img in (i for out in hist["outputs"].values() for i in out.get("images", [])):
                src = base / "output" / img["subfolder"] / img["filename"]
                shutil.copy(src, OUT / img["filename"])
                rows.append((steps, elapsed, OUT / img["filename"]))
    finally:
        server.stop()

    print(f"\nfirst run (loads the model): {warmup:.2f} s")
    print(f"{'steps':>5} | {'time per image (s)':>18} | image")
    print(f"{'-' * 5}-+-{'-' * 18}-+-{'-' * 40}")
    for steps, elapsed, path in rows:
        print(f"{steps:>5} | {elapsed:>18.2f} | {path.relative_to(REPO)}")
    print("\n(HTTP round trip included: queue -> sample -> decode -> PNG written; CPU of this machine.)")
    return 0


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.ERROR)  # ComfyUI's import chatter (optional audio nodes)
    sys.exit(main())
