"""The real server: main.py --cpu with the pack under custom_nodes/, driven over HTTP and /ws."""
from __future__ import annotations

import pytest

import graphs
from support.comfy_env import WebSocketListener

pytestmark = pytest.mark.server


def test_pack_nodes_listed_in_object_info(server, pack):
    info = server.get("/object_info")
    for node_id in pack.NODE_CLASS_MAPPINGS:
        assert node_id in info, f"{node_id} missing from /object_info"
        assert info[node_id]["python_module"].startswith("custom_nodes.")


def test_prompt_writes_png_and_streams_progress(server, base_dir):
    with WebSocketListener(server) as ws:
        prompt_id = server.queue(graphs.core_lcm_graph(prefix="server_core"), ws.client_id)
        hist = server.wait_history(prompt_id)
    assert hist["status"]["status_str"] == "success", hist["status"]
    images = hist["outputs"]["save"]["images"]
    assert (base_dir / "output" / images[0]["subfolder"] / images[0]["filename"]).exists()
    progress = [p for p in ws.events("progress") if p.get("prompt_id") == prompt_id]
    assert progress and progress[-1]["value"] == progress[-1]["max"] == 4
    assert any(e.get("prompt_id") == prompt_id for e in ws.events("executed"))
    assert "lora key not loaded" not in server.log_text()
