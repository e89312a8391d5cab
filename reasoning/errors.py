"""Errors of the reasoning layer. Each names what was wrong and where."""

from __future__ import annotations


class ReasoningError(Exception):
    """Base of every reasoning failure a caller can act on."""


class NotFoundError(ReasoningError):
    """A start entity does not exist (or is not of the expected class, or not valid as of the time)."""


class RuleError(ReasoningError):
    """A rule file is malformed or names something the ontology does not know.

    ``file`` and ``line`` (1-based) point at the offending YAML node when known.
    """

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 column: int | None = None) -> None:
        self.file = file
        self.line = line
        self.column = column
        where = ""
        if file is not None:
            where = file
            if line is not None:
                where += f":{line}"
                if column is not None:
                    where += f":{column}"
            where += ": "
        super().__init__(where + message)
        self.bare_message = message
