"""truth.json: the known answers of the injected scenarios, and the definitions that compute them.

The pydantic models below are the contract in /docs/generator.md (and the reasoning/copilot tests
read truth.json through them). The functions compute each answer from the generated *edges* by
the contract's definitions (a plain BFS), independently of the simulation that made the edges.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ContaminatedSupplierLot(_M):
    supplier_lot: str
    supplier: str
    reached_lots: list[str]
    reached_production_orders: list[str]
    reached_sales_order_lines: list[str]
    reached_customers: list[str]
    shipped_lots: list[str]
    in_house_lots: list[str]


class MachineFault(_M):
    machine: str
    incident: str
    from_: AwareDatetime = Field(alias="from")
    to: AwareDatetime
    affected_production_orders: list[str]
    affected_lots: list[str]
    reached_sales_order_lines: list[str]
    reached_customers: list[str]


class QualityHoldScenario(_M):
    hold: str
    lot: str
    placed_at: AwareDatetime
    reached_lots: list[str]
    reached_sales_order_lines: list[str]
    affected_customers: list[str]


class RootCause(_M):
    bad_lots: list[str]
    incident: str
    factor_class: Literal["SOPVersion", "Machine"]
    factor: str


RiskKind = Literal["hold", "downtime", "late_supplier", "behind_schedule", "shortage"]


class RiskCause(_M):
    kind: RiskKind
    entity: str


class DeliveriesAtRisk(_M):
    horizon_days: int
    lines: dict[str, list[RiskCause]]
    lines_with_held_allocations: list[str]


class SopInEffect(_M):
    order: str
    machine: str
    at: AwareDatetime
    sop_version: str
    superseded: bool


class Scenarios(_M):
    contaminated_supplier_lot: ContaminatedSupplierLot
    machine_fault: MachineFault
    quality_hold: QualityHoldScenario
    root_cause: RootCause
    deliveries_at_risk: DeliveriesAtRisk
    sop_in_effect: list[SopInEffect]


class Truth(_M):
    """The whole truth.json file."""

    seed: int
    scale: str
    now: AwareDatetime
    scenarios: Scenarios

    def dump(self, path: Path) -> None:
        """Write with ``from`` (not ``from_``), sorted keys and a trailing newline: byte-stable."""
        data = json.loads(self.model_dump_json(by_alias=True))
        path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def load_truth(path: str | Path) -> Truth:
    """Read a truth.json (validated)."""
    return Truth.model_validate_json(Path(path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Definitions, over edge lists
# ---------------------------------------------------------------------------------------------


@dataclass
class EdgeIndex:
    """The relations the scenario definitions walk, as adjacency dicts built from (src, dst) pairs."""

    consumers: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # lot -> orders
    produced: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # order -> lots
    derived_children: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    allocated: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # lot -> SOLs
    allocated_lots: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # SOL -> lots
    shipped: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # lot -> SOLs
    sol_order: dict[str, str] = field(default_factory=dict)  # SOL -> SalesOrder
    so_customer: dict[str, str] = field(default_factory=dict)

    def add(self, rel: str, src: str, dst: str) -> None:
        if rel == "CONSUMED":
            self.consumers[dst].append(src)
        elif rel == "PRODUCED":
            self.produced[src].append(dst)
        elif rel == "DERIVED_FROM":
            self.derived_children[dst].append(src)
        elif rel == "ALLOCATED_TO":
            self.allocated[src].append(dst)
            self.allocated_lots[dst].append(src)
        elif rel == "SHIPPED_TO":
            self.shipped[src].append(dst)
        elif rel == "HAS_SO_LINE":
            self.sol_order[dst] = src
        elif rel == "PLACED_BY":
            self.so_customer[src] = dst


TRACKED_RELATIONS = frozenset(
    {"CONSUMED", "PRODUCED", "DERIVED_FROM", "ALLOCATED_TO", "SHIPPED_TO", "HAS_SO_LINE", "PLACED_BY"}
)


@dataclass
class Trace:
    """Result of a forward genealogy trace by the contract's definition."""

    reached_lots: list[str]
    reached_production_orders: list[str]
    reached_sales_order_lines: list[str]
    reached_customers: list[str]
    shipped_lots: list[str]
    in_house_lots: list[str]


def forward_trace(index: EdgeIndex, start_lots: Iterable[str]) -> Trace:
    """Order-level forward genealogy plus lot-precise DERIVED_FROM links, to any depth."""
    start = list(dict.fromkeys(start_lots))
    seen: set[str] = set(start)
    orders: set[str] = set()
    frontier = list(start)
    while frontier:
        nxt: list[str] = []
        for lot in frontier:
            for order in index.consumers.get(lot, ()):
                if order not in orders:
                    orders.add(order)
                    for out in index.produced.get(order, ()):
                        if out not in seen:
                            seen.add(out)
                            nxt.append(out)
            for child in index.derived_children.get(lot, ()):
                if child not in seen:
                    seen.add(child)
                    nxt.append(child)
        frontier = nxt
    reached = seen - set(start)
    lines: set[str] = set()
    for lot in seen:
        lines.update(index.allocated.get(lot, ()))
        lines.update(index.shipped.get(lot, ()))
    customers = {index.so_customer[index.sol_order[sol]] for sol in lines}
    shipped = {lot for lot in seen if index.shipped.get(lot)}
    return Trace(
        reached_lots=sorted(reached),
        reached_production_orders=sorted(orders),
        reached_sales_order_lines=sorted(lines),
        reached_customers=sorted(customers),
        shipped_lots=sorted(shipped),
        in_house_lots=sorted(reached - shipped),
    )
