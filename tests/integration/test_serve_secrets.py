"""Issue 11: `contactcenter serve` refuses to start without `CC_SECRET_KEY` and AMI credentials,
as a real process (exit code and message), before it listens anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SECRET_KEY as KEY

BASE = {"CC_HTTP_PORT": "0", "CC_AGI_PORT": "0", "CC_AMI_PORT": "1"}


def serve(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    clean.update(BASE, CC_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/s.db",
                 CC_SPOOL_DIR=str(tmp_path / "spool"), **env)
    return subprocess.run([sys.executable, "-m", "contactcenter", "serve"], env=clean,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)


@pytest.mark.parametrize("env,names", [
    ({"CC_AMI_USERNAME": "cc", "CC_AMI_SECRET": "a-real-secret"}, ["CC_SECRET_KEY"]),
    ({"CC_SECRET_KEY": KEY}, ["CC_AMI_USERNAME", "CC_AMI_SECRET"]),
    ({"CC_SECRET_KEY": KEY, "CC_AMI_USERNAME": "cc"}, ["CC_AMI_SECRET"]),
    ({}, ["CC_SECRET_KEY", "CC_AMI_SECRET"]),
    # issue 20: a short or predictable key was recovered from an anonymous cookie
    ({"CC_SECRET_KEY": "x", "CC_AMI_USERNAME": "cc", "CC_AMI_SECRET": "s"},
     ["CC_SECRET_KEY", "at least 32"]),
    ({"CC_SECRET_KEY": "k" * 40, "CC_AMI_USERNAME": "cc", "CC_AMI_SECRET": "s"},
     ["CC_SECRET_KEY", "predictable"]),
])
def test_serve_refuses_to_start_without_secrets(
    tmp_path: Path, env: dict[str, str], names: list[str]
) -> None:
    proc = serve(tmp_path, env)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    for name in names:
        assert name in out, out
    assert "Traceback" not in out
    assert "listening" not in out.lower()
