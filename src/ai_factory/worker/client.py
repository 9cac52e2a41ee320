"""The worker's side of the worker protocol: HTTP calls to the orchestrator.

Owns: `OrchestratorClient` (register, heartbeat, iteration and limit reports,
file locks, learnings, and the final complete / fail / stuck report), how each
call is retried, and `Heartbeat`, the task that keeps the worker's lease alive.

The worker must keep working when the orchestrator is briefly gone (restart,
network), so calls differ in how hard they try:

- heartbeats are sent once; an unreachable orchestrator drops them (the next
  one says the same, newer);
- iteration and limit reports go into an ordered outbox that a background task
  delivers, retrying until the orchestrator is back;
- lock requests retry for a few seconds, then give up (the caller decides);
- the pause check (before each request Claude sends) is tried once;
- the final report first drains the outbox, then retries for hours
  (`final_retry_s`): it is the one call whose loss would lose the work's result.

Connection errors and 5xx are retried with backoff; 4xx never is. On this
worker's own routes (/api/worker/<id>/...), a 409, 404 or 401 means the lease is
gone: the item was cancelled or given to another worker. `lease_lost` is set and every later
call raises `LeaseLostError`; the worker stops its agent and exits without pushing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel

from ai_factory.core.api_errors import error_from_response
from ai_factory.core.errors import ApiUnreachableError, FactoryError
from ai_factory.core.models import (
    FactoryPause,
    IterationReport,
    LimitReport,
    LockResult,
    WorkerCompleteRequest,
    WorkerFailRequest,
    WorkerHeartbeatRequest,
    WorkerPhase,
    WorkerRegisterRequest,
    WorkerRegisterResponse,
    WorkerStuckRequest,
    WorkItem,
)
from ai_factory.core.waiting import wait_event

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 15.0
REGISTER_RETRY_S = 120.0
LOCK_RETRY_S = 5.0
LEARNINGS_RETRY_S = 15.0
FINAL_RETRY_S = 4 * 3600.0
REPORT_SERVER_ERROR_RETRY_S = 600.0
BACKOFF_FIRST_S = 0.25
BACKOFF_CAP_S = 10.0

M = TypeVar("M", bound=BaseModel)


class LeaseLostError(FactoryError):
    """The orchestrator no longer knows this worker as the holder of its item."""


@dataclass(frozen=True)
class _Outgoing:
    path: str
    body: dict[str, Any]
    what: str


class OrchestratorClient:
    def __init__(
        self,
        *,
        base_url: str,
        worker_id: UUID | None = None,
        token: str | None = None,
        final_retry_s: float = FINAL_RETRY_S,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.worker_id = worker_id
        self._token = token
        self.final_retry_s = final_retry_s
        self.lease_lost = asyncio.Event()
        self.lease_lost_reason = ""
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)
        self._outbox: asyncio.Queue[_Outgoing] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._unreachable_since: float | None = None

    # --- lifecycle ---

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        await self._http.aclose()

    # --- registration and reads ---

    async def register(
        self, item_id: UUID, *, host: str, admin_token: str | None = None
    ) -> WorkerRegisterResponse:
        """Spawned (worker id + token) or by hand (admin token: the orchestrator claims the item)."""
        request = WorkerRegisterRequest(work_item_id=item_id, worker_id=self.worker_id, host=host)
        token = self._token if self.worker_id is not None else admin_token
        data = await self._send("POST", "/api/worker/register", request, token=token,
                                retry_for=REGISTER_RETRY_S, what="register")  # fmt: skip
        response = WorkerRegisterResponse.model_validate(data)
        self.worker_id = response.worker_id
        if response.token:
            self._token = response.token
        return response

    async def get_item(self, item_id: str, *, admin_token: str | None) -> WorkItem:
        data = await self._send("GET", f"/api/work/{item_id}", None, token=admin_token,
                                retry_for=REGISTER_RETRY_S, what="fetch the work item")  # fmt: skip
        return WorkItem.model_validate(data)

    async def context_learnings(self, *, search: str) -> list[str]:
        """The learnings the orchestrator gives this worker for `search` (its spec): its
        repository's and the global ones, within the factory's token budget, best first
        ([] when the orchestrator cannot be reached)."""
        try:
            data = await self._send("GET", self._path("learnings"), None, params={"search": search},
                                    retry_for=LEARNINGS_RETRY_S, what="learnings")  # fmt: skip
        except ApiUnreachableError:
            log.warning("worker.learnings_unavailable")
            return []
        rows = data.get("learnings") if isinstance(data, dict) else None
        return [
            str(row["content"])
            for row in rows or []
            if isinstance(row, dict) and row.get("content")
        ]

    async def learnings(self, *, repo: str, search: str, limit: int = 10) -> list[str]:
        """Learnings relevant to `search` ([] when the orchestrator cannot be reached)."""
        params = {"repo": repo, "search": search, "limit": str(limit)}
        try:
            data = await self._send("GET", "/api/learnings", None, params=params,
                                    retry_for=LEARNINGS_RETRY_S, what="learnings")  # fmt: skip
        except ApiUnreachableError:
            log.warning("worker.learnings_unavailable")
            return []
        return [
            str(row["content"])
            for row in data or []
            if isinstance(row, dict) and row.get("content")
        ]

    # --- reports while working ---

    async def heartbeat(self, beat: WorkerHeartbeatRequest) -> bool:
        """One attempt; False when the orchestrator could not be reached (dropped)."""
        try:
            await self._send("POST", self._path("heartbeat"), beat, retry_for=0, what="heartbeat")
        except ApiUnreachableError:
            return False
        return True

    def report_iteration(self, report: IterationReport) -> None:
        self._enqueue(
            _Outgoing(self._path("iteration"), _dump(report), f"iteration {report.iteration}")
        )

    def report_limit(self, report: LimitReport) -> None:
        self._enqueue(_Outgoing(self._path("limited"), _dump(report), f"limit {report.status}"))

    async def pause(self) -> FactoryPause | None:
        """The factory's usage-limit pause, one attempt; None when the orchestrator cannot
        say right now (work goes on: the API itself refuses what a pause would have saved)."""
        try:
            data = await self._send("GET", self._path("pause"), None, retry_for=0, what="pause")
        except ApiUnreachableError:
            return None
        return FactoryPause.model_validate(data)

    async def lock(self, files: list[str]) -> LockResult | None:
        """Ask for file locks; None when the orchestrator could not be reached in time."""
        try:
            data = await self._send("POST", self._path("lock"), {"files": files},
                                    retry_for=LOCK_RETRY_S, what="lock")  # fmt: skip
        except ApiUnreachableError:
            return None
        return LockResult.model_validate(data)

    async def unlock(self, files: list[str]) -> None:
        if not files or self.lease_lost.is_set():
            return
        try:
            await self._send("POST", self._path("unlock"), {"files": files},
                             retry_for=LOCK_RETRY_S, what="unlock")  # fmt: skip
        except (ApiUnreachableError, LeaseLostError):
            pass  # the orchestrator releases a finished worker's locks itself

    # --- final reports ---

    async def complete(self, request: WorkerCompleteRequest) -> None:
        await self._final("complete", request)

    async def fail(self, request: WorkerFailRequest) -> None:
        await self._final("fail", request)

    async def stuck(self, request: WorkerStuckRequest) -> None:
        await self._final("stuck", request)

    async def _final(self, kind: str, body: BaseModel) -> None:
        deadline = time.monotonic() + self.final_retry_s
        if not await self.flush(timeout_s=self.final_retry_s) and not self.lease_lost.is_set():
            log.error("worker.reports_undelivered count=%s", self._outbox.qsize())
        remaining = max(0.0, deadline - time.monotonic())
        await self._send("POST", self._path(kind), body, retry_for=remaining, what=kind)
        log.info("worker.reported result=%s", kind)

    async def flush(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for queued reports to be delivered; True when they were."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._drained()
        except (TimeoutError, LeaseLostError):
            return False
        return True

    async def _drained(self) -> None:
        if self._sender is not None and not self._sender.done():
            await self._outbox.join()
        if self.lease_lost.is_set():
            raise LeaseLostError(self.lease_lost_reason)

    # --- plumbing ---

    def _path(self, action: str) -> str:
        if self.worker_id is None:
            raise FactoryError("the worker is not registered")
        return f"/api/worker/{self.worker_id}/{action}"

    def _enqueue(self, outgoing: _Outgoing) -> None:
        if self.lease_lost.is_set():
            return
        self._outbox.put_nowait(outgoing)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._deliver(), name="outbox")

    async def _deliver(self) -> None:
        while True:
            outgoing = await self._outbox.get()
            try:
                if not self.lease_lost.is_set():
                    await self._send("POST", outgoing.path, outgoing.body, retry_for=float("inf"),
                                     server_error_retry_s=REPORT_SERVER_ERROR_RETRY_S,
                                     what=outgoing.what)  # fmt: skip
            except LeaseLostError:
                pass
            except FactoryError as exc:  # a report the orchestrator refused: drop it, go on
                log.error("worker.report_refused report=%s error=%s", outgoing.what, exc)
            except Exception:  # e.g. an answer that is not JSON: the reports after it still go
                log.exception("worker.report_failed report=%s", outgoing.what)
            finally:
                self._outbox.task_done()

    async def _send(
        self,
        method: str,
        path: str,
        body: BaseModel | dict[str, Any] | None,
        *,
        retry_for: float,
        what: str,
        token: str | None = None,
        params: dict[str, str] | None = None,
        server_error_retry_s: float | None = None,
    ) -> Any:
        """Send one call, retrying connection errors and 5xx for `retry_for` seconds.

        `server_error_retry_s` caps how long an orchestrator that answers, but with 5xx,
        is retried (a report it keeps failing on must not block the ones after it).
        """
        if self.lease_lost.is_set() and self._own_route(path):
            raise LeaseLostError(self.lease_lost_reason)
        payload = _dump(body) if isinstance(body, BaseModel) else body
        headers = self._headers(token)
        started = time.monotonic()
        deadline = started + retry_for
        delay = BACKOFF_FIRST_S
        while True:
            try:
                response = await self._http.request(method, path, json=payload, params=params,
                                                     headers=headers)  # fmt: skip
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}"
            else:
                if response.status_code < 400:
                    self._reachable()
                    return response.json() if response.content else None
                if response.status_code < 500:
                    self._reachable()
                    raise self._refused(response, path, what)
                problem = f"HTTP {response.status_code}"
                if server_error_retry_s is not None:
                    deadline = min(deadline, started + server_error_retry_s)
            self._unreachable(what, problem)
            if time.monotonic() + delay > deadline:
                raise ApiUnreachableError(
                    f"orchestrator at {self.base_url} unreachable ({what}: {problem})"
                )
            await asyncio.sleep(delay)
            delay = min(BACKOFF_CAP_S, delay * 2)

    def _own_route(self, path: str) -> bool:
        """One of this worker's own routes (/api/worker/<id>/...), which its lease guards."""
        return self.worker_id is not None and path.startswith(f"/api/worker/{self.worker_id}/")

    def _headers(self, token: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        bearer = token or self._token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        if self.worker_id is not None:
            headers["X-Worker-Id"] = str(self.worker_id)
        return headers

    def _refused(self, response: httpx.Response, path: str, what: str) -> FactoryError:
        """The error for a 4xx; on this worker's own routes, 409/404/401 mean the lease is gone."""
        error = error_from_response(response)
        if self._own_route(path) and response.status_code in (401, 404, 409):
            if not self.lease_lost.is_set():
                self.lease_lost_reason = f"{what}: {error}"
                self.lease_lost.set()
                log.warning("worker.lease_lost call=%s error=%s", what, error)
            return LeaseLostError(self.lease_lost_reason)
        return type(error)(f"{what}: {error}")

    def _unreachable(self, what: str, problem: str) -> None:
        if self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
            log.warning("worker.orchestrator_unreachable call=%s problem=%s", what, problem)

    def _reachable(self) -> None:
        if self._unreachable_since is not None:
            away = time.monotonic() - self._unreachable_since
            self._unreachable_since = None
            log.info("worker.orchestrator_back after_s=%.1f", away)


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass
class Progress:
    """What heartbeats carry; the loop updates it, `Heartbeat` sends it."""

    iteration: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    phase: WorkerPhase = WorkerPhase.SETUP
    message: str | None = None

    def request(self) -> WorkerHeartbeatRequest:
        return WorkerHeartbeatRequest(
            iteration=self.iteration,
            tokens=self.tokens,
            phase=self.phase,
            cost_usd=round(self.cost_usd, 6),
            message=self.message[:2000] if self.message else None,
        )


class Heartbeat:
    """Sends `progress` every `interval_s`, and at once when `beat_now` is called."""

    def __init__(
        self,
        *,
        client: OrchestratorClient,
        progress: Progress,
        interval_s: float,
    ) -> None:
        self.client = client
        self.progress = progress
        self.interval_s = interval_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="heartbeat")

    def beat_now(self) -> None:
        self._wake.set()

    def set_phase(self, phase: WorkerPhase, message: str | None = None) -> None:
        if phase != self.progress.phase or message != self.progress.message:
            self.progress.phase = phase
            self.progress.message = message
            self.beat_now()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while not self.client.lease_lost.is_set():
            try:
                await self.client.heartbeat(self.progress.request())
            except LeaseLostError:
                return
            except FactoryError as exc:
                log.warning("worker.heartbeat_refused error=%s", exc)
            except Exception:  # a bug must not end the heartbeats: the lease would expire
                log.exception("worker.heartbeat_error")
            await wait_event(self._wake, self.interval_s)
            self._wake.clear()
