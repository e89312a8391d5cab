"""Root-cause explorer: factors shared by bad lots, ranked against comparable good lots."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from ui import graph
from ui.client import ApiClient
from ui.common import call, path_text, require_client, scope_note

st.title("Root cause")
client = require_client()
if client is None:
    st.stop()
api: ApiClient = client

mode = st.radio("Bad lots from", ["an incident", "a list of lots"], horizontal=True, key="rc_mode")
lots: list[str] = []
incident = None
if mode == "an incident":
    incident = st.text_input("Incident id", value=st.query_params.get("incident", ""), key="rc_incident").strip()
else:
    raw = st.text_area("Lot ids (comma or newline separated)", key="rc_lots")
    lots = [x.strip() for x in raw.replace("\n", ",").split(",") if x.strip()]

if st.button("Find candidates", type="primary", key="rc_run") and (incident or lots):
    st.session_state["rc_doc"] = call(lambda: api.rootcause(lots=lots, incident=incident or None),
                                      "Comparing histories...")

doc: dict[str, Any] | None = st.session_state.get("rc_doc")
if not doc:
    st.stop()
res = doc["result"]
scope_note(doc)
st.caption(f"{len(res['bad_lots'])} bad lots vs {len(res.get('good_lots') or [])} comparable good lots "
           f"of {', '.join(res.get('materials') or []) or 'the same materials'}")
factors = res.get("factors") or []
if not factors:
    st.info("No factor is shared by the bad lots more than by the good ones.")
    st.stop()
frame = pd.DataFrame([{
    "rank": f["rank"], "factor": f["factor"]["id"], "class": f["factor_class"],
    "name": f["factor"].get("name"), "support": round(f["support"], 3), "good share": round(f["good_share"], 3),
    "lift": round(f["lift"], 2), "p-value": f["p_value"], "bad with": f"{f['bad_with']}/{f['bad_total']}",
    "good with": f"{f['good_with']}/{f['good_total']}",
} for f in factors])
st.dataframe(frame, hide_index=True, width="stretch")
top = frame.head(15)
st.altair_chart(alt.Chart(top).mark_bar().encode(
    x=alt.X("lift:Q"), y=alt.Y("factor:N", sort="-x", title=None), color="class:N",
    tooltip=["factor", "class", "support", "good share", "lift", "p-value"]), width="stretch")

pick = st.selectbox("Evidence for", frame["factor"].tolist(), key="rc_pick")
factor = next(f for f in factors if f["factor"]["id"] == pick)
paths = factor.get("evidence") or []
if paths:
    graph.render(graph.from_paths(paths).limited(100, keep=[pick]), key=f"rc_graph_{pick}", height=380)
    for p in paths:
        st.code(path_text(p), language=None)
