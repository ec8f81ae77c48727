"""Reference data for a new install and the demo: agencies, queues, service types, users.

The queues are those of `asterisk-config/contactcenter-queues.conf` (generated from them) and of
the captures in shared/asterisk-transcripts.
Seeding is idempotent: existing rows (by their natural key) are left as they are.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .agency.models import Agency
from .clock import SYSTEM, Clock
from .ivr.menu import default_menu, validate
from .ivr.models import MenuVersion
from .queues.models import Queue, ServiceType
from .security import hash_password
from .web.models import User

# Rows of column values, as the models take them (`_ensure` passes them on as keywords).
AGENCIES: list[dict[str, Any]] = [
    {"code": "SAN", "name": "Department of Sanitation", "email": "sanitation@city.example"},
    {"code": "DPW", "name": "Department of Public Works", "email": "publicworks@city.example"},
    {"code": "311", "name": "3-1-1 Citizen Services", "email": "311@city.example"},
]

QUEUES: list[dict[str, Any]] = [
    {"name": "sanitation", "display_name": "Sanitation", "strategy": "rrmemory",
     "wrapup_seconds": 30, "ring_timeout_seconds": 15},
    {"name": "potholes", "display_name": "Streets and potholes", "strategy": "ringall",
     "wrapup_seconds": 30, "ring_timeout_seconds": 15},
    {"name": "general-311", "display_name": "General 3-1-1", "strategy": "linear",
     "wrapup_seconds": 30, "ring_timeout_seconds": 15},
]

SERVICE_TYPES: list[dict[str, Any]] = [
    {"code": "missed-pickup", "name": "Missed garbage pickup", "agency": "SAN",
     "queue": "sanitation", "sla_hours": 48, "group_name": "sanitation",
     "attributes": [{"code": "container", "datatype": "singlevaluelist", "required": False,
                     "description": "Which container was missed",
                     "values": [{"key": "trash", "name": "Trash"},
                                {"key": "recycling", "name": "Recycling"}]}]},
    {"code": "bulk-item", "name": "Bulk item collection", "agency": "SAN",
     "queue": "sanitation", "sla_hours": 120, "group_name": "sanitation", "attributes": []},
    {"code": "pothole", "name": "Pothole", "agency": "DPW", "queue": "potholes",
     "sla_hours": 72, "group_name": "streets", "attributes": []},
    {"code": "streetlight-out", "name": "Street light out", "agency": "DPW",
     "queue": "potholes", "sla_hours": 96, "group_name": "streets", "attributes": []},
    {"code": "general-inquiry", "name": "General inquiry", "agency": "311",
     "queue": "general-311", "sla_hours": 72, "group_name": "general", "attributes": []},
]

# Demo only: each user's password is its name (printed by `contactcenter demo`).
DEMO_USERS: list[dict[str, Any]] = [
    {"username": "operator", "display_name": "Ana Operator", "role": "operator",
     "interface": "PJSIP/1001", "queues": ["sanitation", "potholes", "general-311"]},
    {"username": "supervisor", "display_name": "Sam Supervisor", "role": "supervisor",
     "interface": None, "queues": []},
    {"username": "admin", "display_name": "Alex Admin", "role": "admin",
     "interface": None, "queues": []},
    # works the Department of Public Works' cases (potholes, street lights) at /agency
    {"username": "agency", "display_name": "Dana Public Works", "role": "agency",
     "interface": None, "queues": [], "agencies": ["DPW"]},
]


async def _ensure(session: AsyncSession, model: Any, key: str, values: dict[str, Any]) -> Any:
    found = (
        await session.execute(select(model).where(getattr(model, key) == values[key]))
    ).scalar_one_or_none()
    if found is None:
        found = model(**values)
        session.add(found)
        await session.flush()
    return found


async def seed_reference(
    sessions: async_sessionmaker[AsyncSession], clock: Clock = SYSTEM
) -> None:
    async with sessions() as session, session.begin():
        agencies = {a["code"]: await _ensure(session, Agency, "code", a) for a in AGENCIES}
        queues = {q["name"]: await _ensure(session, Queue, "name", q) for q in QUEUES}
        for st in SERVICE_TYPES:
            values = {k: v for k, v in st.items() if k not in ("agency", "queue")}
            values["agency_id"] = agencies[st["agency"]].id
            values["queue_id"] = queues[st["queue"]].id
            await _ensure(session, ServiceType, "code", values)
    await seed_ivr_menu(sessions, clock=clock)


async def seed_ivr_menu(
    sessions: async_sessionmaker[AsyncSession], general_queue: str = "general-311",
    clock: Clock = SYSTEM,
) -> int | None:
    """The default 3-1-1 menu as the active version 1, when no menu version exists yet.
    Returns the new version number, or None when menus were already there."""
    async with sessions() as session, session.begin():
        if (await session.execute(select(MenuVersion.id).limit(1))).first() is not None:
            return None
        queues = set((await session.execute(select(Queue.name))).scalars())
        services = set((await session.execute(select(ServiceType.code))).scalars())
        data = default_menu(general_queue)
        problems = validate(data, queues, services, ["en", "es"], general_queue=general_queue)
        if problems:  # the seed must never activate a broken menu
            raise ValueError("default IVR menu is invalid: " + "; ".join(map(str, problems)))
        session.add(MenuVersion(version=1, status="active", data=data, created_by="seed",
                                comment="default 3-1-1 menu", published_at=clock.now()))
    return 1


async def seed_demo_users(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    """Create the demo logins; returns (username, password) pairs to print."""
    async with sessions() as session, session.begin():
        for u in DEMO_USERS:
            await _ensure(session, User, "username",
                          {**u, "password_hash": hash_password(u["username"])})
    return [(u["username"], u["username"]) for u in DEMO_USERS]


# ---- demo call history -----------------------------------------------------------------------
HISTORY_SERVER = "seed"  # the `server` of history rows, so they never collide with live calls
_SEED_KEYS = {"sanitation": "1", "potholes": "2", "general-311": "3"}  # default_menu() keys


async def seed_history(sessions: async_sessionmaker[AsyncSession], days: int = 3,
                       per_day: int = 160, seed: int = 311, clock: Clock = SYSTEM,
                       default_sl: float = 15.0, timezone: str = "UTC") -> int:
    """A few days of plausible calls (and some cases) so the wallboard and the reports have
    something to show in the demo. Runs once: returns 0 when history is already there.
    `timezone`: the center's (the days of the IVR containment summary)."""
    import random
    import secrets as _secrets
    from datetime import timedelta

    from sqlalchemy import func, insert

    from .cases.models import Call, CallLeg, Case, CaseSequence, Citizen
    from .cases.store import format_number

    rng = random.Random(seed)
    async with sessions() as session, session.begin():
        if (await session.execute(select(func.count()).select_from(Call).where(
                Call.server == HISTORY_SERVER))).scalar_one():
            return 0
        stypes = {st.code: st for st in (await session.execute(select(ServiceType))).scalars()}
        by_queue: dict[str, list[ServiceType]] = {}
        for st in stypes.values():
            q = next((x["queue"] for x in SERVICE_TYPES if x["code"] == st.code), "general-311")
            by_queue.setdefault(str(q), []).append(st)
        citizens = []
        for i in range(40):
            c = Citizen(phone=f"787555{1000 + i:04d}", first_name=rng.choice(
                ["Maria", "Luz", "Pedro", "Ana", "Jose", "Carmen", "Luis", "Rosa"]),
                last_name=rng.choice(["Lopez", "Ortiz", "Diaz", "Cruz", "Rivera", "Soto"]))
            session.add(c)
            citizens.append(c)
        await session.flush()
        now = clock.now().replace(microsecond=0)
        year = now.year
        seq = await session.get(CaseSequence, year)
        if seq is None:
            seq = CaseSequence(year=year, last=0)
            session.add(seq)
        agents = [("Ana Operator", "PJSIP/1001"), ("Ben Operator", "Local/2001@agents/n"),
                  ("Carla Operator", "Local/2002@agents/n"),
                  ("Eve Operator", "Local/2003@agents/n")]
        rows: list[dict[str, Any]] = []
        outcomes = ["answered"] * 70 + ["abandoned"] * 12 + ["short_abandoned"] * 5 + [
            "ivr_self_served"] * 8 + ["ivr_hangup"] * 3 + ["timed_out"] * 2
        n = 0
        for day in range(days, 0, -1):
            base = (now - timedelta(days=day)).replace(hour=8, minute=0, second=0)
            for _ in range(per_day):
                n += 1
                start = base + timedelta(seconds=rng.uniform(0, 10 * 3600))
                queue = rng.choices(["sanitation", "potholes", "general-311"], [35, 30, 35])[0]
                outcome = rng.choice(outcomes)
                citizen = rng.choice(citizens)
                ivr = rng.uniform(8, 25)
                row: dict[str, Any] = {
                    "server": HISTORY_SERVER, "linkedid": f"{int(start.timestamp())}.{n}",
                    "caller_number": citizen.phone,
                    "caller_name": f"{citizen.first_name} {citizen.last_name}",
                    "citizen_id": citizen.id, "started_at": start, "queue": queue,
                    "service": rng.choice(by_queue.get(queue) or list(stypes.values())).code,
                    "language": rng.choice(["en", "en", "en", "es"]), "outcome": outcome,
                    "ivr_seconds": round(ivr, 1),
                    # the IVR's trace (ivr/engine.py IVRPATH): language, choice, destination
                    "ivr_path": ["lang:1", f"main:{_SEED_KEYS[queue]}", queue],
                    "partial": False, "recorded_at": start,
                }
                if outcome == "answered":
                    agent, iface = rng.choice(agents)
                    wait = rng.expovariate(1 / 25)
                    ring = rng.uniform(1, 6)
                    talk = max(20.0, rng.expovariate(1 / 180))
                    wrap = rng.uniform(5, 60)
                    row.update(agent=agent, agent_interface=iface, wait_seconds=round(wait, 1),
                               ring_seconds=round(ring, 1), talk_seconds=round(talk, 1),
                               hold_seconds=0.0, wrap_seconds=round(wrap, 1),
                               handle_seconds=round(talk + wrap, 1),
                               disposition=rng.choice(["case-opened", "info-given",
                                                       "case-updated"]))
                    end = start + timedelta(seconds=ivr + wait + talk)
                elif outcome in ("abandoned", "short_abandoned", "timed_out"):
                    wait = (rng.uniform(0.5, 4.9) if outcome == "short_abandoned" else
                            60.0 if outcome == "timed_out" else rng.uniform(6, 180))
                    row.update(wait_seconds=round(wait, 1), abandon_position=rng.randint(1, 4)
                               if outcome != "timed_out" else None)
                    end = start + timedelta(seconds=ivr + wait)
                else:
                    row.update(queue=None, ivr_path=(
                        ["lang:1", "main:-"] if outcome == "ivr_hangup"
                        else ["lang:1", "main:9", "main:case", "self_served"] if n % 2
                        else ["lang:1", "main:7", "self_served"]))
                    end = start + timedelta(seconds=ivr)
                row["ended_at"] = end
                if outcome == "answered" and row["disposition"] == "case-opened":
                    seq.last += 1
                    st = stypes[row["service"]]
                    case = Case(number=format_number(year, seq.last),
                                token=_secrets.token_hex(16), service_type_id=st.id,
                                agency_id=st.agency_id, citizen_id=citizen.id,
                                status=rng.choice(["open", "acknowledged", "in_progress",
                                                   "closed", "closed"]),
                                channel="phone", description=f"{st.name} reported by phone",
                                created_by=row["agent"], created_at=end, updated_at=end,
                                sla_due_at=end + timedelta(hours=st.sla_hours))
                    if case.status == "closed":
                        case.closed_at = end + timedelta(hours=rng.uniform(2, 40))
                        case.close_reason = "resolved"
                    session.add(case)
                    await session.flush()
                    row["case_id"] = case.id
                    row["case_number"] = case.number
                rows.append(row)
        for row in rows:  # one queue visit each (cases/models.py Call)
            row.update(first_queue=row["queue"], final_queue=row["queue"],
                       final_agent=row.get("agent"))
        keys = sorted({k for r in rows for k in r})
        ids = dict((await session.execute(
            insert(Call).returning(Call.linkedid, Call.id),
            [{k: r.get(k) for k in keys} for r in rows])).all())
        legs = [{
            "call_id": ids[r["linkedid"]], "seq": 0, "kind": "queue", "queue": r["queue"],
            "joined_at": min(r["started_at"] + timedelta(seconds=r["ivr_seconds"]),
                             r["ended_at"]),
            "left_at": r["ended_at"], "outcome": r["outcome"],
            "wait_seconds": r.get("wait_seconds"), "ring_seconds": r.get("ring_seconds"),
            "talk_seconds": r.get("talk_seconds"), "agent": r.get("agent"),
            "agent_interface": r.get("agent_interface"), "target": None,
        } for r in rows if r["queue"]]
        if legs:
            await session.execute(insert(CallLeg), legs)
    # rows written here, not by the case writer: the reports' summaries from them
    from zoneinfo import ZoneInfo

    from .supervisor import containment, daily, intervals

    await intervals.rebuild(sessions, default_sl)
    await daily.rebuild(sessions, ZoneInfo(timezone))

    await containment.rebuild(sessions, ZoneInfo(timezone))
    return len(rows)
