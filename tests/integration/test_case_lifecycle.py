"""Issue 21, the store's half: every action writes its history row in its transaction and
publishes `CaseChanged` with what the citizen notifier needs (change, public, note, actor,
agency); assign, reassign with a reason, close with a resolution code, reopen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.audit import AuditLog
from contactcenter.bus import LocalBus
from contactcenter.cases.models import CaseEvent
from contactcenter.cases.store import (
    CaseStore,
    IllegalTransition,
    InvalidCaseData,
    NewCase,
)
from contactcenter.events import CaseChanged, Event
from contactcenter.seed import seed_reference
from contactcenter.web.models import User

pytestmark = pytest.mark.store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store_and_events(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[tuple[CaseStore, list[CaseChanged], Clock, LocalBus]]:
    await seed_reference(sessions)
    async with sessions() as s, s.begin():
        s.add(User(username="crew1", password_hash="x", role="agency", agencies=["DPW"]))
        s.add(User(username="sanuser", password_hash="x", role="agency", agencies=["SAN"]))
        s.add(User(username="gone", password_hash="x", role="agency", agencies=["DPW"],
                   active=False))
    bus = LocalBus()
    seen: list[CaseChanged] = []

    async def record(event: Event) -> None:
        assert isinstance(event, CaseChanged)
        seen.append(event)

    bus.subscribe(record, types=(CaseChanged,), name="test")
    clock = Clock(T0)
    yield CaseStore(sessions, bus, clock=clock), seen, clock, bus
    await bus.close()


async def _history(sessions: async_sessionmaker[AsyncSession], case_id: int) -> list[CaseEvent]:
    async with sessions() as s:
        return list((await s.execute(select(CaseEvent).where(CaseEvent.case_id == case_id)
                                     .order_by(CaseEvent.id))).scalars())


async def test_every_action_writes_history_and_publishes_the_shared_contract(
    sessions: async_sessionmaker[AsyncSession],
    store_and_events: tuple[CaseStore, list[CaseChanged], Clock, LocalBus],
) -> None:
    store, seen, clock, bus = store_and_events
    case = await store.open_case(NewCase(service_code="pothole", address="1 Main St"),
                                 actor="op")
    clock.now = T0 + timedelta(minutes=10)
    await store.acknowledge(case.number, actor="crew1")
    await store.assign(case.number, "crew1", actor="crew1")
    await store.start(case.number, actor="crew1")
    await store.add_note(case.number, "Crew on the way.", author="crew1", public=True)
    await store.add_note(case.number, "needs the big truck", author="crew1")
    await store.reassign(case.number, "SAN", actor="sup", reason="debris, not a pothole")
    clock.now = T0 + timedelta(hours=3)
    closed = await store.close(case.number, actor="sanuser", reason="Debris removed.",
                               code="resolved")
    assert (closed.status, closed.resolution_code, closed.close_reason) == (
        "closed", "resolved", "Debris removed.")
    assert closed.assignee is None  # cleared by the reassignment
    await bus.drain()
    got = [(e.change, e.status, e.public, e.note, e.actor, e.agency) for e in seen]
    assert got == [
        ("created", "open", False, "", "op", "DPW"),
        # the notifier and the status page word the acknowledgement in the citizen's language
        ("acknowledged", "acknowledged", True, "", "crew1", "DPW"),
        ("assigned", "acknowledged", False, "", "crew1", "DPW"),
        ("started", "in_progress", False, "", "crew1", "DPW"),
        ("noted", "in_progress", True, "Crew on the way.", "crew1", "DPW"),
        ("noted", "in_progress", False, "", "crew1", "DPW"),
        ("reassigned", "in_progress", False, "", "sup", "SAN"),
        ("closed", "closed", True, "Debris removed.", "sanuser", "SAN"),
    ]
    rows = await _history(sessions, case.id)
    assert [(r.change, r.from_status, r.to_status, r.actor, r.public) for r in rows] == [
        ("created", None, "open", "op", False),
        ("acknowledged", "open", "acknowledged", "crew1", True),
        ("assigned", "acknowledged", "acknowledged", "crew1", False),
        ("started", "acknowledged", "in_progress", "crew1", True),
        ("noted", "in_progress", "in_progress", "crew1", True),
        ("noted", "in_progress", "in_progress", "crew1", False),
        ("reassigned", "in_progress", "in_progress", "sup", False),
        ("closed", "in_progress", "closed", "sanuser", True),
    ]
    assert rows[2].assignee == "crew1"
    assert (rows[6].from_agency, rows[6].to_agency, rows[6].reason) == (
        "DPW", "SAN", "debris, not a pothole")
    assert (rows[7].reason, rows[7].note) == ("resolved", "Debris removed.")
    assert rows[7].at == T0 + timedelta(hours=3)
    async with sessions() as s:
        actions = list((await s.execute(select(AuditLog.action).where(
            AuditLog.entity_id == case.number).order_by(AuditLog.id))).scalars())
    assert actions == ["case.created", "case.status", "case.assigned", "case.status",
                       "case.noted", "case.noted", "case.reassigned", "case.status"]


async def test_assign_only_to_active_users_of_the_cases_agency(
    store_and_events: tuple[CaseStore, list[CaseChanged], Clock, LocalBus],
) -> None:
    store, _, _, _ = store_and_events
    case = await store.open_case(NewCase(service_code="pothole"), actor="op")
    for who in ("sanuser", "gone", "nobody", "op"):
        with pytest.raises(InvalidCaseData, match="not an active user of agency DPW"):
            await store.assign(case.number, who, actor="sup")
    assert (await store.assign(case.number, "crew1", actor="sup")).assignee == "crew1"
    with pytest.raises(InvalidCaseData, match="already assigned"):
        await store.assign(case.number, "crew1", actor="sup")
    assert (await store.assign(case.number, None, actor="sup")).assignee is None


async def test_close_needs_a_known_code_and_reopen_restarts_the_sla(
    sessions: async_sessionmaker[AsyncSession],
    store_and_events: tuple[CaseStore, list[CaseChanged], Clock, LocalBus],
) -> None:
    store, seen, clock, bus = store_and_events
    case = await store.open_case(NewCase(service_code="missed-pickup"), actor="op")
    with pytest.raises(InvalidCaseData, match="unknown resolution code"):
        await store.close(case.number, actor="sanuser", reason="done", code="bogus")
    with pytest.raises(IllegalTransition, match="only a closed case"):
        await store.reopen(case.number, actor="sanuser", reason="x")
    clock.now = T0 + timedelta(hours=1)
    await store.close(case.number, actor="sanuser", reason="Picked up.", code="resolved")
    clock.now = T0 + timedelta(days=8)
    with pytest.raises(IllegalTransition, match="more than 7 days ago"):
        await store.reopen(case.number, actor="op", reason="still there", within_days=7)
    with pytest.raises(InvalidCaseData, match="needs a reason"):
        await store.reopen(case.number, actor="sanuser", reason="")
    again = await store.reopen(case.number, actor="sanuser", reason="Still not picked up.")
    assert (again.status, again.closed_at, again.close_reason, again.resolution_code) == (
        "open", None, None, None)
    assert again.sla_due_at == clock.now + timedelta(hours=48)  # missed-pickup: 48 h
    await bus.drain()
    assert (seen[-1].change, seen[-1].public, seen[-1].note) == (
        "reopened", True, "Still not picked up.")
    rows = await _history(sessions, case.id)
    assert [r.change for r in rows] == ["created", "closed", "reopened"]
