"""Saved workflows are a public format: node ids, input names and widget order must never break.

`tests/fixtures/node_schema.json` is the checked-in snapshot of every node's id, inputs (name, type,
section, default, fixed combo options, in order) and outputs. A rename, reorder, removal or type change
fails here; additions must be optional inputs appended at the end (and new outputs appended). After an
allowed addition, record it with `LCM_KIT_UPDATE_SCHEMA=1 make test` (refused while a change breaks).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SNAPSHOT = Path(__file__).resolve().parent / "fixtures" / "node_schema.json"


def _kind(spec):
    kind = spec[0]
    if isinstance(kind, list):
        # fixed choices are part of the format; file lists depend on the user's folders
        files = not kind or any("." in str(o) or "/" in str(o) for o in kind)  # fixed choices are never empty
        return {"type": "COMBO", "options": None if files else list(kind)}
    return {"type": kind}


def schema(mappings: dict) -> dict:
    out = {}
    for node_id, cls in sorted(mappings.items()):
        inputs = []
        for section in ("required", "optional"):
            for name, spec in cls.INPUT_TYPES().get(section, {}).items():
                opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                inputs.append({"name": name, "section": section, **_kind(spec), "default": opts.get("default")})
        out[node_id] = {"inputs": inputs, "outputs": list(cls.RETURN_TYPES)}
    return out


def breaking_changes(old: dict, new: dict) -> list[str]:
    problems = []
    for node_id, before in old.items():
        if node_id not in new:
            problems.append(f"{node_id}: removed or renamed (saved workflows name it)")
            continue
        after = new[node_id]
        for i, inp in enumerate(before["inputs"]):
            if i >= len(after["inputs"]):
                problems.append(f"{node_id}.{inp['name']}: removed")
                continue
            cur = after["inputs"][i]
            for key in ("name", "section", "type"):
                if cur[key] != inp[key]:
                    problems.append(f"{node_id} input #{i}: {key} {inp[key]!r} -> {cur[key]!r} (widget order is positional)")
            if inp.get("options") and cur.get("options") is not None:
                gone = [o for o in inp["options"] if o not in cur["options"]]
                if gone:
                    problems.append(f"{node_id}.{inp['name']}: choices {gone} removed (saved values would fail)")
        for extra in after["inputs"][len(before["inputs"]):]:
            if extra["section"] != "optional":
                problems.append(f"{node_id}.{extra['name']}: new inputs must be optional and appended at the end")
        if after["outputs"][:len(before["outputs"])] != before["outputs"]:
            problems.append(f"{node_id}: outputs {before['outputs']} -> {after['outputs']} (links are by slot)")
    return problems


def test_no_breaking_change_to_saved_workflows(pack):
    assert SNAPSHOT.exists(), f"{SNAPSHOT} is missing: restore it from git (it is the format saved workflows rely on)"
    current = schema(pack.NODE_CLASS_MAPPINGS)
    problems = breaking_changes(json.loads(SNAPSHOT.read_text()), current)
    assert not problems, "breaking changes to the node format:\n" + "\n".join(problems)
    if os.environ.get("LCM_KIT_UPDATE_SCHEMA") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=1) + "\n")


def test_snapshot_records_every_node(pack):
    old = json.loads(SNAPSHOT.read_text())
    assert schema(pack.NODE_CLASS_MAPPINGS) == old, (
        "the node format changed compatibly; record it with LCM_KIT_UPDATE_SCHEMA=1 make test")


def test_breaking_change_detector_catches_each_kind():
    base = {"N": {"inputs": [{"name": "a", "section": "required", "type": "INT", "default": 1},
                             {"name": "b", "section": "required", "type": "COMBO", "options": ["x", "y"],
                              "default": "x"}], "outputs": ["LATENT"]}}
    def changed(**kw):
        new = json.loads(json.dumps(base))
        for path, value in kw.items():
            exec(f"new{path} = value", {"new": new, "value": value})
        return breaking_changes(base, new)
    assert not breaking_changes(base, base)
    assert changed(**{'["N"]["inputs"][0]["name"]': "renamed"})
    assert changed(**{'["N"]["inputs"]': list(reversed(base["N"]["inputs"]))})
    assert changed(**{'["N"]["inputs"][1]["options"]': ["x"]})
    assert changed(**{'["N"]["outputs"]': ["IMAGE"]})
    assert breaking_changes(base, {})
    appended_required = json.loads(json.dumps(base))
    appended_required["N"]["inputs"].append({"name": "c", "section": "required", "type": "INT", "default": 0})
    assert breaking_changes(base, appended_required)
    appended_optional = json.loads(json.dumps(base))
    appended_optional["N"]["inputs"].append({"name": "c", "section": "optional", "type": "INT", "default": 0})
    assert not breaking_changes(base, appended_optional)


@pytest.fixture(scope="module")
def node_classes(pack):
    return sorted(pack.NODE_CLASS_MAPPINGS.items())


def test_every_node_is_prefixed_described_and_categorised(pack, node_classes):
    for node_id, cls in node_classes:
        assert node_id.startswith("LCMKit"), node_id
        assert len(getattr(cls, "DESCRIPTION", "")) > 40, f"{node_id} has no DESCRIPTION"
        assert cls.CATEGORY.startswith("LCM Kit"), node_id
        assert pack.NODE_DISPLAY_NAME_MAPPINGS.get(node_id, "").endswith("(LCM Kit)"), node_id


MAX_TOOLTIP = 80   # one line where the frontend shows it; the detail goes in the description or the README


def test_every_input_has_a_one_line_tooltip(node_classes):
    missing, long = [], []
    for node_id, cls in node_classes:
        for section in ("required", "optional"):
            for name, spec in cls.INPUT_TYPES().get(section, {}).items():
                tip = (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}).get("tooltip", "")
                if len(tip) < 15:
                    missing.append(f"{node_id}.{name}")
                elif len(tip) > MAX_TOOLTIP or "\n" in tip:
                    long.append(f"{node_id}.{name} ({len(tip)} characters)")
    assert not missing, f"inputs without a tooltip: {missing}"
    assert not long, f"tooltips longer than one line of {MAX_TOOLTIP} characters: {long}"
