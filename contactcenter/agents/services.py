"""Operator commands and the caller history behind the screen pop.

Handler (parse) -> service (rules, domain errors) -> the `Pbx` gateway (the AMI action). The
state an operator sees comes back from Asterisk as events (see presence.py), not from here.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..cases.citizens import normalize_phone
from ..cases.store import (
    CaseNotFound,
    CaseStore,
    CaseView,
    InvalidCaseData,
    NewCase,
    UnknownServiceType,
    normalize_case_number,
)
from ..events import Pbx, PbxError
from ..queues.languages import member_penalty
from ..web.auth import Principal
from . import presence as P
from . import queries
from .pause_codes import DEFAULTS as DEFAULT_PAUSE_CODES
from .pause_codes import active_codes
from .presence_store import Desired, PresenceStore

log = logging.getLogger(__name__)

# The built-in pause codes; the console offers what admins keep in `pause_codes`.
PAUSE_REASONS: dict[str, str] = DEFAULT_PAUSE_CODES
DISPOSITIONS: dict[str, str] = {
    "resolved": "Resolved on the call",
    "case-created": "Case created",
    "case-updated": "Existing case updated",
    "information": "Information given",
    "transferred": "Transferred",
    "callback": "Call-back needed",
    "wrong-number": "Wrong number / no request",
}
# A repeat caller: this many calls (this one included) within the window.
REPEAT_CALLS = 3
REPEAT_WINDOW = timedelta(days=7)
HISTORY_CACHE = 2_000



EMAIL = re.compile(r"[^@\s<>(),;:\"]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")

class ConsoleError(Exception):
    """A domain error with a message meant for the operator."""


def _pbx_message(action: str, exc: PbxError) -> str:
    return f"The phone system refused to {action}: {exc}. Try again, or ask a supervisor."


@dataclass(slots=True)
class OperatorService:
    """Log in, pause, ready, log out; wrap-up pauses; re-login after an Asterisk restart.

    What each operator asked for (`Desired`: queues, penalty, pause and reason) is kept in
    `logged_in` and, with a `store`, in the database: after Asterisk lost its members, or this
    process lost its memory, every operator is put back as they were (paused ones paused, with
    their reason)."""

    presence: P.Presence
    pbx: Callable[[], Pbx | None]
    # operators logged in (by anyone, with a store), so a restart of Asterisk can be undone
    logged_in: dict[str, Desired] = field(default_factory=dict)
    # interfaces we paused for wrap-up (Asterisk's echo of that pause may still be on its way)
    wrapup_paused: set[str] = field(default_factory=set)
    # CC_ROUTED_LANGUAGES: an operator's memberships get their language band as penalty
    routed_languages: tuple[str, ...] = ()
    store: PresenceStore | None = None
    clock: Callable[[], datetime] | None = None
    store_errors: int = 0
    restoring: set[str] = field(default_factory=set)
    # the pause codes in use (admins edit them: refresh_pause_reasons)
    pause_reasons: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PAUSE_CODES))
    restored: int = 0  # operators put back into Asterisk since start

    def _gateway(self) -> Pbx:
        gw = self.pbx()
        if gw is None:
            raise ConsoleError("The phone system is not connected: presence cannot change now.")
        return gw

    @staticmethod
    def _interface(user: Principal) -> str:
        if not user.interface:
            raise ConsoleError("Your account has no phone (interface): ask an administrator.")
        return user.interface

    async def refresh_pause_reasons(self) -> None:
        """The pause codes admins keep in use (the built-in list without a store)."""
        if self.store is None:
            return
        try:
            self.pause_reasons = await active_codes(self.store.sessions)
        except (SQLAlchemyError, OSError) as exc:  # keep the last list
            log.warning("pause codes not re-read (%r)", exc)

    # --- the durable wish ---------------------------------------------------------------------

    async def load(self) -> int:
        """Read every recorded log-in (at start, and before a restore: another process may
        have logged someone in)."""
        if self.store is None:
            return 0
        try:
            rows = await self.store.load()
        except (SQLAlchemyError, OSError) as exc:
            self.store_errors += 1
            log.warning("presence: the recorded log-ins were not read (%r); using memory", exc)
            return 0
        self.logged_in = {d.interface: d for d in rows}
        return len(rows)

    async def record_wish(self, d: Desired, now: datetime) -> None:
        d.since = now
        if d.logged_in:
            self.logged_in[d.interface] = d
        else:
            self.logged_in.pop(d.interface, None)
        if self.store is None:
            return
        try:
            await self.store.save(d, now)
        except (SQLAlchemyError, OSError) as exc:
            # Asterisk has the change; only its survival of a restart is at risk (counted)
            self.store_errors += 1
            log.warning("presence of %s not recorded (%r)", d.interface, exc)

    def _now(self, now: datetime | None = None) -> datetime:
        if now is not None:
            return now
        if self.clock is not None:
            return self.clock()
        return P.EPOCH

    def mismatches(self, now: datetime, grace: timedelta = timedelta(seconds=15)) -> list[str]:
        """Operators who believe they are logged in, but Asterisk has none of their queues
        (recorded more than `grace` ago: Asterisk's echo of a log-in takes a moment)."""
        out = []
        for interface, d in self.logged_in.items():
            if d.since is not None and now - d.since < grace:
                continue
            present = {m.queue for m in self.presence.view(interface).queues}
            if not present & set(d.queues):
                out.append(interface)
        return sorted(out)

    def observe(self, interface: str, *, live: bool) -> Desired | None:
        """Asterisk reported this operator: a pause or ready made elsewhere (a supervisor, the
        phone) becomes the wish too; all queues removed by a live event (not by a restart's
        empty member list) is a log-out. Returns the wish to save, if it changed."""
        d = self.logged_in.get(interface)
        if d is None or interface in self.restoring:
            return None
        view = self.presence.view(interface)
        if not view.queues:
            if live:
                d.logged_in = False
                return d
            return None
        paused = [m for m in view.queues if m.paused and m.pause_reason != P.WRAPUP_REASON]
        if view.state == P.PAUSED and paused:
            reason = paused[0].pause_reason
            if (d.paused, d.pause_reason) != (True, reason):
                d.paused, d.pause_reason = True, reason
                return d
        elif d.paused and not any(m.paused for m in view.queues):
            d.paused, d.pause_reason = False, None
            return d
        return None

    # --- commands -----------------------------------------------------------------------------

    async def login(self, user: Principal, now: datetime | None = None) -> str:
        interface = self._interface(user)
        if not user.queues:
            raise ConsoleError("Your account is in no queue: ask an administrator.")
        view = self.presence.view(interface)
        present = {m.queue for m in view.queues}
        missing = [q for q in user.queues if q not in present]
        gw = self._gateway()
        penalty = member_penalty(user.languages, self.routed_languages)
        # What we believe may be stale (a restart we did not see, an event dropped): when we
        # think every queue is there, Asterisk is asked anyway and its "Already there" decides.
        asked = missing or list(user.queues)
        added: list[str] = []
        for queue in asked:
            try:
                await gw.queue_add(queue, interface, user.display_name, penalty=penalty)
            except PbxError as exc:
                if "already there" in str(exc).lower():
                    continue
                raise ConsoleError(_pbx_message(f"log you in to {queue}", exc)) from exc
            added.append(queue)
        await self.record_wish(Desired(interface, user.username, user.display_name,
                                 tuple(user.queues), penalty), self._now(now))
        if not added:
            raise ConsoleError("You are already logged in to all your queues.")
        return f"Logging in to {', '.join(added)}."

    async def pause(self, user: Principal, reason: str, now: datetime) -> str:
        interface = self._interface(user)
        if reason not in self.pause_reasons:
            raise ConsoleError(f"Unknown pause reason {reason[:40]!r}.")
        view = self.presence.view(interface)
        if view.state == P.LOGGED_OUT:
            raise ConsoleError("Log in to your queues before pausing.")
        if view.state == P.PAUSED and view.reason == reason:
            raise ConsoleError(f"You are already paused ({self.pause_reasons[reason]}).")
        gw = self._gateway()
        try:
            await gw.queue_pause(interface, True, reason=reason)
        except PbxError as exc:
            raise ConsoleError(_pbx_message("pause you", exc)) from exc
        self.wrapup_paused.discard(interface)
        self.presence.cancel_wrapup(interface, now)
        await self.record_wish(self._wish(user, view, paused=True, reason=reason), now)
        return f"Pausing: {self.pause_reasons[reason]}."

    def _wish(self, user: Principal, view: P.PresenceView, *, paused: bool,
              reason: str | None) -> Desired:
        interface = user.interface or ""
        d = self.logged_in.get(interface)
        if d is None:  # logged in before presence was kept (or by another process, no store)
            d = Desired(interface, user.username, user.display_name,
                        tuple(m.queue for m in view.queues),
                        member_penalty(user.languages, self.routed_languages))
        d.paused, d.pause_reason = paused, reason
        return d

    async def ready(self, user: Principal, now: datetime) -> str:
        interface = self._interface(user)
        view = self.presence.view(interface)
        if view.state == P.LOGGED_OUT:
            raise ConsoleError("Log in to your queues first.")
        paused = any(m.paused for m in view.queues) or interface in self.wrapup_paused
        if not paused and view.state != P.WRAPUP:
            raise ConsoleError("You are already ready.")
        if paused:
            gw = self._gateway()
            try:
                await gw.queue_pause(interface, False)
            except PbxError as exc:
                raise ConsoleError(_pbx_message("make you ready", exc)) from exc
        self.wrapup_paused.discard(interface)
        self.presence.ready(interface, now)
        await self.record_wish(self._wish(user, view, paused=False, reason=None), now)
        return "Ready for calls."

    async def logout(self, user: Principal, now: datetime) -> str:
        interface = self._interface(user)
        view = self.presence.view(interface)
        if view.state == P.LOGGED_OUT:
            d = self.logged_in.get(interface)
            if d is not None:  # Asterisk lost them; the wish goes too
                d.logged_in = False
                await self.record_wish(d, now)
                return "Logged out."
            raise ConsoleError("You are not logged in to any queue.")
        if view.state in (P.ON_CALL, P.RINGING):
            raise ConsoleError("Finish the call before logging out.")
        gw = self._gateway()
        d = self._wish(user, view, paused=False, reason=None)
        d.logged_in = False
        await self.record_wish(d, now)
        for m in view.queues:
            try:
                await gw.queue_remove(m.queue, interface)
            except PbxError as exc:
                raise ConsoleError(_pbx_message(f"log you out of {m.queue}", exc)) from exc
        self.wrapup_paused.discard(interface)
        self.presence.cancel_wrapup(interface, now)
        return "Logging out."

    # --- reactions to events (no operator behind them) ----------------------------------------

    async def wrapup_started(self, interface: str) -> None:
        """Keep Asterisk from ringing an operator during after-call work."""
        view = self.presence.view(interface)
        gw = self.pbx()
        if gw is None or not view.queues or all(m.paused for m in view.queues):
            return
        try:
            await gw.queue_pause(interface, True, reason=P.WRAPUP_REASON)
        except PbxError as exc:
            log.warning("could not pause %s for wrap-up: %s", interface, exc)
            return
        self.wrapup_paused.add(interface)

    async def wrapup_ended(self, interface: str) -> None:
        view = self.presence.view(interface)
        gw = self.pbx()
        ours = interface in self.wrapup_paused
        self.wrapup_paused.discard(interface)
        if gw is None or not (ours or any(m.pause_reason == P.WRAPUP_REASON
                                          for m in view.queues)):
            return
        try:
            await gw.queue_pause(interface, False)
        except PbxError as exc:
            log.warning("could not end the wrap-up pause of %s: %s", interface, exc)

    async def restore_logins(
        self, once: Callable[[str], Awaitable[bool]] | None = None, tag: str = "",
    ) -> list[str]:
        """After a resync: operators logged in whom Asterisk no longer has (it restarted
        without persistent members) are added back with their penalty, and paused ones paused
        with their reason. `once` (the bus's claim) makes one process of several do it."""
        gw = self.pbx()
        restored: list[str] = []
        if gw is None:
            return restored
        await self.load()
        for interface, login in list(self.logged_in.items()):
            present = {m.queue for m in self.presence.view(interface).queues}
            missing = [q for q in login.queues if q not in present]
            if not missing or len(missing) != len(login.queues):
                continue  # still (partly) there: nothing was lost
            if once is not None and not await once(f"restore:{interface}:{tag}"):
                continue
            # Asterisk's echoes of the steps below (paused without a reason first) are not
            # the operator's wish: `observe` leaves it alone meanwhile
            self.restoring.add(interface)
            paused, reason = login.paused, login.pause_reason or ""
            try:
                for queue in missing:
                    try:
                        # paused from the start: never one call offered between add and pause
                        await gw.queue_add(queue, interface, login.member_name,
                                           penalty=login.penalty, paused=paused)
                        if paused:
                            await gw.queue_pause(interface, True, queue=queue, reason=reason)
                    except PbxError as exc:
                        log.warning("could not log %s back in to %s: %s", interface, queue,
                                    exc)
            finally:
                self.restoring.discard(interface)
            restored.append(interface)
        self.restored += len(restored)
        return restored


# --- caller history ------------------------------------------------------------------------------


class CallerHistory:
    """The pop's history, queried once per call: a ringall pop to several operators shares one
    query (the first asker's task; the others await it)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], size: int = HISTORY_CACHE,
                 *, timezone: str = "UTC"):
        self.sessions = sessions
        self.size = size
        self.timezone = timezone  # the center's: business-hour SLA states of the cases
        self._cache: OrderedDict[str, asyncio.Task[dict[str, Any]]] = OrderedDict()
        self.queries = 0

    async def get(self, call_id: str, *, caller_number: str | None, linkedid: str,
                  case_number: str | None, now: datetime) -> dict[str, Any]:
        task = self._cache.get(call_id)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.get_running_loop().create_task(
                self._load(caller_number, linkedid, case_number, now), name=f"history:{call_id}"
            )
            self._cache[call_id] = task
            while len(self._cache) > self.size:
                _, old = self._cache.popitem(last=False)
                if not old.done():
                    self._cache[call_id] = task  # never evict one still running; stop here
                    break
        # shield: one waiter's cancellation (a closed socket) must not cancel the shared query
        return await asyncio.shield(task)

    def forget(self, call_id: str) -> None:
        task = self._cache.pop(call_id, None)
        if task is not None and not task.done():
            task.cancel()

    async def close(self) -> None:
        tasks = list(self._cache.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # failures were logged by waiters
        self._cache.clear()

    async def _load(self, caller_number: str | None, linkedid: str, case_number: str | None,
                    now: datetime) -> dict[str, Any]:
        self.queries += 1
        out: dict[str, Any] = {"calls": [], "cases": [], "recent_calls": 1, "repeat": False,
                               "keyed_case": None}
        async with self.sessions() as db:
            if caller_number and normalize_phone(caller_number):
                out["calls"] = await queries.last_calls(db, caller_number,
                                                        exclude_linkedid=linkedid)
                recent = await queries.calls_since(db, caller_number, now - REPEAT_WINDOW,
                                                   exclude_linkedid=linkedid)
                out["recent_calls"] = recent + 1  # this call
                out["repeat"] = recent + 1 >= REPEAT_CALLS
                out["cases"] = await queries.open_cases(db, caller_number, now=now,
                                                        timezone=self.timezone)
            if case_number:
                out["keyed_case"] = await queries.case_by_number(
                    db, case_number[:40], now=now, timezone=self.timezone)
        return out


# --- working the call ----------------------------------------------------------------------------

PENDING_TTL = timedelta(hours=2)
ENDED_KEPT = 10_000


@dataclass(slots=True)
class _Pending:
    server: str
    linkedid: str
    since: datetime
    values: dict[str, Any] = field(default_factory=dict)
    ended: bool = False


class CallWork:
    """Cases, notes and dispositions from the console, written through the store at once.

    What belongs on the call's record (case link, disposition, wrap-up time) waits in memory
    when the record is not written yet (the call is still going on), and is applied once the
    call has ended and its record exists."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], store: CaseStore) -> None:
        self.sessions = sessions
        self.store = store
        self.pending: dict[str, _Pending] = {}
        # calls whose CallEnded was seen: data kept after that can be applied at the next flush
        self.ended: OrderedDict[str, None] = OrderedDict()
        self._flushing = asyncio.Lock()

    async def create_case(
        self, user: Principal, *, call_id: str, server: str, linkedid: str,
        caller_number: str | None, caller_name: str | None, service: str, address: str,
        description: str, now: datetime, language: str | None = None, email: str = "",
    ) -> CaseView:
        email = email.strip()
        # the caller's e-mail, when they give one, is where the agency's updates go
        if email and not EMAIL.fullmatch(email):
            raise ConsoleError(f"That e-mail address does not look right: {email[:80]!r}.")
        data = NewCase(service_code=service, channel="phone", description=description,
                       address=address or None, phone=caller_number, email=email or None,
                       origin={"call": call_id}, language=language)
        try:
            case = await self.store.open_case(data, actor=user.username)
        except UnknownServiceType:
            raise ConsoleError(f"Unknown service type {service[:80]!r}.") from None
        except InvalidCaseData as exc:
            raise ConsoleError(f"The case was not opened: {exc}.") from None
        await self.set_on_call(call_id=call_id, server=server, linkedid=linkedid, now=now,
                               case_id=case.id, citizen_id=case.citizen_id)
        return case

    async def add_note(self, user: Principal, *, number: str, body: str,
                       now: datetime) -> CaseView:
        # the number as the caller read it out: "2026-423", without dashes...
        number = normalize_case_number(number) or number
        try:
            case = await self.store.add_note(number, body, author=user.username)
        except CaseNotFound:
            raise ConsoleError(f"No case {number[:40]!r}.") from None
        except InvalidCaseData as exc:
            raise ConsoleError(f"The note was not added: {exc}.") from None
        return case

    async def set_on_call(self, *, call_id: str, server: str, linkedid: str, now: datetime,
                          **values: Any) -> bool:
        """Disposition or wrap-up time on the record; True when written now."""
        async with self.sessions() as db, db.begin():
            done = await queries.link_call(db, server=server, linkedid=linkedid,
                                           tz=ZoneInfo(self.store.tz), **values)
        if not done:
            self._keep(call_id, server, linkedid, now, **values)
        return done

    def call_ended(self, call_id: str) -> None:
        self.ended[call_id] = None
        while len(self.ended) > ENDED_KEPT:
            self.ended.popitem(last=False)
        p = self.pending.get(call_id)
        if p is not None:
            p.ended = True

    async def flush(self, now: datetime) -> int:
        """Apply what waits for ended calls whose record is now written."""
        async with self._flushing:  # the ticker and a command may both flush
            return await self._flush(now)

    async def _flush(self, now: datetime) -> int:
        ready: list[tuple[str, _Pending, dict[str, Any]]] = []
        for call_id, p in list(self.pending.items()):
            if now - p.since > PENDING_TTL:
                log.warning("call %s never got a record: dropped console data %s", call_id,
                            p.values)
                del self.pending[call_id]
                continue
            if p.ended:
                # a copy: more may arrive while this write is in flight
                ready.append((call_id, p, dict(p.values)))
        if not ready:
            return 0
        # One transaction for all of them: a commit per call was half of a busy embedded
        # process's time in a burst of call ends (issue 10).
        async with self.sessions() as db, db.begin():
            done = [await queries.link_call(db, server=p.server, linkedid=p.linkedid,
                                           tz=ZoneInfo(self.store.tz), **values)
                    for _, p, values in ready]
        written = 0
        for (call_id, p, values), ok in zip(ready, done, strict=True):
            if not ok:
                continue
            written += 1
            for key, value in values.items():
                if p.values.get(key) == value:
                    del p.values[key]
            if not p.values:
                self.pending.pop(call_id, None)
        return written

    def later(self, *, call_id: str, server: str, linkedid: str, now: datetime,
              **values: Any) -> None:
        """Figures nobody waits for (the wrap-up time): written with the next flush, in one
        transaction with the others."""
        self._keep(call_id, server, linkedid, now, **values)

    def _keep(self, call_id: str, server: str, linkedid: str, now: datetime,
              **values: Any) -> None:
        p = self.pending.setdefault(call_id, _Pending(server, linkedid, now))
        p.ended = p.ended or call_id in self.ended
        p.values.update({k: v for k, v in values.items() if v is not None})
