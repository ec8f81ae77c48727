"""The words citizens and agencies read (pure): per change, in English and Spanish.

Every citizen message names the case number in its subject, so a reply comes back to the e-mail
intake as a note on the same case (cases/email_intake.py), and carries the opt-out link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

SMS_LIMIT = 320  # two concatenated SMS segments

SUBJECT = {
    "en": "Update on your 3-1-1 request {number}",
    "es": "Novedades sobre su solicitud 3-1-1 {number}",
}
LEAD = {
    "en": {
        "acknowledged": "Your request {number} ({service}) has been received by {agency}, "
                        "who will take care of it.",
        "noted": "There is news about your request {number} ({service}):",
        "waiting": "We need some information from you about your request {number} "
                   "({service}). Please reply to this e-mail:",
        "closed": "Your request {number} ({service}) has been closed.",
        "reopened": "Your request {number} ({service}) has been reopened.",
        "updated": "Your request {number} ({service}) has been updated.",
    },
    "es": {
        "acknowledged": "{agency} ha recibido su solicitud {number} ({service}) y se "
                        "ocupará de ella.",
        "noted": "Hay novedades sobre su solicitud {number} ({service}):",
        "waiting": "Necesitamos información suya sobre su solicitud {number} ({service}). "
                   "Por favor, responda a este correo:",
        "closed": "Su solicitud {number} ({service}) ha sido cerrada.",
        "reopened": "Su solicitud {number} ({service}) ha sido reabierta.",
        "updated": "Su solicitud {number} ({service}) ha sido actualizada.",
    },
}
FOOTER = {
    "en": "Follow your request: {status_url}\n"
          "To add something, reply to this e-mail (keep {number} in the subject).\n"
          "To stop receiving these messages: {optout_url}\n",
    "es": "Siga su solicitud: {status_url}\n"
          "Para añadir algo, responda a este correo (mantenga {number} en el asunto).\n"
          "Para no recibir más mensajes: {optout_url}\n",
}
SMS_STOP = {"en": "Stop: {optout_url}", "es": "No más avisos: {optout_url}"}


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    body: str


def _lang(language: str | None) -> str:
    return language if language in LEAD else "en"


def _lead(change: str, lang: str, number: str, service: str, agency: str | None) -> str:
    template = LEAD[lang].get(change, LEAD[lang]["updated"])
    return template.format(number=number, service=service, agency=agency or "3-1-1")


def citizen_email(
    *, change: str, language: str | None, number: str, service: str, agency: str | None,
    note: str, status_url: str, optout_url: str,
) -> Message:
    lang = _lang(language)
    lead = _lead(change, lang, number, service, agency)
    body = lead + ("\n\n" + note.strip() if note.strip() else "") + "\n\n" + \
        FOOTER[lang].format(status_url=status_url, number=number, optout_url=optout_url)
    return Message(SUBJECT[lang].format(number=number), body)


def citizen_sms(
    *, change: str, language: str | None, number: str, service: str, agency: str | None,
    note: str, optout_url: str,
) -> str:
    """One short text: what happened, as much of the note as fits, the opt-out link."""
    lang = _lang(language)
    head = "3-1-1: " + _lead(change, lang, number, service, agency)
    stop = SMS_STOP[lang].format(optout_url=optout_url)
    room = SMS_LIMIT - len(head) - len(stop) - 2
    text = " ".join(note.split())
    if text and room > 10:
        if len(text) > room:
            text = text[: room - 1].rstrip() + "…"
        head += " " + text
    return f"{head} {stop}"


@dataclass(frozen=True, slots=True)
class DigestLine:
    number: str
    state: str  # at_risk, overdue
    service: str
    due: datetime
    address: str | None


def agency_digest(
    agency: str, day: str, lines: Sequence[DigestLine], zone: ZoneInfo, base_url: str,
) -> Message:
    overdue = [ln for ln in lines if ln.state == "overdue"]
    at_risk = [ln for ln in lines if ln.state == "at_risk"]
    out = [f"{agency}: cases at risk {len(at_risk)}, overdue {len(overdue)} ({day}).", ""]
    for title, group in (("Overdue", overdue), ("At risk", at_risk)):
        if not group:
            continue
        out.append(f"{title}:")
        for ln in group:
            due = ln.due.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            out.append(f"  {ln.number}  due {due}  {ln.service}"
                       + (f"  {ln.address}" if ln.address else ""))
        out.append("")
    out.append(f"At risk: less than 20 % of the service's SLA time left; overdue: past due. "
               f"{base_url}")
    return Message(f"3-1-1 SLA digest {day}: {len(at_risk)} at risk, {len(overdue)} overdue",
                   "\n".join(out) + "\n")
