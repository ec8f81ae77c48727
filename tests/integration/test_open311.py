"""Open311 GeoReport v2 over HTTP: every endpoint and every error of the spec, JSON and XML."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from contactcenter import db
from contactcenter.app import create_app
from contactcenter.audit import AuditLog
from contactcenter.cases.keys import CASE_STORE
from contactcenter.cases.models import Case, CaseNote, Citizen
from contactcenter.cases.store import ApiKeys
from contactcenter.config import load_settings
from contactcenter.keys import SESSIONS
from contactcenter.seed import seed_reference

pytestmark = pytest.mark.store

ClientFactory = Callable[..., Awaitable[TestClient]]
FORM = "application/x-www-form-urlencoded"


async def make_client(aiohttp_client: ClientFactory, url: str, **env: str) -> TestClient:
    # the FastAGI server stays off: its fixed port 4573 would collide between parallel runs
    settings = load_settings(env={"CC_DATABASE_URL": url, "CC_AGI_ENABLED": "false",
                                  "CC_AMI_ENABLED": "false", **env})
    client = await aiohttp_client(create_app(settings))
    await seed_reference(client.app[SESSIONS])
    return client


@pytest.fixture
async def client(aiohttp_client: ClientFactory, migrated_url: str) -> TestClient:
    return await make_client(aiohttp_client, migrated_url)


@pytest.fixture
async def api_key(client: TestClient) -> str:
    _view, key = await ApiKeys(client.app[SESSIONS]).create("tests", actor="test")
    return key


def xml_items(body: bytes, root: str, item: str) -> list[dict[str, Any]]:
    """Parse a spec XML list (<root><item>..</item></root>) into dicts of text."""
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>'), body[:80]
    tree = ET.fromstring(body)
    assert tree.tag == root, tree.tag
    out = []
    for child in tree:
        assert child.tag == item
        out.append({c.tag: (c.text if len(c) == 0 else c) for c in child})
    return out


async def get(client: TestClient, path: str, want: int = 200, **params: str) -> Any:
    resp = await client.get(path, params=params)
    body = await resp.read()
    assert resp.status == want, (resp.status, body[:500])
    if path.endswith(".json"):
        assert resp.content_type == "application/json" and resp.charset == "utf-8"
        return json.loads(body)
    assert resp.content_type == "text/xml" and resp.charset == "utf-8"
    return body


async def post(client: TestClient, fields: dict[str, str] | list[tuple[str, str]] | bytes,
               fmt: str = "json", status: int = 200, content_type: str = FORM) -> Any:
    data = fields if isinstance(fields, bytes) else urlencode(fields).encode()
    resp = await client.post(f"/open311/v2/requests.{fmt}", data=data,
                             headers={"Content-Type": content_type})
    body = await resp.read()
    assert resp.status == status, (resp.status, body[:800])
    return json.loads(body) if fmt == "json" else body


def assert_errors_json(payload: Any, code: int, *fragments: str) -> None:
    assert isinstance(payload, list) and payload, payload
    for e in payload:
        assert set(e) == {"code", "description"} and e["code"] == code, e
    text = " | ".join(e["description"] for e in payload)
    for fragment in fragments:
        assert fragment in text, (fragment, text)


def assert_errors_xml(body: bytes, code: int, *fragments: str) -> None:
    items = xml_items(body, "errors", "error")
    assert items and all(i["code"] == str(code) for i in items), items
    text = " | ".join(i["description"] for i in items)
    for fragment in fragments:
        assert fragment in text, (fragment, text)


async def counts(client: TestClient) -> tuple[int, ...]:
    async with client.app[SESSIONS]() as s:
        return tuple([
            int((await s.execute(select(func.count()).select_from(m))).scalar_one())
            for m in (Case, Citizen, AuditLog, CaseNote)
        ])


def good(api_key: str, **extra: str) -> dict[str, str]:
    return {"api_key": api_key, "service_code": "pothole", "lat": "40.7128",
            "long": "-74.0060", "description": "A deep pothole", **extra}


# --- discovery and services ---------------------------------------------------------------------


async def test_discovery_json_and_xml(client: TestClient) -> None:
    data = await get(client, "/open311/v2/discovery.json")
    assert set(data) == {"changeset", "contact", "key_service", "endpoints"}
    (ep,) = data["endpoints"]
    assert ep["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert ep["url"].endswith("/open311/v2") and ep["type"] == "production"
    assert ep["formats"] == ["text/xml", "application/json"]
    body = await get(client, "/open311/v2/discovery.xml")
    tree = ET.fromstring(body)
    assert tree.tag == "discovery"
    assert [f.text for f in tree.findall("./endpoints/endpoint/formats/format")] == [
        "text/xml", "application/json"]
    assert tree.findtext("changeset") == data["changeset"]
    # no suffix: XML, the spec's required format
    assert (await client.get("/open311/v2/discovery")).content_type == "text/xml"


async def test_services_list_json_and_xml(client: TestClient) -> None:
    data = await get(client, "/open311/v2/services.json")
    codes = {s["service_code"]: s for s in data}
    assert {"pothole", "missed-pickup", "general-inquiry"} <= set(codes)
    s = codes["missed-pickup"]
    assert set(s) == {"service_code", "service_name", "description", "metadata", "type",
                      "keywords", "group"}
    assert s["metadata"] is True and s["type"] == "realtime" and s["group"] == "sanitation"
    assert codes["pothole"]["metadata"] is False
    items = xml_items(await get(client, "/open311/v2/services.xml"), "services", "service")
    assert {i["service_code"] for i in items} == set(codes)
    assert {i["metadata"] for i in items} == {"true", "false"}
    assert (await get(client, "/open311/v2/services.json", jurisdiction_id="any.gov")) == data


async def test_service_definition_json_xml_and_errors(client: TestClient) -> None:
    data = await get(client, "/open311/v2/services/missed-pickup.json")
    assert data["service_code"] == "missed-pickup"
    (attr,) = data["attributes"]
    assert attr == {
        "variable": True, "code": "container", "datatype": "singlevaluelist",
        "required": False, "datatype_description": None, "order": 1,
        "description": "Which container was missed",
        "values": [{"key": "trash", "name": "Trash"}, {"key": "recycling", "name": "Recycling"}],
    }
    tree = ET.fromstring(await get(client, "/open311/v2/services/missed-pickup.xml"))
    assert tree.tag == "service_definition"
    assert [v.findtext("key") for v in tree.findall("./attributes/attribute/values/value")] == [
        "trash", "recycling"]
    assert tree.findtext("./attributes/attribute/required") == "false"
    assert (await get(client, "/open311/v2/services/pothole.json"))["attributes"] == []
    assert_errors_json(await get(client, "/open311/v2/services/nope.json", 404), 404,
                       "service_code 'nope' not found")
    assert_errors_xml(await get(client, "/open311/v2/services/nope.xml", 404), 404, "nope")
    assert_errors_json(await get(client, "/open311/v2/services/.json", 400), 400,
                       "service_code was not provided")


# --- POST requests ------------------------------------------------------------------------------


async def test_post_request_json_and_xml(client: TestClient, api_key: str) -> None:
    (created,) = await post(client, good(api_key, account_id="acct-7", device_id="dev-1"))
    assert set(created) == {"service_request_id", "token", "service_notice", "account_id"}
    assert created["service_request_id"] == f"311-{datetime.now(UTC).year}-000001"
    assert created["account_id"] == "acct-7"
    body = await post(client, good(api_key), fmt="xml")
    (item,) = xml_items(body, "service_requests", "request")
    assert item["service_request_id"].endswith("-000002") and item["token"]
    case = await client.app[CASE_STORE].by_number(created["service_request_id"])
    assert case is not None and case.channel == "web" and case.lat == 40.7128
    assert case.created_by == "open311:tests"
    async with client.app[SESSIONS]() as s:
        detail = (await s.execute(select(AuditLog.detail).where(
            AuditLog.entity_id == case.number))).scalar_one()
    assert detail["device_id"] == "dev-1" and detail["account_id"] == "acct-7"


async def test_post_with_attributes(client: TestClient, api_key: str) -> None:
    fields = good(api_key, service_code="missed-pickup")
    fields["attribute[container]"] = "recycling"
    (created,) = await post(client, fields)
    case = await client.app[CASE_STORE].by_number(created["service_request_id"])
    assert case is not None and case.attributes == {"container": "recycling"}


async def test_api_key_errors_403_json_and_xml(client: TestClient, api_key: str) -> None:
    keys = ApiKeys(client.app[SESSIONS])
    view, revoked = await keys.create("old", actor="t")
    await keys.revoke(view.id, actor="t")
    before = await counts(client)
    fields = good(api_key)
    del fields["api_key"]
    assert_errors_json(await post(client, fields, status=403), 403, "api_key was not provided")
    assert_errors_xml(await post(client, fields, fmt="xml", status=403), 403, "api_key")
    bad = good("cc_not-a-key")
    assert_errors_json(await post(client, bad, status=403), 403,
                       "Invalid api_key received -- can't proceed with create_request.")
    assert_errors_xml(await post(client, bad, fmt="xml", status=403), 403, "Invalid api_key")
    assert_errors_json(await post(client, good(revoked), status=403), 403, "Invalid api_key")
    assert await counts(client) == before


async def test_service_code_errors(client: TestClient, api_key: str) -> None:
    before = await counts(client)
    assert_errors_json(await post(client, good(api_key, service_code="nope"), status=404), 404,
                       "service_code 'nope' not found")
    assert_errors_xml(await post(client, good(api_key, service_code="nope"), fmt="xml",
                                 status=404), 404, "nope")
    no_code = good(api_key)
    del no_code["service_code"]
    assert_errors_json(await post(client, no_code, status=400), 400,
                       "service_code was not provided")
    assert await counts(client) == before


# Text with angle brackets and unusable contact fields are no longer refused (issue 23):
# test_open311_defects.py covers them.
INVALID: list[tuple[str, dict[str, str] | list[tuple[str, str]], str]] = [
    ("missing location", {"lat": "", "long": ""}, "a location is required"),
    ("lat without long", {"long": ""}, "lat and long must be sent together"),
    ("lat not a number", {"lat": "north"}, "lat must be a decimal number"),
    ("long wrong type", {"long": "1e5x"}, "long must be a decimal number"),
    ("lat out of range", {"lat": "90.5"}, "lat must be between -90 and 90"),
    ("long out of range", {"long": "-180.01"}, "long must be between -180 and 180"),
    ("lat not finite", {"lat": "1e400"}, "lat must be between"),
    ("oversize description", {"description": "x" * 4001}, "description is longer than 4000"),
    ("control chars", {"description": "bad\x00byte"}, "description contains control"),
    ("media_url scheme", {"media_url": "javascript:alert(1)"}, "media_url must be an http"),
    ("media_url file", {"media_url": "file:///etc/passwd"}, "media_url must be an http"),
    ("long address", {"address_string": "a" * 401, "lat": "", "long": ""},
     "address_string is longer than 400"),
    ("unknown attribute", {"attribute[colour]": "red"}, "attribute[colour] is not an attribute"),
    ("malformed attribute", {"attribute[x": "1"}, "malformed attribute field"),
    ("repeated field", [("lat", "1"), ("lat", "2")], "lat was given 2 times"),
]


@pytest.mark.parametrize(("label", "change", "message"), INVALID, ids=[i[0] for i in INVALID])
async def test_field_validation_400_without_partial_write(
    client: TestClient, api_key: str, label: str, change: Any, message: str
) -> None:
    before = await counts(client)
    fields = good(api_key, email="new.person@example.org")
    if isinstance(change, dict):
        fields.update(change)
        form: Any = [(k, v) for k, v in fields.items()]
    else:
        keys = {k for k, _ in change}
        form = [(k, v) for k, v in fields.items() if k not in keys] + list(change)
    resp = await client.post("/open311/v2/requests.json", data=urlencode(form).encode(),
                             headers={"Content-Type": FORM})
    payload = await resp.json()
    assert resp.status == 400, payload
    assert_errors_json(payload, 400, message)
    resp = await client.post("/open311/v2/requests.xml", data=urlencode(form).encode(),
                             headers={"Content-Type": FORM})
    assert resp.status == 400
    assert_errors_xml(await resp.read(), 400, message)
    assert await counts(client) == before, label


async def test_required_and_typed_attributes(
    aiohttp_client: ClientFactory, migrated_url: str
) -> None:
    from contactcenter.queues.models import ServiceType

    client = await make_client(aiohttp_client, migrated_url)
    key = (await ApiKeys(client.app[SESSIONS]).create("t", actor="t"))[1]
    async with client.app[SESSIONS]() as s, s.begin():
        s.add(ServiceType(code="graffiti", name="Graffiti", attributes=[
            {"code": "surface", "datatype": "singlevaluelist", "required": True,
             "values": [{"key": "wall", "name": "Wall"}, {"key": "sign", "name": "Sign"}]},
            {"code": "size_m2", "datatype": "number", "required": False},
            {"code": "seen", "datatype": "datetime", "required": False},
            {"code": "colours", "datatype": "multivaluelist", "required": False,
             "values": [{"key": "red", "name": "Red"}, {"key": "blue", "name": "Blue"}]},
            {"code": "note", "datatype": "string", "required": False},
        ]))
    before = await counts(client)
    base = good(key, service_code="graffiti")
    assert_errors_json(await post(client, base, status=400), 400,
                       "attribute[surface] is required")
    bad = [*base.items(), ("attribute[surface]", "roof"), ("attribute[size_m2]", "big"),
           ("attribute[seen]", "yesterday"), ("attribute[colours][]", "green"),
           ("attribute[note]", "two\nlines")]
    payload = await post(client, bad, status=400)
    assert_errors_json(payload, 400, "'roof' is not one of", "attribute[size_m2] must be a number",
                       "attribute[seen]", "'green' is not one of", "attribute[note] must be")
    assert len(payload) == 5  # every problem reported at once
    assert await counts(client) == before
    ok = [*base.items(), ("attribute[surface]", "wall"), ("attribute[size_m2]", "2.5"),
          ("attribute[seen]", "2026-01-02T03:04:05+01:00"), ("attribute[colours][]", "red"),
          ("attribute[colours][]", "blue"), ("attribute[note]", "tag")]
    (created,) = await post(client, ok)
    case = await client.app[CASE_STORE].by_number(created["service_request_id"])
    assert case is not None and case.attributes == {
        "surface": "wall", "size_m2": 2.5, "seen": "2026-01-02T02:04:05Z",
        "colours": ["red", "blue"], "note": "tag"}


async def test_body_encoding_errors(client: TestClient, api_key: str) -> None:
    before = await counts(client)
    assert_errors_json(await post(client, b"api_key=" + api_key.encode() + b"&description=%ff%fe",
                                  status=400), 400, "not valid UTF-8")
    assert_errors_json(await post(client, b'{"api_key": 1}', status=400,
                                  content_type="application/json"), 400,
                       "must be application/x-www-form-urlencoded")
    many = "&".join(f"f{i}=1" for i in range(300)).encode()
    assert_errors_json(await post(client, many, status=400), 400, "more than 200 fields")
    assert await counts(client) == before


async def test_general_service_error_is_a_400_not_a_500(
    client: TestClient, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = client.app[CASE_STORE]

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(store, "open_case", broken)
    monkeypatch.setattr(store, "search", broken)
    assert_errors_json(await post(client, good(api_key), status=400), 400,
                       "general service error")
    assert_errors_xml(await get(client, "/open311/v2/requests.xml", 400), 400, "general service")


# --- GET requests -------------------------------------------------------------------------------


async def _seed_cases(client: TestClient, api_key: str) -> list[str]:
    numbers = []
    for code in ("pothole", "pothole", "missed-pickup"):
        (c,) = await post(client, good(api_key, service_code=code))
        numbers.append(c["service_request_id"])
    store = client.app[CASE_STORE]
    await store.close(numbers[0], actor="crew", reason="Filled the hole")
    await store.start(numbers[1], actor="crew")
    return numbers


async def test_get_requests_filters_json_and_xml(client: TestClient, api_key: str) -> None:
    n = await _seed_cases(client, api_key)
    everything = await get(client, "/open311/v2/requests.json")
    assert [r["service_request_id"] for r in everything] == [n[2], n[1], n[0]]  # newest first
    rec = {r["service_request_id"]: r for r in everything}
    assert set(rec[n[0]]) == {
        "service_request_id", "status", "status_notes", "service_name", "service_code",
        "description", "agency_responsible", "service_notice", "requested_datetime",
        "updated_datetime", "expected_datetime", "address", "address_id", "zipcode", "lat",
        "long", "media_url"}
    assert rec[n[0]]["status"] == "closed" and rec[n[0]]["status_notes"] == "Filled the hole"
    assert rec[n[1]]["status"] == "open" and rec[n[1]]["status_notes"] == "In progress"
    assert rec[n[1]]["agency_responsible"] == "Department of Public Works"
    assert rec[n[1]]["requested_datetime"].endswith("Z")
    expected = datetime.fromisoformat(rec[n[1]]["expected_datetime"].replace("Z", "+00:00"))
    requested = datetime.fromisoformat(rec[n[1]]["requested_datetime"].replace("Z", "+00:00"))
    assert expected - requested == timedelta(hours=72)

    closed = await get(client, "/open311/v2/requests.json", status="closed")
    assert [r["service_request_id"] for r in closed] == [n[0]]
    opened = await get(client, "/open311/v2/requests.json", status="open")
    assert {r["service_request_id"] for r in opened} == {n[1], n[2]}
    both = await get(client, "/open311/v2/requests.json", status="open,closed")
    assert len(both) == 3
    by_code = await get(client, "/open311/v2/requests.json", service_code="missed-pickup")
    assert [r["service_request_id"] for r in by_code] == [n[2]]
    by_ids = await get(client, "/open311/v2/requests.json",
                       service_request_id=f"{n[0]},{n[2]},311-1999-000001", status="open")
    assert {r["service_request_id"] for r in by_ids} == {n[0], n[2]}  # ids override filters

    now = datetime.now(UTC)
    window = await get(client, "/open311/v2/requests.json",
                       start_date=(now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       end_date=(now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00"))
    assert len(window) == 3
    past = await get(client, "/open311/v2/requests.json",
                     start_date="2020-01-01T00:00:00Z", end_date="2020-02-01T00:00:00-05:00")
    assert past == []
    items = xml_items(await get(client, "/open311/v2/requests.xml", status="closed"),
                      "service_requests", "request")
    assert [i["service_request_id"] for i in items] == [n[0]]
    assert items[0]["zipcode"] is None and items[0]["status"] == "closed"


@pytest.mark.parametrize(("params", "message"), [
    ({"start_date": "yesterday"}, "start_date: 'yesterday' is not a W3C date-time"),
    ({"end_date": "2026-13-01T00:00:00Z"}, "end_date"),
    ({"start_date": "2026-01-01T00:00:00"}, "start_date"),  # no time zone
    ({"start_date": "2026-03-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
     "start_date is after end_date"),
    ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
     "may not span more than 90 days"),
    ({"status": "pending"}, "status 'pending' is not open or closed"),
    ({"start_date": "9999-12-31T23:59:59Z"}, "the dates are out of range"),
    ({"service_code": "nope"}, "service_code 'nope' not found"),
])
async def test_get_requests_bad_parameters(
    client: TestClient, params: dict[str, str], message: str
) -> None:
    assert_errors_json(await get(client, "/open311/v2/requests.json", 400, **params), 400,
                       message)
    assert_errors_xml(await get(client, "/open311/v2/requests.xml", 400, **params), 400,
                      message)


async def test_get_one_request_and_token_json_xml_and_404(
    client: TestClient, api_key: str
) -> None:
    (created,) = await post(client, good(api_key))
    number, token = created["service_request_id"], created["token"]
    (one,) = await get(client, f"/open311/v2/requests/{number}.json")
    assert one["service_request_id"] == number and one["status"] == "open"
    (item,) = xml_items(await get(client, f"/open311/v2/requests/{number}.xml"),
                        "service_requests", "request")
    assert item["service_request_id"] == number and item["lat"] == "40.7128"
    assert await get(client, f"/open311/v2/tokens/{token}.json") == [
        {"service_request_id": number, "token": token}]
    (item,) = xml_items(await get(client, f"/open311/v2/tokens/{token}.xml"),
                        "service_requests", "request")
    assert item == {"service_request_id": number, "token": token}
    assert_errors_json(await get(client, "/open311/v2/requests/311-2026-999999.json", 404),
                       404, "not found")
    assert_errors_xml(await get(client, "/open311/v2/requests/garbage.xml", 404), 404,
                      "not found")
    assert_errors_json(await get(client, "/open311/v2/tokens/nope.json", 404), 404,
                       "token 'nope' not found")
    assert_errors_xml(await get(client, "/open311/v2/tokens/nope.xml", 404), 404, "token")
    assert_errors_json(await get(client, "/open311/v2/tokens/.json", 400), 400,
                       "token was not provided")
    assert_errors_json(await get(client, "/open311/v2/requests/.json", 400), 400,
                       "service_request_id was not provided")


async def test_unknown_resource_and_format(client: TestClient) -> None:
    assert_errors_xml(await get(client, "/open311/v2/nothing.xml", 404), 404, "no Open311")
    resp = await client.get("/open311/v2/services.csv")
    assert resp.status == 400 and resp.content_type == "text/xml"
    assert_errors_xml(await resp.read(), 400, "format 'csv' is not supported")


async def test_jurisdiction_id(
    aiohttp_client: ClientFactory, migrated_url: str
) -> None:
    client = await make_client(aiohttp_client, migrated_url,
                               CC_OPEN311_JURISDICTION="city.example")
    key = (await ApiKeys(client.app[SESSIONS]).create("t", actor="t"))[1]
    assert await get(client, "/open311/v2/services.json", jurisdiction_id="city.example")
    assert await get(client, "/open311/v2/services.json")  # optional for one jurisdiction
    for path in ("services.json", "services/pothole.json", "requests.json",
                 "requests/311-2026-000001.json", "tokens/abc.json"):
        assert_errors_json(await get(client, f"/open311/v2/{path}", 404,
                                     jurisdiction_id="other.example"), 404,
                           "jurisdiction_id 'other.example' not found")
    before = await counts(client)
    assert_errors_xml(await post(client, good(key, jurisdiction_id="other.example"), "xml",
                                 status=404), 404, "jurisdiction_id")
    assert await counts(client) == before
    (ok,) = await post(client, good(key, jurisdiction_id="city.example"))
    assert ok["service_request_id"]


async def test_public_output_never_shows_contact_details(
    client: TestClient, api_key: str
) -> None:
    secret = {"email": "maria.lopez@example.org", "phone": "+1 (555) 867-5309",
              "first_name": "Maria", "last_name": "Lopezovich"}
    fields = good(api_key, **secret,
                  description="Hole. Call me at 555-867-5309 or maria.lopez@example.org")
    (created,) = await post(client, fields)
    number, token = created["service_request_id"], created["token"]
    store = client.app[CASE_STORE]
    await store.add_note(number, "We called +1 555 867 5309 back", author="op", public=True)
    bodies = [
        json.dumps(created),
        await (await client.get("/open311/v2/requests.json")).text(),
        await (await client.get("/open311/v2/requests.xml")).text(),
        await (await client.get(f"/open311/v2/requests/{number}.xml")).text(),
        await (await client.get(f"/open311/v2/tokens/{token}.json")).text(),
        await (await client.get(f"/status/{number}")).text(),
    ]
    for body in bodies:
        for needle in ("maria", "Maria", "Lopezovich", "867-5309", "8675309", "867 5309",
                       "example.org"):
            assert needle not in body, (needle, body[:400])
    (rec,) = await get(client, f"/open311/v2/requests/{number}.json")
    assert rec["description"] == "Hole. Call me at [contact removed] or [contact removed]"
    assert rec["status_notes"] == "We called [contact removed] back"


# --- the whole flow a third-party client goes through -------------------------------------------


async def test_third_party_client_flow(client: TestClient, api_key: str) -> None:
    services = await get(client, "/open311/v2/services.xml")
    codes = [i["service_code"] for i in xml_items(services, "services", "service")]
    assert "streetlight-out" in codes
    definition = await get(client, "/open311/v2/services/streetlight-out.json")
    assert definition["attributes"] == []
    before = datetime.now(UTC) - timedelta(seconds=2)
    body = await post(client, good(api_key, service_code="streetlight-out",
                                   address_string="12 Elm Street", email="client@example.org"),
                      fmt="xml")
    (created,) = xml_items(body, "service_requests", "request")
    number, token = created["service_request_id"], created["token"]
    (by_id,) = xml_items(await get(client, f"/open311/v2/requests/{number}.xml"),
                         "service_requests", "request")
    assert by_id["service_code"] == "streetlight-out" and by_id["address"] == "12 Elm Street"
    (by_token,) = await get(client, f"/open311/v2/tokens/{token}.json")
    assert by_token["service_request_id"] == number
    listed = await get(client, "/open311/v2/requests.json", service_code="streetlight-out",
                       start_date=before.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       end_date=(before + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert [r["service_request_id"] for r in listed] == [number]
    # the citizen calls later: the screen pop finds the web request by e-mail or phone
    pop = await client.app[CASE_STORE].open_cases_for_contact(email="Client@Example.org")
    assert [c.number for c in pop] == [number]


# --- the public status page ---------------------------------------------------------------------


async def test_status_page_and_404(client: TestClient, api_key: str) -> None:
    (created,) = await post(client, good(api_key, email="p@example.org"))
    number = created["service_request_id"]
    store = client.app[CASE_STORE]
    await store.add_note(number, "Crew scheduled for Monday", author="op", public=True)
    await store.add_note(number, "caller sounded upset", author="op", public=False)
    resp = await client.get(f"/status/{number}")
    html = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/html"
    for text in (number, "Pothole", "Open", "Department of Public Works",
                 "Crew scheduled for Monday"):
        assert text in html, text
    assert "caller sounded upset" not in html and "p@example.org" not in html
    await store.close(number, actor="op", reason="Repaired <b>today</b>")
    html = await (await client.get(f"/status/{number}")).text()
    assert "Closed" in html and "Repaired &lt;b&gt;today&lt;/b&gt;" in html
    for missing in ("311-2026-999999", "<script>", "x" * 300):
        resp = await client.get(f"/status/{missing}")
        assert resp.status == 404 and "Case not found" in await resp.text()
    resp = await client.get("/status", params={"number": number.lower()},
                            allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == f"/status/{number}"
    assert (await client.get("/status")).status == 200


async def test_posting_many_requests_at_once_gives_unique_numbers(
    client: TestClient, api_key: str
) -> None:
    results = await asyncio.gather(*(post(client, good(api_key)) for _ in range(15)))
    numbers = [r[0]["service_request_id"] for r in results]
    assert len(set(numbers)) == 15


def test_cli_apikey_create_list_revoke(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    from contactcenter.cli import main

    db.upgrade(db_url)
    for name in list(os.environ):  # the test runner's own CCTEST_* are not settings
        if name.startswith("CC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CC_DATABASE_URL", db_url)
    assert main(["apikey", "create", "city app"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    key = out[-1]
    assert key.startswith("cc_") and len(key) > 30
    assert main(["apikey", "list"]) == 0
    listing = capsys.readouterr().out
    assert "city app" in listing and key[:10] in listing and key not in listing
    assert "active" in listing

    async def verify() -> bool:
        engine = db.make_engine(db_url)
        try:
            return await ApiKeys(db.make_sessionmaker(engine)).verify(key) is not None
        finally:
            await engine.dispose()

    assert asyncio.run(verify())
    assert main(["apikey", "revoke", "1"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert not asyncio.run(verify())
    assert main(["apikey", "revoke", "1"]) == 1
    assert main(["apikey", "revoke", "42"]) == 1
    assert "no API key 42" in capsys.readouterr().out


# --- API keys in the admin web page -------------------------------------------------------------


async def test_admin_manages_api_keys_in_the_web_page(
    aiohttp_client: ClientFactory, migrated_url: str, seeded: Any
) -> None:
    import re

    from tests.conftest import app_settings, login

    client = await aiohttp_client(create_app(app_settings(migrated_url)))
    resp = await client.get("/admin/apikeys", headers={"Accept": "text/html"},
                            allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login")
    assert (await client.post("/admin/apikeys", data={"name": "x"})).status in (401, 403)

    await login(client, "operator")
    resp = await client.get("/admin/apikeys", headers={"Accept": "text/html"})
    assert resp.status == 403
    await client.post("/logout", data={"_csrf": await _csrf(client)})

    token = await login(client, "admin")
    page = await (await client.get("/admin/apikeys")).text()
    assert "No keys yet" in page
    # without the CSRF token nothing is created
    assert (await client.post("/admin/apikeys", data={"name": "app"})).status == 403
    resp = await client.post("/admin/apikeys", data={"name": "City <app>", "_csrf": token})
    page = await resp.text()
    assert resp.status == 200, page
    key = re.search(r'<pre id="new-key">([^<]+)</pre>', page).group(1)  # type: ignore[union-attr]
    assert "City &lt;app&gt;" in page and "shown only once" in page
    (created,) = await post(client, good(key))
    assert created["service_request_id"]
    listing = await (await client.get("/admin/apikeys")).text()
    assert key not in listing and key[:10] in listing and "active" in listing
    key_id = re.search(r'action="/admin/apikeys/(\d+)/revoke"', listing).group(1)  # type: ignore[union-attr]
    resp = await client.post(f"/admin/apikeys/{key_id}/revoke", data={"_csrf": token})
    assert resp.status == 200 and "revoked" in await resp.text()
    assert_errors_json(await post(client, good(key), status=403), 403, "Invalid api_key")
    resp = await client.post(f"/admin/apikeys/{key_id}/revoke", data={"_csrf": token})
    assert resp.status == 400 and "already revoked" in await resp.text()
    resp = await client.post("/admin/apikeys/999/revoke", data={"_csrf": token})
    assert resp.status == 404
    resp = await client.post("/admin/apikeys", data={"name": " ", "_csrf": token})
    assert resp.status == 400
    async with client.app[SESSIONS]() as s:
        actions = (await s.execute(select(AuditLog.action, AuditLog.actor).where(
            AuditLog.entity == "api_key"))).all()
    assert set(actions) == {("apikey.created", "admin"), ("apikey.revoked", "admin")}


async def _csrf(client: TestClient) -> str:
    import re

    page = await (await client.get("/", headers={"Accept": "text/html"})).text()
    return re.search(r'name="_csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


async def test_large_valid_body_in_many_chunks_and_oversize_body(
    client: TestClient, api_key: str
) -> None:
    desc = "é" * 3999 + "!"  # 4000 characters, about 24 kB once form-encoded

    async def chunks() -> Any:
        data = urlencode(good(api_key, description=desc)).encode()
        for i in range(0, len(data), 1000):
            yield data[i:i + 1000]
            await asyncio.sleep(0)

    resp = await client.post("/open311/v2/requests.json", data=chunks(),
                             headers={"Content-Type": FORM})
    assert resp.status == 200, await resp.text()
    (created,) = await resp.json()
    case = await client.app[CASE_STORE].by_number(created["service_request_id"])
    assert case is not None and case.description == desc
    before = await counts(client)
    resp = await client.post("/open311/v2/requests.xml", data=b"a=" + b"x" * 3_000_000,
                             headers={"Content-Type": FORM})
    assert resp.status == 400
    assert_errors_xml(await resp.read(), 400, "larger than")
    assert await counts(client) == before
