"""An optional sentence-transformers embedder, for a model already on this machine.

Needs the ``sentence-transformers`` package (and torch): not a dependency of the
factory. The model is loaded with ``local_files_only=True``, from a folder path or from
the Hugging Face cache, so a missing model fails at once instead of downloading.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ai_factory.core.errors import ConfigError

_load_lock = threading.Lock()


@functools.cache
def _load_model(model: str) -> Any:
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(model, device="cpu", local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"FACTORY_EMBEDDER: cannot load {model!r} from local files: {exc}"
        ) from exc


class SentenceTransformerEmbedder:
    def __init__(self, *, model: str) -> None:
        self.model = model

    def load(self) -> Any:
        with _load_lock:
            return _load_model(self.model)

    @property
    def name(self) -> str:
        # A folder's last two parts name it better than its last alone (".../minilm/model").
        path = Path(self.model)
        label = "-".join(path.parts[-2:]) if path.is_absolute() else self.model
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[-48:]
        return f"st-{slug}-{self.dimensions}"

    @property
    def dimensions(self) -> int:
        model = self.load()
        # sentence-transformers 5 renamed the method; older releases have only the old name.
        method = getattr(model, "get_embedding_dimension", None)
        return int(method() if method else model.get_sentence_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.load().encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return vectors.tolist()
