"""Plant scopes: what a key may see, and how results that cross a plant boundary are cut.

A key scoped to plant A never sees an entity of plant B. Single lookups answer 404 (the same as a
missing id). Analyses and copilot answers are computed on the whole graph and then *redacted*: any
evidence path, row or citation that mentions an entity of a plant outside the scope is removed as a
whole (never punched through, so no path has a hole), an item whose every evidence path was removed
goes too, ids in prose are replaced by ``[withheld]``, and the response says how much was withheld.
Entities without a plant (materials, suppliers, customers) are enterprise-wide and always visible.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Hashable, Iterable
from typing import Any

from pydantic import BaseModel, Field

from api.keys import Principal
from store.base import GraphStore

WITHHELD = "[withheld]"
_MAX_ID_LEN = 200
_EVIDENCE_KEYS = frozenset({"evidence", "paths", "citations"})
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-./:#]*[A-Za-z0-9]")


class ScopeNote(BaseModel):
    """Attached to every response that could contain entities."""

    plants: list[str] = Field(description='the plants this key sees ("*" = all)')
    withheld: int = Field(0, description="items, paths or citations removed because they cross into another plant")
    note: str | None = None


def scope_note(principal: Principal, withheld: int) -> ScopeNote:
    note = (
        f"{withheld} item(s) were withheld because they involve plants outside this key's scope"
        if withheld
        else None
    )
    return ScopeNote(plants=sorted(principal.plants), withheld=withheld, note=note)


def covers_all_plants(store: GraphStore, principal: Principal) -> bool:
    """'*', or a list naming every plant (Site) in the graph: such a key sees everything."""
    if principal.all_plants:
        return True
    sites = {n.plant or n.id for n in store.find_nodes("Site")}
    return bool(sites) and sites <= principal.plants


_JSON_STR = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _json_strings(json_text: str) -> set[str]:
    """The raw (still escaped) contents of every string in a compact JSON text. Without an escaped
    quote every quote delimits a string, so a split finds them (several times faster than the
    regex, which stays for texts that have one)."""
    if '\\"' in json_text:
        return set(_JSON_STR.findall(json_text))
    return set(json_text.split('"')[1::2])


def json_candidates(json_text: str) -> set[str]:
    """Every string in a compact JSON text that could be an entity id (and the id-like tokens of
    prose strings), found with one split (or regex) pass instead of a Python walk of the document."""
    out: set[str] = set()
    prose: list[str] = []
    for raw in _json_strings(json_text):
        text = json.loads(f'"{raw}"') if "\\" in raw else raw
        if " " in text or len(text) > _MAX_ID_LEN:
            prose.append(text)
        elif text:
            out.add(text)
    if prose:
        # tokens never contain a space, so one pass over the prose joined by spaces finds the same
        out.update(_TOKEN.findall(" ".join(prose)))
    return out


_NOT_ENTITY = object()


class PlantMemo:
    """The plant of every id looked up (or that it is no entity), for one graph state: scoped
    results of one plant mention mostly the same materials, customers and lines, so most candidate
    ids are answered without a store read. Dropped whole when the state (``epoch``) changes."""

    def __init__(self, max_items: int = 500_000) -> None:
        self.max_items = max_items
        self._epoch: Hashable = None
        self._plants: dict[str, object] = {}
        self._lock = threading.Lock()

    def plants(self, store: GraphStore, ids: list[str], epoch: Hashable) -> dict[str, str | None]:
        """id -> plant (None: enterprise-wide) for the ids that are entities."""
        if epoch is None:
            return {i: n.plant for i, n in store.get_nodes(ids).items()}
        with self._lock:
            if epoch != self._epoch or len(self._plants) > self.max_items:
                self._epoch, self._plants = epoch, {}
            known = self._plants
            missing = [i for i in ids if i not in known]
            if missing:
                found = store.get_nodes(missing)
                for i in missing:
                    n = found.get(i)
                    known[i] = n.plant if n is not None else _NOT_ENTITY
            out: dict[str, str | None] = {}
            for i in ids:
                p = known[i]
                if p is not _NOT_ENTITY:
                    out[i] = p if isinstance(p, str) else None
            return out


def forbidden_ids(store: GraphStore, principal: Principal, candidates: Iterable[str],
                  memo: PlantMemo | None = None, epoch: Hashable = None) -> set[str]:
    """The candidates that are entities of a plant the principal does not see (with ``memo`` and
    the graph state's ``epoch``, plants already looked up at that state are not read again)."""
    if principal.all_plants:
        return set()
    cands = [c for c in set(candidates) if c]
    if not cands:
        return set()
    if memo is not None:
        return {i for i, p in memo.plants(store, cands, epoch).items() if not principal.sees_plant(p)}
    nodes = store.get_nodes(cands)
    return {i for i, n in nodes.items() if not principal.sees_plant(n.plant)}


def _is_path(value: list[Any] | tuple[Any, ...]) -> bool:
    if all(not isinstance(v, dict | list | tuple) for v in value):
        return True
    return all(isinstance(v, dict) and "src" in v and "dst" in v for v in value)


class Redactor:
    """Removes everything that mentions a forbidden id from a JSON-like document."""

    def __init__(self, forbidden: set[str]) -> None:
        self.forbidden = forbidden
        self.withheld = 0
        self._pattern = (
            re.compile("|".join(re.escape(f) for f in sorted(forbidden, key=len, reverse=True)))
            if forbidden
            else None
        )

    def scrub_text(self, text: str) -> str:
        return self._scrub_text(text)

    def _scrub_text(self, text: str) -> str:
        if self._pattern is None:
            return text
        new, n = self._pattern.subn(WITHHELD, text)
        return new if n else text

    def _walk(self, value: Any, key: str | None = None) -> tuple[Any, bool]:
        """(redacted value, tainted): tainted means the value itself mentions a forbidden id and
        must be dropped as a whole by whoever holds it."""
        if isinstance(value, str):
            if value in self.forbidden:
                return value, True
            if " " in value or len(value) > _MAX_ID_LEN:
                return self._scrub_text(value), False
            return value, False
        if isinstance(value, dict):
            tainted = False
            out: dict[str, Any] = {}
            for k, v in value.items():
                nv, t = self._walk(v, k)
                out[k] = nv
                tainted = tainted or t
            return out, tainted
        if isinstance(value, list | tuple):
            if _is_path(value):
                # a path (ids, or src/dst steps) goes as a whole: never punch a hole into it
                return list(value), any(self._walk(v)[1] for v in value)
            kept: list[Any] = []
            for v in value:
                nv, t = self._walk(v)
                if t:
                    self.withheld += 1
                else:
                    kept.append(nv)
            # an item whose every piece of evidence was withheld is itself withheld
            return kept, key in _EVIDENCE_KEYS and bool(value) and not kept
        return value, False

    def redact(self, doc: Any) -> Any:
        """Redact a whole document. At the top level nothing can be dropped by a parent, so
        id lists lose their forbidden members and scalar ids become ``[withheld]``."""
        if not self.forbidden:
            return doc
        if isinstance(doc, dict):
            out: dict[str, Any] = {}
            for k, v in doc.items():
                out[k] = self._top(v)
            return out
        return self._top(doc)

    def _top(self, v: Any) -> Any:
        if isinstance(v, str):
            if v in self.forbidden:
                self.withheld += 1
                return WITHHELD
            return self._walk(v)[0]
        if isinstance(v, list | tuple) and all(not isinstance(x, dict | list | tuple) for x in v):
            # top-level id lists are sets (start_lots, shipped_lots), not paths
            kept = [x for x in v if not (isinstance(x, str) and x in self.forbidden)]
            self.withheld += len(v) - len(kept)
            return kept
        if isinstance(v, dict):
            return {k: self._top(x) for k, x in v.items()}
        nv, _ = self._walk(v)
        return nv


def redact_document(
    store: GraphStore, principal: Principal, doc: Any, *, prose: bool = True
) -> tuple[Any, int, set[str]]:
    """Redact ``doc`` for ``principal``; returns (document, withheld count, visible ids mentioned)."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    if principal.all_plants:
        return doc, 0, entity_ref_ids(text)
    forb = forbidden_ids(store, principal, json_candidates(text))
    if not forb:
        return doc, 0, entity_ref_ids(text)
    red = Redactor(forb)
    out = red.redact(doc)
    return out, red.withheld, entity_ref_ids(json.dumps(out, separators=(",", ":"), ensure_ascii=False))


def redact_json(store: GraphStore, principal: Principal, json_text: str,
                memo: PlantMemo | None = None, epoch: Hashable = None) -> tuple[Any, int]:
    """Like :func:`redact_document` for a result already serialised (``model_dump_json``): the
    document is parsed and walked only when it mentions something outside the scope. Returns
    (redacted document, or None when it mentions nothing outside the scope; withheld count)."""
    if principal.all_plants:
        return None, 0
    forb = forbidden_ids(store, principal, json_candidates(json_text), memo, epoch)
    if not forb:
        return None, 0
    red = Redactor(forb)
    # returned even when nothing was counted as withheld: prose may still have had ids scrubbed
    return red.redact(json.loads(json_text)), red.withheld


def _entity_ids(store: GraphStore, cands: set[str], memo: PlantMemo | None = None,
                epoch: Hashable = None) -> set[str]:
    """The candidates that are entity ids (for the audit record's 'entities retrieved'); with a
    ``memo`` and a graph state, ids already looked up at that state are not read again."""
    if not cands:
        return set()
    if memo is not None and epoch is not None:
        return set(memo.plants(store, [c for c in cands if c], epoch))
    return set(store.node_classes(cands))


def model_dump(model: BaseModel | dict[str, Any]) -> dict[str, Any]:
    return model.model_dump(mode="json") if isinstance(model, BaseModel) else model


def mentioned_entities(store: GraphStore, json_text: str, memo: PlantMemo | None = None,
                       epoch: Hashable = None) -> set[str]:
    """The entity ids a compact JSON text mentions anywhere (structure or prose): an answer's
    'entities retrieved' for the audit record."""
    return _entity_ids(store, json_candidates(json_text), memo, epoch)


def redact_answer(
    store: GraphStore, principal: Principal, doc: dict[str, Any], json_text: str | None = None,
    memo: PlantMemo | None = None, epoch: Hashable = None,
) -> tuple[dict[str, Any], int, set[str]]:
    """Redact a copilot answer (``reasoning.rag.models.Answer`` as JSON; pass its compact JSON
    text too when it is at hand, to spare serialising it again).

    First the structured result is redacted; entities that vanish from it (e.g. an enterprise-wide
    customer reached only through another plant) join the withheld set. Then citations touching the
    withheld set are dropped, claims are renumbered (a claim whose every citation was withheld is
    dropped) and withheld ids and names in the remaining prose become ``[withheld]``.
    """
    if json_text is None:
        json_text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    cands = json_candidates(json_text)
    forb = forbidden_ids(store, principal, cands, memo, epoch)
    if not forb:
        return doc, 0, _entity_ids(store, cands, memo, epoch)
    withheld = 0
    result = doc.get("result")
    if isinstance(result, dict):
        before = json_candidates(json.dumps(result, separators=(",", ":"), ensure_ascii=False))
        red = Redactor(forb)
        new_result = red.redact(result)
        withheld += red.withheld
        after = json_candidates(json.dumps(new_result, separators=(",", ":"), ensure_ascii=False))
        lost = set(store.node_classes(before - after))
        forb = forb | lost
        doc = {**doc, "result": new_result}
    cites = doc.get("citations") or []
    keep: dict[int, int] = {}
    kept: list[Any] = []
    for i, c in enumerate(cites):
        ids = set(c.get("nodes") or []) | ({str(c["doc_id"]).split("#")[0]} if c.get("doc_id") else set())
        if ids & forb:
            continue
        keep[i] = len(kept)
        kept.append(c)
    withheld += len(cites) - len(kept)
    names = {n.name for n in store.get_nodes(forb).values() if n.name and len(n.name) >= 3}
    scrub = Redactor(forb | names)
    claims = []
    for cl in doc.get("claims") or []:
        old = cl.get("citations") or []
        new = [keep[i] for i in old if i in keep]
        if old and not new:
            withheld += 1
            continue
        claims.append({**cl, "citations": new, "text": scrub.scrub_text(str(cl.get("text", "")))})
    doc = {
        **doc,
        "citations": kept,
        "claims": claims,
        "text": " ".join(c["text"] for c in claims),
        "answer_ids": [i for i in doc.get("answer_ids") or [] if i not in forb],
    }
    red = Redactor(forb)
    out = red.redact(doc)
    withheld += red.withheld
    return out, withheld, _entity_ids(store, cands - forb, memo, epoch)


_REF = re.compile(r'\{"id":"((?:[^"\\]|\\.)*)","cls":"')


def entity_ref_ids(json_text: str) -> set[str]:
    """Ids of the entity references (``{"id": ..., "cls": ...}``) in a compact JSON text: the
    'entities retrieved' of an audit record, found without walking the document in Python."""
    return set(_REF.findall(json_text))
