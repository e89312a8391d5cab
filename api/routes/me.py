"""Who am I: the caller's user, role, plants and permissions (the UI shows them after sign-in)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import AuditDep, PrincipalDep
from api.problems import PROBLEM_RESPONSES
from api.roles import PERMISSIONS, PROPOSAL_KINDS

router = APIRouter(prefix="/v1", tags=["identity"], responses=PROBLEM_RESPONSES)


class Me(BaseModel):
    user: str
    role: str
    key_id: str
    plants: list[str]
    permissions: list[str]
    may_propose: list[str] = Field(description="proposal kinds this role may draft")


@router.get("/me", response_model=Me, summary="The caller's identity, role, plant scope and permissions")
async def me(principal: PrincipalDep, audit: AuditDep) -> Me:
    audit.kind = "identity"
    granted = sorted(p.value for p, roles in PERMISSIONS.items() if principal.role in roles)
    kinds = [k.value for k, roles in PROPOSAL_KINDS.items() if principal.role in roles]
    return Me(user=principal.user, role=principal.role.value, key_id=principal.key_id,
              plants=sorted(principal.plants), permissions=granted, may_propose=kinds)
