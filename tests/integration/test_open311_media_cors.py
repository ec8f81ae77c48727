"""Issue 23: photos sent with Open311 POST (multipart `media`), CORS for configured origins, and
no session cookie on any API answer."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from PIL import Image
from sqlalchemy import func, select

from contactcenter.app import create_app
from contactcenter.cases import media as media_mod
from contactcenter.cases.keys import CASE_STORE
from contactcenter.cases.models import CaseMedia
from contactcenter.cases.store import ApiKeys
from contactcenter.config import SettingsError, load_settings
from contactcenter.keys import SESSIONS
from tests.integration.test_open311 import (
    ClientFactory,
    assert_errors_json,
    counts,
    make_client,
)

pytestmark = pytest.mark.store
ORIGIN = "https://app.city.example"


@pytest.fixture
async def client(aiohttp_client: ClientFactory, migrated_url: str) -> TestClient:
    return await make_client(aiohttp_client, migrated_url,
                             CC_OPEN311_CORS_ORIGINS=f"{ORIGIN}, http://localhost:5173")


@pytest.fixture
async def api_key(client: TestClient) -> str:
    return (await ApiKeys(client.app[SESSIONS]).create("app", actor="test"))[1]


def jpeg_with_gps(size: tuple[int, int] = (60, 30), orientation: int = 6) -> bytes:
    """A JPEG whose EXIF holds a GPS position, a camera serial and an orientation."""
    img = Image.new("RGB", size, (10, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation: rotate 90° when shown
    exif[0xA431] = "SERIAL-12345"  # BodySerialNumber
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (8.0, 59.0, 0.0), 3: "W", 4: (79.0, 31.0, 0.0)})
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    data = out.getvalue()
    assert b"SERIAL-12345" in data
    return data


def photo_form(api_key: str, data: bytes, filename: str = "IMG_0001.JPG", **extra: str
               ) -> FormData:
    form = FormData()
    for name, value in {"api_key": api_key, "service_code": "pothole",
                        "address_string": "Via España 120", "description": "Hole",
                        **extra}.items():
        form.add_field(name, value)
    form.add_field("media", data, filename=filename, content_type="image/jpeg")
    return form


async def stored_media(client: TestClient) -> int:
    async with client.app[SESSIONS]() as s:
        return int((await s.execute(select(func.count(CaseMedia.id)))).scalar_one())


async def test_photo_is_reencoded_without_metadata_and_served(
    client: TestClient, api_key: str
) -> None:
    resp = await client.post("/open311/v2/requests.json",
                             data=photo_form(api_key, jpeg_with_gps()))
    assert resp.status == 200, await resp.text()
    (created,) = await resp.json()
    (rec,) = await (await client.get(
        f"/open311/v2/requests/{created['service_request_id']}.json")).json()
    assert rec["media_url"].endswith(".jpg") and "/open311/v2/media/" in rec["media_url"]
    path = "/open311/v2/media/" + rec["media_url"].rsplit("/", 1)[1]
    resp = await client.get(path)
    data = await resp.read()
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    assert "Set-Cookie" not in resp.headers
    assert b"Exif" not in data and b"SERIAL-12345" not in data
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG" and not img.getexif()
        assert img.size == (30, 60)  # the orientation was applied before EXIF was dropped
    assert (await client.get(path.replace(".jpg", ".png"))).status == 404


@pytest.mark.parametrize(("data", "filename", "message"), [
    (b"GIF89a" + b"\x00" * 40, "x.gif", "could not be read as a picture"),
    (b"%PDF-1.7 not a photo", "photo.jpg", "must be a JPEG, PNG, WebP or GIF photo"),
    (b"", "empty.jpg", "media is an empty file"),
])
async def test_bad_photos_are_refused_and_nothing_is_written(
    client: TestClient, api_key: str, data: bytes, filename: str, message: str
) -> None:
    before = (await counts(client), await stored_media(client))
    form = photo_form(api_key, data, filename, lat="95")  # a field error too: both reported
    resp = await client.post("/open311/v2/requests.json", data=form)
    payload = await resp.json()
    assert resp.status == 400, payload
    assert_errors_json(payload, 400, message, "lat and long must be sent together")
    assert (await counts(client), await stored_media(client)) == before


async def test_oversize_photo_gets_a_spec_error(client: TestClient, api_key: str) -> None:
    big = b"\xff\xd8\xff" + os.urandom(media_mod.MAX_MEDIA_BYTES)
    before = await counts(client)
    resp = await client.post("/open311/v2/requests.xml", data=photo_form(api_key, big))
    assert resp.status == 400 and resp.content_type == "text/xml"
    assert b"media is larger than 8 MB" in await resp.read()
    assert await counts(client) == before


async def test_unclaimed_photos_are_not_served_and_expire(client: TestClient) -> None:
    store = client.app[CASE_STORE]
    photo = media_mod.process_photo(jpeg_with_gps())
    ms = media_mod.MediaStore(client.app[SESSIONS])
    now = store.clock()
    key = await ms.save(photo, now - media_mod.UNCLAIMED_FOR * 2)
    assert (await client.get(media_mod.media_path(key))).status == 404
    await ms.save(photo, now)  # the next upload clears photos left unclaimed for a day
    async with client.app[SESSIONS]() as s:
        keys = set((await s.execute(select(CaseMedia.key))).scalars())
    assert key not in keys and len(keys) == 1


# --- CORS and cookies ---------------------------------------------------------------------------


async def test_cors_preflight_and_answers_for_allowed_origins_only(
    client: TestClient, api_key: str
) -> None:
    pre = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type, x-evil"}
    resp = await client.options("/open311/v2/requests.json", headers=pre)
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert resp.headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert resp.headers["Access-Control-Allow-Headers"] == "content-type"
    assert "Access-Control-Allow-Credentials" not in resp.headers
    assert "Origin" in resp.headers.getall("Vary")

    resp = await client.options("/open311/v2/requests.json",
                                headers={**pre, "Origin": "https://evil.example"})
    assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
    assert_errors_json(await resp.json(), 403, "'https://evil.example' may not call this API")
    resp = await client.options("/open311/v2/services.json",
                                headers={**pre, "Access-Control-Request-Method": "DELETE"})
    assert resp.status == 405

    # the browser's real request, and its error answers, carry the header too
    resp = await client.post("/open311/v2/requests.json", headers={"Origin": ORIGIN},
                             data=photo_form(api_key, jpeg_with_gps()))
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    resp = await client.get("/open311/v2/requests/311-2026-999999.json",
                            headers={"Origin": "http://localhost:5173"})
    assert resp.status == 404
    assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    resp = await client.get("/open311/v2/services.json", headers={"Origin": "https://evil.x"})
    assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers


async def test_no_cookie_on_any_api_answer(client: TestClient, api_key: str) -> None:
    # a browser that already holds a session (signed-in staff) gets none set or renewed either
    page = await client.get("/login")
    assert "cc_session" in page.cookies  # the client now sends it with every request
    answers: list[Any] = [
        await client.get("/open311/v2/services.json"),
        await client.get("/open311/v2/discovery.xml"),
        await client.get("/open311/v2/requests.json"),
        await client.get("/open311/v2/requests/nope.json"),
        await client.post("/open311/v2/requests.json", data=photo_form(api_key, b"x")),
        await client.put("/open311/v2/requests.json"),
        await client.options("/open311/v2/requests.json", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "GET"}),
    ]
    for resp in answers:
        assert "Set-Cookie" not in resp.headers, (resp.url, resp.headers.get("Set-Cookie"))


def test_bad_cors_setting_stops_start_up(migrated_url: str) -> None:
    settings = load_settings(env={"CC_DATABASE_URL": migrated_url, "CC_AGI_ENABLED": "false",
                                  "CC_OPEN311_CORS_ORIGINS": "app.city.example/path"})
    with pytest.raises(SettingsError, match=r"CC_OPEN311_CORS_ORIGINS: 'app\.city\.example/path'"):
        create_app(settings)

