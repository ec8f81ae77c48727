"""Issue 20, sessions: a cookie replayed after sign-out still opened /console and its websocket
(valid up to 12 h) because the session lived in the cookie alone. Sessions are rows now: sign-out,
a password change and an admin's "end all sessions" end them in every web process at once.

Two `--role web` apps share one store and one Redis bus, as two web processes behind a load
balancer do; the replay is a raw `Cookie:` header from a client of its own."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from contactcenter.app import create_app
from contactcenter.clock import SYSTEM
from contactcenter.keys import SESSIONS
from contactcenter.web.auth import SIGNED_OUT, cookie_key
from contactcenter.web.models import User, WebSession
from tests.conftest import SECRET_KEY, app_settings, login

pytestmark = pytest.mark.store


@pytest.fixture
async def webs(aiohttp_client: Any, migrated_url: str, seeded: Any,
               redis_url: str) -> list[Any]:
    channel = f"cc:test:{uuid.uuid4().hex}"
    return [await aiohttp_client(create_app(
        app_settings(migrated_url, redis_url=redis_url, bus_channel=channel), role="web"))
        for _ in range(2)]


def cookie_of(client: Any) -> str:
    return next(c.value for c in client.session.cookie_jar if c.key == "cc_session")


@pytest.fixture
async def replay() -> AsyncIterator[aiohttp.ClientSession]:
    """A client with no cookie jar: it sends exactly the Cookie header it is given."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        yield http


async def opens_console(http: aiohttp.ClientSession, client: Any, cookie: str) -> bool:
    resp = await http.get(client.make_url("/console"), allow_redirects=False,
                          headers={"Cookie": f"cc_session={cookie}", "Accept": "text/html"})
    await resp.read()
    assert resp.status in (200, 302), resp.status
    return resp.status == 200


async def opens_socket(http: aiohttp.ClientSession, client: Any, cookie: str) -> bool:
    origin = str(client.make_url("/")).rstrip("/")
    try:
        ws = await http.ws_connect(client.make_url("/console/ws"), headers={
            "Cookie": f"cc_session={cookie}", "Origin": origin})
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 401, exc.status
        return False
    await ws.close()
    return True


async def test_a_cookie_replayed_after_sign_out_is_refused_by_both_web_processes(
    webs: list[Any], replay: aiohttp.ClientSession
) -> None:
    web1, web2 = webs
    token = await login(web1, "operator")
    cookie = cookie_of(web1)
    # one session, valid in both processes while signed in
    assert await opens_console(replay, web1, cookie) and await opens_console(replay, web2, cookie)
    origin2 = str(web2.make_url("/")).rstrip("/")
    live = await replay.ws_connect(web2.make_url("/console/ws"), headers={
        "Cookie": f"cc_session={cookie}", "Origin": origin2})

    resp = await web1.post("/logout", data={"_csrf": token}, allow_redirects=False)
    assert resp.status == 302

    # the socket open on the other process closes, and the copy of the cookie opens nothing
    msg = await live.receive(timeout=10)
    while msg.type == aiohttp.WSMsgType.TEXT:
        msg = await live.receive(timeout=10)
    assert live.close_code == SIGNED_OUT, msg
    for web in webs:
        assert not await opens_console(replay, web, cookie)
        assert not await opens_socket(replay, web, cookie)


async def test_end_all_sessions_and_a_new_password_sign_out_every_browser(
    webs: list[Any], aiohttp_client: Any, replay: aiohttp.ClientSession
) -> None:
    web1, web2 = webs
    admin_token = await login(web1, "admin")
    browsers = [await aiohttp_client(web.server) for web in webs]
    for b in browsers:
        await login(b, "operator")
    cookies = [cookie_of(b) for b in browsers]
    assert all([await opens_console(replay, web2, c) for c in cookies])
    async with web1.server.app[SESSIONS]() as db:
        uid = (await db.execute(select(User.id).where(User.username == "operator"))).scalar_one()
    page = await (await web1.get(f"/admin/users/{uid}")).text()
    assert "signed in on 2 browser(s)" in page

    resp = await web1.post(f"/admin/users/{uid}/sessions/end", data={"_csrf": admin_token},
                           allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == f"/admin/users/{uid}?ended=2"
    for c in cookies:
        assert not await opens_console(replay, web1, c)
        assert not await opens_console(replay, web2, c)

    # a new password set by the admin ends the session made before it
    browser = browsers[0]
    await login(browser, "operator")
    cookie = cookie_of(browser)
    assert await opens_console(replay, web2, cookie)
    form = {"_csrf": admin_token, "display_name": "Ana Operator", "role": "operator",
            "interface": "PJSIP/1001", "queues": "sanitation", "active": "on",
            "password": "a-new-password-1", "password2": "a-new-password-1"}
    resp = await web1.post(f"/admin/users/{uid}", data=form, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    assert not await opens_console(replay, web2, cookie)
    assert not await opens_console(replay, web1, cookie)
    assert (await web1.get("/admin", allow_redirects=False)).status == 200  # not the admin's


async def test_a_session_ends_when_its_row_expires(
    webs: list[Any], replay: aiohttp.ClientSession
) -> None:
    web1, web2 = webs
    await login(web1, "operator")
    cookie = cookie_of(web1)
    assert await opens_console(replay, web2, cookie)
    async with web1.server.app[SESSIONS]() as db, db.begin():
        await db.execute(update(WebSession).values(expires_at=SYSTEM.now() - timedelta(seconds=1)))
    assert not await opens_console(replay, web2, cookie)


async def test_a_cookie_without_a_session_row_signs_nobody_in(
    webs: list[Any], replay: aiohttp.ClientSession
) -> None:
    """A cookie made the old way (user id and version inside: whoever held the key could make
    one) is nobody's session now."""
    web1, _ = webs
    async with web1.server.app[SESSIONS]() as db:
        user = (await db.execute(select(User).where(User.username == "operator"))).scalar_one()
    ver = hashlib.sha256(f"{user.password_hash}|{user.role}".encode()).hexdigest()[:16]
    data = {"created": int(time.time()), "session": {"uid": user.id, "ver": ver, "csrf": "x"}}
    fernet = Fernet(base64.urlsafe_b64encode(cookie_key(SECRET_KEY)))
    forged = fernet.encrypt(json.dumps(data).encode()).decode()
    assert not await opens_console(replay, web1, forged)
