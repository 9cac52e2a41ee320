"""The factory's exception tree.

Every error a user can cause or see derives from `FactoryError`. Driver errors
(psycopg, redis, githubkit, the SDK) are translated into these at the boundary
with ``raise ... from exc`` so callers never depend on a driver's types. The HTTP
layer maps each class to one status code in one handler.
"""

from __future__ import annotations


class FactoryError(Exception):
    """Base of every error raised on purpose by the factory."""


class ConfigError(FactoryError):
    """A setting is missing or invalid; the message names the variable."""


class NotFoundError(FactoryError):
    """The named work item, worker or learning does not exist."""


class ConflictError(FactoryError):
    """The requested transition does not apply to the current state."""


class InvalidInputError(FactoryError):
    """The request is well-formed JSON but asks for something impossible."""


class AuthError(FactoryError):
    """Missing or wrong credentials."""


class TooManyAttemptsError(FactoryError):
    """Too many failed authentications from one client: refused unchecked for a while."""

    def __init__(self, message: str, *, retry_after_s: int = 0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreError(FactoryError):
    """The database or coordination backend failed (not the caller's fault)."""


class ApiUnreachableError(FactoryError):
    """The orchestrator API could not be reached."""


# How the HTTP API answers each kind of error (and how its clients read the answer back).
HTTP_STATUS: dict[type[FactoryError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    InvalidInputError: 422,
    AuthError: 401,
    TooManyAttemptsError: 429,
    StoreError: 503,
}
