"""Speech from words, behind a small interface so a city can plug a better voice.

`SpeechEngine.synthesize(text, language)` returns a prompt's WAV (8 kHz mono 16-bit). Engines:

- `espeak-ng` (the default): Debian's `espeak-ng`, no network, no model; voices `en-us` and
  `es-419` unless `CC_TTS_VOICES` names others (`espeak-ng --voices` lists them).
- `piper`: the `piper` program (`piper-tts` on PyPI) with one voice model file (`.onnx`, its
  `.onnx.json` beside it) per language, named by `CC_TTS_VOICES` (`en=/srv/voices/en_US-amy-
  medium.onnx,es=/srv/voices/es_MX-claude-high.onnx`).

Both write the engine's own WAV to a temporary file, which sox converts (`audio.to_prompt_wav`).
Blocking (subprocesses): callers run them in a thread. Failures are `SpeechError` (one line).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

from .audio import AudioError, to_prompt_wav

SYNTH_TIMEOUT = 60.0
ESPEAK_VOICES = {"en": "en-us", "es": "es-419"}  # es-419: Latin American Spanish


class SpeechError(RuntimeError):
    """The engine could not speak the words (message for the admin and the log)."""


class SpeechEngine(Protocol):
    name: str

    def voice(self, language: str) -> str:
        """The voice used for `language` (part of the synthesis cache key)."""
        ...

    def synthesize(self, text: str, language: str) -> bytes: ...


def parse_voices(raw: str) -> dict[str, str]:
    """"en=en-us,es=es-419" -> {"en": "en-us", "es": "es-419"}; ValueError naming the item."""
    out: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        lang, sep, voice = item.partition("=")
        if not sep or not lang.strip() or not voice.strip():
            raise ValueError(f"{item!r} is not language=voice")
        out[lang.strip()] = voice.strip()
    return out


def _run(args: list[str], stdin: bytes | None = None) -> None:
    try:
        proc = subprocess.run(args, input=stdin, capture_output=True, timeout=SYNTH_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        raise SpeechError(f"{Path(args[0]).name} took longer than {SYNTH_TIMEOUT:.0f} s") \
            from None
    except OSError as exc:
        raise SpeechError(f"cannot run {args[0]}: {exc.strerror}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SpeechError(f"{Path(args[0]).name} failed: {(err[-1] if err else '')[:200]}")


class _FileEngine:
    """Runs a program that writes a WAV file, then converts it for Asterisk."""

    name = "engine"

    def __init__(self, tmp_dir: Path | None = None) -> None:
        self.tmp_dir = tmp_dir

    def _command(self, text: str, language: str, out: Path) -> tuple[list[str], bytes | None]:
        raise NotImplementedError

    def voice(self, language: str) -> str:
        raise NotImplementedError

    def synthesize(self, text: str, language: str) -> bytes:
        text = " ".join(text.split())
        if not text:
            raise SpeechError("no words to speak")
        fd, name = tempfile.mkstemp(suffix=".wav", dir=self.tmp_dir)
        os.close(fd)
        out = Path(name)
        try:
            args, stdin = self._command(text, language, out)
            _run(args, stdin)
            try:
                return to_prompt_wav(out, fmt="wav", tmp_dir=self.tmp_dir)
            except AudioError as exc:
                raise SpeechError(f"{self.name} gave unusable audio: {exc}") from None
        finally:
            out.unlink(missing_ok=True)


class EspeakEngine(_FileEngine):
    name = "espeak-ng"

    def __init__(self, voices: dict[str, str] | None = None, binary: str = "espeak-ng",
                 tmp_dir: Path | None = None) -> None:
        super().__init__(tmp_dir)
        self.voices = {**ESPEAK_VOICES, **(voices or {})}
        self.binary = binary

    def voice(self, language: str) -> str:
        return self.voices.get(language, language)

    def _command(self, text: str, language: str, out: Path) -> tuple[list[str], bytes | None]:
        binary = shutil.which(self.binary)
        if binary is None:
            raise SpeechError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
        # the words on stdin: nothing the admin typed is ever an option
        return [binary, "-v", self.voice(language), "-w", str(out), "--stdin"], \
            text.encode("utf-8")


class PiperEngine(_FileEngine):
    name = "piper"

    def __init__(self, models: dict[str, str], binary: str = "piper",
                 tmp_dir: Path | None = None) -> None:
        super().__init__(tmp_dir)
        self.models = models
        self.binary = binary

    def voice(self, language: str) -> str:
        model = self.models.get(language)
        if not model:
            raise SpeechError(f"no piper voice model for {language!r} in CC_TTS_VOICES")
        return Path(model).name

    def _command(self, text: str, language: str, out: Path) -> tuple[list[str], bytes | None]:
        model = self.models.get(language)
        if not model:
            raise SpeechError(f"no piper voice model for {language!r} in CC_TTS_VOICES")
        if not Path(model).is_file():
            raise SpeechError(f"piper voice model {model!r} does not exist")
        binary = shutil.which(self.binary)
        if binary is None:
            raise SpeechError(f"the piper program {self.binary!r} is not installed")
        # -m and -f: the same in the C++ piper and in piper-tts's Python one
        return [binary, "-m", model, "-f", str(out)], text.encode("utf-8")


ENGINES = ("espeak-ng", "piper")


def make_engine(engine: str, voices: str, piper_binary: str = "piper",
                tmp_dir: Path | None = None) -> SpeechEngine:
    """From the settings (`CC_TTS_ENGINE`, `CC_TTS_VOICES`, `CC_PIPER_BINARY`)."""
    parsed = parse_voices(voices)
    if engine == "piper":
        return PiperEngine(parsed, piper_binary, tmp_dir)
    if engine == "espeak-ng":
        return EspeakEngine(parsed, tmp_dir=tmp_dir)
    raise ValueError(f"unknown speech engine {engine!r} (one of {', '.join(ENGINES)})")
