"""The call-back service: schedules a call when a phone case closes, places due calls through
the PBX, runs the FastAGI script the call reaches, and records every outcome.

A call is "not answered" when no FastAGI session for it arrives within `answer_timeout` of the
Originate: that holds whatever the trunk reports (busy, no answer, congestion, a refused
Originate), so the rule needs no AMI event. Each unanswered attempt is retried after
`retry`, inside the calling hours, until `attempts` calls were placed; then it is given up,
and the row says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.callbacks.models import Callback
from contactcenter.cases.models import Call, Case, Citizen
from contactcenter.cases.store import CaseError, CaseStore
from contactcenter.events import CaseChanged, Event, PbxError
from contactcenter.ivr.channel import CallerHungUp, IvrChannel, PromptMissing
from contactcenter.queues.models import ServiceType

from .policy import (
    ACTIVE,
    CallbackRules,
    after_answer,
    after_no_answer,
    next_slot,
    spoken_number,
    texts,
)

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0
BATCH = 5  # calls placed per tick: a burst of closures never floods the trunk
VARIABLE = "CC_CALLBACK"  # the channel variable carrying the callback's id to the script
ANSWER_WAIT_MS = 6000

Originate = Callable[[str, dict[str, str]], Awaitable[None]]  # (phone number, variables)
Speaker = Callable[[str, str], Awaitable[str]]  # (text, language) -> sound name to play


class Callbacks:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], store: CaseStore,
                 clock: Callable[[], datetime], tz: tzinfo, rules: CallbackRules,
                 originate: Originate, speak: Speaker) -> None:
        self.sessions = sessions
        self.store = store
        self.clock = clock
        self.tz = tz
        self.rules = rules
        self.originate = originate
        self.speak = speak
        self.placed = 0
        self.failures = 0
        self.last_error = ""

    # --- scheduling ---------------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        if isinstance(event, CaseChanged) and event.change == "closed":
            await self.schedule(event.number)

    async def schedule(self, number: str) -> Callback | None:
        """A callback for a case that came in by phone and was closed, when the citizen has a
        phone and no e-mail (an e-mail tells them already) and none is under way."""
        now = self.clock()
        async with self.sessions() as db, db.begin():
            row = (await db.execute(
                select(Case, Citizen).join(Citizen, Citizen.id == Case.citizen_id)
                .where(Case.number == number))).first()
            if row is None:
                return None
            case, citizen = row
            if case.channel != "phone" or case.status != "closed" or not citizen.phone \
                    or citizen.email:
                return None
            active = (await db.execute(select(Callback.id).where(
                Callback.case_id == case.id, Callback.state.in_(ACTIVE)))).first()
            if active is not None:
                return None
            callback = Callback(case_id=case.id, phone=citizen.phone,
                                language=await _language(db, case), state="pending",
                                attempts=0, next_at=next_slot(now, self.rules, self.tz),
                                result="", created_at=now, updated_at=now)
            db.add(callback)
        log.info("call-back of %s to the citizen scheduled for %s", number,
                 callback.next_at.isoformat() if callback.next_at else "?")
        return callback

    # --- placing calls ------------------------------------------------------------------------

    async def tick(self) -> None:
        now = self.clock()
        async with self.sessions() as db, db.begin():
            stale = (await db.execute(select(Callback).where(
                Callback.state == "calling",
                Callback.called_at < now - self.rules.answer_timeout))).scalars().all()
            for cb in stale:
                state, cb.next_at = after_no_answer(cb.attempts, now, self.rules, self.tz)
                cb.state, cb.updated_at = state, now
                cb.result = f"attempt {cb.attempts}: not answered"
            due = (await db.execute(
                select(Callback.id, Callback.phone, Callback.language)
                .where(Callback.state == "pending", Callback.next_at <= now)
                .order_by(Callback.next_at).limit(BATCH))).all()
        placing = []
        for cb_id, phone, language in due:
            # claimed by a guarded update: two bridges (a standby taking over) never both call
            async with self.sessions() as db, db.begin():
                claimed = await db.execute(
                    update(Callback).where(Callback.id == cb_id, Callback.state == "pending")
                    .values(state="calling", attempts=Callback.attempts + 1, called_at=now,
                            updated_at=now))
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                placing.append((cb_id, phone, language))
        for cb_id, phone, language in placing:
            try:
                await self.originate(phone, {VARIABLE: str(cb_id), "LANG": language})
                self.placed += 1
            except PbxError as exc:  # refused at once: the same as not answered, said why
                self.failures += 1
                self.last_error = str(exc)[:200]
                log.warning("call-back %s: the PBX refused the call (%s)", cb_id, exc)
                await self._unanswered(cb_id, f"refused by the PBX: {exc}"[:300])

    async def _unanswered(self, cb_id: int, result: str) -> None:
        now = self.clock()
        async with self.sessions() as db, db.begin():
            cb = await db.get(Callback, cb_id)
            if cb is None or cb.state != "calling":
                return
            cb.state, cb.next_at = after_no_answer(cb.attempts, now, self.rules, self.tz)
            cb.result, cb.updated_at = result, now

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down: try again next tick, say so once
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.warning("call-backs: tick failed (%s)", self.last_error)
            await asyncio.sleep(TICK_SECONDS)

    # --- the call itself (FastAGI script /callback) --------------------------------------------

    async def session(self, channel: IvrChannel) -> None:
        raw = await channel.get_variable(VARIABLE)
        cb_id = int(raw) if raw and raw.isdigit() else None
        async with self.sessions() as db:
            row = None if cb_id is None else (await db.execute(
                select(Callback, Case.number, ServiceType.name, Case.close_reason)
                .join(Case, Case.id == Callback.case_id)
                .join(ServiceType, ServiceType.id == Case.service_type_id)
                .where(Callback.id == cb_id))).first()
        if row is None or row[0].state != "calling":
            log.warning("call-back script reached without a call under way (%s=%r)", VARIABLE,
                        raw)
            await channel.hangup()
            return
        cb, number, service, note = row
        words = texts(cb.language)
        digit = ""
        try:
            await channel.answer()
            await channel.set_language(cb.language)
            await channel.stream_file(await self.speak(words["resolution"].format(
                number=spoken_number(number), service=service, note=note or ""), cb.language))
            question = await self.speak(words["question"], cb.language)
            for _try in range(2):
                digit = (await channel.get_data(question, ANSWER_WAIT_MS, 1)).strip()
                if digit in ("1", "2"):
                    break
        except CallerHungUp:
            await self._record(cb.id, "no_choice", "answered, hung up before choosing")
            return
        except PromptMissing as exc:
            log.error("call-back %s: a prompt could not play (%s)", cb.id, exc)
            await self._record(cb.id, "no_choice", f"prompt missing: {exc}"[:300])
            await channel.hangup()
            return
        state = after_answer(digit)
        result = {"confirmed": "keyed 1: fixed", "reopened": "keyed 2: not fixed"}.get(
            state, "answered, keyed nothing")
        try:  # the case first: the callback's row then says what was done
            if state == "reopened":
                await self.store.reopen(number, actor="citizen", reason=words["reopen_reason"])
            elif state == "confirmed":
                await self.store.add_note(number, words["confirmed_note"], author="citizen")
        except CaseError as exc:  # reopened meanwhile by someone else: the answer is kept
            log.warning("call-back %s: case %s not changed (%s)", cb.id, number, exc)
            result = f"{result}; case not changed: {exc}"[:300]
        await self._record(cb.id, state, result)
        closing = {"confirmed": "thanks_fixed", "reopened": "thanks_reopened"}.get(
            state, "no_choice")
        try:
            await channel.stream_file(await self.speak(words[closing], cb.language))
            await channel.hangup()
        except (CallerHungUp, PromptMissing):
            pass

    async def _record(self, cb_id: int, state: str, result: str) -> None:
        async with self.sessions() as db, db.begin():
            await db.execute(update(Callback).where(Callback.id == cb_id).values(
                state=state, result=result, next_at=None, updated_at=self.clock()))


async def _language(db: AsyncSession, case: Case) -> str:
    """The language the citizen used: the latest call about the case, else the case's."""
    lang = (await db.execute(
        select(Call.language).where(Call.case_id == case.id, Call.language.is_not(None))
        .order_by(Call.started_at.desc()).limit(1))).scalar()
    lang = lang or case.language or "en"
    return lang if lang in ("en", "es") else "en"
