"""`make bench`: LCM Kit's speed, side by side with core ComfyUI and diffusers, in one run.

    python3 scripts/testbed.py bench [--quick] [--full-size] [--repeats N] [--out FILE]

Sections (each a table; all figures also in bench-results/latest.json):
- steps table (the tutorial's 1 / 2 / 4 / 8 steps): time per image (sampling, latent → latent) of our
  LCM Sampler path, core's KSampler `lcm` path and a diffusers LCMScheduler loop, on the same UNet;
- sampler overhead: time per step outside the model call (the UNet is swapped for a stub that costs
  nothing, so what remains is each sampler's own work), ours vs core vs diffusers;
- the sections other modules add (`scripts/bench_*.py` with a `run(report, args)` function).

Every comparison is interleaved (ours, core, diffusers in each repeat, after a warm-up) and each ratio is
the median of per-repeat ratios, so machine noise cancels. Default: the tiny test models on CPU.
`--full-size` builds random-weight full-size SD1.5 (512²) and SDXL (768²) UNets (speed does not depend on
weight values), fp16 on a GPU when there is one.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import statistics
import sys
import time
import types
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent

import logging  # noqa: E402

from support import comfy_env, tiny_models  # noqa: E402

STEPS = (1, 2, 4, 8)
FULL_SD15_UNET = dict(tiny_models.SD15_UNET, num_res_blocks=[2, 2, 2, 2], channel_mult=[1, 2, 4, 4],
                      transformer_depth=[1, 1, 1, 1, 1, 1, 0, 0],
                      transformer_depth_output=[1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], image_size=64)
FULL_SDXL_UNET = dict(tiny_models.ARCHS["sdxl"].unet, channel_mult=[1, 2, 4], image_size=128)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


class Timer:
    def __enter__(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.s = time.perf_counter() - self.t0


# --------------------------------------------------------------------------------------------------
# The three paths under test
# --------------------------------------------------------------------------------------------------

class Paths:
    """Ours, core's and diffusers' sampling of one UNet, with the same inputs."""

    def __init__(self, pack, patcher, unet_diffusers, latent_hw: int, context_dim: int, adm: int | None, device):
        import comfy_extras.nodes_model_advanced as adv
        self.pack = pack
        self.model = patcher
        self.ours_model = pack.nodes.lcm_sampling.patch_lcm_sampling(patcher)
        self.core_model = adv.ModelSamplingDiscrete().patch(patcher, "lcm", False)[0]
        self.unet = unet_diffusers
        self.device = device
        g = torch.Generator().manual_seed(0)
        self.noise = torch.randn(1, 4, latent_hw, latent_hw, generator=g)
        ctx = torch.randn(1, 77, context_dim, generator=g)
        extra = {}
        if adm:
            extra = {"pooled_output": torch.randn(1, 1280, generator=g), "width": latent_hw * 8,
                     "height": latent_hw * 8, "crop_w": 0, "crop_h": 0, "target_width": latent_hw * 8,
                     "target_height": latent_hw * 8}
        self.cond = [[ctx, extra]]
        self.ctx = ctx
        self.adm = adm

    def ours(self, steps):
        import comfy.sample
        lcm = self.pack.nodes.lcm_sampling
        sigmas = lcm.lcm_sigmas(self.ours_model, steps)
        return comfy.sample.sample_custom(self.ours_model, self.noise, 1.0, lcm.lcm_sampler("lcm"), sigmas,
                                          self.cond, self.cond, torch.zeros_like(self.noise), disable_pbar=True,
                                          seed=1)

    def core(self, steps):
        import comfy.sample
        return comfy.sample.sample(self.core_model, self.noise, steps, 1.0, "lcm", "simple", self.cond, self.cond,
                                   torch.zeros_like(self.noise), disable_pbar=True, seed=1)

    def diffusers(self, steps):
        from diffusers import LCMScheduler
        sched = LCMScheduler()
        sched.set_timesteps(steps)
        dtype = next(self.unet.parameters()).dtype if isinstance(self.unet, torch.nn.Module) else torch.float32
        latents = self.noise.to(self.device, dtype)
        ctx = self.ctx.to(self.device, dtype)
        kw = {}
        if self.adm:
            hw = self.noise.shape[-1] * 8
            kw["added_cond_kwargs"] = {
                "text_embeds": self.cond[0][1]["pooled_output"].to(self.device, dtype),
                "time_ids": torch.tensor([[hw, hw, 0, 0, hw, hw]], device=self.device, dtype=dtype)}
        gen = torch.Generator(device=self.device).manual_seed(1)
        with torch.no_grad():
            for t in sched.timesteps:
                eps = self.unet(latents, t, encoder_hidden_states=ctx, **kw).sample
                latents = sched.step(eps, t, latents, generator=gen, return_dict=False)[0]
        return latents


def compare(paths: Paths, steps: int, repeats: int) -> dict:
    runs = {"ours": paths.ours, "core": paths.core, "diffusers": paths.diffusers}
    for fn in runs.values():  # warm-up: first-call costs (allocations, model load) stay out
        fn(steps)
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            with Timer() as t:
                fn(steps)
            times[name].append(t.s)
    row = {f"{k}_s": median(v) for k, v in times.items()}
    row["ours_vs_core"] = median([o / c for o, c in zip(times["ours"], times["core"])])
    row["ours_vs_diffusers"] = median([o / d for o, d in zip(times["ours"], times["diffusers"])])
    return row


class StubUNet(torch.nn.Module):
    """Costs (almost) nothing, so a run's time is the sampler's own work around the model call."""

    dtype = torch.float32

    def forward(self, x, *args, **kwargs):
        return x * 0.5


class StubDiffusersUNet:
    def __call__(self, x, t, **kwargs):
        return types.SimpleNamespace(sample=x * 0.5)


def sampler_overhead(pack, patcher, repeats: int, few: int = 2, many: int = 10) -> dict:
    """ms per step outside the model call (1×4×64×64 latent), as the marginal cost of a step:
    (T(many steps) − T(few steps)) / (many − few), so per-run costs (model load, conds) cancel."""
    stubbed = patcher.clone()
    stubbed.add_object_patch("diffusion_model", StubUNet())
    paths = Paths(pack, stubbed, StubDiffusersUNet(), 64, 768, None, torch.device("cpu"))
    runs = {"ours": paths.ours, "core": paths.core, "diffusers": paths.diffusers}
    for fn in runs.values():
        fn(many)
    per_step = {k: [] for k in runs}
    fixed = {k: [] for k in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            with Timer() as a:
                fn(few)
            with Timer() as b:
                fn(many)
            step = (b.s - a.s) / (many - few)
            per_step[name].append(step)
            fixed[name].append(a.s - few * step)
    row = {"latent": "1x4x64x64"}
    row.update({f"{k}_ms_per_step": median(v) * 1000 for k, v in per_step.items()})
    row.update({f"{k}_ms_per_run": median(v) * 1000 for k, v in fixed.items()})
    row["ours_vs_core"] = median([o / c for o, c in zip(per_step["ours"], per_step["core"])])
    row["ours_vs_diffusers"] = median([o / d for o, d in zip(per_step["ours"], per_step["diffusers"])])
    return row


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------

def tiny_sd15(device):
    import comfy.sd
    import folder_paths
    model = comfy.sd.load_checkpoint_guess_config(folder_paths.get_full_path("checkpoints", "tiny-sd15.safetensors"),
                                                  output_vae=False, output_clip=False)[0]
    sd = {k: v.float() for k, v in model.model.diffusion_model.state_dict().items()}
    return model, tiny_models.diffusers_unet("sd15", sd).to(device)


def full_size(arch: str, device, dtype):
    """Random-weight full-size UNet as a ComfyUI ModelPatcher + the same weights in diffusers form."""
    import comfy.model_management
    import comfy.model_patcher
    import comfy.supported_models
    cfg = FULL_SD15_UNET if arch == "sd15" else FULL_SDXL_UNET
    name = "SD15" if arch == "sd15" else "SDXL"
    tiny_models.ARCHS[f"full-{arch}"] = tiny_models.Arch(f"full-{arch}", name, cfg)
    unet = tiny_models.build_unet(f"full-{arch}", tag=f"full-{arch}")
    sd = unet.state_dict()
    model_config = getattr(comfy.supported_models, name)(cfg)
    model_config.set_inference_dtype(dtype, None)
    base = model_config.get_model({}, device="cpu")
    base.diffusion_model.load_state_dict(sd)
    base.diffusion_model.to(dtype)
    patcher = comfy.model_patcher.ModelPatcher(base, load_device=comfy.model_management.get_torch_device(),
                                               offload_device=comfy.model_management.unet_offload_device())
    ref = tiny_models.diffusers_unet(f"full-{arch}", sd).to(device, dtype)
    return patcher, ref


# --------------------------------------------------------------------------------------------------

def print_table(title: str, rows: list[dict], cols: list[str]) -> None:
    print(f"\n{title}")
    print(" | ".join(f"{c:>16}" for c in cols))
    print("-+-".join("-" * 16 for _ in cols))
    for r in rows:
        print(" | ".join(f"{r[c]:>16.3f}" if isinstance(r.get(c), float) else f"{str(r.get(c, '')):>16}"
                         for c in cols))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full-size", action="store_true", help="full-size SD1.5 (512²) and SDXL (768²) UNets")
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--size", type=int, default=None, help="image size for the steps table (default 256, full 512)")
    ap.add_argument("--archs", default="sd15,sdxl", help="with --full-size: which UNets (sd15, sdxl)")
    ap.add_argument("--only", nargs="+", choices=["steps", "overhead", "extras"], default=["steps", "overhead", "extras"],
                    help="run only these sections")
    ap.add_argument("--out", default=str(REPO / "bench-results" / "latest.json"))
    args = ap.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)

    testbed = Path(os.environ.get("LCM_KIT_TESTBED", REPO / ".testbed"))
    base = testbed / "bench-base"
    comfy_env.make_base_dir(base, {})
    use_gpu = args.full_size and torch.cuda.is_available()
    comfy_env.bootstrap(base, cpu=not use_gpu)
    comfy_env.make_base_dir(base, tiny_models.ensure("checkpoints/tiny-sd15.safetensors"))
    pack = comfy_env.pack_module()
    import comfy.model_management
    device = comfy.model_management.get_torch_device()
    report = {"machine": {"device": str(device), "gpu": torch.cuda.get_device_name() if use_gpu else None,
                          "torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count()},
              "repeats": repeats, "sections": {}}

    t_all = time.perf_counter()
    tiny_model, tiny_ref = tiny_sd15(torch.device("cpu"))

    # 1. the tutorial's steps table
    models = [("tiny SD1.5", tiny_model, tiny_ref, args.size or 256, 768, None)]
    if args.full_size:
        dtype = torch.float16 if use_gpu else torch.float32
        models = []
        if "sd15" in args.archs:
            m, r = full_size("sd15", device, dtype)
            models.append(("full SD1.5", m, r, args.size or 512, 768, None))
        if "sdxl" in args.archs:
            m, r = full_size("sdxl", device, dtype)
            models.append(("full SDXL", m, r, args.size or 768, 2048, 2816))
    steps_rows = []
    for label, patcher, ref, size, ctx_dim, adm in (models if "steps" in args.only else []):
        paths = Paths(pack, patcher, ref, size // 8, ctx_dim, adm, device)
        for steps in STEPS:
            row = {"model": label, "size": f"{size}x{size}", "steps": steps, **compare(paths, steps, repeats)}
            steps_rows.append(row)
            print(f"  {label} {size}² {steps} steps: ours {row['ours_s']:.3f}s core {row['core_s']:.3f}s "
                  f"diffusers {row['diffusers_s']:.3f}s", flush=True)
    report["sections"]["steps_table"] = steps_rows
    if steps_rows:
            print_table("Time per image, sampling only (s; median)", steps_rows,
                    ["model", "size", "steps", "ours_s", "core_s", "diffusers_s", "ours_vs_core", "ours_vs_diffusers"])

    # 2. per-step overhead outside the model call
    if "overhead" in args.only:
        over = sampler_overhead(pack, tiny_model, max(repeats, 5))
        report["sections"]["sampler_overhead"] = over
        print_table("Sampler overhead outside the model call (ms per step; goal: ours <= 1.0x core)", [over],
                    ["latent", "ours_ms_per_step", "core_ms_per_step", "diffusers_ms_per_step", "ours_vs_core",
                     "ours_vs_diffusers", "ours_ms_per_run", "core_ms_per_run"])

    # 3. sections contributed by other modules
    for path in sorted((REPO / "scripts").glob("bench_*.py")) if "extras" in args.only else []:
        mod = importlib.import_module(path.stem)
        if hasattr(mod, "run"):
            print(f"\n== {path.stem} ==", flush=True)
            params = inspect.signature(mod.run).parameters
            kw = {"repeats": repeats} if "repeats" in params else {}
            if "full_size" in params:
                kw["full_size"] = args.full_size
            if args.quick and "frames" in params:
                kw["frames"] = 3
            t0 = time.perf_counter()
            mod.run(report, **kw)
            print(f"({path.stem}: {time.perf_counter() - t0:.0f} s)", flush=True)

    report["total_s"] = round(time.perf_counter() - t_all, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print(f"\nwritten {out} ({report['total_s']} s)")
    return 0


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.ERROR)  # ComfyUI's import chatter (optional audio nodes)
    sys.exit(main())
