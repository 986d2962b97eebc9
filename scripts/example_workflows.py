"""Writes example_workflows/*.json (UI format, as ComfyUI's frontend saves it) from the short graph
descriptions below, with widget order taken from the node classes themselves, so the files always match
the nodes. `make examples` regenerates them; the tests load and run every file.

Model names are the common public file names; the tests link them to the tiny models.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import logging  # noqa: E402

logging.getLogger().setLevel(logging.ERROR)  # ComfyUI's import chatter (optional audio nodes)

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


class Out:
    def __init__(self, node: "Node", slot: int):
        self.node, self.slot = node, slot


class Node:
    def __init__(self, wf: "Workflow", nid: int, type_: str, info: dict, values: dict, links: dict):
        self.wf, self.id, self.type, self.info, self.values, self.links = wf, nid, type_, info, values, links
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

    def info(self, type_: str) -> dict:
        cls = self.classes[type_]
        return {"input": cls.INPUT_TYPES(), "output": list(cls.RETURN_TYPES),
                "output_name": list(getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES)}

    def node(self, type_: str, **kw) -> Node:
        info = self.info(type_)
        links = {k: v for k, v in kw.items() if isinstance(v, Out)}
        values = {k: v for k, v in kw.items() if not isinstance(v, Out)}
        known = {name for name, _, _ in input_specs(info)}
        unknown = set(kw) - known
        if unknown:
            raise KeyError(f"{type_} has no input(s) {sorted(unknown)}")
        n = Node(self, len(self.nodes) + 1, type_, info, values, links)
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
        columns: dict[int, int] = {}
        ui_nodes = []
        note_id = len(self.nodes) + 1
        for order, n in enumerate(sorted(self.nodes, key=lambda x: (x.depth(), x.id))):
            col = n.depth()
            y = columns.get(col, 80)
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
            height = 46 + 26 * (len(widgets) + max(len(inputs), len(outputs)))
            ui_nodes.append({
                "id": n.id, "type": n.type, "pos": [40 + 360 * col, y], "size": [320, height], "flags": {},
                "order": order, "mode": 0, "inputs": inputs, "outputs": outputs,
                "properties": {"Node name for S&R": n.type}, "widgets_values": widgets})
            columns[col] = y + height + 60
        ui_nodes.append({"id": note_id, "type": "Note", "pos": [40, -260], "size": [700, 220], "flags": {},
                         "order": len(ui_nodes), "mode": 0, "inputs": [], "outputs": [], "properties": {},
                         "widgets_values": [self.note], "color": "#432", "bgcolor": "#653"})
        return {"last_node_id": note_id, "last_link_id": len(link_rows), "nodes": ui_nodes, "links": link_rows,
                "groups": [], "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [60, 320]}}, "version": 0.4}


# --------------------------------------------------------------------------------------------------
# The examples
# --------------------------------------------------------------------------------------------------

def prompt_pair(w: Workflow, clip: Out, text: str = PROMPT):
    pos = w.node("CLIPTextEncode", text=text, clip=clip)
    neg = w.node("CLIPTextEncode", text="", clip=clip)
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
        "LCM-LoRA text-to-image, SDXL at 768x768, 4 steps.\n\nThe tutorial's advice: LCM-LoRA for SDXL "
        "can show grid-like artifacts at 1024x1024 - generate at 768x768 and upscale, or raise steps to "
        "6-8 for full resolution. Works the same with SSD-1B.", SDXL_CKPT, SDXL_LCM_LORA, 768, 7, "lcm_sdxl")


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
                 "model reimagine it. strength x 50 must be at least steps (the node says the lowest strength "
                 "that works).")
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
    w = Workflow("A full LCM checkpoint (LCM_Dreamshaper_v7, the tutorial's first example), 4 steps.\n\nThe model "
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


EXAMPLES = {
    "lcm_lora_sd15_txt2img": sd15_txt2img,
    "lcm_lora_sdxl_768": sdxl_768,
    "lcm_lora_style_stack": style_stack,
    "lcm_img2img": img2img,
    "lcm_controlnet": controlnet,
    "lcm_sampler_custom_advanced": sampler_custom_advanced,
    "lcm_full_checkpoint": full_lcm_checkpoint,
}


def main() -> int:
    import os
    testbed = Path(os.environ.get("LCM_KIT_TESTBED", REPO / ".testbed"))
    base = testbed / "examples-base"
    comfy_env.make_base_dir(base, {})
    comfy_env.bootstrap(base)
    OUT.mkdir(exist_ok=True)
    for name, build in EXAMPLES.items():
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(build().to_json(), indent=1) + "\n")
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
