"""The agency work queue and the case search with many cases in PostgreSQL (issue 21).

`python -m bench.agency_queue [--cases 500000] [--runs 30]` creates a scratch PostgreSQL
database (CCBENCH_PG_ADMIN, default postgresql://postgres@127.0.0.1:5432/postgres), migrates it,
fills it with generate_series (cases over 5 service types and 3 agencies, half closed, 100,000
citizens, addresses and descriptions from small vocabularies), ANALYZEs, then times the same
functions the pages call (`agency.queries`), each `--runs` times, and prints JSON (p50/p99 ms).
The database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa

from contactcenter import db
from contactcenter.agency import queries as Q
from contactcenter.agency.models import Agency
from contactcenter.cases.models import Case
from contactcenter.cases.store import load_views
from contactcenter.clock import SYSTEM
from contactcenter.queues.models import ServiceType
from contactcenter.seed import seed_reference

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
WORDS = ["pothole", "deep", "garbage", "missed", "light", "broken", "tree", "water", "leak",
         "noise", "graffiti", "sidewalk", "crack", "bins", "recycling", "dark", "school", "park"]
STREETS = ["Main St", "Oak Ave", "Calle Sol", "Calle Luna", "Elm St", "Pine Rd", "River Dr"]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def timed(fn: Callable[[], Awaitable[Any]], runs: int) -> dict[str, float]:
    await fn()  # warm the cache and the statement cache
    ms = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        ms.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(ms), 2), "p99_ms": round(pct(ms, 99), 2),
            "max_ms": round(max(ms), 2)}


async def fill(url: str, cases: int) -> None:
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    await seed_reference(sessions)
    async with sessions() as s:
        stypes = (await s.execute(select_types())).all()
    ids = ",".join(str(t[0]) for t in stypes)
    agencies = ",".join(str(t[1]) for t in stypes)
    hours = ",".join(str(t[2]) for t in stypes)
    n = len(stypes)
    words = ",".join(f"'{w}'" for w in WORDS)
    streets = ",".join(f"'{w}'" for w in STREETS)
    async with engine.begin() as conn:
        await conn.execute(sa.text(
            "INSERT INTO citizens (phone, created_at) SELECT '787' || lpad(g::text, 7, '0'), "
            "now() FROM generate_series(1, 100000) g"))
        await conn.execute(sa.text(f"""
            INSERT INTO cases (number, token, service_type_id, agency_id, citizen_id, status,
                               channel, description, address, attributes, sla_due_at,
                               created_at, updated_at)
            SELECT '311-2026-' || lpad(g::text, 6, '0'), md5(g::text),
                   (ARRAY[{ids}])[1 + g % {n}], (ARRAY[{agencies}])[1 + g % {n}],
                   1 + ((g::bigint * 7919) % 100000)::int,
                   (ARRAY['open','acknowledged','in_progress','closed','closed','closed'])
                       [1 + (g / 7) % 6],
                   'phone',
                   (ARRAY[{words}])[1 + g % {len(WORDS)}] || ' ' ||
                   (ARRAY[{words}])[1 + (g / 3) % {len(WORDS)}] || ' near ' ||
                   (ARRAY[{words}])[1 + (g / 11) % {len(WORDS)}],
                   (g % 4000) || ' ' || (ARRAY[{streets}])[1 + (g / 13) % {len(STREETS)}],
                   '{{}}',
                   c + make_interval(hours => (ARRAY[{hours}])[1 + g % {n}]), c, c
            FROM generate_series(1, :n) g,
                 LATERAL (SELECT now() - make_interval(mins => (g * 37) % 259200) AS c) t
        """), {"n": cases})
    await engine.dispose()
    # as autovacuum leaves a table: statistics and the visibility map (index-only scans)
    raw = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await raw.execute("VACUUM ANALYZE")
    finally:
        await raw.close()


def select_types() -> Any:
    return (sa.select(ServiceType.id, ServiceType.agency_id, ServiceType.sla_hours)
            .order_by(ServiceType.id))


async def measure(url: str, runs: int) -> dict[str, Any]:
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    async with sessions() as s:
        dpw = (await s.execute(sa.select(Agency.id).where(Agency.code == "DPW"))).scalar_one()
        total = (await s.execute(sa.select(sa.func.count()).select_from(Case))).scalar_one()
        mine = (await s.execute(sa.select(sa.func.count()).select_from(Case).where(
            Case.agency_id == dpw))).scalar_one()
    dpw_only = Q.QueueFilter(agencies=("DPW",))
    first = await Q.work_queue(sessions, dpw_only)
    # a page deep in the queue: the cursor of the 10,000th open DPW case by due time (or less)
    async with sessions() as s:
        deep = (await s.execute(
            sa.select(Case.id).where(Case.agency_id == dpw, Case.status != "closed")
            .order_by(Case.sla_due_at, Case.id).offset(min(10_000, mine // 4)).limit(1))
        ).scalar_one()
    async with sessions() as s:
        views = await load_views(s, [deep])
    cursor = Q.encode_cursor(views[0])
    some = first.cases[0]
    phone = some.citizen_phone or "7870000001"
    now = SYSTEM.now()
    out: dict[str, Any] = {"cases": total, "dpw_cases": mine}
    checks: dict[str, Callable[[], Awaitable[Any]]] = {
        "queue_first_page": lambda: Q.work_queue(sessions, dpw_only),
        "queue_page_after_10000": lambda: Q.work_queue(sessions, dpw_only, after=cursor),
        "queue_all_agencies": lambda: Q.work_queue(sessions, Q.QueueFilter(agencies=None)),
        "queue_service_filter": lambda: Q.work_queue(sessions, Q.QueueFilter(
            agencies=("DPW",), service="pothole")),
        "queue_status_closed": lambda: Q.work_queue(sessions, Q.QueueFilter(
            agencies=("DPW",), status="closed")),
        "queue_address_filter": lambda: Q.work_queue(sessions, Q.QueueFilter(
            agencies=("DPW",), address="calle luna")),
        "queue_assignee_filter": lambda: Q.work_queue(sessions, Q.QueueFilter(
            agencies=("DPW",), assignee="-")),
        "search_number": lambda: Q.search(sessions, some.number.replace("-", "")),
        "search_phone": lambda: Q.search(sessions, phone),
        "search_words": lambda: Q.search(sessions, "deep pothole school"),
        "search_address": lambda: Q.search(sessions, "12 Oak Ave"),
        "search_no_match": lambda: Q.search(sessions, "zebra"),  # the worst case: a full scan
        "similar_open": lambda: Q.similar_open(sessions, "pothole", "12 Oak Ave", now),
    }
    for name, fn in checks.items():
        out[name] = await timed(fn, runs)
    await engine.dispose()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--admin", default=ADMIN)
    args = parser.parse_args()
    name = f"bench_agency_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(args.admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    url = args.admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1) \
        + f"/{name}"
    try:
        await asyncio.to_thread(db.upgrade, url)
        started = time.perf_counter()
        await fill(url, args.cases)
        filled = time.perf_counter() - started
        result = {"bench": "agency_queue", "fill_seconds": round(filled, 1),
                  **await measure(url, args.runs), "target_ms": 300}
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    text = json.dumps(result, indent=2)
    print(text)
    out = Path(__file__).parent / "results" / f"agency-{SYSTEM.now():%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    asyncio.run(main())
