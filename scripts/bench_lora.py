"""LoRA stack cost for `make bench`: a 3-LoRA LCM Kit stack (LoRA Stack → Apply LoRA Stack) vs three
chained core LoraLoaders, through ComfyUI's real executor on the tiny SD1.5 model (goal ≤ 1.05×), and
how many times a LoRA file is read again when only a strength changes (goal 0).

Each repeat changes one strength in both graphs, so both re-apply their LoRAs (the checkpoint and the
text encodes come from ComfyUI's cache in both); the graphs sample one step at 64².
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from support import comfy_env, tiny_models  # noqa: E402

LORAS = ["tiny-sd15-lcm-kohya.safetensors", "tiny-sd15-style-kohya.safetensors", "tiny-sd15-style-peft.safetensors"]


def _tail(model, clip) -> dict:
    return {
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["ckpt", 1]}},
        "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "s": {"class_type": "LCMKitSampler", "inputs": {
            "model": model, "positive": ["pos", 0], "negative": ["pos", 0], "latent_image": ["latent", 0],
            "seed": 1, "steps": 1, "cfg": 1.0, "strength": 1.0, "sampler": "lcm", "gamma": 0.3,
            "original_inference_steps": 50, "steps_preset": "custom (use steps)"}},
        "save": {"class_type": "SaveLatent", "inputs": {"samples": ["s", 0], "filename_prefix": "latents/bench_lora"}},
    }


def ours(strength: float) -> dict:
    rows = {}
    for i, name in enumerate(LORAS, 1):
        rows.update({f"lora_name_{i}": name, f"strength_model_{i}": strength if i == 1 else 0.8,
                     f"strength_clip_{i}": 0.0})
    rows.update({"lora_name_4": "None", "strength_model_4": 1.0, "strength_clip_4": 1.0})
    g = {"ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd15.safetensors"}},
         "stack": {"class_type": "LCMKitLoraStack", "inputs": rows},
         "apply": {"class_type": "LCMKitApplyLoraStack", "inputs": {"model": ["ckpt", 0], "lora_stack": ["stack", 0]}}}
    g.update(_tail(["apply", 0], None))
    return g


def core(strength: float) -> dict:
    g = {"ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd15.safetensors"}}}
    model = ["ckpt", 0]
    for i, name in enumerate(LORAS):
        g[f"l{i}"] = {"class_type": "LoraLoaderModelOnly", "inputs": {
            "model": model, "lora_name": name, "strength_model": strength if i == 0 else 0.8}}
        model = [f"l{i}", 0]
    g.update(_tail(model, None))
    return g


def run(report: dict, repeats: int = 5) -> dict:
    pack = comfy_env.pack_module()
    import folder_paths
    if "tiny-sd15-style-peft.safetensors" not in folder_paths.get_filename_list("loras"):
        comfy_env.make_base_dir(Path(folder_paths.base_path), tiny_models.ensure(*[f"loras/{n}" for n in LORAS]))
        folder_paths.filename_list_cache.clear()
    reads = pack.nodes.lora_files.READS
    runner = comfy_env.InProcessComfy()
    times = {"ours": [], "core": []}
    for build in (ours, core):           # warm-up: first reads, model load
        runner.run(build(1.0))
    for i in range(repeats):
        strength = 0.9 - 0.05 * i         # a new strength each repeat: both graphs re-apply their LoRAs
        for name, build in (("ours", ours), ("core", core)):
            t0 = time.perf_counter()
            runner.run(build(strength))
            times[name].append(time.perf_counter() - t0)
    # File reads when a user changes one strength in the same graph (alternating two graphs above makes
    # ComfyUI drop the other graph's node objects, and with them what they cached, in core and ours alike).
    runner.run(ours(0.5))
    before = sum(v for (kind, _), v in reads.items() if kind == "tensors")
    for strength in (0.55, 0.6, 0.65):
        runner.run(ours(strength))
    rereads = sum(v for (kind, _), v in reads.items() if kind == "tensors") - before
    row = {"loras": len(LORAS), "ours_s": statistics.median(times["ours"]), "core_s": statistics.median(times["core"]),
           "ours_vs_core": statistics.median([o / c for o, c in zip(times["ours"], times["core"])]),
           "lora_file_reads_after_strength_changes": rereads}
    report.setdefault("sections", {})["lora_stack"] = row
    print(f"3-LoRA stack vs 3 chained core loaders (re-run after a strength change, 1 step 64²): ours "
          f"{row['ours_s']:.3f}s core {row['core_s']:.3f}s ratio {row['ours_vs_core']:.3f} (goal <= 1.05); "
          f"LoRA files read again: {rereads} (goal 0)")
    return row
