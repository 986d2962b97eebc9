"""UI-format workflows (what ComfyUI's frontend saves and loads) and their conversion to API prompts.

The conversion does what the frontend's graphToPrompt does for the nodes our examples use: widget values
are positional (`widgets_values`), in the order of the node's inputs in `/object_info` (required, then
optional), and an INT named seed/noise_seed or flagged `control_after_generate` is followed by its
control value ("fixed", "randomize", …). Links override widget values.
"""
from __future__ import annotations

VIRTUAL_NODES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
# the frontend's widget types, and the pack's own (nodes/sketch_nodes.py SKETCH_TYPE, drawn by js/sketch.js)
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "LCMKIT_SKETCH"}


def input_specs(info: dict) -> list[tuple[str, object, dict]]:
    """[(name, type, options)] in widget order (required, then optional), from one /object_info entry."""
    out = []
    for section in ("required", "optional"):
        for name, spec in info.get("input", {}).get(section, {}).items():
            kind = spec[0]
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            out.append((name, kind, opts))
    return out


def is_widget(kind, opts: dict) -> bool:
    return not opts.get("forceInput") and (isinstance(kind, list) or kind in WIDGET_TYPES)


def has_control_value(name: str, kind, opts: dict) -> bool:
    if "control_after_generate" in opts:
        return bool(opts["control_after_generate"])
    return kind == "INT" and name in ("seed", "noise_seed")


def widget_names(info: dict) -> list[str]:
    """The names behind each position of a node's `widgets_values` (control values as `<name>:control`)."""
    names = []
    for name, kind, opts in input_specs(info):
        if is_widget(kind, opts):
            names.append(name)
            if has_control_value(name, kind, opts):
                names.append(f"{name}:control")
            if opts.get("image_upload"):
                names.append(f"{name}:upload")
    return names


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """Convert a UI-format workflow (version 0.4) to an API-format prompt."""
    links = {l[0]: l for l in workflow.get("links", [])}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in VIRTUAL_NODES or node.get("mode", 0) in (2, 4):
            continue
        if node["type"] not in object_info:
            raise KeyError(f"node {node['id']} is a {node['type']!r}, which this ComfyUI does not know "
                           f"(a custom node pack is missing)")
        info = object_info[node["type"]]
        values = list(node.get("widgets_values") or [])
        inputs: dict = {}
        names = widget_names(info)
        for name, value in zip(names, values):
            if ":" not in name:
                inputs[name] = value
        for slot in node.get("inputs", []):
            link = slot.get("link")
            if link is not None:
                _, origin, origin_slot, *_ = links[link]
                inputs[slot["name"]] = [str(origin), origin_slot]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt
