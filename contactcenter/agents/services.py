"""Operator commands and the caller history behind the screen pop.

Handler (parse) -> service (rules, domain errors) -> the `Pbx` gateway (the AMI action). The
state an operator sees comes back from Asterisk as events (see presence.py), not from here.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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
from ..web.auth import Principal
from . import presence as P
from . import queries

log = logging.getLogger(__name__)

PAUSE_REASONS: dict[str, str] = {
    "break": "Break",
    "lunch": "Lunch",
    "training": "Training",
    "case-work": "Case work",
}
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


class ConsoleError(Exception):
    """A domain error with a message meant for the operator."""


def _pbx_message(action: str, exc: PbxError) -> str:
    return f"The phone system refused to {action}: {exc}. Try again, or ask a supervisor."


@dataclass(slots=True)
class _Login:
    member_name: str
    queues: tuple[str, ...]


@dataclass(slots=True)
class OperatorService:
    """Log in, pause, ready, log out; wrap-up pauses; re-login after an Asterisk restart."""

    presence: P.Presence
    pbx: Callable[[], Pbx | None]
    # interfaces this process logged in, so a restart of Asterisk (members gone) can be undone
    logged_in: dict[str, _Login] = field(default_factory=dict)
    # interfaces we paused for wrap-up (Asterisk's echo of that pause may still be on its way)
    wrapup_paused: set[str] = field(default_factory=set)

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

    async def login(self, user: Principal) -> str:
        interface = self._interface(user)
        if not user.queues:
            raise ConsoleError("Your account is in no queue: ask an administrator.")
        view = self.presence.view(interface)
        present = {m.queue for m in view.queues}
        missing = [q for q in user.queues if q not in present]
        if not missing:
            raise ConsoleError("You are already logged in to all your queues.")
        gw = self._gateway()
        self.logged_in[interface] = _Login(user.display_name, tuple(user.queues))
        for queue in missing:
            try:
                await gw.queue_add(queue, interface, user.display_name)
            except PbxError as exc:
                raise ConsoleError(_pbx_message(f"log you in to {queue}", exc)) from exc
        return f"Logging in to {', '.join(missing)}."

    async def pause(self, user: Principal, reason: str, now: datetime) -> str:
        interface = self._interface(user)
        if reason not in PAUSE_REASONS:
            raise ConsoleError(f"Unknown pause reason {reason[:40]!r}.")
        view = self.presence.view(interface)
        if view.state == P.LOGGED_OUT:
            raise ConsoleError("Log in to your queues before pausing.")
        if view.state == P.PAUSED and view.reason == reason:
            raise ConsoleError(f"You are already paused ({PAUSE_REASONS[reason]}).")
        gw = self._gateway()
        try:
            await gw.queue_pause(interface, True, reason=reason)
        except PbxError as exc:
            raise ConsoleError(_pbx_message("pause you", exc)) from exc
        self.wrapup_paused.discard(interface)
        self.presence.cancel_wrapup(interface, now)
        return f"Pausing: {PAUSE_REASONS[reason]}."

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
        return "Ready for calls."

    async def logout(self, user: Principal, now: datetime) -> str:
        interface = self._interface(user)
        view = self.presence.view(interface)
        if view.state == P.LOGGED_OUT:
            raise ConsoleError("You are not logged in to any queue.")
        if view.state in (P.ON_CALL, P.RINGING):
            raise ConsoleError("Finish the call before logging out.")
        gw = self._gateway()
        self.logged_in.pop(interface, None)
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

    async def restore_logins(self) -> list[str]:
        """After a resync: operators this process logged in whom Asterisk no longer has (it
        restarted without persistent members) are added back."""
        gw = self.pbx()
        restored: list[str] = []
        if gw is None:
            return restored
        for interface, login in list(self.logged_in.items()):
            present = {m.queue for m in self.presence.view(interface).queues}
            missing = [q for q in login.queues if q not in present]
            if len(missing) != len(login.queues):
                continue  # still (partly) there: nothing was lost
            for queue in missing:
                try:
                    await gw.queue_add(queue, interface, login.member_name)
                except PbxError as exc:
                    log.warning("could not log %s back in to %s: %s", interface, queue, exc)
            restored.append(interface)
        return restored


# --- caller history ------------------------------------------------------------------------------


class CallerHistory:
    """The pop's history, queried once per call: a ringall pop to several operators shares one
    query (the first asker's task; the others await it)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], size: int = HISTORY_CACHE):
        self.sessions = sessions
        self.size = size
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
                out["cases"] = await queries.open_cases(db, caller_number)
            if case_number:
                out["keyed_case"] = await queries.case_by_number(db, case_number[:40])
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
        description: str, now: datetime,
    ) -> CaseView:
        data = NewCase(service_code=service, channel="phone", description=description,
                       address=address or None, phone=caller_number,
                       origin={"call": call_id})
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
            done = await queries.link_call(db, server=server, linkedid=linkedid, **values)
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
            done = [await queries.link_call(db, server=p.server, linkedid=p.linkedid, **values)
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
