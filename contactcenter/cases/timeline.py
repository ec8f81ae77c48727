"""The citizen's one clock per case, as pure functions: first contact, the steps to resolution
and who held each, and the percentiles the figures and the honest estimates use."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0..100) with linear interpolation between closest ranks (numpy's
    default); None for no values."""
    if not values:
        return None
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50)


def first_contact(created_at: datetime, first_call: datetime | None) -> datetime:
    return min(created_at, first_call) if first_call is not None else created_at


@dataclass(frozen=True, slots=True)
class TimelineStep:
    name: str  # contact, answered, acknowledged, resolved
    at: datetime | None  # None: not reached yet
    seconds: float | None  # since the previous step reached (None while not reached)
    held_by: str  # who the clock was with until this step: "queue", "center", "agency"


def contact_timeline(*, contact: datetime, answered: datetime | None,
                     acknowledged: datetime | None, resolved: datetime | None,
                     now: datetime) -> tuple[list[TimelineStep], float]:
    """The citizen's one clock: first contact → answered (calls only) → acknowledged by the
    agency → resolved, each step's duration and who held it; and the total so far (to `now`
    while open)."""
    steps = [TimelineStep("contact", contact, 0.0, "citizen")]
    last = contact
    for name, at, holder in (("answered", answered, "queue"),
                             ("acknowledged", acknowledged, "center"),
                             ("resolved", resolved, "agency")):
        if at is None:
            steps.append(TimelineStep(name, None, None, holder))
            continue
        steps.append(TimelineStep(name, at, max(0.0, (at - last).total_seconds()), holder))
        last = at
    end = resolved if resolved is not None else now
    return steps, max(0.0, (end - contact).total_seconds())


def fmt_duration(seconds: float | None) -> str:
    """12 s, 5 min, 3.5 h, 2.1 d: the scale a citizen or a director reads."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
