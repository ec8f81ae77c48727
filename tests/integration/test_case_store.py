"""The case store's services on a migrated store (SQLite, and PostgreSQL under `make test`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter import db
from contactcenter.audit import AuditLog
from contactcenter.bus import LocalBus
from contactcenter.cases import sla
from contactcenter.cases.citizens import match_citizen
from contactcenter.cases.models import Case, CaseSequence, Citizen
from contactcenter.cases.store import (
    ApiKeys,
    CaseNotFound,
    CaseStore,
    IllegalTransition,
    InvalidCaseData,
    NewCase,
    UnknownAgency,
    UnknownServiceType,
    check_transition,
)
from contactcenter.events import CaseChanged, Event
from contactcenter.seed import seed_reference

pytestmark = pytest.mark.store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def seeded(
    sessions: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    await seed_reference(sessions)
    return sessions


@pytest.fixture
async def bus() -> AsyncIterator[tuple[LocalBus, list[Event]]]:
    bus = LocalBus()
    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    bus.subscribe(record, types=(CaseChanged,), name="test")
    yield bus, seen
    await bus.close()


async def _count(sessions: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessions() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def test_open_case_numbers_sla_agency_citizen_audit_and_event(
    seeded: async_sessionmaker[AsyncSession], bus: tuple[LocalBus, list[Event]]
) -> None:
    the_bus, seen = bus
    store = CaseStore(seeded, the_bus, clock=Clock(T0))
    first = await store.open_case(
        NewCase(service_code="pothole", channel="web", description="deep hole",
                address="5th and Main", phone="+1 555-010-1234", email="Ana@Example.org",
                first_name="Ana"),
        actor="tester",
    )
    second = await store.open_case(NewCase(service_code="missed-pickup"), actor="tester")
    assert first.number == "311-2026-000001"
    assert second.number == "311-2026-000002"
    assert first.token and first.token != second.token and len(first.token) <= 64
    assert first.status == "open" and first.channel == "web"
    # SLA from the service type's sla_hours (pothole: 72, missed-pickup: 48)
    assert first.sla_due_at == T0 + timedelta(hours=72)
    assert second.sla_due_at == T0 + timedelta(hours=48)
    # agency from the service type
    assert first.agency_code == "DPW" and second.agency_code == "SAN"
    # the citizen was matched (created) with normalized contact details
    assert first.citizen_id is not None and first.citizen_email == "ana@example.org"
    assert first.citizen_phone == "15550101234"
    assert second.citizen_id is None  # nothing to match on
    async with seeded() as s:
        audit = (await s.execute(
            select(AuditLog).where(AuditLog.entity_id == first.number)
        )).scalars().all()
    assert [a.action for a in audit] == ["case.created"]
    assert audit[0].actor == "tester" and audit[0].detail["service"] == "pothole"
    await the_bus.drain()
    assert [(e.number, e.change) for e in seen if isinstance(e, CaseChanged)] == [
        (first.number, "created"), (second.number, "created")]


async def test_lifecycle_transitions_notes_reassignment_and_illegal_moves(
    seeded: async_sessionmaker[AsyncSession], bus: tuple[LocalBus, list[Event]]
) -> None:
    the_bus, seen = bus
    clock = Clock(T0)
    store = CaseStore(seeded, the_bus, clock=clock)
    case = await store.open_case(NewCase(service_code="pothole"), actor="op")

    clock.now = T0 + timedelta(minutes=5)
    case = await store.acknowledge(case.number, actor="op")
    assert case.status == "acknowledged" and case.updated_at == clock.now
    with pytest.raises(IllegalTransition, match="already acknowledged"):
        await store.acknowledge(case.number, actor="op")
    with pytest.raises(IllegalTransition, match="unknown status"):
        await store.transition(case.number, "reopened", actor="op")

    case = await store.start(case.number, actor="crew")
    with pytest.raises(IllegalTransition, match="in_progress cannot become acknowledged"):
        await store.acknowledge(case.number, actor="op")
    with pytest.raises(IllegalTransition, match="needs a reason"):
        await store.close(case.number, actor="crew", reason="   ")

    with pytest.raises(InvalidCaseData, match="needs a reason"):
        await store.reassign(case.number, "SAN", actor="sup", reason=" ")
    case = await store.reassign(case.number, "SAN", actor="sup", reason="their truck")
    assert case.agency_code == "SAN"
    with pytest.raises(UnknownAgency):
        await store.reassign(case.number, "NOPE", actor="sup", reason="x")
    with pytest.raises(InvalidCaseData, match="already with SAN"):
        await store.reassign(case.number, "SAN", actor="sup", reason="x")

    case = await store.add_note(case.number, "crew dispatched", author="crew", public=True)
    case = await store.add_note(case.number, "internal: caller was rude", author="op")
    with pytest.raises(InvalidCaseData):
        await store.add_note(case.number, "  ", author="op")
    assert [(n.author, n.public) for n in case.notes] == [("crew", True), ("op", False)]
    assert [n.body for n in case.public_notes] == ["crew dispatched"]

    clock.now = T0 + timedelta(hours=2)
    case = await store.close(case.number, actor="crew", reason="filled")
    assert (case.status, case.close_reason, case.closed_at) == ("closed", "filled", clock.now)
    for target in ("open", "acknowledged", "in_progress", "closed"):
        with pytest.raises(IllegalTransition):
            await store.transition(case.number, target, actor="op", reason="x")
    with pytest.raises(IllegalTransition, match="closed case cannot be reassigned"):
        await store.reassign(case.number, "DPW", actor="sup", reason="x")
    with pytest.raises(CaseNotFound):
        await store.acknowledge("311-2026-999999", actor="op")
    with pytest.raises(UnknownServiceType):
        await store.open_case(NewCase(service_code="no-such-service"), actor="op")

    async with seeded() as s:
        actions = (await s.execute(
            select(AuditLog.action).where(AuditLog.entity_id == case.number)
            .order_by(AuditLog.id)
        )).scalars().all()
    assert actions == ["case.created", "case.status", "case.status", "case.reassigned",
                       "case.noted", "case.noted", "case.status"]
    await the_bus.drain()
    changes = [e.change for e in seen if isinstance(e, CaseChanged)]
    assert changes == ["created", "acknowledged", "started", "reassigned", "noted", "noted",
                       "closed"]
    assert isinstance(seen[-1], CaseChanged) and seen[-1].status == "closed"
    # what the citizen is told: acknowledged, the public note, the close with its note
    told = [(e.change, e.note) for e in seen if isinstance(e, CaseChanged) and e.public]
    assert told == [("acknowledged", ""), ("noted", "crew dispatched"), ("closed", "filled")]
    assert seen[-1].actor == "crew" and seen[-1].agency == "SAN"


def test_transition_table_and_sla_states() -> None:
    assert check_transition("open", "closed", " duplicate ") == "duplicate"
    assert check_transition("open", "in_progress", None) is None
    with pytest.raises(IllegalTransition):
        check_transition("acknowledged", "open", None)
    with pytest.raises(IllegalTransition):
        check_transition("open", "closed", "x" * 201)
    rule = sla.SlaRule(100)
    due = rule.due(T0)
    assert sla.state("open", due, T0 + timedelta(hours=79), rule) == "ok"  # 21% left
    assert sla.AT_RISK_FRACTION == 0.2
    assert sla.state("open", due, T0 + timedelta(hours=81), rule) == "at_risk"  # 19% left
    assert sla.state("in_progress", due, due, rule) == "overdue"
    assert sla.state("closed", due, due + timedelta(days=9), rule) == "closed"
    assert sla.state("open", None, T0, rule) == "none"


async def test_failed_case_writes_nothing_and_keeps_the_number(
    seeded: async_sessionmaker[AsyncSession],
) -> None:
    store = CaseStore(seeded, None, clock=Clock(T0))
    await store.open_case(NewCase(service_code="pothole"), actor="op")
    before = (await _count(seeded, Case), await _count(seeded, Citizen),
              await _count(seeded, AuditLog))
    # the citizen would be new, but the insert fails (attributes not JSON): nothing stays
    with pytest.raises(Exception):  # noqa: B017 - any driver error
        await store.open_case(
            NewCase(service_code="pothole", email="new@example.org",
                    attributes={"bad": object()}),
            actor="op",
        )
    after = (await _count(seeded, Case), await _count(seeded, Citizen),
             await _count(seeded, AuditLog))
    assert after == before
    nxt = await store.open_case(NewCase(service_code="pothole"), actor="op")
    assert nxt.number == "311-2026-000002"  # the failed attempt used no number


async def test_phone_and_web_cases_of_one_citizen_show_together(
    seeded: async_sessionmaker[AsyncSession],
) -> None:
    store = CaseStore(seeded, None, clock=Clock(T0))
    web = await store.open_case(
        NewCase(service_code="pothole", channel="web", email="ana@example.org",
                phone="555 0101 234"), actor="open311")
    # the same person calls: the call writer matches by caller number
    async with seeded() as s, s.begin():
        citizen = await match_citizen(s, phone="5550101234")
        assert citizen is not None
        phone_case_citizen = citizen.id
    phone = await store.open_case(
        NewCase(service_code="missed-pickup", channel="phone", citizen_id=phone_case_citizen),
        actor="operator")
    other = await store.open_case(
        NewCase(service_code="pothole", phone="5559999999"), actor="operator")
    assert web.citizen_id == phone.citizen_id != other.citizen_id
    pop = await store.open_cases_for_contact(phone="555-010-1234")
    assert {c.number for c in pop} == {web.number, phone.number}
    assert {c.channel for c in pop} == {"web", "phone"}
    await store.close(web.number, actor="op", reason="done")
    assert [c.number for c in await store.citizen_open_cases(phone.citizen_id or 0)] == [
        phone.number]
    assert await store.open_cases_for_contact(phone="000") == []
    assert await _count(seeded, Citizen) == 2  # a screen-pop lookup creates no citizen
    assert (await store.by_number(phone.number)) is not None
    assert (await store.by_token(web.token)).number == web.number  # type: ignore[union-attr]
    assert [c.number for c in await store.recent(2)] == [other.number, phone.number]


async def test_concurrent_case_creation_gets_unique_numbers(
    migrated_url: str,
) -> None:
    # several engines = several connections writing at once, as several web workers would
    engines = [db.make_engine(migrated_url) for _ in range(4)]
    try:
        makers = [db.make_sessionmaker(e) for e in engines]
        await seed_reference(makers[0])
        stores = [CaseStore(m, None, clock=Clock(T0)) for m in makers]
        n = 40
        views = await asyncio.wait_for(asyncio.gather(*(
            stores[i % len(stores)].open_case(NewCase(service_code="pothole"), actor=f"w{i}")
            for i in range(n)
        )), 60)
        numbers = sorted(v.number for v in views)
        assert numbers == [f"311-2026-{i:06d}" for i in range(1, n + 1)]
        async with makers[0]() as s:
            seq = (await s.execute(select(CaseSequence.last).where(CaseSequence.year == 2026))
                   ).scalar_one()
        assert seq == n
        # a new year starts at 1 again, also when its first cases race
        stores2 = [CaseStore(m, None, clock=Clock(datetime(2027, 1, 1, tzinfo=UTC)))
                   for m in makers]
        views = await asyncio.wait_for(asyncio.gather(*(
            s.open_case(NewCase(service_code="pothole"), actor="x") for s in stores2
        )), 60)
        assert sorted(v.number for v in views) == [f"311-2027-{i:06d}" for i in range(1, 5)]
    finally:
        for e in engines:
            await e.dispose()


async def test_api_keys_hashed_verified_revoked(
    seeded: async_sessionmaker[AsyncSession],
) -> None:
    keys = ApiKeys(seeded)
    view, key = await keys.create("city app", actor="admin")
    assert key.startswith("cc_") and view.prefix == key[:10]
    async with seeded() as s:
        stored = (await s.execute(select(AuditLog.action))).scalars().all()
        from contactcenter.web.models import ApiKey
        row = (await s.execute(select(ApiKey))).scalar_one()
    assert key not in (row.key_hash, row.prefix + "x") and len(row.key_hash) == 64
    assert "apikey.created" in stored
    assert (await keys.verify(key)) is not None
    assert await keys.verify(key + "x") is None
    assert await keys.verify("") is None
    await keys.revoke(view.id, actor="admin")
    assert await keys.verify(key) is None
    with pytest.raises(InvalidCaseData, match="already revoked"):
        await keys.revoke(view.id, actor="admin")
    with pytest.raises(CaseNotFound):
        await keys.revoke(999, actor="admin")
    with pytest.raises(InvalidCaseData):
        await keys.create("  ", actor="admin")


async def test_two_operators_changing_a_case_at_once_cannot_both_win(
    migrated_url: str,
) -> None:
    engines = [db.make_engine(migrated_url) for _ in range(2)]
    try:
        makers = [db.make_sessionmaker(e) for e in engines]
        await seed_reference(makers[0])
        a, b = (CaseStore(m, None, clock=Clock(T0)) for m in makers)
        for _round in range(5):
            case = await a.open_case(NewCase(service_code="pothole"), actor="op")
            results = await asyncio.wait_for(asyncio.gather(
                a.acknowledge(case.number, actor="ana"), b.acknowledge(case.number, actor="bo"),
                return_exceptions=True), 30)
            wins = [r for r in results if not isinstance(r, BaseException)]
            losses = [r for r in results if isinstance(r, BaseException)]
            assert len(wins) == 1 and len(losses) == 1, results
            assert isinstance(losses[0], IllegalTransition)
            async with makers[0]() as s:
                n = (await s.execute(select(func.count()).select_from(AuditLog).where(
                    AuditLog.entity_id == case.number, AuditLog.action == "case.status"))
                ).scalar_one()
            assert n == 1
    finally:
        for e in engines:
            await e.dispose()


async def test_sla_watch_lists_overdue_and_at_risk_cases(
    seeded: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock(T0)
    store = CaseStore(seeded, None, clock=clock)
    pickup = await store.open_case(NewCase(service_code="missed-pickup"), actor="op")  # 48 h
    pothole = await store.open_case(NewCase(service_code="pothole"), actor="op")  # 72 h
    bulk = await store.open_case(NewCase(service_code="bulk-item"), actor="op")  # 120 h
    done = await store.open_case(NewCase(service_code="missed-pickup"), actor="op")
    await store.close(done.number, actor="op", reason="done")
    clock.now = T0 + timedelta(hours=60)  # pickup overdue; pothole 12/72 h left (< 25%)
    watch = [(v.number, state) for v, state in await store.sla_watch()]
    assert watch == [(pickup.number, "overdue"), (pothole.number, "at_risk")]
    assert bulk.number not in dict(watch)
