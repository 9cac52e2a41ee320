"""The base of every model that crosses a process boundary.

On the wire fields are camelCase (`sourceId`, `prUrl`; the API's format, see
docs/design.md#names-kept-from-the-original-specification); in Python they are
snake_case. Models accept either spelling and dump camelCase.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        from_attributes=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict with camelCase keys."""
        return self.model_dump(mode="json", by_alias=True)


class Success(WireModel):
    """The answer to an action with nothing else to say: ``{"success": true}``."""

    success: bool = True
