"""The one check of an API key, shared by the guard (`X-API-Key` on staff APIs, /health details)
and the Open311 API (`api_key` in the form): same lookup, same rule for revoked keys."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..security import hash_api_key
from .models import ApiKey

MAX_KEY_LENGTH = 200  # ours are 43 characters; anything far longer is not worth hashing


async def active_api_key(db: AsyncSession, key: str | None) -> ApiKey | None:
    """The stored, unrevoked key matching `key` (only its SHA-256 is kept), else None."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    row = (
        await db.execute(select(ApiKey).where(ApiKey.key_hash == hash_api_key(key)))
    ).scalar_one_or_none()
    return row if row is not None and row.revoked_at is None else None
