"""The citizen web form (/report): language, filing through the Open311 path, and the spam
protections (signed form token with minimum and maximum age, honeypot, rate limit) that refuse
without losing what the citizen typed."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from PIL import Image
from sqlalchemy import func, select

from contactcenter.cases.keys import CASE_STORE, CITIZEN_FORM
from contactcenter.cases.models import Case, CaseMedia
from contactcenter.keys import SESSIONS
from tests.integration.test_open311 import ClientFactory, make_client

pytestmark = pytest.mark.store


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def client(aiohttp_client: ClientFactory, migrated_url: str) -> TestClient:
    return await make_client(aiohttp_client, migrated_url, CC_TIMEZONE="America/Panama")


@pytest.fixture
def clock(client: TestClient) -> Clock:
    clock = Clock()
    client.app[CASE_STORE].clock = clock
    return clock


async def form_token(client: TestClient, clock: Clock, lang: str = "en") -> str:
    page = await (await client.get(f"/report?lang={lang}")).text()
    clock.now += timedelta(seconds=20)  # a person takes a while to fill it in
    match = re.search(r'name="ft" value="([^"]+)"', page)
    assert match
    return match.group(1)


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 100, 0)).save(out, "JPEG")
    return out.getvalue()


def fields(token: str, **changes: Any) -> FormData:
    values: dict[str, Any] = {
        "lang": "es", "ft": token, "service": "missed-pickup",
        "a:missed-pickup:container": "trash", "description": "No pasó el camión <hoy>",
        "address": "Calle 50 y Vía España", "lat": "", "long": "", "email": "", "phone": "",
        "website": "", **changes,
    }
    form = FormData()
    for name, value in values.items():
        if name == "media":
            form.add_field("media", value, filename="foto.jpg", content_type="image/jpeg")
        elif value is not None:
            form.add_field(name, value)
    return form


async def cases(client: TestClient) -> int:
    async with client.app[SESSIONS]() as s:
        return int((await s.execute(select(func.count(Case.id)))).scalar_one())


async def test_form_speaks_the_citizens_language(client: TestClient) -> None:
    es = await (await client.get("/report", headers={"Accept-Language": "es-PA,es;q=0.9"})
                ).text()
    assert '<html lang="es">' in es and "¿Cuál es el problema?" in es
    en = await (await client.get("/report", headers={"Accept-Language": "fr, en;q=0.5"})
                ).text()
    assert '<html lang="en">' in en and "What is the problem?" in en
    assert "Enviar reporte" in await (await client.get("/report?lang=es")).text()
    # every service and its attributes are there; no third-party script
    assert 'value="missed-pickup"' in es and 'name="a:missed-pickup:container"' in es
    assert re.findall(r'<script src="([^"]+)"', es) == ["/static/report.js"]
    resp = await client.get("/report")
    assert resp.status == 200 and "Set-Cookie" not in resp.headers  # citizens get no cookie


async def test_a_filed_report_and_its_confirmation(client: TestClient, clock: Clock) -> None:
    token = await form_token(client, clock, "es")
    resp = await client.post("/report?lang=es", data=fields(
        token, media=jpeg(), phone="6123-4567 ext 8", email="no es correo"),
        allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert "Set-Cookie" not in resp.headers
    location = resp.headers["Location"]
    assert re.fullmatch(r"/report/sent/[^?]+\?lang=es&n=email(,|%2C)extension", location)
    page = await (await client.get(location)).text()
    number = re.search(r'id="case-number">([^<]+)<', page).group(1)  # type: ignore[union-attr]
    assert f'href="/status/{number}"' in page and "Su número de caso" in page
    assert "No se pudo usar el correo" in page and "extensión" in page
    view = await client.app[CASE_STORE].by_number(number)
    assert view is not None and view.channel == "web" and view.created_by == "web form"
    assert view.attributes == {"container": "trash"} and view.address == "Calle 50 y Vía España"
    assert view.description == "No pasó el camión <hoy>" and view.media_url
    assert view.citizen_phone == "61234567" and view.citizen_email is None
    assert view.language == "es"  # the form's language: updates come in Spanish
    assert (await client.get(view.media_url)).status == 200
    # a forged or unknown confirmation link goes back to the form
    resp = await client.get("/report/sent/nope", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/report")


async def test_errors_keep_everything_typed_and_the_photo(client: TestClient,
                                                          clock: Clock) -> None:
    token = await form_token(client, clock)
    resp = await client.post("/report", data=fields(
        token, address="", lat="8,98", description="Hay <script>alert(1)</script>",
        media=jpeg(), lang="en"))
    page = await resp.text()
    assert resp.status == 400 and await cases(client) == 0
    assert "Give both latitude and longitude, or neither." in page
    assert "Hay &lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert 'value="8,98"' in page and 'value="missed-pickup" selected' in page
    key = re.search(r'name="photo_key" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert "Photo kept from your last try: foto.jpg" in page
    # the next try, without choosing the photo again, files the case with it
    resp = await client.post("/report", data=fields(
        token, lat="8,98", long="-79,52", lang="en", photo_key=key, photo_name="foto.jpg"),
        allow_redirects=False)
    assert resp.status == 303, await resp.text()
    async with client.app[SESSIONS]() as s:
        (case_id, lat, media_url) = (await s.execute(
            select(Case.id, Case.lat, Case.media_url))).one()
        claimed = (await s.execute(select(CaseMedia.case_id).where(CaseMedia.key == key))
                   ).scalar_one()
    assert claimed == case_id and lat == 8.98 and media_url.endswith(f"{key}.jpg")


async def test_spam_protections_refuse_without_losing_input(
    client: TestClient, clock: Clock
) -> None:
    token = await form_token(client, clock)
    resp = await client.post("/report", data=fields(token, website="http://spam.example"))
    page = await resp.text()
    assert resp.status == 400 and "Deje vacío el campo" in page
    assert "No pasó el camión &lt;hoy&gt;" in page and "spam.example" not in page

    fresh = await form_token(client, clock)
    clock.now -= timedelta(seconds=19)  # sent back one second after it was shown
    resp = await client.post("/report", data=fields(fresh))
    assert resp.status == 400 and "Revise su reporte y envíelo de nuevo" in await resp.text()
    clock.now += timedelta(hours=13)
    resp = await client.post("/report", data=fields(fresh))
    assert resp.status == 400 and "estuvo abierto demasiado tiempo" in await resp.text()
    resp = await client.post("/report", data=fields(fresh.split(".")[0] + ".forged"))
    assert resp.status == 400 and "estuvo abierto demasiado tiempo" in await resp.text()
    assert await cases(client) == 0

    # five reports per address per 15 minutes (the honeypot try above counts as one)
    client.app[CITIZEN_FORM].per_address.reset("127.0.0.1")
    for _ in range(5):
        token = await form_token(client, clock)
        resp = await client.post("/report", data=fields(token), allow_redirects=False)
        assert resp.status == 303, await resp.text()
    token = await form_token(client, clock)
    resp = await client.post("/report", data=fields(token))
    assert resp.status == 429 and "Espere 15 minutos" in await resp.text()
    assert await cases(client) == 5


async def test_bad_photo_and_oversize_body_get_a_clear_message(
    client: TestClient, clock: Clock
) -> None:
    token = await form_token(client, clock)
    resp = await client.post("/report", data=fields(token, media=b"%PDF-1.4 no"))
    assert resp.status == 400
    assert "La foto debe ser una imagen JPEG, PNG, WebP o GIF." in await resp.text()
    big = b"\xff\xd8\xff" + b"\0" * (8 * 2**20)
    resp = await client.post("/report", data=fields(token, media=big))
    page = await resp.text()
    assert resp.status == 400 and "La foto pesa más de 8 MB." in page
    assert "No pasó el camión &lt;hoy&gt;" in page
    assert await cases(client) == 0
