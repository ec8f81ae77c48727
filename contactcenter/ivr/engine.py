"""The IVR engine: plays the active menu version over an `IvrChannel`.

In order: answer, language choice, the announcement of the day, the menu tree (with office hours
checked for the queue the caller picks; the menu's rules are `steps.steps`, the pure walker the
editor's preview drives too), then channel variables for the dialplan: `QUEUE`,
`SERVICE`, `CASE`, `LANG` (the caller goes to `Queue(${QUEUE})`), or `IVROUTCOME=self_served`
when the IVR served the caller and hangs up itself, or `TRANSFER` for an outside number.
`IVROUTCOME=self_served` is set as soon as a self-service step is done (the case status said),
so a caller who hangs up during the offers after it counts as served (the IVR containment
report, supervisor/containment.py); it is emptied again if the caller then asks for an operator
or the session falls back to the general queue (the dialplan ends the call when it is set).

The trace (issue 17): `LANG` is set as soon as the language is settled and `IVRPATH` after each
choice, so the call record keeps both even when the caller hangs up mid-menu. `IVRPATH` is the
keys in order, comma-separated (the AMI bridge splits it into `CallRecord.ivr_path`):
`node:key` per choice (`lang` for the language menu, `-` for no key, `case` for a keyed case
number), then where the caller went (a queue name, `self_served`, `closed`, `transfer`), e.g.
`lang:2,main:1,sanitation`; at most `TRACE_MAX` characters, the middle cut as `..`.

No dead air: any exception (a database or Redis failure, a bug) ends with `QUEUE` set to the
general queue and the error logged; a caller hang-up at any step ends the session quietly.
A prompt that cannot be played (`PromptMissing`: Asterisk said -1 but the channel is up) is an
error of the recordings: logged, counted for /health, and the caller goes to the general queue,
except for prompts that ask nothing and carry nothing the caller came for (the announcement of
the day, "invalid input", goodbye): those are skipped and the menu goes on.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ..events import Event, IvrChoice
from .channel import CallerHungUp, IvrChannel, PromptMissing
from .menu import Action, Menu, Node, Prompt
from .services import ActiveMenu, CaseInfo
from .steps import Announce, Ask, Choice, End, Language, Play, steps

log = logging.getLogger(__name__)

TRACE_MAX = 200  # characters of IVRPATH: a channel variable, shown whole on the console
_TRACE_ITEM_MAX = 40  # the console shows at most 40 characters of an item
_TRACE_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/-]")  # "," separates items; no quotes or spaces
MISSING_PROMPT_WINDOW = 300.0  # seconds a missing prompt keeps /health degraded


def trace_value(items: list[str]) -> str:
    """IVRPATH from the trace items: comma-separated, each item cleaned and capped; over
    `TRACE_MAX` the first item (the language) and the latest ones are kept, joined by `..`."""
    clean = [_TRACE_UNSAFE.sub("_", item)[:_TRACE_ITEM_MAX] for item in items]
    value = ",".join(clean)
    if len(value) <= TRACE_MAX:
        return value
    head, tail = clean[0], clean[1:]
    while tail and len(",".join([head, "..", *tail])) > TRACE_MAX:
        tail.pop(0)
    return ",".join([head, "..", *tail])[:TRACE_MAX]


class IvrStore(Protocol):
    """What the engine reads and writes (implemented by `services.IvrServices`)."""

    async def active_menu(self) -> ActiveMenu | None: ...

    async def announcement(self, at: datetime) -> Prompt | None: ...

    async def queue_open(self, queue: str, at: datetime) -> bool: ...

    async def find_case(self, keyed: str, caller_number: str | None) -> CaseInfo | None: ...

    async def open_cases(self, caller_number: str | None, limit: int = 3) -> list[CaseInfo]: ...

    async def leave_request(
        self, *, caller_number: str | None, caller_name: str | None, queue: str,
        service: str | None, at: datetime, language: str | None = None,
    ) -> CaseInfo: ...


Publish = Callable[[Event], Awaitable[None]]


@dataclass(slots=True)
class IvrResult:
    """How a session ended (returned for tests, logs and the health page)."""

    outcome: str = "hangup"  # queued, self_served, closed, transfer, fallback, hangup
    queue: str | None = None
    service: str | None = None
    language: str | None = None
    case_number: str | None = None
    transfer: str | None = None
    menu_version: int | None = None
    path: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Exit:
    kind: str  # queued, self_served, closed, transfer
    queue: str | None = None
    service: str | None = None
    number: str | None = None


class _Call:
    def __init__(self, channel: IvrChannel) -> None:
        self.channel = channel
        self.info = channel.info
        self.menu: Menu | None = None
        self.lang: str | None = None
        self.trace: list[str] = []  # IVRPATH items
        self.result = IvrResult()
        self.served_early = False  # IVROUTCOME=self_served set before the session's end


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


class IvrEngine:
    def __init__(
        self,
        store: IvrStore,
        publish: Publish,
        *,
        general_queue: str = "general-311",
        server: str = "default",
        clock: Callable[[], datetime],
        queue_timeout: Callable[[str], int] | None = None,
    ) -> None:
        self._store = store
        self._publish = publish
        self._general_queue = general_queue
        self._server = server
        self._clock = clock
        # a queue's own maximum wait (seconds; 0: the dialplan's default), handed to the
        # dialplan as QUEUE_TIMEOUT for Queue()'s timeout argument
        self._queue_timeout = queue_timeout
        self.sessions = 0
        self.fallbacks = 0
        self.last_error: str | None = None
        self.missing_prompts = 0
        self.last_missing_prompt: str | None = None
        self._missing_at: float | None = None  # time.monotonic() of the latest one

    def prompts_failing(self, within: float = MISSING_PROMPT_WINDOW) -> bool:
        """True while a prompt went missing within the last `within` seconds."""
        return self._missing_at is not None and time.monotonic() - self._missing_at < within

    def _prompt_missing(self, call: _Call, exc: PromptMissing, *, skipped: bool) -> None:
        self.missing_prompts += 1
        self.last_missing_prompt = exc.file
        self._missing_at = time.monotonic()
        log.error("IVR session %s: prompt %r could not be played (missing or unplayable sound "
                  "file, channel still up); %s", call.info.uniqueid, exc.file,
                  "skipped it" if skipped else f"sending the caller to {self._general_queue}")

    # --- one call ------------------------------------------------------------------------------

    async def run(self, channel: IvrChannel) -> IvrResult:
        call = _Call(channel)
        self.sessions += 1
        try:
            await channel.answer()
            active = await self._store.active_menu()
            if active is None:
                raise LookupError("no active IVR menu version")
            call.menu = active.menu
            call.result.menu_version = active.version
            exit_ = await self._walk(call)
            await self._finish(call, exit_)
        except PromptMissing as exc:
            self.fallbacks += 1
            self._prompt_missing(call, exc, skipped=False)
            call.result.error = f"missing prompt {exc.file}"[:300]
            await self._fallback(call)
        except CallerHungUp as exc:
            call.result.outcome = "hangup"
            if not exc.confirmed:
                # an ANSWER that failed without a hang-up: if the caller is in fact still
                # there, they must land in a queue rather than in silence.
                await self._fallback(call, quiet=True)
        except Exception as exc:
            self.fallbacks += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            call.result.error = self.last_error
            log.exception("IVR session %s failed; sending the caller to %s",
                          call.info.uniqueid, self._general_queue)
            await self._fallback(call)
        return call.result

    async def _fallback(self, call: _Call, *, quiet: bool = False) -> None:
        channel = call.channel
        try:
            if call.served_early:  # the dialplan would end the call instead of queueing it
                await self._unserve(call)
            await channel.set_variable("QUEUE", self._general_queue)
            call.result.outcome, call.result.queue = "fallback", self._general_queue
            await channel.set_variable("LANG", call.lang or call.info.language or "en")
            await self._trace(call, self._general_queue)
            await channel.verbose("ivr fallback to the general queue" if not quiet
                                  else "ivr done", 1)
        except CallerHungUp:
            call.result.outcome = "hangup"
        except Exception:
            log.exception("IVR session %s: could not even set the fallback queue",
                          call.info.uniqueid)

    async def _serve(self, call: _Call) -> None:
        """A self-service step is done: the record says so even if the caller hangs up now."""
        await call.channel.set_variable("IVROUTCOME", "self_served")
        call.served_early = True

    async def _unserve(self, call: _Call) -> None:
        await call.channel.set_variable("IVROUTCOME", "")
        call.served_early = False

    async def _trace(self, call: _Call, item: str) -> None:
        call.trace.append(item)
        await call.channel.set_variable("IVRPATH", trace_value(call.trace))

    async def _optional(self, call: _Call, prompt: Prompt | None) -> None:
        """Play a prompt the call can do without: a missing one is counted and skipped."""
        try:
            await self._play(call, prompt)
        except PromptMissing as exc:
            self._prompt_missing(call, exc, skipped=True)

    async def _choice(
        self, call: _Call, node: str, digit: str, action: str, *, queue: str | None = None,
        service: str | None = None,
    ) -> None:
        call.result.path.append(f"{node}:{digit or '-'}:{action}")
        # the trace keeps the keys: a choice made without one (after retries, a case's
        # status) shows in where the caller went; a keyed case number only as "case"
        if action in ("case_number", "case_not_found"):
            item = None if action == "case_not_found" else f"{node}:case"
        elif digit or action == "timeout":
            item = f"{'lang' if node == 'language' else node}:{digit or '-'}"
        else:
            item = None
        await self._publish(IvrChoice(
            server=self._server,
            uniqueid=call.info.uniqueid,
            node=node,
            digit=digit,
            action=action,
            at=self._clock(),
            language=call.lang,
            service=service,
            queue=queue,
            case_number=call.result.case_number,
            menu_version=call.result.menu_version,
        ))
        if item is not None:
            await self._trace(call, item)

    def _prompt(self, call: _Call, prompt: Prompt | None) -> str | None:
        assert call.menu is not None and call.lang is not None
        return call.menu.prompt(prompt, call.lang)

    async def _play(self, call: _Call, prompt: Prompt | None, escape: str = "") -> str:
        file = self._prompt(call, prompt)
        return await call.channel.stream_file(file, escape) if file else ""

    # --- steps ---------------------------------------------------------------------------------

    async def _walk(self, call: _Call) -> _Exit:
        """Drive the shared walker (`steps.steps`, also the editor's preview) over the channel."""
        menu, channel = call.menu, call.channel
        assert menu is not None
        walker = steps(menu)
        keys: str | None = None
        while True:
            try:
                step = walker.send(keys)
            except StopIteration as stop:
                end: End = stop.value
                break
            keys = None
            if isinstance(step, Ask):
                keys = await channel.get_data(step.file, step.timeout_ms, step.max_digits)
            elif isinstance(step, Play):
                if step.what == "invalid input":
                    try:  # the menu is asked again right after: nothing is lost
                        await channel.stream_file(step.file)
                    except PromptMissing as exc:
                        self._prompt_missing(call, exc, skipped=True)
                else:
                    await channel.stream_file(step.file)
            elif isinstance(step, Choice):
                await self._choice(call, step.node, step.digit, step.action, queue=step.queue,
                                   service=step.service)
            elif isinstance(step, Language):
                call.lang = call.result.language = step.language
                if step.language != call.info.language:
                    await channel.set_language(step.language)
                # now, not only at the end: a caller who hangs up mid-menu keeps a language
                await channel.set_variable("LANG", step.language)
            elif isinstance(step, Announce):
                prompt = await self._store.announcement(self._clock())
                if prompt:
                    await self._optional(call, prompt)
        action = end.action
        if action.kind == "queue":
            return await self._to_queue(call, action)
        if action.kind == "case_status":
            return await self._case_status(call, action, end.node)
        if action.kind == "transfer_external" and action.number:
            return _Exit("transfer", number=action.number)
        return _Exit("self_served")  # message_hangup, or a transfer with no number

    async def _to_queue(self, call: _Call, action: Action) -> _Exit:
        assert action.queue and call.menu is not None
        queue, service = action.queue, action.service
        if await self._store.queue_open(queue, self._clock()):
            return _Exit("queued", queue, service)
        menu, channel = call.menu, call.channel
        await self._play(call, menu.prompts.get("closed_prompt"))
        leave = self._prompt(call, menu.prompts.get("leave_request_prompt"))
        if not leave:
            await self._choice(call, "closed", "", f"closed:{queue}", queue=queue)
            return _Exit("closed", queue, service)
        digit = await channel.get_data(leave, 5000, 1)
        if digit != "1":
            await self._choice(call, "closed", digit, f"closed:{queue}", queue=queue)
            return _Exit("closed", queue, service)
        case = await self._store.leave_request(
            caller_number=call.info.caller_number, caller_name=call.info.caller_name,
            queue=queue, service=service, at=self._clock(), language=call.lang,
        )
        call.result.case_number = case.number
        await self._choice(call, "closed", digit, "leave_request", queue=queue,
                           service=case.service)
        await self._play(call, menu.prompts.get("request_taken_prompt"))
        await channel.say_digits(_digits(case.number)[-6:])
        return _Exit("self_served", queue, case.service)

    async def _case_status(self, call: _Call, action: Action, node: Node) -> _Exit:
        channel = call.channel
        timeout = action.timeout_ms or node.timeout_ms
        operator = action.operator or Action(kind="queue", queue=self._general_queue)
        case: CaseInfo | None = None
        if self._prompt(call, action.prompts.get("open_case_prompt")):
            mine = await self._store.open_cases(call.info.caller_number)
            if mine:
                # "press 1 for the status of your request ending in 4 2 3"
                offer = mine[0]
                digit = await self._play(call, action.prompts.get("open_case_prompt"), "12")
                if not digit:
                    digit = await channel.say_digits(_digits(offer.number)[-3:], "12")
                other = self._prompt(call, action.prompts.get("other_case_prompt"))
                if not digit and other:
                    digit = await channel.get_data(other, timeout, 1)
                await self._choice(call, node.id, digit,
                                   "open_case" if digit == "1" else "other_case")
                if digit == "1":
                    case = offer
        if case is None:
            keyed = ""
            prompt = self._prompt(call, action.prompt) or ""
            for _ in range(node.retries):
                keyed = await channel.get_data(prompt, timeout, action.max_digits)
                if keyed:
                    break
            await self._choice(call, node.id, keyed, "case_number" if keyed else "timeout")
            if not keyed:
                return await self._to_queue(call, operator)
            if action.readback:
                await channel.say_digits(keyed)
            case = await self._store.find_case(keyed, call.info.caller_number)
            if case is None:
                await self._play(call, action.prompts.get("not_found_prompt"))
                await self._choice(call, node.id, keyed, "case_not_found")
                return await self._to_queue(call, operator)
        call.result.case_number = case.number
        await self._choice(call, node.id, "", f"case_status:{case.status}",
                           service=case.service)
        # waiting on the caller (cases/sla.py): said as "in progress" unless the menu has its
        # own prompt, and without an expected date (its SLA clock is stopped)
        waiting = case.status == "waiting_citizen"
        await self._play(call, action.status_prompts.get(case.status) or (
            action.status_prompts.get("in_progress") if waiting else None))
        await self._serve(call)  # the caller has heard the status of their case
        if case.expected and case.status not in ("closed", "waiting_citizen") and self._prompt(
                call, action.prompts.get("expected_prompt")):
            await self._play(call, action.prompts.get("expected_prompt"))
            await channel.stream_file(f"digits/mon-{case.expected.month - 1}")
            await channel.say_number(case.expected.day)
        offer_operator = self._prompt(call, action.prompts.get("operator_prompt"))
        if offer_operator:
            digit = await channel.get_data(offer_operator, timeout, 1)
            if digit == "0":
                await self._unserve(call)  # on to an operator: the queue decides how it ends
                await self._choice(call, node.id, digit, operator.describe(),
                                   queue=operator.queue, service=operator.service)
                return await self._to_queue(call, operator)
        return _Exit("self_served")

    async def _finish(self, call: _Call, exit_: _Exit) -> None:
        channel, result = call.channel, call.result
        assert call.menu is not None and call.lang is not None
        result.service = exit_.service
        if exit_.kind == "queued":
            assert exit_.queue
            result.outcome, result.queue = "queued", exit_.queue
            await self._trace(call, exit_.queue)
            await channel.set_variable("QUEUE", exit_.queue)
            wait = self._queue_timeout(exit_.queue) if self._queue_timeout else 0
            if wait > 0:
                await channel.set_variable("QUEUE_TIMEOUT", str(wait))
            if exit_.service:
                await channel.set_variable("SERVICE", exit_.service)
            if result.case_number:
                await channel.set_variable("CASE", result.case_number)
            await channel.set_variable("LANG", call.lang)
            await channel.verbose("ivr done", 1)
            return
        if exit_.kind == "transfer":
            assert exit_.number
            result.outcome, result.transfer = "transfer", exit_.number
            await self._trace(call, "transfer")
            await channel.set_variable("TRANSFER", exit_.number)
            await channel.set_variable("LANG", call.lang)
            await channel.verbose("ivr done", 1)
            return
        # the IVR ends the call itself: served (self_served) or the office is closed (closed)
        result.outcome = exit_.kind
        await self._trace(call, exit_.kind)
        await channel.set_variable("IVROUTCOME", exit_.kind)
        if result.case_number:
            await channel.set_variable("CASE", result.case_number)
        await channel.set_variable("LANG", call.lang)
        await self._optional(call, call.menu.prompts.get("goodbye_prompt"))
        await channel.hangup()
