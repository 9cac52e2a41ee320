"""The worker log as the dashboard shows it: lines tagged by what they say.

A worker's stdout lines look like ``12:00:01 INFO ai_factory.worker.loop: agent.tool
tool=Write file=a.py``. The tag picks a style: an iteration start, a tool call, a file
edit, a passed or failed quality gate, a warning or error, the spawner's ``--- ... ---``
header. Text is never interpreted, only classified; the browser inserts it as text.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

Tag = Literal[
    "iteration", "tool", "edit", "gate-pass", "gate-fail", "error", "warn", "mark", "info"
]

_LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<level>[A-Z]+) [\w.]+: (?P<message>.*)$")
_BY_EVENT: list[tuple[tuple[str, ...], Tag]] = [
    (("iteration.started", "agent.inner_iteration"), "iteration"),
    (("agent.tool",), "tool"),
    (("agent.edited", "workspace.committed", "agent.commit"), "edit"),
    (("gate.passed",), "gate-pass"),
    (("gate.failed", "lock.conflict", "agent.edit_refused"), "gate-fail"),
    (("worker.failed", "worker.crashed", "iteration.fatal"), "error"),
    (("loop.ended", "worker.delivered", "delivery.", "worker.started", "worker.stopped"), "mark"),
]


class LogLine(BaseModel):
    tag: Tag
    text: str


def classify(line: str) -> Tag:
    if line.startswith("--- ") and line.endswith(" ---"):
        return "mark"
    match = _LINE.match(line)
    if match is None:
        return "error" if line.startswith(("Traceback", "  File ")) else "info"
    message = match.group("message")
    for prefixes, tag in _BY_EVENT:
        if message.startswith(prefixes):
            return tag
    level = match.group("level")
    if level in ("ERROR", "CRITICAL"):
        return "error"
    if level == "WARNING":
        return "warn"
    return "info"


def tag_lines(text: str) -> list[LogLine]:
    return [LogLine(tag=classify(line), text=line) for line in text.splitlines() if line.strip()]
