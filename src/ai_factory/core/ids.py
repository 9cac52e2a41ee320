"""Ids as users type them."""

from __future__ import annotations

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
