"""The Anthropic Messages API wire format, as far as the simulated model speaks it.

Owns: the `Reply` the scripted model produces (text and tool_use blocks), the
token `Usage` reported for it, its encoding as a non-streaming message or as the
server-sent event sequence of a streaming response, and the JSON error bodies
(`rate_limit_error`, `overloaded_error`, `authentication_error`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

CHARS_PER_TOKEN = 4
# A streamed tool input arrives in pieces, as from the real API.
JSON_DELTA_CHARS = 64
TEXT_DELTA_CHARS = 24

StopReason = Literal["end_turn", "tool_use", "max_tokens"]


def estimate_tokens(value: Any) -> int:
    """Rough token count of a JSON-able value: about four characters a token."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return max(1, len(text) // CHARS_PER_TOKEN)


def new_id(prefix: str) -> str:
    """An id shaped like the API's (`msg_...`, `toolu_...`)."""
    return f"{prefix}_01{secrets.token_hex(11)}"


@dataclass(frozen=True)
class TextBlock:
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"type": "text", "text": self.text}


@dataclass(frozen=True)
class ToolUseBlock:
    name: str
    input: dict[str, Any]
    id: str = field(default_factory=lambda: new_id("toolu"))

    def to_json(self) -> dict[str, Any]:
        return {"type": "tool_use", "id": self.id, "name": self.name, "input": self.input}


Block = TextBlock | ToolUseBlock


@dataclass(frozen=True)
class Usage:
    """Token usage as the API reports it; the cache fields split the prompt."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": self.output_tokens,
            "service_tier": "standard",
        }


@dataclass(frozen=True)
class Reply:
    """One assistant turn: content blocks and why the model stopped."""

    blocks: tuple[Block, ...]

    @property
    def stop_reason(self) -> StopReason:
        if any(isinstance(b, ToolUseBlock) for b in self.blocks):
            return "tool_use"
        return "end_turn"

    @classmethod
    def text(cls, text: str) -> Reply:
        return cls((TextBlock(text),))

    @classmethod
    def tool(cls, name: str, tool_input: dict[str, Any], *, say: str = "") -> Reply:
        lead = (TextBlock(say),) if say else ()
        return cls((*lead, ToolUseBlock(name, tool_input)))


def usage_for(request: dict[str, Any], reply: Reply) -> Usage:
    """Plausible, non-zero usage for `reply` to `request`.

    The system prompt and tools count as cached prefix: created on a
    conversation's first request, read from cache on the later ones.
    """
    prefix = estimate_tokens(request.get("system", "")) + estimate_tokens(request.get("tools", []))
    rest = estimate_tokens(request.get("messages", []))
    output = sum(estimate_tokens(b.to_json()) for b in reply.blocks) + 8
    first_turn = len(request.get("messages", [])) <= 2
    return Usage(
        input_tokens=rest,
        output_tokens=output,
        cache_creation_input_tokens=prefix if first_turn else 0,
        cache_read_input_tokens=0 if first_turn else prefix,
    )


def message_json(reply: Reply, *, model: str, usage: Usage, message_id: str) -> dict[str, Any]:
    """The non-streaming response body."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [b.to_json() for b in reply.blocks],
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": usage.to_json(),
    }


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _chunks(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def stream_events(
    reply: Reply, *, model: str, usage: Usage, message_id: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The (event, data) sequence of a streaming response, in API order."""
    start_usage = dict(usage.to_json(), output_tokens=1)
    yield (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        },
    )
    for index, block in enumerate(reply.blocks):
        if isinstance(block, TextBlock):
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            for piece in _chunks(block.text, TEXT_DELTA_CHARS):
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
        else:
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": block.id,
                        "name": block.name,
                        "input": {},
                    },
                },
            )
            for piece in _chunks(json.dumps(block.input, ensure_ascii=False), JSON_DELTA_CHARS):
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
            "usage": usage.to_json(),
        },
    )
    yield "message_stop", {"type": "message_stop"}


def error_json(error_type: str, message: str) -> dict[str, Any]:
    """The API's error body: `{"type": "error", "error": {...}}`."""
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": new_id("req"),
    }
