"""The HTTP requests of three Open311 wrappers from PyPI, reproduced byte for byte where it
matters (paths, query strings, body encodings), against our server; the packages themselves are
not installed.

- `three` 0.8 (requests): `{endpoint}/{resource}.json` with `params=`, and POST with
  `data=` fields plus `files={"media": open("photo.png", "rb")}`: multipart, the file part with
  no Content-Type of its own.
- `open311` 1.1 (urllib): every GET carries `?jurisdiction_id=` (empty when unset); the service
  definition is asked at `service/{code}.xml` (singular); POST puts `jurisdiction_id` and
  `api_key` in the URL and the fields form-encoded in the body.
- `georeport` 0.3 (requests + xmltodict): GETs only, `params` with only the filters given;
  JSON by default, `requests/{id}.json` read as `response.json()[0]`.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from aiohttp.test_utils import TestClient
from PIL import Image

from contactcenter.cases.keys import CASE_STORE
from contactcenter.cases.store import ApiKeys
from contactcenter.keys import SESSIONS
from tests.integration.test_open311 import ClientFactory, make_client, xml_items

pytestmark = pytest.mark.store

REQUESTS_HEADERS = {"User-Agent": "python-requests/2.32.3", "Accept": "*/*",
                    "Accept-Encoding": "gzip, deflate"}
URLLIB_HEADERS = {"User-Agent": "Python-urllib/3.11"}


@pytest.fixture
async def client(aiohttp_client: ClientFactory, migrated_url: str) -> TestClient:
    return await make_client(aiohttp_client, migrated_url)


@pytest.fixture
async def api_key(client: TestClient) -> str:
    return (await ApiKeys(client.app[SESSIONS]).create("wrappers", actor="test"))[1]


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (64, 48), (200, 30, 30, 128)).save(out, "PNG")
    return out.getvalue()


def requests_multipart(fields: dict[str, str], filename: str, data: bytes
                       ) -> tuple[bytes, str]:
    """What requests' _encode_files writes: fields first, then the file, CRLF framing, a
    32-hex boundary, and no Content-Type on a file given as a bare file object."""
    boundary = "7b1c1e0e6a4f4f3ba3c1d1a9b8e0f2aa"
    out = b""
    for name, value in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                ).encode() + value.encode("utf-8") + b"\r\n"
    out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; "
            f"filename=\"{filename}\"\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


async def test_three_wrapper(client: TestClient, api_key: str) -> None:
    base = "/open311/v2/"  # Three('host/open311/v2') makes the endpoint end with a slash

    async def three_get(*parts: str, **params: str) -> Any:
        resp = await client.get(base + "/".join(parts) + ".json", params=params,
                                headers=REQUESTS_HEADERS)
        assert resp.status == 200, await resp.text()
        return json.loads(await resp.read())

    assert (await three_get("discovery"))["endpoints"]
    assert {s["service_code"] for s in await three_get("services")} >= {"pothole"}
    assert (await three_get("services", "missed-pickup"))["attributes"]
    # t.post('pothole', address=..., name='Zach Williams', phone=..., description=...,
    #        media=open('photo.png', 'rb'))
    fields = {"address_string": "123 Any St", "first_name": "Zach", "last_name": "Williams",
              "phone": "555-5555", "description": "My issue description.",
              "service_code": "pothole", "api_key": api_key}
    body, ctype = requests_multipart(fields, "photo.png", png_bytes())
    resp = await client.post(base + "requests.json", data=body,
                             headers={**REQUESTS_HEADERS, "Content-Type": ctype})
    assert resp.status == 200, await resp.text()
    (created,) = await resp.json()
    number = created["service_request_id"]
    (rec,) = await three_get("requests", number)
    media = urlsplit(rec["media_url"])
    assert rec["address"] == "123 Any St" and media.scheme == "http"
    assert media.netloc == f"{client.host}:{client.port}"
    photo = await client.get(media.path)
    assert photo.status == 200 and photo.content_type == "image/jpeg"
    # t.requests('pothole', start='03-10-2026', end=...) -> %Y-%m-%dT%H:%M:%SZ dates
    today = datetime.now(UTC)
    listed = await three_get(
        "requests", service_code="pothole",
        start_date=(today - timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z"),
        end_date=(today + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z"), page_size="50")
    assert [r["service_request_id"] for r in listed] == [number]
    assert (await three_get("tokens", created["token"]))[0]["service_request_id"] == number


async def test_open311_wrapper(client: TestClient, api_key: str) -> None:
    base = "/open311/v2"

    async def call_api(path: str, **params: str) -> bytes:
        params = {"jurisdiction_id": "", **params}  # defaultdict(str): empty, never absent
        resp = await client.get(f"{base}/{path}?{urlencode(params)}", headers=URLLIB_HEADERS)
        body = await resp.read()
        assert resp.status == 200, body[:300]
        return body

    services = xml_items(await call_api("services.xml"), "services", "service")
    assert "missed-pickup" in {s["service_code"] for s in services}
    definition = await call_api("service/missed-pickup.xml")  # sic: singular
    assert b"<service_code>missed-pickup</service_code>" in definition
    # post_service_request(**kwargs): key and jurisdiction in the URL, fields in the body
    query = urlencode({"jurisdiction_id": "", "api_key": api_key})
    resp = await client.post(
        f"{base}/requests.xml?{query}",
        data=urlencode({"service_code": "missed-pickup", "attribute[container]": "trash",
                        "address_string": "Calle 50", "email": "vecino@example.org",
                        "description": "No pasaron"}).encode(),
        headers={**URLLIB_HEADERS, "Content-Type": "application/x-www-form-urlencoded"})
    body = await resp.read()
    assert resp.status == 200, body[:300]
    (created,) = xml_items(body, "service_requests", "request")
    number = created["service_request_id"]
    listed = xml_items(await call_api("requests.xml", status="open"),
                       "service_requests", "request")
    assert [r["service_request_id"] for r in listed] == [number]
    (one,) = xml_items(await call_api(f"requests/{number}.xml"), "service_requests", "request")
    assert one["service_code"] == "missed-pickup" and one["address"] == "Calle 50"
    (tok,) = xml_items(await call_api(f"tokens/{created['token']}.xml"),
                       "service_requests", "request")
    assert tok["service_request_id"] == number


async def test_georeport_wrapper(client: TestClient, api_key: str) -> None:
    store = client.app[CASE_STORE]
    resp = await client.post("/open311/v2/requests.json", data=urlencode({
        "api_key": api_key, "service_code": "streetlight-out", "lat": "8.98",
        "long": "-79.52", "description": "Dark"}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    (created,) = await resp.json()
    number = created["service_request_id"]
    await store.close(number, actor="crew", reason="Lamp replaced")
    root = "/open311/v2"  # GeoReport(root_address) strips a trailing slash

    async def georeport_get(path: str, **params: str) -> Any:
        resp = await client.get(f"{root}/{path}", params=params, headers=REQUESTS_HEADERS)
        resp.raise_for_status()
        return json.loads(await resp.read()) if path.endswith(".json") else await resp.read()

    assert any(s["service_code"] == "streetlight-out"
               for s in await georeport_get("services.json"))
    assert (await georeport_get("services/streetlight-out.json"))["attributes"] == []
    xml_services = xml_items(await georeport_get("services.xml"), "services", "service")
    assert len(xml_services) >= 5
    closed = await georeport_get("requests.json", service_code="streetlight-out",
                                 status="closed")
    assert [r["service_request_id"] for r in closed] == [number]
    assert closed[0]["status_notes"] == "Lamp replaced"
    by_id = await georeport_get("requests.json", service_request_id=number)
    assert len(by_id) == 1
    first = (await georeport_get(f"requests/{number}.json"))[0]
    assert first["status"] == "closed" and first["lat"] == 8.98
