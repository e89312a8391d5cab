"""The risk board's garbage-collector pause: off inside, back as it was afterwards (nested, on
error, and when the caller had it off)."""

from __future__ import annotations

import gc

import pytest

from reasoning.gcpause import paused_gc


def test_pause_nests_and_restores() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_caller_that_keeps_it_off_keeps_it_off() -> None:
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_pauses_still_collect(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pause ending while another still holds, after the collector was off too long, collects."""
    from reasoning import gcpause

    collected: list[int] = []
    monkeypatch.setattr(gcpause, "MAX_OFF_SECONDS", 0.0)
    monkeypatch.setattr(gcpause.gc, "collect", lambda *a: collected.append(1) or 0)
    outer = paused_gc()
    outer.__enter__()
    try:
        with paused_gc():
            pass
        assert collected == [1]
        assert not gc.isenabled()
    finally:
        outer.__exit__(None, None, None)
    assert gc.isenabled()
