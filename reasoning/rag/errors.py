"""Errors of the copilot. Each says what was wrong and, for bad input, where."""

from __future__ import annotations

from reasoning.errors import ReasoningError


class CopilotError(ReasoningError):
    """Base of every copilot failure a caller can act on."""


class RetrieverInputError(CopilotError):
    """A retriever or the copilot got malformed input (the message names the field)."""


class EmbeddingModelError(CopilotError):
    """The local embedding model cannot be found or loaded (the message names the path)."""


class VectorIndexError(CopilotError):
    """The persisted vector index is missing, unreadable or inconsistent with its manifest."""


class DocumentError(CopilotError):
    """A document given to ``plantgraph docs add`` cannot be read (the message names the file)."""


class QuestionSetError(CopilotError):
    """A question-set file is malformed; the message names ``file:line`` and the JSON path."""
