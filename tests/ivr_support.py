"""Shared pieces of the IVR tests: the capture's menu, a running FastAGI server with the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.clock import SYSTEM, Clock
from contactcenter.events import Event
from contactcenter.ivr.engine import IvrEngine, IvrResult, IvrStore
from contactcenter.ivr.menu import default_menu
from contactcenter.ivr.models import MenuVersion
from contactcenter.ivr.prompts import apply_sounds, slots
from contactcenter.ivr.services import IvrServices
from contactcenter.telephony.agi import AgiChannel, FastAgiServer

# The IVR of shared/asterisk-transcripts (README): one language, "hello-world", 4 s, 1 digit;
# 1 sanitation, 2 potholes, 3 general-311, 9 key a six-digit case number and hear it back.
CAPTURE_MENU: dict[str, Any] = {
    "name": "capture",
    "languages": ["en"],
    "start": "main",
    "timeout_ms": 4000,
    "retries": 3,
    "after_retries": {"action": "queue", "queue": "general-311"},
    "nodes": [
        {
            "id": "main",
            "prompt": {"en": "hello-world"},
            "options": [
                {"digit": "1", "action": "queue", "queue": "sanitation",
                 "service": "missed-pickup"},
                {"digit": "2", "action": "queue", "queue": "potholes", "service": "pothole"},
                {"digit": "3", "action": "queue", "queue": "general-311",
                 "service": "general-inquiry"},
                {"digit": "9", "action": "case_status", "prompt": {"en": "vm-enter-num-to-call"},
                 "max_digits": 6, "readback": True,
                 "operator": {"action": "queue", "queue": "general-311"}},
            ],
        }
    ],
}


# The default menu as published before prompts were words: each prompt a fixed sound file name
# (`311/<lang>/main-menu`...). The engine's tests are about its rules, not about the words.
OLD_NAMES = {
    "menu.invalid_prompt": "invalid-option", "menu.closed_prompt": "office-closed",
    "menu.leave_request_prompt": "press-1-leave-request",
    "menu.request_taken_prompt": "request-taken-your-number-is",
    "menu.goodbye_prompt": "goodbye", "main": "main-menu", "main.9": "enter-case-number",
    "main.9.not_found": "case-not-found", "main.9.open_case":
    "press-1-status-of-request-ending-in", "main.9.other_case": "press-2-other-case",
    "main.9.expected": "expected-by", "main.9.operator": "press-0-operator",
    "main.9.status.open": "status-open", "main.9.status.acknowledged": "status-acknowledged",
    "main.9.status.in_progress": "status-in-progress", "main.9.status.closed": "status-closed",
    "main.7": "emergency-dial-911",
}


def file_sounds() -> dict[str, Any]:
    """The `sounds` of a default menu published with the sound files of old."""
    sounds: dict[str, Any] = {}
    for slot in slots(default_menu()):
        for lang in ("en", "es"):
            file = ("311/choose-language" if slot.id == "language"
                    else f"311/{lang}/{OLD_NAMES[slot.id]}")
            sounds.setdefault(slot.id, {})[lang] = {"file": file, "sha256": ""}
    return sounds


def file_menu(general_queue: str = "general-311") -> dict[str, Any]:
    """`default_menu()` with the sound file names of old instead of its words."""
    return apply_sounds(default_menu(general_queue), file_sounds())


async def activate(
    sessions: async_sessionmaker[AsyncSession], data: dict[str, Any], version: int
) -> None:
    """Publish `data` as the active version (the others archived), as the admin editor does."""
    async with sessions() as session, session.begin():
        await session.execute(
            update(MenuVersion).where(MenuVersion.status == "active").values(status="archived")
        )
        session.add(MenuVersion(version=version, status="active", data=data,
                                published_at=datetime.now(UTC)))


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.results: list[IvrResult] = []
        self.engine: Any = None  # the IvrEngine of running_ivr, for its counters

    async def publish(self, event: Event) -> None:
        self.events.append(event)


@asynccontextmanager
async def running_ivr(
    store: IvrStore | IvrServices, recorder: Recorder, *, clock: Clock = SYSTEM, **server_kw: Any
) -> AsyncIterator[FastAgiServer]:
    engine = IvrEngine(store, recorder.publish, general_queue="general-311", clock=clock.now)
    recorder.engine = engine

    async def handle(channel: AgiChannel) -> None:
        recorder.results.append(await engine.run(channel))

    server = FastAgiServer(handle, "127.0.0.1", 0, **server_kw)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


class FakeStore:
    """An in-memory IvrStore with switches for failures (no database: fast engine tests)."""

    def __init__(self, data: dict[str, Any], version: int = 1) -> None:
        from contactcenter.ivr.menu import load_menu
        from contactcenter.ivr.services import ActiveMenu

        self.active: Any = ActiveMenu(1, version, load_menu(data))
        self.closed: set[str] = set()
        self.cases: dict[str, Any] = {}
        self.mine: list[Any] = []
        self.announcement_prompt: dict[str, str] | None = None
        self.fail: set[str] = set()  # method names that raise as if the database were down
        self.requests: list[dict[str, Any]] = []

    def _maybe_fail(self, name: str) -> None:
        if name in self.fail:
            raise ConnectionRefusedError(f"database down ({name})")

    async def active_menu(self) -> Any:
        self._maybe_fail("active_menu")
        return self.active

    async def announcement(self, at: datetime) -> dict[str, str] | None:
        self._maybe_fail("announcement")
        return self.announcement_prompt

    async def queue_open(self, queue: str, at: datetime) -> bool:
        self._maybe_fail("queue_open")
        return queue not in self.closed

    async def find_case(self, keyed: str, caller_number: str | None) -> Any:
        self._maybe_fail("find_case")
        return next((c for n, c in self.cases.items() if n.replace("-", "").endswith(keyed)),
                    None)

    async def open_cases(self, caller_number: str | None, limit: int = 3) -> list[Any]:
        self._maybe_fail("open_cases")
        return self.mine[:limit]

    async def leave_request(self, **kw: Any) -> Any:
        from contactcenter.ivr.services import CaseInfo

        self._maybe_fail("leave_request")
        self.requests.append(kw)
        return CaseInfo("311-2026-000042", "open", None, kw["service"] or "general-inquiry")
