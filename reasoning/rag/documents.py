"""User documents (markdown or text) added with ``plantgraph docs add PATH``.

They live in ``<index dir>/docs/``: one UTF-8 text file each plus ``docs.json`` (id, source path,
content hash, plant). A document's id is ``doc:<file stem>``; adding the same path again replaces it.
"""

from __future__ import annotations

import builtins
import json
import os
import re
from pathlib import Path

from pydantic import BaseModel, ValidationError

from reasoning.rag.cards import IndexItem, chunk_items, content_hash
from reasoning.rag.errors import DocumentError

ALLOWED_SUFFIXES = (".md", ".markdown", ".txt", ".rst")
MAX_DOC_BYTES = 20 * 1024 * 1024


class DocumentInfo(BaseModel):
    doc_id: str
    source: str
    hash: str
    chars: int
    plant: str | None = None


class DocumentRegistry:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.manifest = folder / "docs.json"

    def list(self) -> list[DocumentInfo]:
        if not self.manifest.exists():
            return []
        try:
            raw = json.loads(self.manifest.read_text("utf-8"))
            return [DocumentInfo.model_validate(d) for d in raw]
        except (json.JSONDecodeError, ValidationError) as exc:
            raise DocumentError(f"{self.manifest}: unreadable document registry: {exc}") from exc

    def _file(self, doc_id: str) -> Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", doc_id) + ".txt")

    def text(self, doc_id: str) -> str | None:
        f = self._file(doc_id)
        return f.read_text("utf-8") if f.exists() else None

    def add(self, path: Path, plant: str | None = None) -> DocumentInfo:
        """Validate and copy a document in; nothing changes when it cannot be read."""
        if not path.is_file():
            raise DocumentError(f"{path}: no such file")
        if path.suffix.lower() not in ALLOWED_SUFFIXES:
            raise DocumentError(
                f"{path}: unsupported document type {path.suffix!r}; expected one of {', '.join(ALLOWED_SUFFIXES)}"
            )
        data = path.read_bytes()
        if len(data) > MAX_DOC_BYTES:
            raise DocumentError(f"{path}: {len(data)} bytes is over the {MAX_DOC_BYTES} byte limit")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            raise DocumentError(f"{path}:{line}:{col}: not UTF-8 text ({exc.reason})") from exc
        if not text.strip():
            raise DocumentError(f"{path}: the document is empty")
        doc_id = "doc:" + re.sub(r"\s+", "-", path.stem.strip())
        info = DocumentInfo(doc_id=doc_id, source=str(path.resolve()), hash=content_hash(text),
                            chars=len(text), plant=plant)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self._file(doc_id).with_suffix(".tmp")
        tmp.write_text(text, "utf-8")
        os.replace(tmp, self._file(doc_id))
        docs = [d for d in self.list() if d.doc_id != doc_id] + [info]
        tmpm = self.manifest.with_suffix(".tmp")
        tmpm.write_text(json.dumps([d.model_dump() for d in docs], indent=1), "utf-8")
        os.replace(tmpm, self.manifest)
        return info

    def items(self) -> builtins.list[IndexItem]:
        out: list[IndexItem] = []
        for info in self.list():
            text = self.text(info.doc_id)
            if text is not None:
                out.extend(chunk_items(info.doc_id, text, info.plant, field="body"))
        return out
