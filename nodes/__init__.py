"""Every node class of the pack, collected from the capability modules.

Node ids carry the `LCMKit` prefix and never change: saved workflows store them.
"""
NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}


def _register(module) -> None:
    NODE_CLASS_MAPPINGS.update(module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(module.NODE_DISPLAY_NAME_MAPPINGS)


from . import lcm_checkpoint_nodes, live_nodes, lora_nodes, optimize_nodes, sampler_nodes  # noqa: E402

_register(sampler_nodes)
_register(lora_nodes)
_register(lcm_checkpoint_nodes)
_register(live_nodes)
_register(optimize_nodes)
