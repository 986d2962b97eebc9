"""What a node tells the user, sent one way for every node of the pack: the node's `ui` output under
`lcm_kit_status`, a list of {"level": "info" | "warning", "text": ...}. The frontend (`js/status.js`) shows
it on that node in both node renderers and clears it when the node runs again without it; the same lines
go to the log once, with the pack's one log prefix.
"""
from __future__ import annotations

import logging

log = logging.getLogger("lcm_kit")
UI_KEY = "lcm_kit_status"
LOG_PREFIX = "[LCM Kit]"
LEVELS = ("info", "warning")


def line(level: str, text: str) -> dict:
    if level not in LEVELS:
        raise ValueError(f"unknown status level {level!r}; valid: {', '.join(LEVELS)}")
    return {"level": level, "text": str(text)}


def node_output(result: tuple, info=(), warnings=(), node: str | None = None, **ui) -> dict:
    """A node function's return value: `result` plus its status lines (info first, then warnings), each
    also logged once (`node` names the node in the log). Extra `ui` keys (e.g. live frames) are kept."""
    lines = [line("info", t) for t in info if t] + [line("warning", t) for t in warnings if t]
    where = f"{node}: " if node else ""
    for entry in lines:
        (log.warning if entry["level"] == "warning" else log.info)("%s %s%s", LOG_PREFIX, where, entry["text"])
    return {"ui": {UI_KEY: lines, **ui}, "result": tuple(result)}
