"""Failed authentication is throttled per client address, over real HTTP.

The clients connect from different loopback addresses (127.0.0.1, 127.0.0.2, ...), which
the server sees as different clients.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerThread
from tests.support.settings import make_settings

TOKEN = "the-right-t0ken"
WINDOW_S = 3.0
LIMIT = 10
SPEC = "- [ ] Create `hello.py`\n"


@pytest.fixture
def clients() -> Iterator[list[httpx.Client]]:
    opened: list[httpx.Client] = []
    yield opened
    for client in opened:
        client.close()


def connect(server: ServerThread, address: str, clients: list[httpx.Client]) -> httpx.Client:
    """An HTTP client of `server` whose connections come from `address`."""
    transport = httpx.HTTPTransport(local_address=address)
    client = httpx.Client(base_url=server.url, transport=transport, timeout=10)
    clients.append(client)
    return client


def start_server(tmp_path: Path, database_url: str, **overrides: object) -> Iterator[ServerThread]:
    settings = make_settings(
        tmp_path, database_url=database_url, factory_api_token=TOKEN, **overrides
    )
    server = ServerThread(settings).start()
    yield server
    server.stop()


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    """A factory with an API token and a short window."""
    yield from start_server(
        tmp_path, database_url, auth_failure_limit=LIMIT, auth_failure_window_seconds=WINDOW_S
    )


@pytest.fixture
def default_server(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    yield from start_server(tmp_path, database_url)


@pytest.fixture
def client_from(server: ServerThread, clients: list[httpx.Client]) -> Callable[[str], httpx.Client]:
    """`client_from("127.0.0.2")`: a client of `server` connecting from that address."""
    return lambda address: connect(server, address, clients)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    wait_s = int(response.headers["retry-after"])
    assert 1 <= wait_s <= WINDOW_S
    assert response.json() == {"error": f"too many failed attempts; retry in {wait_s} s"}


def test_wrong_api_tokens_are_throttled_per_address_until_the_window_passes(
    client_from: Callable[[str], httpx.Client],
) -> None:
    guesser, other = client_from("127.0.0.1"), client_from("127.0.0.2")
    for _ in range(LIMIT):
        assert guesser.get("/api/status", headers=bearer("wrong")).status_code == 401
    assert_throttled(guesser.get("/api/status", headers=bearer("wrong")))
    # Blocked means not checked: the right token from the blocked address waits too.
    assert_throttled(guesser.get("/api/status", headers=bearer(TOKEN)))
    assert_throttled(guesser.post("/api/work", json={"repo": "/r", "spec": SPEC}))

    # Another address is not affected, and its success frees nobody.
    assert other.get("/api/status", headers=bearer(TOKEN)).status_code == 200
    assert_throttled(guesser.get("/api/status", headers=bearer(TOKEN)))

    time.sleep(WINDOW_S + 0.2)
    assert guesser.get("/api/status", headers=bearer(TOKEN)).status_code == 200


def test_a_burst_of_300_wrong_tokens_gets_10_answers_and_290_refusals(
    default_server: ServerThread, clients: list[httpx.Client]
) -> None:
    guessers = [connect(default_server, "127.0.0.3", clients) for _ in range(10)]

    def guess(n: int) -> int:
        return guessers[n % 10].get("/api/work", headers=bearer(f"guess-{n}")).status_code

    with ThreadPoolExecutor(10) as pool:  # defaults: 10 failures in 60 s
        statuses = list(pool.map(guess, range(300)))

    assert (statuses.count(401), statuses.count(429)) == (10, 290)
    assert 0 < int(guessers[0].get("/api/work").headers["retry-after"]) <= 60


def test_requests_without_a_credential_are_not_counted(
    client_from: Callable[[str], httpx.Client],
) -> None:
    client = client_from("127.0.0.4")
    for _ in range(3 * LIMIT):
        assert client.get("/api/status").status_code == 401
    assert client.get("/api/status", headers=bearer(TOKEN)).status_code == 200


def test_wrong_worker_tokens_are_throttled(client_from: Callable[[str], httpx.Client]) -> None:
    admin, worker = client_from("127.0.0.1"), client_from("127.0.0.5")
    item = admin.post("/api/work", json={"repo": "https://git.example/r.git", "spec": SPEC}, headers=bearer(TOKEN)).json()
    reg = admin.post("/api/worker/register", json={"workItemId": item["id"]}, headers=bearer(TOKEN))
    registered = reg.json()
    beat_path = f"/api/worker/{registered['workerId']}/heartbeat"
    beat = {"iteration": 1, "tokens": 1, "phase": "running"}

    for _ in range(LIMIT):
        assert worker.post(beat_path, json=beat, headers=bearer("wrong")).status_code == 401
    assert_throttled(worker.post(beat_path, json=beat, headers=bearer(registered["token"])))
    assert_throttled(
        worker.get(
            "/api/learnings", headers={**bearer("wrong"), "X-Worker-Id": registered["workerId"]}
        )
    )
    # The worker's own address is another one: it goes on working.
    ok = admin.post(beat_path, json=beat, headers=bearer(registered["token"]))
    assert ok.status_code == 200
    # Guesses at worker tokens do not use up the address's tries at the API token.
    assert worker.get("/api/status", headers=bearer(TOKEN)).status_code == 200


def test_wrong_dashboard_logins_are_throttled(client_from: Callable[[str], httpx.Client]) -> None:
    browser, other = client_from("127.0.0.6"), client_from("127.0.0.7")
    for _ in range(LIMIT):
        assert browser.post("/login", data={"token": "wrong", "next": "/"}).status_code == 401
    refused = browser.post("/login", data={"token": TOKEN, "next": "/"})
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= WINDOW_S
    assert "Too many failed attempts; retry in" in refused.text
    assert "set-cookie" not in refused.headers
    # One throttle for the API and the dashboard: the API refuses this address too.
    assert_throttled(browser.get("/api/status", headers=bearer(TOKEN)))
    assert other.post("/login", data={"token": TOKEN, "next": "/"}).status_code == 303


def test_the_learnings_route_is_no_way_around_the_count(
    client_from: Callable[[str], httpx.Client],
) -> None:
    """Its bearer may be the API token or the worker's: a wrong one counts against both."""
    admin, guesser = client_from("127.0.0.1"), client_from("127.0.0.8")
    item = admin.post("/api/work", json={"repo": "https://git.example/r.git", "spec": SPEC}, headers=bearer(TOKEN)).json()
    reg = admin.post("/api/worker/register", json={"workItemId": item["id"]}, headers=bearer(TOKEN))
    as_worker = {"X-Worker-Id": reg.json()["workerId"]}

    for n in range(LIMIT):
        wrong = guesser.get("/api/learnings", headers={**as_worker, **bearer(f"guess-{n}")})
        assert wrong.status_code == 401
    # The right API token is not even compared now, on this route or any other.
    assert_throttled(guesser.get("/api/learnings", headers={**as_worker, **bearer(TOKEN)}))
    assert_throttled(guesser.get("/api/status", headers=bearer(TOKEN)))
