"""What every page shares: the sidebar login, the API client, readable errors, small formatters."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import streamlit as st

from ui.client import ApiClient, ApiError

T = TypeVar("T")

DEFAULT_API_URL = "http://127.0.0.1:8000"

EXAMPLE_QUESTIONS: dict[str, list[str]] = {
    "analyst": ["Lot {lot} is on hold, which customers are affected?",
                "Where did lot {lot} come from?",
                "Why do we have quality problems with the lots of incident {incident}?"],
    "planner": ["Which deliveries are at risk this week, and why?",
                "Which deliveries for {customer} are at risk in the next 14 days?"],
    "engineer": ["What happened on machine {machine} last night?",
                 "Which work instruction applied to order {order}?"],
}


def api_url() -> str:
    return os.environ.get("PLANTGRAPH_API_URL", DEFAULT_API_URL).rstrip("/")


def _login_form() -> None:
    with st.sidebar:
        st.markdown("### plantgraph")
        st.caption(f"API: {api_url()}")
        me = st.session_state.get("me")
        if me:
            plants = ", ".join(me.get("plants") or []) or "-"
            st.success(f"Signed in as **{me['user']}** ({me['role']})  \nplants: {plants}")
            if st.button("Sign out", key="sign_out"):
                for k in ("api_key", "me"):
                    st.session_state.pop(k, None)
                st.rerun()
            return
        key = st.text_input("API key", type="password", key="login_key",
                            help="Created with `plantgraph keys create`; `make demo` prints one per role.")
        if st.button("Sign in", key="sign_in") and key:
            client = ApiClient(api_url(), key.strip())
            try:
                st.session_state["me"] = client.me()
                st.session_state["api_key"] = key.strip()
                st.rerun()
            except ApiError as err:
                st.error(err.message)
            finally:
                client.close()


def require_client() -> ApiClient | None:
    """Render the sidebar login; the signed-in user's client, or None (the page then stops)."""
    _login_form()
    key = st.session_state.get("api_key")
    if not key:
        st.info("Sign in with an API key in the sidebar to use this page.")
        return None
    return ApiClient(api_url(), key)


def current_user() -> dict[str, Any]:
    return dict(st.session_state.get("me") or {})


@contextmanager
def readable_errors() -> Iterator[None]:
    """Show API failures as a sentence, never as a traceback."""
    try:
        yield
    except ApiError as err:
        st.error(err.message)


def call(fn: Callable[[], T], spinner: str = "Asking the API...") -> T | None:
    """Run one API call under a spinner; None (with the error shown) when it fails."""
    try:
        with st.spinner(spinner):
            return fn()
    except ApiError as err:
        st.error(err.message)
        return None


def scope_note(doc: dict[str, Any]) -> None:
    scope = doc.get("scope") or {}
    if scope.get("withheld"):
        st.warning(f"{scope['withheld']} item(s) withheld: {scope.get('note') or 'outside your plant scope'}")


def impact_link(entity_id: str, kind: str | None = None) -> str:
    """A link that opens the impact explorer on an entity (used by copilot citations)."""
    k = kind or guess_kind(entity_id)
    return f"./impact?kind={k}&id={entity_id}"


def guess_kind(entity_id: str) -> str:
    prefix = entity_id.split("-")[0].upper()
    return {"HOLD": "hold", "QH": "hold", "M": "machine", "INC": "incident"}.get(prefix, "lot")


def path_text(path: dict[str, Any]) -> str:
    """``A -REL-> B <-REL2- C`` for one evidence path."""
    steps = path.get("steps") or []
    if not steps:
        return path.get("note") or ""
    parts = [steps[0]["src"]]
    for s in steps:
        arrow = f"-{s['rel']}->" if s.get("direction", "out") == "out" else f"<-{s['rel']}-"
        parts += [arrow, s["dst"]]
    return " ".join(parts)
