"""Impact explorer: trace a hold, lot, machine window or incident, as a graph and as tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from ui import graph
from ui.client import ApiClient
from ui.common import call, path_text, require_client, scope_note

KINDS = {"hold": "QualityHold", "lot": "Lot", "machine": "Machine", "incident": "Incident"}

st.title("Impact explorer")
client = require_client()
if client is None:
    st.stop()
api: ApiClient = client

params = st.query_params
CLASS_TO_KIND = {cls: kind for kind, cls in KINDS.items()}
kind_default = params.get("kind", "auto")
if params.get("id") and kind_default == "auto":
    # opened from a citation link: find what the id is; non-traceable classes show their neighbourhood
    found = call(lambda: api.entity(params["id"]), "Opening entity...")
    if found is None:
        st.stop()
    cls = found["entity"]["cls"]
    kind_default = CLASS_TO_KIND.get(cls, "")
    if not kind_default:
        e = found["entity"]
        st.subheader(f"{e['id']} ({cls})")
        st.caption(f"{e.get('name') or ''} - plant {e.get('plant') or 'enterprise-wide'}")
        st.json(e.get("props") or {})
        nb = call(lambda: api.neighbourhood(e["id"], depth=1, limit=100), "Loading neighbours...")
        if nb:
            model = graph.GraphModel()
            model.add_node(e["id"], cls, e.get("name"))
            for n in (nb.get("nodes") or {}).get("items", []):
                model.add_node(n["id"], n["cls"], n.get("name"), (n.get("props") or {}).get("status"))
            for ed in nb.get("edges") or []:
                model.add_path({"steps": [{"src": ed["src"], "rel": ed["rel"], "dst": ed["dst"], "direction": "out"}]})
            graph.render(model, key=f"nb_{e['id']}")
        st.stop()
kind_options = list(KINDS)
kind = st.radio("Start from", kind_options, horizontal=True, key="impact_kind",
                index=kind_options.index(kind_default) if kind_default in kind_options else 0)

col_search, col_id = st.columns([2, 1])
with col_search:
    query = st.text_input("Search by id or name (typos are fine)", key="impact_query")
    picked = None
    if query:
        hits = call(lambda: api.search(query, cls=KINDS[kind], limit=15), "Searching...") or []
        if hits:
            labels = [f"{h['entity']['id']} - {h['entity'].get('name') or ''}" for h in hits]
            choice = st.selectbox("Matches", labels, key="impact_match")
            picked = choice.split(" - ")[0] if choice else None
        else:
            st.caption("No match in your plants.")
with col_id:
    entity_id = st.text_input("Id", value=picked or params.get("id", ""), key=f"impact_id_{picked or ''}")

backward = False
window_from = window_to = None
if kind == "lot":
    backward = st.toggle("Backward (where did it come from?)", key="impact_backward",
                         value=params.get("backward") == "1")
if kind == "machine":
    c1, c2 = st.columns(2)
    today = datetime.now(UTC).date()
    d_from = c1.date_input("Window from (UTC)", value=today - timedelta(days=1), key="impact_from_d")
    t_from = c1.time_input("at", value=time(0, 0), key="impact_from_t")
    d_to = c2.date_input("Window to (UTC)", value=today, key="impact_to_d")
    t_to = c2.time_input("at ", value=time(0, 0), key="impact_to_t")
    window_from = datetime.combine(d_from, t_from, UTC)
    window_to = datetime.combine(d_to, t_to, UTC)

as_of = None
if st.toggle("As of a past time", key="impact_asof_on"):
    c1, c2 = st.columns(2)
    d = c1.date_input("As of date (UTC)", key="impact_asof_d")
    t = c2.time_input("As of time", value=time(12, 0), key="impact_asof_t")
    as_of = datetime.combine(d, t, UTC)

auto = bool(params.get("id")) and "impact_ran" not in st.session_state
if (st.button("Trace", type="primary", key="impact_run") or auto) and entity_id:
    st.session_state["impact_ran"] = True
    traced = call(lambda: api.trace(kind, entity_id.strip(), backward=backward, as_of=as_of,
                                    window_from=window_from, window_to=window_to), "Tracing...")
    st.session_state["impact_doc"] = traced
    st.session_state.pop("impact_selected", None)

doc: dict[str, Any] | None = st.session_state.get("impact_doc")
if not doc:
    st.stop()

result = doc["result"]
scope_note(doc)
st.caption(f"{result['analysis']} from {', '.join(result['start_ids'])} - {result['direction']}, "
           f"mode: {result['mode']}" + (f", as of {result['as_of']}" if result.get("as_of") else ""))
caps = result.get("caps") or {}
if caps.get("depth_limit_hit") or caps.get("result_limit_hit"):
    st.warning("The trace hit a cap and is incomplete: " + "; ".join(caps.get("notes") or []))

reached = result.get("reached") or {}
m = st.columns(5)
m[0].metric("Lots", len(reached.get("Lot", [])))
m[1].metric("Production orders", len(reached.get("ProductionOrder", [])))
m[2].metric("Sales order lines", len(result.get("sales_order_lines") or []))
m[3].metric("Customers", len(result.get("customers") or []))
m[4].metric("Shipped lots", len(result.get("shipped_lots") or []))

model = graph.from_trace(result, KINDS.get(kind))
total = len(model.nodes)
shown = st.slider("Nodes shown (show more to expand)", min_value=min(10, total) or 1,
                  max_value=max(total, 10), value=min(total, 150), step=10, key="impact_nodes") if total > 10 else total
view = model.limited(shown, keep=result.get("start_ids", []))
if total > len(view.nodes):
    st.caption(f"showing {len(view.nodes)} of {total} nodes")
clicked = graph.render(view, key=f"impact_graph_{'-'.join(result['start_ids'])}_{len(view.nodes)}")
if clicked:
    st.session_state["impact_selected"] = clicked

selected: str | None = st.session_state.get("impact_selected")
if selected is not None:
    with st.expander(f"Selected: {selected}", expanded=True):
        ent = call(lambda: api.entity(str(selected)), "Loading entity...")
        if ent:
            e = ent["entity"]
            st.markdown(f"**{e['id']}** ({e['cls']}) {e.get('name') or ''} - plant {e.get('plant') or 'enterprise'}")
            st.json(e.get("props") or {}, expanded=True)
        nb = call(lambda: api.neighbourhood(str(selected), depth=1, limit=50), "Loading neighbours...")
        if nb:
            rows = [{"id": n.get("id"), "class": n.get("cls"), "name": n.get("name")}
                    for n in (nb.get("nodes") or {}).get("items", [])]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": r["entity"]["id"], "class": r["entity"]["cls"], "name": r["entity"].get("name"),
             "plant": r["entity"].get("plant"), "status": r["entity"].get("status"), "depth": r.get("depth"),
             "quantity": r.get("quantity"), "unit": r.get("unit"), "via": r.get("via"),
             "evidence": path_text(r["evidence"][0]) if r.get("evidence") else ""} for r in items]


st.subheader("Customers and sales order lines reached")
cust = _rows(result.get("customers") or [])
if cust:
    st.markdown("**Customers:** " + ", ".join(f"`{c['id']}` {c['name'] or ''}".strip() for c in cust))
else:
    st.markdown("**Customers:** none reached")
sol = _rows(result.get("sales_order_lines") or [])
st.dataframe(pd.DataFrame(cust + sol), hide_index=True, width="stretch")

st.subheader("Everything reached")
everything = [row for group in reached.values() for row in _rows(group)]
frame = pd.DataFrame(everything)
st.dataframe(frame, hide_index=True, width="stretch")
c1, c2 = st.columns(2)
c1.download_button("Download CSV", frame.to_csv(index=False), file_name="trace.csv", mime="text/csv")
c2.download_button("Download JSON", json.dumps(result, indent=2), file_name="trace.json",
                   mime="application/json")
