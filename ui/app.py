"""The Streamlit entry point: ``streamlit run ui/app.py`` (``make demo`` does it for you).

Every page talks to the API with the signed-in user's key (see ui/client.py), never to the store.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).parent / "views"

st.set_page_config(page_title="plantgraph", page_icon=":material/hub:", layout="wide")

pages = [
    st.Page(HERE / "home.py", title="Overview", icon=":material/home:", default=True),
    st.Page(HERE / "impact.py", title="Impact explorer", icon=":material/account_tree:", url_path="impact"),
    st.Page(HERE / "risk.py", title="Delivery risk", icon=":material/local_shipping:", url_path="risk"),
    st.Page(HERE / "rootcause.py", title="Root cause", icon=":material/troubleshoot:", url_path="rootcause"),
    st.Page(HERE / "copilot.py", title="Copilot", icon=":material/chat:", url_path="copilot"),
    st.Page(HERE / "approvals.py", title="Approvals & audit", icon=":material/verified_user:",
            url_path="approvals"),
]
st.navigation(pages).run()
