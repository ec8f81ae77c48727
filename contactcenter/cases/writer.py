"""The case writer: every finished call (`CallEnded`) becomes exactly one row of `calls`, and
its legs (each queue visit, an outside transfer) rows of `call_legs`, in the same transaction.

- Exactly once: rows are inserted with "on conflict (server, linkedid) do nothing" on both
  SQLite and PostgreSQL, so a record seen twice (a replay, a restart, a spool replayed after a
  crash) is written once.
- Batched: whatever is queued when the writer wakes goes in one Core `insert()` with a list of
  rows (the ORM would send one INSERT per row; DESIGN notes).
- Never lost: when the database cannot be reached, records go to an append-only spool (JSON
  lines under `spool_dir`, fsynced) and a retry loop replays it, in order, when the database is
  back. While the spool is not empty new records are appended behind it, so order holds. The
  spool is read again at start, so it survives a restart.
- Bounded: the in-memory queue spills to the spool above `max_pending` (a slow database must
  not eat memory; `/health` shows it).
- Durable: every record the writer accepts is appended to a journal (`journal.jsonl` beside
  the spool, fsynced once per event-loop turn for all records of that turn) before it waits in
  memory, and the journal is emptied once everything in it is in the database or the spool.
  After a kill -9 at any moment, the next start moves the journal into the spool: nothing the
  writer accepted is lost, and the unique key makes any record written twice harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..bus import BaseBus, Subscription
from ..clock import SYSTEM, Clock
from ..events import CallEnded, CallRecord, Event, QueueLeg, event_from_dict
from ..supervisor import containment, daily, intervals
from ..supervisor.stats import CallFacts, LegFacts
from .citizens import normalize_phone
from .models import Call, CallLeg, Case, Citizen

log = logging.getLogger(__name__)

SPOOL_NAME = "calls.jsonl"
JOURNAL_NAME = "journal.jsonl"
# Rewrite the journal without its finished head when it holds this many lines (a writer that
# is never idle must not grow it without end); an idle writer simply empties it.
JOURNAL_COMPACT = 10_000

# Errors that mean "the database is not there", as opposed to a bad record.
DB_DOWN = (OperationalError, InterfaceError, OSError, ConnectionError, TimeoutError)
# PostgreSQL says "try the transaction again": deadlock, serialization failure, lock not free
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
TRANSIENT_TRIES = 5


def _fit(value: str | None, size: int) -> str | None:
    """Caller ID is attacker-controlled: never let a long value fail the insert."""
    return value if value is None or len(value) <= size else value[:size]


DURATIONS = ("ivr_seconds", "wait_seconds", "ring_seconds", "talk_seconds", "hold_seconds")


def _duration(record: CallRecord, name: str) -> float | None:
    """A duration fit to store: a non-finite or negative one (whatever produced it) becomes
    NULL, never a NaN that every later sum and JSON answer would carry (issue 19)."""
    value: float | None = getattr(record, name)
    if value is None or (math.isfinite(value) and value >= 0):
        return value
    log.warning("case writer: call %s has %s=%r; stored as NULL", record.call_id, name, value)
    return None


def handle_time(talk: float | None, wrap: float | None) -> float | None:
    """DESIGN.md's talk + hold-on-call + wrap. Asterisk's TalkTime (AgentConnect to
    AgentComplete) already contains the time on hold, so hold is not added again."""
    if talk is None:
        return None
    return round(talk + (wrap or 0.0), 3)


def handle_seconds(record: CallRecord) -> float | None:
    """At write time: talk only; wrap is added when the operator's wrap-up is known."""
    return handle_time(record.talk_seconds, None)


LEG_DURATIONS = ("wait_seconds", "ring_seconds", "talk_seconds")


def leg_rows(record: CallRecord) -> list[dict[str, Any]]:
    """The `call_legs` rows of a record (without call_id); a record without legs gets the one
    its columns describe (`CallRecord.queue_legs`)."""
    rows = []
    for seq, leg in enumerate(record.queue_legs):
        durations = {name: _leg_duration(record, leg, name) for name in LEG_DURATIONS}
        rows.append({
            "seq": seq, "kind": leg.kind, "queue": _fit(leg.queue, 80),
            "joined_at": leg.joined_at, "left_at": leg.left_at, "outcome": leg.outcome,
            **durations, "agent": _fit(leg.agent, 200),
            "agent_interface": _fit(leg.agent_interface, 120), "target": _fit(leg.target, 200),
        })
    return rows


def _leg_duration(record: CallRecord, leg: QueueLeg, name: str) -> float | None:
    value: float | None = getattr(leg, name)
    if value is None or (math.isfinite(value) and value >= 0):
        return value
    log.warning("case writer: call %s leg in %s has %s=%r; stored as NULL", record.call_id,
                leg.queue, name, value)
    return None


def record_row(record: CallRecord) -> dict[str, Any]:
    durations = {name: _duration(record, name) for name in DURATIONS}
    return {
        "server": record.server,
        "linkedid": record.linkedid,
        "caller_number": _fit(record.caller_number, 40),
        "caller_name": _fit(record.caller_name, 200),
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "queue": _fit(record.queue, 80),
        "first_queue": _fit(record.first_queue, 80),
        "final_queue": _fit(record.final_queue, 80),
        "final_agent": _fit(record.final_agent, 200),
        "service": _fit(record.service, 80),
        "language": _fit(record.language, 8),
        "agent": _fit(record.agent, 200),
        "agent_interface": _fit(record.agent_interface, 120),
        **durations,
        "handle_seconds": handle_time(durations["talk_seconds"], None),
        "outcome": record.outcome,
        "abandon_position": record.abandon_position,
        "ivr_path": list(record.ivr_path),
        "case_number": _fit(record.case_number, 40),
        "partial": record.partial,
        "reconciled": record.reconciled,
    }


def stored_facts(row: dict[str, Any], legs: list[dict[str, Any]]) -> CallFacts:
    """The figures' facts of a call as `record_row`/`leg_rows` store it (what a rebuild from
    the tables reads back)."""
    return CallFacts(
        call_id=f"{row['server']}:{row['linkedid']}", started_at=row["started_at"],
        outcome=row["outcome"], queue=row["queue"], service=row["service"], agent=row["agent"],
        wait_seconds=row["wait_seconds"], talk_seconds=row["talk_seconds"],
        wrap_seconds=row.get("wrap_seconds"),
        legs=tuple(LegFacts(leg["queue"], leg["outcome"], leg["agent"], leg["wait_seconds"],
                            leg["talk_seconds"])
                   for leg in legs if leg["kind"] == "queue" and leg["queue"]),
    )


def _insert_ignore(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(Call).on_conflict_do_nothing(
            index_elements=["server", "linkedid"]
        )
    if dialect == "sqlite":
        return sqlite.insert(Call).on_conflict_do_nothing(index_elements=["server", "linkedid"])
    return insert(Call)  # other engines: the unique constraint still refuses a duplicate


class Spool:
    """Append-only JSON lines of CallEnded events; `take()` reads them back in order."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.path = self.dir / SPOOL_NAME
        self.depth = self._count()

    def _count(self) -> int:
        if not self.path.is_file():
            return 0
        with self.path.open("rb") as fh:
            return sum(1 for line in fh if line.strip())

    def append(self, records: Iterable[CallRecord]) -> int:
        lines = [CallEnded(r).to_json() + "\n" for r in records]
        if not lines:
            return 0
        self.dir.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.writelines(lines)
            fh.flush()
            os.fsync(fh.fileno())
        self.depth += len(lines)
        return len(lines)

    def read(self) -> tuple[list[CallRecord], int]:
        """The spooled records in order, and how many lines they came from (for `drop_first`)."""
        if not self.path.is_file():
            return [], 0
        out: list[CallRecord] = []
        used = 0
        with self.path.open("r", encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                used += 1
                try:
                    event = event_from_dict(json.loads(line))
                except ValueError as exc:  # includes EventDecodeError
                    # A torn last line (crash mid-write) must not block the rest: keep it aside.
                    log.error("spool %s line %d unreadable (%s); kept in %s.bad", self.path, n,
                              exc, self.path.name)
                    with (self.dir / (SPOOL_NAME + ".bad")).open("a", encoding="utf-8") as bad:
                        bad.write(line if line.endswith("\n") else line + "\n")
                    continue
                if isinstance(event, CallEnded):
                    out.append(event.record)
        return out, used

    def _lines(self) -> list[str]:
        if not self.path.is_file():
            return []
        with self.path.open("r", encoding="utf-8") as fh:
            return [line if line.endswith("\n") else line + "\n" for line in fh if line.strip()]

    def _rewrite(self, lines: list[str]) -> None:
        if not lines:
            self.clear()
            return
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines(lines)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)  # atomic: the old file or the new one, never half
        self.depth = len(lines)

    def drop_first(self, n: int) -> None:
        """Forget the first `n` lines (written); lines appended meanwhile stay."""
        self._rewrite(self._lines()[n:])

    def prepend(self, records: Iterable[CallRecord]) -> None:
        """Older records that must go before what is spooled already."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._rewrite([CallEnded(r).to_json() + "\n" for r in records] + self._lines())

    def reject(self, record: CallRecord, reason: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"reason": reason[:500], "event": CallEnded(record).to_dict()})
        with (self.dir / "rejected.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        log.error("case writer: call %s refused by the database (%s); kept in %s",
                  record.call_id, reason, self.dir / "rejected.jsonl")

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.depth = 0


class Journal:
    """The write-ahead journal: JSON lines of accepted records (see module doc)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.path = self.dir / JOURNAL_NAME
        self.lines = 0

    def append(self, records: Iterable[CallRecord]) -> int:
        lines = [CallEnded(r).to_json() + "\n" for r in records]
        if not lines:
            return 0
        self.dir.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.writelines(lines)
            fh.flush()
            os.fsync(fh.fileno())
        self.lines += len(lines)
        return len(lines)

    def reset(self, records: Iterable[CallRecord] = ()) -> None:
        """Only `records` stay (atomically: the old journal or the new one, never half)."""
        lines = [CallEnded(r).to_json() + "\n" for r in records]
        if not lines:
            if self.lines or self.path.exists():
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            self.lines = 0
            return
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines(lines)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self.lines = len(lines)

    def recover(self) -> list[CallRecord]:
        """What a writer killed before finishing left in the journal (a torn last line, cut
        by the kill mid-write, was never accepted and is skipped)."""
        if not self.path.is_file():
            return []
        out: list[CallRecord] = []
        with self.path.open("r", encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    event = event_from_dict(json.loads(line))
                except ValueError:
                    log.warning("case writer: a torn journal line skipped (%s)", self.path)
                    continue
                if isinstance(event, CallEnded):
                    out.append(event.record)
        return out


class CallWriter:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        spool_dir: str | os.PathLike[str],
        *,
        batch_size: int = 500,
        max_pending: int = 20_000,
        retry_initial: float = 0.5,
        retry_max: float = 10.0,
        write_timeout: float = 10.0,
        clock: Clock = SYSTEM,
        default_sl: float = 15.0,
        tz: tzinfo = UTC,
    ) -> None:
        self.sessions = sessions
        self.default_sl = default_sl  # service-level threshold of a queue not in `queues`
        self.tz = tz  # the center's (CC_TIMEZONE): the IVR containment summary's days
        self.clock = clock  # for the write lag: business time, like the records' stamps
        self.spool = Spool(spool_dir)
        self.journal = Journal(spool_dir)
        self._unjournaled = 0  # the last records of `_pending`, not in the journal yet
        self._journal_soon = False
        self.journaled = 0  # records made durable in the journal since start
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.retry_initial, self.retry_max = retry_initial, retry_max
        self.write_timeout = write_timeout
        self._pending: deque[CallRecord] = deque()
        self._inflight: list[CallRecord] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sub: Subscription | None = None
        self.db_ok = True
        self.written = 0  # rows inserted (duplicates not counted)
        self.duplicates = 0
        self.spooled = 0
        self.spilled = 0
        self.rejected = 0
        self.transient_retries = 0
        self.last_error = ""
        self.last_write_lag: float | None = None

    # --- intake --------------------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        if isinstance(event, CallEnded):
            self.submit(event.record)

    def submit(self, record: CallRecord) -> None:
        """Accept a finished call: durable in the journal by the end of this event-loop turn
        (one fsync for every record of the turn), then written or spooled."""
        self._pending.append(record)
        self._unjournaled += 1
        self._idle.clear()
        if len(self._pending) > self.max_pending:
            # The database is slow: keep memory bounded by moving the oldest to disk, in order.
            batch = [self._pending.popleft() for _ in range(len(self._pending))]
            self.spool.append(batch)
            self._unjournaled = 0  # in the spool now: durable
            self.spilled += len(batch)
            log.warning("case writer: %d records queued in memory; moved to the spool",
                        len(batch))
            self._settle()
        elif not self._journal_soon:
            self._journal_soon = True
            try:
                asyncio.get_running_loop().call_soon(self._journal_now)
            except RuntimeError:  # no loop (a plain call): now
                self._journal_now()
        self._wake.set()

    def _journal_now(self) -> None:
        self._journal_soon = False
        n = self._unjournaled
        if not n:
            return
        tail = list(self._pending)[len(self._pending) - n:] if n <= len(self._pending) else []
        self.journaled += self.journal.append(tail)
        self._unjournaled = 0

    def _settle(self) -> None:
        """Empty the journal when all it holds is in the database or the spool (or compact
        it when it has grown): the rest is still in memory, waiting or being written."""
        if not self.journal.lines:
            return
        waiting = [*self._inflight,
                   *list(self._pending)[: max(len(self._pending) - self._unjournaled, 0)]]
        if not waiting:
            self.journal.reset()
        elif self.journal.lines >= JOURNAL_COMPACT and len(waiting) * 2 < self.journal.lines:
            self.journal.reset(waiting)

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self, bus: BaseBus | None = None) -> None:
        left = self.journal.recover()
        if left:
            # killed before these were written or spooled (or after, before the journal was
            # emptied: the unique key makes a second write harmless)
            self.spool.append(left)
            log.warning("case writer: %d records from an interrupted run's journal; spooled",
                        len(left))
        self.journal.reset()
        if bus is not None:
            # lossless: a record is never dropped on the bus; a writer behind makes the
            # publisher wait (it is never behind for long: submit only queues and journals)
            self._sub = bus.subscribe(self.on_event, types=(CallEnded,), name="case-writer",
                                      lossless=True)
        if self.spool.depth:
            log.info("case writer: %d spooled records from before; replaying", self.spool.depth)
            self._wake.set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="case-writer")

    async def close(self) -> None:
        if self._sub is not None:
            try:
                async with asyncio.timeout(max(self.write_timeout, 5.0)):
                    await self._sub.drain()
            except TimeoutError:  # never hang a shutdown: say what is left behind
                log.error("case writer: %d call records still on the bus at shutdown were not "
                          "taken in time", self._sub.queue.qsize())
            await self._sub.close()
        if self.db_ok:  # give the last batch its chance; when the store is away, spool now
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.write_timeout):
                    await self.flushed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._inflight:  # cancelled mid-write: the row may or may not be in; the unique
            self.spool.prepend(self._inflight)  # constraint makes a second write harmless
            self._inflight = []
        if self._pending:  # the database is still down at shutdown: keep them on disk
            self.spool.append(self._pending)
            self.spooled += len(self._pending)
            self._pending.clear()
        self._unjournaled = 0
        self._settle()

    async def flushed(self) -> None:
        """Everything submitted so far is in the database (or the loop is retrying the spool)."""
        await self._idle.wait()

    def health(self) -> dict[str, Any]:
        return {
            "ok": self.db_ok,
            "written": self.written,
            "duplicates": self.duplicates,
            "pending": len(self._pending) + len(self._inflight),
            "spool_depth": self.spool.depth,
            "journal_depth": self.journal.lines,  # accepted, fsynced, not yet stored/spooled
            "spooled": self.spooled,
            "spilled": self.spilled,  # queued in memory past max_pending, moved to the spool
            "rejected": self.rejected,
            "transient_retries": self.transient_retries,
            "last_write_lag_ms": None if self.last_write_lag is None
            else round(self.last_write_lag * 1000, 1),
            **({"last_error": self.last_error} if self.last_error else {}),
        }

    # --- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.retry_initial
        while True:
            if not self._pending and not self.spool.depth:
                self._idle.set()
                await self._wake.wait()
            self._wake.clear()
            try:
                if self.spool.depth:
                    # Order: whatever is new goes behind what is already spooled.
                    if self._pending:
                        self._spool_pending()
                    await self._replay_spool()
                while self._pending and not self.spool.depth:  # spilled meanwhile: spool first
                    n = min(len(self._pending), self.batch_size)
                    # Out of `_pending` before the await, so a spill in `submit` meanwhile
                    # cannot take (and a popleft after cannot drop) the wrong records.
                    self._journal_now()  # nothing waits on the database undurable
                    self._inflight = [self._pending.popleft() for _ in range(n)]
                    await self._write(self._inflight)
                    self._inflight = []
                    self._settle()
                if self.spool.depth:
                    continue  # spilled while writing: the spool (older) goes next
                self._up()
                delay = self.retry_initial
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # DB_DOWN, or a bug: either way keep the records on disk
                lost_link = isinstance(exc, DBAPIError) and exc.connection_invalidated
                if not isinstance(exc, DB_DOWN) and not lost_link:
                    log.exception("case writer: unexpected failure; records kept in the spool")
                self._down(exc)
                if self._inflight:  # older than anything spilled to the spool meanwhile
                    self.spool.prepend(self._inflight)
                    self.spooled += len(self._inflight)
                    self._inflight = []
                if self._pending:
                    self.spooled += self._spool_pending()
                self._settle()
                await self._sleep_or_wake(delay)
                delay = min(delay * 2, self.retry_max)

    async def _sleep_or_wake(self, delay: float) -> None:
        # New records during an outage are spooled at once (not held in memory).
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._wake.wait()
            self._wake.clear()
            if self._pending:
                self.spooled += self._spool_pending()

    def _spool_pending(self) -> int:
        """Every waiting record to the spool (fsynced): durable, so out of the journal."""
        batch = list(self._pending)
        self._pending.clear()
        self.spool.append(batch)
        self._unjournaled = 0
        self._settle()
        return len(batch)

    def _up(self) -> None:
        if not self.db_ok:
            log.info("case writer: database is back; spool replayed")
        self.db_ok = True
        self.last_error = ""

    def _down(self, exc: BaseException) -> None:
        if self.db_ok:
            log.error("case writer: database unreachable (%s); spooling records to %s",
                      str(exc) or type(exc).__name__, self.spool.path)
        self.db_ok = False
        detail = str(exc) or (f"no answer within {self.write_timeout:g} s"
                              if isinstance(exc, TimeoutError) else "")
        self.last_error = f"{type(exc).__name__}: {detail}"[:300]

    async def _replay_spool(self) -> None:
        records, used = self.spool.read()
        for i in range(0, len(records), self.batch_size):
            await self._write(records[i : i + self.batch_size])
        # All in: drop what was read (lines spilled meanwhile stay). A crash before this line
        # replays them again, and the unique constraint makes that harmless.
        self.spool.drop_first(used)
        if records:
            log.info("case writer: %d spooled records written", len(records))

    async def _attempt(self, records: list[CallRecord]) -> None:
        """One write of the batch; a deadlock or serialization failure (two transactions
        touching the same summary rows) is PostgreSQL saying "try again", not a refusal:
        retried a few times before it can count as one."""
        for attempt in range(TRANSIENT_TRIES):
            try:
                async with asyncio.timeout(self.write_timeout):
                    await self._write_batch(records)
                return
            except DBAPIError as exc:
                code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
                if (exc.connection_invalidated or code not in TRANSIENT_SQLSTATES
                        or attempt == TRANSIENT_TRIES - 1):
                    raise
                self.transient_retries += 1
                log.warning("case writer: %s; batch of %d retried", exc.orig, len(records))
                await asyncio.sleep(0.05 * 2**attempt)

    async def _write(self, records: list[CallRecord]) -> None:
        try:
            await self._attempt(records)
        except DB_DOWN:
            raise
        except DBAPIError as exc:
            if exc.connection_invalidated:  # the connection died mid-write: down, not refused
                raise
            # The database is up but refused the batch: find the record(s) it refuses, keep
            # them aside on disk with the reason, write the others.
            log.error("case writer: batch of %d refused (%s); writing one by one",
                      len(records), exc.orig)
            for record in records:
                try:
                    await self._attempt([record])
                except DB_DOWN:
                    raise
                except DBAPIError as one:
                    if one.connection_invalidated:
                        raise
                    self.rejected += 1
                    self.spool.reject(record, str(one.orig))

    async def _write_batch(self, records: list[CallRecord]) -> None:
        # One record per (server, linkedid) within a batch, first one wins (as in the table).
        seen: set[tuple[str, str]] = set()
        unique: list[CallRecord] = []
        for r in records:
            if (r.server, r.linkedid) not in seen:
                seen.add((r.server, r.linkedid))
                unique.append(r)
        async with self.sessions() as session, session.begin():
            rows = [record_row(r) for r in unique]
            # Skip what is already stored before creating citizens for it.
            existing = await self._existing(session, unique)
            rows = [row for row in rows if (row["server"], row["linkedid"]) not in existing]
            self.duplicates += len(records) - len(rows)
            if not rows:
                return
            await self._link(session, rows)
            conn = await session.connection()
            # RETURNING names the rows this statement inserted (a concurrent writer's are
            # skipped by the conflict clause), so only their legs are added.
            result = await conn.execute(
                _insert_ignore(conn.dialect.name).returning(Call.id, Call.server, Call.linkedid),
                rows,
            )
            ids = {(server, lid): call_id for call_id, server, lid in result.all()}
            by_key = {(r.server, r.linkedid): r for r in unique}
            legs = [
                {**leg, "call_id": call_id}
                for key, call_id in ids.items()
                for leg in leg_rows(by_key[key])
            ]
            if legs:
                await conn.execute(insert(CallLeg), legs)
            # the interval and IVR containment summaries, in this transaction: from the rows
            # as stored
            by_row = {(row["server"], row["linkedid"]): row for row in rows}
            sl_of = await intervals.thresholds(conn, self.default_sl)
            summed = intervals.summarize(
                (stored_facts(by_row[key], leg_rows(by_key[key])) for key in ids), sl_of)
            await intervals.upsert(conn, summed)
            await daily.upsert(conn, summed, self.tz)
            await containment.upsert(conn, containment.summarize(
                (by_row[key] for key in ids), self.tz))
            inserted = len(ids)
        self.written += inserted
        self.duplicates += len(rows) - inserted
        now = self.clock.timestamp()
        self.last_write_lag = max(0.0, now - records[-1].ended_at.timestamp())

    async def _existing(
        self, session: AsyncSession, records: list[CallRecord]
    ) -> set[tuple[str, str]]:
        by_server: dict[str, list[str]] = {}
        for r in records:
            by_server.setdefault(r.server, []).append(r.linkedid)
        found: set[tuple[str, str]] = set()
        for server, ids in by_server.items():
            result = await session.execute(
                select(Call.server, Call.linkedid).where(
                    Call.server == server, Call.linkedid.in_(ids)
                )
            )
            found.update((s, lid) for s, lid in result.all())
        return found

    async def _link(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """The citizen by caller number, and the case keyed in the IVR when it exists."""
        # A constant number of round trips per batch, whatever its size: a slow database
        # (500 ms a statement) must still take a batch within the write timeout.
        phones = {row["caller_number"]: normalize_phone(row["caller_number"]) for row in rows}
        wanted = {p for p in phones.values() if p is not None}
        citizens: dict[str | None, int] = {}  # phone -> id (a NULL phone is never selected)
        if wanted:
            found = await session.execute(
                select(Citizen.phone, Citizen.id).where(Citizen.phone.in_(wanted))
                .order_by(Citizen.id)
            )
            for phone, citizen_id in found.all():
                citizens.setdefault(phone, citizen_id)  # the oldest, as match_citizen
            new = [Citizen(phone=p) for p in sorted(wanted - citizens.keys())]
            if new:
                session.add_all(new)
                await session.flush()  # one multi-row INSERT ... RETURNING
                citizens.update({c.phone: c.id for c in new if c.phone is not None})
        for row in rows:
            phone = phones[row["caller_number"]]
            row["citizen_id"] = citizens.get(phone) if phone is not None else None
        numbers = {row["case_number"] for row in rows if row["case_number"]}
        cases: dict[str, int] = {}
        if numbers:
            result = await session.execute(
                select(Case.number, Case.id).where(Case.number.in_(numbers))
            )
            cases = {number: case_id for number, case_id in result.all()}
            # An IVR key pad gives digits only: "000123" is the serial of "311-2026-000123".
            for number in numbers - cases.keys():
                if number.isdigit():
                    case_id = (await session.execute(
                        select(Case.id).where(Case.number.like(f"%-{number}"))
                        .order_by(Case.id.desc()).limit(1)
                    )).scalar_one_or_none()
                    if case_id is not None:
                        cases[number] = case_id
        for row in rows:
            row["case_id"] = cases.get(row["case_number"]) if row["case_number"] else None

