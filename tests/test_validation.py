"""Mistakes that the widget values already show are refused when the prompt is queued (the real /prompt answers
HTTP 400 before any model loads), once per mistake, with a message that names the input and the fix: the LCM
Sampler's and LCM Scheduler's schedule, and LoRA names.

ComfyUI reports a message returned by VALIDATE_INPUTS once per argument the method takes (execution.validate_inputs,
v0.3.75 and 0.33); the schedule check takes four, so it raises instead, which core reports once for the node.
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


def only_error(errors: dict, node: str) -> dict:
    """The one error of the one node in the 400 answer's node_errors."""
    assert list(errors) == [node], errors
    (error,) = errors[node]["errors"]
    return error


def schedule_message(errors: dict, node: str = "sampler") -> str:
    error = only_error(errors, node)
    assert error["extra_info"]["exception_type"] == "lcm_kit.ScheduleError", error
    return error["details"]


def stack_graph(**rows) -> dict:
    g = graphs.lcm_graph()
    values = {f"{w}_{i}": ("None" if w == "lora_name" else 1.0)
              for i in range(1, 5) for w in ("lora_name", "strength_model", "strength_clip")}
    values.update(rows)
    g["stack"] = {"class_type": "LCMKitLoraStack", "inputs": values}
    g["apply"] = {"class_type": "LCMKitApplyLoraStack", "inputs": {"model": ["ckpt", 0], "lora_stack": ["stack", 0]}}
    g["sampler"]["inputs"]["model"] = ["apply", 0]
    return g


def test_strength_too_low_for_the_steps_is_refused_at_queue_time_once(server):
    message = schedule_message(rejected(server, graphs.lcm_graph(strength=0.05, steps=4)))
    assert "strength 0.05 leaves only 2 of the model's 50 distillation steps" in message
    assert "Use strength ≥ 0.08 for 4 steps, or fewer steps" in message


def test_a_preset_that_overrides_steps_is_named_in_the_message(server):
    message = schedule_message(rejected(server, graphs.lcm_graph(strength=0.1, steps=1,
                                                                 steps_preset="final: 8 steps")))
    assert message.startswith("steps_preset 'final: 8 steps' sets steps to 8: ")
    assert "Use strength ≥ 0.16 for 8 steps" in message


def test_steps_above_original_inference_steps_is_refused(server):
    message = schedule_message(rejected(server, graphs.lcm_graph(steps=10, original_inference_steps=8)))
    assert "steps (10) cannot exceed original_inference_steps (8)" in message and "Lower steps" in message


def test_widget_ranges_core_leaves_to_the_check_are_still_checked(server):
    """Core skips min/max and list checks of the inputs VALIDATE_INPUTS takes: the check does them."""
    assert schedule_message(rejected(server, graphs.lcm_graph(steps=60, original_inference_steps=100))) \
        == "steps 60 is above its maximum 50."
    g = graphs.lcm_graph()
    g["sampler"]["inputs"]["steps_preset"] = "turbo: 3 steps"
    assert schedule_message(rejected(server, g)).startswith("steps_preset 'turbo: 3 steps' is not one of: ")


def test_lcm_scheduler_checks_the_same(server):
    g = graphs.sampler_custom(graphs.lcm_graph(), advanced=True, strength=0.02)
    message = schedule_message(rejected(server, g), node="sigmas")
    assert "Use strength ≥ 0.08 for 4 steps" in message


def test_good_values_queue_and_linked_values_are_checked_at_run_time(server):
    """Valid widget values queue. A strength from a link is unknown at queue time: the run fails, naming the
    pack's exception briefly (not by the pack folder's path)."""
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


@pytest.mark.parametrize("node, timesteps, rule", [
    ("sampler", "999,499,749", "must be strictly descending (diffusers refuses the list too): 749 follows 499"),
    ("sigmas", "1000, 500", "must be below 1000"),
    ("sampler", "999,500.5", "500.5 is not a whole number"),
])
def test_a_timesteps_list_diffusers_refuses_is_refused_at_queue_time_once(server, node, timesteps, rule):
    g = graphs.lcm_graph(timesteps=timesteps) if node == "sampler" else \
        graphs.sampler_custom(graphs.lcm_graph(), advanced=True)
    if node == "sigmas":
        g["sigmas"]["inputs"]["timesteps"] = timesteps
    message = schedule_message(rejected(server, g), node=node)
    assert rule in message and "e.g. 999,749,499,249" in message


def test_steps_outside_a_recipes_range_is_refused(server):
    message = schedule_message(rejected(server, graphs.lcm_graph(
        steps=12, recipe="Hyper-SD 1-step unified LoRA (TCD, 1-8 steps)")))
    assert "runs 1-8 steps (its card), got steps 12" in message


def test_a_value_that_is_no_number_is_named_not_a_python_comparison_error(server):
    """An API client sends steps "abc": core's own conversion error, and the check's, which names the input and
    the fix (it used to compare the unconverted text: "'<' not supported between instances of 'str' and 'int'")."""
    errors = rejected(server, graphs.lcm_graph(steps="abc"))
    details = [e["details"] for e in errors["sampler"]["errors"]]
    assert not any("not supported between" in d for d in details), details
    assert "steps 'abc' is not a whole number: give steps as a number (e.g. 4)." in details
