"""LCM Kit beside ComfyUI-Distributed: a master and local workers, each a real ComfyUI server of its own.

ComfyUI-Distributed (robertvoy/ComfyUI-Distributed) comes from the test bed (scripts/testbed.py puts its folder in
LCM_KIT_PACK_COMFYUI_DISTRIBUTED, or why it is missing in LCM_KIT_PACK_COMFYUI_DISTRIBUTED_SKIP). Each participant
is `main.py --cpu` on 127.0.0.1 (comfy_env.ComfyServer) with its own port and base directory (its own models
folder and its own copy of both packs). The workers are added the way the pack's docs/worker-setup-guides.md says
for workers started by hand ("Remote workers": host and port, `--listen --enable-cors-header`), through the same
master routes its Distributed panel calls (`/distributed/config/update_worker`); runs are queued with
`POST /distributed/queue` (docs/comfyui-distributed-api.md), which its frontend uses for the Queue button too.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from . import comfy_env
from .browser import link_models
from .workflows import ui_to_api

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_1 = REPO / "example_workflows" / "1. LCM-LoRA text-to-image (SD1.5).json"

PACK_ENV = "LCM_KIT_PACK_COMFYUI_DISTRIBUTED"
# Seconds the master's Distributed Collector waits for a silent worker before it gives up on it (its
# `worker_timeout_seconds` setting, 60 by default). While a worker still runs the prompt (its queue is not
# empty) the collector keeps waiting, so a short value only shortens the wait for a worker that failed or died.
WORKER_TIMEOUT_S = 3


def pack_folder() -> Path | None:
    folder = os.environ.get(PACK_ENV)
    return Path(folder) if folder else None


def missing_reason() -> str:
    return os.environ.get(f"{PACK_ENV}_SKIP") or "ComfyUI-Distributed is not in the test bed (run through " \
                                                  "scripts/testbed.py, which installs it from ../shared/packs/)"


class Cluster:
    """A master and workers: `models` maps each participant's name ("master", "w1", …) to its models folder as
    {name under models/: tiny model}. Every process gets `threads` torch threads (unpinned)."""

    def __init__(self, root: Path, models: dict[str, dict[str, str]], threads: int = 1):
        self.pack = pack_folder()
        if self.pack is None:
            raise RuntimeError(missing_reason())
        self.servers: dict[str, comfy_env.ComfyServer] = {}
        for name, names in models.items():
            base = root / name
            comfy_env.make_base_dir(base, {})
            link_models(base, names)
            comfy_env.install_pack(base, self.pack)
            self.servers[name] = comfy_env.ComfyServer(base, root / f"{name}.log", threads=threads,
                                                       extra_args=["--enable-cors-header"])

    @property
    def master(self) -> comfy_env.ComfyServer:
        return self.servers["master"]

    @property
    def workers(self) -> list[str]:
        return [n for n in self.servers if n != "master"]

    def start(self) -> "Cluster":
        for srv in self.servers.values():   # all at once: start-up is mostly imports
            srv.launch()
        for srv in self.servers.values():
            srv.wait_ready(timeout=300)   # three start-ups share the cores
        for name in self.workers:
            self.add_worker(name)
        self.master.post("/distributed/config/update_setting", {"key": "worker_timeout_seconds",
                                                               "value": WORKER_TIMEOUT_S})
        return self

    def add_worker(self, name: str) -> None:
        """What the Distributed panel's "Add Worker" → Remote → Save sends: name, host, port, enabled."""
        srv = self.servers[name]
        self.master.post("/distributed/config/update_worker", {
            "worker_id": name, "name": name, "type": "remote", "host": "127.0.0.1", "port": srv.port,
            "cuda_device": None, "enabled": True})

    def stop(self) -> None:
        for srv in self.servers.values():   # all at once, then wait for each
            if srv.proc and srv.proc.poll() is None:
                srv.proc.terminate()
        for srv in self.servers.values():
            srv.stop()

    def log(self, name: str = "master") -> str:
        """What that participant's log shows, from ComfyUI's in-memory log as Distributed serves it
        (`/distributed/local_log`; the file written by the process may lag behind)."""
        return self.servers[name].get("/distributed/local_log?lines=3000")["content"]

    def queue(self, prompt: dict, client_id: str, workers: list[str]) -> dict:
        """POST /distributed/queue on the master with these workers enabled; its JSON answer (prompt_id, …)."""
        return self.master.post("/distributed/queue", {"prompt": prompt, "client_id": client_id,
                                                       "enabled_worker_ids": workers})

    def run(self, prompt: dict, workers: list[str], client_id: str | None = None, timeout: float = 300) -> dict:
        """Queue on the master with `workers` and wait: the master's history entry of the run."""
        answer = self.queue(prompt, client_id or str(uuid.uuid4()), workers)
        return self.master.wait_history(answer["prompt_id"], timeout=timeout)


def example_1(object_info: dict, size: int, steps: int, seed: int) -> dict:
    """Example 1 as the frontend queues it (API format), at `size`² with `steps` steps and `seed`."""
    prompt = ui_to_api(json.loads(EXAMPLE_1.read_text()), object_info)
    for node in prompt.values():
        if node["class_type"] == "EmptyLatentImage":
            node["inputs"].update(width=size, height=size)
        if node["class_type"] == "LCMKitSampler":
            node["inputs"].update(seed=seed, steps=steps)
    return prompt


def node_id(prompt: dict, class_type: str) -> str:
    return next(i for i, n in prompt.items() if n["class_type"] == class_type)


def made_distributed(prompt: dict) -> dict:
    """A graph with one LCM Sampler and one VAE Decode, made distributed (`distribute`)."""
    return distribute(prompt, seed=(node_id(prompt, "LCMKitSampler"), "seed"), images=node_id(prompt, "VAEDecode"))


def distribute(prompt: dict, seed: tuple[str, str], images: str, collector_id: str = "collector",
               seed_id: str = "dseed") -> dict:
    """`prompt` made distributed the way the pack's README says: a Distributed Seed feeds the input `seed` =
    (node id, input name) with that input's value, and a Distributed Collector takes node `images`'s IMAGE; every
    input that read `images` reads the collector instead."""
    g = json.loads(json.dumps(prompt))
    node, name = seed
    g[seed_id] = {"class_type": "DistributedSeed", "inputs": {"seed": g[node]["inputs"][name]}}
    g[node]["inputs"][name] = [seed_id, 0]
    for n in g.values():
        for key, value in n["inputs"].items():
            if value == [images, 0]:
                n["inputs"][key] = [collector_id, 0]
    g[collector_id] = {"class_type": "DistributedCollector", "inputs": {"images": [images, 0], "load_balance": False}}
    return g


def participant_seeds(seed: int, workers: list[str]) -> list[int]:
    """The seed each participant gets from Distributed Seed: the master `seed`, the i-th enabled worker seed + i + 1
    (nodes/utilities.py DistributedSeed)."""
    return [seed] + [seed + i + 1 for i in range(len(workers))]


def saved_images(srv: comfy_env.ComfyServer, history: dict, node: str) -> list[Path]:
    """The files a SaveImage node of a finished prompt wrote on `srv`, in order."""
    return [srv.base / "output" / img["subfolder"] / img["filename"]
            for img in history["outputs"].get(node, {}).get("images", [])]
