"""Approvals and audit: review write-back proposals, read the audit trail, verify its hash chain."""

from __future__ import annotations

from datetime import UTC, datetime, time
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from ui.client import ApiClient
from ui.common import call, current_user, require_client

st.title("Approvals & audit")
client = require_client()
if client is None:
    st.stop()
api: ApiClient = client
me = current_user()

tab_props, tab_audit = st.tabs(["Proposals", "Audit trail"])

with tab_props:
    status = st.selectbox("Status", ["pending", "approved", "rejected", "all"], key="prop_status")
    items: list[dict[str, Any]] = call(lambda: api.proposals(None if status == "all" else status),
                                       "Loading proposals...") or []
    if not items:
        st.info("No proposal with this status in your scope.")
    for p in items:
        targets = ", ".join(p.get("target_ids") or [])
        with st.container(border=True):
            st.markdown(f"**{p['id']}** - {p['kind']} on {targets or '-'} - *{p['status']}*")
            st.caption(f"proposed by {p['proposed_by']} at {p['proposed_at']}"
                       + (f"; decided by {p['decided_by']}: {p.get('decision_comment') or ''}"
                          if p.get("decided_by") else ""))
            if p.get("comment"):
                st.markdown(f"> {p['comment']}")
            with st.expander("Action"):
                st.json(p.get("action") or {})
            if p["status"] != "pending":
                continue
            if p["proposed_by"] == me.get("user"):
                st.caption("You proposed this; another approver must decide it.")
                continue
            if me.get("role") != "approver":
                st.caption("Only a person with the approver role can decide proposals.")
                continue
            comment = st.text_input("Comment", key=f"comment_{p['id']}")
            c1, c2 = st.columns(2)
            pid: str = p["id"]
            if c1.button("Approve", key=f"approve_{pid}", type="primary"):
                done = call(partial(api.decide, pid, True, comment or "approved"), "Applying...")
                if done:
                    st.success(f"{done['id']} approved; applied to {', '.join(done.get('applied_ids') or [])}")
                    st.rerun()
            if c2.button("Reject", key=f"reject_{pid}"):
                done = call(partial(api.decide, pid, False, comment or "rejected"), "Rejecting...")
                if done:
                    st.rerun()

with tab_audit:
    c1, c2, c3 = st.columns(3)
    user = c1.text_input("User", key="audit_user")
    kind = c2.selectbox("Kind", ["any", "entity", "search", "neighbourhood", "analysis", "ask", "event", "bundle",
                                 "proposal", "decision", "audit", "denied"], key="audit_kind")
    since_on = c3.toggle("Since a date", key="audit_since_on")
    since = None
    if since_on:
        since = datetime.combine(c3.date_input("Since (UTC)", key="audit_since"), time(0, 0), UTC)
    records = call(lambda: api.audit(user or None, None if kind == "any" else kind, since),
                   "Reading the audit log...")
    if records is not None:
        frame = pd.DataFrame([{
            "seq": r.get("seq"), "at": r.get("ts"), "user": r.get("user"), "role": r.get("role"),
            "kind": r.get("kind"), "endpoint": f"{r.get('method', '')} {r.get('endpoint', '')}",
            "status": r.get("status"), "detail": r.get("detail") or r.get("question"),
        } for r in records])
        st.dataframe(frame, hide_index=True, width="stretch")
    if st.button("Verify the hash chain", key="audit_verify"):
        rep = call(api.verify_audit, "Verifying...")
        if rep is not None:
            if rep.get("ok"):
                st.success(f"Chain intact: {rep.get('records')} records verified.")
            else:
                st.error(f"Chain broken at record {rep.get('first_bad_seq')}: {rep.get('problem')}")
