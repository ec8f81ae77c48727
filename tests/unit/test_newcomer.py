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


def test_beside_a_demo_the_hint_names_the_demos_store(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "demo.db").write_bytes(b"")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}  # the default store, in tmp_path
    proc = subprocess.run([sys.executable, "-m", "contactcenter", "apikey", "list"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "CC_DATABASE_URL=sqlite:///var/demo.db" in proc.stderr.strip().splitlines()[-1]


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        env = {"PATH": "/usr/bin:/bin", "CC_DATABASE_URL": f"sqlite:///{tmp_path}/d.db",
               "CC_AMI_ENABLED": "false", "CC_AGI_PORT": "0", "CC_HTTP_PORT": str(port),
               "CC_SECRET_KEY": "Zq7Rk2Wm9Xp4Lv8N-test-secret-key-0123"}
        subprocess.run([sys.executable, "-m", "contactcenter", "db", "upgrade"], env=env,
                       cwd=ROOT, capture_output=True, timeout=120, check=True)
        proc = subprocess.run([sys.executable, "-m", "contactcenter", "serve"], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and "CC_HTTP_PORT" in lines[-1], proc.stderr
