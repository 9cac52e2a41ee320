"""What a REST handler gets (`Call`) and gives back (`Reply`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError
from .payloads import Json, Urls


@dataclass
class Call:
    login: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: Any
    urls: Urls

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class Reply:
    """`items` are paged by `rest`; with `wrap`, a page is `{"total_count", wrap: [...]}`."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    items: list[Json] | None = None
    wrap: str | None = None


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ApiError.validation({"resource": "Issue", "field": "since",
                                   "code": "invalid"}) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
