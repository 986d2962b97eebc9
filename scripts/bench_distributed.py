#!/usr/bin/env python3
"""Images per minute: one ComfyUI server vs a ComfyUI-Distributed master + one worker, on this machine.

    python3 scripts/testbed.py python scripts/bench_distributed.py [--images 12] [--size 128] [--steps 4]

Example 1 (SD1.5 + LCM-LoRA, the tiny test models) run N times:
  - 1 server, 1 torch thread: N prompts with N seeds, queued at once on one server;
  - 1 server, all cores' threads: the same on a server with one torch thread per core (what one process can do
    with the whole machine);
  - master + 1 worker, 1 torch thread each: N/2 runs of the same graph made distributed (Distributed Seed → the LCM
    Sampler's seed, Distributed Collector after VAE Decode), queued at once through POST /distributed/queue; each
    run gives 2 images (master's and the worker's).
All three run side by side (idle when not measured), each warmed up first (models loaded); the configurations take
turns (--repeats, medians reported); the clock runs from the first queue call to the last image. Each ratio is
against the 1-thread single server measured in the same run. The machine's load average is printed with them:
other processes on the cores change every figure. ComfyUI-Distributed comes
from the test bed (../shared/packs/, see scripts/testbed.py). Results: printed, and JSON in bench-results/.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from support import comfy_env, distributed

REPO = Path(__file__).resolve().parent.parent

MODELS = {"checkpoints/v1-5-pruned-emaonly.safetensors": "checkpoints/tiny-sd15.safetensors",
          "loras/lcm-lora-sdv1-5.safetensors": "loras/tiny-sd15-lcm-kohya.safetensors"}


def with_seed(prompt: dict, seed: int) -> dict:
    g = json.loads(json.dumps(prompt))
    sampler = distributed.node_id(g, "LCMKitSampler")
    if isinstance(g[sampler]["inputs"]["seed"], list):     # made distributed: the Distributed Seed holds it
        g[g[sampler]["inputs"]["seed"][0]]["inputs"]["seed"] = seed
    else:
        g[sampler]["inputs"]["seed"] = seed
    return g


def timed(queue_one, runs: int, srv: comfy_env.ComfyServer, save: str) -> tuple[float, int]:
    """Queue `runs` prompts at once (queue_one(i) -> prompt id), wait for all: (seconds, images saved)."""
    start = time.perf_counter()
    ids = [queue_one(i) for i in range(runs)]
    images = 0
    for prompt_id in ids:
        hist = srv.wait_history(prompt_id, timeout=1800)
        if hist["status"]["status_str"] != "success":
            raise RuntimeError(f"a run failed: {json.dumps(hist['status'])[:2000]}")
        images += len(distributed.saved_images(srv, hist, save))
    return time.perf_counter() - start, images


def single_server(srv: comfy_env.ComfyServer, prompt: dict, n: int, seed: int) -> tuple[float, int]:
    """n prompts with seeds seed, seed + 1, … (new seeds each time: ComfyUI would serve a repeat from its cache)."""
    client = str(uuid.uuid4())
    return timed(lambda i: srv.queue(with_seed(prompt, seed + i), client), n, srv,
                 distributed.node_id(prompt, "SaveImage"))


def master_and_worker(cluster: distributed.Cluster, prompt: dict, n: int, seed: int) -> tuple[float, int]:
    """n/2 distributed runs: the master renders seed, seed + 2, …, the worker seed + 1, seed + 3, …"""
    g = distributed.made_distributed(prompt)
    client = str(uuid.uuid4())
    return timed(lambda i: cluster.queue(with_seed(g, seed + 2 * i), client, ["w1"])["prompt_id"],
                 (n + 1) // 2, cluster.master, distributed.node_id(g, "SaveImage"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=12, help="images per configuration and repeat (default 12)")
    ap.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    ap.add_argument("--steps", type=int, default=4, help="LCM steps (default 4)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats; medians are reported (default 3)")
    args = ap.parse_args()
    if distributed.pack_folder() is None:
        print(distributed.missing_reason(), file=sys.stderr)
        return 2
    cores = len(os.sched_getaffinity(0))
    configs = [("1 server", "1"), ("master + 1 worker", "1 + 1"), ("1 server", str(cores))]
    times: dict[int, list[float]] = {i: [] for i in range(len(configs))}
    counts: dict[int, int] = {}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        root = Path(tmp)
        # Three processes, started together; an idle one costs nothing. The 1-thread single server is the master
        # itself (a graph without Distributed nodes runs on the master only).
        cluster = distributed.Cluster(root / "cluster", {"master": MODELS, "w1": MODELS}, threads=1)
        wide_base = comfy_env.make_base_dir(root / "wide", {})
        distributed.link_models(wide_base, MODELS)
        wide = comfy_env.ComfyServer(wide_base, root / "wide.log", threads=cores).launch()
        try:
            cluster.start()
            wide.wait_ready(timeout=300)
            prompt = distributed.example_1(cluster.master.get("/object_info"), args.size, args.steps, seed=0)
            cluster.run(with_seed(distributed.made_distributed(prompt), 0), ["w1"])     # warm-up: master + worker
            wide.wait_history(wide.queue(with_seed(prompt, 0), str(uuid.uuid4())))     # warm-up
            runs = [lambda seed: single_server(cluster.master, prompt, args.images, seed),
                    lambda seed: master_and_worker(cluster, prompt, args.images, seed),
                    lambda seed: single_server(wide, prompt, args.images, seed)]
            for repeat in range(args.repeats):
                for i, run in enumerate(runs):
                    seconds, counts[i] = run(10_000 * (repeat + 1) + 1_000 * i)
                    times[i].append(seconds)
                    loads.append(os.getloadavg()[0])
        finally:
            cluster.stop()
            wide.stop()
    per_min = {i: counts[i] / statistics.median(times[i]) * 60 for i in times}
    print(f"\nExample 1 (tiny SD1.5 + LCM-LoRA), {args.size}², {args.steps} steps, {args.images} images per "
          f"configuration, medians of {args.repeats} interleaved repeats; {cores} cores, --cpu; 1-min load average "
          f"{min(loads):.1f}-{max(loads):.1f} (other processes on this machine count)")
    print(f"{'configuration':<20} {'torch threads':>13} {'images':>6} {'seconds':>8} {'images/min':>10} {'ratio':>6}")
    results = []
    for i, (name, threads) in enumerate(configs):
        seconds = statistics.median(times[i])
        ratio = per_min[i] / per_min[0]
        print(f"{name:<20} {threads:>13} {counts[i]:>6} {seconds:>8.1f} {per_min[i]:>10.1f} {ratio:>6.2f}")
        results.append({"configuration": name, "torch_threads": threads, "images": counts[i],
                        "seconds": [round(t, 2) for t in times[i]], "images_per_min": round(per_min[i], 2),
                        "ratio": round(ratio, 3)})
    out = REPO / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "distributed.json").write_text(json.dumps({"size": args.size, "steps": args.steps, "cores": cores,
                                                      "load_average": loads, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
