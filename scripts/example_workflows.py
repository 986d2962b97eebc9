"""Writes example_workflows/*.json (UI format, as ComfyUI's frontend saves it) from the short graph
descriptions below, with widget order taken from the node classes themselves, so the files always match
the nodes. `make examples` regenerates them; the tests load and run every file.

Model names are the common public file names; the tests link them to the tiny models. Each loader node lists its
file's download and folder (`properties.models`); layouts are folded into two rows to fit a 1600 x 1000 window. It
also writes locales/en/nodeDefs.json (display names); scripts/example_thumbnails.py draws the pictures.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

import logging  # noqa: E402

from support import comfy_env  # noqa: E402
from support.workflows import has_control_value, input_specs, is_widget  # noqa: E402

OUT = REPO / "example_workflows"

SD15_CKPT = "v1-5-pruned-emaonly.safetensors"
SD15_LCM_LORA = "lcm-lora-sdv1-5.safetensors"
SDXL_CKPT = "sd_xl_base_1.0.safetensors"
SDXL_LCM_LORA = "lcm-lora-sdxl.safetensors"
SDXL_STYLE_LORA = "pixel-art-xl.safetensors"
SD15_CONTROLNET = "control_v11p_sd15_canny.safetensors"
LCM_DREAMSHAPER = "LCM_Dreamshaper_v7_4k.safetensors"
PROMPT = "a photo of a red fox in a snowy forest, golden hour, highly detailed"

# Where each public file comes from and which models folder it goes in: the frontend's missing-models dialog reads
# these from a loader node's `properties.models` when its widget names the file (frontend 1.32 and 1.58 alike). The
# download URL is the file itself (the dialog downloads it under `name`); its repository page is the URL minus
# "/resolve/main/…".
MODEL_SOURCES = {
    SD15_CKPT: ("checkpoints", "https://huggingface.co/Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/"
                               "v1-5-pruned-emaonly.safetensors"),
    SD15_LCM_LORA: ("loras", "https://huggingface.co/latent-consistency/lcm-lora-sdv1-5/resolve/main/"
                             "pytorch_lora_weights.safetensors"),
    SDXL_CKPT: ("checkpoints", "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/"
                               "sd_xl_base_1.0.safetensors"),
    SDXL_LCM_LORA: ("loras", "https://huggingface.co/latent-consistency/lcm-lora-sdxl/resolve/main/"
                             "pytorch_lora_weights.safetensors"),
    SDXL_STYLE_LORA: ("loras", "https://huggingface.co/nerijs/pixel-art-xl/resolve/main/pixel-art-xl.safetensors"),
    SD15_CONTROLNET: ("controlnet", "https://huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/"
                                    "main/control_v11p_sd15_canny_fp16.safetensors"),
    LCM_DREAMSHAPER: ("checkpoints", "https://huggingface.co/SimianLuo/LCM_Dreamshaper_v7/resolve/main/"
                                     "LCM_Dreamshaper_v7_4k.safetensors"),
}

# Layout: nodes in columns by depth, the columns folded into two rows, so that a 1600 x 1000 window shows the whole
# graph at 80 % zoom or more (the frontend draws no widget text below ~60 %). Sizes are graph units.
WINDOW = (1600, 1000)
# What frontend 1.32's menus leave of that window to the graph (x0, y0, x1, y1: the banner, tabs and Run bar above,
# the sidebar left), and the minimap's corner, which no node may sit under.
CANVAS = (70, 140, 1580, 990)
MINIMAP = (1330, 740, 1600, 1000)
MIN_SCALE = 0.8
GAP, ROW_GAP = 30, 50
TITLE_HEIGHT = 30                   # the frontend draws a node's title bar above its pos
NOTE_HEIGHT = 110
SIZES = {"CLIPTextEncode": (400, 150),    # room for the prompt text box
         "LCMKitLivePreview": (420, 470),  # room for the frame
         "LCMKitSketch": (360, 430)}       # what js/sketch.js makes it for a 4:3 canvas: 3 widgets, tools, canvas


def model_entries(values) -> list[dict]:
    """`properties.models` of a node: the public files its widget values name."""
    return [{"name": v, "url": MODEL_SOURCES[v][1], "directory": MODEL_SOURCES[v][0]}
            for v in values if isinstance(v, str) and v in MODEL_SOURCES]


def view_for(bounds: tuple[float, float, float, float]) -> dict:
    """extra.ds (the view the frontend restores on load) that shows `bounds` whole in CANVAS, as large as fits up
    to 100 %."""
    x0, y0, x1, y1 = bounds
    cx0, cy0, cx1, cy1 = CANVAS
    scale = round(min(1.0, (cx1 - cx0) / (x1 - x0), (cy1 - cy0) / (y1 - y0)) - 0.0005, 3)
    return {"scale": scale, "offset": [round(cx0 / scale - x0, 1), round(cy0 / scale - y0, 1)]}


def on_screen(rect, ds: dict) -> tuple[float, float, float, float]:
    """Where a graph rectangle (x0, y0, x1, y1) lands in the window under the view `ds`."""
    (ox, oy), k = ds["offset"], ds["scale"]
    return ((rect[0] + ox) * k, (rect[1] + oy) * k, (rect[2] + ox) * k, (rect[3] + oy) * k)


def overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class Out:
    def __init__(self, node: "Node", slot: int):
        self.node, self.slot = node, slot


class Node:
    def __init__(self, wf: "Workflow", nid: int, type_: str, info: dict, values: dict, links: dict,
                 title: str | None = None):
        self.wf, self.id, self.type, self.info, self.values, self.links = wf, nid, type_, info, values, links
        self.title = title
        self.size: tuple[int, int] | None = None   # instead of SIZES / the default for its type
        self.link_ids: dict[str, int] = {}

    def __getitem__(self, slot: int) -> Out:
        return Out(self, slot)

    def depth(self) -> int:
        return 1 + max((o.node.depth() for o in self.links.values()), default=-1)


class Workflow:
    def __init__(self, note: str):
        import nodes
        self.classes = nodes.NODE_CLASS_MAPPINGS
        self.nodes: list[Node] = []
        self.note = note
        self.aside: Node | None = None   # a node shown right of both rows (the live frame), not in a column

    def info(self, type_: str) -> dict:
        cls = self.classes[type_]
        return {"input": cls.INPUT_TYPES(), "output": list(cls.RETURN_TYPES),
                "output_name": list(getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES)}

    def node(self, type_: str, title: str | None = None, **kw) -> Node:
        info = self.info(type_)
        links = {k: v for k, v in kw.items() if isinstance(v, Out)}
        values = {k: v for k, v in kw.items() if not isinstance(v, Out)}
        known = {name for name, _, _ in input_specs(info)}
        unknown = set(kw) - known
        if unknown:
            raise KeyError(f"{type_} has no input(s) {sorted(unknown)}")
        n = Node(self, len(self.nodes) + 1, type_, info, values, links, title)
        self.nodes.append(n)
        return n

    def to_json(self) -> dict:
        link_rows, consumers = [], {}
        for n in self.nodes:
            for name, out in n.links.items():
                lid = len(link_rows) + 1
                kind = out.node.info["output"][out.slot]
                link_rows.append([lid, out.node.id, out.slot, n.id, None, kind])
                consumers.setdefault((out.node.id, out.slot), []).append(lid)
                n.link_ids[name] = lid
        ui_nodes = []
        note_id = len(self.nodes) + 1
        for order, n in enumerate(sorted(self.nodes, key=lambda x: (x.depth(), x.id))):
            widgets, inputs = [], []
            for name, kind, opts in input_specs(n.info):
                if name in n.link_ids:
                    lid = n.link_ids[name]
                    slot = {"name": name, "type": kind if isinstance(kind, str) else "COMBO", "link": lid}
                    if is_widget(kind, opts):
                        slot["widget"] = {"name": name}
                    inputs.append(slot)
                if is_widget(kind, opts):
                    if name in n.values:
                        value = n.values[name]
                    elif "default" in opts:
                        value = opts["default"]
                    elif isinstance(kind, list):
                        value = kind[0] if kind else None
                    else:
                        raise KeyError(f"{n.type}.{name} needs a value")
                    widgets.append(value)
                    if has_control_value(name, kind, opts):
                        widgets.append("fixed")
                    if opts.get("image_upload"):
                        widgets.append("image")  # the frontend's upload button stores a value too
            for i, slot in enumerate(inputs):
                link_rows[slot["link"] - 1][4] = i
            outputs = [{"name": name, "type": kind, "links": consumers.get((n.id, i), []), "slot_index": i}
                       for i, (name, kind) in enumerate(zip(n.info["output_name"], n.info["output"]))]
            size = list(n.size or SIZES.get(n.type, (320, 40 + 24 * (len(widgets) + max(len(inputs), len(outputs))))))
            properties = {"Node name for S&R": n.type}
            if model_entries(widgets):
                properties["models"] = model_entries(widgets)
            ui_nodes.append({
                "id": n.id, "type": n.type, **({"title": n.title} if n.title else {}), "pos": [0, 0],
                "size": size, "flags": {}, "order": order, "mode": 0, "inputs": inputs, "outputs": outputs,
                "properties": properties, "widgets_values": widgets})
        note = {"id": note_id, "type": "Note", "pos": [0, 0], "size": [700, NOTE_HEIGHT], "flags": {},
                "order": len(ui_nodes), "mode": 0, "inputs": [], "outputs": [], "properties": {},
                "widgets_values": [self.note], "color": "#432", "bgcolor": "#653"}
        bounds = self.place(ui_nodes, note)
        return {"last_node_id": note_id, "last_link_id": len(link_rows), "nodes": ui_nodes + [note],
                "links": link_rows, "groups": [], "config": {}, "extra": {"ds": view_for(bounds)}, "version": 0.4}

    def columns(self) -> dict[int, int]:
        """{node id: column}: a node's column is its depth, except that a node without inputs (loader, empty
        latent) sits just left of its first consumer, so tall columns do not pile up on the left."""
        col = {n.id: n.depth() for n in self.nodes}
        for n in self.nodes:
            if not n.links:
                consumers = [c for c in self.nodes if any(o.node is n for o in c.links.values())]
                if consumers:
                    col[n.id] = min(col[c.id] for c in consumers) - 1
        return col

    def place(self, ui_nodes: list[dict], note: dict) -> tuple[int, int, int, int]:
        """Sets each node's pos: columns left to right, folded into a second row after `split` columns (left to
        right again), the Note above; of all splits the one the window shows largest. Returns the bounding box."""
        col = self.columns()
        aside = next((n for n in ui_nodes if self.aside is not None and n["id"] == self.aside.id), None)
        ncols = max(c for i, c in col.items() if aside is None or i != aside["id"]) + 1
        by_col: dict[int, list[dict]] = {}
        for node in sorted(ui_nodes, key=lambda n: n["id"]):
            if node is not aside:
                by_col.setdefault(col[node["id"]], []).append(node)
        width = {c: max(n["size"][0] for n in nodes) for c, nodes in by_col.items()}
        height = {c: sum(n["size"][1] + GAP + TITLE_HEIGHT for n in nodes) - GAP - TITLE_HEIGHT
                  for c, nodes in by_col.items()}

        def layout(split):
            pos, y, right = {}, NOTE_HEIGHT + GAP + TITLE_HEIGHT, 0
            for row in ([c for c in range(split)], [c for c in range(split, ncols)]):
                if not row:
                    continue
                x = 0
                for c in row:
                    cy = y
                    for node in by_col.get(c, []):
                        pos[node["id"]] = [x, cy]
                        cy += node["size"][1] + GAP + TITLE_HEIGHT
                    x += width.get(c, 0) + GAP
                right = max(right, x - GAP)
                y += max(height.get(c, 0) for c in row) + ROW_GAP + TITLE_HEIGHT
            bottom = y - ROW_GAP - TITLE_HEIGHT
            if aside is not None:
                pos[aside["id"]] = [right + GAP, NOTE_HEIGHT + GAP + TITLE_HEIGHT]
                right += GAP + aside["size"][0]
                bottom = max(bottom, pos[aside["id"]][1] + aside["size"][1])
            return pos, (0, -TITLE_HEIGHT, max(right, note["size"][0]), bottom)

        def score(candidate):
            pos, bounds = candidate
            ds = view_for(bounds)
            rects = [(x, y - TITLE_HEIGHT, x + n["size"][0], y + n["size"][1])
                     for n in ui_nodes for x, y in [pos[n["id"]]]]
            hidden = any(overlaps(on_screen(r, ds), MINIMAP) for r in rects)
            return (not hidden, ds["scale"])

        best = max((layout(split) for split in range(1, ncols + 1)), key=score)
        if score(best) < (True, MIN_SCALE):
            raise ValueError(f"{self.note[:40]!r}: no layout shows the graph in a {WINDOW} window at "
                             f"{MIN_SCALE:.0%} zoom or more, clear of the minimap (best: {score(best)})")
        pos, bounds = best
        for node in ui_nodes:
            node["pos"] = pos[node["id"]]
        note["size"][0] = max(700, min(1100, bounds[2]))
        return bounds


# --------------------------------------------------------------------------------------------------
# The examples
# --------------------------------------------------------------------------------------------------

def prompt_pair(w: Workflow, clip: Out, text: str = PROMPT):
    pos = w.node("CLIPTextEncode", title="Positive prompt", text=text, clip=clip)
    neg = w.node("CLIPTextEncode", title="Negative prompt", text="", clip=clip)
    return pos, neg


def decode_save(w: Workflow, samples: Out, vae: Out, prefix: str):
    dec = w.node("VAEDecode", samples=samples, vae=vae)
    w.node("SaveImage", images=dec[0], filename_prefix=prefix)


def lcm_lora(w: Workflow, ckpt: Node, lora_name: str):
    """The LCM-LoRA step."""
    return w.node("LCMKitLoraLoader", model=ckpt[0], clip=ckpt[1], lora_name=lora_name, strength=1.0)


def lora_txt2img(note: str, ckpt_name: str, lora_name: str, size: int, seed: int, prefix: str) -> Workflow:
    """Checkpoint → LCM-LoRA Loader → LCM Sampler (4 steps, cfg 1) → VAE Decode → Save Image."""
    w = Workflow(note)
    ckpt = w.node("CheckpointLoaderSimple", ckpt_name=ckpt_name)
    lora = lcm_lora(w, ckpt, lora_name)
    pos, neg = prompt_pair(w, lora[1])
    latent = w.node("EmptyLatentImage", width=size, height=size, batch_size=1)
    s = w.node("LCMKitSampler", model=lora[0], positive=pos[0], negative=neg[0], latent_image=latent[0], seed=seed,
               steps=4, cfg=1.0)
    decode_save(w, s[0], ckpt[2], prefix)
    return w


def sd15_txt2img() -> Workflow:
    return lora_txt2img(
        "LCM-LoRA text-to-image, SD1.5, 4 steps.\n\nAny SD1.5 checkpoint + lcm-lora-sdv1-5 (models/loras) "
        "becomes a 4-step model. Keep cfg at 1.0-2.0 (LCM was trained with low guidance); 2 steps for "
        "drafts, 8 for final output (steps_preset).", SD15_CKPT, SD15_LCM_LORA, 512, 42, "lcm_sd15")


def sdxl_768() -> Workflow:
    return lora_txt2img(
        "LCM-LoRA text-to-image, SDXL at 768x768, 4 steps.\n\nLCM-LoRA for SDXL can show grid-like "
        "artifacts at 1024x1024: generate at 768x768 and upscale, or raise steps to 6-8 for full resolution. "
        "Works the same with SSD-1B.", SDXL_CKPT, SDXL_LCM_LORA, 768, 7, "lcm_sdxl")


def style_stack() -> Workflow:
    w = Workflow("LCM-LoRA + style LoRA stack (SDXL, 4 steps).\n\nThe LCM-LoRA makes the model fast; the LoRA "
                 "Stack adds style LoRAs, each with its own weight (pixel-art-xl at 0.8, as in the LCM-LoRA "
                 "announcement). LORA_STACK is the same type Efficiency Nodes / Comfyroll use: their stacks plug "
                 "in here and ours into their loaders. Style LoRAs usually look best at 0.5-0.8 with LCM.")
    ckpt = w.node("CheckpointLoaderSimple", ckpt_name=SDXL_CKPT)
    lora = lcm_lora(w, ckpt, SDXL_LCM_LORA)
    stack = w.node("LCMKitLoraStack", lora_name_1=SDXL_STYLE_LORA, strength_model_1=0.8, strength_clip_1=1.0)
    applied = w.node("LCMKitApplyLoraStack", model=lora[0], clip=lora[1], lora_stack=stack[0])
    pos, neg = prompt_pair(w, applied[1], "pixel art, a red fox in a snowy forest")
    latent = w.node("EmptyLatentImage", width=768, height=768, batch_size=1)
    s = w.node("LCMKitSampler", model=applied[0], positive=pos[0], negative=neg[0], latent_image=latent[0],
               seed=11, steps=4, cfg=1.0)
    decode_save(w, s[0], ckpt[2], "lcm_style_stack")
    return w


def img2img() -> Workflow:
    w = Workflow("LCM img2img by strength.\n\nstrength 0.3-0.5 keeps close to the input image, 0.7-0.9 lets the "
                 "model reimagine it. strength x original_inference_steps (50) must be at least steps: a lower "
                 "strength is refused when you queue, with the lowest that works.")
    ckpt = w.node("CheckpointLoaderSimple", ckpt_name=SD15_CKPT)
    lora = lcm_lora(w, ckpt, SD15_LCM_LORA)
    pos, neg = prompt_pair(w, lora[1], "a watercolor painting of a mountain lake")
    image = w.node("LoadImage", image="example.png")
    enc = w.node("VAEEncode", pixels=image[0], vae=ckpt[2])
    s = w.node("LCMKitSampler", model=lora[0], positive=pos[0], negative=neg[0], latent_image=enc[0], seed=3,
               steps=4, cfg=1.0, strength=0.5)
    decode_save(w, s[0], ckpt[2], "lcm_img2img")
    return w


def controlnet() -> Workflow:
    w = Workflow("ControlNet + LCM.\n\nCore's ControlNet nodes feed the LCM Sampler unchanged: Canny edges of the "
                 "input guide a 4-step LCM-LoRA generation.")
    ckpt = w.node("CheckpointLoaderSimple", ckpt_name=SD15_CKPT)
    lora = lcm_lora(w, ckpt, SD15_LCM_LORA)
    pos, neg = prompt_pair(w, lora[1], "a futuristic house, architectural photo")
    image = w.node("LoadImage", image="example.png")
    edges = w.node("Canny", image=image[0], low_threshold=0.4, high_threshold=0.8)
    cn = w.node("ControlNetLoader", control_net_name=SD15_CONTROLNET)
    apply = w.node("ControlNetApplyAdvanced", positive=pos[0], negative=neg[0], control_net=cn[0], image=edges[0],
                   strength=0.8, start_percent=0.0, end_percent=1.0)
    latent = w.node("EmptyLatentImage", width=512, height=512, batch_size=1)
    s = w.node("LCMKitSampler", model=lora[0], positive=apply[0], negative=apply[1], latent_image=latent[0],
               seed=5, steps=4, cfg=1.0)
    decode_save(w, s[0], ckpt[2], "lcm_controlnet")
    return w


def sampler_custom_advanced() -> Workflow:
    w = Workflow("SamplerCustomAdvanced with the LCM SIGMAS and SAMPLER.\n\nLCM Scheduler gives diffusers' exact "
                 "LCM timesteps; LCM / TCD Sampler the matching sampler (tcd with gamma for TCD models). Same "
                 "latents as the all-in-one LCM Sampler, with any guider or noise node.")
    ckpt = w.node("CheckpointLoaderSimple", ckpt_name=SD15_CKPT)
    lora = lcm_lora(w, ckpt, SD15_LCM_LORA)
    pos, neg = prompt_pair(w, lora[1])
    latent = w.node("EmptyLatentImage", width=512, height=512, batch_size=1)
    sigmas = w.node("LCMKitScheduler", model=lora[0], steps=4, strength=1.0)
    sampler = w.node("LCMKitSamplerSelect", sampler="lcm", gamma=0.3)
    noise = w.node("RandomNoise", noise_seed=42)
    guider = w.node("CFGGuider", model=lora[0], positive=pos[0], negative=neg[0], cfg=1.0)
    s = w.node("SamplerCustomAdvanced", noise=noise[0], guider=guider[0], sampler=sampler[0], sigmas=sigmas[0],
               latent_image=latent[0])
    decode_save(w, s[0], ckpt[2], "lcm_custom_advanced")
    return w


def full_lcm_checkpoint() -> Workflow:
    w = Workflow("A full LCM checkpoint (LCM_Dreamshaper_v7, released by the LCM authors), 4 steps.\n\nThe model "
                 "was distilled with a guidance embedding: the LCM Checkpoint Loader keeps it (core's Load "
                 "Checkpoint drops it) and guidance (8.0 here, trained range 3-15) steers it without a second "
                 "model pass - so the LCM Sampler's cfg stays at 1.0.")
    ckpt = w.node("LCMKitCheckpointLoader", ckpt_name=LCM_DREAMSHAPER, guidance=8.0)
    pos, neg = prompt_pair(w, ckpt[1], "self-portrait oil painting, a beautiful cyborg with golden hair, 8k")
    latent = w.node("EmptyLatentImage", width=768, height=768, batch_size=1)
    s = w.node("LCMKitSampler", model=ckpt[0], positive=pos[0], negative=neg[0], latent_image=latent[0], seed=0,
               steps=4, cfg=1.0)
    decode_save(w, s[0], ckpt[2], "lcm_dreamshaper")
    return w


def live() -> Workflow:
    """Live mode. Node ids are kept (tests/test_live.py types into node 3 and clicks live on node 8)."""
    w = Workflow('Live mode: the image follows the prompt as you type.\n\n'
                 "Click 'live' on the Live Preview node, then type in 'Prompt (type here)' or change any widget: "
                 'after a 150 ms pause (setting LCM Kit > Live > Debounce) the graph is queued again up to Live '
                 'Preview, the stale run is interrupted, and the newest frame is shown with FPS and latency. Keep '
                 "it fast: LCM-LoRA, 1-2 steps (steps_preset draft), a small size. Click 'live' again to stop.")
    ckpt = w.node("CheckpointLoaderSimple", ckpt_name=SD15_CKPT)
    lora = w.node("LCMKitLoraLoader", title="LCM-LoRA", model=ckpt[0], clip=ckpt[1], lora_name=SD15_LCM_LORA,
                  strength=1.0)
    pos = w.node("CLIPTextEncode", title="Prompt (type here)", text="a watercolor fox in a snowy forest", clip=lora[1])
    neg = w.node("CLIPTextEncode", title="Negative prompt", text="", clip=lora[1])
    latent = w.node("EmptyLatentImage", width=512, height=512, batch_size=1)
    s = w.node("LCMKitSampler", model=lora[0], positive=pos[0], negative=neg[0], latent_image=latent[0], seed=7,
               steps=2, cfg=1.0, steps_preset="draft: 2 steps")
    dec = w.node("VAEDecode", samples=s[0], vae=ckpt[2])
    w.aside = w.node("LCMKitLivePreview", images=dec[0], format="JPEG", max_size=512)
    return w


def live_img2img(note: str, text: str, size: tuple[int, int], steps: int, strength: float) -> Workflow:
    """Live img2img from the Sketch node: Sketch -> Fast Encode -> LCM Sampler -> Fast Decode -> Live Preview.
    `size` (width, height): 4:3, a webcam's shape, which keeps the node short enough for the window."""
    w = Workflow(note)
    ckpt = w.node("CheckpointLoaderSimple", ckpt_name=SD15_CKPT)
    lora = lcm_lora(w, ckpt, SD15_LCM_LORA)
    pos, neg = prompt_pair(w, lora[1], text)
    sketch = w.node("LCMKitSketch", width=size[0], height=size[1], background="#ffffff", sketch="")
    enc = w.node("LCMKitFastEncode", pixels=sketch[0], model=lora[0])
    s = w.node("LCMKitSampler", model=lora[0], positive=pos[0], negative=neg[0], latent_image=enc[0], seed=7,
               steps=steps, cfg=1.0, strength=strength)
    dec = w.node("LCMKitFastDecode", samples=s[0], model=lora[0])
    w.aside = w.node("LCMKitLivePreview", images=dec[0], format="JPEG", max_size=512)
    w.aside.size = (360, 400)    # narrower than in the typing example: the canvas takes room on the left
    return w


def live_sketch() -> Workflow:
    return live_img2img("Live sketch: draw, and LCM turns the sketch into a picture as you draw.\n\n"
                        "Click 'live' on the Live Preview node, then draw on the Sketch node's canvas (brush, eraser, "
                        "undo, clear, a picture to start from). Each stroke queues the graph again; a long stroke "
                        "sends frames while you draw. strength 0.5 stays close to your lines, 0.7 reimagines them. "
                        "Fast Encode/Decode (TAESD, in models/vae_approx) keep each frame quick. The drawing is saved "
                        "inside the workflow (up to 4 MB of PNG).",
                        "a watercolor landscape, mountains and a lake, soft light", (512, 384), steps=3, strength=0.6)


def live_camera() -> Workflow:
    return live_img2img("Live camera: your webcam, restyled by LCM frame after frame.\n\n"
                        "Click 'camera' on the Sketch node and allow the camera: live mode switches on and each "
                        "camera frame becomes the sketch as soon as the server is ready for the next one (the rate "
                        "follows the run time). 'mirror' flips it as a mirror does. Live off, or another tab, stops "
                        "the camera. Keep it small and fast: 384x288, 2 steps, strength 0.6.",
                        "an oil painting portrait, impressionist, warm light", (384, 288), steps=2, strength=0.6)


# File name = the title the template browser shows (frontends 1.32-1.58 show a pack's template by its file name and
# look up no translation for it); the number gives the order wherever the list is sorted by name.
EXAMPLES = {
    "1. LCM-LoRA text-to-image (SD1.5)": sd15_txt2img,
    "2. LCM-LoRA text-to-image (SDXL, 768px)": sdxl_768,
    "3. LCM-LoRA with a style LoRA stack (SDXL)": style_stack,
    "4. img2img by strength (SD1.5)": img2img,
    "5. ControlNet Canny (SD1.5)": controlnet,
    "6. Full LCM checkpoint with guidance (Dreamshaper v7)": full_lcm_checkpoint,
    "7. SamplerCustomAdvanced with LCM sigmas": sampler_custom_advanced,
    "8. Live mode (the image follows the prompt as you type)": live,
    "9. Live sketch (img2img follows your drawing)": live_sketch,
    "10. Live camera (img2img follows your webcam)": live_camera,
}


def write_locales() -> Path:
    """locales/en/nodeDefs.json: each node's display name, which ComfyUI serves to the frontend
    (/api/i18n). Frontend 1.32 names a node by `nodeDefs.<id>.display_name` where a saved workflow stores no
    title (the progress overlay's "Current node"); without it the user sees the node id."""
    pack = comfy_env.pack_module()
    defs = {node_id: {"display_name": pack.NODE_DISPLAY_NAME_MAPPINGS[node_id]}
            for node_id in sorted(pack.NODE_CLASS_MAPPINGS)}
    path = REPO / "locales" / "en" / "nodeDefs.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(defs, indent=1, ensure_ascii=False) + "\n")
    return path


def main() -> int:
    # A base directory of its own: custom_nodes/lcm-kit must link to this checkout, not to one an earlier run
    # (another worktree sharing .testbed/) linked.
    base = Path(tempfile.mkdtemp(prefix="lcm-kit-examples-"))
    comfy_env.make_base_dir(base, {})
    comfy_env.bootstrap(base)
    OUT.mkdir(exist_ok=True)
    for name, build in EXAMPLES.items():
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(build().to_json(), indent=1) + "\n")
        print(f"wrote {path.relative_to(REPO)}")
    for path in sorted(OUT.glob("*.json")):
        if path.stem not in EXAMPLES:
            print(f"note: {path.relative_to(REPO)} is not generated here (no entry in EXAMPLES)")
    print(f"wrote {write_locales().relative_to(REPO)}")
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.ERROR)  # ComfyUI's import chatter (optional audio nodes)
    sys.exit(main())
