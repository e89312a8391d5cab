"""``POST /v1/ask``: the copilot, scoped to the key's plants, its citations redacted at the boundary."""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.cache import CachedResponse
from api.deps import Asker, AuditDep, ServicesDep, StoreDep
from api.problems import PROBLEM_RESPONSES, FieldError, ProblemError
from api.schemas import envelope_json
from api.scope import ScopeNote, mentioned_entities, redact_answer, scope_note
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


@router.post("/ask", response_model=AskResponse,
             summary="Ask the copilot; the answer cites graph paths and passages, and says if it is degraded")
async def ask(body: AskRequest, principal: Asker, store: StoreDep, services: ServicesDep,
              audit: AuditDep) -> Response:
    from reasoning.rag.errors import CopilotError

    audit.kind = "ask"
    audit.question = body.question
    audit.params = {"as_of": body.as_of.isoformat() if body.as_of else None}
    if body.as_of is not None and body.as_of.tzinfo is None:
        raise ProblemError(422, "as_of needs a time zone offset", slug="validation",
                           errors=[FieldError(loc="body.as_of", msg="timezone required")])
    copilot = services.copilot()
    scope = None if principal.all_plants else sorted(principal.plants)
    # the same question in the same scope on the same graph state gets the same answer
    cache_key = ("ask", body.question, body.as_of.isoformat() if body.as_of else None,
                 "*" if scope is None else tuple(scope))
    state = services.graph_epoch(store)
    epoch = state if services.responses.enabled else None
    hit = services.responses.get(epoch, cache_key)
    if hit is not None:
        audit.entity_ids.update(hit.entity_ids)
        audit.detail = hit.detail
        return Response(hit.body, media_type="application/json")
    try:
        answer = copilot.ask(body.question, as_of=body.as_of, plant_scope=scope)
    except CopilotError as exc:
        raise ProblemError(422, str(exc), slug="ask-input",
                           errors=[FieldError(loc="body.question", msg=str(exc))]) from None
    text = answer.model_dump_json()
    withheld = 0
    checked = answer
    # entity lookups go through the plant memo of this graph state (most ids recur across answers)
    if principal.all_plants:
        ids = mentioned_entities(store, text, services.plants, state)
    else:
        dumped = json.loads(text)
        doc, withheld, ids = redact_answer(store, principal, dumped, text, services.plants, state)
        if doc is not dumped:  # changed by redaction: re-validated; otherwise already a checked model
            checked = Answer.model_validate(doc)
    audit.entity_ids.update(ids)
    audit.detail = "; ".join(x for x in (
        f"intent={checked.intent}", "degraded" if checked.degraded else "",
        f"withheld={withheld}" if withheld else "") if x)
    note = scope_note(principal, withheld)
    if type(checked) is Answer:  # the answer's JSON is at hand unless redaction changed it
        raw = envelope_json("answer", text if checked is answer else checked.model_dump_json(), note).encode()
    else:
        raw = AskResponse(answer=checked, scope=note).model_dump_json().encode()
    services.responses.put(epoch, cache_key, CachedResponse(raw, frozenset(ids), audit.detail))
    return Response(raw, media_type="application/json")
