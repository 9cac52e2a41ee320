"""Turns the SDK's typed messages of one Claude Code session into an `IterationResult`.

Owns: what is recorded per iteration (tokens from the final result, cost, turns,
session id, files edited by Edit/Write/MultiEdit/NotebookEdit, rate-limit events,
CLI retries, errors) and the readable log lines a watcher of the worker's output
sees: tool calls, files edited, commits, limits, the result.

Usage comes from the `ResultMessage` (summed over turns); per-message usage is
the turn's ``message_start`` and is not added up (docs/claude-cli-notes.md).
A tool use counts as an edit only once its result arrives without an error, so
an edit a lock denied is not reported as a file changed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    RateLimitEvent,
    ResultError,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

from ai_factory.worker.agent.result import IterationResult, RateLimitSignal
from ai_factory.worker.agent.tools import EDIT_TOOLS, edited_path, repo_relative

log = logging.getLogger(__name__)

_SAY_CHARS = 300
_COMMAND_CHARS = 200


class StreamRecorder:
    """Collects one session's messages; `last_event` is when the stream last moved."""

    def __init__(self, *, root: Path, iteration: int, priced: bool = True) -> None:
        self.root = root
        self.iteration = iteration
        # The CLI prices every token at a real model's rates, whatever served it; the
        # scripted model's tokens cost nothing, so its sessions record a cost of 0.
        self.priced = priced
        self.result = IterationResult()
        self.last_event = time.monotonic()
        self._pending_edits: dict[str, str] = {}  # tool_use_id -> repo path
        self._edited: dict[str, None] = {}  # ordered set
        self._stderr: list[str] = []

    # --- inputs ---

    def add(self, message: object) -> None:
        self.last_event = time.monotonic()
        match message:
            case AssistantMessage():
                self._assistant(message)
            case UserMessage():
                self._user(message)
            case ResultMessage():
                self._result(message)
            case RateLimitEvent():
                self._rate_limit(message)
            case SystemMessage():
                self._system(message)

    def add_stderr(self, line: str) -> None:
        self.last_event = time.monotonic()
        self._stderr.append(line.rstrip())
        del self._stderr[:-40]

    def add_limit(self, signal: RateLimitSignal) -> None:
        """A limit learnt outside the stream (the factory's pause)."""
        self.result.rate_limits.append(signal)

    def add_error(self, exc: Exception) -> None:
        """The SDK raised after (or instead of) the result message."""
        if isinstance(exc, ResultError):
            data = exc.data
            api_error, api_type = data.get("api_error"), data.get("api_error_type")
            self.result.api_error = api_error if isinstance(api_error, str) else None
            self.result.api_error_type = api_type if isinstance(api_type, str) else None
            if not self.result.got_result:  # the result frame itself did not reach us
                self.result.got_result = True
                self.result.is_error = True
                self.result.result_text = exc.result
                self.result.api_error_status = exc.api_error_status
                self.result.terminal_reason = exc.terminal_reason
            return
        if self.result.got_result:
            return  # the CLI exits 1 after an error result: nothing new
        text = str(exc).strip()
        self.result.process_error = text or type(exc).__name__
        log.warning("agent.process_error iteration=%s error=%s", self.iteration, _one_line(text))

    def finish(self) -> IterationResult:
        self.result.files_edited = list(self._edited)
        self.result.output_tail = "\n".join(self._stderr[-20:])
        return self.result

    # --- message kinds ---

    def _assistant(self, message: AssistantMessage) -> None:
        if message.error:
            self.result.assistant_errors.append(str(message.error))
        for block in message.content:
            if isinstance(block, ToolUseBlock):
                self._tool_use(block)
            elif isinstance(block, TextBlock) and block.text.strip() and not message.error:
                log.info("agent.say %s", _one_line(block.text, _SAY_CHARS))

    def _tool_use(self, block: ToolUseBlock) -> None:
        self.result.tool_calls += 1
        if block.name in EDIT_TOOLS and (path := edited_path(block.input)):
            relative = repo_relative(path, self.root)
            self._pending_edits[block.id] = relative
            log.info("agent.tool tool=%s file=%s", block.name, relative)
        elif block.name == "Bash":
            command = str(block.input.get("command", ""))
            log.info("agent.tool tool=Bash command=%s", _one_line(command, _COMMAND_CHARS))
        else:
            target = block.input.get("file_path") or block.input.get("pattern") or ""
            log.info("agent.tool tool=%s %s", block.name, _one_line(str(target), _COMMAND_CHARS))

    def _user(self, message: UserMessage) -> None:
        if not isinstance(message.content, list):
            return
        for block in message.content:
            if not isinstance(block, ToolResultBlock):
                continue
            path = self._pending_edits.pop(block.tool_use_id, None)
            if path is None:
                continue
            if block.is_error:
                reason = _text(block.content)
                if "being edited by another worker" in reason:
                    self.result.denied_edits.append(path)
                log.info("agent.edit_refused file=%s reason=%s", path, _one_line(reason))
            else:
                self._edited[path] = None
                log.info("agent.edited file=%s", path)

    def _result(self, message: ResultMessage) -> None:
        r = self.result
        r.got_result = True
        usage = message.usage or {}
        r.input_tokens += int(usage.get("input_tokens") or 0)
        r.output_tokens += int(usage.get("output_tokens") or 0)
        r.cache_read_tokens += int(usage.get("cache_read_input_tokens") or 0)
        r.cache_creation_tokens += int(usage.get("cache_creation_input_tokens") or 0)
        r.cost_usd += float(message.total_cost_usd or 0.0) if self.priced else 0.0
        r.num_turns = message.num_turns
        r.duration_ms = message.duration_ms
        r.session_id = message.session_id
        r.is_error = message.is_error
        r.subtype = message.subtype
        r.result_text = message.result
        r.api_error_status = message.api_error_status
        r.terminal_reason = message.terminal_reason
        log.info(
            "agent.result iteration=%s error=%s turns=%s tokens=%s cost_usd=%.4f text=%s",
            self.iteration, message.is_error, message.num_turns, r.tokens, r.cost_usd,
            _one_line(message.result or "", _SAY_CHARS),
        )  # fmt: skip

    def _rate_limit(self, event: RateLimitEvent) -> None:
        info = event.rate_limit_info
        signal = RateLimitSignal(
            status=str(info.status),
            resets_at=info.resets_at,
            rate_limit_type=info.rate_limit_type,
            utilization=info.utilization,
            raw=dict(info.raw or {}),
        )
        self.result.rate_limits.append(signal)
        level = logging.INFO if signal.status == "allowed" else logging.WARNING
        log.log(
            level,
            "limit.event status=%s window=%s utilization=%s resets_at=%s",
            signal.status, signal.rate_limit_type, signal.window_utilization, signal.window_resets_at,
        )  # fmt: skip

    def _system(self, message: SystemMessage) -> None:
        data = message.data or {}
        if message.subtype == "init":
            self.result.session_id = data.get("session_id") or self.result.session_id
            log.info(
                "agent.session iteration=%s session=%s model=%s",
                self.iteration, data.get("session_id"), data.get("model"),
            )  # fmt: skip
        elif message.subtype == "api_retry":
            self.result.api_retries += 1
            log.warning(
                "agent.api_retry attempt=%s status=%s error=%s delay_ms=%s",
                data.get("attempt"), data.get("error_status"), data.get("error"),
                data.get("retry_delay_ms"),
            )  # fmt: skip
        elif message.subtype == "vcs_state_changed" and data.get("kind") == "commit":
            log.info("agent.commit branch=%s", data.get("branch"))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
