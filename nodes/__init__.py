"""Every node class of the pack, collected from the capability modules.

Node ids carry the `LCMKit` prefix and never change: saved workflows store them. In a ComfyUI older than the pack
supports (`compat.MIN_COMFYUI`) no node module is imported: one error line names the minimum version, the
mappings stay empty, and ComfyUI starts without the pack.
"""
import logging

from . import compat, status

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}


def _register(module) -> None:
    NODE_CLASS_MAPPINGS.update(module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(module.NODE_DISPLAY_NAME_MAPPINGS)


UNSUPPORTED = compat.unsupported_reason()
if UNSUPPORTED:
    logging.getLogger("lcm_kit").error("%s %s", status.LOG_PREFIX, UNSUPPORTED)
else:
    from . import lcm_checkpoint_nodes, live_nodes, lora_nodes, optimize_nodes, sampler_nodes, sketch_nodes

    for _module in (sampler_nodes, lora_nodes, lcm_checkpoint_nodes, live_nodes, optimize_nodes, sketch_nodes):
        _register(_module)
