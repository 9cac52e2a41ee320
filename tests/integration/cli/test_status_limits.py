"""`factory status` says when a usage limit holds the factory back, and how."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ai_factory.core.models import LimitReport, LimitStatus
from tests.support.cli import factory
from tests.support.ledger import spawn_record
from tests.support.server import ServerThread
from tests.support.work_api import spec_of, submit


def test_status_names_the_worker_that_has_the_turn_near_a_limit_then_the_pause(
    api: ServerThread, cli_env: dict[str, str]
) -> None:
    spawned = spawn_record(api, submit(api, "https://git.example/srv/r.git", spec_of("one")))
    resets = datetime.now(UTC) + timedelta(hours=1)
    api.call(api.services.rate_limiter.record_limit(LimitReport(
        status=LimitStatus.ALLOWED_WARNING, resets_at=resets, rate_limit_type="five_hour", utilization=0.85
    )))  # fmt: skip

    near = factory("status", env=cli_env)

    assert near.returncode == 0, near.stderr
    assert (
        "near limit five_hour usage window close to its limit (85% used): one worker at a time;"
        f" worker {str(spawned.worker_id)[:8]} has the turn"
    ) in near.stdout.splitlines()

    api.call(api.services.rate_limiter.record_limit(
        LimitReport(status=LimitStatus.REJECTED, resets_at=resets, rate_limit_type="five_hour")
    ))  # fmt: skip
    paused = factory("status", env=cli_env)

    assert paused.returncode == 0, paused.stderr
    limiter = next(line for line in paused.stdout.splitlines() if line.startswith("limiter"))
    assert limiter.startswith("limiter    waiting: ") and "usage_limit" in limiter
    assert "by the five_hour usage limit: no worker sends a request before then" in paused.stdout
    assert "near limit" not in paused.stdout
