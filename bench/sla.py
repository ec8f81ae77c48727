"""SLA figures over a big case table: how long the one definition takes in SQL.

`python -m bench.sla [--cases 500000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]`
makes a scratch PostgreSQL database, fills it with N cases (every service type, a mix of
statuses, due times spread over two months around now, a few waiting on the citizen), and times
what a supervisor's and an agency's pages ask for: `sla_counts()` (the wallboard's "cases at
risk N, overdue M"), `sla_counts(agency=)`, `sla_watch(200)` (the digest's list), and the SLA
report over 30 days. Prints one JSON object (milliseconds, median and max of `--repeat` runs).
Not part of the suite: speed is measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

import psycopg2

from contactcenter import db
from contactcenter.cases.store import CaseStore
from contactcenter.clock import FixedClock
from contactcenter.seed import seed_reference
from contactcenter.supervisor import reports

NOW = datetime(2026, 6, 15, 14, 0, tzinfo=UTC)

FILL = """
INSERT INTO cases (number, token, service_type_id, agency_id, status, channel, description,
                   attributes, sla_due_at, created_at, updated_at, closed_at, language)
SELECT '311-B-' || g, 'tok' || g, st.id, st.agency_id,
       CASE WHEN mod(g, 10) < 6 THEN 'closed' WHEN mod(g, 10) = 6 THEN 'acknowledged'
            WHEN mod(g, 10) = 7 THEN 'in_progress' WHEN mod(g, 50) = 8 THEN 'waiting_citizen'
            ELSE 'open' END,
       'phone', '', '{}',
       %(now)s::timestamptz + (mod(g, 1440) - 720) * interval '1 hour',
       %(now)s::timestamptz - (mod(g, 1440) / 24.0) * interval '1 day',
       %(now)s::timestamptz,
       CASE WHEN mod(g, 10) < 6 THEN %(now)s::timestamptz - (mod(g, 700) - 300) * interval '1 hour'
       END,
       'en'
FROM generate_series(1, %(n)s) AS g
JOIN (SELECT id, agency_id, row_number() OVER (ORDER BY id) - 1 AS k FROM service_types) st
  ON st.k = mod(g, (SELECT count(*) FROM service_types))
"""
PAUSES = """
INSERT INTO case_sla_pauses (case_id, started_at, resume_status, actor)
SELECT id, sla_due_at - interval '2 hours', 'open', 'bench' FROM cases
WHERE status = 'waiting_citizen'
"""


def timed(samples: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1)}


async def measure(url: str, n: int, repeat: int) -> dict[str, Any]:
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    try:
        store = CaseStore(sessions, None, clock=FixedClock(NOW).now, timezone="America/New_York")
        out: dict[str, Any] = {"cases": n}
        runs: dict[str, list[float]] = {}
        rng = reports.DateRange(date(2026, 5, 16), date(2026, 6, 14))
        jobs: dict[str, Any] = {
            "sla_counts": lambda: store.sla_counts(),
            "sla_counts_one_agency": lambda: store.sla_counts(agency="SAN"),
            "sla_watch_200": lambda: store.sla_watch(200),
            "sla_report_30_days": lambda: reports.sla_report(sessions, rng, UTC, NOW,
                                                             "America/New_York"),
        }
        for name, job in jobs.items():
            for _ in range(repeat):
                t0 = time.perf_counter()
                result = await job()
                runs.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
            out[name] = timed(runs[name])
            if name == "sla_counts":
                out["counts"] = result
        return out
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"cc_bench_sla_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(args.pg, connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    base = args.pg.rsplit("/", 1)[0]
    try:
        url = f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
        asyncio.run(db_prepare(url))
        with psycopg2.connect(f"{base}/{name}") as conn, conn.cursor() as cur:
            t0 = time.perf_counter()
            cur.execute(FILL, {"now": NOW, "n": args.cases})
            cur.execute(PAUSES)
            cur.execute("ANALYZE")
            fill_s = time.perf_counter() - t0
        result = asyncio.run(measure(url, args.cases, args.repeat))
        result["fill_seconds"] = round(fill_s, 1)
        print(json.dumps(result))
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


async def db_prepare(url: str) -> None:
    await asyncio.to_thread(db.upgrade, url)
    engine = db.make_engine(url)
    try:
        await seed_reference(db.make_sessionmaker(engine))
    finally:
        await engine.dispose()


if __name__ == "__main__":
    main()
