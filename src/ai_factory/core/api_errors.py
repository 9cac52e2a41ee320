"""The API's error answers read back by its clients (CLI, intake, worker).

The orchestrator answers every error as JSON ``{"error": "..."}`` with a status that
names its kind (`orchestrator.api.errors`); this turns such a response back into
the matching `FactoryError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ai_factory.core.errors import HTTP_STATUS, FactoryError, InvalidInputError

if TYPE_CHECKING:  # any response with status_code, reason_phrase, text and json() will do
    import httpx

ERROR_BY_STATUS: dict[int, type[FactoryError]] = {
    **{status: error for error, status in HTTP_STATUS.items()},
    413: InvalidInputError,  # the body-size limit answers before any handler
}


def error_message(response: httpx.Response) -> str:
    """The server's own words: the JSON `error` field, else the body, else the reason."""
    try:
        body = response.json()
    except ValueError:
        return response.text or response.reason_phrase
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return response.text or response.reason_phrase


def error_from_response(response: httpx.Response) -> FactoryError:
    """The `FactoryError` for an error response, its message ending in the HTTP status."""
    error = ERROR_BY_STATUS.get(response.status_code, FactoryError)
    return error(f"{error_message(response)} (HTTP {response.status_code})")
