"""What goes into the vector index: entity cards and document chunks.

Design for big plants (see docs/copilot.md): only master data (plants, lines, machines,
materials, suppliers, customers, people) and text-bearing entities (SOPs and their versions,
incidents, holds, downtime, maintenance) get a card; high-volume transactional entities (lots,
orders, order lines, shifts) are linked by id, name or alias only. A card never contains its own id
so that identical cards (e.g. many downtime events with the same reason on the same machine) share
one embedded text: the index embeds distinct texts only.

Event classes (downtime, maintenance, holds) are the ones that grow with the plant's history, so
their cards are templates: the name with its ids masked ("Breakdown of M-CHI-051" -> "Breakdown"),
the reason or kind, and no per-event details (who placed a hold, the machine, the status): there are
as many distinct event cards as distinct reasons, however long the history. Chunk texts are embedded
with their ids masked too (``IndexItem.key_text``) while the passage shown and cited stays the
original text, so templated narratives ("Planned service of M-BER-011: ...") share one vector.
"""

from __future__ import annotations

import hashlib
import re
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ontology.models import ENTITY_CLASSES
from store.base import Direction, GraphStore, NodeRecord

#: Classes that get an entity card (master data and text-bearing entities).
CARD_CLASSES: tuple[str, ...] = (
    "Site", "Area", "Line", "Machine", "Material", "Supplier", "Customer", "Person",
    "SOP", "SOPVersion", "Incident", "QualityHold", "DowntimeEvent", "MaintenanceOrder",
)

#: Classes whose cards are templates (no ids, no per-event details), see the module docstring.
EVENT_CLASSES: tuple[str, ...] = ("DowntimeEvent", "MaintenanceOrder", "QualityHold")

#: Tokens that look like ids (a digit and an upper-case letter or a dash: M-CHI-051, MO-0002243).
_ID_TOKEN = re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Z-])[A-Z][\w]*(?:-[\w]+)+\b|\b[A-Z]{1,5}\d{2,}\b")
_DANGLING = re.compile(r"(?:\s+(?:on|of|for|at|from|to|in))+\s*$")


def mask_ids(text: str) -> str:
    """The text with id-like tokens removed (for dedupe keys), whitespace tidied."""
    out = _ID_TOKEN.sub(" ", text)
    out = re.sub(r"[ \t]+([,.;:)])", r"\1", out)
    out = re.sub(r"[ \t]{2,}", " ", out).strip()
    return _DANGLING.sub("", out)


#: Classes whose long-text properties are chunked as documents.
CHUNK_CLASSES: tuple[str, ...] = ("SOPVersion", "Incident", "MaintenanceOrder")

CHUNK_CHARS = 600


def _marked_text(annotation: object) -> bool:
    """True when an annotation (possibly inside ``X | None``) carries the ontology's Text marker."""
    for meta in getattr(annotation, "__metadata__", ()):
        extra = getattr(meta, "json_schema_extra", None)
        if isinstance(extra, dict) and extra.get("text"):
            return True
    return any(_marked_text(a) for a in typing.get_args(annotation))


def text_fields(cls: str) -> list[str]:
    """Properties marked as free text in the ontology (``Text`` annotation)."""
    model = ENTITY_CLASSES[cls]
    out = []
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        marked = isinstance(extra, dict) and bool(extra.get("text"))
        marked = marked or any(isinstance(getattr(m, "json_schema_extra", None), dict)
                               and getattr(m, "json_schema_extra", {}).get("text") for m in info.metadata)
        if marked or _marked_text(info.annotation):
            out.append(name)
    return out


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class IndexItem:
    """One searchable thing; ``text`` is shown and cited, ``key_text`` (when set: the text with
    its ids masked) is what gets embedded; identical keys share a vector."""

    item_id: str
    kind: Literal["card", "chunk"]
    text: str
    entity_id: str | None = None
    doc_id: str | None = None
    chunk: int | None = None
    start: int | None = None
    end: int | None = None
    plant: str | None = None
    key_text: str | None = None

    @property
    def embed_text(self) -> str:
        return self.key_text if self.key_text is not None else self.text

    @property
    def hash(self) -> str:
        return content_hash(self.embed_text)


def chunk_text(text: str, max_chars: int = CHUNK_CHARS) -> list[tuple[int, int]]:
    """Split on paragraph, then sentence boundaries into spans of at most ~``max_chars``."""
    spans: list[tuple[int, int]] = []
    pieces = [(m.start(), m.end()) for m in re.finditer(r"[^.!?\n]+(?:[.!?]+|\n+|$)", text)]
    cur_start: int | None = None
    cur_end = 0
    for s, e in pieces:
        if not text[s:e].strip():
            continue
        if cur_start is None:
            cur_start, cur_end = s, e
        elif e - cur_start > max_chars or "\n\n" in text[cur_end:s + 1]:
            spans.append((cur_start, cur_end))
            cur_start, cur_end = s, e
        else:
            cur_end = e
    if cur_start is not None:
        spans.append((cur_start, cur_end))
    # trim whitespace from both ends without changing what the span covers
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def fmt_value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _names(store: GraphStore, ids: Iterable[str], limit: int = 5) -> list[str]:
    ids = list(ids)[:limit]
    nodes = store.get_nodes(ids)
    return [(nodes[i].name or i) if i in nodes else i for i in ids]


def _neighbour_ids(store: GraphStore, node_id: str, rel: str, direction: Direction) -> list[str]:
    edges = store.neighbours(node_id, [rel], direction)
    return [e.dst if direction == Direction.OUT else e.src for e in edges]


_KEY_PROPS: dict[str, tuple[str, ...]] = {
    "Site": ("country", "timezone"),
    "Line": ("capacity_per_hour",),
    "Machine": ("machine_type", "equipment_class"),
    "Material": ("kind", "material_class", "aliases"),
    "Supplier": ("country",),
    "Customer": ("country", "aliases"),
    "Person": ("role", "certifications"),
    "SOP": ("title", "operation"),
    "SOPVersion": ("version", "effective_from", "effective_to"),
    "Incident": ("kind", "severity", "title"),
    "QualityHold": ("reason",),
    "DowntimeEvent": ("reason",),
    "MaintenanceOrder": ("kind",),
}

# (relation, direction, label) to summarise the neighbourhood of a card's entity.
_NEIGHBOURHOOD: dict[str, tuple[tuple[str, Direction, str], ...]] = {
    "Area": (("HAS_AREA", Direction.IN, "in plant"), ("HAS_LINE", Direction.OUT, "lines")),
    "Line": (("HAS_LINE", Direction.IN, "in area"), ("HAS_MACHINE", Direction.OUT, "machines")),
    "Machine": (("HAS_MACHINE", Direction.IN, "on line"),),
    "Supplier": (("SUPPLIES", Direction.OUT, "supplies"),),
    "SOP": (("APPLIES_TO", Direction.OUT, "applies to"),),
    "SOPVersion": (("VERSION_OF", Direction.OUT, "version of"),),
    "Incident": (("OCCURRED_ON", Direction.OUT, "on"),),
    "Person": (("WORKS_AT", Direction.OUT, "works at"),),
}


def card_text(store: GraphStore, node: NodeRecord) -> str:
    """A short description of an entity: class, name, key properties, neighbourhood summary.

    Event classes leave the name out when it is just an id-like label, so equal events dedupe.
    """
    parts = [ENTITY_CLASSES[node.cls].__name__ if node.cls in ENTITY_CLASSES else node.cls]
    name = mask_ids(node.name) if node.name and node.cls in EVENT_CLASSES else node.name
    if name and node.id not in name:
        parts.append(name)
    for key in _KEY_PROPS.get(node.cls, ()):
        value = node.props.get(key)
        if value not in (None, "", []):
            parts.append(f"{key.replace('_', ' ')}: {fmt_value(value)}")
    for rel, direction, label in _NEIGHBOURHOOD.get(node.cls, ()):
        ids = _neighbour_ids(store, node.id, rel, direction)
        if ids:
            parts.append(f"{label}: {', '.join(_names(store, ids))}")
    return "; ".join(parts)


def entity_items(store: GraphStore, classes: Iterable[str] = CARD_CLASSES) -> Iterator[IndexItem]:
    """Cards for the card classes and chunks of their text properties."""
    for cls in classes:
        fields = text_fields(cls) if cls in CHUNK_CLASSES else []
        for node in store.find_nodes(cls=cls):
            yield IndexItem(
                item_id=f"card:{node.id}", kind="card", text=card_text(store, node),
                entity_id=node.id, plant=node.plant,
            )
            for field_name in fields:
                yield from chunk_items(node.id, str(node.props.get(field_name) or ""), node.plant,
                                       entity_id=node.id, field=field_name)


def chunk_items(doc_id: str, text: str, plant: str | None, entity_id: str | None = None,
                field: str = "text") -> Iterator[IndexItem]:
    for n, (s, e) in enumerate(chunk_text(text)):
        piece = text[s:e]
        key = mask_ids(piece)
        yield IndexItem(
            item_id=f"chunk:{doc_id}:{field}:{n}", kind="chunk", text=piece, entity_id=entity_id,
            doc_id=doc_id, chunk=n, start=s, end=e, plant=plant, key_text=key if key and key != piece else None,
        )
