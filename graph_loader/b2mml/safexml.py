"""Safe, streaming XML reading for untrusted B2MML files.

lxml's ``iterparse`` with entity resolution, DTD loading and network access off, and any
document type declaration refused outright: B2MML never needs one, and refusing it is what stops
billion-laughs and external-entity (XXE) files before anything is expanded or fetched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from lxml import etree

from graph_loader.b2mml.records import ImportError_


class XMLInputError(ImportError_):
    """The file is not well-formed XML; ``where`` is ``file:line:column``."""

    def __init__(self, file: str, line: int, column: int, message: str) -> None:
        self.file, self.line, self.column = file, line, column
        super().__init__(f"{file}:{line}:{column}: {message}")


class UnsafeXMLError(XMLInputError):
    """The file declares a DTD or entities, which are refused (entity expansion / XXE)."""


def _refuse_dtd(root: Any, file: str) -> None:
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXMLError(
            file, 1, 1,
            "document type declarations (DTD, entities) are refused: B2MML does not use them and "
            "they allow entity-expansion and external-entity attacks; nothing was imported from this file",
        )


def safe_iterparse(source: Path | IO[bytes], name: str) -> Iterator[tuple[str, Any]]:
    """Yield ``(event, element)`` for 'start' and 'end' events, safely.

    Comments and processing instructions are skipped. Raises :class:`XMLInputError` for
    malformed input and :class:`UnsafeXMLError` for a DTD or entity reference.
    """
    parser = etree.iterparse(
        source if not isinstance(source, Path) else str(source),
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        recover=False,
    )
    first = True
    try:
        for event, el in parser:
            if first:
                first = False
                _refuse_dtd(el, name)
            if event == "end" and len(el) and any(isinstance(c, etree._Entity) for c in el):
                line = el.sourceline or 0
                raise UnsafeXMLError(name, line, 1, "entity references are refused")
            yield event, el
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (exc.lineno or 0, exc.offset or 0)
        msg = str(exc.msg or exc)
        if "Entity" in msg or "entity" in msg:
            raise UnsafeXMLError(name, line, col, f"entities are refused: {msg}") from None
        raise XMLInputError(name, line, col, f"not well-formed XML: {msg}") from None


def safe_parse(path: Path) -> Any:
    """The whole document as an lxml tree (only for XSD validation, which needs a tree)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_comments=True, remove_pis=True)
    try:
        tree = etree.parse(str(path), parser)
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (exc.lineno or 0, exc.offset or 0)
        raise XMLInputError(str(path), line, col, f"not well-formed XML: {exc.msg}") from None
    _refuse_dtd(tree.getroot(), str(path))
    return tree


__all__ = ["UnsafeXMLError", "XMLInputError", "safe_iterparse", "safe_parse"]
