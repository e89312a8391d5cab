"""The pydantic models of every ontology class and relation.

These models are the single source of the schema: the OWL/RDFS and SHACL Turtle files in this
folder are generated from them (``python -m ontology.build``) and a test proves the committed
Turtle matches. Properties hold scalar facts only; links between entities are relations (edges),
declared in :data:`RELATIONS` with their domain, range and edge properties.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

PositiveQty = Annotated[float, Field(gt=0)]
NonNegativeQty = Annotated[float, Field(ge=0)]
Score = Annotated[float, Field(ge=0, le=1)]
Text = Annotated[str, Field(json_schema_extra={"text": True})]


class MaterialKind(StrEnum):
    raw = "raw"
    intermediate = "intermediate"
    finished = "finished"


class LotStatus(StrEnum):
    released = "released"
    on_hold = "on_hold"
    quarantined = "quarantined"
    consumed = "consumed"
    shipped = "shipped"
    scrapped = "scrapped"


class OrderStatus(StrEnum):
    planned = "planned"
    released = "released"
    running = "running"
    completed = "completed"
    cancelled = "cancelled"


class PurchaseOrderStatus(StrEnum):
    open = "open"
    partially_received = "partially_received"
    received = "received"
    cancelled = "cancelled"


class SalesOrderStatus(StrEnum):
    open = "open"
    partially_shipped = "partially_shipped"
    shipped = "shipped"
    cancelled = "cancelled"


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


class IncidentKind(StrEnum):
    deviation = "deviation"
    nonconformance = "nonconformance"
    safety = "safety"
    downtime = "downtime"


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class MaintenanceKind(StrEnum):
    corrective = "corrective"
    preventive = "preventive"
    predictive = "predictive"


class MaintenanceStatus(StrEnum):
    open = "open"
    in_progress = "in_progress"
    completed = "completed"
    cancelled = "cancelled"


# ---------------------------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------------------------


class Entity(BaseModel):
    """Fields every entity carries: a stable id, where it came from, and when it was valid.

    ``plant`` is the id of the Site an entity belongs to; enterprise-wide entities (materials,
    suppliers, customers) leave it empty and are visible in every plant scope.
    """

    model_config = ConfigDict(extra="forbid", use_enum_values=True, str_strip_whitespace=True)

    #: ISA-95 / B2MML counterpart, written into the ontology as skos:closeMatch.
    isa95: ClassVar[str | None] = None
    #: Short human description, written into the ontology as rdfs:comment.
    description: ClassVar[str] = ""

    id: Annotated[str, Field(min_length=1, max_length=200)]
    name: str | None = None
    source_system: str = "plantgraph"
    plant: str | None = None
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None


class Enterprise(Entity):
    description: ClassVar[str] = "The company: the top of the ISA-95 equipment hierarchy."
    isa95: ClassVar[str | None] = "Equipment[EquipmentLevel=Enterprise]"


class Site(Entity):
    description: ClassVar[str] = "A plant: the unit of plant scoping for API keys."
    isa95: ClassVar[str | None] = "Equipment[EquipmentLevel=Site]"
    timezone: str = "UTC"
    country: str | None = None


class Area(Entity):
    description: ClassVar[str] = "A production area inside a plant."
    isa95: ClassVar[str | None] = "Equipment[EquipmentLevel=Area]"


class Line(Entity):
    description: ClassVar[str] = "A production line (work center) inside an area."
    isa95: ClassVar[str | None] = "Equipment[EquipmentLevel=ProductionLine]"
    capacity_per_hour: NonNegativeQty | None = None


class Machine(Entity):
    description: ClassVar[str] = "A machine (equipment unit) on a line."
    isa95: ClassVar[str | None] = "Equipment[EquipmentLevel=Unit]"
    machine_type: str | None = None
    equipment_class: str | None = None


class Material(Entity):
    description: ClassVar[str] = "A material definition: raw, intermediate or finished."
    isa95: ClassVar[str | None] = "MaterialDefinition"
    kind: MaterialKind
    unit: str = "kg"
    material_class: str | None = None
    aliases: list[str] = Field(default_factory=list)


class BomItem(Entity):
    description: ClassVar[str] = "One component line of a material's bill of materials."
    isa95: ClassVar[str | None] = "MaterialSpecification"
    quantity: PositiveQty
    unit: str = "kg"


class Supplier(Entity):
    description: ClassVar[str] = "A supplier of raw materials."
    isa95: ClassVar[str | None] = None
    country: str | None = None
    rating: Score | None = None


class PurchaseOrder(Entity):
    description: ClassVar[str] = "A purchase order placed with a supplier."
    order_date: AwareDatetime
    status: PurchaseOrderStatus = PurchaseOrderStatus.open


class PurchaseOrderLine(Entity):
    description: ClassVar[str] = "One line of a purchase order: a material, a quantity and dates."
    quantity: PositiveQty
    unit: str = "kg"
    promised_date: AwareDatetime
    delivered_at: AwareDatetime | None = None


class Lot(Entity):
    description: ClassVar[str] = "A material lot (batch): supplier lots, work in progress and finished goods."
    isa95: ClassVar[str | None] = "MaterialLot"
    quantity: PositiveQty
    unit: str = "kg"
    status: LotStatus = LotStatus.released
    produced_at: AwareDatetime | None = None
    expiry: AwareDatetime | None = None


class ProductionOrder(Entity):
    description: ClassVar[str] = "A production (work) order: make a quantity of a material on a line."
    isa95: ClassVar[str | None] = "ProductionRequest / ProductionResponse"
    quantity: PositiveQty
    unit: str = "kg"
    status: OrderStatus = OrderStatus.planned
    planned_start: AwareDatetime
    planned_end: AwareDatetime
    actual_start: AwareDatetime | None = None
    actual_end: AwareDatetime | None = None
    operations: list[str] = Field(default_factory=list)


class Customer(Entity):
    description: ClassVar[str] = "A customer that places sales orders."
    country: str | None = None
    aliases: list[str] = Field(default_factory=list)


class SalesOrder(Entity):
    description: ClassVar[str] = "A customer's sales order."
    order_date: AwareDatetime
    status: SalesOrderStatus = SalesOrderStatus.open


class SalesOrderLine(Entity):
    description: ClassVar[str] = "One line of a sales order: a material, a quantity, a due date."
    quantity: PositiveQty
    unit: str = "kg"
    due_date: AwareDatetime
    priority: Priority = Priority.normal
    status: SalesOrderStatus = SalesOrderStatus.open


class SOP(Entity):
    description: ClassVar[str] = "A standard operating procedure (work instruction)."
    isa95: ClassVar[str | None] = "WorkDefinition"
    title: str
    operation: str | None = None


class SOPVersion(Entity):
    description: ClassVar[str] = "One version of an SOP with its effective window and text."
    isa95: ClassVar[str | None] = "WorkMaster"
    version: str
    effective_from: AwareDatetime
    effective_to: AwareDatetime | None = None
    text: Text


class Incident(Entity):
    description: ClassVar[str] = "A deviation, nonconformance, safety or downtime incident."
    kind: IncidentKind
    severity: Severity
    occurred_at: AwareDatetime
    title: str
    text: Text | None = None


class QualityHold(Entity):
    description: ClassVar[str] = "A quality hold placed on one or more lots."
    reason: str
    placed_at: AwareDatetime
    released_at: AwareDatetime | None = None
    placed_by: str | None = None


class DowntimeEvent(Entity):
    description: ClassVar[str] = "A period a machine did not run."
    start: AwareDatetime
    end: AwareDatetime | None = None
    reason: str


class MaintenanceOrder(Entity):
    description: ClassVar[str] = "A maintenance work order on a machine."
    kind: MaintenanceKind
    status: MaintenanceStatus = MaintenanceStatus.open
    created_at: AwareDatetime
    completed_at: AwareDatetime | None = None
    text: Text | None = None


class Anomaly(Entity):
    description: ClassVar[str] = "A condition-monitoring anomaly on a machine signal."
    signal: str
    score: Score
    detected_at: AwareDatetime


class Person(Entity):
    description: ClassVar[str] = "A person: operator, technician, engineer, quality analyst."
    isa95: ClassVar[str | None] = "Person"
    role: str
    certifications: list[str] = Field(default_factory=list)


class Shift(Entity):
    description: ClassVar[str] = "A work shift at a plant."
    start: AwareDatetime
    end: AwareDatetime


ENTITY_CLASSES: dict[str, type[Entity]] = {
    cls.__name__: cls
    for cls in (
        Enterprise, Site, Area, Line, Machine, Material, BomItem, Supplier, PurchaseOrder,
        PurchaseOrderLine, Lot, ProductionOrder, Customer, SalesOrder, SalesOrderLine, SOP,
        SOPVersion, Incident, QualityHold, DowntimeEvent, MaintenanceOrder, Anomaly, Person, Shift,
    )
}

#: Property names every entity has; stored as columns, not inside the property document.
COMMON_FIELDS: frozenset[str] = frozenset(Entity.model_fields)


# ---------------------------------------------------------------------------------------------
# Relations
# ---------------------------------------------------------------------------------------------


class EdgeProps(BaseModel):
    """Properties every relation may carry."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    source_system: str = "plantgraph"
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None


class QuantityProps(EdgeProps):
    quantity: PositiveQty
    unit: str | None = None


class ShipmentProps(QuantityProps):
    shipped_at: AwareDatetime


class RunProps(EdgeProps):
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None


class SubstituteProps(EdgeProps):
    ratio: PositiveQty = 1.0


class RelationDef(BaseModel):
    """A relation type: its name, allowed endpoint classes and its edge property model."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    domain: tuple[str, ...]
    range: tuple[str, ...]
    props: type[EdgeProps] = EdgeProps
    description: str = ""
    isa95: str | None = None


def _rel(
    name: str,
    domain: str | tuple[str, ...],
    range_: str | tuple[str, ...],
    description: str,
    props: type[EdgeProps] = EdgeProps,
    isa95: str | None = None,
) -> RelationDef:
    def as_tuple(v: str | tuple[str, ...]) -> tuple[str, ...]:
        return (v,) if isinstance(v, str) else v

    return RelationDef(
        name=name, domain=as_tuple(domain), range=as_tuple(range_), props=props,
        description=description, isa95=isa95,
    )


RELATIONS: dict[str, RelationDef] = {
    r.name: r
    for r in (
        # equipment hierarchy, parent -> child
        _rel("HAS_SITE", "Enterprise", "Site", "The enterprise owns the plant."),
        _rel("HAS_AREA", "Site", "Area", "The plant contains the area."),
        _rel("HAS_LINE", "Area", "Line", "The area contains the line."),
        _rel("HAS_MACHINE", "Line", "Machine", "The line contains the machine."),
        # bill of materials
        _rel("HAS_BOM_ITEM", "Material", "BomItem", "The material's BOM has this component line."),
        _rel("COMPONENT", "BomItem", "Material", "The BOM line calls for this component."),
        _rel("APPROVED_SUBSTITUTE", "BomItem", "Material",
             "This material is an approved substitute for the BOM line's component.", SubstituteProps),
        # purchasing
        _rel("ORDERED_FROM", "PurchaseOrder", "Supplier", "The purchase order was placed with the supplier."),
        _rel("HAS_PO_LINE", "PurchaseOrder", "PurchaseOrderLine", "The purchase order has this line."),
        _rel("FOR_MATERIAL", ("PurchaseOrderLine", "SalesOrderLine", "ProductionOrder", "Lot"), "Material",
             "The line, order or lot is of this material."),
        _rel("DELIVERED_AS", "PurchaseOrderLine", "Lot", "The purchase order line arrived as this supplier lot.",
             QuantityProps),
        _rel("SUPPLIED_BY", "Lot", "Supplier", "The supplier lot came from this supplier."),
        _rel("SUPPLIES", "Supplier", "Material", "The supplier is qualified for this material."),
        # production and genealogy
        _rel("SCHEDULED_ON", "ProductionOrder", "Line", "The order is planned on the line."),
        _rel("RAN_ON", "ProductionOrder", "Machine", "The order ran on the machine.", RunProps),
        _rel("USED_SOP", "ProductionOrder", "SOPVersion", "The order was run under this SOP version."),
        _rel("CONSUMED", "ProductionOrder", "Lot", "The order consumed (part of) the lot.", QuantityProps,
             "ProductionPerformance/SegmentResponse/MaterialActual[Consumed]"),
        _rel("PRODUCED", "ProductionOrder", "Lot", "The order produced the lot.", QuantityProps,
             "ProductionPerformance/SegmentResponse/MaterialActual[Produced]"),
        _rel("DERIVED_FROM", "Lot", "Lot",
             "Lot-precise genealogy: the output lot contains material of the input lot.", QuantityProps,
             "MaterialLot/AssemblyLotID"),
        _rel("DURING_SHIFT", "ProductionOrder", "Shift", "The order ran during the shift."),
        _rel("OPERATED_BY", "ProductionOrder", "Person", "The person operated the order."),
        # sales
        _rel("PLACED_BY", "SalesOrder", "Customer", "The sales order was placed by the customer."),
        _rel("HAS_SO_LINE", "SalesOrder", "SalesOrderLine", "The sales order has this line."),
        _rel("ALLOCATED_TO", "Lot", "SalesOrderLine", "The lot is reserved for the sales order line.",
             QuantityProps),
        _rel("SHIPPED_TO", "Lot", "SalesOrderLine", "The lot was shipped against the sales order line.",
             ShipmentProps),
        # SOPs
        _rel("VERSION_OF", "SOPVersion", "SOP", "The version belongs to the SOP."),
        _rel("APPLIES_TO", "SOP", ("Material", "Machine", "Line"), "The SOP applies to the material or equipment."),
        # events
        _rel("OCCURRED_ON", ("Incident", "DowntimeEvent", "Anomaly", "MaintenanceOrder"), ("Machine", "Line"),
             "The event happened on (or is for) the equipment."),
        _rel("CONCERNS", "Incident", ("Lot", "ProductionOrder"), "The incident concerns the lot or order."),
        _rel("HOLDS", "QualityHold", "Lot", "The hold applies to the lot."),
        _rel("RAISED_BY", ("QualityHold", "Incident", "MaintenanceOrder"), "Person", "The person raised it."),
        _rel("ADDRESSES", "MaintenanceOrder", ("Incident", "Anomaly", "DowntimeEvent"),
             "The maintenance order responds to the event."),
        # people and shifts
        _rel("WORKS_AT", "Person", "Site", "The person works at the plant."),
        _rel("SHIFT_AT", "Shift", "Site", "The shift belongs to the plant."),
    )
}


def entity_model(class_name: str) -> type[Entity]:
    """The model of an ontology class, or KeyError naming the known classes."""
    try:
        return ENTITY_CLASSES[class_name]
    except KeyError:
        known = ", ".join(sorted(ENTITY_CLASSES))
        raise KeyError(f"unknown class {class_name!r}; known classes: {known}") from None


def relation_def(name: str) -> RelationDef:
    """The definition of a relation type, or KeyError naming the known relations."""
    try:
        return RELATIONS[name]
    except KeyError:
        known = ", ".join(sorted(RELATIONS))
        raise KeyError(f"unknown relation {name!r}; known relations: {known}") from None


def datetime_fields(model: type[BaseModel]) -> frozenset[str]:
    """Names of a model's timestamp fields (they must carry a time zone)."""
    out = set()
    for name, info in model.model_fields.items():
        ann = info.annotation
        if ann is datetime or "datetime" in repr(ann).lower():
            out.add(name)
    return frozenset(out)
