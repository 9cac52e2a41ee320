"""A read-only view of one Messages API request, as the scripted model sees it.

Owns: finding the user's prompt, the working directory Claude Code announces
in its environment section, the tool calls already made with their results, and
telling the main agent loop apart from the CLI's auxiliary requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_CWD_RE = re.compile(r"Primary working directory:\s*(\S[^\n]*)")
_READ_LINE_RE = re.compile(r"^\s*\d+(?:\t|\u2192)(.*)$")
_SYSTEM_REMINDER_RE = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)
MAIN_AGENT_TOOLS = frozenset({"Bash", "Write", "Edit", "Read"})


@dataclass(frozen=True)
class ToolStep:
    """A tool call the model made earlier in the conversation and its result."""

    name: str
    input: dict[str, Any]
    result: str | None  # None while no tool_result answers it
    is_error: bool


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    for block in content or []:
        if isinstance(block, dict) and block.get("type") == "text":
            out.append(str(block.get("text", "")))
    return out


def _result_text(content: Any) -> str:
    return "\n".join(_texts(content))


def read_output_text(result: str) -> str:
    """File content from a Read tool result.

    Read numbers every line (number, tab, text); a file ending in a newline
    shows one more, empty, numbered line, so joining the lines restores it.
    """
    body = _SYSTEM_REMINDER_RE.sub("", result)
    return "\n".join(m.group(1) for m in map(_READ_LINE_RE.match, body.splitlines()) if m)


class Conversation:
    """What a request says, parsed once."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.request = request
        self.model = str(request.get("model") or "claude-sim")
        self.messages: list[dict[str, Any]] = list(request.get("messages") or [])
        self.tool_names = frozenset(
            str(t.get("name")) for t in request.get("tools") or [] if isinstance(t, dict)
        )
        self.steps = self._steps()

    @property
    def is_main_agent(self) -> bool:
        """True for the agent loop; False for titles, summaries and other side calls."""
        return MAIN_AGENT_TOOLS <= self.tool_names

    @property
    def prompt(self) -> str:
        """Every user-typed text block (not tool results, not system reminders)."""
        parts: list[str] = []
        for message in self.messages:
            if message.get("role") != "user":
                continue
            for text in _texts(message.get("content")):
                cleaned = _SYSTEM_REMINDER_RE.sub("", text).strip()
                if cleaned:
                    parts.append(cleaned)
        return "\n".join(parts)

    @property
    def cwd(self) -> str | None:
        """The working directory from Claude Code's environment section."""
        haystack = _texts(self.request.get("system"))
        for message in self.messages:
            haystack.extend(_texts(message.get("content")))
        for text in haystack:
            if match := _CWD_RE.search(text):
                return match.group(1).strip()
        return None

    def _steps(self) -> list[ToolStep]:
        calls: list[dict[str, Any]] = []
        results: dict[str, tuple[str, bool]] = {}
        for message in self.messages:
            content = message.get("content")
            if isinstance(content, str):
                continue
            for block in content or []:
                if not isinstance(block, dict):
                    continue
                if message.get("role") == "assistant" and block.get("type") == "tool_use":
                    calls.append(block)
                elif block.get("type") == "tool_result":
                    results[str(block.get("tool_use_id"))] = (
                        _result_text(block.get("content")),
                        bool(block.get("is_error")),
                    )
        steps = []
        for call in calls:
            result, is_error = results.get(str(call.get("id")), (None, False))
            steps.append(
                ToolStep(
                    name=str(call.get("name")),
                    input=dict(call.get("input") or {}),
                    result=result,
                    is_error=is_error,
                )
            )
        return steps
