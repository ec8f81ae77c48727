"""Strict parsing of the numbers in AMI events (pure: no I/O).

Asterisk computes some figures itself (``HoldTime``, ``TalkTime``, ``RingTime``, ``Position``…)
and Python's ``float()`` accepts ``inf``, ``nan`` and ``1e308``. One such value stored as is
made ``/api/queues`` invalid JSON for the rest of the day (issue 19), so every number the
trackers read goes through here: finite, non-negative, bounded, or ``None`` plus a `BadField`
the caller counts and reports (and replaces with a figure derived from event timestamps).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # frames imports `timestamp` from here
    from .frames import AmiEvent

DAY = 86_400.0
# No queue wait, ring or talk lasts a week; a larger duration is a corrupt field.
MAX_DURATION = 7 * DAY
# Queue positions, device-state codes and the like: small integers.
MAX_COUNT = 1_000_000
# Event stamps (epoch seconds) up to 2200-01-01: `datetime.fromtimestamp` takes them all.
MAX_TIMESTAMP = 7_258_118_400.0


class BadField(NamedTuple):
    """A number field refused: which event, which field, and the raw text (shortened)."""

    event: str
    field: str
    value: str


def _bad(bad: list[BadField], event: AmiEvent, field: str, raw: str) -> None:
    bad.append(BadField(event.name, field, raw[:40]))


def duration(
    event: AmiEvent, field: str, bad: list[BadField], *, scale: float = 1.0,
    limit: float = MAX_DURATION,
) -> float | None:
    """Seconds from `field` (divided by `scale`, e.g. 1000 for milliseconds); ``None`` when
    absent, or when not a finite number in [0, `limit`] (then noted in `bad`)."""
    raw = event.get(field)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw) / scale
    except ValueError:
        value = math.nan
    if not (0.0 <= value <= limit):  # also false for NaN
        _bad(bad, event, field, raw)
        return None
    return value


def count(
    event: AmiEvent, field: str, bad: list[BadField], *, limit: int = MAX_COUNT
) -> int | None:
    """A non-negative integer from `field`; ``None`` when absent or refused (noted in `bad`)."""
    raw = event.get(field)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)  # int() takes neither "inf" nor "1e3": no float detour
    except ValueError:
        value = -1
    if not (0 <= value <= limit):
        _bad(bad, event, field, raw)
        return None
    return value


def timestamp(raw: str | None) -> float | None:
    """An AMI ``Timestamp`` value, or ``None`` when absent or not an epoch time we can use."""
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 0.0 <= value <= MAX_TIMESTAMP else None


def check_timestamp(event: AmiEvent, bad: list[BadField]) -> None:
    """Note a present but refused ``Timestamp`` (the event then carries its receipt time)."""
    raw = event.get("Timestamp")
    if raw and timestamp(raw) is None:
        _bad(bad, event, "Timestamp", raw)


def hms(event: AmiEvent, field: str, bad: list[BadField]) -> float:
    """CoreShowChannel's ``Duration`` (``HH:MM:SS`` or plain seconds) in seconds; 0 if refused."""
    raw = event.get(field)
    if not raw:
        return 0.0
    total = 0.0
    try:
        for part in raw.split(":"):
            total = total * 60 + float(part)
    except ValueError:
        total = math.nan
    if not (0.0 <= total <= MAX_DURATION):
        _bad(bad, event, field, raw)
        return 0.0
    return total


def describe(event: AmiEvent, bad: list[BadField]) -> str:
    """One log line's worth: ``AgentComplete TalkTime='inf', HoldTime='nan'``."""
    return f"{event.name} " + ", ".join(f"{b.field}={b.value!r}" for b in bad)


__all__ = [
    "MAX_COUNT",
    "MAX_DURATION",
    "BadField",
    "check_timestamp",
    "count",
    "describe",
    "duration",
    "hms",
    "timestamp",
]
