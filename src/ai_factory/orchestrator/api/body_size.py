"""Request body size limit: anything over the cap gets 413 before a handler reads it.

The cap leaves room for the largest valid request, a spec of `MAX_SPEC_CHARS`
characters however its JSON spells them, so that what is too long is refused by
validation (422, naming the field) and not by size (413, naming nothing).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ai_factory.core.models.work import MAX_SPEC_CHARS

# The longest JSON spelling of one character: a character outside the Basic Multilingual
# Plane escaped as a surrogate pair, "\ud83d\ude00" (quotes and newlines take 2 bytes,
# other escapes 6, raw UTF-8 at most 4).
MAX_JSON_BYTES_PER_CHAR = 12
# Everything around the spec: keys, repo, branch, source id and URL, escaped the same way.
ENVELOPE_BYTES = 64 * 1024
MAX_BODY_BYTES = MAX_SPEC_CHARS * MAX_JSON_BYTES_PER_CHAR + ENVELOPE_BYTES


class BodySizeLimit:
    """Pure ASGI middleware: checks Content-Length, and counts streamed bodies too."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return

        seen = 0
        started = False
        rejected = False

        async def counting_receive() -> Message:
            nonlocal seen, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not started:
                    # Answer now; the app sees a disconnected client and its reply is dropped.
                    rejected = True
                    await self._reject(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"error": f"request body is larger than {self.max_bytes} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
