"""Optional LLM rephrasing of a grounded answer. Off by default; never needed for an answer.

The model only sees the composed claims and may only reword them. The rephrased text is accepted
only when every entity id of the original answer still appears in it; otherwise the grounded text
is kept. Citations are never touched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx

from reasoning.rag.models import Answer

PROMPT = (
    "Rewrite the following answer in fluent plain English for a plant engineer. Keep every identifier "
    "(like LOT-12 or M-3) exactly as written, add no facts, remove no facts.\n\nAnswer:\n{text}"
)
_ID = re.compile(r"\b[A-Z][A-Z0-9]*-[A-Za-z0-9\-]+\b")


def apply_rephrasing(answer: Answer, rephrase: Callable[[Answer], str]) -> Answer:
    try:
        new = rephrase(answer).strip()
    except Exception:  # an optional helper must never break a grounded answer
        return answer
    if not new or not set(_ID.findall(answer.text)) <= set(_ID.findall(new)):
        return answer
    return answer.model_copy(update={"text": new, "rephrased": True})


def openai_compatible(endpoint: str, model: str, api_key: str | None = None,
                      timeout: float = 30.0) -> Callable[[Answer], str]:
    """A rephraser calling ``POST {endpoint}/chat/completions`` (OpenAI-compatible servers)."""

    def call(answer: Answer) -> str:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        r = httpx.post(
            endpoint.rstrip("/") + "/chat/completions", headers=headers, timeout=timeout,
            json={"model": model, "temperature": 0,
                  "messages": [{"role": "user", "content": PROMPT.format(text=answer.text)}]},
        )
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return str(data["choices"][0]["message"]["content"])

    return call


def llama_index_llm(llm: Any) -> Callable[[Answer], str]:
    """A rephraser from any LlamaIndex LLM (``llm.complete(prompt).text``)."""

    def call(answer: Answer) -> str:
        return str(llm.complete(PROMPT.format(text=answer.text)).text)

    return call
