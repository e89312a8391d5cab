"""``POST /v1/ask``: the copilot, scoped to the key's plants, its citations redacted at the boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Asker, AuditDep, ServicesDep, StoreDep
from api.problems import PROBLEM_RESPONSES, FieldError, ProblemError
from api.scope import ScopeNote, forbidden_ids, redact_document, scope_note
from reasoning.rag.models import Answer

router = APIRouter(prefix="/v1", tags=["copilot"], responses=PROBLEM_RESPONSES)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=2000,
                          examples=["Lot L-1042 is on hold. Which customers are affected?"])
    as_of: datetime | None = Field(None, description="answer about the graph as it was then")


class AskResponse(BaseModel):
    answer: Answer
    scope: ScopeNote


def _redact_answer(doc: dict[str, Any], forbidden: set[str]) -> tuple[dict[str, Any], int]:
    """Drop citations that touch a forbidden id, renumber the claims' citation indexes, and drop a
    claim whose every citation was withheld (its sentence is about the other plant)."""
    cites = doc.get("citations") or []
    keep: dict[int, int] = {}
    kept: list[Any] = []
    for i, c in enumerate(cites):
        ids = set(c.get("nodes") or []) | ({c["doc_id"].split("#")[0]} if c.get("doc_id") else set())
        if ids & forbidden:
            continue
        keep[i] = len(kept)
        kept.append(c)
    withheld = len(cites) - len(kept)
    claims = []
    for cl in doc.get("claims") or []:
        old = cl.get("citations") or []
        new = [keep[i] for i in old if i in keep]
        if old and not new:
            withheld += 1
            continue
        claims.append({**cl, "citations": new})
    doc = {**doc, "citations": kept, "claims": claims}
    if claims != (doc.get("claims") or []) or withheld:
        doc["text"] = " ".join(c["text"] for c in claims)
    return doc, withheld


@router.post("/ask", response_model=AskResponse,
             summary="Ask the copilot; the answer cites graph paths and passages, and says if it is degraded")
async def ask(body: AskRequest, principal: Asker, store: StoreDep, services: ServicesDep,
              audit: AuditDep) -> AskResponse:
    from reasoning.rag.errors import CopilotError

    audit.kind = "ask"
    audit.question = body.question
    audit.params = {"as_of": body.as_of.isoformat() if body.as_of else None}
    if body.as_of is not None and body.as_of.tzinfo is None:
        raise ProblemError(422, "as_of needs a time zone offset", slug="validation",
                           errors=[FieldError(loc="body.as_of", msg="timezone required")])
    copilot = services.copilot()
    scope = None if principal.all_plants else sorted(principal.plants)
    try:
        answer = copilot.ask(body.question, as_of=body.as_of, plant_scope=scope)
    except CopilotError as exc:
        raise ProblemError(422, str(exc), slug="ask-input",
                           errors=[FieldError(loc="body.question", msg=str(exc))]) from None
    doc = answer.model_dump(mode="json")
    withheld = 0
    if not principal.all_plants:
        from api.scope import collect_ids

        cands: set[str] = set()
        collect_ids(doc, cands, True)
        forb = forbidden_ids(store, principal, cands)
        if forb:
            doc, withheld = _redact_answer(doc, forb)
    doc, more, ids = redact_document(store, principal, doc)
    withheld += more
    audit.entity_ids.update(ids)
    audit.detail = "; ".join(x for x in (
        f"intent={doc.get('intent')}", "degraded" if doc.get("degraded") else "",
        f"withheld={withheld}" if withheld else "") if x)
    return AskResponse(answer=Answer.model_validate(doc), scope=scope_note(principal, withheld))
