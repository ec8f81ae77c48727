"""Property tests (hypothesis) for the Open311 form parser: random, truncated, oversized and
wrongly encoded forms get the spec's error array (400/403/404), never a 500, and write nothing
unless the form was in fact a valid request."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from urllib.parse import quote_from_bytes, urlencode

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from contactcenter.app import create_app
from contactcenter.cases import open311 as o3
from contactcenter.cases.models import Case
from contactcenter.cases.store import ApiKeys
from contactcenter.config import load_settings
from contactcenter.keys import SESSIONS
from contactcenter.queues.models import ServiceType
from contactcenter.seed import SERVICE_TYPES, seed_reference

FIELDS = [*o3.SINGLE_FIELDS, "attribute[container]", "attribute[x][]", "attribute[", "zzz"]
text = st.text(max_size=60) | st.sampled_from(
    ["", "0", "-91", "90", "1e999", "nan", "inf", "http://x", "javascript:x", "a@b.c", "<b>",
     "2026-01-01T00:00:00Z", "pothole", "missed-pickup", "trash", "\x00", "é", "\ud800"]
)
pairs = st.lists(st.tuples(st.sampled_from(FIELDS) | st.text(max_size=20), text), max_size=25)


def _encode(items: list[tuple[str, str]]) -> bytes:
    out = []
    for k, v in items:
        kb = k.encode("utf-8", "surrogatepass")
        vb = v.encode("utf-8", "surrogatepass")
        out.append(quote_from_bytes(kb) + "=" + quote_from_bytes(vb))
    return "&".join(out).encode()


bodies = (
    pairs.map(_encode)
    | st.binary(max_size=400)
    | pairs.map(_encode).flatmap(lambda b: st.integers(0, len(b)).map(lambda n: b[:n]))
)


def _stype() -> ServiceType:
    spec = next(s for s in SERVICE_TYPES if s["code"] == "missed-pickup")
    return ServiceType(code=spec["code"], name=spec["name"], attributes=spec["attributes"])


@settings(max_examples=400, deadline=None)
@given(body=bodies, ctype=st.sampled_from([None, "application/x-www-form-urlencoded",
                                           "application/x-www-form-urlencoded; charset=utf-8",
                                           "text/plain", "multipart/form-data; boundary=x"]))
def test_parser_and_validator_give_spec_errors_or_a_case(body: bytes, ctype: str | None) -> None:
    stype = _stype()
    try:
        form = o3.parse_form(body, ctype)
        o3.post_header(form)
        new = o3.build_new_case(form, stype, {})
    except o3.Open311Errors as exc:
        assert exc.status == 400 and exc.errors
        for e in exc.errors:
            assert e.code == 400 and isinstance(e.description, str) and e.description
        # every error renders in both formats
        ET.fromstring(o3.render("errors", o3.error_payload(exc.errors), "xml"))
        json.loads(o3.render("errors", o3.error_payload(exc.errors), "json"))
        return
    assert new.service_code == "missed-pickup"
    assert len(new.description) <= o3.MAX_DESCRIPTION
    assert (new.lat is not None and new.long is not None) or new.address or new.address_id


@settings(max_examples=300, deadline=None)
@given(raw=st.text(max_size=40))
def test_datetime_parser_accepts_or_raises_value_error(raw: str) -> None:
    try:
        parsed = o3.parse_datetime(raw)
    except ValueError:
        return
    assert parsed.tzinfo is not None


ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.mark.store
@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_http_post_never_500(
    aiohttp_client: ClientFactory, migrated_url: str, data: st.DataObject
) -> None:
    client, key = await _client(aiohttp_client, migrated_url)
    body = data.draw(bodies)
    if data.draw(st.booleans()):  # often with a valid key, so the validator is reached
        body = urlencode({"api_key": key}).encode() + b"&" + body
    fmt = data.draw(st.sampled_from(["json", "xml", "csv", ""]))
    before = await _cases(client)
    resp = await client.post(f"/open311/v2/requests{'.' + fmt if fmt else ''}", data=body,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    raw = await resp.read()
    assert resp.status in (200, 400, 403, 404), (resp.status, raw[:300])
    if resp.status == 200:
        assert await _cases(client) == before + 1
        return
    assert await _cases(client) == before
    if fmt == "json":
        payload = json.loads(raw)
        assert payload and all(set(e) == {"code", "description"} for e in payload)
        assert all(e["code"] == resp.status for e in payload)
    else:
        tree = ET.fromstring(raw)
        assert tree.tag == "errors" and len(tree) >= 1
        assert all(e.findtext("code") == str(resp.status) for e in tree)


_CLIENTS: dict[str, tuple[TestClient, str]] = {}


async def _client(aiohttp_client: ClientFactory, url: str) -> tuple[TestClient, str]:
    # one app per test run: hypothesis calls the body many times with the same fixtures
    if url not in _CLIENTS:
        settings = load_settings(env={"CC_DATABASE_URL": url, "CC_AGI_ENABLED": "false",
                                      "CC_AMI_ENABLED": "false"})
        client = await aiohttp_client(create_app(settings))
        await seed_reference(client.app[SESSIONS])
        key = (await ApiKeys(client.app[SESSIONS]).create("fuzz", actor="t"))[1]
        _CLIENTS.clear()
        _CLIENTS[url] = (client, key)
    return _CLIENTS[url]


async def _cases(client: TestClient) -> int:
    async with client.app[SESSIONS]() as s:
        return int((await s.execute(select(func.count(Case.id)))).scalar_one())


def test_strategies_reach_both_outcomes() -> None:
    # the generator is not vacuous: a valid body exists in its space and is accepted
    good = [("service_code", "missed-pickup"), ("lat", "0"), ("long", "0"),
            ("attribute[container]", "trash")]
    new = o3.build_new_case(o3.parse_form(_encode(good)), _stype(), {})
    assert new.attributes == {"container": "trash"}
    with pytest.raises(o3.Open311Errors):
        o3.build_new_case(o3.parse_form(b"lat=%ff"), _stype(), {})


query_values = st.text(max_size=30) | st.sampled_from(
    ["open", "closed", "open,closed", ",", "2026-01-01T00:00:00Z", "2026-01-01",
     "1994-11-05 08:15:30", "9999-12-31T23:59:59+14:00", "0000-01-01T00:00:00Z",
     "pothole", "311-2026-000001"])


@pytest.mark.store
@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.lists(st.tuples(st.sampled_from(
    ["service_request_id", "service_code", "start_date", "end_date", "status",
     "jurisdiction_id", "x"]), query_values), max_size=6),
    fmt=st.sampled_from(["json", "xml"]))
async def test_http_get_requests_never_500(
    aiohttp_client: ClientFactory, migrated_url: str, params: list[tuple[str, str]], fmt: str
) -> None:
    client, _key = await _client(aiohttp_client, migrated_url)
    resp = await client.get(f"/open311/v2/requests.{fmt}", params=params)
    raw = await resp.read()
    assert resp.status in (200, 400), (resp.status, raw[:300])
    if fmt == "json":
        payload = json.loads(raw)
        assert isinstance(payload, list)
        if resp.status == 400:
            assert payload and all(e["code"] == 400 for e in payload)
    else:
        tree = ET.fromstring(raw)
        assert tree.tag == ("errors" if resp.status == 400 else "service_requests")
