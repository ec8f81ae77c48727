"""`contactcenter setup FILE`: an empty store becomes a site (migrated, reference data, menu,
first admin); a second run changes nothing and says so; a bad file saves nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from contactcenter import db
from contactcenter.agency.models import Agency
from contactcenter.audit import AuditLog
from contactcenter.ivr.models import MenuVersion
from contactcenter.queues.models import Queue, ServiceType
from contactcenter.security import verify_password
from contactcenter.web.models import User
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "site.toml"


def setup(url: str, path: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CC_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "contactcenter", "setup", str(path)],
                          input=stdin, capture_output=True, text=True, env=env, timeout=120)


def counts(url: str) -> dict[str, int]:
    async def run() -> dict[str, int]:
        engine = db.make_engine(url.replace("sqlite:", "sqlite+aiosqlite:"))
        try:
            async with db.make_sessionmaker(engine)() as s:
                return {m.__tablename__: (await s.execute(
                    select(func.count()).select_from(m))).scalar_one()
                    for m in (Agency, Queue, ServiceType, User, MenuVersion, AuditLog)}
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_setup_twice_is_one_setup(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    first = setup(url, EXAMPLE, "correct horse battery\n")
    assert first.returncode == 0, first.stderr
    assert "store migrated: empty -> " in first.stdout
    for line in ("created agency SAN", "created queue general-311",
                 "created service type missed-pickup (SLA 48 h)", "created administrator admin",
                 "created the default phone menu (active version 1)"):
        assert line in first.stdout
    after_first = counts(url)
    assert after_first["agencies"] == 3 and after_first["queues"] == 3
    assert after_first["service_types"] == 5 and after_first["users"] == 1
    assert after_first["menu_versions"] == 1

    second = setup(url, EXAMPLE, "another password\n")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"nothing to do: the store already has everything in " \
                                    f"{EXAMPLE}"
    assert counts(url) == after_first

    async def admin_password_hash() -> str:
        engine = db.make_engine(url.replace("sqlite:", "sqlite+aiosqlite:"))
        try:
            async with db.make_sessionmaker(engine)() as s:
                user = (await s.execute(select(User))).scalar_one()
                assert user.role == "admin"
                return user.password_hash
        finally:
            await engine.dispose()

    assert verify_password(asyncio.run(admin_password_hash()), "correct horse battery")


def test_a_bad_file_saves_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('strategy = "linear"', 'strategy = "sideways"')
                   .replace('sla_hours = 48', 'sla_hours = "two days"') + "\n[extra]\n")
    proc = setup(url, bad, "correct horse battery\n")
    assert proc.returncode == 1
    assert "nothing done (3 problems)" in proc.stderr
    assert "queues #3: strategy 'sideways': one of" in proc.stderr
    assert "service_types #1: sla_hours must be int" in proc.stderr
    assert "[extra]: unknown section" in proc.stderr
    assert not (tmp_path / "site.db").exists()  # not even migrated

    # the admin's password is required when the admin is new: refused, nothing saved
    proc = setup(url, EXAMPLE, "short\n")
    assert proc.returncode == 1 and "at least 8 characters" in proc.stderr
    assert counts(url)["queues"] == 0

    broken = tmp_path / "broken.toml"
    broken.write_text("[[queues]\nname=")
    proc = setup(url, broken)
    assert proc.returncode == 1 and "is not TOML" in proc.stderr
