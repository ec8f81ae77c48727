"""Gap reconciliation at run time: checkpoints, reading Asterisk's records, filling the store.

For each Asterisk server the `Reconciler`:

- writes a checkpoint (`bridge_checkpoints.last_event_at`: Asterisk's Timestamp of the last AMI
  event the bridge read) every `interval` seconds while the link is up;
- after every (re)connect of the bridge (a resync), and at start-up from the checkpoint a
  previous bridge process left (a restart, a standby's take-over), reconciles the gap: every
  call Asterisk's queue_log/CDR show ended between the checkpoint and now that the store lacks
  is published as a `CallEnded` with ``reconciled=True`` (the case writer stores it once, under
  the unique (server, linkedid); the wallboard counts it);
- every `interval`, completes calls the store holds as ``partial`` (closed by a resync, adopted
  after a restart) from the same records: legs, outcome, wait and talk become Asterisk's, and
  the row is marked reconciled.

Where the records are (`Settings.asterisk_records`): ``table`` (the product's
`asterisk_queue_log`/`asterisk_cdr`, which Asterisk writes through realtime and cdr_pgsql),
``file:<queue_log>[;cdr=<csv>]`` (Asterisk's queue_log file, and a CDR CSV with a header, for an
Asterisk on another host or a SQLite store), or ``off``. A table source serves one Asterisk
(the tables have no server column); with several servers give each a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..bus import BaseBus
from ..cases.models import Call, CallLeg
from ..cases.writer import leg_rows, record_row
from ..clock import Clock
from ..events import CallEnded, CallRecord
from .models import AsteriskCdr, AsteriskQueueLog, BridgeCheckpoint
from .reconcile import (
    CdrRow,
    QueueLogRow,
    RecordError,
    epoch,
    queue_log_row,
    read_cdr_csv,
    read_queue_log,
    reconcile,
)

log = logging.getLogger(__name__)

# How far back before a gap the records are read: a call that began this long before the
# last event seen and ended in the gap is still rebuilt whole (its ENTERQUEUE is older).
LOOKBACK_SECONDS = 4 * 3600.0
# Partial rows that ended longer ago than this are left as they are: the sweep runs every
# interval, and one whose records never come (rotated, never written) must not be re-read for
# ever. (The gap reconciliation after a reconnect reaches further back.)
PARTIAL_WINDOW_SECONDS = 3600.0
# Asterisk's and our stamps differ by a little (whole-second CDR, queue_log file).
SLACK_SECONDS = 2.0


class SourceError(Exception):
    """Asterisk's records cannot be read (a missing file, a database error): one line."""


class RecordSource(Protocol):
    async def read(self, since: float, until: float) -> tuple[list[QueueLogRow], list[CdrRow]]:
        """queue_log rows and CDR rows from `since` to `until` (epoch seconds)."""


def _naive(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC).replace(tzinfo=None)


class TableSource:
    """`asterisk_queue_log` and `asterisk_cdr` in the product's database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def read(self, since: float, until: float) -> tuple[list[QueueLogRow], list[CdrRow]]:
        q = AsteriskQueueLog
        c = AsteriskCdr
        lo, hi = _naive(since), _naive(until + SLACK_SECONDS)
        try:
            async with self.sessions() as s:
                qrows = (await s.execute(
                    select(q.id, q.time, q.callid, q.queuename, q.agent, q.event, q.data1,
                           q.data2, q.data3, q.data4, q.data5)
                    .where(q.time >= lo, q.time <= hi).order_by(q.time, q.id))).all()
                crows = (await s.execute(
                    select(c.uniqueid, c.linkedid, c.start, c.end, c.src, c.clid, c.channel,
                           c.userfield)
                    .where(or_(c.end >= lo, c.start >= lo), c.start <= hi))).all()
        except Exception as exc:  # any driver error: the source is not readable now
            raise SourceError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        rows = [queue_log_row(r.time, r.callid, r.queuename, r.agent, r.event,
                              [r.data1, r.data2, r.data3, r.data4, r.data5], r.id)
                for r in qrows if r.time is not None]
        cdrs = [CdrRow(r.uniqueid or "", r.linkedid or "", epoch(r.start), epoch(r.end),
                       r.src or "", r.clid or "", r.channel or "", r.userfield or "")
                for r in crows if r.start is not None and r.end is not None]
        return rows, cdrs


class FileSource:
    """Asterisk's queue_log file (and optionally a CDR CSV with a header)."""

    def __init__(self, queue_log: Path, cdr: Path | None = None) -> None:
        self.queue_log, self.cdr = queue_log, cdr
        self.errors = 0

    @classmethod
    def parse(cls, spec: str) -> FileSource:
        """``<queue_log path>[;cdr=<csv path>]``."""
        path, _, rest = spec.partition(";")
        cdr = None
        if rest:
            key, _, value = rest.partition("=")
            if key.strip() != "cdr" or not value.strip():
                raise ValueError(f"CC_ASTERISK_RECORDS: expected file:<queue_log>;cdr=<csv>, "
                                 f"got {spec!r}")
            cdr = Path(value.strip())
        return cls(Path(path.strip()), cdr)

    def _read(self, since: float, until: float) -> tuple[list[QueueLogRow], list[CdrRow]]:
        try:
            text = self.queue_log.read_text(errors="replace")
            cdr_text = self.cdr.read_text(errors="replace") if self.cdr else ""
        except OSError as exc:
            raise SourceError(f"{exc.strerror}: {exc.filename}") from exc
        errors: list[str] = []
        hi = until + SLACK_SECONDS
        rows = [r for r in read_queue_log(text, errors) if since <= r.time <= hi]
        if errors:
            self.errors += len(errors)
            log.warning("queue_log %s: %d unreadable lines skipped, e.g. %s", self.queue_log,
                        len(errors), errors[0])
        try:
            cdrs = [c for c in read_cdr_csv(cdr_text) if c.end >= since and c.start <= hi] \
                if cdr_text else []
        except RecordError as exc:
            raise SourceError(f"{self.cdr}: {exc}") from exc
        return rows, cdrs

    async def read(self, since: float, until: float) -> tuple[list[QueueLogRow], list[CdrRow]]:
        return await asyncio.to_thread(self._read, since, until)


def make_source(spec: str, sessions: async_sessionmaker[AsyncSession]) -> RecordSource | None:
    spec = spec.strip()
    if spec in ("", "off"):
        return None
    if spec == "table":
        return TableSource(sessions)
    if spec.startswith("file:"):
        return FileSource.parse(spec[5:])
    raise ValueError(f"CC_ASTERISK_RECORDS: expected table, file:<path> or off, got {spec!r}")


@dataclass
class Gap:
    start: float
    end: float
    calls: int = 0
    completed: int = 0
    done: bool = False
    error: str | None = None


class Reconciler:
    """One Asterisk server's checkpoints and reconciliation (see the module docstring)."""

    def __init__(
        self,
        server: str,
        source: RecordSource,
        sessions: async_sessionmaker[AsyncSession],
        bus: BaseBus,
        clock: Clock,
        *,
        holder: str = "",
        short_abandon_seconds: Callable[[str], float] = lambda q: 5.0,
        settled: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.server = server
        self.source = source
        self.sessions = sessions
        self.bus = bus
        self.clock = clock
        self.holder = holder
        self.short_abandon_seconds = short_abandon_seconds
        self.settled = settled  # waits until the live path's records are in the store
        self.last_event_at: float | None = None  # the checkpoint as stored
        self.gap: Gap | None = None  # the last gap found
        self.reconciled_total = 0
        self.completed_total = 0
        self.gaps = 0
        self.errors = 0
        self.last_error: str | None = None

    @property
    def pending(self) -> bool:
        """A gap was found and not reconciled yet (its records were unreadable)."""
        return self.gap is not None and not self.gap.done

    # --- checkpoints -----------------------------------------------------------------------

    async def load(self) -> float | None:
        async with self.sessions() as s:
            row = await s.get(BridgeCheckpoint, self.server)
        if row is not None:
            self.last_event_at = row.last_event_at.timestamp() if row.last_event_at else None
            self.reconciled_total = row.reconciled_total
        return self.last_event_at

    async def _upsert(self, values: dict[str, Any]) -> None:
        values = {**values, "updated_at": self.clock.now(), "holder": self.holder[:120]}
        async with self.sessions() as s, s.begin():
            dialect = s.get_bind().dialect.name
            ins: Any = (postgresql.insert(BridgeCheckpoint) if dialect == "postgresql"
                        else sqlite.insert(BridgeCheckpoint))
            stmt = ins.values(server=self.server, **values).on_conflict_do_update(
                index_elements=["server"], set_=values)
            await s.execute(stmt)

    async def checkpoint(self, last_event_at: float) -> None:
        """The bridge has read every event up to `last_event_at` (Asterisk's time)."""
        if self.last_event_at is not None and last_event_at <= self.last_event_at:
            return
        await self._upsert({"last_event_at": datetime.fromtimestamp(last_event_at, UTC)})
        self.last_event_at = last_event_at

    # --- the gap ---------------------------------------------------------------------------

    async def _known(self, linkedids: Iterable[str]) -> dict[str, bool]:
        ids = sorted(set(linkedids))
        out: dict[str, bool] = {}
        async with self.sessions() as s:
            for i in range(0, len(ids), 500):
                rows = await s.execute(
                    select(Call.linkedid, Call.partial, Call.reconciled)
                    .where(Call.server == self.server, Call.linkedid.in_(ids[i:i + 500])))
                for lid, partial, reconciled in rows:
                    out[lid] = bool(partial) and not reconciled
        return out

    async def _records(self, since: float, until: float, *, only_known: bool = False,
                       lookback: float = LOOKBACK_SECONDS,
                       ) -> tuple[list[CallRecord], dict[str, bool]]:
        rows, cdrs = await self.source.read(since - lookback, until)
        candidates = {c.linkedid for c in cdrs if c.linkedid} | {r.callid for r in rows}
        candidates |= {c.uniqueid for c in cdrs}
        known = await self._known(candidates)
        records = reconcile(rows, cdrs, server=self.server, until=until,
                            since=since - SLACK_SECONDS, known=known,
                            short_abandon_seconds=self.short_abandon_seconds)
        if only_known:
            records = [r for r in records if known.get(r.linkedid)]
        return records, known

    async def reconcile_gap(self, start: float, end: float, *, retry: bool = False) -> Gap:
        """Every call that ended between `start` (the last event seen) and `end` (now) and is
        not in the store: published as reconciled; partial rows among them completed."""
        gap = Gap(start, end)
        self.gap = gap
        self.gaps += 0 if retry else 1
        if self.settled is not None:
            await self.settled()
        try:
            records, known = await self._records(start, end)
        except SourceError as exc:
            gap.error = str(exc)
            self._failed(f"gap {self._span(gap)}: Asterisk's records unreadable: {exc}")
            return gap
        new = [r for r in records if r.linkedid not in known]
        partial = [r for r in records if known.get(r.linkedid)]
        for record in new:
            await self.bus.publish(CallEnded(record))
        gap.completed = await self._complete(partial)
        gap.calls = len(new)
        gap.done = True
        self.reconciled_total += len(new)
        await self._upsert({
            "gap_start": datetime.fromtimestamp(start, UTC),
            "gap_end": datetime.fromtimestamp(end, UTC),
            "gap_calls": len(new), "reconciled_total": self.reconciled_total,
        })
        log.warning("reconcile %s: gap %s (%.1f s without AMI events): %d calls reconciled "
                    "from Asterisk's records, %d partial calls completed", self.server,
                    self._span(gap), end - start, len(new), gap.completed)
        return gap

    async def complete_partials(self, now: float | None = None) -> int:
        """Partial rows of the last day completed from Asterisk's records where it has them.
        `now` on Asterisk's clock (the records' times), ours by default."""
        now = max(self.clock.timestamp(), now or 0.0)
        async with self.sessions() as s:
            oldest = (await s.execute(
                select(func.min(Call.started_at)).where(
                    Call.server == self.server, Call.partial.is_(True),
                    Call.reconciled.is_(False),
                    Call.ended_at >= datetime.fromtimestamp(now - PARTIAL_WINDOW_SECONDS, UTC))
                )).scalar()
        if oldest is None:
            return 0
        try:
            # from the oldest one's start: its ENTERQUEUE and CDR are after it
            records, _ = await self._records(oldest.timestamp(), now, only_known=True,
                                             lookback=SLACK_SECONDS)
        except SourceError as exc:
            self._failed(f"partial calls: Asterisk's records unreadable: {exc}")
            return 0
        return await self._complete(records)

    async def _complete(self, records: list[CallRecord]) -> int:
        """Rewrite stored partial rows (and their legs) from the rebuilt records."""
        done = 0
        for record in records:
            row = record_row(record)
            # what only the live path knows stays: the IVR's answers, the case, the start
            for keep in ("service", "language", "ivr_path", "case_number", "started_at",
                         "ivr_seconds", "caller_name"):
                row.pop(keep, None)
            row["partial"] = False
            async with self.sessions() as s, s.begin():
                call_id = (await s.execute(
                    update(Call).where(Call.server == record.server,
                                       Call.linkedid == record.linkedid,
                                       Call.partial.is_(True))
                    .values(**row).returning(Call.id))).scalar()
                if call_id is None:
                    continue
                await s.execute(delete(CallLeg).where(CallLeg.call_id == call_id))
                legs = leg_rows(record)
                if legs:
                    await s.execute(insert(CallLeg), [{**leg, "call_id": call_id}
                                                      for leg in legs])
            done += 1
        if done:
            self.completed_total += done
            log.info("reconcile %s: %d partial calls completed from Asterisk's records",
                     self.server, done)
        return done

    def _failed(self, message: str) -> None:
        self.errors += 1
        self.last_error = message[:300]
        log.error("reconcile %s: %s", self.server, message)

    @staticmethod
    def _span(gap: Gap) -> str:
        return (f"{datetime.fromtimestamp(gap.start, UTC):%Y-%m-%d %H:%M:%S} .. "
                f"{datetime.fromtimestamp(gap.end, UTC):%Y-%m-%d %H:%M:%S} UTC")

    def health(self, now: float, interval: float, connected: bool) -> dict[str, Any]:
        behind = self.gap is not None and not self.gap.done
        stale = connected and (self.last_event_at is None
                               or now - self.last_event_at > 3 * interval + 60)
        gap = self.gap
        return {
            "ok": not behind,
            "behind": behind,
            "checkpoint": None if self.last_event_at is None
            else datetime.fromtimestamp(self.last_event_at, UTC).isoformat(),
            "checkpoint_age_s": None if self.last_event_at is None
            else round(now - self.last_event_at, 1),
            "quiet": stale,  # no AMI event for a while: fine at night, a hint otherwise
            "last_gap": None if gap is None else {
                "start": datetime.fromtimestamp(gap.start, UTC).isoformat(),
                "end": datetime.fromtimestamp(gap.end, UTC).isoformat(),
                "seconds": round(gap.end - gap.start, 1), "calls": gap.calls,
                "completed": gap.completed, "done": gap.done,
                **({"error": gap.error} if gap.error else {}),
            },
            "gaps": self.gaps,
            "calls_reconciled": self.reconciled_total,
            "partial_completed": self.completed_total,
            "errors": self.errors,
            **({"last_error": self.last_error} if self.last_error else {}),
        }


class LinkView(Protocol):
    """What the reconciliation loop reads of a bridge link (ServerLink)."""

    name: str

    @property
    def resyncs(self) -> int: ...

    @property
    def connected(self) -> bool: ...

    def asterisk_time(self) -> float | None: ...

    async def asterisk_now(self) -> float | None: ...


async def run_loop(reconciler: Reconciler, link: LinkView, interval: float,
                   stop: asyncio.Event) -> None:
    """Checkpoint while connected; reconcile the gap after each (re)connect (the first one
    too: the gap since the checkpoint a previous process left); complete partial rows."""
    seen_resyncs = 0
    last_sweep = 0.0
    while not stop.is_set():
        try:
            gap = reconciler.gap
            if gap is not None and not gap.done:  # the records were unreadable: again
                await reconciler.reconcile_gap(gap.start, gap.end, retry=True)
            if link.connected and link.resyncs != seen_resyncs:
                if not seen_resyncs:  # a standby taking over: the holder wrote it since
                    await reconciler.load()
                seen_resyncs = link.resyncs
                start = reconciler.last_event_at
                # the gap ends at the reconnect, on Asterisk's clock (the records' times are
                # Asterisk's; its clock may run apart from ours, as the simulator's does)
                now = await link.asterisk_now() or max(reconciler.clock.timestamp(),
                                                       link.asterisk_time() or 0.0)
                if start is not None and now > start:
                    await reconciler.reconcile_gap(start, now)
                if not reconciler.pending:
                    await reconciler.checkpoint(link.asterisk_time() or now)
            elif link.connected and seen_resyncs and not reconciler.pending:
                # (not before the first resync; not past a gap still to reconcile, so a
                # restart meanwhile finds it again from the stored checkpoint)
                at = link.asterisk_time()
                if at is not None:
                    await reconciler.checkpoint(at)
            if link.connected and time.monotonic() - last_sweep >= interval:
                last_sweep = time.monotonic()
                await reconciler.complete_partials(link.asterisk_time())
        except Exception as exc:  # the database is down: say so, try again next round
            reconciler._failed(f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


__all__ = ["FileSource", "Gap", "LinkView", "Reconciler", "RecordSource", "SourceError",
           "TableSource", "make_source", "run_loop"]
