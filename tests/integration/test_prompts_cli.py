"""`contactcenter prompts build` and `contactcenter prompts sync DIR` (issue 17): a new install's
seeded menu gets its audio; every sound in use is written elsewhere for a remote Asterisk."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.cli import main
from contactcenter.ivr.models import MenuVersion
from contactcenter.seed import seed_reference
from tests.conftest import AUDIO_TMP

pytestmark = pytest.mark.store


async def test_build_gives_the_seeded_menu_its_audio_and_sync_copies_it(
    monkeypatch: pytest.MonkeyPatch, migrated_url: str, sessions: Any, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [k for k in os.environ if k.startswith("CC_")]:
        monkeypatch.delenv(name)
    sounds_dir = tmp_path / "sounds"
    monkeypatch.setenv("CC_DATABASE_URL", migrated_url)
    monkeypatch.setenv("CC_SOUNDS_DIR", str(sounds_dir))
    monkeypatch.setenv("CC_PROMPTS_DIR", os.path.join(AUDIO_TMP, "library"))
    await seed_reference(sessions)  # words, no audio yet

    async def cli(*argv: str) -> int:
        return await asyncio.to_thread(main, list(argv))

    assert await cli("prompts", "build") == 0
    assert capsys.readouterr().out.strip() == (
        f"menu version 1: 36 new sound file(s) in {sounds_dir}")
    async with sessions() as db:
        sounds = (await db.execute(select(MenuVersion.sounds))).scalar_one()
    files = {(lang, e["file"]) for per in sounds.values() for lang, e in per.items()}
    assert len(files) == 36
    assert all((sounds_dir / lang / f"{name}.wav").is_file() for lang, name in files)
    assert await cli("prompts", "build") == 0  # already built: nothing new
    assert "0 new sound file(s)" in capsys.readouterr().out

    remote = tmp_path / "remote"
    assert await cli("prompts", "sync", str(remote)) == 0
    assert capsys.readouterr().out.strip() == (
        f"36 sound file(s) written to {remote}, 0 no longer used removed")
    lang, name = sorted(files)[0]
    (remote / lang / f"{name}.wav").unlink()
    (remote / "es" / "311" / "old-prompt-0123456789abcdef.wav").write_bytes(b"old")
    assert await cli("prompts", "sync", str(remote)) == 0
    assert capsys.readouterr().out.strip() == (
        f"1 sound file(s) written to {remote}, 1 no longer used removed")
    assert sorted(p.relative_to(remote).as_posix() for p in remote.rglob("*.wav")) == sorted(
        f"{lang}/{name}.wav" for lang, name in files)
