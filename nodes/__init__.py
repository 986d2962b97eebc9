"""Every node class of the pack, collected from the capability modules.

Node ids carry the `LCMKit` prefix and never change: saved workflows store them.
"""
NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}


def _register(module) -> None:
    NODE_CLASS_MAPPINGS.update(module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(module.NODE_DISPLAY_NAME_MAPPINGS)


from . import sampler_nodes  # noqa: E402

_register(sampler_nodes)

from . import optimize_nodes  # noqa: E402

_register(optimize_nodes)
