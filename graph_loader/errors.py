"""Errors of bundle reading, validation and loading.

Every problem with input data is a :class:`LoadError` that names the place (file, line, column or
JSON field path) and says what was expected and what was found, rendered as
``FILE:LINE:COLUMN: message (expected X, found Y)`` so editors and CI logs can jump to it.
Validation collects them in an :class:`ErrorCollector` (capped, with a count of the rest) and a
failed load raises :class:`BundleValidationError` carrying the list.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

#: How many errors are kept by default; the rest are only counted.
DEFAULT_ERROR_CAP = 200


class LoadError(BaseModel):
    """One problem in the input, with its place. ``line`` is 1-based (0 for the file as a whole);
    ``column`` is the CSV header name or the JSON field path (``-`` for the whole row/file)."""

    file: str
    line: int
    column: str = "-"
    message: str
    expected: str | None = None
    found: str | None = None
    column_index: int | None = None  # 1-based CSV column, when known

    def __str__(self) -> str:
        out = f"{self.file}:{self.line}:{self.column}: {self.message}"
        if self.expected is not None or self.found is not None:
            out += f" (expected {self.expected or '?'}, found {self.found if self.found is not None else '?'})"
        return out


def show(value: Any, limit: int = 80) -> str:
    """A short printable form of an offending value for the ``found`` part of a message."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ErrorCollector:
    """Keeps the first ``cap`` errors and counts every error, so huge bad inputs stay readable."""

    def __init__(self, cap: int = DEFAULT_ERROR_CAP) -> None:
        self.cap = cap
        self.errors: list[LoadError] = []
        self.total = 0

    def add(self, error: LoadError) -> None:
        self.total += 1
        if len(self.errors) < self.cap:
            self.errors.append(error)

    def extend(self, errors: list[LoadError]) -> None:
        for e in errors:
            self.add(e)

    @property
    def more(self) -> int:
        """How many errors were counted but not kept."""
        return self.total - len(self.errors)

    def __bool__(self) -> bool:
        return self.total > 0

    def lines(self) -> list[str]:
        out = [str(e) for e in self.errors]
        if self.more:
            out.append(f"... and {self.more} more error(s) not shown")
        return out


class BundleError(Exception):
    """Base of every failure of reading or loading a bundle."""


class BundleNotFoundError(BundleError):
    """The bundle folder does not exist or is not a folder."""


class BundleValidationError(BundleError):
    """The input is invalid; nothing was written. ``errors`` holds the kept errors,
    ``total`` how many there were in all."""

    def __init__(self, errors: list[LoadError], total: int | None = None) -> None:
        self.errors = errors
        self.total = total if total is not None else len(errors)
        more = self.total - len(errors)
        head = "\n".join(str(e) for e in errors[:20])
        tail = f"\n... and {self.total - min(len(errors), 20)} more" if self.total > 20 else ""
        super().__init__(f"{self.total} validation error(s); nothing was written\n{head}{tail}")
        self.more = more

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled with its own arguments (the default would pass only the message), so a
        # validation in another process can hand its errors back
        return (type(self), (self.errors, self.total), self.__dict__)

    @classmethod
    def from_collector(cls, collector: ErrorCollector) -> BundleValidationError:
        return cls(list(collector.errors), collector.total)
