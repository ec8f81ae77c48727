"""How a figure is written on a page: one rule for the Jinja templates (these filters) and for the
live pages (ccLive.fmt in static/live.js), so a report and the wallboard print the same text for
the same number. tests/e2e/test_formats.py feeds both the same values.

Rounding is half up on a scaled value, floor(x * 10**d + 0.5): the same IEEE double arithmetic
in Python and in JavaScript (Python's "%.1f" rounds exact halves to even, JavaScript's toFixed
rounds them up, so neither is used). A missing value (None, NaN, infinite) is an em dash.
"""

from __future__ import annotations

import math
from typing import Any

NONE = "—"


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _fixed(v: float, digits: int) -> str:
    scale = 10**digits
    n = math.floor(v * scale + 0.5)
    sign = "-" if n < 0 else ""
    whole, frac = divmod(abs(n), scale)
    return f"{sign}{whole}" if not digits else f"{sign}{whole}.{frac:0{digits}d}"


def fmt_count(v: Any) -> str:
    """A count of calls, callers, operators: a whole number ("12")."""
    n = _number(v)
    return NONE if n is None else _fixed(n, 0)


def fmt_percent(v: Any, digits: int = 1) -> str:
    """A ratio as a percentage: 0.5 -> "50.0%" (digits 0 where space is short: the TV)."""
    n = _number(v)
    return NONE if n is None else _fixed(n * 100, digits) + "%"


def fmt_seconds(v: Any, digits: int = 1) -> str:
    """An average in seconds (ASA, AHT): 14.5 -> "14.5 s"."""
    n = _number(v)
    return NONE if n is None else _fixed(n, digits) + " s"


def fmt_duration(v: Any) -> str:
    """An elapsed time, whole seconds cut like a clock's: 245 -> "4:05", 3723 -> "1:02:03"."""
    n = _number(v)
    if n is None:
        return NONE
    s = max(0, math.floor(n))
    h, rest = divmod(s, 3600)
    m, r = divmod(rest, 60)
    return f"{h}:{m:02d}:{r:02d}" if h else f"{m}:{r:02d}"


# named fmt_* so that none shadows a Jinja built-in (count is one)
FILTERS = {f.__name__: f for f in (fmt_count, fmt_percent, fmt_seconds, fmt_duration)}

__all__ = ["FILTERS", "fmt_count", "fmt_duration", "fmt_percent", "fmt_seconds"]
