"""AuthThrottle on its own, with a clock the test moves: the window, Retry-After, the bound."""

from __future__ import annotations

import pytest

from ai_factory.core.errors import TooManyAttemptsError
from ai_factory.orchestrator.api.auth_throttle import AuthThrottle, Secret

API, WORKER = Secret.API_TOKEN, Secret.WORKER_TOKEN


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limit_blocks_until_the_oldest_failure_leaves_the_window() -> None:
    clock = FakeClock()
    throttle = AuthThrottle(max_failures=3, window_s=60, clock=clock)
    for at in (1000, 1010, 1030):
        clock.now = at
        throttle.check("a", API)
        throttle.record_failure("a", API)
    clock.now = 1059.5
    with pytest.raises(TooManyAttemptsError) as refused:
        throttle.check("a", API)
    assert refused.value.retry_after_s == 1  # the failure at 1000 leaves at 1060
    assert str(refused.value) == "too many failed attempts; retry in 1 s"
    throttle.check("b", API)  # other addresses are not affected,
    throttle.check("a", WORKER)  # nor guesses at other secrets
    clock.now = 1060
    throttle.check("a", API)  # two failures left in the window
    throttle.record_failure("a", API)
    assert throttle.retry_after_s("a", API) == 10  # the one at 1010 leaves at 1070


def test_failures_older_than_the_window_do_not_add_up() -> None:
    clock = FakeClock()
    throttle = AuthThrottle(max_failures=3, window_s=60, clock=clock)
    for _ in range(10):
        throttle.record_failure("a", API)
        clock.now += 31
    assert throttle.retry_after_s("a", API) == 0


def test_the_state_is_bounded_forgetting_the_least_recent_address() -> None:
    clock = FakeClock()
    throttle = AuthThrottle(max_failures=2, window_s=60, max_clients=100, clock=clock)
    for _ in range(2):
        throttle.record_failure("first", API)
    for n in range(1000):
        throttle.record_failure(f"10.0.{n // 256}.{n % 256}", API)
    assert len(throttle._failures) == 100
    assert throttle.retry_after_s("first", API) == 0
    throttle.record_failure("10.0.3.231", API)  # the most recent survive
    assert throttle.retry_after_s("10.0.3.231", API) == 60
