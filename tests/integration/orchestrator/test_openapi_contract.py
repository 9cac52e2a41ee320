"""The API keeps the contract `/openapi.json` states, checked by schemathesis over real HTTP.

Schemathesis generates requests from the schema (valid ones and invalid ones) for every
operation and checks each answer: never a 5xx, its status documented for the operation,
its body (and headers) as documented. The server is a fresh factory without an API token
and with intake configured, so the webhook and intake routes are in the schema too. It
runs no scheduler, spawner or intake loop (`ServerThread`): generated items stay queued
and no worker starts, so no operation needs excluding. The streaming routes (`/live`, the
dashboard) are not in the schema, and the worker log route reads by offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.server import ServerThread
from tests.support.settings import make_settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def factory(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        github_token="ghp_not_used",  # intake configured: its routes are served and described
        repos=["acme/widgets"],
        github_webhook_secret="webhook secret",
    )
    server = ServerThread(settings).start()
    yield server
    server.stop()


# Per operation and per mode (valid requests, then invalid ones): a few examples each, the
# same ones every run (derandomize: a fixed seed), none allowed longer than the deadline.
# 31 operations, ~450 requests: 10-20 s on a busy 2-core machine.
EXAMPLES = settings(
    max_examples=10,
    deadline=5000,  # ms per example; a request here takes well under 100 ms
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),  # how fast examples come is not under test
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
)


def describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(each) for each in exc.exceptions)
    return " ".join(str(exc).split())[:300]


def test_every_answer_is_documented_and_no_request_gets_a_5xx(factory: ServerThread) -> None:
    # Not `schemathesis.pytest.from_fixture`: its lazy schemas need pytest < 9.
    api = schemathesis.openapi.from_url(f"{factory.url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @EXAMPLES
            @given(case=operation.as_strategy(generation_mode=mode))
            def conforms(case: schemathesis.Case) -> None:
                case.call_and_validate(checks=CHECKS)

            try:
                conforms()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                continue
            except (AssertionError, BaseExceptionGroup, requests.RequestException) as exc:
                # a failed check, several, or no answer at all: reported with the others
                failures.append(f"{operation.label} ({mode.value}): {describe(exc)}")
    assert not failures, "\n\n".join(failures)


def test_the_schema_describes_the_error_answers(factory: ServerThread) -> None:
    doc = httpx.get(f"{factory.url}/openapi.json").json()
    error = {"$ref": "#/components/schemas/ErrorBody"}
    assert doc["components"]["schemas"]["ErrorBody"]["required"] == ["error"]

    def documented(method: str, path: str) -> dict[str, dict]:
        return doc["paths"][path][method]["responses"]

    submit = documented("post", "/api/work")
    assert {"200", "201", "403", "409", "413", "422", "503"} <= submit.keys()
    assert submit["422"]["content"]["application/json"]["schema"] == error
    assert {"404", "409"} <= documented("post", "/api/work/{item_id}/cancel").keys()
    heartbeat = documented("post", "/api/worker/{worker_id}/heartbeat")
    assert {"401", "404", "409", "413", "422", "429", "503"} <= heartbeat.keys()
    assert "Retry-After" in heartbeat["429"]["headers"]
    assert {"401", "429"} <= documented("get", "/api/status").keys()
    assert {"202", "200", "401", "413", "422"} <= documented("post", "/webhooks/github").keys()
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")) and path != "/healthz":
                    assert answer["content"]["application/json"]["schema"] == error, (
                        method,
                        path,
                        status,
                    )
