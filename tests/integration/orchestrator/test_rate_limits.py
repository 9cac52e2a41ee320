"""The rate limiter decides from persisted state: budgets, windows, costs, workers."""

from datetime import UTC, datetime, timedelta

import pytest

from ai_factory.core.db.database import Database
from ai_factory.core.models import (
    CreateWorkItemInput,
    FactoryPause,
    IterationReport,
    LimitReport,
    LimitStatus,
)
from ai_factory.orchestrator.clock import Clock
from ai_factory.orchestrator.services import Services
from tests.support.ledger import claim_next
from tests.support.settings import make_settings


class ShiftedClock(Clock):
    """The factory's clock, moved by the test."""

    def __init__(self) -> None:
        super().__init__("Europe/Paris")
        self.shift = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.shift


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


def build(tmp_path, database_url: str, db: Database, clock: Clock, **overrides) -> Services:
    values = {"cooldown_seconds": 0, "max_workers": 5, **overrides}
    return Services.build(make_settings(tmp_path, database_url=database_url, **values), db, clock=clock)


async def run_iterations(services: Services, count: int, cost: float = 0.0) -> None:
    item, _ = await services.queue.add(CreateWorkItemInput(repo="https://git.example/srv/r.git", spec="- [ ] x"))
    record = await claim_next(services.ledger)
    assert record is not None
    worker = record.worker
    for n in range(1, count + 1):
        await services.workers.record_iteration(
            record, IterationReport(iteration=n, input_tokens=100, output_tokens=50, cost_usd=cost)
        )
    await services.workers.kill(worker.id, reason="test done")


async def test_daily_budget_blocks_until_the_day_changes(tmp_path, database_url, db, clock) -> None:
    services = build(tmp_path, database_url, db, clock, daily_budget=3)
    await run_iterations(services, 3)
    status = await services.rate_limiter.status()
    assert status.iterations_today == 3 and status.tokens_today == 450
    assert not status.can_spawn and "daily_budget" in status.blocked_by

    # A restarted orchestrator (new limiter, same database) still counts them.
    again = build(tmp_path, database_url, db, clock, daily_budget=3)
    assert "daily_budget" in (await again.rate_limiter.status()).blocked_by

    clock.shift = timedelta(days=1)
    tomorrow = await services.rate_limiter.status()
    assert tomorrow.iterations_today == 0 and tomorrow.can_spawn


async def test_a_rejected_window_pauses_spawning_until_it_resets(tmp_path, database_url, db, clock) -> None:
    services = build(tmp_path, database_url, db, clock)
    resets = clock.now() + timedelta(hours=2)
    await services.rate_limiter.record_limit(
        LimitReport(status=LimitStatus.REJECTED, resets_at=resets, rate_limit_type="five_hour")
    )
    status = await services.rate_limiter.status()
    assert not status.can_spawn and status.blocked_by == ["usage_limit"]
    assert status.paused_until == resets and status.pause_reason == "five_hour usage limit"

    clock.shift = timedelta(hours=2, seconds=1)
    assert (await services.rate_limiter.status()).can_spawn


async def test_a_late_warning_does_not_lift_a_rejection_in_force(tmp_path, database_url, db, clock) -> None:
    """Another worker's warning, sent before the refusal, arriving after it: still paused,
    and every worker asking for the pause (GET .../pause) is told until when."""
    services = build(tmp_path, database_url, db, clock)
    resets = clock.now() + timedelta(minutes=5)
    rejected = LimitReport(status=LimitStatus.REJECTED, resets_at=resets, rate_limit_type="five_hour")
    await services.rate_limiter.record_limit(rejected)
    await services.rate_limiter.record_limit(
        LimitReport(status=LimitStatus.ALLOWED_WARNING, utilization=0.97, rate_limit_type="five_hour")
    )
    pause = await services.rate_limiter.pause()
    assert pause.paused_until == resets and pause.rate_limit_type == "five_hour"
    assert "usage_limit" in (await services.rate_limiter.status()).blocked_by

    clock.shift = timedelta(minutes=5, seconds=1)
    assert (await services.rate_limiter.pause()).paused_until is None


async def test_a_warning_shows_utilization_without_pausing(tmp_path, database_url, db, clock) -> None:
    services = build(tmp_path, database_url, db, clock)
    await services.rate_limiter.record_limit(
        LimitReport(status=LimitStatus.ALLOWED_WARNING, utilization=0.82, rate_limit_type="seven_day")
    )
    status = await services.rate_limiter.status()
    assert status.can_spawn
    assert [(w.window_type, w.status, w.utilization) for w in status.windows] == [("seven_day", "allowed_warning", 0.82)]


async def test_rejection_without_a_reset_time_still_pauses(tmp_path, database_url, db, clock) -> None:
    services = build(tmp_path, database_url, db, clock)
    await services.rate_limiter.record_limit(LimitReport(status=LimitStatus.REJECTED))
    status = await services.rate_limiter.status()
    assert "usage_limit" in status.blocked_by and status.paused_until is not None
    assert status.paused_until > datetime.now(UTC)


async def test_cost_budgets(tmp_path, database_url, db, clock) -> None:
    services = build(tmp_path, database_url, db, clock, daily_cost_budget_usd=0.05, monthly_cost_budget_usd=0.5)
    await run_iterations(services, 2, cost=0.03)
    status = await services.rate_limiter.status()
    assert status.cost_today_usd == pytest.approx(0.06) and status.cost_month_usd == pytest.approx(0.06)
    assert status.blocked_by == ["daily_cost_budget"]


async def test_max_workers_zero_accepts_work_but_starts_none(tmp_path, database_url, db, clock) -> None:
    services = build(tmp_path, database_url, db, clock, max_workers=0)
    await services.queue.add(CreateWorkItemInput(repo="https://git.example/srv/r.git", spec="- [ ] x"))
    status = await services.rate_limiter.status()
    assert not status.can_spawn and "max_workers" in status.blocked_by


async def test_running_workers_and_cooldown_come_from_the_database(tmp_path, database_url, db, clock) -> None:
    services = build(tmp_path, database_url, db, clock, max_workers=1, cooldown_seconds=60)
    item, _ = await services.queue.add(CreateWorkItemInput(repo="https://git.example/srv/r.git", spec="- [ ] x"))
    await claim_next(services.ledger)
    fresh = build(tmp_path, database_url, db, clock, max_workers=1, cooldown_seconds=60)
    status = await fresh.rate_limiter.status()
    assert status.active_workers == 1
    assert set(status.blocked_by) == {"max_workers", "cooldown"} and status.cooldown_remaining > 50



async def test_a_window_close_to_its_limit_lets_one_worker_go_on_at_a_time(
    tmp_path, database_url, db, clock
) -> None:
    """After Claude's warning, every worker asking for the pause hears the same name: the
    longest-running live worker's. When it ends, the next one has the turn; when the
    window resets, or is refused, nobody goes single file any more."""
    services = build(tmp_path, database_url, db, clock)
    for n in range(2):
        await services.queue.add(CreateWorkItemInput(repo=f"https://git.example/srv/r{n}.git", spec="- [ ] x"))
    first, second = await claim_next(services.ledger), await claim_next(services.ledger)
    assert first is not None and second is not None
    assert (await services.rate_limiter.pause()).single_file_worker is None  # no warning yet

    resets = clock.now() + timedelta(hours=1)
    await services.rate_limiter.record_limit(LimitReport(
        status=LimitStatus.ALLOWED_WARNING, resets_at=resets, rate_limit_type="five_hour", utilization=0.9
    ))  # fmt: skip
    pause = await services.rate_limiter.pause()
    assert pause.paused_until is None and pause.single_file_worker == first.id
    status = await services.rate_limiter.status()  # what /api/status, the CLI and dashboard show
    assert status.can_spawn and status.pause_reason is None
    assert (status.single_file_worker, status.single_file_reason) == (first.id, pause.reason)
    assert pause.reason == "five_hour usage window close to its limit (90% used): one worker at a time"
    again = build(tmp_path, database_url, db, clock)  # another orchestrator on the database
    assert (await again.rate_limiter.pause()).single_file_worker == first.id

    await services.workers.kill(first.id, reason="its item ended")
    assert (await services.rate_limiter.pause()).single_file_worker == second.id

    clock.shift = timedelta(hours=1, seconds=1)  # the window reset
    assert (await services.rate_limiter.pause()).single_file_worker is None

    clock.shift = timedelta(0)
    await services.rate_limiter.record_limit(
        LimitReport(status=LimitStatus.REJECTED, resets_at=resets, rate_limit_type="five_hour")
    )
    refused = await services.rate_limiter.pause()
    assert refused.paused_until == resets and refused.single_file_worker is None


async def test_going_single_file_can_be_switched_off(tmp_path, database_url, db, clock) -> None:
    services = build(tmp_path, database_url, db, clock, limit_single_file=False)
    await services.queue.add(CreateWorkItemInput(repo="https://git.example/srv/r.git", spec="- [ ] x"))
    assert await claim_next(services.ledger) is not None
    await services.rate_limiter.record_limit(LimitReport(
        status=LimitStatus.ALLOWED_WARNING, resets_at=clock.now() + timedelta(days=1),
        rate_limit_type="seven_day", utilization=0.95,
    ))  # fmt: skip
    assert await services.rate_limiter.pause() == FactoryPause()
