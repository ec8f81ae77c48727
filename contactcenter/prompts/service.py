"""Prompts as sound: speech from words (cached), admins' recordings, what a version plays, and
its files in Asterisk's sounds directory.

A prompt's audio in one language is, in order: the admin's recording of it (when recorded for
the words the prompt has now; a recording made for other words is *stale* and blocks publishing
until it is recorded again or removed), else the speech engine's rendering of the words (cached
by engine, voice, language and words). The language menu, played before the caller has a
language, is one file: each language's part in turn.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..ivr import prompts as slots_
from ..ivr.menu import Problem
from ..ivr.models import Announcement, MenuVersion
from .audio import AudioError, concatenate, convert_upload
from .delivery import prune, sound_name, write_sounds
from .library import AudioLibrary, synth_key
from .voice import SpeechEngine, SpeechError

log = logging.getLogger(__name__)

RECENT = timedelta(days=1)  # versions archived less than this ago keep their files
RECENT_VERSIONS = 3  # and so do the newest few versions, whatever their age
Sounds = dict[str, dict[str, dict[str, str]]]  # slot -> language -> {"file", "sha256"}


@dataclass(frozen=True, slots=True)
class PromptAudio:
    """One prompt in one language, as the editor shows it."""

    source: str  # "recorded", "synthesized", "none" (no words yet)
    current: bool  # False: a recording older than the words, or speech not made yet
    sha256: str | None
    note: str = ""


class PromptService:
    def __init__(self, library: AudioLibrary, engine: SpeechEngine, sounds_dir: Path | str, *,
                 sessions: async_sessionmaker[AsyncSession] | None = None,
                 concurrency: int = 2) -> None:
        self.library = library
        self.engine = engine
        self.sounds_dir = Path(sounds_dir)
        self._sessions = sessions
        self._slots = asyncio.Semaphore(concurrency)  # the machine's cores, not more
        self.synthesized = 0  # speech made (not from the cache), for the bench and /health
        self._ready = False

    # --- speech and recordings ---------------------------------------------------------------

    def _key(self, text: str, language: str) -> str:
        return synth_key(self.engine.name, self.engine.voice(language), language, text)

    def cached_speech(self, text: str, language: str) -> str | None:
        try:
            return self.library.cached(self._key(text, language))
        except SpeechError:
            return None

    async def speak(self, text: str, language: str) -> str:
        """The sha256 of the words spoken in `language` (made once, then from the cache)."""
        key = self._key(text, language)
        sha = await asyncio.to_thread(self.library.cached, key)
        if sha is not None:
            return sha
        async with self._slots:
            if not self._ready:
                await asyncio.to_thread(self.library.ensure)  # the engines write in its tmp/
                self._ready = True
            data = await asyncio.to_thread(self.engine.synthesize, text, language)
            sha = await asyncio.to_thread(self.library.put, data)
            await asyncio.to_thread(self.library.remember, key, sha)
        self.synthesized += 1
        return sha

    async def record(self, data: bytes, filename: str = "") -> str:
        """Convert an upload and keep it; `AudioError` says why it cannot be a prompt."""
        try:
            await asyncio.to_thread(self.library.ensure)
        except OSError as exc:
            raise AudioError(f"cannot write to {self.library.root} (CC_PROMPTS_DIR): "
                             f"{exc.strerror}") from None
        async with self._slots:
            wav = await asyncio.to_thread(convert_upload, data, filename,
                                          tmp_dir=self.library.tmp_dir)
        return await asyncio.to_thread(self.library.put, wav)

    # --- a menu's prompts ----------------------------------------------------------------------

    @staticmethod
    def languages(data: Any) -> list[str]:
        langs = data.get("languages") if isinstance(data, dict) else None
        if isinstance(langs, list) and langs and all(isinstance(x, str) for x in langs):
            return list(langs)
        return ["en"]

    def status(self, data: Any) -> dict[str, dict[str, PromptAudio]]:
        """slot -> language -> where its audio comes from and whether it is current."""
        recs = slots_.recordings(data)
        out: dict[str, dict[str, PromptAudio]] = {}
        for slot in slots_.slots(data):
            per: dict[str, PromptAudio] = {}
            for lang in self.languages(data):
                words = slot.words.get(lang, "")
                rec = recs.get(slots_.recording_key(slot.id, lang))
                if rec is not None:
                    current = bool(words) and rec.get("words") == words
                    per[lang] = PromptAudio(
                        "recorded", current, rec["sha256"],
                        "" if current else "recorded for other words: record again")
                elif not words:
                    per[lang] = PromptAudio("none", False, None, "no words")
                else:
                    sha = self.cached_speech(words, lang)
                    per[lang] = PromptAudio("synthesized", sha is not None, sha,
                                            "" if sha else "not spoken yet: on publish or play")
            out[slot.id] = per
        return out

    async def slot_audio(self, data: Any, slot_id: str, language: str) -> str:
        """The audio the editor plays for one prompt (a stale recording too: the admin hears
        what they would replace). LookupError when there is nothing to play."""
        slot = slots_.find_slot(data, slot_id)
        if slot is None:
            raise LookupError(f"no prompt {slot_id!r} in this menu")
        rec = slots_.recordings(data).get(slots_.recording_key(slot_id, language))
        if rec is not None and self.library.has(rec["sha256"]):
            return str(rec["sha256"])
        words = slot.words.get(language)
        if not words:
            raise LookupError(f"{slot.label} has no words in {language}")
        return await self.speak(words, language)

    async def prepare(self, data: Any) -> tuple[Sounds, list[Problem]]:
        """The audio of every prompt in every language of the menu (speech made where needed),
        or the problems that keep it from being published: no words (validate() says it too),
        no audio, a recording older than its words."""
        langs = self.languages(data)
        recs = slots_.recordings(data)
        problems: list[Problem] = []
        jobs: dict[tuple[str, str], asyncio.Task[str]] = {}
        chosen: dict[tuple[str, str], str] = {}
        all_slots = slots_.slots(data)
        for slot in all_slots:
            for lang in langs:
                words = slot.words.get(lang, "")
                rec = recs.get(slots_.recording_key(slot.id, lang))
                if rec is not None:
                    if stale := slots_.stale_problem(slot, lang, rec):
                        problems.append(stale)
                    elif not self.library.has(rec["sha256"]):
                        problems.append(Problem(slot.node_id, (
                            f"{slot.label}: the {lang} recording's audio is missing from "
                            f"{self.library.root}: upload it again")))
                    else:
                        chosen[(slot.id, lang)] = rec["sha256"]
                elif words:
                    jobs[(slot.id, lang)] = asyncio.ensure_future(self.speak(words, lang))
        if jobs:
            await asyncio.wait(jobs.values())
        by_id = {s.id: s for s in all_slots}
        for (slot_id, lang), task in jobs.items():
            exc = task.exception()
            if exc is None:
                chosen[(slot_id, lang)] = task.result()
            elif isinstance(exc, (SpeechError, AudioError, OSError)):
                slot = by_id[slot_id]
                problems.append(Problem(slot.node_id, f"{slot.label}: no {lang} audio: {exc}"))
            else:
                raise exc
        sounds: Sounds = {}
        for slot in all_slots:
            if slot.id == "language":
                parts = [chosen.get((slot.id, lang)) for lang in langs]
                if all(parts):
                    wavs = [await asyncio.to_thread(self.library.get, str(p)) for p in parts]
                    sha = await asyncio.to_thread(self.library.put, concatenate(wavs))
                    name = sound_name(slot.slug, sha)
                    # the same file in every language: the channel's language is not known yet
                    sounds[slot.id] = {lang: {"file": name, "sha256": sha} for lang in langs}
                continue
            for lang in langs:
                sha_ = chosen.get((slot.id, lang))
                if sha_ is not None:
                    sounds.setdefault(slot.id, {})[lang] = {
                        "file": sound_name(slot.slug, sha_), "sha256": sha_}
        return sounds, problems

    # --- delivery ------------------------------------------------------------------------------

    async def deliver(self, sounds: Any, sounds_dir: Path | None = None) -> int:
        """Write a version's (or an announcement's) files into the sounds directory; returns
        how many were new."""
        files = []
        for per in (sounds or {}).values():
            for lang, entry in per.items():
                if entry.get("sha256"):  # else a sound file of old, not ours to write
                    files.append((lang, entry["file"], entry["sha256"]))
        return await asyncio.to_thread(write_sounds, sounds_dir or self.sounds_dir, files,
                                       self.library.get)

    async def speak_announcement(self, words: dict[str, str]) -> dict[str, Any]:
        """An announcement's sounds ({lang: {"file", "sha256"}}), written for Asterisk."""
        out: dict[str, Any] = {}
        for lang, text in words.items():
            sha = await self.speak(text, lang)
            out[lang] = {"file": sound_name("announcement", sha), "sha256": sha}
        await self.deliver({"announcement": out})
        return out

    async def kept(self, now: datetime) -> tuple[set[tuple[str, str]], list[dict[str, Any]]]:
        """(language, file) of every sound still in use, and those versions' and
        announcements' sounds: the active version, versions archived within `RECENT`, the
        newest `RECENT_VERSIONS`, and announcements that have not ended."""
        if self._sessions is None:
            raise RuntimeError("no store")
        async with self._sessions() as db:
            rows = (await db.execute(
                select(MenuVersion.sounds).where(MenuVersion.sounds.is_not(None)).where(or_(
                    MenuVersion.status == "active",
                    MenuVersion.published_at >= now - RECENT,
                    MenuVersion.version > func.coalesce(select(MenuVersion.version).order_by(
                        MenuVersion.version.desc()).offset(RECENT_VERSIONS).limit(1)
                        .scalar_subquery(), 0),
                )))).scalars().all()
            anns = (await db.execute(select(Announcement.sounds).where(
                Announcement.sounds.is_not(None), Announcement.ends_at > now))).scalars().all()
        keep: set[tuple[str, str]] = set()
        all_sounds: list[dict[str, Any]] = []
        for sounds in rows:
            keep |= slots_.sound_files(sounds)
            all_sounds.append(sounds)
        for ann in anns:
            keep |= slots_.sound_files({"announcement": ann})
            all_sounds.append({"announcement": ann})
        return keep, all_sounds

    async def prune_unused(self, now: datetime, sounds_dir: Path | None = None) -> int:
        """Remove the prompt files nothing in use plays any more; returns how many."""
        keep, _ = await self.kept(now)
        removed = await asyncio.to_thread(prune, sounds_dir or self.sounds_dir, keep)
        if removed:
            log.info("prompts: removed %d sound file(s) no version in use plays", len(removed))
        return len(removed)
