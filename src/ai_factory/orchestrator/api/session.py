"""Browser sessions and CSRF tokens (the API's auth and the dashboard use them): stateless,
signed, never holding the API token.

A session cookie is ``v1.<issued>.<nonce>.<signature>``: the time it was issued, a
random nonce, and an HMAC over both. The HMAC key is derived from FACTORY_API_TOKEN
(``HMAC(token, "factory-dashboard-session-v1")``), so the cookie proves that its holder
once presented the token without containing it, changing the token ends every
session, and a restart of the orchestrator does not. Without an API token the key is
random per process: the dashboard is open, but every action still needs the session's
CSRF token.

The CSRF token of a session is ``HMAC(key, "csrf:" + nonce)``. Forms carry it in a
hidden ``csrf`` field, `fetch` calls in the ``X-CSRF-Token`` header. A cross-site page
can neither read it (same-origin policy) nor send the cookie (``SameSite=Strict``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

SESSION_COOKIE = "factory_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SESSION_MAX_AGE_S = 7 * 24 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_KEY_LABEL = b"factory-dashboard-session-v1"
_VERSION = "v1"


@dataclass(frozen=True, slots=True)
class Session:
    """A verified session: its nonce and the CSRF token that goes with it."""

    nonce: str
    issued_at: int
    csrf_token: str

    def csrf_matches(self, candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(
            candidate.encode(),
            self.csrf_token.encode(),  # type: ignore[union-attr]
        )


class SessionCodec:
    """Issues and verifies session cookies under one key."""

    def __init__(self, *, key: bytes, max_age_s: int = SESSION_MAX_AGE_S) -> None:
        self._key = key
        self.max_age_s = max_age_s

    @classmethod
    def for_token(cls, api_token: str) -> SessionCodec:
        """Sessions that prove knowledge of `api_token` (stable across restarts)."""
        return cls(key=hmac.new(api_token.encode(), _KEY_LABEL, hashlib.sha256).digest())

    @classmethod
    def ephemeral(cls) -> SessionCodec:
        """Sessions for a dashboard without an API token: valid until the process ends."""
        return cls(key=secrets.token_bytes(32))

    def issue(self, *, now: float | None = None) -> tuple[str, Session]:
        """A new cookie value and the session it stands for."""
        issued = int(time.time() if now is None else now)
        nonce = secrets.token_urlsafe(18)
        body = f"{_VERSION}.{issued}.{nonce}"
        return f"{body}.{self._sign('session:' + body)}", self._session(nonce, issued)

    def read(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        """The session a cookie stands for, or None if it is missing, forged or expired."""
        if not cookie or len(cookie) > 200:
            return None
        parts = cookie.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit():
            return None
        body = ".".join(parts[:3])
        if not hmac.compare_digest(parts[3].encode(), self._sign("session:" + body).encode()):
            return None
        issued = int(parts[1])
        age = (time.time() if now is None else now) - issued
        if age < -60 or age > self.max_age_s:
            return None
        return self._session(parts[2], issued)

    def _session(self, nonce: str, issued: int) -> Session:
        return Session(nonce=nonce, issued_at=issued, csrf_token=self._sign("csrf:" + nonce))

    def _sign(self, message: str) -> str:
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()


def token_matches(candidate: str | None, expected: str) -> bool:
    return bool(candidate) and hmac.compare_digest(candidate.encode(), expected.encode())  # type: ignore[union-attr]
