"""LCM Kit: Latent Consistency Models as first-class ComfyUI nodes (1-8 step sampling).

ComfyUI imports this folder as a package from `custom_nodes/`; all it needs from here are the two
mappings and the web directory. The node classes live in `nodes/`, one module per capability.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./js"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
