"""What the IVR reads and writes in the store: the active menu, announcements, office hours,
case status self-service, and requests left by phone outside office hours.

The active menu is cached by version: each new call asks the database only which version is
active (one indexed row) and parses the JSON again only when that changed, so a publish reaches
the next call with no restart, while a session in progress keeps the `Menu` it started with.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..bus import BaseBus
from ..cases.citizens import normalize_phone
from ..cases.estimates import Estimates, expected_at
from ..cases.models import Case, Citizen
from ..cases.store import CaseStore, NewCase
from ..queues.directory import QueueDirectory
from ..queues.models import Queue, ServiceType
from .menu import Menu, Prompt, load_menu
from .models import Announcement, MenuVersion
from .prompts import apply_sounds, placeholder_sounds

log = logging.getLogger(__name__)
# a caller keying the last digits of a case: how many of their own open cases are searched
OWN_CASES_SEARCHED = 50
# the default limit of one IVR database call (a caller hears silence meanwhile)
DB_TIMEOUT_SECONDS = 1.5
T = TypeVar("T")

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")



def _log_failed_check(task: asyncio.Task[Any]) -> None:
    """A menu check nobody waited for to the end: its failure is logged, not lost."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("IVR menu check failed: %s", task.exception())

@dataclass(frozen=True, slots=True)
class ActiveMenu:
    id: int
    version: int
    menu: Menu


@dataclass(frozen=True, slots=True)
class CaseInfo:
    number: str
    status: str
    expected: date | None  # when requests like it are done (else the SLA due), center's zone
    service: str | None


def _minutes(hhmm: str) -> int:
    hours, _, minutes = hhmm.partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= 24 * 60:
        raise ValueError(f"{hhmm!r} is not a time of day")
    return value


def is_open(
    office_hours: Mapping[str, Any] | None, holidays: list[Any] | None, timezone: str,
    at: datetime,
) -> bool:
    """Pure: is a queue open at `at`? `office_hours` is {"mon": ["08:00", "17:00"], ...} (or a
    list of such pairs per day); empty means always open; a day not listed is closed. Holidays
    are local dates. Malformed settings count as open: a typo must never close the line."""
    try:
        tz = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        log.error("queue timezone %r is unknown; treating the queue as open", timezone)
        return True
    local = at.astimezone(tz)
    try:
        if holidays and local.date().isoformat() in {str(h) for h in holidays}:
            return False
        if not office_hours:
            return True
        spans = office_hours.get(DAYS[local.weekday()])
        if not spans:
            return False
        if isinstance(spans[0], str):
            spans = [spans]
        now = local.hour * 60 + local.minute
        return any(_minutes(start) <= now < _minutes(end) for start, end in spans)
    except (TypeError, ValueError, IndexError, AttributeError) as exc:
        log.error("malformed office hours %r (%s); treating the queue as open", office_hours, exc)
        return True


def _digits(number: str) -> str:
    return "".join(c for c in number if c.isdigit())


class IvrStoreTimeout(TimeoutError):
    """An IVR database call took longer than its limit (`CC_IVR_DB_TIMEOUT_MS`)."""


class IvrServices:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        general_queue: str = "general-311",
        bus: BaseBus | None = None,
        cache_seconds: float = 2.0,
        menu_freshness: float = 0.2,
        menu_wait: float = 0.3,
        monotonic: Callable[[], float] = time.monotonic,
        queues: QueueDirectory | None = None,
        timezone: str = "UTC",  # the center's: business-hour SLAs of requests left by phone
        db_timeout: float = DB_TIMEOUT_SECONDS,
        estimates: Estimates | None = None,
    ) -> None:
        self._sessions = sessions
        self._timezone = timezone
        self._zone = ZoneInfo(timezone)
        # "expected by" is what requests like it actually take (cases/estimates.py), read from
        # the table as last loaded: the caller never waits on history
        self._estimates = estimates
        # Every call the engine makes (public methods below) gets at most this long; then it
        # raises IvrStoreTimeout and the engine sends the caller to the general queue.
        self.db_timeout = db_timeout
        self.timeouts = 0  # how many calls ran out of time (health, /metrics)
        self.last_timeout: str | None = None
        # The app hands in its directory (reloaded when an admin saves a queue); alone (tools,
        # tests) the IVR keeps one of its own, refreshed like its other short caches.
        self._directory = queues or QueueDirectory(sessions)
        self._own_directory = queues is None
        self._general_queue = general_queue
        self._bus = bus  # for CaseChanged when a caller leaves a request
        self._cache_seconds = cache_seconds
        self._menu_freshness = menu_freshness
        self._monotonic = monotonic
        self._menu: ActiveMenu | None = None
        self._menu_lock = asyncio.Lock()
        self._menu_checked_at = -1e9
        self._menu_wait = menu_wait
        self._menu_check: asyncio.Task[ActiveMenu | None] | None = None
        self._refreshes: dict[str, asyncio.Task[None]] = {}
        self._cache_lock = asyncio.Lock()  # one refresh of the short caches at a time
        self._queues_at = -1e9
        self._announcements: list[Announcement] = []
        self._announcements_at = -1e9

    # --- menu ----------------------------------------------------------------------------------

    async def _active_menu(self) -> ActiveMenu | None:
        """The active version, as of a check that started at most `menu_freshness` seconds
        before this call arrived (0: after it arrived).

        Calls arriving together share one check (the lock, and the start time of the last
        check): under 200 concurrent sessions that is one small query at a time, not 200, and
        with the default 0.2 s a publish reaches every call that starts 0.2 s after it.
        """
        arrived = self._monotonic()
        if self._menu_checked_at >= arrived - self._menu_freshness:
            return self._menu  # fresh enough: no waiting behind a check in flight
        if self._menu is not None:
            # A slow store must not become dead air: wait `menu_wait` at most for the check,
            # then play the menu we have (the check goes on and serves the next calls).
            check = self._menu_check
            if check is None or check.done():
                check = self._menu_check = asyncio.get_running_loop().create_task(
                    self._check_menu(arrived), name="ivr:menu-check")
                check.add_done_callback(_log_failed_check)
            done, _ = await asyncio.wait({check}, timeout=self._menu_wait)
            if done:
                check.result()  # a store that is down (not slow) raises: the engine's fallback
            return self._menu
        return await self._check_menu(arrived)

    async def close(self) -> None:
        """Cancel and await the refreshes still in flight (a hanging store at shutdown)."""
        tasks = [t for t in (self._menu_check, *self._refreshes.values())
                 if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _check_menu(self, arrived: float) -> ActiveMenu | None:
        async with self._menu_lock:
            if self._menu_checked_at >= arrived - self._menu_freshness:
                return self._menu
            started = self._monotonic()
            self._menu = await self._load_active()
            self._menu_checked_at = started
            return self._menu

    async def _load_active(self) -> ActiveMenu | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(MenuVersion.id, MenuVersion.version)
                    .where(MenuVersion.status == "active")
                    .order_by(MenuVersion.version.desc())
                    .limit(1)
                )
            ).first()
            if row is None:
                return None
            cached = self._menu
            if cached is not None and cached.id == row.id:
                return cached
            data, sounds = (
                await session.execute(select(MenuVersion.data, MenuVersion.sounds)
                                      .where(MenuVersion.id == row.id))
            ).one()
        if sounds:  # published with audio: play its sound files, not its words
            data = apply_sounds(data, sounds)
        else:
            data = apply_sounds(data, placeholder_sounds(data))
            log.warning("IVR menu version %d has no published audio: its prompts that are not "
                        "sound file names play 311/<prompt>, which Asterisk will not find "
                        "(publish it again, or run `contactcenter prompts build`)", row.version)
        active = ActiveMenu(row.id, row.version, load_menu(data, self._general_queue))
        log.info("IVR menu version %d is now active", row.version)
        return active

    # --- announcements and office hours (short cache: a change shows within seconds) ----------

    def _stale(self, loaded_at: float) -> bool:
        return self._monotonic() - loaded_at > self._cache_seconds

    def _must_refresh(self, loaded_at: float) -> bool:
        """Stale and nobody is refreshing yet: once loaded, callers keep using the previous
        value (seconds old) while one of them reloads it, instead of all waiting."""
        if not self._stale(loaded_at):
            return False
        return not (self._cache_lock.locked() and loaded_at > -1e9)

    async def _announcement(self, at: datetime) -> Prompt | None:
        if self._must_refresh(self._announcements_at):
            await self._refresh("announcements", lambda: self._load_announcements(at),
                                have=self._announcements_at > -1e9)
        for ann in self._announcements:
            if ann.starts_at <= at < ann.ends_at and ann.prompts:
                if ann.sounds:  # its words spoken (the files written when it was saved)
                    return {str(k): str(v["file"]) for k, v in ann.sounds.items()
                            if isinstance(v, dict) and v.get("file")}
                return {str(k): str(v) for k, v in ann.prompts.items() if v}
        return None

    async def _queue_open(self, queue: str, at: datetime) -> bool:
        if self._own_directory and self._must_refresh(self._queues_at):
            await self._refresh("queues", self._load_queues, have=self._queues_at > -1e9)
        q = self._directory.get(queue)
        if q is None:
            return True  # validation guarantees it exists; never close on a missing row
        return is_open(q.office_hours, list(q.holidays), q.timezone, at)

    async def _refresh(
        self, key: str, load: Callable[[], Coroutine[Any, Any, None]], *, have: bool
    ) -> None:
        """Run `load` once at a time; with a previous value, wait `menu_wait` at most (a slow
        store must not become dead air), and the refresh goes on for the next calls."""
        task = self._refreshes.get(key)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(load(), name=f"ivr:refresh-{key}")
            task.add_done_callback(_log_failed_check)
            self._refreshes[key] = task
        if not have:
            await asyncio.shield(task)
            return
        done, _ = await asyncio.wait({task}, timeout=self._menu_wait)
        if done:
            task.result()

    async def _load_announcements(self, at: datetime) -> None:
        async with self._cache_lock:
            if self._stale(self._announcements_at):  # else refreshed while we waited
                async with self._sessions() as session:
                    rows = (
                        await session.execute(
                            select(Announcement)
                            .where(Announcement.enabled.is_(True), Announcement.ends_at > at)
                            .order_by(Announcement.starts_at.desc())
                        )
                    ).scalars().all()
                self._announcements = list(rows)
                self._announcements_at = self._monotonic()

    async def _load_queues(self) -> None:
        async with self._cache_lock:
            if self._stale(self._queues_at) and await self._directory.load():
                self._queues_at = self._monotonic()

    # --- self-service --------------------------------------------------------------------------

    def _info(self, case: Case, service: str | None) -> CaseInfo:
        when = case.sla_due_at
        if self._estimates is not None and service:
            when, _basis = expected_at(case.created_at, case.sla_due_at, service, None,
                                       self._estimates.peek())
        expected = when.astimezone(self._zone).date() if when else None
        return CaseInfo(case.number, case.status, expected, service)

    async def _find_case(self, keyed: str, caller_number: str | None) -> CaseInfo | None:
        """The case the caller keyed. A whole number (year and sequence, with or without the
        leading 311) finds that case; fewer digits only match the end of one of the caller's own
        open cases, so a short guess never reads out another citizen's case. Both look-ups use
        indexes (the unique number; the citizen's phone), never a scan of every case."""
        keyed = _digits(keyed)
        whole = keyed[3:] if len(keyed) == 13 and keyed.startswith("311") else keyed
        if len(whole) == 10:
            number = f"311-{whole[:4]}-{whole[4:]}"
            async with self._sessions() as session:
                row = (
                    await session.execute(
                        select(Case, ServiceType.code)
                        .join(ServiceType, ServiceType.id == Case.service_type_id)
                        .where(Case.number == number)
                    )
                ).first()
            return None if row is None else self._info(row[0], row[1])
        if len(keyed) < 3:
            return None
        mine = await self._open_cases(caller_number, limit=OWN_CASES_SEARCHED)
        return next((c for c in mine if _digits(c.number).endswith(keyed)), None)

    async def _open_cases(self, caller_number: str | None, limit: int = 3) -> list[CaseInfo]:
        phone = normalize_phone(caller_number)
        if phone is None:
            return []
        # a caller ID may carry the country code the citizen record lacks (1 787... vs 787...)
        variants = {phone, phone[-10:]} if len(phone) > 10 else {phone}
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Case, ServiceType.code)
                    .join(ServiceType, ServiceType.id == Case.service_type_id)
                    .join(Citizen, Citizen.id == Case.citizen_id)
                    .where(Citizen.phone.in_(variants), Case.status != "closed")
                    .order_by(Case.created_at.desc(), Case.id.desc())
                    .limit(limit)
                )
            ).all()
        return [self._info(case, code) for case, code in rows]

    # --- a request left by phone when the office is closed --------------------------------------

    async def _leave_request(
        self,
        *,
        caller_number: str | None,
        caller_name: str | None,
        queue: str,
        service: str | None,
        at: datetime,
        language: str | None = None,
    ) -> CaseInfo:
        """A phone case (through the case store: numbering, citizen matching, audit and the
        `CaseChanged` event are its business) so someone calls the citizen back."""
        code = service or await self._default_service(queue)
        first, _, last = (caller_name or "").partition(" ")
        store = CaseStore(self._sessions, self._bus, clock=lambda: at, timezone=self._timezone)
        view = await store.open_case(
            NewCase(
                service_code=code,
                channel="phone",
                description=(
                    f"Request left by phone outside office hours ({queue}); "
                    f"please call back {normalize_phone(caller_number) or 'unknown number'}."
                ),
                phone=caller_number,
                first_name=first or None,
                last_name=last or None,
                origin={"via": "ivr", "queue": queue},
                language=language,
            ),
            actor="ivr",
        )
        expected = view.sla_due_at.astimezone(self._zone).date() if view.sla_due_at else None
        return CaseInfo(view.number, view.status, expected, view.service_code)

    async def _default_service(self, queue: str) -> str:
        """The service type of a menu option that names only a queue: the queue's first active
        one, else the general inquiry."""
        async with self._sessions() as session:
            code = (
                await session.execute(
                    select(ServiceType.code)
                    .join(Queue, Queue.id == ServiceType.queue_id)
                    .where(ServiceType.active.is_(True), Queue.name == queue)
                    .order_by(ServiceType.id)
                    .limit(1)
                )
            ).scalar_one_or_none()
        return code or "general-inquiry"

    # --- what the engine calls: each with the time limit ---------------------------------------

    async def _limited(self, what: str, work: Awaitable[T]) -> T:
        """`work`, or IvrStoreTimeout after `db_timeout` seconds (the work is cancelled): a
        store busy with history must never keep a caller in silence."""
        try:
            return await asyncio.wait_for(work, self.db_timeout)
        except TimeoutError:
            self.timeouts += 1
            self.last_timeout = what
            log.warning("IVR %s took longer than %.0f ms; the caller goes to an operator",
                        what, self.db_timeout * 1000)
            raise IvrStoreTimeout(f"{what} took longer than "
                                  f"{self.db_timeout * 1000:.0f} ms") from None

    async def active_menu(self) -> ActiveMenu | None:
        return await self._limited("active_menu", self._active_menu())

    async def announcement(self, at: datetime) -> Prompt | None:
        return await self._limited("announcement", self._announcement(at))

    async def queue_open(self, queue: str, at: datetime) -> bool:
        return await self._limited("queue_open", self._queue_open(queue, at))

    async def find_case(self, keyed: str, caller_number: str | None) -> CaseInfo | None:
        return await self._limited("find_case", self._find_case(keyed, caller_number))

    async def open_cases(self, caller_number: str | None, limit: int = 3) -> list[CaseInfo]:
        return await self._limited("open_cases", self._open_cases(caller_number, limit))

    async def leave_request(
        self, *, caller_number: str | None, caller_name: str | None, queue: str,
        service: str | None, at: datetime, language: str | None = None,
    ) -> CaseInfo:
        # if the limit strikes after the commit, the request exists and the caller also
        # reaches an operator: a duplicate a person can merge, never a lost caller
        return await self._limited("leave_request", self._leave_request(
            caller_number=caller_number, caller_name=caller_name, queue=queue,
            service=service, at=at, language=language))
