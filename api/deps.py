"""Annotated dependencies: the current principal (from the API key), role checks, the store and
the audit context that routes fill in for the audit middleware."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.keys import Principal
from api.problems import ProblemError
from api.roles import Permission, allowed
from api.services import Services
from store.base import GraphStore

API_KEY_HEADER = "X-API-Key"

_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="an API key from `plantgraph keys create`")
_bearer = HTTPBearer(auto_error=False, description="the same API key as a bearer token")


@dataclass(slots=True)
class AuditContext:
    """What a route tells the audit log about its call."""

    kind: str = "request"
    params: dict[str, Any] = field(default_factory=dict)
    question: str | None = None
    entity_ids: set[str] = field(default_factory=set)
    detail: str | None = None


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def audit_context(request: Request) -> AuditContext:
    ctx = getattr(request.state, "audit", None)
    if not isinstance(ctx, AuditContext):
        ctx = AuditContext()
        request.state.audit = ctx
    return ctx


AuditDep = Annotated[AuditContext, Depends(audit_context)]


def _authenticate(request: Request, api_key: str | None, bearer: HTTPAuthorizationCredentials | None) -> Principal:
    raw = api_key or (bearer.credentials if bearer is not None else None)
    challenge = {"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}"'}
    if not raw:
        raise ProblemError(401, f"missing API key: send it in the {API_KEY_HEADER} header "
                                "(or as Authorization: Bearer)", slug="unauthenticated", headers=challenge)
    services: Services = request.app.state.services
    principal = services.keys.authenticate(raw)
    if principal is None:
        raise ProblemError(401, "invalid or revoked API key", slug="unauthenticated", headers=challenge)
    request.state.principal = principal
    return principal


async def current_principal(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> Principal:
    return _authenticate(request, api_key, bearer)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(permission: Permission) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Authenticate and check one permission in a single dependency: FastAPI resolves every
    nested dependency on every request, so the chain is kept flat."""

    async def check(
        request: Request,
        api_key: Annotated[str | None, Security(_api_key)] = None,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    ) -> Principal:
        principal = _authenticate(request, api_key, bearer)
        if not allowed(principal.role, permission):
            raise ProblemError(
                403, f"role {principal.role.value!r} lacks permission {permission.value!r}", slug="forbidden"
            )
        return principal

    return check


Reader = Annotated[Principal, Depends(require(Permission.entities_read))]
Analyst = Annotated[Principal, Depends(require(Permission.analyses_run))]
Asker = Annotated[Principal, Depends(require(Permission.ask))]
EventWriter = Annotated[Principal, Depends(require(Permission.events_write))]
BundleLoader = Annotated[Principal, Depends(require(Permission.bundles_load))]
ProposalReader = Annotated[Principal, Depends(require(Permission.proposals_read))]
Proposer = Annotated[Principal, Depends(require(Permission.proposals_create))]
Decider = Annotated[Principal, Depends(require(Permission.proposals_decide))]
AuditReader = Annotated[Principal, Depends(require(Permission.audit_read))]


async def get_store(request: Request) -> GraphStore:
    services: Services = request.app.state.services
    return services.store()


StoreDep = Annotated[GraphStore, Depends(get_store)]
