"""Roles, permissions and the permission matrix (documented in docs/api.md).

A key has exactly one role; a role is a fixed set of permissions. Keeping the matrix as data lets
the docs table and the tests be generated from the same source as the checks.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    viewer = "viewer"
    analyst = "analyst"
    planner = "planner"
    engineer = "engineer"
    approver = "approver"
    admin = "admin"


class Permission(StrEnum):
    entities_read = "entities:read"
    analyses_run = "analyses:run"
    ask = "ask"
    events_write = "events:write"
    bundles_load = "bundles:load"
    proposals_read = "proposals:read"
    proposals_create = "proposals:create"
    proposals_decide = "proposals:decide"
    audit_read = "audit:read"


class ProposalKind(StrEnum):
    maintenance_request = "maintenance_request"
    quality_hold = "quality_hold"
    escalate_incident = "escalate_incident"
    expedite_sales_order = "expedite_sales_order"


_ALL_READERS = frozenset(Role)
_WORKERS = frozenset({Role.analyst, Role.planner, Role.engineer, Role.approver, Role.admin})

PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.entities_read: _ALL_READERS,
    Permission.analyses_run: _WORKERS,
    Permission.ask: _WORKERS,
    Permission.events_write: frozenset({Role.engineer, Role.admin}),
    Permission.bundles_load: frozenset({Role.admin}),
    Permission.proposals_read: _WORKERS,
    Permission.proposals_create: _WORKERS,
    # Approval is a person's judgement: only the approver role, never admin by default.
    Permission.proposals_decide: frozenset({Role.approver}),
    Permission.audit_read: frozenset({Role.approver, Role.admin}),
}

#: Which roles may *propose* each kind of write-back (on top of proposals:create).
PROPOSAL_KINDS: dict[ProposalKind, frozenset[Role]] = {
    ProposalKind.maintenance_request: frozenset({Role.engineer, Role.approver, Role.admin}),
    ProposalKind.quality_hold: frozenset({Role.analyst, Role.engineer, Role.approver, Role.admin}),
    ProposalKind.escalate_incident: frozenset(
        {Role.analyst, Role.planner, Role.engineer, Role.approver, Role.admin}
    ),
    ProposalKind.expedite_sales_order: frozenset({Role.planner, Role.approver, Role.admin}),
}


def allowed(role: Role, permission: Permission) -> bool:
    return role in PERMISSIONS[permission]


def matrix_markdown() -> str:
    """The permission matrix as a Markdown table (kept in docs/api.md; a test checks it is current)."""
    roles = list(Role)
    lines = ["| permission | " + " | ".join(r.value for r in roles) + " |"]
    lines.append("| --- | " + " | ".join("---" for _ in roles) + " |")
    for perm, who in PERMISSIONS.items():
        lines.append(f"| `{perm.value}` | " + " | ".join("yes" if r in who else "" for r in roles) + " |")
    for kind, who in PROPOSAL_KINDS.items():
        lines.append(
            f"| propose `{kind.value}` | " + " | ".join("yes" if r in who else "" for r in roles) + " |"
        )
    return "\n".join(lines)
