"""Issue 23: the defects independent Open311 clients found (D1-D7), each with the request the
client sent. FixMyStreet's Open311.pm posts form-encoded fields to requests.xml (api_key and
jurisdiction_id in the body) and reads XML back; the `open311` Python wrapper puts api_key in the
URL of its POST; FixMyStreet's update fetch puts it in the URL of a GET."""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from contactcenter.cases.keys import CASE_STORE
from contactcenter.cases.models import Case, CaseNote, Citizen
from contactcenter.cases.store import ApiKeys
from contactcenter.keys import SESSIONS
from contactcenter.queues.models import ServiceType
from tests.conftest import until
from tests.integration.test_open311 import (
    FORM,
    ClientFactory,
    assert_errors_json,
    assert_errors_xml,
    counts,
    get,
    make_client,
    xml_items,
)

pytestmark = pytest.mark.store


@pytest.fixture
async def client(aiohttp_client: ClientFactory, migrated_url: str) -> TestClient:
    return await make_client(aiohttp_client, migrated_url, CC_TIMEZONE="America/Panama")


@pytest.fixture
async def api_key(client: TestClient) -> str:
    return (await ApiKeys(client.app[SESSIONS]).create("fixmystreet", actor="test"))[1]


def fms_params(api_key: str, **changes: str) -> list[tuple[str, str]]:
    """The fields FixMyStreet's _populate_service_request_params sends, in a hash's order."""
    fields = {
        "jurisdiction_id": "city.example",
        "api_key": api_key,
        "description": "Broken light\n\nThe lamp is out.\n\nhttps://fixmystreet.example/report/42\n",
        "service_code": "streetlight-out",
        "first_name": "Ana",
        "last_name": "Pérez",
        "email": "ana.perez@example.org",
        "lat": "8.983333",
        "long": "-79.516667",
        **changes,
    }
    return list(fields.items())


async def fms_post(client: TestClient, params: list[tuple[str, str]], status: int = 200
                   ) -> bytes:
    # HTTP::Request::Common POST: form-encoded body, XML answer expected
    resp = await client.post("/open311/v2/requests.xml", data=urlencode(params).encode(),
                             headers={"Content-Type": FORM, "User-Agent": "libwww-perl/6.72"})
    body = await resp.read()
    assert resp.status == status, (resp.status, body[:600])
    return body


def posted_id(body: bytes) -> str:
    (item,) = xml_items(body, "service_requests", "request")
    return str(item["service_request_id"])


# --- D1: masking keeps dates, asset numbers and coordinates ------------------------------------


async def test_d1_masking_spares_dates_asset_numbers_and_coordinates(
    client: TestClient, api_key: str
) -> None:
    detail = ("Dark since 2026-11-20. Pole number 4521-8876, at 40.712776, -74.005974. "
              "Call me on 6123-4567 or write to ana.perez@example.org; my other phone is "
              "+507 223 4567.")
    number = posted_id(await fms_post(client, fms_params(
        api_key, description=detail, phone="+507 6123-4567")))
    # what georeport / FixMyStreet read back: requests/{id}.xml
    (item,) = xml_items(await get(client, f"/open311/v2/requests/{number}.xml"),
                        "service_requests", "request")
    shown = item["description"]
    for kept in ("since 2026-11-20", "Pole number 4521-8876", "at 40.712776, -74.005974"):
        assert kept in shown, (kept, shown)
    for gone in ("6123-4567", "ana.perez", "223 4567"):
        assert gone not in shown, (gone, shown)
    assert shown.count("[contact removed]") == 3


# --- D2: printed times and filters agree: paging by end_date loses nothing ---------------------


async def _bulk_cases(client: TestClient, n: int, start: datetime) -> list[str]:
    """n cases ~0.37 s apart (two or three per printed second), microseconds and all."""
    async with client.app[SESSIONS]() as s, s.begin():
        stype_id = (await s.execute(
            select(ServiceType.id).where(ServiceType.code == "pothole"))).scalar_one()
        numbers = []
        for i in range(n):
            at = start + timedelta(microseconds=370_123 * i)
            number = f"311-{at.year}-{i + 1:06d}"
            numbers.append(number)
            s.add(Case(number=number, token=secrets.token_urlsafe(24),
                       service_type_id=stype_id, status="open", channel="web",
                       description=f"case {i}", lat=8.98, long=-79.5, attributes={},
                       created_at=at, updated_at=at, sla_due_at=at + timedelta(hours=72)))
    return numbers


def _w3(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_d2_paging_back_by_end_date_sees_every_request(client: TestClient) -> None:
    # from a whole second: the first page's cut (index 1150 / 1149) then splits a second
    start = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    numbers = await _bulk_cases(client, 2150, start)

    async def page(end: datetime | None) -> list[dict[str, Any]]:
        params = {} if end is None else {"end_date": end.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return list(await get(client, "/open311/v2/requests.json", **params))

    # a client stepping end_date to one second before the oldest time it was shown
    seen: Counter[str] = Counter()
    end: datetime | None = None
    pages = 0
    while True:
        records = await page(end)
        pages += 1
        assert len(records) <= 1000 and pages < 10
        if not records:
            break
        seen.update(r["service_request_id"] for r in records)
        end = _w3(records[-1]["requested_datetime"]) - timedelta(seconds=1)
    assert set(seen) == set(numbers) and set(seen.values()) == {1}, (
        len(set(numbers) - set(seen)), max(seen.values()))

    # the usual client: end_date = the oldest time shown, duplicates dropped by id
    ids: set[str] = set()
    end = None
    for _ in range(10):
        records = await page(end)
        fresh = {r["service_request_id"] for r in records} - ids
        if not fresh:
            break
        ids |= fresh
        end = _w3(records[-1]["requested_datetime"])
    assert ids == set(numbers), f"{len(set(numbers) - ids)} of {len(numbers)} never seen"


async def test_d2_end_date_includes_its_printed_second(client: TestClient) -> None:
    (number,) = await _bulk_cases(client, 1, datetime(2026, 11, 20, 12, 0, 5, 987654, UTC))
    (rec,) = await get(client, f"/open311/v2/requests/{number}.json")
    assert rec["requested_datetime"] == "2026-11-20T12:00:05Z"
    hits = await get(client, "/open311/v2/requests.json", start_date="2026-11-20T00:00:00Z",
                     end_date=rec["requested_datetime"])
    assert [r["service_request_id"] for r in hits] == [number]
    before = await get(client, "/open311/v2/requests.json", start_date="2026-11-20T00:00:00Z",
                       end_date="2026-11-20T12:00:04Z")
    assert before == []


# --- D3: text with angle brackets is text ------------------------------------------------------


async def test_d3_angle_brackets_are_accepted_stored_and_escaped(
    client: TestClient, api_key: str
) -> None:
    text = "Lamp out at <Main St> & 3rd; reply to <john@example.org>\n<b>not bold</b>"
    number = posted_id(await fms_post(client, fms_params(api_key, description=text)))
    view = await client.app[CASE_STORE].by_number(number)
    assert view is not None and view.description == text  # stored as sent
    raw = await get(client, f"/open311/v2/requests/{number}.xml")
    assert b"&lt;Main St&gt; &amp; 3rd" in raw and b"<Main St>" not in raw
    (item,) = xml_items(raw, "service_requests", "request")
    assert item["description"] == ("Lamp out at <Main St> & 3rd; reply to <[contact removed]>"
                                   "\n<b>not bold</b>")
    (rec,) = await get(client, f"/open311/v2/requests/{number}.json")
    assert "<b>not bold</b>" in rec["description"]
    html = await (await client.get(f"/status/{number}")).text()
    assert "<Main St>" not in html and "<b>not bold" not in html


# --- D4: spec errors for everything; 1,000 ids in a GET ----------------------------------------


async def test_d4_a_thousand_ids_fit_and_more_get_spec_errors(
    client: TestClient, api_key: str
) -> None:
    mine = [posted_id(await fms_post(client, fms_params(api_key))) for _ in range(3)]
    year = mine[0].split("-")[1]
    ids = mine + [f"311-{year}-{900000 + i:06d}" for i in range(997)]
    # FixMyStreet: service_request_id joined with commas, in the query string (~16 kB)
    url = "/open311/v2/requests.xml?" + urlencode(
        {"service_request_id": ",".join(ids), "jurisdiction_id": "city.example"})
    assert len(url) > 8190
    resp = await client.get(url)
    body = await resp.read()
    assert resp.status == 200, body[:300]
    assert {i["service_request_id"] for i in xml_items(body, "service_requests", "request")} \
        == set(mine)
    resp = await client.get("/open311/v2/requests.json?service_request_id="
                            + ",".join([*ids, f"311-{year}-999999"]))
    assert resp.status == 400
    assert_errors_json(await resp.json(), 400, "at most 1000 service_request_id values")
    resp = await client.get("/open311/v2/requests.json?service_request_id=" + "9" * 40_000)
    assert resp.status == 414 and resp.content_type == "application/json"
    assert_errors_json(await resp.json(), 414, "the URL is longer than 32768 bytes")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_d4_other_methods_get_a_spec_405(client: TestClient, method: str) -> None:
    before = await counts(client)
    resp = await client.request(method, "/open311/v2/requests.xml", data=b"x=1")
    assert resp.status == 405 and resp.content_type == "text/xml"
    assert resp.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    assert_errors_xml(await resp.read(), 405, f"{method} is not allowed")
    resp = await client.request(method, "/open311/v2/services/pothole.json")
    assert resp.status == 405 and resp.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert_errors_json(await resp.json(), 405, "use GET, HEAD, OPTIONS")
    resp = await client.request(method, "/open311/v2/nothing-here.json")
    assert resp.status == 404
    assert_errors_json(await resp.json(), 404, "no Open311 resource")
    assert await counts(client) == before


async def test_d4_options_answers_with_allow(client: TestClient) -> None:
    resp = await client.options("/open311/v2/requests.json")
    assert resp.status == 204 and resp.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    resp = await client.options("/open311/v2/tokens/abc.xml")
    assert resp.status == 204 and resp.headers["Allow"] == "GET, HEAD, OPTIONS"


# --- D5: API keys in URLs never reach the access log ---------------------------------------------


async def test_d5_api_key_in_the_url_is_not_logged(
    client: TestClient, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    # the open311 wrapper: POST requests.xml?jurisdiction_id=&api_key=KEY, fields in the body
    resp = await client.post(
        "/open311/v2/requests.xml?" + urlencode({"jurisdiction_id": "", "api_key": api_key}),
        data=urlencode({"service_code": "pothole", "lat": "8.98", "long": "-79.5",
                        "description": "hole"}).encode(),
        headers={"Content-Type": FORM, "User-Agent": "Python-urllib/3.11"})
    assert resp.status == 200, await resp.text()
    # FixMyStreet's update fetch: GET servicerequestupdates.xml?api_key=KEY&...
    resp = await client.get("/open311/v2/servicerequestupdates.xml?" + urlencode({
        "api_key": api_key, "start_date": "2026-11-20T00:00:00Z",
        "end_date": "2026-11-21T00:00:00Z", "jurisdiction_id": "city.example"}))
    assert resp.status == 200  # the extension exists since issue 21

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]

    lines = await until(lambda: len(logged()) >= 2 and logged())
    assert all(api_key not in line for line in lines), lines
    assert any("/open311/v2/requests.xml?jurisdiction_id=&api_key=[redacted]" in line
               for line in lines), lines
    assert any("servicerequestupdates.xml?api_key=[redacted]&start_date=" in line
               for line in lines), lines


# --- D6: a datetime attribute without a zone is read in the center's zone ----------------------


async def test_d6_datetime_local_attribute_is_read_in_the_center_zone(
    client: TestClient, api_key: str
) -> None:
    async with client.app[SESSIONS]() as s, s.begin():
        s.add(ServiceType(code="dumping", name="Illegal dumping", attributes=[
            {"code": "seen", "datatype": "datetime", "required": True,
             "description": "When was it seen"}]))
    # what an HTML datetime-local field sends: no seconds, no zone
    number = posted_id(await fms_post(client, fms_params(
        api_key, service_code="dumping", **{"attribute[seen]": "2026-11-20T14:30"})))
    view = await client.app[CASE_STORE].by_number(number)
    assert view is not None and view.attributes == {"seen": "2026-11-20T19:30:00Z"}  # UTC-5
    body = await fms_post(client, fms_params(
        api_key, service_code="dumping", **{"attribute[seen]": "20/11/2026 2pm"}), status=400)
    assert_errors_xml(body, 400, "attribute[seen]", "is not a W3C date-time")


# --- D7 and the FixMyStreet XML POST: contact fields never sink a report ---------------------


async def test_d7_fixmystreet_xml_post_with_brackets_extension_and_eai_email(
    client: TestClient, api_key: str
) -> None:
    body = await fms_post(client, fms_params(
        api_key, description="Flooding at <Av. Balboa> since 06:00",
        phone="+1 555 867 5309 ext. 12", email="josé.núñez@correo.panamá.example"))
    (item,) = xml_items(body, "service_requests", "request")
    assert "extension" in item["service_notice"]
    view = await client.app[CASE_STORE].by_number(item["service_request_id"])
    assert view is not None and view.description == "Flooding at <Av. Balboa> since 06:00"
    assert view.citizen_phone == "15558675309"  # the number, without the extension
    assert view.citizen_email == "josé.núñez@correo.panamá.example"
    (note,) = [n for n in view.notes if not n.public]
    assert "ext. 12" in note.body
    # the screen pop finds the caller by that number
    pop = await client.app[CASE_STORE].open_cases_for_contact(phone="+15558675309")
    assert [c.number for c in pop] == [view.number]


async def test_d7_unusable_contact_fields_are_named_not_fatal(
    client: TestClient, api_key: str
) -> None:
    before = await counts(client)
    resp = await client.post("/open311/v2/requests.json", data=urlencode(fms_params(
        api_key, phone="call me maybe", email="ana at example dot org",
        first_name="Ana\nBcc: x")).encode(), headers={"Content-Type": FORM})
    assert resp.status == 200, await resp.text()
    (created,) = await resp.json()
    notice = created["service_notice"]
    for said in ("phone 'call me maybe' is not a phone number and was not kept",
                 "email 'ana at example dot org' is not an e-mail address",
                 "first_name 'Ana Bcc: x' contains line breaks"):
        assert said in notice, notice
    assert await counts(client) != before
    async with client.app[SESSIONS]() as s:
        case = (await s.execute(select(Case).where(
            Case.number == created["service_request_id"]))).scalar_one()
        assert case.citizen_id is None  # nothing usable to match a citizen on
        note = (await s.execute(select(CaseNote.body).where(
            CaseNote.case_id == case.id))).scalar_one()
        assert (await s.execute(select(Citizen))).first() is None
    assert "call me maybe" in note and "ana at example dot org" in note  # nothing lost
    public = await (await client.get(
        f"/open311/v2/requests/{created['service_request_id']}.json")).text()
    assert "call me maybe" not in public and "Contact details" not in public

