"""What the learnings store hands out: a learning with its scope, counters and score."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from ai_factory.core.models import Learning


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
    lastSavedAt and, for a search, the fused score (higher is better)."""

    scope: LearningScope = LearningScope.REPO
    save_count: int = 1
    last_saved_at: datetime | None = None
    score: float | None = None


class SavedLearning(LearningRecord):
    """The result of a save: `created` is False when the text was already stored and
    its save_count went up instead."""

    created: bool = True
