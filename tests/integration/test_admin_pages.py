"""Admin pages for queues, service types, agencies, users: roles, CSRF, server-side validation
with messages next to the field, the last-admin rule, and the audit log."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.agency.models import Agency
from contactcenter.app import create_app
from contactcenter.audit import AuditLog
from contactcenter.queues.models import Queue, ServiceType
from contactcenter.security import verify_password
from contactcenter.web.models import User
from tests.conftest import app_settings, login

pytestmark = pytest.mark.store

HTML = {"Accept": "text/html"}
PAGES = ["/admin", "/admin/queues", "/admin/queues/new", "/admin/services",
         "/admin/services/new", "/admin/agencies", "/admin/agencies/new", "/admin/users",
         "/admin/users/new", "/admin/audit"]


@pytest.fixture
async def client(aiohttp_client: Any, migrated_url: str, seeded: Any) -> Any:
    return await aiohttp_client(create_app(app_settings(migrated_url)))


def field_error(page: str, field: str) -> str:
    """The message rendered next to `field` (its id is err-<field>)."""
    match = re.search(rf'id="err-{re.escape(field)}"[^>]*>([^<]+)<', page)
    assert match, f"no error next to {field} in page"
    return match.group(1)


def queue_form(**changes: str) -> dict[str, str]:
    data = {"name": "parks", "display_name": "Parks", "strategy": "rrmemory",
            "service_level_seconds": "20", "service_level_target": "85",
            "short_abandon_seconds": "4", "max_wait_target_seconds": "90",
            "wrapup_seconds": "25", "ring_timeout_seconds": "12", "timezone": "America/Chicago",
            "group_name": "outdoors", "open_mon": "08:00", "close_mon": "17:00",
            "holidays": "2026-12-25\n2026-07-04", "retry_seconds": "5", "joinempty": "yes",
            "leavewhenempty": "no", "announce_frequency": "60", "announce_position": "on",
            "announce_holdtime": "once", "periodic_announce": "",
            "periodic_announce_frequency": "0", "musicclass": "default", "weight": "0",
            "language_wait_seconds": "30"}
    data.update(changes)
    return data


async def audit_rows(sessions: Any, entity: str) -> list[AuditLog]:
    async with sessions() as db:
        return list((await db.execute(
            select(AuditLog).where(AuditLog.entity == entity).order_by(AuditLog.id)
        )).scalars())


@pytest.mark.parametrize("role", ["operator", "supervisor"])
async def test_non_admins_get_403_pages(client: Any, role: str) -> None:
    token = await login(client, role)
    for path in PAGES:
        resp = await client.get(path, headers=HTML)
        assert resp.status == 403, path
        assert "Not allowed" in await resp.text()
    resp = await client.post("/admin/queues/new", data={**queue_form(), "_csrf": token})
    assert resp.status == 403


async def test_admin_sees_every_page(client: Any) -> None:
    await login(client, "admin")
    for path in PAGES:
        resp = await client.get(path, headers=HTML)
        assert resp.status == 200, path
        page = await resp.text()
        assert "Administration" in page and "Audit log" in page, path
        if path.endswith("/new"):
            assert 'name="_csrf" value="' in page, path


async def test_anonymous_is_sent_to_login(client: Any) -> None:
    resp = await client.get("/admin/queues", headers=HTML, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login")


async def test_forms_need_csrf(client: Any, seeded: Any) -> None:
    await login(client, "admin")
    for data in ({}, {"_csrf": "forged"}):
        resp = await client.post("/admin/queues/new", data={**queue_form(), **data})
        assert resp.status == 403
    async with seeded() as db:
        assert (await db.execute(select(Queue).where(Queue.name == "parks"))).first() is None


async def test_queue_create_edit_and_audit(client: Any, seeded: Any) -> None:
    token = await login(client, "admin")
    resp = await client.post("/admin/queues/new", data={**queue_form(), "_csrf": token},
                             allow_redirects=False)
    assert resp.status == 302, await resp.text()
    async with seeded() as db:
        q = (await db.execute(select(Queue).where(Queue.name == "parks"))).scalar_one()
    assert q.service_level_target == pytest.approx(0.85)
    assert q.office_hours == {"mon": ["08:00", "17:00"]}
    assert q.holidays == ["2026-07-04", "2026-12-25"]
    assert q.timezone == "America/Chicago"
    resp = await client.post(f"/admin/queues/{q.id}",
                             data={**queue_form(wrapup_seconds="40"), "_csrf": token},
                             allow_redirects=False)
    assert resp.status == 302
    rows = await audit_rows(seeded, "queue")
    assert [(r.actor, r.action, r.entity_id) for r in rows] == [
        ("admin", "create", "parks"), ("admin", "update", "parks")]
    assert rows[1].detail == {"changes": {"wrapup_seconds": [25, 40]}}
    page = await (await client.get("/admin/audit", headers=HTML)).text()
    assert "wrapup_seconds" in page and "parks" in page


async def test_queue_validation_messages_next_to_fields(client: Any, seeded: Any) -> None:
    token = await login(client, "admin")
    bad = queue_form(name="bad name!", service_level_target="150", timezone="Mars/Olympus",
                     open_tue="09:00", close_tue="", open_wed="18:00", close_wed="08:00",
                     holidays="2026-13-40", wrapup_seconds="soon", display_name="")
    resp = await client.post("/admin/queues/new", data={**bad, "_csrf": token})
    assert resp.status == 400
    page = await resp.text()
    assert "letters, digits" in field_error(page, "name")
    assert "between 1 and 100" in field_error(page, "service_level_target")
    assert "not a known zone" in field_error(page, "timezone")
    assert "both the opening and the closing" in field_error(page, "hours_tue")
    assert "after the opening" in field_error(page, "hours_wed")
    assert "2026-13-40" in field_error(page, "holidays")
    assert "whole number" in field_error(page, "wrapup_seconds")
    assert "required" in field_error(page, "display_name")
    assert 'value="bad name!"' in page  # typed values are kept
    resp = await client.post("/admin/queues/new",
                             data={**queue_form(name="sanitation"), "_csrf": token})
    assert "already exists" in field_error(await resp.text(), "name")
    assert await audit_rows(seeded, "queue") == []


async def test_service_type_attributes_json_validated(client: Any, seeded: Any) -> None:
    token = await login(client, "admin")
    async with seeded() as db:
        queue_id = (await db.execute(select(Queue.id).where(Queue.name == "potholes"))
                    ).scalar_one()
    base = {"code": "graffiti", "name": "Graffiti removal", "sla_hours": "96",
            "queue_id": str(queue_id), "agency_id": "", "active": "on", "_csrf": token}
    resp = await client.post("/admin/services/new", data={**base, "attributes": "[{"})
    assert "not valid JSON" in field_error(await resp.text(), "attributes")
    resp = await client.post("/admin/services/new", data={
        **base, "attributes": '[{"code": "surface", "datatype": "colour", "description": ""}]'})
    msg = field_error(await resp.text(), "attributes")
    assert "datatype" in msg and "description" in msg
    resp = await client.post("/admin/services/new", data={
        **base, "attributes": '[{"code": "kind", "datatype": "singlevaluelist", '
        '"description": "What kind?"}]'})
    assert "a list datatype needs" in field_error(await resp.text(), "attributes")
    resp = await client.post("/admin/services/new", data={**base, "queue_id": "999"})
    assert "choose one" in field_error(await resp.text(), "queue_id")
    good = ('[{"code": "surface", "datatype": "singlevaluelist", "required": true, '
            '"description": "Where is it?", "values": [{"key": "wall", "name": "Wall"}]}]')
    resp = await client.post("/admin/services/new", data={**base, "attributes": good},
                             allow_redirects=False)
    assert resp.status == 302, await resp.text()
    async with seeded() as db:
        st = (await db.execute(select(ServiceType).where(ServiceType.code == "graffiti"))
              ).scalar_one()
    assert st.attributes[0]["values"] == [{"key": "wall", "name": "Wall"}]
    assert st.sla_hours == 96 and st.queue_id == queue_id
    assert [r.action for r in await audit_rows(seeded, "service_type")] == ["create"]


async def test_agency_create_and_validation(client: Any, seeded: Any) -> None:
    token = await login(client, "admin")
    resp = await client.post("/admin/agencies/new", data={
        "code": "PRK", "name": "", "email": "nope", "phone": "call me", "_csrf": token})
    page = await resp.text()
    assert "required" in field_error(page, "name")
    assert "e-mail" in field_error(page, "email").lower()
    assert "digits" in field_error(page, "phone")
    resp = await client.post("/admin/agencies/new", data={
        "code": "PRK", "name": "Parks", "email": "parks@city.example", "phone": "+1 555 0100",
        "_csrf": token}, allow_redirects=False)
    assert resp.status == 302
    assert [r.entity_id for r in await audit_rows(seeded, "agency")] == ["PRK"]


async def test_agency_business_hours_and_a_services_sla_clock(client: Any, seeded: Any) -> None:
    token = await login(client, "admin")
    async with seeded() as db:
        dpw = (await db.execute(select(Agency).where(Agency.code == "DPW"))).scalar_one()
        st = (await db.execute(select(ServiceType).where(ServiceType.code == "pothole"))
              ).scalar_one()
    base = {"name": dpw.name, "email": dpw.email or "", "phone": "", "_csrf": token}
    resp = await client.post(f"/admin/agencies/{dpw.id}", data={
        **base, "open_mon": "09:00", "close_mon": "", "holidays": "2026-12-25 christmas"})
    page = await resp.text()
    assert resp.status == 400 and "both the opening and the closing" in page
    assert "christmas" in field_error(page, "holidays")
    resp = await client.post(f"/admin/agencies/{dpw.id}", data={
        **base, "open_mon": "07:00", "close_mon": "15:30", "open_sat": "09:00",
        "close_sat": "12:00", "holidays": "2026-12-25\n2026-11-26"}, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    page = await (await client.get(f"/admin/agencies/{dpw.id}")).text()
    assert 'value="07:00"' in page and "2026-11-26" in page
    form = {"name": st.name, "sla_hours": "9", "queue_id": str(st.queue_id),
            "agency_id": str(st.agency_id), "attributes": "[]", "active": "on",
            "_csrf": token}
    resp = await client.post(f"/admin/services/{st.id}", data={**form, "sla_mode": "weekly"})
    assert resp.status == 400 and "SLA clock" in field_error(await resp.text(), "sla_mode")
    resp = await client.post(f"/admin/services/{st.id}", data={**form, "sla_mode": "business"},
                             allow_redirects=False)
    assert resp.status == 302
    async with seeded() as db:
        dpw = await db.get(Agency, dpw.id)
        st = await db.get(ServiceType, st.id)
    assert dpw.office_hours == {"mon": ["07:00", "15:30"], "sat": ["09:00", "12:00"]}
    assert dpw.holidays == ["2026-11-26", "2026-12-25"]
    assert (st.sla_mode, st.sla_hours) == ("business", 9)


async def test_users_create_role_disable_and_last_admin(client: Any, seeded: Any) -> None:
    token = await login(client, "admin")
    resp = await client.post("/admin/users/new", data={
        "username": "maria", "display_name": "Maria", "role": "operator", "interface": "",
        "password": "short", "password2": "short", "active": "on", "_csrf": token})
    page = await resp.text()
    assert "at least 8" in field_error(page, "password")
    assert "needs one" in field_error(page, "interface")
    resp = await client.post("/admin/users/new", data={
        "username": "maria", "display_name": "Maria", "role": "operator",
        "interface": "PJSIP/1001", "password": "longenough1", "password2": "longenough1",
        "active": "on", "_csrf": token})
    assert "belongs to another user" in field_error(await resp.text(), "interface")
    resp = await client.post("/admin/users/new", data={
        "username": "maria", "display_name": "Maria", "role": "operator",
        "interface": "PJSIP/1002", "queues": ["sanitation", "potholes"],
        "password": "longenough1", "password2": "longenough1", "active": "on",
        "_csrf": token}, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    async with seeded() as db:
        maria = (await db.execute(select(User).where(User.username == "maria"))).scalar_one()
        admin = (await db.execute(select(User).where(User.username == "admin"))).scalar_one()
    assert maria.password_hash.startswith("$argon2") and verify_password(
        maria.password_hash, "longenough1")
    assert maria.queues == ["potholes", "sanitation"]
    # the only admin cannot demote or disable themself
    keep = {"display_name": "Alex Admin", "interface": "", "_csrf": token}
    resp = await client.post(f"/admin/users/{admin.id}",
                             data={**keep, "role": "supervisor", "active": "on"})
    assert "last active administrator" in field_error(await resp.text(), "role")
    resp = await client.post(f"/admin/users/{admin.id}", data={**keep, "role": "admin"})
    assert "last active administrator" in field_error(await resp.text(), "active")
    # promote maria, then the old admin may step down
    resp = await client.post(f"/admin/users/{maria.id}", data={
        "display_name": "Maria", "role": "admin", "interface": "PJSIP/1002", "active": "on",
        "_csrf": token}, allow_redirects=False)
    assert resp.status == 302
    resp = await client.post(f"/admin/users/{maria.id}", data={
        "display_name": "Maria", "role": "admin", "interface": "PJSIP/1002",
        "password": "anotherpass", "password2": "anotherpass", "_csrf": token},
        allow_redirects=False)
    assert resp.status == 302  # disabling maria is fine: admin is still active
    async with seeded() as db:
        maria = (await db.execute(select(User).where(User.username == "maria"))).scalar_one()
    assert not maria.active and verify_password(maria.password_hash, "anotherpass")
    rows = await audit_rows(seeded, "user")
    assert [(r.action, r.entity_id) for r in rows] == [
        ("create", "maria"), ("update", "maria"), ("update", "maria")]
    assert rows[1].detail["changes"]["role"] == ["operator", "admin"]
    assert rows[2].detail["password"] == "changed"
    assert "argon2" not in str([r.detail for r in rows])


async def test_a_service_the_live_menu_uses_cannot_be_deactivated(client: Any,
                                                                  seeded: Any) -> None:
    token = await login(client, "admin")
    async with seeded() as db:
        st = (await db.execute(select(ServiceType).where(ServiceType.code == "pothole"))
              ).scalar_one()
        unused = (await db.execute(select(ServiceType).where(
            ServiceType.code == "streetlight-out"))).scalar_one()
    form = {"name": st.name, "sla_hours": "72", "queue_id": str(st.queue_id),
            "agency_id": str(st.agency_id), "attributes": "[]", "_csrf": token}
    resp = await client.post(f"/admin/services/{st.id}", data=form)  # no "active": off
    assert resp.status == 400
    assert "active phone menu routes callers to pothole" in field_error(await resp.text(),
                                                                        "active")
    resp = await client.post(f"/admin/services/{unused.id}", data={
        **form, "name": unused.name}, allow_redirects=False)
    assert resp.status == 302
    async with seeded() as db:
        assert (await db.get(ServiceType, st.id)).active
        assert not (await db.get(ServiceType, unused.id)).active


async def test_operators_languages_are_edited_checked_and_shown(client: Any, seeded: Any) -> None:
    token = await login(client, "admin")
    data = {"username": "beto", "display_name": "Beto", "role": "operator",
            "interface": "PJSIP/1003", "password": "longenough1", "password2": "longenough1",
            "active": "on", "_csrf": token}
    resp = await client.post("/admin/users/new", data={**data, "languages": "en, spanish!"})
    assert "language codes like en, es" in field_error(await resp.text(), "languages")
    resp = await client.post("/admin/users/new", data={**data, "languages": "ES, en es"},
                             allow_redirects=False)
    assert resp.status == 302, await resp.text()
    async with seeded() as db:
        beto = (await db.execute(select(User).where(User.username == "beto"))).scalar_one()
    assert beto.languages == ["en", "es"]
    page = await (await client.get(f"/admin/users/{beto.id}", headers=HTML)).text()
    assert 'name="languages" value="en, es"' in page
