"""contactcenter.text.clean_text: the one rule for attacker-controlled text we keep and show."""

from __future__ import annotations

from contactcenter.text import CALLER_ID_LIMIT, clean_text


def test_controls_and_separators_become_one_space() -> None:
    assert clean_text("a\x00b\r\nc\u2028d\u2029e\x7ff") == "a b c d e f"
    assert clean_text("  spaced \t out  ") == "spaced out"


def test_a_bidi_override_cannot_reorder_what_is_shown() -> None:
    # U+202E would show "Ana\u202Egnp.exe" as "Anaexe.png"; it is a format character
    assert clean_text("Ana\u202egnp.exe") == "Ana gnp.exe"


def test_length_is_capped_with_an_ellipsis() -> None:
    long = clean_text("A" * 10_000)
    assert len(long) == CALLER_ID_LIMIT and long.endswith("…")
    assert clean_text("abcdef", 6) == "abcdef"
    assert clean_text("abcdefg", 6) == "abcde…"


def test_nothing_is_empty() -> None:
    assert clean_text(None) == "" and clean_text("") == "" and clean_text("\n\x00") == ""
