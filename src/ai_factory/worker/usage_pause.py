"""The worker's side of a usage limit: report it at once, and send nothing until its reset.

Owns what the loop does about subscription limits between runs (`UsagePause`):

- a run Claude rejected is reported the moment the stream says so (`rejected_now`, the
  driver's callback), which pauses the whole factory; the decision after the run
  (`note`) remembers when to resume, and reports the rejection if nobody has yet;
- before every run (`wait_while_paused`) the worker waits out its own known limit and
  the factory's pause (anyone's rejection, asked of the orchestrator), plus
  LIMIT_RESET_MARGIN_SECONDS, so that no request is sent between a refusal and its
  reset; waiting heartbeats with phase ``limited``;
- during a run, the Claude driver's hook asks `factory_pause` after each tool call and
  ends the session when the factory is paused;
- a window close to its limit (``allowed_warning``) is reported the moment the stream
  says so, once per utilization. From then until the window resets (or is refused) the
  factory goes single file: one worker (the orchestrator names it) sends requests, and the
  others end their runs at the next tool call and wait their turn before the next run, so
  that when the refusal comes no other worker has a request on its way.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from ai_factory.core.errors import FactoryError
from ai_factory.core.models import FactoryPause, LimitReport, LimitStatus, WorkerPhase
from ai_factory.worker.agent import IterationResult
from ai_factory.worker.agent.result import RateLimitSignal
from ai_factory.worker.client import Heartbeat, LeaseLostError, OrchestratorClient
from ai_factory.worker.run_outcome import LimitDecision, rejection_report, warning_report

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

TURN_POLL_S = 2.0  # near a limit, how often a worker waiting its turn asks again


class UsagePause:
    def __init__(
        self,
        *,
        client: OrchestratorClient,
        heartbeat: Heartbeat,
        sleep: Sleep,
        reset_margin_s: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.client = client
        self.heartbeat = heartbeat
        self.sleep = sleep  # the loop's: wakes early when the worker must stop
        self.reset_margin_s = reset_margin_s
        self.clock = clock
        self._resume_at: datetime | None = None  # a limit's reset this worker waits for
        self._rejection_sent = False  # this run's rejected limit is reported already
        self._warned: tuple[str | None, float | None] | None = None
        self._waiting_turn = False  # logged once per wait, not per poll
        self._warned_in_run: set[str | None] = set()  # windows whose warning this run reported

    def new_run(self) -> None:
        self._rejection_sent = False
        self._warned_in_run.clear()

    async def wait_for_reset(self, decision: LimitDecision) -> None:
        """The run was refused: wait until its window resets."""
        assert decision.resume_at is not None
        self.note(decision)
        log.warning(
            "limit.waiting until=%s source=%s window=%s reason=%s",
            decision.resume_at.isoformat(timespec="seconds"), decision.reset_source,
            decision.rate_limit_type, decision.reason,
        )  # fmt: skip
        await self._wait_until(self._resume_at or decision.resume_at)

    def note(self, decision: LimitDecision) -> None:
        """Remember when to resume, and pause the factory (unless the factory's pause it is)."""
        if decision.reset_source != "factory" and not self._rejection_sent:
            self.client.report_limit(rejection_report(decision))
        if decision.resume_at is not None:
            self._resume_at = max(filter(None, (self._resume_at, decision.resume_at)))

    async def wait_while_paused(self) -> None:
        """Before a run: wait out this worker's known limit and the factory's pause, so that
        no request is sent between a rejection (anyone's) and its reset."""
        while True:
            resume_at = self._resume_at
            pause = await self._ask()
            if pause is not None and pause.paused_until is not None:
                margin = timedelta(seconds=self.reset_margin_s)
                resume_at = max(filter(None, (resume_at, pause.paused_until + margin)))
            if resume_at is None or resume_at <= self.clock():
                self._resume_at = None
                if pause is None or not self._waits_turn(pause):
                    if self._waiting_turn:
                        log.info("limit.single_file its turn (or the window reset)")
                    self._waiting_turn = False
                    return
                await self._wait_turn(pause)
                continue
            log.warning("limit.factory_paused until=%s window=%s (not starting a run)",
                        resume_at.isoformat(timespec="seconds"),
                        pause.rate_limit_type if pause else None)  # fmt: skip
            await self._wait_until(resume_at)

    async def factory_pause(self) -> RateLimitSignal | None:
        """For the Claude driver's hook: the factory's pause as this run's rejected limit."""
        try:
            pause = await self._ask()
        except LeaseLostError:
            return None  # the lease watcher stops the worker
        if pause is not None and pause.paused_until is None and self._waits_turn(pause):
            return RateLimitSignal(status="rejected", rate_limit_type=pause.rate_limit_type,
                                   raw={"source": "factory", "turn": True,
                                        "reason": pause.reason})  # fmt: skip
        if pause is None or pause.paused_until is None or pause.paused_until <= self.clock():
            return None
        return RateLimitSignal(status="rejected", resets_at=math.ceil(pause.paused_until.timestamp()),
                               rate_limit_type=pause.rate_limit_type,
                               raw={"source": "factory"})  # fmt: skip

    def rejected_now(self, signal: RateLimitSignal) -> None:
        """Claude said rejected: pause the factory now, before this run has even ended."""
        resets = signal.window_resets_at
        at = datetime.fromtimestamp(resets, UTC) if resets else None
        window = signal.rate_limit_type or "unknown window"
        self.client.report_limit(LimitReport(
            status=LimitStatus.REJECTED,
            resets_at=at,
            rate_limit_type=signal.rate_limit_type,
            utilization=1.0,
            message=f"usage limit ({window}) reached"
            + (f"; resets {at.isoformat(timespec='seconds')}" if at else ""),
        ))  # fmt: skip
        self._rejection_sent = True

    def report_warning(self, result: IterationResult) -> None:
        """After a run: its last warning, unless the run was refused."""
        if result.warning is not None and result.rejected is None:
            self._report_warning(result.warning)

    def warned_now(self, warning: RateLimitSignal) -> None:
        """During a run: the first warning of each window, at once (the factory goes single
        file); the utilization it climbs to is reported when the run ends."""
        if warning.rate_limit_type in self._warned_in_run:
            return
        self._warned_in_run.add(warning.rate_limit_type)
        self._report_warning(warning)

    def _report_warning(self, warning: RateLimitSignal) -> None:
        """A window close to its limit, reported once per (window, utilization)."""
        key = (warning.rate_limit_type, warning.window_utilization)
        if key == self._warned:
            return
        self._warned = key
        self.client.report_limit(warning_report(warning))

    def _waits_turn(self, pause: FactoryPause) -> bool:
        holder = pause.single_file_worker
        return holder is not None and holder != self.client.worker_id

    async def _wait_turn(self, pause: FactoryPause) -> None:
        if not self._waiting_turn:
            log.warning("limit.single_file waiting for its turn (%s)", pause.reason)
        self._waiting_turn = True
        self.heartbeat.set_phase(WorkerPhase.LIMITED, f"{pause.reason}: waiting for its turn")
        await self.sleep(TURN_POLL_S)

    async def _wait_until(self, resume_at: datetime) -> None:
        self.heartbeat.set_phase(
            WorkerPhase.LIMITED, f"usage limit; resuming at {resume_at.isoformat(timespec='seconds')}"
        )
        await self.sleep((resume_at - self.clock()).total_seconds())
        log.info("limit.resumed")

    async def _ask(self) -> FactoryPause | None:
        try:
            return await self.client.pause()
        except LeaseLostError:
            raise
        except FactoryError as exc:  # an orchestrator without the route, or refusing: go on
            log.warning("limit.pause_unknown error=%s", exc)
            return None

