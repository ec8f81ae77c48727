"""Text from outside (caller ID, names, notes, broadcasts): the one rule for keeping and showing it.

Caller ID and the like are attacker-controlled. Escaping for HTML or CSV is each output's job;
this only bounds what we keep and show: printable, one line, a length cap.
"""

from __future__ import annotations

# Caller ID is attacker-controlled: keep at most this many characters of it in memory.
CALLER_ID_LIMIT = 40


def clean_text(value: str | None, limit: int = CALLER_ID_LIMIT) -> str:
    """Printable, one line, at most `limit` characters (an ellipsis marks a cut).

    Anything not printable (controls, line and paragraph separators, bidi overrides) becomes a
    space and runs of spaces one; only the first `limit * 4` characters are looked at.
    """
    if not value:
        return ""
    text = "".join(ch if ch.isprintable() else " " for ch in value[: limit * 4])
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
