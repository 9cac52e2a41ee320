"""Learnings: what one worker found out that the next one on the repo should know."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import StringConstraints

from ai_factory.core.models.base import WireModel

LearningText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4096)]


class Learning(WireModel):
    id: UUID
    repo: str
    content: str
    source_worker_id: UUID | None = None
    source_work_item_id: UUID | None = None
    use_count: int = 0
    created_at: datetime


class CreateLearningInput(WireModel):
    repo: str | None = None
    content: LearningText


class UpdateLearningInput(WireModel):
    """An edit: new text, and/or marking the learning obsolete (or current again)."""

    content: LearningText | None = None
    obsolete: bool | None = None
