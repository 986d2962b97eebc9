"""GPU checks of issue #14: the dynamic-VRAM paths on newer ComfyUI with CUDA, through the real server.

    python3 scripts/gpu_checks.py [--cpu] [--size N] [--out FILE]   # COMFYUI_DIR: the ComfyUI tree (upstream 0.33)

On an NVIDIA GPU, newer ComfyUI loads models through dynamic VRAM (comfy-aimdo, `ModelPatcherDynamic`); `--cpu`
turns it off, so the test suite never reaches it. This starts `main.py` *without* `--cpu` and queues, over HTTP:
1. text-to-image with Offload Policy: text encoder -> cpu, VAE -> cpu, model "offload after run";
2. Compile (inductor) on the model, LCM-LoRA applied before it;
3. an LCM Checkpoint Loader model through core's Select Model Device (cpu, then back to default);
4. the LCM Sampler after core's own Load Checkpoint (the plain dynamic path).
Each must finish with an image; the JSON written to --out says which did, how long each took and whether ComfyUI
enabled dynamic VRAM (its start-up log line). `--cpu` runs the same graphs on the CPU (a smoke
run of this script; dynamic VRAM stays off). scripts/gpu_checks.sh runs this and the full-size bench on a lent
device.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

import graphs  # noqa: E402
from support import comfy_env, tiny_models  # noqa: E402

SIZE = 512
LCM_CKPT = "tiny-sd15-lcm.safetensors"
LORA = "tiny-sd15-lcm-kohya.safetensors"


def checks(size: int = SIZE) -> dict[str, dict]:
    """{name: API prompt}: each ends in SaveImage."""
    offload = graphs.core_lcm_graph(prefix="gpu_offload", size=size)
    offload["offload"] = {"class_type": "LCMKitOffload", "inputs": {
        "model": ["ckpt", 0], "clip": ["ckpt", 1], "vae": ["ckpt", 2], "text_encoder": "cpu", "vae_device": "cpu",
        "model_between_runs": "offload after run"}}
    offload["msd"]["inputs"]["model"] = ["offload", 0]
    offload["pos"]["inputs"]["clip"] = offload["neg"]["inputs"]["clip"] = ["offload", 1]
    offload["decode"]["inputs"]["vae"] = ["offload", 2]

    compiled = graphs.lcm_graph(prefix="gpu_compile", size=size, save="image")
    compiled["lora"] = {"class_type": "LCMKitLoraLoader", "inputs": {
        "model": ["ckpt", 0], "lora_name": LORA, "strength": 1.0}}
    compiled["compile"] = {"class_type": "LCMKitCompile", "inputs": {
        "model": ["lora", 0], "mode": "default", "backend": "inductor", "dynamic": "auto", "fullgraph": False,
        "channels_last": False}}
    compiled["sampler"]["inputs"]["model"] = ["compile", 0]

    out = {"offload_text_encoder_and_vae_to_cpu": offload, "compile_after_lcm_lora": compiled}
    for device in ("cpu", "default"):
        g = graphs.lcm_graph(prefix=f"gpu_select_{device}", size=size, save="image")
        g["ckpt"] = {"class_type": "LCMKitCheckpointLoader", "inputs": {"ckpt_name": LCM_CKPT, "guidance": 8.0}}
        g["select"] = {"class_type": "SelectModelDevice", "inputs": {"model": ["ckpt", 0], "device": device}}
        g["sampler"]["inputs"]["model"] = ["select", 0]
        out[f"lcm_checkpoint_through_select_model_device_{device}"] = g
    out["lcm_sampler_on_core_load_checkpoint"] = graphs.lcm_graph(prefix="gpu_plain", size=size, save="image")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu", action="store_true", help="smoke run on the CPU (dynamic VRAM off)")
    ap.add_argument("--size", type=int, default=SIZE, help="image size (smoke runs: 128)")
    ap.add_argument("--out", default=str(REPO / "bench-results" / "gpu_checks.json"))
    args = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="lcm-kit-gpu-"))
    models = tiny_models.ensure("checkpoints/tiny-sd15.safetensors", f"checkpoints/{LCM_CKPT}", f"loras/{LORA}")
    comfy_env.make_base_dir(base, models)
    (base / "no-frontend").mkdir()   # API calls only: no frontend package needed
    server = comfy_env.ComfyServer(base, base / "comfyui.log", cpu=args.cpu,
                                   extra_args=["--front-end-root", str(base / "no-frontend")]).start(timeout=300)
    report: dict = {"cpu": args.cpu, "results": {}}
    try:
        info = server.get("/object_info")
        report["select_model_device_available"] = "SelectModelDevice" in info
        for name, prompt in checks(args.size).items():
            if not report["select_model_device_available"] and "SelectModelDevice" in json.dumps(prompt):
                report["results"][name] = {"ok": False, "error": "this ComfyUI has no SelectModelDevice node"}
                continue
            start = time.perf_counter()
            try:
                prompt_id = server.queue(prompt, str(uuid.uuid4()))
                hist = server.wait_history(prompt_id, timeout=900)
                status = hist["status"]
                ok = status.get("status_str") == "success" and bool(hist["outputs"].get("save", {}).get("images"))
                errors = [m for m in status.get("messages", []) if m[0] == "execution_error"]
                report["results"][name] = {"ok": ok, "seconds": round(time.perf_counter() - start, 2),
                                           "error": errors[0][1].get("exception_message") if errors else None}
            except Exception as e:  # noqa: BLE001 - a check that cannot even be queued is a failed check
                report["results"][name] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            print(f"{name}: {report['results'][name]}", flush=True)
    finally:
        server.stop()
    text = server.log_text()
    report["dynamic_vram_enabled"] = "DynamicVRAM support detected and enabled" in text
    report["log_errors"] = [line for line in text.splitlines() if "Error" in line or "Traceback" in line][:40]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "log_errors"}, indent=1))
    return 0 if all(r["ok"] for r in report["results"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
