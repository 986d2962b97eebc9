"""Mistakes that the widget values already show are refused when the prompt is queued (the real /prompt answers
HTTP 400 before any model loads), with a message that names the input and the fix: LoRA names (the LCM Sampler's
schedule is still checked at run time).

ComfyUI reports a failed VALIDATE_INPUTS once per argument the method takes (execution.validate_inputs), each
entry naming that argument; the tests below read the message once per node and check what each entry says.
"""
from __future__ import annotations

import json
import shutil
import urllib.error
import uuid

import pytest

import graphs

pytestmark = pytest.mark.server

LCM_LORA = "tiny-sd15-lcm-kohya.safetensors"


def rejected(server, prompt: dict) -> dict:
    """The node_errors of the HTTP 400 answer to queueing `prompt`."""
    with pytest.raises(urllib.error.HTTPError) as info:
        server.queue(prompt, str(uuid.uuid4()))
    assert info.value.code == 400
    body = json.loads(info.value.read())
    assert body["error"]["type"] == "prompt_outputs_failed_validation", body
    return body["node_errors"]


def messages(node_error: dict) -> set[str]:
    """The distinct messages of one node's errors, without the "<input> - " prefix core puts before each."""
    return {e["details"].split(" - ", 1)[-1] for e in node_error["errors"]}


def stack_graph(**rows) -> dict:
    g = graphs.lcm_graph()
    values = {f"{w}_{i}": ("None" if w == "lora_name" else 1.0)
              for i in range(1, 5) for w in ("lora_name", "strength_model", "strength_clip")}
    values.update(rows)
    g["stack"] = {"class_type": "LCMKitLoraStack", "inputs": values}
    g["apply"] = {"class_type": "LCMKitApplyLoraStack", "inputs": {"model": ["ckpt", 0], "lora_stack": ["stack", 0]}}
    g["sampler"]["inputs"]["model"] = ["apply", 0]
    return g


def test_good_values_queue_and_a_schedule_error_names_the_pack_exception_briefly(server):
    """Valid widget values queue. A strength too low for the steps (here from a link) is an error at run time,
    naming the pack's exception briefly (not by the pack folder's path). (The LCM Sampler does not refuse it at
    queue time yet: live mode and its tests rely on run-time errors; issue #17 keeps that open.)"""
    g = graphs.lcm_graph(strength=1.0, steps=2)
    hist = server.wait_history(server.queue(g, str(uuid.uuid4())))
    assert hist["status"]["status_str"] == "success"
    g = graphs.lcm_graph(steps=4)
    g["strength"] = {"class_type": "PrimitiveFloat", "inputs": {"value": 0.05}}
    g["sampler"]["inputs"]["strength"] = ["strength", 0]
    hist = server.wait_history(server.queue(g, str(uuid.uuid4())))
    assert hist["status"]["status_str"] == "error"
    error = next(m[1] for m in hist["status"]["messages"] if m[0] == "execution_error")
    assert error["exception_type"] == "lcm_kit.ScheduleError"
    assert "Use strength ≥ 0.08 for 4 steps" in error["exception_message"]


def test_lora_stack_a_missing_row_is_one_error_and_none_rows_none(server):
    errors = rejected(server, stack_graph(lora_name_1=LCM_LORA, lora_name_2="gone-style.safetensors"))
    assert list(errors) == ["stack"]
    (error,) = errors["stack"]["errors"]
    assert error["extra_info"]["input_name"] == "lora_name_2"
    assert "gone-style.safetensors" in error["details"]


def test_lora_stack_with_none_rows_queues(server):
    hist = server.wait_history(server.queue(stack_graph(lora_name_3=LCM_LORA), str(uuid.uuid4())))
    assert hist["status"]["status_str"] == "success", hist["status"]


def test_lora_listed_then_deleted_is_told_it_is_gone(server, base_dir):
    loras = base_dir / "models" / "loras"
    copy = loras / "deleted-later.safetensors"
    shutil.copyfile((loras / LCM_LORA).resolve(), copy)
    try:
        listed = server.get("/object_info/LCMKitLoraLoader")["LCMKitLoraLoader"]["input"]["required"]["lora_name"][0]
        assert copy.name in listed
    finally:
        copy.unlink()
    g = graphs.lcm_graph()
    g["lora"] = {"class_type": "LCMKitLoraLoader", "inputs": {"model": ["ckpt", 0], "lora_name": copy.name,
                                                                "strength": 1.0}}
    g["sampler"]["inputs"]["model"] = ["lora", 0]
    errors = rejected(server, g)
    (error,) = errors["lora"]["errors"]
    assert error["extra_info"]["input_name"] == "lora_name"
    assert "'deleted-later.safetensors' is not on disk in the loras folder" in error["details"]
    assert "moved or deleted after the page listed it" in error["details"] and "press R" in error["details"]
