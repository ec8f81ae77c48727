"""Reference data for a new install and the demo: agencies, queues, service types, users.

The queues match `asterisk-config/queues.conf` and the captures in shared/asterisk-transcripts.
Seeding is idempotent: existing rows (by their natural key) are left as they are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .cases.models import Agency, MenuVersion, Queue, ServiceType, User
from .ivr.menu import default_menu, validate
from .security import hash_password

AGENCIES = [
    {"code": "SAN", "name": "Department of Sanitation", "email": "sanitation@city.example"},
    {"code": "DPW", "name": "Department of Public Works", "email": "publicworks@city.example"},
    {"code": "311", "name": "3-1-1 Citizen Services", "email": "311@city.example"},
]

QUEUES = [
    {"name": "sanitation", "display_name": "Sanitation", "strategy": "rrmemory",
     "wrapup_seconds": 30, "ring_timeout_seconds": 15},
    {"name": "potholes", "display_name": "Streets and potholes", "strategy": "ringall",
     "wrapup_seconds": 30, "ring_timeout_seconds": 15},
    {"name": "general-311", "display_name": "General 3-1-1", "strategy": "linear",
     "wrapup_seconds": 30, "ring_timeout_seconds": 15},
]

SERVICE_TYPES = [
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
DEMO_USERS = [
    {"username": "operator", "display_name": "Ana Operator", "role": "operator",
     "interface": "PJSIP/1001", "queues": ["sanitation", "potholes", "general-311"]},
    {"username": "supervisor", "display_name": "Sam Supervisor", "role": "supervisor",
     "interface": None, "queues": []},
    {"username": "admin", "display_name": "Alex Admin", "role": "admin",
     "interface": None, "queues": []},
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


async def seed_reference(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        agencies = {a["code"]: await _ensure(session, Agency, "code", a) for a in AGENCIES}
        queues = {q["name"]: await _ensure(session, Queue, "name", q) for q in QUEUES}
        for st in SERVICE_TYPES:
            values = {k: v for k, v in st.items() if k not in ("agency", "queue")}
            values["agency_id"] = agencies[st["agency"]].id
            values["queue_id"] = queues[st["queue"]].id
            await _ensure(session, ServiceType, "code", values)
    await seed_ivr_menu(sessions)


async def seed_ivr_menu(
    sessions: async_sessionmaker[AsyncSession], general_queue: str = "general-311"
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
                                comment="default 3-1-1 menu", published_at=datetime.now(UTC)))
    return 1


async def seed_demo_users(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    """Create the demo logins; returns (username, password) pairs to print."""
    async with sessions() as session, session.begin():
        for u in DEMO_USERS:
            await _ensure(session, User, "username",
                          {**u, "password_hash": hash_password(u["username"])})
    return [(u["username"], u["username"]) for u in DEMO_USERS]
