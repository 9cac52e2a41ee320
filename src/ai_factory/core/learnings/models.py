"""What the learnings store hands out: a learning with its scope, counters and score, and a
worker's context (the learnings within its token budget)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import Field

from ai_factory.core.models import Learning, WireModel


class LearningScope(StrEnum):
    REPO = "repo"
    GLOBAL = "global"


class SearchMode(StrEnum):
    """How a search ranks: both signals fused, or one alone (the benchmark compares them)."""

    HYBRID = "hybrid"
    TEXT = "text"
    VECTOR = "vector"


class LearningRecord(Learning):
    """A stored learning. On the wire: the fields of `Learning` plus scope, saveCount,
    lastSavedAt, updatedAt, obsoleteAt, when it was last given to a worker and for which
    item (lastGivenStatus: that item's status now, ``completed`` when it succeeded), how
    many items it was given to and how many of those completed, and, for a search, the
    score (higher is better)."""

    scope: LearningScope = LearningScope.REPO
    save_count: int = 1
    last_saved_at: datetime | None = None
    updated_at: datetime | None = None
    obsolete_at: datetime | None = None
    last_given_at: datetime | None = None
    last_given_work_item_id: UUID | None = None
    last_given_status: str | None = None
    given_count: int = 0
    completed_count: int = 0
    score: float | None = None

    @property
    def obsolete(self) -> bool:
        return self.obsolete_at is not None


class SavedLearning(LearningRecord):
    """The result of a save: `created` is False when the text was already stored (the
    same words, or the same meaning in other words: `merged`) and the stored learning's
    save_count went up instead."""

    created: bool = True
    merged: bool = False


class LearningContext(WireModel):
    """The learnings a worker gets for its spec: best match first, within `budgetTokens`
    (`tokens` is their estimated size; `scopeTokens` that of every learning it could get)."""

    learnings: list[LearningRecord] = Field(default_factory=list)
    tokens: int = 0
    budget_tokens: int
    scope_tokens: int = 0
    scope_count: int = 0
