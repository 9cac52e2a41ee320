"""A feature-hashing embedder: no model, no dependency, deterministic across processes.

Features of a text (lower-cased; camelCase and snake_case split; English stop words
dropped):

* each word (weight 1),
* each pair of adjacent words (weight 0.5), for phrases such as "feature flag",
* the character 3- to 5-grams of each word with boundary marks, weighted so that one
  word's n-grams together weigh as much as the word: "migrations" and "migration",
  "lint" and "linting" share most of them.

Counts are damped (1 + ln n), each feature goes to one of `dimensions` slots by CRC-32
(the "hashing trick", signed so collisions cancel on average instead of adding up) and
the vector is scaled to unit length. It finds texts that share words or word forms;
it knows no synonyms ("flaky" and "intermittent" are unrelated to it).
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

VERSION = 1
DEFAULT_DIMENSIONS = 512

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[a-z0-9]+")
_NGRAM_SIZES = (3, 4, 5)
_PAIR_WEIGHT = 0.5

STOP_WORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours"]
)


def words(text: str) -> list[str]:
    """Lower-case words of `text` without stop words; identifiers split at case changes."""
    return [w for w in _WORD.findall(_CAMEL.sub(" ", text).lower()) if w not in STOP_WORDS]


def features(text: str) -> Counter[str]:
    """Weighted features of `text` (see the module docstring)."""
    found: Counter[str] = Counter()
    tokens = words(text)
    for word in tokens:
        found["w:" + word] += 1.0
        marked = f"<{word}>"
        grams = [
            marked[i : i + n] for n in _NGRAM_SIZES for i in range(len(marked) - n + 1)
        ]
        if grams:
            share = 1.0 / math.sqrt(len(grams))
            for gram in grams:
                found["c:" + gram] += share
    for first, second in pairwise(tokens):
        found[f"p:{first} {second}"] += _PAIR_WEIGHT
    return found


class HashingEmbedder:
    """Feature hashing into `dimensions` (a power of two) signed slots."""

    def __init__(self, *, dimensions: int = DEFAULT_DIMENSIONS) -> None:
        if dimensions < 2 or dimensions & (dimensions - 1):
            raise ValueError("dimensions must be a power of two")
        self._dimensions = dimensions

    @property
    def name(self) -> str:
        return f"hashing-v{VERSION}-{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._embed_one(text) for text in texts]

    def _embed_one(self, text: str) -> list[float]:
        vector = [0.0] * self._dimensions
        mask = self._dimensions - 1
        for feature, weight in features(text).items():
            h = zlib.crc32(feature.encode("utf-8"))
            value = 1.0 + math.log(weight) if weight > 1.0 else weight
            vector[h & mask] += value if h & 0x8000_0000 else -value
        norm = math.sqrt(sum(v * v for v in vector))
        if norm == 0.0:
            return vector
        return [v / norm for v in vector]
