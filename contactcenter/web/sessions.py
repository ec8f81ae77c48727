"""Server-side sessions: the `web_sessions` table says which signed-in cookies are still valid.

The session cookie (encrypted by aiohttp-session) carries a random token; the row keyed by the
token's SHA-256 is what makes it a signed-in session. Deleting rows signs out at once, in every
web process: sign-out deletes its own, a password or role change and an admin's "end all
sessions" delete all of a user's. A cookie replayed after any of these finds no row.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import User, WebSession

SESSION_TTL = timedelta(hours=12)


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(db: AsyncSession, user_id: int, now: datetime) -> str:
    """A new session row; returns the token for the cookie. Expired rows go at the same time,
    which keeps the table as small as the number of signed-in browsers."""
    token = secrets.token_urlsafe(32)
    await db.execute(delete(WebSession).where(WebSession.expires_at < now))
    db.add(WebSession(id=_key(token), user_id=user_id, created_at=now,
                      expires_at=now + SESSION_TTL))
    return token


async def session_user(db: AsyncSession, token: str, now: datetime) -> User | None:
    """The user of a live session (one query), or None when it was ended or has expired."""
    return (await db.execute(
        select(User).join(WebSession, WebSession.user_id == User.id)
        .where(WebSession.id == _key(token), WebSession.expires_at > now)
    )).scalar_one_or_none()


async def end_session(db: AsyncSession, token: str) -> None:
    await db.execute(delete(WebSession).where(WebSession.id == _key(token)))


async def end_user_sessions(db: AsyncSession, user_id: int) -> int:
    """Sign a user out everywhere; returns how many sessions ended."""
    result = await db.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def count_user_sessions(db: AsyncSession, user_id: int, now: datetime) -> int:
    rows = await db.execute(select(WebSession.id).where(
        WebSession.user_id == user_id, WebSession.expires_at > now))
    return len(rows.all())
