"""The example workflows: they load (UI format → API prompt with the server's /object_info widget order),
validate and run end to end on the tiny models through the real server, and ComfyUI lists them.

Model names in the examples are the common public file names; here they are links to the tiny models.
Latent sizes are capped at 128² (SDXL 256²) to keep CPU time low; nothing else is changed.
"""
from __future__ import annotations

import json
import urllib.parse
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support import browser as browser_support
from support.workflows import ui_to_api

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "example_workflows").glob("*.json"))
FIRST_RELEASE = sorted((REPO / "tests" / "fixtures").glob("workflow_*.json"))
PUBLIC_NAMES = {
    **browser_support.PUBLIC_MODEL_NAMES,
    "controlnet/control_v11p_sd15_canny.safetensors": "controlnet/tiny-sd15-controlnet.safetensors",
    "checkpoints/LCM_Dreamshaper_v7_4k.safetensors": "checkpoints/tiny-sd15-lcm.safetensors",
}
SDXL_NAMES = {
    "checkpoints/sd_xl_base_1.0.safetensors": "checkpoints/tiny-sdxl.safetensors",
    "loras/lcm-lora-sdxl.safetensors": "loras/tiny-sdxl-lcm-kohya.safetensors",
    "loras/pixel-art-xl.safetensors": "loras/tiny-sdxl-style-peft.safetensors",
}


def uses_sdxl(workflow: dict) -> bool:
    text = json.dumps(workflow)
    return any(Path(k).name in text for k in SDXL_NAMES)


@pytest.fixture(scope="module")
def public_models(comfy, base_dir):
    def link(names: dict):
        browser_support.link_models(base_dir, names)
    link(PUBLIC_NAMES)
    gradient = np.linspace(0, 255, 64 * 64 * 3).reshape(64, 64, 3).astype("uint8")
    Image.fromarray(gradient).save(base_dir / "input" / "example.png")
    return link


def cap_sizes(prompt: dict, cap: int) -> dict:
    for node in prompt.values():
        if node["class_type"] in ("EmptyLatentImage", "LCMKitSketch"):
            node["inputs"]["width"] = min(node["inputs"]["width"], cap)
            node["inputs"]["height"] = min(node["inputs"]["height"], cap)
    return prompt


def run_workflow(server, path: Path, public_models, base_dir):
    workflow = json.loads(path.read_text())
    sdxl = uses_sdxl(workflow)
    if sdxl:
        public_models(SDXL_NAMES)
    prompt = cap_sizes(ui_to_api(workflow, server.get("/object_info")), 128)
    hist = server.wait_history(server.queue(prompt, str(uuid.uuid4())), timeout=600)
    assert hist["status"]["status_str"] == "success", json.dumps(hist["status"], indent=1)[:3000]
    if any(n["class_type"] == "LCMKitLivePreview" for n in prompt.values()):
        # live workflows stream frames to the queuing browser (tests/test_live.py) and save nothing
        assert any("lcm_kit_live" in out for out in hist["outputs"].values())
        return
    images = [img for out in hist["outputs"].values() for img in out.get("images", []) if img["type"] == "output"]
    assert images, f"{path.name} saved no image"
    for img in images:
        assert (base_dir / "output" / img["subfolder"] / img["filename"]).exists()


def test_there_are_examples():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("path", [
    pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if uses_sdxl(json.loads(p.read_text())) else [])
    for p in EXAMPLES])
def test_example_runs_end_to_end(server, public_models, base_dir, path):
    run_workflow(server, path, public_models, base_dir)


@pytest.mark.parametrize("path", FIRST_RELEASE, ids=lambda p: p.stem)
def test_workflow_saved_with_first_release_still_runs(server, public_models, base_dir, path):
    run_workflow(server, path, public_models, base_dir)


def test_examples_are_listed_as_templates(server):
    listed = server.get("/api/workflow_templates")
    assert sorted(listed.get("lcm-kit", [])) == sorted(p.stem for p in EXAMPLES)
    first = EXAMPLES[0]
    served = server.get(f"/api/workflow_templates/lcm-kit/{urllib.parse.quote(first.name)}")
    assert served == json.loads(first.read_text())
    thumbnail = server.get(f"/api/workflow_templates/lcm-kit/{urllib.parse.quote(first.stem)}.jpg")
    assert thumbnail == first.with_suffix(".jpg").read_bytes()


def test_the_starter_comes_first_by_name():
    """The template browser shows a pack's examples by file name (frontends 1.32-1.58): the names are titles,
    numbered so that sorting by name puts the SD1.5 starter first."""
    assert EXAMPLES[0].stem == "1. LCM-LoRA text-to-image (SD1.5)"
    assert sorted(int(p.stem.split(".")[0]) for p in EXAMPLES) == list(range(1, len(EXAMPLES) + 1))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_has_a_square_thumbnail(path):
    with Image.open(path.with_suffix(".jpg")) as image:
        assert image.format == "JPEG" and image.size[0] == image.size[1] >= 256


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_model_file_an_example_names_says_where_to_get_it(path):
    """The frontend's missing-models dialog offers each file a loader node lists in `properties.models` (when its
    widget names it): the public file name, a download URL on Hugging Face and the models folder."""
    for node in json.loads(path.read_text())["nodes"]:
        files = [v for v in node.get("widgets_values") or [] if isinstance(v, str) and v.endswith(".safetensors")]
        entries = {m["name"]: m for m in node.get("properties", {}).get("models", [])}
        assert set(files) == set(entries), (node["type"], files, entries)
        for name, entry in entries.items():
            assert entry["url"].startswith("https://huggingface.co/") and "/resolve/main/" in entry["url"]
            assert entry["directory"] in ("checkpoints", "loras", "controlnet")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_prompt_nodes_say_which_prompt_they_are(path):
    """Two CLIP Text Encode nodes look alike on the canvas: each carries a title (positive / negative / type here)."""
    nodes = json.loads(path.read_text())["nodes"]
    prompts = [n for n in nodes if n["type"] == "CLIPTextEncode"]
    assert prompts and all(n.get("title") and n["title"] != "CLIP Text Encode (Prompt)" for n in prompts), \
        [n.get("title") for n in prompts]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_stand_on_their_own(path):
    """A shared workflow is read by people who never saw this repository: nothing in it points at our own notes."""
    text = json.dumps(json.loads(path.read_text())["nodes"]).lower()
    assert "tutorial" not in text and "issue #" not in text and "readme" not in text


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_explains_itself_in_a_note(path):
    notes = [n for n in json.loads(path.read_text())["nodes"] if n["type"] in ("Note", "MarkdownNote")]
    assert notes and len(notes[0]["widgets_values"][0]) > 60


def test_missing_model_file_names_the_file_and_its_folder(server, public_models):
    """A shared workflow naming a LoRA this user lacks: the validation message says which file and where."""
    import urllib.error
    workflow = json.loads(EXAMPLES[0].read_text())
    prompt = ui_to_api(workflow, server.get("/object_info"))
    loader = next(n for n in prompt.values() if n["class_type"] == "LCMKitLoraLoader")
    loader["inputs"]["lora_name"] = "lcm-lora-missing.safetensors"
    with pytest.raises(urllib.error.HTTPError) as info:
        server.queue(prompt, str(uuid.uuid4()))
    body = json.loads(info.value.read())
    details = json.dumps(body["node_errors"])
    assert "lcm-lora-missing.safetensors" in details and "loras folder" in details and "models" in details


def test_examples_are_what_make_examples_writes(comfy, pack):
    """The files are the generator's output (scripts/example_workflows.py, run by `make examples` on the pinned
    ComfyUI): when a node gains an input or a widget, this fails until the examples are regenerated, instead of
    shipping stale ones. (Other ComfyUIs give core's nodes other inputs; the examples load there all the same.)"""
    if pack.nodes.compat.comfyui_version() != (0, 3, 75):
        pytest.skip("the examples are generated on the pinned ComfyUI v0.3.75 (`make examples`)")
    import importlib.util
    spec = importlib.util.spec_from_file_location("lcm_kit_example_workflows", REPO / "scripts" / "example_workflows.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    stale = [name for name, build in generator.EXAMPLES.items()
             if (REPO / "example_workflows" / f"{name}.json").read_text() != json.dumps(build().to_json(), indent=1) + "\n"]
    assert stale == [], f"regenerate them with `make examples`: {stale}"
