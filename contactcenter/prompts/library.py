"""The product's audio, content-addressed under the data dir (`CC_PROMPTS_DIR`):

    <dir>/audio/<sha256>.wav    every prompt's audio (synthesized or recorded), by its content
    <dir>/synth/<key>           the synthesis cache: key = sha256(engine, voice, language,
                                words); the file holds the audio's sha256
    <dir>/tmp/                  half-written files (the same file system, so rename is atomic)

Files are written to tmp/ and renamed into place: a reader never sees half a file. Blocking
(file I/O): the service calls it from a thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def atomic_write(path: Path, data: bytes, tmp_dir: Path | None = None) -> None:
    """Write `data` to `path` through a temporary file in the same directory (or `tmp_dir` on
    the same file system) and a rename: never a half-written `path`."""
    folder = tmp_dir or path.parent
    fd, name = tempfile.mkstemp(prefix=".part-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(name, 0o644)  # Asterisk runs as its own user: it must read the file
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def synth_key(engine: str, voice: str, language: str, text: str) -> str:
    words = " ".join(text.split())
    raw = json.dumps([engine, voice, language, words], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class AudioLibrary:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.audio_dir = self.root / "audio"
        self.synth_dir = self.root / "synth"
        self.tmp_dir = self.root / "tmp"

    def ensure(self) -> None:
        for d in (self.audio_dir, self.synth_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        if not SHA_RE.match(sha):
            raise ValueError(f"{sha!r} is not an audio id")
        return self.audio_dir / f"{sha}.wav"

    def has(self, sha: str) -> bool:
        return SHA_RE.match(sha) is not None and self.path(sha).is_file()

    def get(self, sha: str) -> bytes:
        return self.path(sha).read_bytes()

    def put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if not target.is_file():
            self.ensure()
            atomic_write(target, data, self.tmp_dir)
        return sha

    def cached(self, key: str) -> str | None:
        """The audio of a synthesis made before (None: not made, or its audio is gone)."""
        try:
            sha = (self.synth_dir / key).read_text().strip()
        except OSError:
            return None
        return sha if self.has(sha) else None

    def remember(self, key: str, sha: str) -> None:
        self.ensure()
        atomic_write(self.synth_dir / key, sha.encode(), self.tmp_dir)
