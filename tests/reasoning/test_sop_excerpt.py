"""The SOP text excerpt: whitespace collapsed, cut at EXCERPT_CHARS with an ellipsis; reading
only a prefix of a long text gives the same excerpt as normalising the whole text."""

from __future__ import annotations

import random

from reasoning.analyses.sop import EXCERPT_CHARS, _excerpt


def _whole(text: object) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= EXCERPT_CHARS else s[: EXCERPT_CHARS - 1].rstrip() + "…"


def test_excerpt_equals_normalising_the_whole_text() -> None:
    rng = random.Random(5)
    pieces = ["a", "word", "Schritt", " ", "  ", "\n", "\t", "\n\n   ", "x" * 300, " " * 900]
    texts: list[object] = [None, "", "   ", 42, "short text", "a " * 119 + "bc", "a " * 120 + "bc"]
    for n in (1, 5, 50, 200, 600):
        for _ in range(40):
            texts.append("".join(rng.choice(pieces) for _ in range(n)))
    for text in texts:
        assert _excerpt(text) == _whole(text), repr(text)[:80]


def test_excerpt_is_cut_with_an_ellipsis() -> None:
    long = "Step one:   mix\n\n" + "stir well " * 100
    ex = _excerpt(long)
    assert len(ex) <= EXCERPT_CHARS and ex.endswith("…") and "  " not in ex and "\n" not in ex
    assert _excerpt("  a\tb \n c ") == "a b c"
