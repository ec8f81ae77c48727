"""Citizens: one person across phone calls, web and e-mail requests, matched by number or e-mail."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Citizen

_NON_DIGITS = re.compile(r"\D+")
# Caller IDs Asterisk uses for "no number"
_UNKNOWN = {"", "unknown", "<unknown>", "anonymous", "restricted", "private"}


def normalize_phone(raw: str | None) -> str | None:
    """Digits only, at most 20; None for an empty or withheld caller ID."""
    if raw is None or raw.strip().lower() in _UNKNOWN:
        return None
    digits = _NON_DIGITS.sub("", raw)[:20]
    return digits or None


def normalize_email(raw: str | None) -> str | None:
    if not raw:
        return None
    value = raw.strip().lower()
    return value if "@" in value and len(value) <= 200 else None


async def match_citizen(
    session: AsyncSession,
    *,
    phone: str | None = None,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    create: bool = True,
) -> Citizen | None:
    """Find the citizen by e-mail, then by phone; create one when neither matches (and fill in
    what the new contact adds). Returns None when there is nothing to match on."""
    phone, email = normalize_phone(phone), normalize_email(email)
    if phone is None and email is None:
        return None
    found: Citizen | None = None
    if email is not None:
        found = (
            await session.execute(select(Citizen).where(Citizen.email == email).limit(1))
        ).scalar_one_or_none()
    if found is None and phone is not None:
        found = (
            await session.execute(
                select(Citizen).where(Citizen.phone == phone).order_by(Citizen.id).limit(1)
            )
        ).scalar_one_or_none()
    if found is None:
        if not create:
            return None
        found = Citizen(phone=phone, email=email, first_name=first_name, last_name=last_name)
        session.add(found)
        await session.flush()
        return found
    if found.phone is None and phone is not None:
        found.phone = phone
    if found.email is None and email is not None:
        found.email = email
    if not found.first_name and first_name:
        found.first_name = first_name
    if not found.last_name and last_name:
        found.last_name = last_name
    return found
