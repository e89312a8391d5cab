"""Delivery-risk board: open sales order lines in a horizon, why they are at risk, what could help."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from ui import graph
from ui.client import ApiClient
from ui.common import call, current_user, path_text, require_client, scope_note

LEVELS = ["critical", "high", "medium", "low", "none"]

st.title("Delivery risk")
client = require_client()
if client is None:
    st.stop()
api: ApiClient = client

me = current_user()
plants = [p for p in (me.get("plants") or []) if p != "*"]
c1, c2, c3 = st.columns([1, 1, 2])
horizon = c1.slider("Horizon (days)", 1, 60, 14, key="risk_horizon")
plant = c2.selectbox("Plant", ["all in my scope", *plants], key="risk_plant")
levels = c3.multiselect("Risk level", LEVELS, default=["critical", "high", "medium", "low"], key="risk_levels")

if st.button("Load board", type="primary", key="risk_run") or "risk_doc" not in st.session_state:
    st.session_state["risk_doc"] = call(
        lambda: api.risk(horizon, None if plant == "all in my scope" else plant), "Scoring open lines...")

doc: dict[str, Any] | None = st.session_state.get("risk_doc")
if not doc:
    st.stop()
board = doc["result"]
scope_note(doc)
lines = board.get("lines") or []
customers = sorted({(ln.get("customer") or {}).get("name") or (ln.get("customer") or {}).get("id") or "-"
                    for ln in lines})
cust_filter = st.multiselect("Customer", customers, key="risk_customers")


def _customer(ln: dict[str, Any]) -> str:
    c = ln.get("customer") or {}
    return str(c.get("name") or c.get("id") or "-")


shown = [ln for ln in lines if ln["level"] in levels and (not cust_filter or _customer(ln) in cust_filter)]
st.caption(f"now {board['now']}, horizon {board['horizon_days']:g} days: {board['lines_considered']} open lines "
           f"considered, {sum(1 for ln in lines if ln.get('causes'))} at risk, {len(shown)} shown")

rows = [{
    "line": ln["line"]["id"], "customer": _customer(ln), "material": (ln.get("material") or {}).get("id"),
    "quantity": ln["quantity"], "due": ln["due_date"], "expected": ln.get("expected_available"),
    "slack_h": ln.get("slack_hours"), "level": ln["level"], "score": round(ln["score"], 3),
    "priority": ln["priority"], "causes": ", ".join(sorted({c["kind"] for c in ln.get("causes") or []})),
} for ln in shown]
frame = pd.DataFrame(rows)
if frame.empty:
    st.success("No open line in this horizon matches the filters.")
    st.stop()
st.dataframe(frame, hide_index=True, width="stretch")

chart_rows = frame.dropna(subset=["expected"]) if "expected" in frame else frame.iloc[0:0]
if not chart_rows.empty:
    chart = alt.Chart(chart_rows).mark_rule(strokeWidth=3).encode(
        x=alt.X("due:T", title="due date / expected availability"), x2="expected:T",
        y=alt.Y("line:N", sort="-x", title=None), color=alt.Color("level:N", sort=LEVELS),
        tooltip=["line", "customer", "due:T", "expected:T", "slack_h", "causes"],
    ) + alt.Chart(chart_rows).mark_point(shape="diamond", size=60, filled=True).encode(
        x="due:T", y=alt.Y("line:N", sort="-x"), color=alt.Color("level:N", sort=LEVELS))
    st.altair_chart(chart, width="stretch")

st.subheader("Why, and what could unblock it")
pick = st.selectbox("Sales order line", [r["line"] for r in rows], key="risk_pick")
line = next(ln for ln in shown if ln["line"]["id"] == pick)
causes = line.get("causes") or []
if not causes:
    st.info("No cause found: this line is on track.")
for cause in causes:
    st.markdown(f"- **{cause['kind']}** `{cause['entity']['id']}`: {cause['detail']} (weight {cause['weight']:.2f})")
paths = [p for c in causes for p in c.get("evidence") or []]
if paths:
    graph.render(graph.from_paths(paths).limited(80, keep=[pick]), key=f"risk_graph_{pick}", height=360)
    with st.expander("Evidence paths"):
        for p in paths:
            st.code(path_text(p), language=None)
options = line.get("options") or []
if options:
    st.markdown("**Unblocking options**")
    st.dataframe(pd.DataFrame([{"kind": o["kind"], "entity": o["entity"]["id"], "detail": o["detail"],
                                "quantity": o.get("quantity"), "unit": o.get("unit")} for o in options]),
                 hide_index=True, width="stretch")
else:
    st.caption("No unblocking option found in the graph.")
