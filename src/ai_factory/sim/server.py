"""The HTTP server that plays the Anthropic Messages API on 127.0.0.1.

Owns: the Starlette app (``POST /v1/messages`` streaming and not,
``POST /v1/messages/count_tokens``, the ``/_sim/*`` control endpoints), the
request log, and `SimServer`, which runs it with uvicorn in a background thread
on an ephemeral port for tests and the demo.

Control endpoints: ``GET /_sim/scenario`` (current scenario as JSON),
``POST /_sim/scenario`` (body: a `Scenario`, switches and resets counters),
``GET /_sim/requests`` (the request log, bodies left out).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ai_factory.sim import wire
from ai_factory.sim.agent import ScriptedAgent
from ai_factory.sim.conversation import Conversation
from ai_factory.sim.scenario import Gatekeeper, Scenario, Verdict, WindowRecord

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 10.0
PAUSE_TICK_S = 0.1
SECRET_HEADERS = frozenset({"x-api-key", "authorization", "cookie"})


@dataclass(frozen=True)
class RequestRecord:
    """One request the server received, for tests to inspect."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    main_agent: bool
    status: int
    at: float = field(default_factory=time.time)

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "main_agent": self.main_agent,
            "status": self.status,
            "at": self.at,
            "model": (self.body or {}).get("model"),
            "stream": (self.body or {}).get("stream"),
        }


class SimApp:
    """The Starlette application and the state its handlers share."""

    def __init__(self, scenario: Scenario) -> None:
        self.gatekeeper = Gatekeeper(scenario)
        self.closing = threading.Event()  # set on stop: cut scripted pauses short
        self.held = threading.Event()  # set when a `hold_before` reply starts waiting
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/v1/messages", self.messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
                Route("/_sim/scenario", self.scenario, methods=["GET", "POST"]),
                Route("/_sim/requests", self.requests, methods=["GET"]),
                Route("/api/hello", self.hello, methods=["GET", "HEAD"]),
                Route("/{path:path}", self.not_found, methods=["GET", "POST", "HEAD", "PUT"]),
            ]
        )

    @property
    def log(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._log)

    def _record(
        self, request: Request, body: dict[str, Any] | None, *, main: bool, status: int
    ) -> None:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in SECRET_HEADERS}
        record = RequestRecord(request.method, request.url.path, headers, body, main, status)
        with self._log_lock:
            self._log.append(record)
        logger.debug(
            "sim.request %s %s main=%s status=%s", request.method, request.url.path, main, status
        )

    async def messages(self, request: Request) -> Response:
        body = await _json_body(request)
        if body is None:
            self._record(request, None, main=False, status=400)
            return JSONResponse(wire.error_json("invalid_request_error", "body must be JSON"), 400)
        conv = Conversation(body)
        verdict = self.gatekeeper.admit(main=conv.is_main_agent)
        self._record(request, body, main=conv.is_main_agent, status=verdict.status)
        if verdict.error is not None:
            return JSONResponse(verdict.error, verdict.status, headers=verdict.headers)
        if verdict.delay_phase == "before_headers":
            await self.pause(verdict.delay_s)
        reply = ScriptedAgent(self.gatekeeper.scenario.name).reply(conv)
        await self._maybe_hold(reply)
        usage = wire.usage_for(body, reply)
        message_id = wire.new_id("msg")
        headers = {"request-id": wire.new_id("req"), **verdict.headers}
        if not body.get("stream"):
            payload = wire.message_json(reply, model=conv.model, usage=usage, message_id=message_id)
            return JSONResponse(payload, headers=headers)
        events = wire.stream_events(reply, model=conv.model, usage=usage, message_id=message_id)
        return StreamingResponse(
            self._paced(events, verdict), media_type="text/event-stream", headers=headers
        )

    async def _maybe_hold(self, reply: wire.Reply) -> None:
        """The scenario's `hold_before`: the first reply with that step waits (once)."""
        scenario = self.gatekeeper.scenario
        if scenario.hold_before is None or self.held.is_set():
            return
        if hold_point(reply) == scenario.hold_before:
            logger.info("sim.holding step=%s seconds=%s", scenario.hold_before, scenario.hold_s)
            self.held.set()
            await self.pause(scenario.hold_s)

    async def pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less if the server is stopping."""
        deadline = time.monotonic() + seconds
        while not self.closing.is_set() and (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(PAUSE_TICK_S, left))

    async def _paced(
        self, events: Iterator[tuple[str, dict[str, Any]]], verdict: Verdict
    ) -> AsyncIterator[bytes]:
        """Yield SSE frames; the `slow` scenario pauses after `message_start`."""
        for index, (name, data) in enumerate(events):
            yield wire.sse(name, data)
            if index == 0 and verdict.delay_phase == "mid_stream":
                await self.pause(verdict.delay_s)

    async def count_tokens(self, request: Request) -> Response:
        body = await _json_body(request) or {}
        self._record(request, body, main=False, status=200)
        tokens = wire.estimate_tokens(
            [body.get("system", ""), body.get("tools", []), body.get("messages", [])]
        )
        return JSONResponse({"input_tokens": tokens})

    async def scenario(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.gatekeeper.switch(Scenario.model_validate(await _json_body(request) or {}))
            except ValidationError as exc:
                return JSONResponse({"error": str(exc)}, 422)
        return JSONResponse(self.gatekeeper.scenario.model_dump(mode="json"))

    async def requests(self, _request: Request) -> Response:
        return JSONResponse([r.summary() for r in self.log])

    async def hello(self, request: Request) -> Response:
        """The CLI's connectivity check (sent without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC)."""
        self._record(request, None, main=False, status=200)
        return Response(status_code=200)

    async def not_found(self, request: Request) -> Response:
        self._record(request, await _json_body(request), main=False, status=404)
        return JSONResponse(wire.error_json("not_found_error", f"no route {request.url.path}"), 404)


def hold_point(reply: wire.Reply) -> str | None:
    """Which `hold_before` step a reply carries: a `git commit`, or the SPEC.md box edit."""
    for block in reply.blocks:
        if not isinstance(block, wire.ToolUseBlock):
            continue
        if block.name == "Bash" and "git commit" in str(block.input.get("command", "")):
            return "commit"
        if block.name == "Edit" and str(block.input.get("file_path", "")).endswith("SPEC.md"):
            return "check"
    return None


async def _json_body(request: Request) -> dict[str, Any] | None:
    raw = await request.body()
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class SimServer:
    """The scripted Messages API, served from a background thread.

    ``SimServer(scenario=Scenario(...), port=0).start()`` binds 127.0.0.1 (port 0:
    any free port); `url` is what ``ANTHROPIC_BASE_URL`` needs. Use as a context
    manager or call `stop()`.
    """

    def __init__(
        self, *, scenario: Scenario | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._sim = SimApp(scenario or Scenario())
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the value for ``ANTHROPIC_BASE_URL``."""
        if self._url is None:
            raise RuntimeError("SimServer is not started")
        return self._url

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received so far, oldest first."""
        return self._sim.log

    @property
    def main_requests(self) -> list[RequestRecord]:
        """The requests of the main agent loop (not the CLI's side calls)."""
        return [r for r in self._sim.log if r.main_agent]

    @property
    def scenario(self) -> Scenario:
        return self._sim.gatekeeper.scenario

    @property
    def windows(self) -> list[WindowRecord]:
        """The ``windows`` scenario's usage windows so far, oldest first."""
        return self._sim.gatekeeper.windows

    def set_scenario(self, scenario: Scenario) -> None:
        """Switch scenario (counters start again, a hold may happen again) for the
        following requests."""
        self._sim.gatekeeper.switch(scenario)
        self._sim.held.clear()

    @property
    def held(self) -> threading.Event:
        """Set once a `hold_before` reply is being held (the worker is at that step)."""
        return self._sim.held

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        sock.listen(64)
        self._socket = sock
        host, port = sock.getsockname()[:2]
        self._url = f"http://{host}:{port}"
        config = uvicorn.Config(
            self._sim.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="sim-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("sim server did not start")
            time.sleep(0.01)
        logger.info("sim.started url=%s scenario=%s", self.url, self.scenario.name)
        return self

    def stop(self) -> None:
        self._sim.closing.set()
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
