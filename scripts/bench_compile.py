"""Compile vs eager on the tiny UNets (CPU here, whatever device ComfyUI picks elsewhere).

    python3 scripts/testbed.py python scripts/bench_compile.py [--sdxl] [--size 256] [--steps 4] [--repeats 5]

`run(report)` fills `report["compile"]` and returns it (`make bench` calls it): per architecture the
median sampling time eager and compiled (warm, after warm-up runs), the speed-up, the first compiled
run's extra time (compile time), how many graphs dynamo compiled after a LoRA strength change, a
LoRA stack change, a prompt change and a seed change (all should be 0), and the share of eager time in
library kernels that compiling leaves as they are (convolutions, matmuls, attention), which bounds the
speed-up compile can give. Where the Compile node's attention auto swaps ComfyUI's graph-breaking CPU
attention for PyTorch SDPA, eager with SDPA is timed too: what compiling alone gives. The tiny models have random weights: speed is what they measure, not images.

`--full-size` (and `make bench BENCH_ARGS=--full-size`, meant for a GPU): a random-weight full-size SD1.5
UNet at 512² (fp16 on a GPU), LCM Sampler at 1 / 2 / 4 / 8 steps, eager vs compiled (interleaved, warm),
the compile time and the graphs compiled after the first step count (0 expected: the step count changes
no shape). With CUDA it also records peak VRAM of a whole tiny-SD1.5 txt2img run (its text encoder is
the full-size CLIP-L) with and without the Offload Policy node (text encoder and VAE on the CPU).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from support import comfy_env, tiny_models  # noqa: E402

ARCHS = {
    "sd15": ("tiny-sd15.safetensors", "tiny-sd15-style-kohya.safetensors", "tiny-sd15-lcm-kohya.safetensors"),
    "sdxl": ("tiny-sdxl.safetensors", "tiny-sdxl-style-kohya.safetensors", "tiny-sdxl-lcm-kohya.safetensors"),
}


def _boot(archs) -> None:
    files = ["vae_approx/taesd_decoder.safetensors"]
    for arch in archs:
        ckpt, *loras = ARCHS[arch]
        files += [f"checkpoints/{ckpt}"] + [f"loras/{name}" for name in loras]
    base = comfy_env._BOOTED.get("base") or Path(tempfile.mkdtemp(prefix="lcm-kit-bench-"))
    comfy_env.make_base_dir(base, {})
    comfy_env.bootstrap(base)
    comfy_env.make_base_dir(base, tiny_models.ensure(*files))


def _bench_arch(arch: str, size: int, steps: int, repeats: int) -> dict:
    import torch

    import nodes
    opt = comfy_env.pack_module().nodes.optimize
    ckpt, style, lcm = ARCHS[arch]
    model, clip = nodes.CheckpointLoaderSimple().load_checkpoint(ckpt)[:2]

    def with_loras(stack):
        m, c = model, clip
        for name, strength in stack:
            m, c = nodes.LoraLoader().load_lora(m, c, name, strength, strength)
        return m, c

    def sample(stack, compiled, seed=1, text="a red fox in the snow", sdpa=False):
        m, c = with_loras(stack)
        if compiled:  # a fresh Compile node output, as when the graph above it changes
            m = opt.compile_model(m, opt.CompileSettings())
        elif sdpa:    # uncompiled, with the attention the compiled model uses
            m = m.clone()
            m.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = opt._sdpa_attention
        pos, neg = (nodes.CLIPTextEncode().encode(c, t)[0] for t in (text, ""))
        latent = {"samples": torch.zeros(1, 4, size // 8, size // 8)}
        before, start = opt.compile_counter(), time.perf_counter()
        nodes.common_ksampler(m, seed, steps, 1.0, "lcm", "simple", pos, neg, latent, disable_noise=False)
        return time.perf_counter() - start, opt.compile_counter() - before

    base_stack = [(style, 1.0)]
    # The Compile node's attention auto (the default) runs PyTorch SDPA inside the compiled model where
    # ComfyUI's attention would break the graph (its CPU choice). Eager with that same attention shows
    # what compiling alone gives.
    swapped = opt.swaps_attention("auto")
    sample(base_stack, False)  # warm-up: loads, patches, allocator
    sample(base_stack, False, sdpa=swapped)
    first, first_graphs = sample(base_stack, True)
    sample(base_stack, True)
    # interleaved (eager, compiled, eager with the compiled model's attention in each repeat), so the
    # machine's drift hits all three alike; ratios are medians of per-repeat ratios
    eager, compiled, eager_same = [], [], []
    for _ in range(repeats):
        eager.append(sample(base_stack, False)[0])
        compiled.append(sample(base_stack, True)[0])
        eager_same.append(sample(base_stack, False, sdpa=swapped)[0])
    recompiles = {
        "lora_strength": sample([(style, 0.4)], True)[1],
        "lora_stack": sample([(lcm, 1.0), (style, 0.7)], True)[1],
        "prompt": sample(base_stack, True, text="a lighthouse at dusk")[1],
        "seed": sample(base_stack, True, seed=42)[1],
    }
    eager_s, compiled_s = statistics.median(eager), statistics.median(compiled)
    eager_same_s = statistics.median(eager_same)
    extern = extern_kernel_share(lambda: sample(base_stack, False, sdpa=swapped))
    return {
        "size": size, "steps": steps, "repeats": repeats,
        "eager_s": round(eager_s, 4), "compiled_s": round(compiled_s, 4),
        "speedup": round(statistics.median(e / c for e, c in zip(eager, compiled)), 3),
        "attention_in_compiled_model": "PyTorch SDPA (attention auto)" if swapped else "ComfyUI's",
        "eager_same_attention_s": round(eager_same_s, 4),
        "speedup_vs_eager_same_attention": round(statistics.median(e / c for e, c in zip(eager_same, compiled)), 3),
        "first_compiled_run_s": round(first, 2), "compile_s": round(first - compiled_s, 2),
        "graphs_first_compile": first_graphs, "graphs_after_change": recompiles,
        # Convolutions, matmuls and attention run the same library kernels compiled or not; only the rest
        # (norms, activations, adds, Python) can get faster, so 1 / extern_share (measured on eager with the
        # compiled model's attention) bounds the speed-up over eager with the same attention.
        "extern_kernel_share": round(extern, 3), "speedup_bound": round(1 / extern, 3) if extern else None,
    }


EXTERN_OPS = ("convolution", "conv2d", "addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "scaled_dot_product")


def extern_kernel_share(sample) -> float:
    """Share of an eager run's CPU time spent in the ops that inductor leaves to the same library kernels
    (oneDNN/MKL convolutions and matmuls, SDPA) instead of generating code for them."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        sample()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    extern = sum(e.self_cpu_time_total for e in events if any(op in e.key for op in EXTERN_OPS))
    return extern / total if total else 0.0


def _bench_full_size(size: int, repeats: int, backend: str, steps_list=(1, 2, 4, 8)) -> dict:
    import torch

    import bench
    import comfy.model_management as mm
    pack = comfy_env.pack_module()
    opt = pack.nodes.optimize
    device = mm.get_torch_device()
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    patcher, ref = bench.full_size("sd15", device, dtype)
    eager = bench.Paths(pack, patcher, ref, size // 8, 768, None, device)
    compiled_model = opt.compile_model(patcher, opt.CompileSettings(backend=backend))
    compiled = bench.Paths(pack, compiled_model, ref, size // 8, 768, None, device)
    rows = []
    for steps in steps_list:
        eager.ours(steps)                               # warm-up: load, allocator
        before = opt.compile_counter()
        with bench.Timer() as first:
            compiled.ours(steps)                        # compiles on the first step count only
        graphs = opt.compile_counter() - before
        e_times, c_times = [], []
        for _ in range(repeats):
            with bench.Timer() as t:
                eager.ours(steps)
            e_times.append(t.s)
            with bench.Timer() as t:
                compiled.ours(steps)
            c_times.append(t.s)
        e, c = statistics.median(e_times), statistics.median(c_times)
        rows.append({"steps": steps, "eager_s": round(e, 4), "compiled_s": round(c, 4),
                     "speedup": round(statistics.median(x / y for x, y in zip(e_times, c_times)), 3),
                     "first_compiled_call_s": round(first.s, 2), "graphs_compiled": graphs})
        print(f"  full SD1.5 {size}² {steps} steps: eager {e:.3f}s compiled {c:.3f}s "
              f"first call {first.s:.1f}s graphs {graphs}", flush=True)
    return {"unet": "full-size SD1.5, random weights", "size": size, "dtype": str(dtype).replace("torch.", ""),
            "backend": backend, "steps": rows}


def _offload_peak_vram(size: int = 512, steps: int = 4) -> dict:
    """Peak VRAM of a whole tiny-SD1.5 txt2img run with the default devices and with the Offload Policy
    node's text encoder and VAE on the CPU (CUDA only)."""
    import torch

    import comfy.model_management as mm
    import nodes
    opt_nodes = comfy_env.pack_module().nodes.optimize_nodes
    model, clip, vae = nodes.CheckpointLoaderSimple().load_checkpoint("tiny-sd15.safetensors")[:3]

    cuda = torch.cuda.is_available()   # without CUDA the run still goes through (a smoke test): no figure

    def one_run(text_encoder: str, vae_device: str) -> float | None:
        mm.unload_all_models()
        mm.soft_empty_cache()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        m, c, v = opt_nodes.LCMKitOffload().offload(model, clip, vae, text_encoder, vae_device, "default")["result"]
        pos, neg = (nodes.CLIPTextEncode().encode(c, t)[0] for t in ("a red fox in the snow", ""))
        latent = {"samples": torch.zeros(1, 4, size // 8, size // 8)}
        samples = nodes.common_ksampler(m, 1, steps, 1.0, "lcm", "simple", pos, neg, latent)[0]
        nodes.VAEDecode().decode(v, samples)
        if not cuda:
            return None
        torch.cuda.synchronize()
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)

    default = one_run("default", "default")
    offloaded = one_run("cpu", "cpu")
    return {"size": size, "steps": steps, "peak_vram_mib_default": default,
            "peak_vram_mib_text_encoder_and_vae_on_cpu": offloaded,
            "saved_mib": round(default - offloaded, 1) if cuda else None}


def run(report: dict, archs=("sd15",), size: int | None = None, steps: int = 4, repeats: int = 5,
        full_size: bool = False, backend: str = "inductor") -> dict:
    """Fill report["compile"] with compile-vs-eager figures for each architecture in `archs` (the tiny
    UNets), or with full_size, for the full-size SD1.5 UNet (and peak VRAM with and without offload)."""
    import torch
    if full_size:
        _boot(("sd15",))
        out = report.setdefault("compile_full_size", {})
        out["torch"] = torch.__version__
        out["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
        out["sd15"] = _bench_full_size(size or 512, repeats, backend)
        out["offload"] = (_offload_peak_vram() if torch.cuda.is_available()
                          else {"skipped": "peak VRAM needs a CUDA device"})
        return report
    _boot(archs)
    import comfy.model_management as mm
    out = report.setdefault("compile", {})
    out["device"] = str(mm.get_torch_device())
    out["torch"] = torch.__version__
    out["threads"] = torch.get_num_threads()
    out["load_average_at_start"] = round(os.getloadavg()[0], 2)  # shared CI cores make timings noisy
    for arch in archs:
        out[arch] = _bench_arch(arch, size or 256, steps, repeats)
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sdxl", action="store_true", help="also the tiny SDXL UNet (2.2 GB checkpoint, slow)")
    p.add_argument("--size", type=int, default=None, help="image size (default 256; 512 with --full-size)")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--full-size", action="store_true",
                   help="full-size SD1.5 UNet at 512² (--size), 1/2/4/8 steps; peak VRAM with/without offload on CUDA")
    p.add_argument("--backend", default="inductor", help="with --full-size: the compile backend (default inductor)")
    a = p.parse_args()
    report = run({}, archs=("sd15", "sdxl") if a.sdxl else ("sd15",), size=a.size, steps=a.steps,
                 repeats=a.repeats, full_size=a.full_size, backend=a.backend)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
