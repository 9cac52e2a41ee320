"""Ids as users type them: a whole UUID, or (where a lookup can resolve it) a unique prefix
of at least six hex digits, as the CLI and the dashboard print them."""

from __future__ import annotations

import re
from uuid import UUID

from ai_factory.core.errors import NotFoundError


def parse_id(value: str | UUID, what: str = "work item") -> UUID:
    """A UUID from user input; anything else is simply not found."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise NotFoundError(f"{what} {value!r} not found") from None


MIN_PREFIX = 6
_PREFIX = re.compile(r"^[0-9a-fA-F-]{6,36}$")


def id_range(value: str, what: str = "work item") -> tuple[UUID, UUID]:
    """The lowest and highest UUID starting with the prefix `value` (dashes ignored)."""
    digits = value.replace("-", "").lower()
    if not _PREFIX.match(value) or len(digits) < MIN_PREFIX or len(digits) > 32:
        raise NotFoundError(f"{what} {value!r} not found")
    return UUID(digits.ljust(32, "0")), UUID(digits.ljust(32, "f"))
