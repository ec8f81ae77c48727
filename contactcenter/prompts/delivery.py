"""Sound files where Asterisk reads them (`CC_SOUNDS_DIR`, or `contactcenter prompts sync DIR`):

    <dir>/<lang>/311/<slot>-<hash>.wav

The IVR plays `311/<slot>-<hash>` after setting `CHANNEL(language)`, so Asterisk opens
`<lang>/311/…` (and says digits from its core sounds in that language). The hash is the start of
the audio's sha256: new audio is a new name, so a call still playing the previous version keeps
its files. Each file is written to a temporary name in its directory and renamed. Files of ours
(the `-<hash>.wav` pattern) that no kept version names are pruned; nothing else is touched.
Blocking (file I/O): called from a thread.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from .library import atomic_write

SUBDIR = "311"
HASH_CHARS = 16
OURS = re.compile(r"^[a-z0-9-]+-[0-9a-f]{16}\.wav$")
LANG_DIR = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")


def sound_name(slug: str, sha: str) -> str:
    """What the IVR plays (no extension, no language: Asterisk adds both)."""
    return f"{SUBDIR}/{slug}-{sha[:HASH_CHARS]}"


def target(sounds_dir: Path, lang: str, name: str) -> Path:
    if not LANG_DIR.match(lang) or not name.startswith(f"{SUBDIR}/") or ".." in name:
        raise ValueError(f"not a prompt sound: {lang}/{name}")
    return sounds_dir / lang / f"{name}.wav"


def write_sounds(sounds_dir: Path, files: Iterable[tuple[str, str, str]],
                 read: Callable[[str], bytes]) -> int:
    """Write each (language, name, sha256) that is not there yet; returns how many were written.
    A name carries its content's hash, so a file already there is already right."""
    written = 0
    for lang, name, sha in files:
        path = target(sounds_dir, lang, name)
        if path.is_file():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, read(sha))
        written += 1
    return written


def prune(sounds_dir: Path, keep: set[tuple[str, str]]) -> list[Path]:
    """Remove our prompt files no kept (language, name) refers to; returns what was removed."""
    removed: list[Path] = []
    if not sounds_dir.is_dir():
        return removed
    for lang_dir in sounds_dir.iterdir():
        folder = lang_dir / SUBDIR
        if not LANG_DIR.match(lang_dir.name) or not folder.is_dir():
            continue
        for path in folder.iterdir():
            if not OURS.match(path.name):
                continue
            if (lang_dir.name, f"{SUBDIR}/{path.stem}") not in keep:
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed
