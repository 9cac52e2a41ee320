"""The WordLlama embedder: static token embeddings whose weights ship inside the wheel.

WordLlama (``pip install wordllama``) averages token vectors taken from a large language
model's embedding table and trained for sentence similarity. Its default model
(``l2_supercat``, 256 dimensions, 16 MB) and tokenizer are files of the package, so
loading needs no network; we pass ``disable_download`` so it never tries. Loading
takes about half a second and embedding about 0.1 ms per text on one CPU core.

The loaded model is immutable and shared by every embedder instance in the process
(a cache, not a client): tests and services built many times load it once.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ai_factory.core.errors import ConfigError

log = logging.getLogger(__name__)

CONFIG = "l2_supercat"
DIMENSIONS = 256

_load_lock = threading.Lock()


@functools.cache
def _load_model() -> Any:
    import wordllama

    package_dir = Path(wordllama.__file__).parent
    try:
        # cache_dir = the package folder: its weights/ and tokenizers/ hold the shipped files.
        return wordllama.WordLlama.load(
            config=CONFIG, dim=DIMENSIONS, cache_dir=package_dir, disable_download=True
        )
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(f"FACTORY_EMBEDDER: cannot load the WordLlama model: {exc}") from exc


class WordLlamaEmbedder:
    @property
    def name(self) -> str:
        return f"wordllama-{CONFIG}-{DIMENSIONS}"

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    def load(self) -> Any:
        with _load_lock:
            model = _load_model()
        return model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        import numpy

        model = self.load()
        # An empty text has no tokens: its norm is 0 and the division gives NaN, kept
        # quiet here and turned into the zero vector below.
        with numpy.errstate(invalid="ignore", divide="ignore"):
            vectors = model.embed(list(texts), norm=True)
        return [[0.0 if math.isnan(x) else x for x in row] for row in vectors.tolist()]
