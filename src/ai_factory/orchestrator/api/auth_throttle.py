"""Throttling of failed authentication, per client address.

A wrong credential counts as a failure of the address it came from, against the secret
it guessed at: the API token (a Bearer header on an admin route, or the token typed into
the dashboard's login: one count for both) or a worker's token. After `max_failures` of
them within `window_s` seconds, every attempt of that address at that secret is answered
429 with Retry-After, without its credential being checked, until the oldest of those
failures is `window_s` old. A missing credential is not a failure (no guess was made),
and a success clears nothing: an address holding one valid token cannot buy more guesses
at another, and nobody's success touches the counts of others. (Counting per secret
keeps workers on this machine working while a local client with a wrong API token is
refused.)

The state is in memory, per process: a restart forgets it, and each orchestrator process
counts on its own. It holds at most `max_clients` (address, secret) pairs; past that, the
one that failed least recently is forgotten. The address is the connection's peer as
uvicorn reports it: behind a reverse proxy every client has the proxy's address unless the
proxy is trusted to forward theirs (uvicorn's `--forwarded-allow-ips`).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from enum import StrEnum

from ai_factory.core.errors import TooManyAttemptsError

MAX_FAILURES = 10
WINDOW_S = 60.0
MAX_CLIENTS = 10_000


class Secret(StrEnum):
    API_TOKEN = "api-token"
    WORKER_TOKEN = "worker-token"


class AuthThrottle:
    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        # (address, secret) -> times of its last `max_failures` failures, oldest first;
        # the pair that failed least recently first
        self._failures: OrderedDict[tuple[str, Secret], deque[float]] = OrderedDict()

    def retry_after_s(self, address: str, secret: Secret) -> int:
        """Seconds until `address` may try `secret` again; 0 when it may now."""
        times = self._recent((address, secret))
        if len(times) < self.max_failures:
            return 0
        return max(1, math.ceil(times[0] + self.window_s - self._clock()))

    def check(self, address: str, secret: Secret) -> None:
        """Before looking at a credential: `TooManyAttemptsError` while `address` is blocked."""
        wait_s = self.retry_after_s(address, secret)
        if wait_s:
            raise TooManyAttemptsError(
                f"too many failed attempts; retry in {wait_s} s", retry_after_s=wait_s
            )

    def record_failure(self, address: str, secret: Secret) -> None:
        key = (address, secret)
        times = self._recent(key)
        times.append(self._clock())
        self._failures[key] = times
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def _recent(self, key: tuple[str, Secret]) -> deque[float]:
        """The failures of `key` still inside the window (forgetting the key if none are)."""
        times = self._failures.get(key)
        if times is None:
            return deque(maxlen=self.max_failures)
        horizon = self._clock() - self.window_s
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[key]
        return times
