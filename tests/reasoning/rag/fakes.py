"""A deterministic, model-free embedder for tests that do not need real semantics."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from reasoning.rag.embedder import FloatMatrix


class HashEmbedder:
    """Bag of hashed words and character trigrams, L2-normalised; counts every text it embeds."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.model_id = f"test-hash:{dim}"
        self.calls = 0
        self.texts_embedded = 0

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> FloatMatrix:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for w in re.findall(r"[a-z0-9]+", text.lower()):
                for feat in (w, *(w[j:j + 3] for j in range(max(1, len(w) - 2)))):
                    h = int(hashlib.md5(feat.encode()).hexdigest()[:8], 16)
                    out[i, h % self.dim] += 1.0
            n = np.linalg.norm(out[i])
            if n:
                out[i] /= n
        return out
