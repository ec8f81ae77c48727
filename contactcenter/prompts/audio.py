"""Audio conversion with Debian's `sox`: everything Asterisk plays is 8 kHz mono 16-bit WAV, so
it never transcodes. Blocking functions (subprocesses): callers run them in a thread.

An upload is checked before and after conversion: its first bytes must be WAV, MP3 or OGG, sox
must read it, it must last at most `MAX_SECONDS`; the result is read back with `wave` and must be
8 kHz mono 16-bit. Errors are `AudioError` with a one-line message for the admin.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

RATE = 8000
MAX_SECONDS = 180.0
MAX_UPLOAD_BYTES = 40_000_000  # a 3-minute 44.1 kHz stereo WAV is about 32 MB
SOX_TIMEOUT = 60.0
# sox: 16-bit signed mono at 8 kHz; -G guards against clipping when resampling
TARGET = ["-b", "16", "-e", "signed-integer", "-c", "1", "-r", str(RATE)]


class AudioError(ValueError):
    """Audio that cannot become a prompt; the message says why, for the admin."""


@dataclass(frozen=True, slots=True)
class WavInfo:
    rate: int
    channels: int
    sample_bytes: int
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


def sox_binary() -> str:
    found = shutil.which("sox")
    if not found:
        raise AudioError("sox is not installed (Debian: apt-get install sox libsox-fmt-mp3)")
    return found


def wav_info(data: bytes) -> WavInfo:
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            return WavInfo(w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"not a readable WAV file ({exc})") from None


def kind(head: bytes) -> str | None:
    """"wav", "mp3" or "ogg" from a file's first bytes (None: none of them)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def _run(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(args, capture_output=True, timeout=SOX_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise AudioError(f"{Path(args[0]).name} took longer than {SOX_TIMEOUT:.0f} s") from None


def _first_line(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace").strip().splitlines()
    lines = [x for x in text if "WARN" not in x] or text
    return (lines[0] if lines else "unknown error")[:200]


def to_prompt_wav(src: Path, *, fmt: str | None = None, tmp_dir: Path | None = None) -> bytes:
    """Any audio file sox reads -> 8 kHz mono 16-bit WAV bytes (checked)."""
    sox = sox_binary()
    fd, out_name = tempfile.mkstemp(suffix=".wav", dir=tmp_dir)
    os.close(fd)
    out = Path(out_name)
    try:
        args = [sox, "-G", "-V1"]
        if fmt:
            args += ["-t", fmt]
        proc = _run([*args, str(src), *TARGET, str(out)])
        if proc.returncode != 0:
            raise AudioError(f"could not read it as audio: {_first_line(proc.stderr)}")
        data = out.read_bytes()
    finally:
        out.unlink(missing_ok=True)
    info = wav_info(data)
    if (info.rate, info.channels, info.sample_bytes) != (RATE, 1, 2):
        raise AudioError(f"conversion gave {info.rate} Hz, {info.channels} channel(s)")
    return data


def convert_upload(data: bytes, filename: str = "", *, tmp_dir: Path | None = None) -> bytes:
    """An admin's upload (WAV, MP3 or OGG, any rate and channels) -> a prompt's WAV bytes.
    Refuses what is not audio, longer than `MAX_SECONDS` or larger than `MAX_UPLOAD_BYTES`."""
    if not data:
        raise AudioError("the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise AudioError(f"the file is {len(data) / 1e6:.1f} MB; at most "
                         f"{MAX_UPLOAD_BYTES / 1e6:.0f} MB")
    fmt = kind(data[:16])
    if fmt is None:
        name = f" ({filename})" if filename else ""
        raise AudioError(f"not a WAV, MP3 or OGG audio file{name}")
    fd, src_name = tempfile.mkstemp(suffix=f".{fmt}", dir=tmp_dir)
    src = Path(src_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        out = to_prompt_wav(src, fmt=fmt, tmp_dir=tmp_dir)
    finally:
        src.unlink(missing_ok=True)
    seconds = wav_info(out).seconds
    if seconds > MAX_SECONDS:
        raise AudioError(f"the recording lasts {int(seconds) // 60} min {int(seconds) % 60} s; "
                         f"at most {int(MAX_SECONDS) // 60} minutes")
    if seconds < 0.05:
        raise AudioError("the recording is silent or empty (no audio in it)")
    return out


def concatenate(parts: list[bytes]) -> bytes:
    """Prompt WAVs (same format) one after the other, with a short pause between."""
    pause = b"\x00\x00" * (RATE * 3 // 10)
    frames = pause.join(_frames(p) for p in parts)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(frames)
    return buf.getvalue()


def _frames(data: bytes) -> bytes:
    with wave.open(io.BytesIO(data), "rb") as w:
        return w.readframes(w.getnframes())
