"""Embedders: turn learnings and queries into unit-length vectors, and choose one by name.

An embedder's `name` is stored beside every vector it made and carries its dimension
(``hashing-v1-512``, ``wordllama-l2_supercat-256``), so vectors of different models never
meet in one comparison and a change of model is noticed row by row.

Choices (setting ``FACTORY_EMBEDDER``):

* ``auto`` (default): ``wordllama`` when the package is installed, else ``hashing``.
* ``wordllama``: WordLlama's static token embeddings, weights shipped in the wheel
  (16 MB), numpy only, ~0.1 ms per text on a CPU. No download at run time.
* ``hashing``: feature hashing of words, word pairs and character n-grams. No
  dependency and no model; matches shared words and word forms, not synonyms.
* ``sentence-transformers:<model>``: a sentence-transformers model already on disk
  (an optional extra, needs torch); loaded with ``local_files_only``.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from typing import Protocol

from ai_factory.core.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "auto"


class Embedder(Protocol):
    """Maps texts to vectors of `dimensions` floats with unit length (or all zeros)."""

    @property
    def name(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def wordllama_installed() -> bool:
    return importlib.util.find_spec("wordllama") is not None


def embedder_from_name(name: str | None) -> Embedder:
    """The embedder a setting names; `ConfigError` naming FACTORY_EMBEDDER if impossible."""
    choice = (name or DEFAULT_EMBEDDER).strip()
    if choice == "auto":
        choice = "wordllama" if wordllama_installed() else "hashing"
    if choice == "hashing":
        from ai_factory.core.learnings.hashing import HashingEmbedder

        return HashingEmbedder()
    if choice == "wordllama":
        if not wordllama_installed():
            raise ConfigError(
                "FACTORY_EMBEDDER: wordllama is not installed (pip install wordllama)"
            )
        from ai_factory.core.learnings.wordllama import WordLlamaEmbedder

        return WordLlamaEmbedder()
    if choice.startswith("sentence-transformers:"):
        model = choice.partition(":")[2].strip()
        if not model:
            raise ConfigError(
                "FACTORY_EMBEDDER: name a model, e.g. sentence-transformers:all-MiniLM-L6-v2"
            )
        if importlib.util.find_spec("sentence_transformers") is None:
            raise ConfigError(
                "FACTORY_EMBEDDER: sentence-transformers is not installed"
                " (pip install 'ai-factory[sentence]')"
            )
        from ai_factory.core.learnings.sentence import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(model=model)
    raise ConfigError(
        f"FACTORY_EMBEDDER: unknown embedder {choice!r}"
        " (auto, wordllama, hashing or sentence-transformers:<model>)"
    )
