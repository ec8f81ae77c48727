"""The IVR menu editor over HTTP: each validation rule's message next to its node, drafts,
publish/rollback (never an invalid menu), preview, export/import, roles and CSRF."""

from __future__ import annotations

import copy
import json
import re
from html import unescape
from typing import Any

import pytest
from aiohttp import FormData
from sqlalchemy import select

from contactcenter.app import create_app
from contactcenter.audit import AuditLog
from contactcenter.ivr.menu import default_menu
from contactcenter.ivr.models import Announcement, MenuVersion
from tests.conftest import app_settings, login

pytestmark = pytest.mark.store
HTML = {"Accept": "text/html"}


@pytest.fixture
async def client(aiohttp_client: Any, migrated_url: str, seeded: Any) -> Any:
    return await aiohttp_client(create_app(app_settings(migrated_url)))


async def add_version(sessions: Any, data: dict[str, Any], status: str = "active") -> int:
    """Store a version (the seed made v1, the default menu, active); an active one replaces
    the current active version as publishing does."""
    async with sessions() as db, db.begin():
        rows = list((await db.execute(select(MenuVersion))).scalars())
        if status == "active":
            for row in rows:
                if row.status == "active":
                    row.status = "archived"
            await db.flush()
        top = max([v.version for v in rows] or [0])
        db.add(MenuVersion(version=top + 1, status=status, data=data, created_by="test"))
    return top + 1


async def version_rows(sessions: Any) -> dict[int, str]:
    async with sessions() as db:
        return {v.version: v.status for v in (await db.execute(select(MenuVersion))).scalars()}


def node_problems(page: str, node: str) -> list[str]:
    """Messages in the problem list rendered inside the outline entry of `node`."""
    match = re.search(rf'<ul class="problems" data-node="{re.escape(node)}">(.*?)</ul>', page,
                      re.S)
    return [unescape(m) for m in re.findall(r"<li>(.*?)</li>", match.group(1))] if match else []


def broken_menu() -> dict[str, Any]:
    """One mistake per rule of issue 8, each in its own node."""
    data = default_menu()
    main = data["nodes"][0]
    main["options"] += [
        {"digit": "1", "action": "queue", "queue": "potholes"},  # duplicate digit
        {"digit": "4", "action": "submenu", "node": "loop_a"},
        {"digit": "5", "action": "submenu", "node": "routes"},
        {"digit": "6", "action": "submenu", "node": "leaf"},
    ]
    data["nodes"] += [
        {"id": "loop_a", "prompt": {"en": "a", "es": "a"},
         "options": [{"digit": "1", "action": "submenu", "node": "loop_b"},
                     {"digit": "2", "action": "repeat"}]},
        {"id": "loop_b", "prompt": {"en": "b", "es": "b"},
         "options": [{"digit": "1", "action": "submenu", "node": "loop_a"}]},
        {"id": "routes", "prompt": {"en": "r"},  # no Spanish prompt
         "options": [{"digit": "1", "action": "queue", "queue": "no-such-queue"},
                     {"digit": "2", "action": "queue", "queue": "potholes",
                      "service": "no-such-service"}]},
        {"id": "leaf", "prompt": {"en": "l", "es": "l"}, "options": []},
        {"id": "orphan", "prompt": {"en": "o", "es": "o"},
         "options": [{"digit": "1", "action": "queue", "queue": "potholes"}]},
    ]
    return data


async def test_each_rule_is_listed_next_to_its_node(client: Any, seeded: Any) -> None:
    await login(client, "admin")
    number = await add_version(seeded, broken_menu(), status="draft")
    page = await (await client.get(f"/admin/ivr/versions/{number}", headers=HTML)).text()
    assert "digit 1 is used twice" in " ".join(node_problems(page, "main"))
    assert any("loop without an exit" in m for m in node_problems(page, "loop_a"))
    assert any("loop without an exit" in m for m in node_problems(page, "loop_b"))
    routes = " ".join(node_problems(page, "routes"))
    assert "no words in es" in routes
    assert "queue 'no-such-queue' does not exist" in routes
    assert "service type 'no-such-service' does not exist" in routes
    assert "has no options" in " ".join(node_problems(page, "leaf"))
    assert "not reachable" in " ".join(node_problems(page, "orphan"))
    assert "Not reachable from the start" in page
    # a clean node lists nothing
    assert node_problems(page, "main") == ["digit 1 is used twice"]


async def test_edit_fix_publish_and_the_invalid_never_goes_live(client: Any,
                                                                seeded: Any) -> None:
    token = await login(client, "admin")
    assert await version_rows(seeded) == {1: "active"}  # the seed's default menu
    resp = await client.post("/admin/ivr/drafts", data={"_csrf": token}, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/admin/ivr/versions/2"
    base = "/admin/ivr/versions/2/nodes/main/options"
    # a malformed key is refused next to its field, nothing saved
    resp = await client.post(base, data={"_csrf": token, "digit": "x", "action": "queue",
                                         "queue": "sanitation"})
    assert resp.status == 400
    assert re.search(r'id="err-digit"[^>]*>the key must be 0-9', await resp.text())
    # key 1 is taken: saved as a draft, but listed as a problem and publishing is refused
    resp = await client.post(base, data={"_csrf": token, "digit": "1", "action": "queue",
                                         "queue": "sanitation", "service": "bulk-item"},
                             allow_redirects=False)
    assert resp.status == 302
    page = await (await client.get("/admin/ivr/versions/2", headers=HTML)).text()
    assert node_problems(page, "main") == ["digit 1 is used twice"]
    resp = await client.post("/admin/ivr/versions/2/publish", data={"_csrf": token})
    assert resp.status == 400
    assert "Not published" in await resp.text()
    assert await version_rows(seeded) == {1: "active", 2: "draft"}
    # fix: the new option (the last one) gets key 4
    async with seeded() as db:
        row = (await db.execute(select(MenuVersion).where(MenuVersion.version == 2))
               ).scalar_one()
    index = len(row.data["nodes"][0]["options"]) - 1
    resp = await client.post(f"{base}/{index}", data={
        "_csrf": token, "digit": "4", "action": "queue", "queue": "sanitation",
        "service": "bulk-item"}, allow_redirects=False)
    assert resp.status == 302
    page = await (await client.get("/admin/ivr/versions/2", headers=HTML)).text()
    assert node_problems(page, "main") == [] and "Valid: this version may be published" in page
    # preview: language 1 (English), then 4
    page = await (await client.get("/admin/ivr/versions/2/preview?k=1&k=4", headers=HTML)).text()
    assert 'data-queue="sanitation"' in page and 'data-service="bulk-item"' in page
    assert "Welcome to 3-1-1 city services." in page  # the words, in English
    resp = await client.post("/admin/ivr/versions/2/publish", data={"_csrf": token},
                             allow_redirects=False)
    assert resp.status == 302
    assert await version_rows(seeded) == {1: "archived", 2: "active"}
    # published versions are read-only
    resp = await client.post(f"{base}/0/delete", data={"_csrf": token})
    assert resp.status == 409
    async with seeded() as db:
        rows = list((await db.execute(
            select(AuditLog).where(AuditLog.entity == "menu").order_by(AuditLog.id))).scalars())
    assert [(a.action, a.entity_id) for a in rows] == [
        ("create_draft", "2"), ("edit", "2"), ("edit", "2"), ("publish", "2")]
    fix = rows[2].detail["nodes"]["main"]  # what the fix changed, before and after
    assert fix["before"]["options"][-1]["digit"] == "1"
    assert fix["after"]["options"][-1]["digit"] == "4"
    assert {r.actor for r in rows} == {"admin"}


async def test_node_add_rename_move_delete(client: Any, seeded: Any) -> None:
    token = await login(client, "admin")
    number = await add_version(seeded, default_menu(), status="draft")
    base = f"/admin/ivr/versions/{number}"
    ok = {"allow_redirects": False}
    assert (await client.post(f"{base}/nodes", data={
        "_csrf": token, "id": "streets", "prompt_en": "311/en/streets",
        "prompt_es": "311/es/streets"}, **ok)).status == 302
    resp = await client.post(f"{base}/nodes", data={"_csrf": token, "id": "streets"})
    assert "already exists" in await resp.text()
    assert (await client.post(f"{base}/nodes/main/options", data={
        "_csrf": token, "digit": "5", "action": "submenu", "node": "streets"}, **ok)
    ).status == 302
    assert (await client.post(f"{base}/nodes/streets/options", data={
        "_csrf": token, "digit": "1", "action": "queue", "queue": "potholes",
        "service": "pothole"}, **ok)).status == 302
    # rename follows references; moving an option up swaps it
    assert (await client.post(f"{base}/nodes/streets", data={
        "_csrf": token, "id": "roads", "prompt_en": "311/en/roads",
        "prompt_es": "311/es/roads"}, **ok)).status == 302
    resp = await client.post(f"{base}/nodes/roads/delete", data={"_csrf": token})
    assert "still used by: main key 5" in unescape(await resp.text())
    async with seeded() as db:
        data = (await db.execute(select(MenuVersion.data).where(
            MenuVersion.version == number))).scalar_one()
    main = data["nodes"][0]
    assert main["options"][-1] == {"digit": "5", "action": "submenu", "node": "roads"}
    last = len(main["options"]) - 1
    assert (await client.post(f"{base}/nodes/main/options/{last}/move",
                              data={"_csrf": token, "direction": "up"}, **ok)).status == 302
    # move key 1 of roads under main, then roads has no options: listed next to it
    assert (await client.post(f"{base}/nodes/roads/options/0/move",
                              data={"_csrf": token, "target": "main"}, **ok)).status == 302
    page = await (await client.get(base, headers=HTML)).text()
    assert "has no options" in " ".join(node_problems(page, "roads"))
    async with seeded() as db:
        data = (await db.execute(select(MenuVersion.data).where(
            MenuVersion.version == number))).scalar_one()
    digits = [o["digit"] for o in data["nodes"][0]["options"]]
    assert digits[-3:] == ["5", "*", "1"]


async def test_preview_walks_retries_submenus_and_timeouts(client: Any, seeded: Any) -> None:
    await login(client, "admin")
    data = default_menu()
    data["nodes"][0]["options"].append({"digit": "8", "action": "submenu", "node": "more"})
    data["nodes"].append({"id": "more", "prompt": {"en": "311/en/more", "es": "311/es/more"},
                          "options": [{"digit": "1", "action": "back"},
                                      {"digit": "2", "action": "message_hangup",
                                       "prompt": {"en": "311/en/hours", "es": "311/es/hours"}}]})
    number = await add_version(seeded, data, status="draft")
    url = f"/admin/ivr/versions/{number}/preview"
    page = await (await client.get(url, headers=HTML)).text()
    # the words, not file names (the language menu: each language's part in turn)
    assert "For English, press 1. / Para español, oprima 2." in unescape(page)
    assert "at the language menu" in page
    page = await (await client.get(f"{url}?k=2&k=8&k=2", headers=HTML)).text()
    assert "311/es/more" in page and "311/es/hours" in page
    assert 'data-kind="self_served"' in page
    # three wrong keys: the menu-wide after_retries (general queue)
    page = await (await client.get(f"{url}?k=1&k=5&k=5&k=", headers=HTML)).text()
    assert "Sorry, that is not a valid option." in page and 'data-queue="general-311"' in page


async def test_rollback_is_one_click_and_audited(client: Any, seeded: Any) -> None:
    token = await login(client, "admin")
    first = default_menu()
    second = copy.deepcopy(first)
    second["nodes"][0]["options"][0]["queue"] = "potholes"
    await add_version(seeded, second, status="active")  # v1, the seeded `first`, archived
    resp = await client.post("/admin/ivr/versions/1/rollback", data={"_csrf": token},
                             allow_redirects=False)
    assert resp.status == 302
    assert await version_rows(seeded) == {1: "archived", 2: "archived", 3: "active"}
    async with seeded() as db:
        row = (await db.execute(select(MenuVersion).where(MenuVersion.version == 3))
               ).scalar_one()
        audit = (await db.execute(select(AuditLog).where(AuditLog.action == "rollback"))
                 ).scalar_one()
    assert row.data == first and row.created_by == "admin"
    assert audit.detail == {"from_version": 1, "replaced": 2} and audit.actor == "admin"
    page = await (await client.get("/admin/audit?entity=menu", headers=HTML)).text()
    assert "rollback" in page and "from_version" in page


async def test_rollback_to_a_menu_that_no_longer_validates_is_refused(client: Any,
                                                                       seeded: Any) -> None:
    token = await login(client, "admin")
    old = default_menu()
    old["nodes"][0]["options"][0]["queue"] = "closed-department"
    await add_version(seeded, old, status="archived")
    await add_version(seeded, default_menu(), status="active")
    resp = await client.post("/admin/ivr/versions/2/rollback", data={"_csrf": token})
    assert resp.status == 400
    assert "closed-department" in unescape(await resp.text())
    assert await version_rows(seeded) == {1: "archived", 2: "archived", 3: "active"}


async def test_export_import_round_trip_and_garbage(client: Any, seeded: Any) -> None:
    token = await login(client, "admin")
    data = default_menu()  # the seed's active v1
    resp = await client.get("/admin/ivr/export")
    assert resp.status == 200
    assert "ivr-menu-v1.json" in resp.headers["Content-Disposition"]
    exported = await resp.read()
    assert json.loads(exported) == data
    form = FormData()
    form.add_field("_csrf", token)
    form.add_field("file", exported, filename="menu.json", content_type="application/json")
    resp = await client.post("/admin/ivr/import", data=form, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/admin/ivr/versions/2")
    async with seeded() as db:
        row = (await db.execute(select(MenuVersion).where(MenuVersion.version == 2))
               ).scalar_one()
    assert row.status == "draft" and row.data == data
    bad_menu = copy.deepcopy(data)
    bad_menu["nodes"][0]["options"][0]["queue"] = "nowhere"
    for payload, expect in [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8"),
        (b'{"name": "x", ', "not valid JSON"),
        (b"[1, 2, 3]", "a menu is a JSON object"),
        (b'{"nodes": []}', "nodes must be a non-empty list"),
        (json.dumps(bad_menu).encode(), "queue 'nowhere' does not exist"),
        (b"", "choose a JSON file"),
    ]:
        form = FormData()
        form.add_field("_csrf", token)
        form.add_field("file", payload, filename="bad.json", content_type="application/json")
        resp = await client.post("/admin/ivr/import", data=form)
        assert resp.status == 400, payload
        assert expect in unescape(await resp.text()), payload
    assert await version_rows(seeded) == {1: "active", 2: "draft"}


async def test_announcement_form_validates_and_audits(client: Any, seeded: Any) -> None:
    token = await login(client, "admin")
    resp = await client.post("/admin/ivr/announcements/new", data={
        "_csrf": token, "name": "Storm", "prompt_en": "311/en/storm", "prompt_es": "",
        "starts_at": "2026-11-23T08:00", "ends_at": "2026-11-23T07:00", "enabled": "on"})
    page = unescape(await resp.text())
    assert resp.status == 400
    assert re.search(r'id="err-prompt_es"[^>]*>the es words are required', page)
    assert re.search(r'id="err-ends_at"[^>]*>the end must be after the start', page)
    resp = await client.post("/admin/ivr/announcements/new", data={
        "_csrf": token, "name": "Storm", "prompt_en": "311/en/storm",
        "prompt_es": "311/es/storm", "starts_at": "2026-11-23T08:00",
        "ends_at": "2026-11-24T08:00", "enabled": "on"}, allow_redirects=False)
    assert resp.status == 302
    async with seeded() as db:
        ann = (await db.execute(select(Announcement))).scalar_one()
        audit = (await db.execute(select(AuditLog).where(AuditLog.entity == "announcement"))
                 ).scalar_one()
    assert ann.prompts == {"en": "311/en/storm", "es": "311/es/storm"}
    assert ann.starts_at.hour == 8 and ann.starts_at.tzinfo is not None
    assert audit.action == "create" and audit.actor == "admin"


async def test_discarded_draft_is_kept_and_its_number_never_reused(client: Any,
                                                                   seeded: Any) -> None:
    token = await login(client, "admin")
    await client.post("/admin/ivr/drafts", data={"_csrf": token})
    resp = await client.post("/admin/ivr/versions/2/discard", data={"_csrf": token},
                             allow_redirects=False)
    assert resp.status == 302
    resp = await client.post("/admin/ivr/versions/2/publish", data={"_csrf": token})
    assert resp.status == 409  # only drafts can be published
    await client.post("/admin/ivr/drafts", data={"_csrf": token})
    assert await version_rows(seeded) == {1: "active", 2: "discarded", 3: "draft"}


@pytest.mark.parametrize("role", ["operator", "supervisor"])
async def test_editor_is_admin_only(client: Any, seeded: Any, role: str) -> None:
    number = await add_version(seeded, default_menu(), status="draft")
    token = await login(client, role)
    for path in ("/admin/ivr", f"/admin/ivr/versions/{number}",
                 f"/admin/ivr/versions/{number}/preview", "/admin/ivr/export",
                 "/admin/ivr/announcements/new"):
        resp = await client.get(path, headers=HTML)
        assert resp.status == 403, path
    resp = await client.post(f"/admin/ivr/versions/{number}/publish", data={"_csrf": token},
                             headers=HTML)
    assert resp.status == 403
    assert await version_rows(seeded) == {1: "active", number: "draft"}


async def test_editor_posts_need_csrf(client: Any, seeded: Any) -> None:
    number = await add_version(seeded, default_menu(), status="draft")
    await login(client, "admin")
    for path in (f"/admin/ivr/versions/{number}/publish", "/admin/ivr/drafts",
                 f"/admin/ivr/versions/{number}/nodes"):
        resp = await client.post(path, data={"_csrf": "forged", "id": "x"})
        assert resp.status == 403, path
    assert await version_rows(seeded) == {1: "active", number: "draft"}


async def test_a_version_that_does_not_exist_is_a_404_everywhere(client: Any) -> None:
    token = await login(client, "admin")
    base = "/admin/ivr/versions/999"
    for method, url, data in [
        ("GET", base, None),
        ("GET", base + "/preview", None),
        ("GET", base + "/prompts/greeting/en.wav", None),
        ("POST", base + "/nodes", {"_csrf": token, "kind": "menu", "id": "x"}),
    ]:
        resp = await client.request(method, url, data=data, allow_redirects=False)
        assert resp.status == 404, (method, url, resp.status)
        assert "there is no menu version 999" in await resp.text(), (method, url)
