"""The graph store: one interface (:mod:`store.base`), an embedded default and a Neo4j adapter."""

from store.base import (
    CapabilityError,
    Direction,
    EdgeRecord,
    GraphStore,
    Hop,
    IntegrityError,
    NodeRecord,
    StoreCapabilities,
    StoreCounts,
    StoreError,
    StoreUnavailableError,
    Traversal,
    TraversalStep,
    WriteReport,
    WriteTransaction,
)

__all__ = [
    "CapabilityError",
    "Direction",
    "EdgeRecord",
    "GraphStore",
    "Hop",
    "IntegrityError",
    "NodeRecord",
    "StoreCapabilities",
    "StoreCounts",
    "StoreError",
    "StoreUnavailableError",
    "Traversal",
    "TraversalStep",
    "WriteReport",
    "WriteTransaction",
]
