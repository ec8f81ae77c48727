"""`contactcenter ivr export|import`: the round trip, validation like a draft, clear errors and
exit code 1 on bad files, nothing saved."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.audit import AuditLog
from contactcenter.cli import main
from contactcenter.ivr.menu import default_menu
from contactcenter.ivr.models import MenuVersion

pytestmark = pytest.mark.store


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, migrated_url: str) -> Any:
    for name in [k for k in os.environ if k.startswith("CC_")]:
        monkeypatch.delenv(name)  # the suite's own CC_TEST_* switches are not settings
    monkeypatch.setenv("CC_DATABASE_URL", migrated_url)

    async def run(*argv: str) -> int:
        # main() runs its own event loop: give it a thread
        return await asyncio.to_thread(main, list(argv))

    return run


async def versions(sessions: Any) -> dict[int, tuple[str, Any]]:
    async with sessions() as db:
        return {v.version: (v.status, v.data)
                for v in (await db.execute(select(MenuVersion))).scalars()}


async def test_export_then_import_round_trip(cli: Any, seeded: Any, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "menu.json"
    assert await cli("ivr", "export", str(out)) == 0
    assert json.loads(out.read_text()) == default_menu()
    edited = json.loads(out.read_text())
    edited["nodes"][0]["options"].append({"digit": "4", "action": "queue",
                                          "queue": "sanitation", "service": "bulk-item"})
    out.write_text(json.dumps(edited))
    assert await cli("ivr", "import", str(out)) == 0
    assert "as draft version 2" in capsys.readouterr().out
    stored = await versions(seeded)
    assert stored[2] == ("draft", edited) and stored[1][0] == "active"
    # --version exports any version, - writes to stdout
    assert await cli("ivr", "export", "--version", "2", "-") == 0
    assert json.loads(capsys.readouterr().out) == edited
    async with seeded() as db:
        audit = (await db.execute(select(AuditLog).where(AuditLog.action == "import"))
                 ).scalar_one()
    assert audit.actor == "cli" and audit.entity_id == "2"


@pytest.mark.parametrize(("content", "expect"), [
    (b"\xff\xfe garbage", "not UTF-8"),
    (b"{ not json", "not valid JSON"),
    (b'"a string"', "a menu is a JSON object"),
    (b'{"languages": "en", "nodes": [{"id": "main"}]}', "languages must be a non-empty list"),
])
async def test_import_garbage_exits_1_with_the_problems(
    cli: Any, seeded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    content: bytes, expect: str,
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    assert await cli("ivr", "import", str(bad)) == 1
    err = capsys.readouterr().err
    assert "was not imported" in err and expect in err
    assert set(await versions(seeded)) == {1}


async def test_import_validates_against_the_store(cli: Any, seeded: Any, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = default_menu()
    data["nodes"][0]["options"][1]["queue"] = "gone-queue"
    data["nodes"][0]["options"].append({"digit": "1", "action": "repeat"})
    path = tmp_path / "menu.json"
    path.write_text(json.dumps(data))
    assert await cli("ivr", "import", str(path)) == 1
    err = capsys.readouterr().err
    assert "main: option 2: queue 'gone-queue' does not exist" in err
    assert "main: digit 1 is used twice" in err
    assert set(await versions(seeded)) == {1}


async def test_missing_file_and_unknown_version(cli: Any, seeded: Any, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli("ivr", "import", str(tmp_path / "nope.json")) == 1
    assert "cannot read" in capsys.readouterr().err
    assert await cli("ivr", "export", "--version", "9", str(tmp_path / "x.json")) == 1
    assert "no menu version 9" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
