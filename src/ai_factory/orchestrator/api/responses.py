"""The API's error answers as `/openapi.json` describes them.

Every error is `{"error": "..."}` (`errors.install_error_handlers`, and the body-size and
cross-site middlewares). Routers and routes list the statuses they can answer with
`errors(...)`; naming 422 here also replaces FastAPI's own description of it, whose
shape (`{"detail": [...]}`) this API never sends.
"""

from __future__ import annotations

from typing import Any

from ai_factory.core.models import WireModel


class ErrorBody(WireModel):
    error: str


WHEN: dict[int, str] = {
    401: "Missing or wrong token: the API token, or the worker's own.",
    403: "A browser request sent from another site (its Origin names another host).",
    404: "No such work item, worker or learning (or the id is malformed).",
    409: "The action does not apply to the current state, or the worker's lease is no longer "
    "current.",
    413: "The request body is larger than the cap.",
    422: "Invalid body, path or query: a value out of range, JSON that does not parse or nests "
    "too deeply.",
    429: "Too many failed authentications from this address; retry after Retry-After seconds.",
    503: "The database (or Redis) failed; the request can be retried.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for FastAPI: each status with the error body and when it happens."""
    described: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        described[status] = {"model": ErrorBody, "description": WHEN[status]}
        if status == 429:
            described[status]["headers"] = _RETRY_AFTER
    return described


# What most routes share: every admin route may be refused (401, 429) or find the database
# down (503); every route with a body may be too large (413), sent cross-site (403) or invalid.
ADMIN = errors(401, 422, 429, 503)
CHANGE = errors(403, 413)
