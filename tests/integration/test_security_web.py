"""Issue 20, the web pages: open redirect, Host-header reflection, Origin without the scheme,
cookies without Secure and no HSTS over TLS, X-Forwarded-* from anyone. Real servers, real
sockets; strangers connect from 127.0.0.2, the reverse proxy (when there is one) is 127.0.0.1."""

from __future__ import annotations

import ipaddress
import json
import re
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

from contactcenter.app import create_app
from contactcenter.web import edge
from tests.conftest import app_settings, login, login_csrf

pytestmark = pytest.mark.store


async def make(aiohttp_client: Any, url: str, **settings: str) -> Any:
    return await aiohttp_client(create_app(app_settings(url, **settings)))


def set_cookie(resp: aiohttp.ClientResponse) -> str:
    return next(v for v in resp.headers.getall("Set-Cookie", []) if v.startswith("cc_session="))


@pytest.fixture
async def stranger() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0)),
            cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield http


# --- next= --------------------------------------------------------------------------------------


async def test_next_is_a_same_site_path_or_nothing(
    aiohttp_client: Any, migrated_url: str, seeded: Any
) -> None:
    client = await make(aiohttp_client, migrated_url)
    # the finding: next=/%09/evil.example gave Location: /<tab>/evil.example, i.e. //evil...
    page = await (await client.get(URL("/login?next=/%09/evil.example", encoded=True))).text()
    assert 'name="next" value=""' in page
    for bad in ["/\t/evil.example", "/\n/evil.example", "/\r\n//evil.example", "//evil.example",
                "/\\evil.example", "\\\\evil.example", "https://evil.example/", "/\x00x",
                " //evil.example", "/" + "a" * 3000]:
        client.session.cookie_jar.clear()
        resp = await client.post("/login", allow_redirects=False, data={
            "username": "admin", "password": "admin", "next": bad,
            "_csrf": await login_csrf(client)})
        assert resp.status == 302 and resp.headers["Location"] == "/admin", repr(bad)
    client.session.cookie_jar.clear()
    resp = await client.post("/login", allow_redirects=False, data={
        "username": "admin", "password": "admin", "next": "/reports?from=2026-11-01",
        "_csrf": await login_csrf(client)})
    assert resp.headers["Location"] == "/reports?from=2026-11-01"


# --- Open311 discovery --------------------------------------------------------------------------


async def test_discovery_urls_come_from_configuration_not_the_host_header(
    aiohttp_client: Any, migrated_url: str
) -> None:
    for settings, expected in (({}, "http://127.0.0.1:8080/open311/v2"),
                               ({"public_url": "https://311.example.gov"},
                                "https://311.example.gov/open311/v2")):
        client = await make(aiohttp_client, migrated_url, **settings)
        for host in ("evil.example", "evil.example:443", "127.0.0.1"):
            resp = await client.get("/open311/v2/discovery.json", headers={"Host": host})
            body = await resp.text()
            assert "evil" not in body
            assert [e["url"] for e in json.loads(body)["endpoints"]] == [expected]


# --- websockets' Origin -------------------------------------------------------------------------


async def opens(client: Any, headers: dict[str, str]) -> int:
    try:
        ws = await client.ws_connect("/console/ws", headers=headers)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return 101


async def test_origin_is_compared_by_scheme_host_and_port(
    aiohttp_client: Any, migrated_url: str, seeded: Any
) -> None:
    client = await make(aiohttp_client, migrated_url)
    await login(client, "operator")
    port = client.port
    assert await opens(client, {"Origin": f"http://127.0.0.1:{port}"}) == 101
    for origin in (f"https://127.0.0.1:{port}",  # the finding: the scheme was ignored
                   f"http://127.0.0.1:{port + 1}", "http://127.0.0.1", "null",
                   f"http://127.0.0.1:{port}@evil.example", "http://evil.example"):
        assert await opens(client, {"Origin": origin}) == 403, origin


async def test_origin_behind_a_proxy_on_the_public_https_address(
    aiohttp_client: Any, migrated_url: str, seeded: Any
) -> None:
    client = await make(aiohttp_client, migrated_url, public_url="https://311.example.gov",
                        trusted_proxies="127.0.0.1")
    # the browser's side of the proxy is https: its cookies are Secure, so this client (plain
    # http to the proxy's upstream) carries them by hand
    proxied = {"X-Forwarded-Proto": "https", "Host": "311.example.gov"}
    resp = await client.get("/login", headers=proxied)
    cookie = set_cookie(resp).split(";")[0]
    token = re.search(r'name="_csrf" value="([^"]+)"', await resp.text())
    assert token
    resp = await client.post("/login", allow_redirects=False, headers={**proxied,
                             "Cookie": cookie}, data={"username": "operator",
                                                      "password": "operator",
                                                      "_csrf": token.group(1)})
    assert resp.status == 302
    signed_in = {**proxied, "Cookie": set_cookie(resp).split(";")[0]}
    assert await opens(client, {**signed_in, "Origin": "https://311.example.gov"}) == 101
    assert await opens(client, {**signed_in, "Origin": "https://311.example.gov:443"}) == 101
    for origin in ("http://311.example.gov", "https://311.example.gov.evil.example",
                   "https://311.example.gov:8443"):
        assert await opens(client, {**signed_in, "Origin": origin}) == 403, origin


# --- HTTPS: Secure cookies and HSTS; proxies ----------------------------------------------------


async def test_behind_a_trusted_proxy_https_means_hsts_and_secure_cookies(
    aiohttp_client: Any, migrated_url: str, seeded: Any, stranger: aiohttp.ClientSession
) -> None:
    client = await make(aiohttp_client, migrated_url, trusted_proxies="127.0.0.1")
    resp = await client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Secure" in set_cookie(resp)
    resp = await client.get("/login")  # the proxy's plain-http side
    assert "Strict-Transport-Security" not in resp.headers
    assert "Secure" not in set_cookie(resp)
    # from anyone but the proxy the header proves nothing
    resp = await stranger.get(client.make_url("/login"), headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in resp.headers
    assert "Secure" not in set_cookie(resp)


async def test_a_public_https_url_makes_every_session_cookie_secure(
    aiohttp_client: Any, migrated_url: str
) -> None:
    client = await make(aiohttp_client, migrated_url, public_url="https://311.example.gov")
    resp = await client.get("/login")
    assert "Secure" in set_cookie(resp) and "HttpOnly" in set_cookie(resp)


async def test_served_over_tls_directly(migrated_url: str, seeded: Any, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    settings = app_settings(migrated_url, tls_cert=str(tmp_path / "cert.pem"),
                            tls_key=str(tmp_path / "key.pem"))
    served = await edge.serve_http(create_app(settings), settings, host="127.0.0.1", port=0)
    trust = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            base = f"https://127.0.0.1:{served.port}"
            resp = await http.get(base + "/login", ssl=trust)
            assert resp.status == 200
            assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
            assert "Secure" in set_cookie(resp)
            token = re.search(r'name="_csrf" value="([^"]+)"', await resp.text())
            assert token
            resp = await http.post(base + "/login", ssl=trust, allow_redirects=False, data={
                "username": "operator", "password": "operator", "_csrf": token.group(1)})
            assert resp.status == 302 and "Secure" in set_cookie(resp)
    finally:
        await served.close()


async def test_x_forwarded_for_counts_only_from_the_proxy(
    aiohttp_client: Any, migrated_url: str, seeded: Any, stranger: aiohttp.ClientSession
) -> None:
    client = await make(aiohttp_client, migrated_url, trusted_proxies="127.0.0.1")

    async def attempt(http: Any, url: Any, forwarded_for: str) -> int:
        page = await (await http.get(url("/login"))).text()
        token = re.search(r'name="_csrf" value="([^"]+)"', page)
        assert token
        resp = await http.post(url("/login"), headers={"X-Forwarded-For": forwarded_for},
                               data={"username": "admin", "password": "wrong",
                                     "_csrf": token.group(1)})
        return int(resp.status)

    # a stranger who invents a new X-Forwarded-For each time is still one address
    spoofed = [await attempt(stranger, client.make_url, f"10.0.0.{i}") for i in range(7)]
    assert spoofed == [401] * 5 + [429] * 2
    # behind the proxy: the client is the right-most address the proxy did not write itself
    # ("10.0.1.66" is what a client sent; the proxy appended the address it saw)
    behind = [await attempt(client.session, client.make_url, f"10.0.1.66, 10.0.1.{n}")
              for n in (1, 1, 1, 1, 1, 1, 2)]
    assert behind == [401] * 5 + [429, 401]
