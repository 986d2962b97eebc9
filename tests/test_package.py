"""The pack as ComfyUI and its registry see it: the package entry points and pyproject.toml."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_package_exports_only_what_comfyui_reads(pack):
    assert pack.NODE_CLASS_MAPPINGS and set(pack.NODE_CLASS_MAPPINGS) == set(pack.NODE_DISPLAY_NAME_MAPPINGS)
    assert pack.WEB_DIRECTORY == "./js" and (REPO / "js").is_dir()
    # ComfyUI ignores comfy_entrypoint when NODE_CLASS_MAPPINGS exists: never define both
    assert not hasattr(pack, "comfy_entrypoint")


def test_pyproject_is_registry_valid(comfy):
    from comfy_config import config_parser
    cfg = config_parser.extract_node_configuration(str(REPO))
    assert cfg.project.name == "lcm-kit" and "comfyui" not in cfg.project.name.lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", cfg.project.version)
    assert cfg.project.urls.repository.startswith("https://")
    assert cfg.tool_comfy.publisher_id and cfg.tool_comfy.display_name == "LCM Kit"
    assert (REPO / "LICENSE").read_text().startswith("                    GNU GENERAL PUBLIC LICENSE")
    text = (REPO / "pyproject.toml").read_text()
    assert 'requires-comfyui = ">=0.3.75"' in text and "GPL-3.0" in text


def test_js_extensions_are_served(server):
    for js in sorted((REPO / "js").glob("*.js")):
        body = server.get(f"/extensions/lcm-kit/{js.name}")
        assert body == js.read_bytes()
