"""Issue 16, a newcomer's friction: the database URLs people type work, and a shell command on a
database that is missing or unmigrated says so in one line instead of a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from contactcenter.config import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("typed", "used"), [
    ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ("sqlite+aiosqlite:///var/a.db", "sqlite+aiosqlite:///var/a.db"),
    ("postgresql://cc@db/cc", "postgresql+asyncpg://cc@db/cc"),
    ("postgres://cc@db/cc", "postgresql+asyncpg://cc@db/cc"),
    ("postgresql+psycopg2://cc@db/cc", "postgresql+asyncpg://cc@db/cc"),
])
def test_the_urls_people_type(typed: str, used: str) -> None:
    assert load_settings(env={"CC_DATABASE_URL": typed}).database_url == used


@pytest.mark.parametrize("url", ["mysql://x@y/z", "x.db", "sqlite+pysqlite:///x.db"])
def test_unsupported_urls_are_one_clear_error(url: str) -> None:
    with pytest.raises(SettingsError, match="CC_DATABASE_URL: unsupported database"):
        load_settings(env={"CC_DATABASE_URL": url})


def test_a_command_on_an_unmigrated_database_says_what_to_do(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "CC_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}
    proc = subprocess.run([sys.executable, "-m", "contactcenter", "apikey", "list"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "run `contactcenter db upgrade`" in lines[0], proc.stderr
