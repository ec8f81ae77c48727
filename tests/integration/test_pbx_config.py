"""What the admin configures is what Asterisk does: a queue created, changed or deleted in
/admin/queues is written to contactcenter-queues.conf and reloaded (AMI QueueReload) in the
simulated Asterisk, which reads the same files a real one does; the page says whether each
Asterisk took it, or the error it gave; `contactcenter pbx apply` does the same by hand."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.app import create_app
from contactcenter.queues.models import PbxConfigStatus, Queue
from contactcenter.telephony.simulator.ami_server import AmiServer
from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.pbx import SimPbx
from tests.conftest import HEALTH_KEY, ROOT, app_settings, login, until
from tests.integration.test_admin_pages import queue_form

pytestmark = pytest.mark.store

HTML = {"Accept": "text/html"}


@pytest.fixture
async def asterisk(tmp_path: Path) -> AsyncIterator[tuple[SimPbx, AmiServer, Path]]:
    conf = tmp_path / "asterisk"
    shutil.copytree(ROOT / "asterisk-config", conf)
    pbx = SimPbx(VirtualClock(1.0), config_dir=conf)
    server = AmiServer(pbx, "cc", "s3cret", port=0)
    await server.start()
    yield pbx, server, conf
    await server.close()
    await pbx.close()


@pytest.fixture
async def client(aiohttp_client: Any, migrated_url: str, seeded: Any,
                 asterisk: tuple[SimPbx, AmiServer, Path]) -> Any:
    _, server, conf = asterisk
    settings = app_settings(migrated_url, ami_enabled="true", ami_port=str(server.port),
                            ami_username="cc", ami_secret="s3cret",
                            asterisk_conf_dir=str(conf))
    return await aiohttp_client(create_app(settings))


def status(page: str) -> str:
    match = re.search(r'<li data-server="default" data-state="(\w+)">\s*(.*?)\s*</li>', page,
                      re.S)
    assert match, "no Asterisk status on the queues page"
    return f"{match.group(1)}: {match.group(2)}"


async def queues_page(client: Any) -> str:
    resp = await client.get("/admin/queues", headers=HTML)
    assert resp.status == 200
    return await resp.text()


async def test_create_change_delete_reach_asterisk(
        client: Any, asterisk: tuple[SimPbx, AmiServer, Path], seeded: Any) -> None:
    pbx, server, conf = asterisk
    token = await login(client, "admin")
    resp = await client.post("/admin/queues/new", allow_redirects=False, data={
        **queue_form(name="graffiti", strategy="ringall", ring_timeout_seconds="9",
                     retry_seconds="2", joinempty="no", weight="3"), "_csrf": token})
    assert resp.status == 302, await resp.text()
    await until(lambda: "graffiti" in pbx.queues, 10)
    cfg = pbx.queues["graffiti"].config
    assert (cfg.strategy, cfg.timeout, cfg.retry, cfg.joinempty, cfg.weight, cfg.wrapuptime) \
        == ("ringall", 9, 2, False, 3, 0)
    assert "[graffiti]" in (conf / "contactcenter-queues.conf").read_text()
    assert server.actions["queuereload"] >= 1 and server.actions["filter"] == 0
    assert await until(lambda: _applied(client), 10)
    health = await (await client.get("/health", headers={"X-API-Key": HEALTH_KEY})).json()
    assert health["parts"]["queue_config"]["servers"] == {"default": "applied"}

    async with seeded() as s:
        qid = (await s.execute(select(Queue.id).where(Queue.name == "graffiti"))).scalar_one()
    resp = await client.post(f"/admin/queues/{qid}", allow_redirects=False, data={
        **queue_form(name="graffiti", strategy="linear"), "_csrf": token})
    assert resp.status == 302
    await until(lambda: pbx.queues["graffiti"].config.strategy == "linear", 10)

    resp = await client.post(f"/admin/queues/{qid}/delete", allow_redirects=False,
                             data={"_csrf": token})
    assert resp.status == 302, await resp.text()
    await until(lambda: "graffiti" not in pbx.queues, 10)
    assert {"sanitation", "potholes", "general-311"} <= set(pbx.queues)


async def _applied(client: Any) -> bool:
    return status(await queues_page(client)).startswith("applied: Applied to default at ")


async def test_a_queue_in_use_is_not_deleted(client: Any, seeded: Any) -> None:
    token = await login(client, "admin")
    async with seeded() as s:
        qid = (await s.execute(select(Queue.id).where(Queue.name == "sanitation"))).scalar_one()
    resp = await client.post(f"/admin/queues/{qid}/delete", data={"_csrf": token})
    assert resp.status == 400
    page = await resp.text()
    assert "send their calls here" in page or "active phone menu routes" in page, page[-3000:]
    async with seeded() as s:
        assert await s.get(Queue, qid) is not None


@pytest.mark.slow  # seconds of real-time waiting (an outage, a burst): `make test`, not test-fast
async def test_a_reload_asterisk_refuses_is_shown_not_live(
        client: Any, asterisk: tuple[SimPbx, AmiServer, Path], seeded: Any) -> None:
    pbx, _, conf = asterisk
    token = await login(client, "admin")
    assert await until(lambda: _applied(client), 10)
    # someone broke queues.conf on the PBX: app_queue refuses every reload from now on
    (conf / "queues.conf").write_text("[general\n#tryinclude contactcenter-queues.conf\n")
    resp = await client.post("/admin/queues/new", allow_redirects=False, data={
        **queue_form(name="graffiti"), "_csrf": token})
    assert resp.status == 302

    async def refused() -> str:
        text = status(await queues_page(client))
        return text if text.startswith("refused:") else ""

    shown = await until(refused, 10)
    assert "Not applied to default" in shown
    assert "Error encountered while reloading queue" in shown
    assert "graffiti" not in pbx.queues
    async with seeded() as s:
        row = await s.get(PbxConfigStatus, "default")
        assert row is not None and not row.ok and row.applied_at is not None
    # fixed on the PBX: the bridge's retry applies it without another save
    shutil.copy(ROOT / "asterisk-config" / "queues.conf", conf / "queues.conf")
    await until(lambda: "graffiti" in pbx.queues, 30)


async def test_pbx_apply_by_hand(asterisk: tuple[SimPbx, AmiServer, Path], migrated_url: str,
                                 seeded: Any, tmp_path: Path) -> None:
    pbx, server, conf = asterisk
    async with seeded() as s, s.begin():
        s.add(Queue(name="graffiti", display_name="Graffiti", strategy="rrmemory"))
    env = {**os.environ, "CC_DATABASE_URL": migrated_url, "CC_AMI_PORT": str(server.port),
           "CC_AMI_USERNAME": "cc", "CC_AMI_SECRET": "s3cret",
           "CC_ASTERISK_CONF_DIR": str(conf)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "contactcenter", "pbx", "apply", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "4 queues written" in out.decode() and "default: applied" in out.decode()
    assert pbx.queues["graffiti"].config.strategy == "rrmemory"
    # no directory configured: one clear line, exit 1
    env.pop("CC_ASTERISK_CONF_DIR")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "contactcenter", "pbx", "apply", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1 and "CC_ASTERISK_CONF_DIR is not set" in err.decode()


async def test_pbx_show_prints_the_generated_files(migrated_url: str, seeded: Any) -> None:
    env = {**os.environ, "CC_DATABASE_URL": migrated_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "contactcenter", "pbx", "show", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert ";;; contactcenter-queues.conf" in text and ";;; contactcenter-queuerules.conf" in text
    assert "[sanitation]" in text and "wrapuptime=0" in text and "[lang-sanitation]" in text
