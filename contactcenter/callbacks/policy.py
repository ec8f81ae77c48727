"""When to call a citizen back and what each outcome means: pure rules, no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

ACTIVE = ("pending", "calling")  # a case has at most one callback in these states
DONE = ("confirmed", "reopened", "no_choice", "given_up", "skipped")


@dataclass(frozen=True, slots=True)
class CallbackRules:
    start: time  # calls are placed from start to end, local time of the center, every day
    end: time
    attempts: int  # calls placed before giving up on a citizen who never answers
    retry: timedelta  # between two attempts
    answer_timeout: timedelta  # placed, and no answer within this: not answered


def parse_hours(raw: str) -> tuple[time, time]:
    """'09:00-19:00' → (09:00, 19:00); a clear error otherwise."""
    try:
        first, last = (time.fromisoformat(part.strip()) for part in raw.split("-"))
    except ValueError:
        raise ValueError(f"CC_CALLBACK_HOURS must be HH:MM-HH:MM, got {raw!r}") from None
    if first >= last:
        raise ValueError(f"CC_CALLBACK_HOURS: {raw!r} ends before it starts")
    return first, last


def next_slot(after: datetime, rules: CallbackRules, tz: tzinfo) -> datetime:
    """The first moment at or after `after` inside the calling hours."""
    local = after.astimezone(tz)
    if rules.start <= local.time() < rules.end:
        return after
    day = local.date() if local.time() < rules.start else local.date() + timedelta(days=1)
    return datetime.combine(day, rules.start, tzinfo=tz)


def after_no_answer(attempts: int, now: datetime, rules: CallbackRules, tz: tzinfo
                    ) -> tuple[str, datetime | None]:
    """(state, next_at) once an attempt went unanswered: retry later, or give up."""
    if attempts >= rules.attempts:
        return "given_up", None
    return "pending", next_slot(now + rules.retry, rules, tz)


def after_answer(digit: str) -> str:
    return {"1": "confirmed", "2": "reopened"}.get(digit, "no_choice")


TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "resolution": "Hello, this is 3-1-1 calling about your request {number}, {service}. "
                      "It was closed: {note}",
        "question": "If this is fixed, press 1. If it is not, press 2.",
        "thanks_fixed": "Thank you. Goodbye.",
        "thanks_reopened": "Thank you. We have reopened your request and the agency will "
                           "look at it again. Goodbye.",
        "no_choice": "We did not get an answer. You can call 3-1-1 at any time. Goodbye.",
        "reopen_reason": "The citizen said on the call-back that it is not fixed.",
        "confirmed_note": "The citizen confirmed on the call-back that it is fixed.",
    },
    "es": {
        "resolution": "Hola, le llamamos del 3-1-1 por su solicitud {number}, {service}. "
                      "Se cerró: {note}",
        "question": "Si ya está resuelto, marque 1. Si no lo está, marque 2.",
        "thanks_fixed": "Gracias. Adiós.",
        "thanks_reopened": "Gracias. Hemos reabierto su solicitud y la agencia la revisará "
                           "de nuevo. Adiós.",
        "no_choice": "No recibimos respuesta. Puede llamar al 3-1-1 cuando quiera. Adiós.",
        "reopen_reason": "El ciudadano dijo en la llamada de seguimiento que no está resuelto.",
        "confirmed_note": "El ciudadano confirmó en la llamada de seguimiento que está resuelto.",
    },
}


def spoken_number(number: str) -> str:
    """311-2026-000123 → '311, 2026, 123': how a person reads a case number aloud."""
    parts = [p.lstrip("0") or "0" for p in number.split("-")]
    return ", ".join(parts)


def texts(language: str) -> dict[str, str]:
    return TEXTS.get(language, TEXTS["en"])
