"""Issue 17, prompts as sound: speech from words (espeak-ng + sox), recordings converted from any
WAV/MP3/OGG, garbage refused with a message, and files written atomically where Asterisk reads
them. Real programs (Debian's espeak-ng and sox), real files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from contactcenter.ivr.menu import DEFAULT_WORDS
from contactcenter.prompts import audio
from contactcenter.prompts.audio import AudioError, convert_upload, wav_info
from contactcenter.prompts.delivery import prune, sound_name, write_sounds
from contactcenter.prompts.library import AudioLibrary
from contactcenter.prompts.service import PromptService
from contactcenter.prompts.voice import EspeakEngine, SpeechError

TWENTY_FIVE = {
    "en": "For a missed garbage pickup press one, to report a pothole press two, for the "
          "status of a request press nine, or press zero now.",
    "es": "Si no recogieron su basura oprima uno, para reportar un bache oprima dos, para el "
          "estado de una solicitud oprima nueve, y para hablar con un operador oprima cero.",
}


def sox(*args: str) -> None:
    subprocess.run(["sox", *args], check=True, capture_output=True)


def soxi(path: Path, flag: str) -> str:
    return subprocess.run(["soxi", flag, str(path)], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def service(tmp_path: Path) -> PromptService:
    library = AudioLibrary(tmp_path / "library")
    return PromptService(library, EspeakEngine(tmp_dir=library.tmp_dir), tmp_path / "sounds")


@pytest.mark.parametrize("lang", ["en", "es"])
async def test_speech_is_8khz_mono_16bit_and_lasts_as_long_as_its_words(
    service: PromptService, lang: str
) -> None:
    words = TWENTY_FIVE[lang]
    assert len(words.split()) in range(25, 31)
    sha = await service.speak(words, lang)
    info = wav_info(service.library.get(sha))
    assert (info.rate, info.channels, info.sample_bytes) == (8000, 1, 2)
    # people speak 2-4 words a second; espeak-ng's default rate is about 3
    assert len(words.split()) / 4.5 < info.seconds < len(words.split()) / 1.5, info.seconds
    short = wav_info(service.library.get(await service.speak(DEFAULT_WORDS["goodbye"][lang],
                                                             lang)))
    assert short.seconds < info.seconds / 2
    # the cache: the same words again are not spoken again
    made = service.synthesized
    assert await service.speak("  " + words + " ", lang) == sha
    assert service.synthesized == made


async def test_english_and_spanish_voices_differ(service: PromptService) -> None:
    en = await service.speak("Hola", "en")
    es = await service.speak("Hola", "es")
    assert en != es  # the key holds the language and voice, and the voices differ


async def test_a_44khz_stereo_mp3_becomes_an_8khz_mono_wav_that_sox_reads(
    service: PromptService, tmp_path: Path
) -> None:
    mp3 = tmp_path / "greeting.mp3"
    sox("-n", "-r", "44100", "-c", "2", str(mp3), "synth", "3", "sine", "440")
    assert soxi(mp3, "-r") == "44100" and soxi(mp3, "-c") == "2"
    sha = await service.record(mp3.read_bytes(), "greeting.mp3")
    out = service.library.path(sha)
    assert soxi(out, "-r") == "8000" and soxi(out, "-c") == "1" and soxi(out, "-b") == "16"
    assert 2.8 < float(soxi(out, "-D")) < 3.3
    # OGG and a WAV at another rate too
    ogg = tmp_path / "x.ogg"
    sox("-n", "-r", "22050", "-c", "2", str(ogg), "synth", "1", "sine", "300")
    wav = tmp_path / "x.wav"
    sox("-n", "-r", "48000", "-c", "2", "-b", "24", str(wav), "synth", "1", "sine", "300")
    for path in (ogg, wav):
        info = wav_info(convert_upload(path.read_bytes(), path.name))
        assert (info.rate, info.channels, info.sample_bytes) == (8000, 1, 2)


async def test_what_is_not_a_usable_recording_is_refused_with_a_message(
    service: PromptService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long = tmp_path / "long.wav"
    sox("-n", "-r", "8000", "-c", "1", str(long), "synth", "181", "sine", "300")
    cases = [
        (b"", "the file is empty"),
        (b"hello, I am a text file\n" * 20, "not a WAV, MP3 or OGG audio file (notes.txt)"),
        (b"%PDF-1.7 ...", "not a WAV, MP3 or OGG audio file"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt garbage garbage garbage", "could not read it as audio"),
        (b"OggS" + b"\x00" * 200, "could not read it as audio"),
        (long.read_bytes(), "the recording lasts 3 min 1 s; at most 3 minutes"),
    ]
    for payload, message in cases:
        with pytest.raises(AudioError) as err:
            await service.record(payload, "notes.txt")
        assert message in str(err.value), (payload[:20], str(err.value))
    monkeypatch.setattr(audio, "MAX_UPLOAD_BYTES", 1000)
    with pytest.raises(AudioError, match=r"the file is 0\.0 MB; at most 0 MB"):
        convert_upload(b"RIFF" + b"\x00" * 2000)
    # nothing half-made is left behind
    assert list(service.library.tmp_dir.iterdir()) == []
    assert not service.library.audio_dir.exists() or list(service.library.audio_dir.iterdir()) == []


async def test_speech_failures_are_one_line_errors(tmp_path: Path) -> None:
    engine = EspeakEngine(binary="no-such-espeak", tmp_dir=tmp_path)
    with pytest.raises(SpeechError, match="espeak-ng is not installed"):
        engine.synthesize("hello", "en")
    with pytest.raises(SpeechError, match="no words"):
        EspeakEngine(tmp_dir=tmp_path).synthesize("   ", "en")


async def test_sounds_are_written_atomically_in_the_asterisk_layout_and_pruned(
    service: PromptService, tmp_path: Path
) -> None:
    sha = await service.speak("Welcome", "en")
    sha_es = await service.speak("Bienvenido", "es")
    name, name_es = sound_name("main", sha), sound_name("main", sha_es)
    assert name == f"311/main-{sha[:16]}"
    target = tmp_path / "asterisk-sounds"
    files = [("en", name, sha), ("es", name_es, sha_es)]
    assert write_sounds(target, files, service.library.get) == 2
    en = target / "en" / f"{name}.wav"
    assert en.read_bytes() == service.library.get(sha)
    assert (target / "es" / f"{name_es}.wav").is_file()
    assert oct(en.stat().st_mode & 0o777) == "0o644"
    # no temporary file is left next to them; a second write changes nothing
    assert sorted(p.name for p in (target / "en" / "311").iterdir()) == [f"main-{sha[:16]}.wav"]
    mtime = en.stat().st_mtime_ns
    assert write_sounds(target, files, service.library.get) == 0
    assert en.stat().st_mtime_ns == mtime
    # a file of the admin's own and ours nobody uses any more
    (target / "en" / "311" / "custom-greeting.wav").write_bytes(b"x")
    removed = prune(target, {("en", name)})
    assert [p.name for p in removed] == [f"main-{sha_es[:16]}.wav"]
    assert en.is_file() and (target / "en" / "311" / "custom-greeting.wav").is_file()


async def test_the_piper_engine_runs_the_program_with_the_language_model(tmp_path: Path) -> None:
    """A stand-in `piper` (speaking with espeak-ng) checks the plumbing: the model of the
    caller's language, the words on stdin, its WAV converted to 8 kHz mono."""
    from contactcenter.prompts.voice import make_engine

    fake = tmp_path / "piper"
    log = tmp_path / "args"
    fake.write_text("#!/bin/sh\n"
                    f'echo "$@" >> {log}\n'
                    'while [ $# -gt 0 ]; do case "$1" in -f) out="$2"; shift;; esac; shift; done\n'
                    'exec espeak-ng -w "$out" --stdin\n')
    fake.chmod(0o755)
    model = tmp_path / "es_MX-claude-high.onnx"
    model.write_bytes(b"model")
    engine = make_engine("piper", f"es={model}", str(fake), tmp_dir=tmp_path)
    info = wav_info(engine.synthesize("Hola a todos", "es"))
    assert (info.rate, info.channels) == (8000, 1) and info.seconds > 0.3
    assert log.read_text().startswith(f"-m {model} -f ")
    assert engine.voice("es") == "es_MX-claude-high.onnx"
    with pytest.raises(SpeechError, match="no piper voice model for 'en'"):
        engine.synthesize("Hello", "en")
