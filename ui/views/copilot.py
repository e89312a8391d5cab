"""Copilot chat: questions in plain words, answers with clickable citations and inline passages."""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from ui.client import ApiClient
from ui.common import EXAMPLE_QUESTIONS, call, current_user, require_client, scope_note

st.title("Copilot")
client = require_client()
if client is None:
    st.stop()
api: ApiClient = client

history: list[dict[str, Any]] = st.session_state.setdefault("chat", [])


IMPACT_PAGE = "views/impact.py"


def _link(node: str) -> str:
    return f"[{node}](./impact?id={node})"


def _open_buttons(nodes: list[str]) -> None:
    """In-app links (same session, no new sign-in) that open cited entities in the impact explorer."""
    cols = st.columns(max(1, min(len(nodes), 4)))
    for k, node in enumerate(nodes[:4]):
        try:
            cols[k].page_link(IMPACT_PAGE, label=f"open {node}", icon=":material/open_in_new:",
                              query_params={"id": node})
        except StreamlitAPIException:  # the page is run alone (tests): fall back to a plain link
            cols[k].markdown(_link(node))


def _citation_md(i: int, c: dict[str, Any]) -> str:
    if c.get("kind") == "passage":
        text = (c.get("text") or "").replace("\n", " ")
        return f"**[{i + 1}]** passage `{c['doc_id']}` chunk {c['chunk']} [{c['start']}:{c['end']}]\n\n> {text}"
    nodes, rels, dirs = c.get("nodes") or [], c.get("rels") or [], c.get("directions") or []
    parts = [_link(nodes[0])] if nodes else []
    for k, rel in enumerate(rels):
        arrow = f" -{rel}-> " if (dirs[k] if k < len(dirs) else "out") == "out" else f" <-{rel}- "
        parts.append(arrow + _link(nodes[k + 1]))
    return f"**[{i + 1}]** " + "".join(parts)


def _show_answer(doc: dict[str, Any]) -> None:
    ans = doc["answer"]
    if ans.get("degraded"):
        st.warning(f"Degraded mode: {ans.get('degraded_reason') or 'the vector index is not available'}. "
                   "Answers use id and name linking and the rules only.", icon=":material/warning:")
    scope_note(doc)
    claims = ans.get("claims") or []
    if claims:
        for cl in claims:
            refs = "".join(f" [{n + 1}]" for n in cl.get("citations") or [])
            st.markdown(cl["text"] + refs)
    else:
        st.markdown(ans["text"])
    for m in ans.get("ambiguous") or []:
        st.info(f"\u201c{m['text']}\u201d could mean: " + ", ".join(_link(i) for i in m["ids"]))
    if ans.get("not_found"):
        st.info("Not found in the graph: " + ", ".join(ans["not_found"]))
    cits = ans.get("citations") or []
    if cits:
        with st.expander(f"Citations ({len(cits)})", expanded=len(cits) <= 6):
            for i, c in enumerate(cits):
                st.markdown(_citation_md(i, c))
                if c.get("kind") != "passage" and c.get("nodes"):
                    ends = list(dict.fromkeys([c["nodes"][-1], c["nodes"][0]]))
                    _open_buttons(ends)
    st.caption(f"intent: {ans.get('intent')}" + (" - rephrased by the configured LLM" if ans.get("rephrased") else ""))


role = current_user().get("role", "analyst")
examples = EXAMPLE_QUESTIONS.get(role) or [q for qs in EXAMPLE_QUESTIONS.values() for q in qs]
with st.sidebar:
    st.markdown("**Example questions**")
    st.caption("Replace the {placeholders} with ids from your plant.")
    for q in examples:
        st.code(q, language=None)

for turn in history:
    with st.chat_message("user"):
        st.markdown(turn["question"])
    with st.chat_message("assistant"):
        if turn.get("doc"):
            _show_answer(turn["doc"])
        else:
            st.error(turn.get("error") or "no answer")

question = st.chat_input("Ask about lots, holds, machines, deliveries, SOPs...")
if question:
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        asked: str = question
        doc = call(lambda: api.ask(asked), "Thinking with the graph...")
        if doc:
            _show_answer(doc)
    history.append({"question": question, "doc": doc, "error": None if doc else "the API call failed"})
