"""GraphRAG copilot: entity linking, a persisted vector index of entity cards and document chunks,
graph expansion, routing to the analyses and answers with citations. See docs/copilot.md."""

from reasoning.rag.copilot import Copilot, CopilotConfig
from reasoning.rag.errors import (
    CopilotError,
    DocumentError,
    EmbeddingModelError,
    QuestionSetError,
    RetrieverInputError,
    VectorIndexError,
)
from reasoning.rag.models import Answer, GraphPathCitation, Intent, PassageCitation

__all__ = [
    "Answer", "Copilot", "CopilotConfig", "CopilotError", "DocumentError", "EmbeddingModelError",
    "GraphPathCitation", "Intent", "PassageCitation", "QuestionSetError", "RetrieverInputError",
    "VectorIndexError",
]
