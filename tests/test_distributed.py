"""LCM Kit under ComfyUI-Distributed, with real workers: a master and two workers, each `main.py --cpu` with its own
port, base directory and models folder, one torch thread each (support/distributed.py).

What a user of both packs relies on: the examples made distributed the way ComfyUI-Distributed's README says
(Distributed Seed → the LCM Sampler's seed, Distributed Collector after VAE Decode) give one image per participant,
each the image a single server gives for that participant's seed; `auto` and the LoRA stack resolve files in each
worker's own models folder, and a worker without a fitting LCM-LoRA fails with LCM Kit's message, which the master
reports; Live Preview frames reach only the browser that queued on the master; a worker that dies mid-run costs
only its image, and the next run works. Skipped when the test bed has no ComfyUI-Distributed (../shared/packs/).
"""
from __future__ import annotations

import json
import urllib.error
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support import distributed
from support.comfy_env import WebSocketListener
from support.distributed import made_distributed, node_id

if distributed.pack_folder() is None:
    pytest.skip(distributed.missing_reason(), allow_module_level=True)
pytestmark = pytest.mark.server

SEED = 1000
LCM = "loras/lcm-lora-sdv1-5.safetensors"
# The master and w1 hold the example's files; w2's models folder holds other LoRA files: the same LCM-LoRA also
# under the name diffusers' Hub download gives it (PEFT layout), and a style LoRA of the same name in another layout.
MODELS = {
    "master": {"checkpoints/v1-5-pruned-emaonly.safetensors": "checkpoints/tiny-sd15.safetensors",
               LCM: "loras/tiny-sd15-lcm-kohya.safetensors",
               "loras/style.safetensors": "loras/tiny-sd15-style-kohya.safetensors"},
}
MODELS["w1"] = dict(MODELS["master"])
MODELS["w2"] = {"checkpoints/v1-5-pruned-emaonly.safetensors": "checkpoints/tiny-sd15.safetensors",
                LCM: "loras/tiny-sd15-lcm-kohya.safetensors",
                "loras/sd15/pytorch_lora_weights.safetensors": "loras/tiny-sd15-lcm-peft.safetensors",
                "loras/style.safetensors": "loras/tiny-sd15-style-peft.safetensors"}
W2_LCM_LORAS = [LCM, "loras/sd15/pytorch_lora_weights.safetensors"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = distributed.Cluster(tmp_path_factory.mktemp("distributed"), MODELS)
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture(scope="module")
def example_1(cluster) -> dict:
    """Example 1 as the frontend queues it, at 64² and 2 steps."""
    return distributed.example_1(cluster.master.get("/object_info"), size=64, steps=2, seed=SEED)


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def single_server_image(cluster, participant: str, prompt: dict, seed: int) -> np.ndarray:
    """`prompt` (no Distributed node) run on that participant's server alone with `seed`: its saved image."""
    srv = cluster.servers[participant]
    g = json.loads(json.dumps(prompt))
    g[node_id(g, "LCMKitSampler")]["inputs"]["seed"] = seed
    hist = srv.wait_history(srv.queue(g, str(uuid.uuid4())))
    assert hist["status"]["status_str"] == "success", json.dumps(hist["status"])[:3000]
    (path,) = distributed.saved_images(srv, hist, node_id(g, "SaveImage"))
    return pixels(path)


def assert_each_participant_equals_its_single_server_run(cluster, prompt: dict, hist: dict, workers: list[str]):
    assert hist["status"]["status_str"] == "success", json.dumps(hist["status"])[:3000]
    files = distributed.saved_images(cluster.master, hist, node_id(prompt, "SaveImage"))
    participants = ["master", *workers]
    assert len(files) == len(participants), f"one image per participant {participants}, got {len(files)}"
    seeds = distributed.participant_seeds(SEED, workers)
    images = [pixels(f) for f in files]
    for participant, seed, image in zip(participants, seeds, images):
        expected = single_server_image(cluster, participant, prompt, seed)
        assert np.array_equal(image, expected), f"{participant}'s image (seed {seed}) is not its single-server image"
    assert not np.array_equal(images[0], images[1]), "the participants' seeds differ, so must their images"


def test_example_1_gives_one_image_per_participant_each_its_single_server_image(cluster, example_1):
    hist = cluster.run(made_distributed(example_1), ["w1", "w2"])
    assert_each_participant_equals_its_single_server_run(cluster, example_1, hist, ["w1", "w2"])


@pytest.fixture(scope="module")
def auto_stack(example_1) -> dict:
    """Example 1 with lora_name auto, then a LoRA Stack (style.safetensors) applied by Apply LoRA Stack."""
    g = json.loads(json.dumps(example_1))
    loader = node_id(g, "LCMKitLoraLoader")
    g[loader]["inputs"]["lora_name"] = "auto"
    rows = {f"{k}_{i}": v for i in range(1, 5) for k, v in
            (("lora_name", "style.safetensors" if i == 1 else "None"), ("strength_model", 0.8), ("strength_clip", 0.8))}
    g["stack"] = {"class_type": "LCMKitLoraStack", "inputs": rows}
    g["apply"] = {"class_type": "LCMKitApplyLoraStack", "inputs": {
        "model": [loader, 0], "clip": [loader, 1], "lora_stack": ["stack", 0]}}
    for n in g.values():
        for key in ("model", "clip"):
            if n["inputs"].get(key) == [loader, 0 if key == "model" else 1] and n is not g["apply"]:
                n["inputs"][key] = ["apply", 0 if key == "model" else 1]
    return g


def test_auto_and_the_lora_stack_resolve_in_each_workers_own_models_folder(cluster, auto_stack):
    hist = cluster.run(made_distributed(auto_stack), ["w1", "w2"])
    assert_each_participant_equals_its_single_server_run(cluster, auto_stack, hist, ["w1", "w2"])


def latest_history(srv) -> dict:
    entries = list(srv.get("/history").values())
    return entries[-1]


def test_a_worker_without_a_fitting_lcm_lora_fails_with_the_packs_message_and_the_master_reports_it(
        cluster, example_1, auto_stack):
    w2 = cluster.servers["w2"]
    hidden = w2.base / "hidden-loras"
    hidden.mkdir(exist_ok=True)
    moved = [(w2.base / "models" / rel, hidden / Path(rel).name) for rel in W2_LCM_LORAS]
    for src, dst in moved:
        src.rename(dst)
    try:
        # auto: the worker's run fails (the same graph that ran there before: the loader sees the folder change);
        # the master's Collector gives up on the worker after its worker timeout and keeps its own image.
        hist = cluster.run(made_distributed(auto_stack), ["w2"])
        assert hist["status"]["status_str"] == "success", json.dumps(hist["status"])[:3000]
        assert len(distributed.saved_images(cluster.master, hist, node_id(auto_stack, "SaveImage"))) == 1
        worker_run = latest_history(w2)
        assert worker_run["status"]["status_str"] == "error"
        error = next(m[1] for m in worker_run["status"]["messages"] if m[0] == "execution_error")
        assert error["node_type"] == "LCMKitLoraLoader"
        assert "lora_name auto: no LCM-LoRA for SD1.5" in error["exception_message"]
        assert "Still waiting for workers: ['w2']" in cluster.log()
        remote_log = cluster.master.get("/distributed/remote_worker_log/w2?lines=3000")
        assert "lora_name auto: no LCM-LoRA for SD1.5" in json.dumps(remote_log)

        # A file named in the workflow that the worker lacks: the worker refuses the prompt with the pack's
        # message, and the master's /distributed/queue answers with it.
        with pytest.raises(urllib.error.HTTPError) as refused:
            cluster.queue(made_distributed(example_1), str(uuid.uuid4()), ["w2"])
        body = refused.value.read().decode()
        assert refused.value.code == 500
        assert "lcm-lora-sdv1-5.safetensors" in body and "is not on disk in the loras folder" in body, body
    finally:
        for src, dst in moved:
            dst.rename(src)


def frames(ws: WebSocketListener, prompt_id: str | None = None) -> list[dict]:
    return [f for f in ws.events("lcm_kit.live_frame") if prompt_id is None or f["prompt_id"] == prompt_id]


def test_live_preview_frames_reach_only_the_browser_that_queued_on_the_master(cluster, example_1):
    g = made_distributed(example_1)
    g["live"] = {"class_type": "LCMKitLivePreview", "inputs": {"images": ["collector", 0], "format": "PNG",
                                                               "max_size": 64}}
    queuer = str(uuid.uuid4())
    w1 = cluster.servers["w1"]
    with WebSocketListener(cluster.master, queuer) as browser, WebSocketListener(cluster.master) as other, \
            WebSocketListener(w1, queuer) as on_worker, WebSocketListener(w1) as worker_page:
        prompt_id = cluster.queue(g, queuer, ["w1", "w2"])["prompt_id"]
        browser.wait_event("execution_success", prompt_id)
        assert len(frames(browser, prompt_id)) == 3, "one frame per participant's image"
        assert len(browser.binary) >= 3
        # Distributed sends a worker only what its Collector needs, with the queuing browser's client id: the
        # worker ran its part (its events reach that id there) without the Live Preview.
        on_worker.wait_for(lambda: on_worker.events("execution_success"), what="the worker's run")
        assert frames(on_worker) == [] and frames(other) == [] and frames(worker_page) == []
        assert other.binary == [] and worker_page.binary == []

        # Live Preview run on a worker for a client that is not connected there: no error, nothing sent.
        plain = json.loads(json.dumps(example_1))
        plain[node_id(plain, "SaveImage")] = {"class_type": "LCMKitLivePreview", "inputs": {
            "images": [node_id(plain, "VAEDecode"), 0], "format": "JPEG", "max_size": 64}}
        hist = w1.wait_history(w1.queue(plain, str(uuid.uuid4())))
        assert hist["status"]["status_str"] == "success"
        assert any(out.get("lcm_kit_live") for out in hist["outputs"].values())
        assert frames(worker_page) == [] and worker_page.binary == []


def test_a_worker_stopped_mid_run_costs_only_its_image_and_the_next_run_works(cluster, example_1):
    """It kills w1, then starts it again (same port, base directory and models) for the tests that follow."""
    try:
        _kill_a_worker_mid_run_then_run_again(cluster, example_1)
    finally:
        w1 = cluster.servers["w1"]
        if w1.proc.poll() is not None:
            w1.log.close()
            w1.start(timeout=300)


def _kill_a_worker_mid_run_then_run_again(cluster, example_1):
    g = made_distributed(example_1)
    sampler = node_id(g, "LCMKitSampler")
    g[sampler]["inputs"]["steps"] = 8
    queuer = str(uuid.uuid4())
    w1 = cluster.servers["w1"]
    with WebSocketListener(w1, queuer) as on_worker:
        prompt_id = cluster.queue(g, queuer, ["w1"])["prompt_id"]
        on_worker.wait_for(lambda: on_worker.events("progress"), what="the worker's first sampling step")
        w1.proc.kill()
        w1.proc.wait()
    hist = cluster.master.wait_history(prompt_id)
    assert hist["status"]["status_str"] == "success"
    assert len(distributed.saved_images(cluster.master, hist, node_id(g, "SaveImage"))) == 1
    assert "Still waiting for workers: ['w1']" in cluster.log()

    # The next run: the master skips the worker it cannot reach and gives its own image, the same as ever.
    hist = cluster.run(made_distributed(example_1), ["w1"])
    assert "Worker w1 (w1) is offline, skipping" in cluster.log()
    (path,) = distributed.saved_images(cluster.master, hist, node_id(example_1, "SaveImage"))
    assert np.array_equal(pixels(path), single_server_image(cluster, "master", example_1, SEED))
