"""Overview: is the API ready, who am I, and where to go for each job."""

from __future__ import annotations

import streamlit as st

from ui.client import ApiClient, ApiError
from ui.common import api_url, current_user, require_client

st.title("plantgraph")
st.caption("A knowledge-graph copilot for manufacturing execution: every answer names the graph paths "
           "and passages it rests on.")

probe = ApiClient(api_url(), None)
try:
    ready = probe.ready()
    index = ready.get("index") or {}
    store = ready.get("store") or {}
    if ready.get("ready"):
        st.success(f"API ready - {store.get('backend', '?')} store; copilot index: {index.get('state', '?')}")
        if index.get("state") not in (None, "ready"):
            st.warning(f"Copilot in degraded mode: {index.get('reason')}")
    else:
        st.error(f"The API is up but not ready: {store.get('error') or ready.get('detail')}")
except ApiError as err:
    st.error(err.message)
finally:
    probe.close()

if require_client() is None:
    st.stop()
me = current_user()
st.markdown(f"Signed in as **{me.get('user')}**, role **{me.get('role')}**, plants "
            f"{', '.join(me.get('plants') or [])}.")
st.markdown(
    "- **Impact explorer**: trace a hold, lot, machine window or incident to lots, orders and customers.\n"
    "- **Delivery risk**: open sales order lines at risk, the cause chain and unblocking options.\n"
    "- **Root cause**: factors shared by bad lots, ranked against comparable good lots.\n"
    "- **Copilot**: ask in plain words; citations open the cited entity in the impact explorer.\n"
    "- **Approvals & audit**: decide write-back proposals, read and verify the audit trail."
)
