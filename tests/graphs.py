"""Hand-made graphs for tests, written into any :class:`store.base.GraphStore` in one transaction.

Compact tuples keep known-answer tests readable::

    build_graph(store,
        nodes=[("L1", "Lot"), ("PO1", "ProductionOrder", {"status": "completed"}),
               ("L2", "Lot", {}, {"valid_to": ts("2026-03-01T00:00Z")})],
        edges=[("PO1", "CONSUMED", "L1", {"quantity": 5.0}), ("PO1", "PRODUCED", "L2")])

A node is ``(id, cls)``, ``(id, cls, props)`` or ``(id, cls, props, common)`` where ``common``
holds NodeRecord fields (``name``, ``plant``, ``source_system``, ``valid_from``, ``valid_to``).
An edge is ``(src, rel, dst)``, ``(src, rel, dst, props)`` or ``(src, rel, dst, props, common)``.
Ready-made ``NodeRecord`` / ``EdgeRecord`` objects are accepted as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from itertools import pairwise
from typing import Any

import pytest

from store.base import EdgeRecord, GraphStore, NodeRecord

NodeSpec = NodeRecord | tuple[Any, ...]
EdgeSpec = EdgeRecord | tuple[Any, ...]


def ts(text: str) -> datetime:
    """An aware datetime from ISO-8601 text (``Z`` allowed); refuses text without an offset."""
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        raise ValueError(f"{text!r}: tests use aware timestamps; add an offset such as Z or +01:00")
    return t


def node(spec: NodeSpec) -> NodeRecord:
    if isinstance(spec, NodeRecord):
        return spec
    node_id, cls, *rest = spec
    props: Mapping[str, Any] = rest[0] if rest else {}
    common: Mapping[str, Any] = rest[1] if len(rest) > 1 else {}
    return NodeRecord(id=node_id, cls=cls, props=dict(props), **common)


def edge(spec: EdgeSpec) -> EdgeRecord:
    if isinstance(spec, EdgeRecord):
        return spec
    src, rel, dst, *rest = spec
    props: Mapping[str, Any] = rest[0] if rest else {}
    common: Mapping[str, Any] = rest[1] if len(rest) > 1 else {}
    return EdgeRecord(src=src, rel=rel, dst=dst, props=dict(props), **common)


def build_graph(store: GraphStore, nodes: Iterable[NodeSpec] = (), edges: Iterable[EdgeSpec] = ()) -> None:
    """Upsert ``nodes`` then ``edges`` in one transaction."""
    with store.transaction() as tx:
        tx.upsert_nodes([node(n) for n in nodes])
        tx.upsert_edges([edge(e) for e in edges])


def chain(ids: Iterable[str], rel: str) -> list[tuple[str, str, str]]:
    """Edges ``a -rel-> b -rel-> c ...`` along ``ids``."""
    seq = list(ids)
    return [(a, rel, b) for a, b in pairwise(seq)]


def count_calls(store: GraphStore, monkeypatch: pytest.MonkeyPatch, names: Iterable[str]) -> dict[str, int]:
    """Count the calls made to these methods of this store instance (for tests of read sharing
    and batching); the counts live in the returned dict."""
    calls = dict.fromkeys(names, 0)
    for name in calls:
        original: Callable[..., Any] = getattr(store, name)

        def counted(*args: Any, _name: str = name, _orig: Callable[..., Any] = original, **kw: Any) -> Any:
            calls[_name] += 1
            return _orig(*args, **kw)

        monkeypatch.setattr(store, name, counted)
    return calls
