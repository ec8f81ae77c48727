"""What an operator's console may ask: one table from message type to its fields and its handler.

A message is parsed against its row (`parse_command`: bad input is a `BadMessage` whose text is
meant for a person, one line) and run by the row's handler, which answers with a short message
for the operator or raises `ConsoleError`. A type without a row is unknown; there is no other way
in, so the parser and the handlers cannot disagree.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..web.auth import Principal
from .pops import CallView
from .services import DISPOSITIONS, ConsoleError

if TYPE_CHECKING:
    from .console import ConsoleHub

MAX_MESSAGE = 64 * 1024


class BadMessage(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Field:
    limit: int  # characters, after stripping
    required: bool = True


@dataclass(frozen=True, slots=True)
class Command:
    type: str
    ref: str | None
    args: dict[str, str]


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed command, who sent it and when (the hub's clock)."""

    user: Principal
    args: dict[str, str]
    now: datetime

    @property
    def interface(self) -> str:
        return self.user.interface or ""


Handler = Callable[["ConsoleHub", Request], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Spec:
    fields: dict[str, Field]
    run: Handler | None  # None: answered by the hub itself (ping)


# --- the handlers ------------------------------------------------------------------------------


def _my_call(hub: ConsoleHub, req: Request, call_id: str) -> CallView:
    view = hub.book.view(req.interface, call_id)
    if view is None:
        raise ConsoleError("That call is not on your console (any more).")
    return view


async def _login(hub: ConsoleHub, req: Request) -> str:
    return await hub.operators.login(req.user, req.now)


async def _pause(hub: ConsoleHub, req: Request) -> str:
    out = await hub.operators.pause(req.user, req.args["reason"], req.now)
    hub.push_states({req.interface})
    return out


async def _ready(hub: ConsoleHub, req: Request) -> str:
    out = await hub.operators.ready(req.user, req.now)
    hub.deliver(hub.book.done_calls(req.interface))
    hub.push_states({req.interface})
    return out


async def _logout(hub: ConsoleHub, req: Request) -> str:
    out = await hub.operators.logout(req.user, req.now)
    hub.deliver(hub.book.done_calls(req.interface))
    hub.push_states({req.interface})
    return out


async def _phone(hub: ConsoleHub, req: Request, action: str) -> str:
    """The demo's simulated phone (telephony.simulator.phones.PhoneControl)."""
    phones = hub.phones()
    if phones is None:
        raise ConsoleError("Use your desk phone: this console has no phone controls.")
    if not req.user.interface:
        raise ConsoleError("Your account has no phone (interface).")
    try:
        done = getattr(phones, action)(req.user.interface)
        if inspect.isawaitable(done):
            done = await done
    except (LookupError, ValueError, RuntimeError) as exc:
        raise ConsoleError(f"The demo phone could not {action}: {exc}") from exc
    if done is False:
        raise ConsoleError("Nothing is ringing on your phone." if action == "answer"
                           else "There is no call on your phone.")
    return "Answering." if action == "answer" else "Hanging up."


async def _answer(hub: ConsoleHub, req: Request) -> str:
    return await _phone(hub, req, "answer")


async def _hangup(hub: ConsoleHub, req: Request) -> str:
    return await _phone(hub, req, "hangup")


async def _dismiss(hub: ConsoleHub, req: Request) -> str:
    view = _my_call(hub, req, req.args["call_id"])
    if view.status in ("ringing", "connected"):
        raise ConsoleError("The call is still going on.")
    hub.deliver(hub.book.dismiss(req.interface, view.call_id))
    return "Call closed."


async def _create_case(hub: ConsoleHub, req: Request) -> str:
    a = req.args
    view = _my_call(hub, req, a["call_id"])
    if view.status == "ringing":
        raise ConsoleError("Answer the call before opening a case.")
    case = await hub.work.create_case(
        req.user, call_id=view.call_id, server=view.server, linkedid=view.linkedid,
        caller_number=view.raw_number, caller_name=view.caller_name,
        service=a["service"], address=a.get("address", ""),
        description=a["description"], now=req.now, language=view.language,
        email=a.get("email", ""),
    )
    hub.deliver(hub.book.add_case(req.interface, view.call_id, case.number))
    return f"Case {case.number} opened."


async def _add_note(hub: ConsoleHub, req: Request) -> str:
    a = req.args
    view = _my_call(hub, req, a["call_id"]) if "call_id" in a else None
    case = await hub.work.add_note(req.user, number=a["case"], body=a["body"], now=req.now)
    number = case.number
    if view is not None and number not in view.cases:
        if not view.cases:
            # the caller is about this existing case (a chase call, or a duplicate the
            # operator linked instead of opening another): the call joins it
            await hub.work.set_on_call(
                call_id=view.call_id, server=view.server, linkedid=view.linkedid,
                now=req.now, case_id=case.id, citizen_id=case.citizen_id)
        hub.deliver(hub.book.add_case(req.interface, view.call_id, number))
    return f"Note added to case {number}."


async def _disposition(hub: ConsoleHub, req: Request) -> str:
    code = req.args["disposition"]
    view = _my_call(hub, req, req.args["call_id"])
    if code not in DISPOSITIONS:
        raise ConsoleError(f"Unknown disposition {code!r}.")
    if view.status == "ringing":
        raise ConsoleError("The call has not been answered.")
    await hub.work.set_on_call(call_id=view.call_id, server=view.server,
                               linkedid=view.linkedid, now=req.now, disposition=code)
    hub.deliver(hub.book.set_disposition(req.interface, view.call_id, code))
    return f"Disposition saved: {DISPOSITIONS[code]}."


CALL_ID = Field(200)

COMMANDS: dict[str, Spec] = {
    "ping": Spec({}, None),
    "login": Spec({}, _login),
    "pause": Spec({"reason": Field(40)}, _pause),
    "ready": Spec({}, _ready),
    "logout": Spec({}, _logout),
    "answer": Spec({}, _answer),
    "hangup": Spec({}, _hangup),
    "dismiss": Spec({"call_id": CALL_ID}, _dismiss),
    "create_case": Spec({"call_id": CALL_ID, "service": Field(80),
                         "address": Field(400, required=False), "description": Field(4000),
                         "email": Field(200, required=False)}, _create_case),
    "add_note": Spec({"call_id": Field(200, required=False), "case": Field(40),
                      "body": Field(4000)}, _add_note),
    "disposition": Spec({"call_id": CALL_ID, "disposition": Field(40)}, _disposition),
}


# --- parsing -----------------------------------------------------------------------------------


def parse_command(raw: str) -> Command:
    """A client message -> Command, or BadMessage with a reason meant for a person."""
    if len(raw) > MAX_MESSAGE:
        raise BadMessage(f"message too large ({len(raw)} characters; the limit is {MAX_MESSAGE})")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadMessage(f"not JSON: {str(exc)[:80]}") from None
    if not isinstance(data, dict):
        raise BadMessage("a message must be a JSON object with a \"type\"")
    ref = data.get("ref")
    if ref is not None and not (isinstance(ref, str | int) and not isinstance(ref, bool)):
        raise BadMessage("\"ref\" must be a string or a number")
    ref_s = str(ref)[:40] if ref is not None else None
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in COMMANDS:
        raise BadMessage(f"unknown message type {str(kind)[:40]!r}")
    args: dict[str, str] = {}
    for name, spec in COMMANDS[kind].fields.items():
        value = data.get(name)
        if value is None or value == "":
            if spec.required:
                raise BadMessage(f"{kind}: \"{name}\" is required")
            continue
        if not isinstance(value, str):
            raise BadMessage(f"{kind}: \"{name}\" must be text")
        value = value.strip()
        if len(value) > spec.limit:
            raise BadMessage(f"{kind}: \"{name}\" is longer than {spec.limit} characters")
        if spec.required and not value:
            raise BadMessage(f"{kind}: \"{name}\" is required")
        args[name] = value
    return Command(kind, ref_s, args)


__all__ = ["COMMANDS", "MAX_MESSAGE", "BadMessage", "Command", "Field", "Handler", "Request",
           "Spec", "parse_command"]
