"""IVR containment: of the calls in a range, how many the IVR served alone, by menu path.

Every call falls in exactly one class (`classify`, from the call as stored):

* ``contained`` -- the IVR finished a self-service step and ended the call itself, the caller
  never reaching a queue: it played an information message to its end, said the status of the
  caller's case, or took a request after hours (the tracker's outcome ``ivr_self_served``, from
  ``IVROUTCOME=self_served``, which the engine sets the moment such a step is done).
* ``abandoned`` -- hung up in the IVR before any self-service step was done: in a menu, during
  a message, while keying a case number (outcome ``ivr_hangup``).
* ``closed`` -- the IVR ended the call because the chosen queue was closed and the caller left
  no request (``ivr_hangup`` whose trace ends in ``closed``): not served, not abandoned.
* ``transferred`` -- sent by the menu to an outside number (the trace ends in ``transfer``).
* ``queued`` -- went on to a queue (or an operator), whatever happened there.

The path is the caller's menu choices, from `calls.ivr_path` (the IVR's ``IVRPATH`` trace,
`ivr/engine.py`): the ``node:key`` items in order, without the language choice (a path is
about the menu, not the language) and without where the caller went (that is the class);
``..`` marks a trace the IVR shortened. Containment rate = contained / all calls.

Reports read a summary, never the calls' JSON: `ivr_containment` holds per day (in the center's
time zone, `CC_TIMEZONE`: a call counts on the day it started), path and class the number of
calls; a year is tens of thousands of rows whatever the number of calls (15-minute buckets,
as `call_intervals`, held 0.7 rows per call in bench/data.py: each bucket its own mix of paths).
The case writer adds each batch in the transaction that writes it; `contactcenter reports
rebuild` restates it from `calls` (also after changing `CC_TIMEZONE`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from contactcenter.cases.models import Call
from contactcenter.supervisor.models import IvrContainment

CLASSES = ("contained", "abandoned", "closed", "transferred", "queued")
CLASS_LABELS = {
    "contained": "contained (served by the IVR)",
    "abandoned": "abandoned in the IVR",
    "closed": "closed (no request left)",
    "transferred": "transferred to an outside number",
    "queued": "went on to a queue",
}
PATH_MAX = 200  # characters of a path key (the IVR's trace is at most 200)

Key = tuple[date, str, str]  # (local day, path, class)


# --- the definitions (pure) ----------------------------------------------------------------------


def path_key(ivr_path: Sequence[Any] | None) -> str:
    """The menu choices of a stored trace, comma-separated: ``node:key`` items in order,
    without the language choice (``lang:N``) and the destination (an item without ``:``);
    ``..`` (the IVR shortened a long trace) is kept."""
    items = [str(i) for i in (ivr_path or ())
             if isinstance(i, str) and (i == ".." or (":" in i and not i.startswith("lang:")))]
    key = ",".join(items)
    if len(key) > PATH_MAX:  # only a trace not made by the IVR: keep its end, as the IVR does
        key = ".." + key[-(PATH_MAX - 2):]
    return key


def _destination(ivr_path: Sequence[Any] | None) -> str | None:
    """Where the trace says the caller went (its last item when it has no ``:``)."""
    last = ivr_path[-1] if ivr_path else None
    return last if isinstance(last, str) and ":" not in last and last != ".." else None


def classify(outcome: str, queue: str | None, ivr_path: Sequence[Any] | None) -> str:
    """The class of a call from its stored `outcome`, first `queue` and `ivr_path`."""
    if outcome == "ivr_self_served":
        return "contained"
    end = _destination(ivr_path)
    if outcome == "ivr_hangup":
        return "closed" if end == "closed" else "abandoned"
    if queue is None and end == "transfer":
        return "transferred"
    return "queued"


def summarize(rows: Iterable[Mapping[str, Any]], tz: tzinfo = UTC) -> dict[Key, int]:
    """Calls per (day in `tz`, path, class) of stored call rows (``started_at``, ``outcome``,
    ``queue``, ``ivr_path``): what they add to the summary."""
    out: dict[Key, int] = {}
    for row in rows:
        path = row["ivr_path"]
        key = (row["started_at"].astimezone(tz).date(), path_key(path),
               classify(row["outcome"], row["queue"], path))
        out[key] = out.get(key, 0) + 1
    return out


def midnight(day: date, tz: tzinfo) -> datetime:
    """The start of `day` in `tz` (aware)."""
    return datetime(day.year, day.month, day.day, tzinfo=tz)


# --- the summary table ---------------------------------------------------------------------------


async def upsert(conn: AsyncConnection, counts: Mapping[Key, int]) -> None:
    """Add `counts` to the table (INSERT ... ON CONFLICT DO UPDATE calls = calls + new)."""
    if not counts:
        return
    dialect = conn.dialect.name
    ins: Any
    if dialect == "postgresql":
        ins = postgresql.insert(IvrContainment)
    elif dialect == "sqlite":
        ins = sqlite.insert(IvrContainment)
    else:  # pragma: no cover - the product supports these two
        raise RuntimeError(f"the containment summary needs SQLite or PostgreSQL, not {dialect}")
    stmt = ins.on_conflict_do_update(
        index_elements=["day", "path", "outcome"],
        set_={"calls": IvrContainment.__table__.c.calls + ins.excluded.calls})
    # one row per key (a multi-row VALUES may not name a key twice in ON CONFLICT)
    await conn.execute(stmt, [{"day": d, "path": p, "outcome": o, "calls": n}
                              for (d, p, o), n in sorted(counts.items())])


REBUILD_FETCH = 5_000  # call rows per fetch while rebuilding (bounded memory)


async def rebuild(
    sessions: async_sessionmaker[AsyncSession], tz: tzinfo = UTC,
    start: datetime | None = None, end: datetime | None = None,
) -> int:
    """Restate the summary for the days (in `tz`) of [start, end) (default: every call's)
    from `calls`, one transaction per day. Returns the number of calls read."""
    async with sessions() as db:
        first, last = (await db.execute(
            select(func.min(Call.started_at), func.max(Call.started_at)))).one()
    if first is None and start is None:
        return 0
    day = (start if start is not None else first).astimezone(tz).date()
    if end is not None:
        local = end.astimezone(tz)
        stop = local.date() + timedelta(days=0 if local == midnight(local.date(), tz) else 1)
    else:
        stop = (last or first).astimezone(tz).date() + timedelta(days=1)
    total = 0
    cols = (Call.started_at, Call.outcome, Call.queue, Call.ivr_path)
    while day < stop:
        lo, hi = midnight(day, tz), midnight(day + timedelta(days=1), tz)
        async with sessions() as db, db.begin():
            conn = await db.connection()
            await conn.execute(delete(IvrContainment).where(IvrContainment.day == day))
            counts: dict[Key, int] = {}
            result = await conn.stream(
                select(*cols).where(Call.started_at >= lo, Call.started_at < hi)
                .execution_options(yield_per=REBUILD_FETCH))
            async for part in result.partitions():
                for key, n in summarize((dict(r._mapping) for r in part), tz).items():
                    counts[key] = counts.get(key, 0) + n
                total += len(part)
            await upsert(conn, counts)
        day += timedelta(days=1)
    return total


__all__ = ["CLASSES", "CLASS_LABELS", "classify", "path_key", "rebuild", "summarize", "upsert"]
