"""Reciprocal rank fusion: one ranking from the full-text and the vector rankings, and the
nudge towards learnings given to items that completed.

A learning's fused score is the sum over the rankings that contain it of
``1 / (k + rank)`` (rank from 1). Only positions matter, so a BM25 score of 4.2 and a
cosine similarity of 0.7 need no common scale, and a learning both rankings agree on
rises above one that only one of them likes. k = 60 is the constant of the original
paper (Cormack, Clarke and Büttcher, SIGIR 2009), not tuned here.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

RRF_K = 60

Key = TypeVar("Key", bound=Hashable)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Key]], *, k: int = RRF_K
) -> list[tuple[Key, float]]:
    """Keys of every ranking with their fused score, best first (ties: first seen first)."""
    scores: dict[Key, float] = {}
    for ranking in rankings:
        for position, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + position)
    return sorted(scores.items(), key=lambda item: item[1], reverse=True)


# Each item that completed after being given a learning raises its score by 3%, up to
# three items (9%): among learnings the search finds about equally relevant, the one that
# went with successful work comes first; it does not lift an unrelated one far. With RRF
# scores, 9% is about the gap between ranks 1 and 6 of one list.
COMPLETED_BOOST = 0.03
COMPLETED_CAP = 3


def boost_completed(
    ranked: Sequence[tuple[Key, float]], completed: dict[Key, int]
) -> list[tuple[Key, float]]:
    """`ranked` re-sorted after raising the score of keys given to items that completed."""
    boosted = [
        (key, score * (1 + COMPLETED_BOOST * min(completed.get(key, 0), COMPLETED_CAP)))
        for key, score in ranked
    ]
    return sorted(boosted, key=lambda item: item[1], reverse=True)
