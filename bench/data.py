"""`make bench-data N=1000000` (`python -m bench.data --calls N`): the store at a city's scale.

Loads N calls over two years (with their queue legs) and N*0.3 cases (with their citizens) into
a fresh PostgreSQL database with the shape of a real 3-1-1 line: a weekly and an hourly curve,
eight queues of unequal size, the outcomes, services, languages and dispositions of a call
center, citizens who call more than once, cases opened from a third of the answered calls. Rows
go in with COPY (asyncpg's binary copy), so 1M calls load in about a minute and 10M in about
ten.

Then each operation of issue 24's table runs through the product's own code, `--runs` times
(median reported), and the JSON on stdout gives per operation:

- `seconds`: the median wall time, and every run's;
- `peak_rss_mb`: the process's resident memory at its highest during the operation minus before
  it (sampled every 10 ms by a thread reading /proc/self/statm; the number that matters to a
  server, unlike tracemalloc's Python-only view which also slows Python down threefold);
- `loop_stall_ms`: the longest time a ticker coroutine (asleep for 5 ms at a time) came back
  late, i.e. how long the event loop, which in `serve` also runs the IVR, the AMI bridge and the
  consoles, could not serve anything else during the operation.

Reports run twice: `inline` (the report's functions awaited on the serving loop, as before issue
24) and `served` (as supervisor/http.py now runs them: in the off-loop worker,
supervisor/offloop.py). `find_case` runs `cold` (a new engine: a new connection with empty
caches, the first query) and `warm`. `open_data_export` computes the public figures (figures/)
and writes data.json and each open-data CSV from them. Retention runs last (a first run over the
whole history: personal data older than 365 days), once as a dry run and once for real.
`targets` in the JSON gives each target of issue 24 with the figure measured for it and `pass`
(true/false; null when not run); the same verdicts end the log on stderr. Saved under
bench/results/data-<N>-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from contactcenter import db

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# CCBENCH_DB: another name, so two worktrees can measure at the same time
DB_NAME = os.environ.get("CCBENCH_DB", "cc_bench_data")
PAGE = os.sysconf("SC_PAGE_SIZE")

# the load's "now": the history ends here (fixed, so two runs load the same rows)
END = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
TZ = "America/New_York"
QUEUES = [  # name, share of queued calls, its service codes
    ("general-311", 30, ["general-inquiry"]),
    ("sanitation", 18, ["missed-pickup", "bulk-item"]),
    ("potholes", 14, ["pothole", "streetlight"]),
    ("noise", 10, ["noise-complaint"]),
    ("housing", 9, ["heat-hot-water", "housing-inspection"]),
    ("transport", 8, ["parking", "traffic-signal"]),
    ("water", 6, ["water-leak"]),
    ("parks", 5, ["tree-down", "park-maintenance"]),
]
OUTCOMES = [("answered", 74), ("abandoned", 8), ("short_abandoned", 3), ("timed_out", 1),
            ("transferred", 2), ("ivr_self_served", 8), ("ivr_hangup", 4)]
HOURS = [2, 1, 1, 1, 1, 2, 4, 8, 13, 16, 17, 16, 14, 14, 15, 14, 12, 10, 8, 6, 5, 4, 3, 2]
WEEKDAY = [1.0, 0.97, 0.95, 0.93, 0.9, 0.45, 0.3]
DISPOSITIONS = ["information-given", "case-created", "case-status", "transferred-agency",
                "resolved-first-call"]
TARGETS = {"report_7d_s": 0.3, "report_30d_s": 0.3, "report_366d_s": 1.0, "sla_366d_s": 0.5,
           "ivr_366d_s": 1.0,
           "peak_rss_mb": 300, "csv_rows_per_second_min": 100_000, "csv_memory_mb": 50,
           "loop_stall_ms": 50, "find_case_ms": 20, "retention_transaction_s": 5}
# what the serving process runs (the report worker for reports; the export on its own loop);
# `inline` and `rows` are the "before" of issue 24, measured for comparison only
SERVED = ("report_7d_served", "report_30d_served", "report_366d_served", "sla_366d_served",
          "calls_csv_30d_streamed", "open_data_export", "ivr_366d_served")


def verdicts(ops: dict[str, Any]) -> dict[str, Any]:
    """Each target of issue 24 with the figure measured for it and whether it is met (None:
    its operations were not run, e.g. with --only)."""

    def get(op: str, key: str) -> Any:
        return ops.get(op, {}).get(key)

    def worst(values: list[Any]) -> Any:
        found = [v for v in values if v is not None]
        return max(found) if found else None

    memory = worst([get(op, k) for op in SERVED
                    for k in ("peak_rss_mb", "worker_process_peak_rss_mb")])
    checks: list[tuple[str, Any, str, str]] = [
        ("report_7d_s", get("report_7d_served", "seconds"), "<=", "report_7d_served"),
        ("report_30d_s", get("report_30d_served", "seconds"), "<=", "report_30d_served"),
        ("report_366d_s", get("report_366d_served", "seconds"), "<=", "report_366d_served"),
        ("sla_366d_s", get("sla_366d_served", "seconds"), "<=", "sla_366d_served"),
        ("ivr_366d_s", get("ivr_366d_served", "seconds"), "<=", "ivr_366d_served"),
        ("peak_rss_mb", memory, "<=", "served operations: the process and the report worker"),
        ("csv_rows_per_second_min", get("calls_csv_30d_streamed", "rows_per_second"), ">=",
         "calls_csv_30d_streamed"),
        ("csv_memory_mb", get("calls_csv_30d_streamed", "peak_rss_mb"), "<=",
         "calls_csv_30d_streamed: the server's growth (flat memory)"),
        ("loop_stall_ms", worst([get(op, "loop_stall_ms") for op in SERVED]), "<=",
         "served operations (see idle_control/busy_control for the machine's own)"),
        ("find_case_ms", worst([get("find_case_cold", "worst_input_ms"),
                                get("find_case_warm", "worst_input_ms")]), "<=",
         "find_case_cold/warm, worst input"),
        ("retention_transaction_s", get("retention_first_run", "longest_transaction_s"), "<=",
         "retention_first_run"),
    ]
    out: dict[str, Any] = {}
    for name, measured, way, source in checks:
        target = TARGETS[name]
        ok = None if measured is None else (
            measured <= target if way == "<=" else measured >= target)
        out[name] = {"target": f"{way} {target}", "measured": measured, "from": source,
                     "pass": ok}
    return out


# The IVR's trace (ivr/engine.py IVRPATH) of a city's menu: nine options, five with a submenu
# of four to six, an information line and the case status; a few timeouts and wrong keys.
# Drawn from its own Random, so the other columns load exactly as before.
SUBMENUS = {1: 5, 2: 4, 4: 6, 5: 4, 6: 5}


def ivr_path(prnd: random.Random, outcome: str, queue: str | None) -> list[str]:
    path = [f"lang:{1 if prnd.random() < 0.8 else 2}"]
    path += ["main:-"] * (prnd.random() < 0.05) + ["main:5"] * (prnd.random() < 0.02)
    if outcome == "ivr_self_served":
        if prnd.random() < 0.5:
            return [*path, "main:9", "main:case", "self_served"]
        return [*path, "main:8", f"info:{prnd.randint(1, 6)}", "self_served"]
    key = prnd.choice([*SUBMENUS, 3, 7, 0])
    path.append(f"main:{key}")
    if key in SUBMENUS:
        path.append(f"menu{key}:{prnd.randint(1, SUBMENUS[key])}")
    if outcome == "ivr_hangup":
        return path[:prnd.randint(1, len(path))]
    return [*path, queue or "general-311"]


def say(msg: str) -> None:
    print(f"[bench-data {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- loading -------------------------------------------------------------------------------------


def _dsn(admin: str, name: str) -> str:
    return admin.rsplit("/", 1)[0] + "/" + name


async def create_database(admin: str) -> str:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await conn.close()
    url = "postgresql+asyncpg://" + _dsn(admin, DB_NAME).split("://", 1)[1]
    await asyncio.to_thread(db.upgrade, url)
    return url


async def reference(url: str) -> dict[str, Any]:
    """The product's own reference data, plus the queues and service types of a bigger city."""
    from sqlalchemy import select

    from contactcenter.agency.models import Agency
    from contactcenter.queues.models import Queue, ServiceType
    from contactcenter.seed import seed_ivr_menu, seed_reference

    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    try:
        await seed_reference(sessions)
        await seed_ivr_menu(sessions)
        async with sessions() as s, s.begin():
            have_q = set((await s.execute(select(Queue.name))).scalars())
            for name, _, _ in QUEUES:
                if name not in have_q:
                    s.add(Queue(name=name, display_name=name.replace("-", " ").title(),
                                group_name="main"))
            await s.flush()
            qids = dict((await s.execute(select(Queue.name, Queue.id))).all())
            agency = (await s.execute(select(Agency.id).limit(1))).scalar_one()
            have_st = set((await s.execute(select(ServiceType.code))).scalars())
            for name, _, codes in QUEUES:
                for code in codes:
                    if code not in have_st:
                        s.add(ServiceType(code=code, name=code.replace("-", " ").title(),
                                          agency_id=agency, queue_id=qids[name], sla_hours=72))
        async with sessions() as s:
            st = {code: (sid, ag, hours) for code, sid, ag, hours in (await s.execute(
                select(ServiceType.code, ServiceType.id, ServiceType.agency_id,
                       ServiceType.sla_hours))).all()}
    finally:
        await engine.dispose()
    return {"service_types": st}


def _call_times(n: int, days: int, rnd: random.Random) -> Iterator[datetime]:
    """`n` start times over `days` days before END, in time order, with the weekly and hourly
    curves (local time) and a slow growth over the years."""
    tz = ZoneInfo(TZ)
    first = (END - timedelta(days=days)).astimezone(tz).date()
    weights = [WEEKDAY[(first + timedelta(days=i)).weekday()] * (0.85 + 0.3 * i / days)
               for i in range(days)]
    total = sum(weights)
    counts = [int(n * w / total) for w in weights]
    for i in rnd.sample(range(days), n - sum(counts)):
        counts[i] += 1
    cum = list(_cumulate(HOURS))
    for i, count in enumerate(counts):
        d = first + timedelta(days=i)
        midnight = datetime(d.year, d.month, d.day, tzinfo=tz)
        hours = rnd.choices(range(24), cum_weights=cum, k=count)
        secs = sorted(h * 3600 + rnd.random() * 3600 for h in hours)
        for s in secs:
            yield (midnight + timedelta(seconds=s)).astimezone(UTC)


def _cumulate(values: list[int]) -> Iterator[int]:
    acc = 0
    for v in values:
        acc += v
        yield acc


async def load(url: str, admin: str, calls: int, days: int, seed: int) -> dict[str, Any]:
    ref = await reference(url)
    st = ref["service_types"]
    rnd = random.Random(seed)
    prnd = random.Random(seed + 1)  # the IVR paths
    citizens_n = max(10, int(calls * 0.2))
    cases_n = int(calls * 0.3)
    conn = await asyncpg.connect(_dsn(admin, DB_NAME))
    started = time.monotonic()
    try:
        # citizens: created over the first years of the history
        say(f"citizens: {citizens_n}")
        t0 = END - timedelta(days=days + 30)
        cit_rows = [(i, f"1{2120000000 + i}", None, f"First{i % 97}", f"Last{i % 89}",
                     t0 + timedelta(seconds=rnd.random() * days * 86400 * 0.6))
                    for i in range(1, citizens_n + 1)]
        await conn.copy_records_to_table(
            "citizens", records=cit_rows,
            columns=["id", "phone", "email", "first_name", "last_name", "created_at"])
        phones = [r[1] for r in cit_rows]
        del cit_rows

        qnames = [q[0] for q in QUEUES]
        qweights = list(_cumulate([q[1] for q in QUEUES]))
        services = {q[0]: q[2] for q in QUEUES}
        onames = [o[0] for o in OUTCOMES]
        ocum = list(_cumulate([o[1] for o in OUTCOMES]))
        case_every = max(1, round(0.74 * calls / max(1, cases_n)))  # a case every k answered
        call_cols = ["id", "server", "linkedid", "caller_number", "caller_name", "citizen_id",
                     "started_at", "ended_at", "queue", "service", "language", "agent",
                     "agent_interface", "ivr_seconds", "wait_seconds", "ring_seconds",
                     "talk_seconds", "hold_seconds", "wrap_seconds", "handle_seconds", "outcome",
                     "abandon_position", "ivr_path", "case_number", "case_id", "disposition",
                     "partial", "recorded_at"]
        case_cols = ["id", "number", "token", "service_type_id", "agency_id", "citizen_id",
                     "status", "close_reason", "channel", "description", "attributes",
                     "sla_due_at", "created_by", "created_at", "updated_at", "closed_at"]
        leg_cols = ["call_id", "seq", "kind", "queue", "joined_at", "left_at", "outcome",
                    "wait_seconds", "ring_seconds", "talk_seconds", "agent", "agent_interface"]
        batch: list[tuple[Any, ...]] = []
        case_batch: list[tuple[Any, ...]] = []
        leg_batch: list[tuple[Any, ...]] = []
        seq_by_year: dict[int, int] = {}
        case_id = 0
        answered_seen = 0
        say(f"calls: {calls} over {days} days; cases: about {cases_n}")
        for i, start in enumerate(_call_times(calls, days, rnd), start=1):
            outcome = rnd.choices(onames, cum_weights=ocum)[0]
            known = rnd.random() < 0.6
            cit = rnd.randrange(1, citizens_n + 1) if known else None
            number = phones[cit - 1] if cit else f"1{rnd.randrange(2000000000, 9999999999)}"
            ivr = round(10 + rnd.expovariate(1 / 25), 1)
            queue = service = agent = iface = disposition = None
            wait = ring = talk = hold = wrap = handle = None
            position = None
            if not outcome.startswith("ivr_"):
                queue = rnd.choices(qnames, cum_weights=qweights)[0]
                service = rnd.choice(services[queue])
                if outcome in ("answered", "transferred"):
                    wait = round(rnd.expovariate(1 / 30), 1)
                    ring = round(rnd.uniform(2, 12), 1)
                    talk = round(rnd.lognormvariate(5.3, 0.6), 1)
                    hold = round(rnd.expovariate(1 / 20), 1) if rnd.random() < 0.15 else 0.0
                    wrap = round(rnd.uniform(10, 60), 1)
                    handle = round(talk + wrap, 1)
                    op = rnd.randrange(1, 121)
                    agent, iface = f"Operator {op}", f"PJSIP/{1000 + op}"
                    disposition = rnd.choice(DISPOSITIONS)
                elif outcome == "abandoned":
                    wait = round(5 + rnd.expovariate(1 / 70), 1)
                    position = rnd.randrange(1, 12)
                elif outcome == "short_abandoned":
                    wait = round(rnd.uniform(0, 4.9), 1)
                else:
                    wait = 300.0
            length = ivr + (wait or 0) + (ring or 0) + (talk or 0)
            ended = start + timedelta(seconds=length)
            if queue is not None:  # its one queue visit, as the case writer records it
                leg_batch.append((i, 0, "queue", queue, start + timedelta(seconds=ivr), ended,
                                  outcome, wait, ring, talk, agent, iface))
            linked_case = None
            if outcome == "answered":
                answered_seen += 1
                if answered_seen % case_every == 0 and case_id < cases_n:
                    case_id += 1
                    linked_case = case_id
                    code = service or "general-inquiry"
                    sid, ag, hours = st.get(code) or st["general-inquiry"]
                    created = ended
                    due = created + timedelta(hours=hours)
                    year = created.year
                    seq_by_year[year] = seq_by_year.get(year, 0) + 1
                    age = (END - created).total_seconds() / 86400
                    closed = None
                    status = "open" if age < 30 and rnd.random() < 0.5 else "closed"
                    if status == "closed":
                        closed = created + timedelta(hours=rnd.lognormvariate(3.6, 1.0))
                    case_batch.append((
                        case_id, f"311-{year:04d}-{seq_by_year[year]:06d}", f"tok{case_id}",
                        sid, ag, cit, status, "resolved" if closed else None, "phone",
                        "Reported by phone", "{}", due, agent, created, closed or created,
                        closed))
            batch.append((
                i, "default", f"{int(start.timestamp())}.{i}", number,
                f"Caller {cit}" if cit else None, cit, start, ended, queue, service,
                "es" if rnd.random() < 0.2 else "en", agent, iface, ivr, wait, ring, talk, hold,
                wrap, handle, outcome, position, json.dumps(ivr_path(prnd, outcome, queue)),
                f"311-2026-{rnd.randrange(1, 999999):06d}" if rnd.random() < 0.02 else None,
                linked_case, disposition, False, ended))
            if len(batch) >= 50_000:
                await _flush(conn, batch, call_cols, case_batch, case_cols)
                await _copy(conn, "call_legs", leg_batch, leg_cols)
                if i % 500_000 < 50_000:
                    say(f"  {i} calls ({time.monotonic() - started:.0f} s)")
        await _flush(conn, batch, call_cols, case_batch, case_cols)
        await _copy(conn, "call_legs", leg_batch, leg_cols)
        for table in ("citizens", "calls", "cases", "call_legs"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM {table}))")
        await conn.execute("INSERT INTO case_sequences (year, last) SELECT * FROM unnest("
                           "$1::int[], $2::int[])", list(seq_by_year), list(seq_by_year.values()))
        loaded = time.monotonic() - started
        say(f"loaded in {loaded:.0f} s; ANALYZE")
        await conn.execute("ANALYZE")
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()
    return {"calls": calls, "cases": case_id, "citizens": citizens_n, "days": days,
            "load_seconds": round(loaded, 1), "database_mb": round(size / 2**20)}


async def summary(url: str) -> dict[str, Any]:
    """The reports' interval and IVR containment summaries of the loaded calls (COPY bypasses
    the case writer): what `contactcenter reports rebuild` does after an upgrade; each skipped
    when already there."""
    from sqlalchemy import func, select, text

    from contactcenter.supervisor import containment, daily, intervals
    from contactcenter.supervisor.models import CallDay, CallInterval, IvrContainment

    engine = db.make_engine(url)
    try:
        sessions = db.make_sessionmaker(engine)
        out: dict[str, Any] = {}
        if engine.dialect.name == "postgresql":
            # what autovacuum does after a bulk load (this server runs without it): the
            # visibility map lets the SLA report scan its covering index only
            async with engine.connect() as c:
                pages, visible = (await c.execute(text(
                    "SELECT relpages, relallvisible FROM pg_class WHERE relname = 'cases'")
                )).one()
            if visible < pages / 2:
                say("VACUUM cases (after the bulk load)")
                t0 = time.monotonic()
                async with engine.connect() as c:
                    auto = await c.execution_options(isolation_level="AUTOCOMMIT")
                    await auto.execute(text("VACUUM (ANALYZE) cases"))
                out["cases_vacuum_seconds"] = round(time.monotonic() - t0, 1)
        async with sessions() as s:
            ivr_rows = (await s.execute(select(func.count()).select_from(IvrContainment))
                        ).scalar()
        if not ivr_rows:
            say("IVR containment summary: rebuild from the calls")
            t0 = time.monotonic()
            await containment.rebuild(sessions, ZoneInfo(TZ))
            out["ivr_summary_rebuild_seconds"] = round(time.monotonic() - t0, 1)
            async with sessions() as s:
                ivr_rows = (await s.execute(select(func.count()).select_from(IvrContainment))
                            ).scalar()
        out["ivr_summary_rows"] = ivr_rows
        async with sessions() as s:
            have = (await s.execute(select(func.count()).select_from(CallInterval))).scalar()
            days = (await s.execute(select(func.count()).select_from(CallDay))).scalar()
        if have and not days:
            say("daily roll-ups: rebuild from the interval summary")
            t0 = time.monotonic()
            await daily.rebuild(sessions, ZoneInfo(TZ))
            out["daily_rollup_rebuild_seconds"] = round(time.monotonic() - t0, 1)
        if have:
            return {"summary_rows": have, **out}
        say("interval summary: rebuild from the calls")
        t0 = time.monotonic()
        calls = await intervals.rebuild(sessions, 15.0)
        took = time.monotonic() - t0
        await daily.rebuild(sessions, ZoneInfo(TZ))
        async with sessions() as s:
            have = (await s.execute(select(func.count()).select_from(CallInterval))).scalar()
        return {"summary_rebuild_seconds": round(took, 1), "summary_rebuild_calls": calls,
                "summary_rows": have, **out}
    finally:
        await engine.dispose()


async def _copy(conn: Any, table: str, rows: list[tuple[Any, ...]], cols: list[str]) -> None:
    if rows:
        await conn.copy_records_to_table(table, records=rows, columns=cols)
        rows.clear()


async def _flush(conn: Any, batch: list[tuple[Any, ...]], call_cols: list[str],
                 case_batch: list[tuple[Any, ...]], case_cols: list[str]) -> None:
    # the cases first: calls point to them
    if case_batch:
        await conn.copy_records_to_table("cases", records=case_batch, columns=case_cols)
        case_batch.clear()
    if batch:
        await conn.copy_records_to_table("calls", records=batch, columns=call_cols)
        batch.clear()


# --- measuring -----------------------------------------------------------------------------------


def rss(pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:  # a child that just ended
        return 0


def children_rss() -> int:
    """The resident memory of this process's children (the report worker)."""
    total = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                total += sum(rss(pid) for pid in f.read().split())
        except OSError:
            continue
    return total


class Probe:
    """Peak RSS (a sampling thread) and the longest event-loop stall (a ticker coroutine)."""

    def __init__(self) -> None:
        self.base = rss()
        self.peak = self.base
        self.child_peak = children_rss()
        self.stall = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._ticker: asyncio.Task[None] | None = None

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss())
            self.child_peak = max(self.child_peak, children_rss())

    async def _tick(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            self.stall = max(self.stall, time.perf_counter() - before - 0.005)

    async def __aenter__(self) -> Probe:
        self._thread.start()
        self._ticker = asyncio.create_task(self._tick())
        await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(0.01)
        assert self._ticker is not None
        self._ticker.cancel()
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


async def measure(name: str, runs: int, op: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    times, peaks, stalls, workers, extra = [], [], [], [], None
    for _ in range(runs):
        async with Probe() as probe:
            t = time.perf_counter()
            extra = await op()
            times.append(time.perf_counter() - t)
        peaks.append((probe.peak - probe.base) / 2**20)
        workers.append(probe.child_peak / 2**20)
        stalls.append(probe.stall * 1000)
    out = {"seconds": round(statistics.median(times), 4),
           "runs": [round(x, 4) for x in times],
           "peak_rss_mb": round(max(peaks), 1), "loop_stall_ms": round(max(stalls), 1)}
    if max(workers) > 0:
        out["worker_process_peak_rss_mb"] = round(max(workers), 1)
    if isinstance(extra, dict):
        out.update(extra)
    say(f"{name}: {out}")
    return out


async def operations(url: str, runs: int, only: set[str] | None,
                     freeze: bool = True) -> dict[str, Any]:
    from sqlalchemy import text

    from contactcenter.cases.retention import count_personal_data, purge_in_batches
    from contactcenter.ivr.services import IvrServices
    from contactcenter.supervisor import reports
    from contactcenter.supervisor.containment_http import ivr_work
    from contactcenter.supervisor.http import page_work
    from contactcenter.supervisor.offloop import OffLoop
    from contactcenter.supervisor.stats import QueueConfig, QueueStats

    tz = ZoneInfo(TZ)
    stats = QueueStats(tz=tz, default=QueueConfig(name="", service_level_seconds=15,
                                                  short_abandon_seconds=5))
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    last = (END - timedelta(days=1)).astimezone(tz).date()
    out: dict[str, Any] = {}
    if freeze:  # as the app does once started (app.py freeze_heap)
        gc.collect()
        gc.freeze()

    def want(name: str) -> bool:
        return only is None or any(name.startswith(o) for o in only)

    def rng(days: int) -> reports.DateRange:
        return reports.DateRange(last - timedelta(days=days - 1), last)

    spec = (tz, stats.default, ())

    async def page(days: int, served: bool) -> dict[str, Any]:
        # what GET /reports does (supervisor/http.py): the call and SLA reports of the range,
        # in the report worker process (served) or awaited on this loop (inline)
        if served:
            report, _ = await worker.run(page_work, rng(days), spec, END)
        else:
            report, _ = await page_work(sessions, rng(days), spec, END)
        return {"calls": report.total.calls}

    # the machine's own noise: the longest stall of the ticker while the loop does nothing
    if want("idle"):
        out["idle_control"] = await measure("idle_control", runs,
                                            lambda: asyncio.sleep(2.0))
    if want("busy"):
        # ...and while this process computes in 5 ms slices, yielding between them (as the
        # CSV export does per chunk): whatever exceeds 5 ms here is the machine, not the code
        async def busy() -> None:
            end = time.perf_counter() + 2.0
            while time.perf_counter() < end:
                stop = time.perf_counter() + 0.005
                while time.perf_counter() < stop:
                    pass
                await asyncio.sleep(0)
        out["busy_control"] = await measure("busy_control", runs, busy)
    worker = OffLoop(url)
    await worker.start()
    await worker.run(reports.sla_report, rng(1), tz, END)  # the worker process is up
    try:
        for days in (7, 30, 366):
            for mode in ("served", "inline"):
                name = f"report_{days}d_{mode}"
                if not want(name):
                    continue
                out[name] = await measure(
                    name, runs, lambda d=days, m=mode: page(d, m == "served"))
        for days in (7, 30, 366):  # before: the same report counted call by call in Python
            name = f"report_{days}d_rows"
            if want(name):
                async def rows(d: int = days) -> dict[str, Any]:
                    report = await reports.call_report_from_rows(sessions, rng(d), stats)
                    return {"calls": report.total.calls}
                out[name] = await measure(name, runs, rows)
        for days in (7, 30, 366):  # GET /reports/ivr: the containment summary, in the worker
            name = f"ivr_{days}d_served"
            if want(name):
                async def ivr(d: int = days) -> dict[str, Any]:
                    report = await worker.run(ivr_work, rng(d))
                    return {"calls": report.total.total, "paths": len(report.paths),
                            "containment": round(report.total.containment or 0.0, 4)}
                out[name] = await measure(name, runs, ivr)
        if want("report_366d_served"):
            await asyncio.sleep(0.5)
            out["worker_idle_rss_mb_after_reports"] = round(children_rss() / 2**20, 1)
        if want("sla_366d_served"):
            async def sla() -> dict[str, Any]:
                rows = await worker.run(reports.sla_report, rng(366), tz, END)
                return {"agencies": len(rows)}
            out["sla_366d_served"] = await measure("sla_366d_served", runs, sla)

        if want("calls_csv"):
            async def csv30(use_copy: bool = True) -> dict[str, Any]:
                # as the route: each piece awaited by the writer (PostgreSQL: COPY's bytes)
                rows = size = 0

                async def write(data: bytes) -> None:
                    nonlocal rows, size
                    size += len(data)
                    rows += data.count(b"\r\n")

                await reports.write_calls_csv(sessions, rng(30), tz, write, use_copy=use_copy)
                return {"rows": rows - 1, "mb": round(size / 2**20, 1)}
            # the Python rows (SQLite's path, and PostgreSQL's before COPY), for comparison
            py_op = await measure("calls_csv_30d_python", runs, lambda: csv30(False))
            py_op["rows_per_second"] = round(py_op["rows"] / py_op["seconds"])
            out["calls_csv_30d_python"] = py_op
            csv_op = await measure("calls_csv_30d_streamed", runs, csv30)
            csv_op["rows_per_second"] = round(csv_op["rows"] / csv_op["seconds"])  # the median's
            out["calls_csv_30d_streamed"] = csv_op

        if want("open_data"):
            # the public figures and their open-data export (figures/), as the plugin serves
            # them: computed in the report worker, then data.json and each CSV written here
            from contactcenter.figures import service as figures
            from contactcenter.figures.http import open_data_bodies
            from contactcenter.figures.plugin import figures_work

            async def in_worker(now: datetime) -> Any:
                return await worker.run(figures_work, now, TZ, spec)

            async def open_data() -> dict[str, Any]:
                svc = figures.FiguresService(sessions, lambda: END, tz, TZ, _no_days,
                                             cache_seconds=0, compute=in_worker)
                f = await svc.figures()
                size = sum(len(body) for body in open_data_bodies(f).values())
                return {"bytes": size, "agency_months": len(f.months)}

            out["open_data_export"] = await measure("open_data_export", runs, open_data)

        if want("find_case"):
            caller = "12125550000"  # no citizen has this number
            keyed = ["3112019999999", "9999999999", "4321", "1"]

            async def find(ivr: IvrServices) -> dict[str, Any]:
                worst = 0.0
                for k in keyed:
                    t = time.perf_counter()
                    assert await ivr.find_case(k, caller) is None
                    worst = max(worst, time.perf_counter() - t)
                return {"worst_input_ms": round(worst * 1000, 2)}

            async def cold() -> dict[str, Any]:
                # a new engine: a new server process on PostgreSQL's side, no statement cached
                # in the driver; the connection itself is opened before the clock starts (the
                # IVR's pool keeps its connections open). PostgreSQL's shared buffers and the
                # OS page cache cannot be emptied on a shared machine: "cold" stops there.
                fresh = db.make_engine(url)
                try:
                    async with fresh.connect() as conn:
                        await conn.execute(text("SELECT 1"))
                    return await find(IvrServices(db.make_sessionmaker(fresh)))
                finally:
                    await fresh.dispose()

            out["find_case_cold"] = await measure("find_case_cold", max(runs, 5), cold)
            warm_ivr = IvrServices(sessions)
            await find(warm_ivr)
            out["find_case_warm"] = await measure("find_case_warm", max(runs, 5),
                                                  lambda: find(warm_ivr))
            async with engine.connect() as conn:
                plans = {}
                for label, sql, args in (
                    ("by_number", "SELECT id FROM cases WHERE number = :n",
                     {"n": "311-2019-999999"}),
                    ("by_caller", "SELECT cases.id FROM cases JOIN citizens ON citizens.id = "
                     "cases.citizen_id WHERE citizens.phone IN (:p, :q) AND cases.status != "
                     "'closed' ORDER BY cases.created_at DESC LIMIT 50",
                     {"p": caller, "q": caller[-10:]}),
                ):
                    plan = (await conn.execute(text("EXPLAIN " + sql), args)).scalars().all()
                    plans[label] = [str(p) for p in plan]
                out["find_case_plans"] = plans

        if want("retention"):
            now = END
            out["retention_dry_run"] = await measure(
                "retention_dry_run", 1, lambda: _purge(count_personal_data(sessions, 365, now)))
            out["retention_first_run"] = await measure(
                "retention_first_run", 1, lambda: _purge(purge_in_batches(sessions, 365, now)))
    finally:
        await worker.close()
        await engine.dispose()
    return out


async def _no_days(first: Any, last: Any) -> list[Any]:
    raise AssertionError("the figures are computed in the worker")


async def _purge(coro: Awaitable[Any]) -> dict[str, Any]:
    run = await coro
    return {"calls": run.result.calls, "cases": run.result.cases,
            "citizens": run.result.citizens, "transactions": run.batches,
            "longest_transaction_s": round(run.longest_batch_seconds, 3)}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    admin = args.pg_admin
    url = "postgresql+asyncpg://" + _dsn(admin, DB_NAME).split("://", 1)[1]
    loaded: dict[str, Any] = {"reused": True}
    if not args.reuse:
        say(f"fresh database {DB_NAME}")
        url = await create_database(admin)
        loaded = await load(url, admin, args.calls, args.days, args.seed)
    else:  # an older load: its schema to head, and the reports' summary if it has none
        await asyncio.to_thread(db.upgrade, url)
    loaded.update(await summary(url))
    only = set(args.only.split(",")) if args.only else None
    ops = await operations(url, args.runs, only, not args.no_freeze)
    return {"benchmark": "data-scale", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load": loaded, "timezone": TZ, "targets": verdicts(ops), "operations": ops,
            "memory": "peak RSS during the operation minus RSS before it (thread sampling "
                      "/proc/self/statm every 10 ms)",
            "stall": "longest lateness of a 5 ms asyncio.sleep ticker on the loop"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=730)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=24)
    p.add_argument("--reuse", action="store_true", help="measure the database already loaded")
    p.add_argument("--only", help="comma-separated operation name prefixes")
    p.add_argument("--no-freeze", action="store_true",
                   help="leave the heap to the collector (the app freezes it once started)")
    p.add_argument("--pg-admin", default=os.environ.get(
        "CCTEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = p.parse_args()
    result = asyncio.run(main_async(args))
    text_ = json.dumps(result, indent=2)
    print(text_)
    for name, v in result["targets"].items():
        verdict = {True: "PASS", False: "FAIL", None: "not run"}[v["pass"]]
        say(f"{verdict:7} {name}: {v['measured']} (target {v['target']})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"data-{args.calls}-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(text_)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
